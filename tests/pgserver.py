"""A throw-away PostgreSQL server for the central's tests and benches.

Debian's ``postgresql`` package (installed by ``systemd/install.sh --dev``) puts the server
binaries in ``/usr/lib/postgresql/<version>/bin``.  :class:`PgServer` runs ``initdb`` in a
temporary folder and starts the server on a Unix socket in that folder (no TCP port, no
root, no system cluster).  PostgreSQL refuses to run as root: under root the server runs
as the ``postgres`` user the package creates, the folder handed over to it.

Used as a pytest fixture (``pg_server``/``pg_url`` in tests/conftest.py) and by
bench/central_herd.py, bench/central_queries.py.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

SUPERUSER = "kiosk_test"


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding initdb and postgres, or None."""
    candidates = []
    for folder in glob.glob("/usr/lib/postgresql/*/bin"):
        path = Path(folder)
        version = path.parent.name
        if (path / "initdb").is_file() and (path / "postgres").is_file() and version.isdigit():
            candidates.append((int(version), path))
    return max(candidates)[1] if candidates else None


def unavailable_reason() -> str | None:
    """Why no server can be started here (None when one can)."""
    if find_bin_dir() is None:
        return ("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin; install "
                "Debian's 'postgresql' package (systemd/install.sh --dev does)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return ("running as root and there is no 'postgres' user to run the server as "
                    "(PostgreSQL refuses root); install Debian's 'postgresql' package")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed; pip install 'checkpoint-kiosk[central]'"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """initdb + postgres in a temporary folder; :meth:`new_database` gives a URL.

    ``durable=False`` (tests) turns fsync off; benches keep PostgreSQL's defaults.
    """

    def __init__(self, *, durable: bool = False, settings: dict[str, str] | None = None
                 ) -> None:
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        self.bin = find_bin_dir()
        self.durable = durable
        self.settings = settings or {}
        self.root = Path(tempfile.mkdtemp(prefix="kiosk-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._user: pwd.struct_passwd | None = (
            pwd.getpwnam("postgres") if os.geteuid() == 0 else None)

    # -- running as the right user -----------------------------------------------------

    def _demote(self) -> None:  # runs in the child, before exec
        assert self._user is not None
        os.setgid(self._user.pw_gid)
        os.setgroups([])
        os.setuid(self._user.pw_uid)

    def _run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(args, check=True, capture_output=True, cwd=self.root,
                              preexec_fn=self._demote if self._user else None)

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> PgServer:
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
            os.chmod(self.root, 0o755)  # the tests (root) reach the socket in it
        assert self.bin is not None
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                  "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        options = {
            "listen_addresses": "''", "unix_socket_directories": f"'{self.root}'",
            "port": str(self.port), "max_connections": "300",
            "shared_buffers": "128MB", "logging_collector": "off",
        }
        if not self.durable:
            options.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        options.update(self.settings)
        with open(self.data / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
            for key, value in options.items():
                conf.write(f"{key} = {value}\n")
        self._launch()
        return self

    def _launch(self) -> None:
        """Start ``postgres`` on the initialised folder (its output appended to server.log)
        and wait until it takes connections: the one way the server is started."""
        assert self.bin is not None
        with open(self.root / "server.log", "ab") as log:  # the child keeps its own copy
            self._proc = subprocess.Popen(
                [str(self.bin / "postgres"), "-D", str(self.data)], stdout=log,
                stderr=subprocess.STDOUT, cwd=self.root,
                preexec_fn=self._demote if self._user else None)
        self._wait_ready()

    def _halt(self) -> None:
        """Stop the server if it runs: SIGINT is the "fast" shutdown (SIGTERM, "smart",
        waits for every client); killed if it has not stopped in 20 s."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self._proc.returncode}: "
                                   f"{self.log_tail()}")
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres not ready after {timeout:g} s: "
                                       f"{self.log_tail()}") from None
                time.sleep(0.1)

    def restart(self) -> None:
        """Stop and start the server (an empty shared buffer cache: "cold" queries)."""
        assert self._proc is not None
        self._halt()
        self._launch()

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.root / "server.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.root}&port={self.port}"

    def new_database(self, name: str | None = None) -> str:
        """Create an empty database; its URL."""
        import psycopg

        name = name or "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self._halt()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- pytest fixtures (registered in tests/conftest.py) --------------------------------------

try:
    import pytest
except ImportError:  # the benches import PgServer without pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session")
    def pg_server():
        """One throw-away PostgreSQL for the session; skipped (with the reason) where the
        server binaries cannot be had."""
        reason = unavailable_reason()
        if reason:
            pytest.skip(f"PostgreSQL tests skipped: {reason}")
        server = PgServer().start()
        try:
            yield server
        finally:
            server.stop()

    @pytest.fixture
    def pg_url(pg_server) -> str:
        """A new, empty PostgreSQL database on the session's server."""
        return pg_server.new_database()

    @pytest.fixture(params=["sqlite", "postgresql"])
    def db_target(request, tmp_path):
        """The central database a test runs on: a SQLite file, then a PostgreSQL URL."""
        if request.param == "sqlite":
            return tmp_path / "c.db"
        return request.getfixturevalue("pg_url")
