"""status and support-bundle: real database, real files, no secrets out."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

from kiosk import config as config_mod
from kiosk.ops import status as status_mod
from kiosk.ops.support import make_bundle, mask_line
from offline_queue.records import CheckIn
from offline_queue.store import Store

REPO = Path(__file__).resolve().parents[1]
TOKEN = "dev-Zq3xR9secretsecretsecret0123456789"
PAYLOAD = "001185012345|012345678|Trần Thị Bích Ngọc|14071985|Nữ|Số 8 Ngõ 12|10052021"


def kiosk_config(tmp_path: Path) -> Path:
    (tmp_path / "device-token").write_text(TOKEN + "\n")
    with Store(tmp_path / "k.db", device_id="kiosk-1", checkpoint_id="LS-1") as store:
        store.record(CheckIn(direction="in", kind="cccd", person_key="001185012345"))
    path = tmp_path / "kiosk.toml"
    path.write_text(
        f'[device]\nid = "kiosk-1"\ncheckpoint_id = "LS-1"\n'
        f'[store]\npath = "{tmp_path / "k.db"}"\n'
        f'[sync]\nserver_url = "http://127.0.0.1:9"\ntoken_file = "{tmp_path / "device-token"}"\n'
        f'[ui]\nofficer_pin = "4826"\n', encoding="utf-8")
    return path


def test_status_json_has_backlog_disk_clock_and_no_secret(tmp_path):
    path = kiosk_config(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "kiosk", "status", "--json", "--config",
                           str(path)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["version"] and report["uptime_s"] > 0
    assert report["queue"]["backlog"] == 1 and report["queue"]["last_sync"] is None
    assert report["device"] == {"id": "kiosk-1", "checkpoint_id": "LS-1",
                                "checkpoint_name": None, "server_url": "http://127.0.0.1:9",
                                "device_token": "present"}
    assert report["disk"]["free_bytes"] > 0 and "synced" in report["clock"]
    assert TOKEN not in proc.stdout and "4826" not in proc.stdout
    human = subprocess.run([sys.executable, "-m", "kiosk", "status", "--config", str(path)],
                           cwd=REPO, capture_output=True, text=True, timeout=60).stdout
    assert "backlog:       1 waiting, 0 dead letter" in human


def test_status_and_bundle_still_report_on_a_config_that_stops_start_up(tmp_path):
    path = kiosk_config(tmp_path)
    path.write_text(path.read_text() + '[camera]\nspec = "picamra2"\n', encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "kiosk", "status", "--json", "--config",
                           str(path)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr  # it reports, and says something is wrong
    first = json.loads(proc.stdout)["errors"][0]
    assert first.startswith(f"{path}: camera.spec: camera spec 'picamra2' is not recognised")
    bundle = tmp_path / "b.tar.gz"
    proc = subprocess.run([sys.executable, "-m", "kiosk", "support-bundle", "-o", str(bundle),
                           "--config", str(path)], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert bundle.is_file()


def test_under_voltage_from_the_pi_hwmon_alarm(tmp_path):
    hw = tmp_path / "hwmon3"
    hw.mkdir()
    (hw / "name").write_text("rpi_volt\n")
    (hw / "in0_lcrit_alarm").write_text("1\n")
    probes = status_mod.Probes(hwmon_glob=str(tmp_path / "hwmon*"))
    assert status_mod.under_voltage(probes)["now"] is True
    (hw / "in0_lcrit_alarm").write_text("0\n")
    assert status_mod.under_voltage(probes)["now"] is False
    assert status_mod.under_voltage(status_mod.Probes(hwmon_glob=str(tmp_path / "none*"))
                                    )["now"] in (None, False, True)


def test_masking_covers_tokens_payloads_and_id_numbers():
    line = (f"DEBUG sent Bearer {TOKEN} with HC1:6BFOXN%TS3DH0YOJ58S "
            "enrol-abcdefgh123 person 001185012345")
    masked = mask_line(line)
    for secret in (TOKEN, "6BFOXN", "enrol-abcdefgh123", "001185012345"):
        assert secret not in masked
    assert masked.endswith("person *********345")
    # A payload's fields hold spaces: the rest of the line goes (over-masking is the safe side).
    assert mask_line(f"DEBUG raw {PAYLOAD} end") == "DEBUG raw <masked payload>"


def test_support_bundle_has_redacted_config_masked_logs_and_status(tmp_path):
    path = kiosk_config(tmp_path)
    cfg = config_mod.load(path, environ={})
    log = tmp_path / "kiosk.log"
    log.write_text(f"INFO check-in 0190: cccd pass\nDEBUG raw {PAYLOAD}\nDEBUG token {TOKEN}\n")
    out = make_bundle(cfg, tmp_path / "bundle.tar.gz", config_path=path, log_files=[log])
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(out) as tar:
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()
                 for m in tar.getmembers()}
    assert {"config.json", "config-effective.json", "status.json", "logs/kiosk.log",
            "system.txt"} <= set(files)
    config = json.loads(files["config.json"])
    assert config["ui"]["officer_pin"] == "<redacted>"
    assert config["sync"]["token_file"].endswith("device-token")
    everything = "".join(files.values())
    for secret in (TOKEN, "4826", "Ngọc", "001185012345"):
        assert secret not in everything
    assert "INFO check-in 0190: cccd pass" in files["logs/kiosk.log"]
    assert json.loads(files["status.json"])["queue"]["backlog"] == 1


def test_a_bundle_unpacks_into_a_folder_named_without_its_suffix(tmp_path):
    cfg = config_mod.load(kiosk_config(tmp_path), environ={})
    for name, root in (("b.tgz", "b"), ("b.tar.gz", "b"), ("b.tar", "b"), ("b", "b.d")):
        with tarfile.open(make_bundle(cfg, tmp_path / name, status_report={"errors": []})) as t:
            assert {m.name.split("/")[0] for m in t.getmembers()} == {root}, name


def status(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk", "status", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_status_takes_db_and_state_dir_like_run_and_provision(tmp_path):
    from kiosk.ops.provision import Result, save_result

    path = kiosk_config(tmp_path)
    other = tmp_path / "other.db"
    with Store(other, device_id="kiosk-1", checkpoint_id="LS-1") as store:
        for _ in range(3):
            store.record(CheckIn(direction="out", kind="cccd", person_key="001185012345"))
    state = tmp_path / "state"
    state.mkdir()
    save_result(Result(ok=True, message="enrolled as kiosk-1", source="USB stick"), state)
    proc = status("--json", "--config", str(path), "--db", str(other), "--state-dir", str(state))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["queue"]["backlog"] == 3   # the --db, not store.path's one row
    assert report["last_provisioning"]["message"] == "enrolled as kiosk-1"
    assert report["errors"] == []


def test_status_exits_1_when_it_lists_errors_and_0_with_warnings_only(tmp_path):
    path = kiosk_config(tmp_path)
    healthy = status("--json", "--config", str(path))
    assert healthy.returncode == 0, healthy.stdout
    report = json.loads(healthy.stdout)
    assert report["errors"] == []
    if not Path("/run/systemd/timesync/synchronized").exists():
        assert "clock not synced by NTP since boot" in report["warnings"]
    (tmp_path / "device-token").unlink()  # an unprovisioned kiosk cannot deliver anything
    for args in (("--json",), ()):
        proc = status(*args, "--config", str(path))
        assert proc.returncode == 1, proc.stdout
        assert "not provisioned: no device token" in proc.stdout
    assert proc.stderr == ""
    assert "errors:        not provisioned: no device token" in proc.stdout


def test_status_shows_every_config_problem_and_never_raw_control_characters(tmp_path):
    path = kiosk_config(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    from kiosk.ops.provision import Result, save_result

    # A hostile stick or server: its texts carry a clear-screen, a title change, a C1 CSI
    # and a bidi override.
    save_result(Result(ok=False, message="bad\x1b[2J\x1b]0;owned\x07\x9b31m\u202eelif",
                       source="USB stick"), state)
    path.write_text(path.read_text().replace('[device]\n', '[device]\n'
                                             'checkpoint_name = "Cửa khẩu\\u001b[31m"\n')
                    + '[camera]\nspec = "picamra2"\nwidth = "wide"\n', encoding="utf-8")
    for args in (("--json",), ()):
        proc = status(*args, "--config", str(path), "--state-dir", str(state))
        assert proc.returncode == 1
        for c in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert c not in proc.stdout, (args, c)
        assert "Cửa khẩu" in proc.stdout  # Vietnamese stays readable
        assert "camera.width = 'wide' must be a whole number" in proc.stdout
        assert "camera spec 'picamra2' is not recognised" in proc.stdout
    report = json.loads(status("--json", "--config", str(path), "--state-dir", str(state)).stdout)
    assert report["last_provisioning"]["message"].startswith("bad\x1b[2J")  # JSON keeps data
