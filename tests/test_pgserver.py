"""The throw-away PostgreSQL of the central's tests and benches (tests/pgserver.py): started,
restarted (the benches' "cold" queries) and stopped through its one start-up path."""

from __future__ import annotations

import pytest

from tests.pgserver import PgServer, unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is not None,
                                reason=unavailable_reason() or "")


def test_a_restarted_server_keeps_its_data_and_a_stopped_one_leaves_nothing():
    import psycopg

    server = PgServer().start()
    try:
        url = server.new_database()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (n int)")
            conn.execute("INSERT INTO t VALUES (7)")
        first = server._proc
        server.restart()
        assert server._proc is not first and first is not None and first.poll() is not None
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT n FROM t").fetchall() == [(7,)]
        assert server.log_tail(200).count("database system is ready to accept connections") == 2
    finally:
        server.stop()
    assert not server.root.exists()
    assert server._proc is not None and server._proc.poll() is not None
