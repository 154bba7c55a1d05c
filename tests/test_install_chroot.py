"""systemd/install.sh --appliance on a real Debian 12 root: bench/install_chroot.py.

Opt-in (debootstrap, root, network to Debian and PyPI, about a minute with a warm cache):
    CHECKPOINT_KIOSK_CHROOT_TEST=1 python -m pytest tests/test_install_chroot.py -q
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("CHECKPOINT_KIOSK_CHROOT_TEST") != "1",
                       reason="debootstraps a Debian root (root, network, ~1 min): "
                              "set CHECKPOINT_KIOSK_CHROOT_TEST=1 to run"),
    pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap, mount and chroot need root"),
    pytest.mark.skipif(shutil.which("debootstrap") is None,
                       reason="debootstrap is not installed (apt-get install debootstrap)"),
]


@pytest.mark.timeout(1800)
def test_appliance_install_in_a_debian_chroot(tmp_path):
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.install_chroot", "--root", str(tmp_path / "root"),
         "--report", str(report)],
        cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert report.exists(), proc.stderr[-3000:]
    result = json.loads(report.read_text())
    failed = [c for c in result["checks"] if not c["ok"]]
    assert not failed, json.dumps(failed, indent=2, ensure_ascii=False)[-4000:]
    names = " | ".join(c["name"] for c in result["checks"])
    # The three runs the issue asks for, each checked.
    for must in ("second run: manifest of", "upgrade to", "run after the upgrade changes nothing",
                 "systemd-analyze verify", "config check"):
        assert must in names, must
    assert proc.returncode == 0, proc.stdout[-3000:]
    # Nothing left mounted under the test's folder.
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read()
