"""docs/central.md's setup of a province's central, proven by bench/central_setup.py.

The fast tests (in CI) check how the bench reads the doc: the ```sh block is found, only
its two placeholders are filled in, a doc without the block (or with a new placeholder)
fails clearly, and the units are read as systemd reads them; the TLS reverse proxy's block
likewise (its certificate and key placeholders), and its nginx settings agree with the
central's and the kiosk's limits.

The proof itself is opt-in (debootstrap, root, network to Debian and PyPI; about 1.5
minutes with warm caches, 3 with cold ones; ports 80, 443 and 8080 free):
    sudo CHECKPOINT_KIOSK_CENTRAL_SETUP_TEST=1 python -m pytest tests/test_central_setup.py -q
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import central_setup as cs

REPO = Path(__file__).resolve().parents[1]
TOKEN = "f" * 64


def doc() -> cs.SetupDoc:
    return cs.setup_section((REPO / "docs/central.md").read_text())


# ---- reading the doc ---------------------------------------------------------------------

def test_the_setup_block_is_found_whole():
    block = doc().block
    # From the first command to the last, shell comments included (a '# 1.' line is not a
    # Markdown heading inside a fence).
    assert block.startswith("apt-get update\n")
    for step in ("# 1.", "# 2.", "# 3.", "# 4.", "# 4b.", "# 5."):
        assert f"\n{step} " in block, step
    assert "systemctl enable --now checkpoint-kiosk-central-report.timer" in block
    assert "```" not in block


def test_only_the_two_placeholders_are_substituted():
    block = doc().block
    out = cs.substitute(block, "/root/checkpoint-kiosk", TOKEN)
    assert cs.CHECKOUT_PLACEHOLDER not in out and "<a long random string" not in out
    assert f"CHECKPOINT_CENTRAL_ADMIN_TOKEN={TOKEN}\n" in out
    # Put the placeholders back: the rest of the block is byte for byte the doc's.
    back = out.replace(TOKEN, "\0").replace("/root/checkpoint-kiosk", cs.CHECKOUT_PLACEHOLDER)
    assert cs.TOKEN_PLACEHOLDER.sub("\0", block) == back


def test_a_doc_without_the_section_or_its_block_fails_clearly():
    with pytest.raises(cs.DocError, match="0 headings .*Setting up a province's central"):
        cs.setup_section("# The central platform\n\nNothing here.\n")
    no_block = f"{cs.SECTION}\n\nRun the installer.\n\n## Next\n```sh\nls\n```\n"
    with pytest.raises(cs.DocError, match="has 0 ```sh blocks"):
        cs.setup_section(no_block)
    two = f"{cs.SECTION}\n```sh\nls\n```\n```sh\nls\n```\n"
    with pytest.raises(cs.DocError, match="has 2 ```sh blocks"):
        cs.setup_section(two)
    # The second block belongs under the proxy's heading, after the setup block.
    early = f"{cs.SECTION}\n```sh\nls\n```\n```sh\nls\n```\n{cs.PROXY_HEADING}\n"
    with pytest.raises(cs.DocError, match="one ```sh block under it"):
        cs.setup_section(early)
    three = f"{cs.SECTION}\n```sh\nls\n```\n{cs.PROXY_HEADING}\n```sh\na\n```\n```sh\nb\n```\n"
    with pytest.raises(cs.DocError, match="has 3 ```sh blocks"):
        cs.setup_section(three)
    ok = cs.setup_section(f"{cs.SECTION}\n```sh\nls\n```\nServe `x`.\n{cs.PROXY_HEADING}\n"
                          "Then:\n```sh\nnginx -t\n```\n## Next\n```sh\nother\n```\n")
    assert (ok.block, ok.after, ok.proxy) == ("ls\n", "\nServe `x`.\n", "nginx -t\n")


def test_a_block_without_a_placeholder_or_with_an_unknown_one_fails_clearly():
    block = doc().block
    with pytest.raises(cs.DocError, match="no '/path/to/checkout'"):
        cs.substitute(block.replace(cs.CHECKOUT_PLACEHOLDER, "/srv/checkout"), "/x", TOKEN)
    with pytest.raises(cs.DocError, match="no '<a long random string"):
        cs.substitute(cs.TOKEN_PLACEHOLDER.sub("secret", block), "/x", TOKEN)
    with pytest.raises(cs.DocError, match=r"does not fill in: \['<your province>'\]"):
        cs.substitute(block + "echo <your province>\n", "/x", TOKEN)
    with pytest.raises(cs.DocError, match="/path/to/backups"):
        cs.substitute(block + "cp x /path/to/backups\n", "/x", TOKEN)


def test_the_serve_paragraph_gives_the_enable_and_enrol_token_commands():
    enable, enrol = cs.serve_commands(doc())
    assert enable == "systemctl enable --now checkpoint-kiosk-central-server.service"
    # As the database's own system user (peer authentication), by its full path.
    assert enrol.startswith("runuser -u checkpoint-central -- "
                            "/opt/checkpoint-kiosk/venv/bin/checkpoint-kiosk central ")
    assert 'enrol-token --checkpoint CB-TALUNG --name "Tà Lùng"' in enrol
    with pytest.raises(cs.DocError, match="found 0 and 0"):
        cs.serve_commands(cs.SetupDoc(block="", after="Serve it somehow.\n"))


def test_the_first_administrator_block_is_found_and_runs_as_the_databases_user():
    block = cs.first_admin_block((REPO / "docs/central.md").read_text())
    assert block.startswith("runuser -u checkpoint-central -- /opt/checkpoint-kiosk/venv/bin/")
    assert "user add admin --role administrator" in block
    with pytest.raises(cs.DocError, match="no ```sh block with 'user add'"):
        cs.first_admin_block("**The first administrator**\n\n```sh\nls\n```\n")


def test_every_chroot_stand_in_finds_its_line_and_says_so():
    script, notes = cs.adapt(cs.substitute(doc().block, "/c", TOKEN))
    assert len(notes) == len(cs.STAND_INS)
    assert "\npg_ctlcluster 15 main start\n" in script
    assert not re.search(r"^systemctl (daemon-reload|enable --now)", script, re.M)
    # Each replaced line stays visible as a comment.
    assert "# chroot stand-in (bench/central_setup.py) for: systemctl daemon-reload" in script
    with pytest.raises(cs.DocError, match="daemon-reload"):
        cs.adapt(script.replace("echo 'chroot stand-in: no systemd manager to reload'", ""))
    command, notes = cs.adapt("systemctl enable --now x.service", block=False)
    assert command.endswith("\nsystemctl enable x.service") and len(notes) == 1


def test_the_shell_block_is_posix():
    """It is marked ```sh and the bench runs it with dash: no brace expansion, [[ or arrays."""
    block = doc().block
    assert not re.search(r"\{[^}\s]*,[^}\s]*\}", block), "brace expansion is bash's"
    assert "[[" not in block and "<(" not in block
    if shutil.which("dash"):
        script = cs.substitute(block, "/c", TOKEN)
        assert subprocess.run(["dash", "-n"], input=script, text=True).returncode == 0


# ---- the TLS reverse proxy block -----------------------------------------------------------

CERT, KEY = "/root/bench-tls/central-fullchain.pem", "/root/bench-tls/central.key"


def test_the_proxy_block_is_found_under_its_heading_and_not_in_the_serve_paragraph():
    d = doc()
    assert d.proxy.startswith("apt-get install -y nginx\n")
    assert "proxy_pass http://127.0.0.1:8080;" in d.proxy
    assert d.proxy.rstrip("\n").endswith("systemctl restart nginx")
    assert "```" not in d.proxy and "nginx" not in d.block
    assert cs.PROXY_HEADING not in d.after and "proxy_pass" not in d.after


def test_only_the_certificate_and_key_placeholders_are_substituted_in_the_proxy_block():
    block = doc().proxy
    out = cs.substitute_proxy(block, CERT, KEY)
    assert f"install -m 644 {CERT} /etc/ssl/certs/checkpoint-central.pem\n" in out
    assert f"install -m 600 {KEY} /etc/ssl/private/checkpoint-central.key\n" in out
    assert out.replace(CERT, cs.CERT_PLACEHOLDER).replace(KEY, cs.KEY_PLACEHOLDER) == block
    with pytest.raises(cs.DocError, match="no '/path/to/central.key'"):
        cs.substitute_proxy(block.replace(cs.KEY_PLACEHOLDER, "/etc/k"), CERT, KEY)
    with pytest.raises(cs.DocError, match="no '/path/to/central-fullchain.pem'"):
        cs.substitute_proxy(block.replace(cs.CERT_PLACEHOLDER, "/etc/c"), CERT, KEY)
    with pytest.raises(cs.DocError, match=r"does not fill in: \['<your host>'\]"):
        cs.substitute_proxy(block + "echo <your host>\n", CERT, KEY)


def test_the_proxy_blocks_stand_in_finds_nginx_restart():
    script, notes = cs.adapt(cs.substitute_proxy(doc().proxy, CERT, KEY),
                             stand_ins=cs.PROXY_STAND_INS)
    assert len(notes) == 1 and not re.search(r"^systemctl restart nginx$", script, re.M)
    assert "# chroot stand-in (bench/central_setup.py) for: systemctl restart nginx" in script
    with pytest.raises(cs.DocError, match="restart nginx"):
        cs.adapt("nginx -t\n", stand_ins=cs.PROXY_STAND_INS)


def test_the_proxy_block_is_posix():
    block = doc().proxy
    assert "[[" not in block and "<(" not in block
    if shutil.which("dash"):
        script = cs.substitute_proxy(block, CERT, KEY)
        assert subprocess.run(["dash", "-n"], input=script, text=True).returncode == 0


def nginx_conf() -> dict[str, list[str]]:
    """The nginx site of the proxy block: directive -> values, in order."""
    conf = doc().proxy.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    out: dict[str, list[str]] = {}
    for raw in conf.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.endswith(";"):
            name, _, value = line[:-1].partition(" ")
            out.setdefault(name, []).append(value.strip())
    return out


def test_the_documented_nginx_agrees_with_the_central_and_the_kiosk():
    """Its limits follow the code: the central's body limit, port and trusted proxy, the
    headers it trusts, its channel timeout; the kiosk's request deadline."""
    from kiosk.config import SyncConfig
    from offline_queue.central import app, server

    conf = nginx_conf()
    assert conf["client_max_body_size"] == ["8m"] and app.MAX_BODY == 8 * 1024 * 1024
    unit = (REPO / "systemd" / cs.SERVER_UNIT).read_text()
    assert conf["proxy_pass"] == [f"http://{server.TRUSTED_PROXY}:{cs.PORT}"]
    assert f"--host 127.0.0.1 --port {cs.PORT}" in unit
    assert conf["proxy_set_header"] == ["Host $host", "X-Forwarded-For $remote_addr",
                                        "X-Forwarded-Proto $scheme"]
    assert server.TRUSTED_PROXY_HEADERS.split() == ["x-forwarded-for", "x-forwarded-proto"]
    for name in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert conf[name] == [f"{server.CHANNEL_TIMEOUT}s"], name
    # nginx waits for the central longer than a kiosk waits in all (connect + read).
    kiosk = SyncConfig()
    deadline = min(5.0, kiosk.timeout_seconds) + kiosk.timeout_seconds
    assert int(conf["proxy_read_timeout"][0].rstrip("s")) > deadline
    assert conf["return"] == ["301 https://$host$request_uri"]
    assert conf["proxy_next_upstream"] == ["off"]


# ---- the units, read as systemd reads them -----------------------------------------------

def test_exec_start_is_expanded_as_systemd_does():
    env = {"DB": "postgresql://u@/c?host=/run/postgresql", "ARGS": "--a  --b"}
    argv, missing = cs.exec_argv("/bin/x --db ${DB} $ARGS --y=${DB}x ${NOPE}", env)
    assert argv == ["/bin/x", "--db", env["DB"], "--a", "--b", f"--y={env['DB']}x", ""]
    assert missing == ["NOPE"]


def test_the_shipped_units_name_only_variables_their_environment_sets():
    env = cs.environment_file(cs.substitute(doc().block, "/c", TOKEN).split(
        "<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0])
    assert env["CENTRAL_DB"].startswith("postgresql://checkpoint-central@/central")
    for name in (cs.SERVER_UNIT, *cs.ONESHOTS):
        keys = cs.unit_service((REPO / "systemd" / name).read_text())
        assert keys["EnvironmentFile"] == ["/etc/checkpoint-kiosk/central.env"]
        for line in keys["ExecStart"]:
            _argv, missing = cs.exec_argv(line, env)
            assert not missing, (name, missing)


def test_an_environment_file_is_read_like_systemd():
    env = cs.environment_file("# c\nA=1\n; c\nB='two words'\nC=\"x\"\n\nD=a=b\n")
    assert env == {"A": "1", "B": "two words", "C": "x", "D": "a=b"}


# ---- the proof (opt-in) ------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CHECKPOINT_KIOSK_CENTRAL_SETUP_TEST") != "1",
                    reason="runs docs/central.md's setup in a fresh Debian 12 root (root, "
                           "network, ~1.5 min): set CHECKPOINT_KIOSK_CENTRAL_SETUP_TEST=1 "
                           "and run as root")
@pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap, mount and chroot need root")
@pytest.mark.skipif(shutil.which("debootstrap") is None,
                    reason="debootstrap is not installed (apt-get install debootstrap)")
@pytest.mark.timeout(3600)
def test_the_documented_setup_runs_in_a_fresh_debian_root(tmp_path):
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.central_setup", "--root", str(tmp_path / "root"),
         "--report", str(report)], cwd=REPO, capture_output=True, text=True, timeout=3500)
    assert report.exists(), proc.stderr[-3000:]
    result = json.loads(report.read_text())
    failed = [c for c in result["checks"] if not c["ok"]]
    assert not failed, json.dumps(failed, indent=2, ensure_ascii=False)[-4000:]
    names = " | ".join(c["name"] for c in result["checks"])
    for must in ("the setup block runs as written", "systemd-analyze verify",
                 "enrol-token", "the proxy block (The TLS reverse proxy) runs as written",
                 "nginx listens on 443 and 80", f"provision --server https://{cs.HOST} "
                 "--ca-bundle", "provision without --ca-bundle refuses the certificate",
                 "sync --once delivers it over https", "answered 301 to https",
                 "throttles the client address nginx forwarded",
                 "CB-TALUNG has the 1 scan", "'The first administrator' block",
                 "dashboard over https", "session cookie is Secure", "no nginx process left",
                 "SIGTERM", "sandbox emulated",
                 "checkpoint-kiosk-central-report.service: ExecStart 2 of 2",
                 "checkpoint-kiosk-central-retention.service: ExecStart 1 of 1",
                 "nothing left mounted"):
        assert must in names, must
    assert proc.returncode == 0, proc.stdout[-3000:]
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read()


def test_the_server_units_sandbox_is_emulated_whole():
    """The bench applies every sandboxing directive of the shipped units (none is left
    out silently), the writable folder bound before the root is made read-only."""
    for name in (cs.SERVER_UNIT, *cs.ONESHOTS):
        keys = cs.unit_service((REPO / "systemd" / name).read_text())
        svc = cs.Service(name, "checkpoint-central", None, {}, [], [], keys)
        script, missed = cs.sandbox(Path("/var/tmp/x/root"), svc)
        assert missed == [], (name, missed)
        lines = script.splitlines()
        rw = "mount --bind /var/tmp/x/root/var/lib/checkpoint-central " \
             "/var/tmp/x/root/var/lib/checkpoint-central"
        ro = "mount -o remount,bind,ro /var/tmp/x/root"
        assert lines[0] == "mount --rbind /var/tmp/x/root /var/tmp/x/root"
        assert lines.index(rw) < lines.index(ro)
        assert "mount -t tmpfs -o mode=1777 tmpfs /var/tmp/x/root/tmp" in lines
