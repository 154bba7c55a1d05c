#!/usr/bin/env bash
# Set up checkpoint-kiosk.
#
#   systemd/install.sh --dev     a development/demo environment in ./.venv of this checkout
#                                (system packages, virtualenv, the package with test extras)
#
# Idempotent: system packages are only installed when missing, the virtualenv is reused.
# Runs as root or through sudo for the apt step only.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=""
dry_run=0

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dev) mode=dev ;;
        --dry-run) dry_run=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ -n $mode ]] || { usage >&2; exit 2; }

run() {
    if [[ $dry_run == 1 ]]; then echo "+ $*"; else "$@"; fi
}

as_root() {
    if [[ $(id -u) == 0 ]]; then run "$@"; else run sudo "$@"; fi
}

# Install the Debian packages that are not installed yet (one apt transaction).
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "install.sh: installing system packages: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}"
    fi
}

dev_setup() {
    # libzbar0: the pyzbar backend; libsystemd-dev + pkg-config + gcc: systemd-python builds
    # from source; fonts: the UI bundles its own, DejaVu is the fallback for tests.
    apt_install python3 python3-venv python3-dev gcc pkg-config libzbar0 libsystemd-dev \
        fonts-dejavu-core shellcheck
    local venv="$here/.venv"
    if [[ ! -x $venv/bin/python ]]; then
        run python3 -m venv "$venv"
    fi
    run "$venv/bin/python" -m pip install -q --upgrade pip
    run "$venv/bin/python" -m pip install -q -e "$here[test,v4l2,systemd]"
}

case "$mode" in
    dev) dev_setup ;;
esac
