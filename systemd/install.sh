#!/usr/bin/env bash
# Set up checkpoint-kiosk.
#
#   systemd/install.sh --dev     a development/demo environment in ./.venv of this checkout
#                                (system packages, virtualenv, the package with the test,
#                                v4l2, systemd and central extras)
#   systemd/install.sh --appliance [--hardware-watchdog] [--root DIR] [--dry-run]
#                                turn Raspberry Pi OS Bookworm Lite into a kiosk (as root)
#
# Before apt runs it prints what it will install and which installed packages it upgrades
# (systemd, PID 1, named loudly); a -dev package is asked for at the version of the runtime
# library already installed, so libsystemd-dev does not upgrade systemd as a side effect.
# Idempotent: packages only when missing, files only when different, the virtualenv reused;
# an upgrade (run again from a newer checkout) keeps /etc/checkpoint-kiosk and the data.
# --dry-run prints what would change; --root DIR writes files under DIR and runs nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=""
dry_run=0
root=""
hw_watchdog=0
changed=0

usage() {
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

parse_args() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --dev) mode=dev ;;
            --appliance) mode=appliance ;;
            --hardware-watchdog) hw_watchdog=1 ;;
            --root) root=${2:?--root needs a folder}; shift ;;
            --root=*) root=${1#--root=} ;;
            --dry-run) dry_run=1 ;;
            -h|--help) usage; exit 0 ;;
            *) echo "install.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
        esac
        shift
    done
    [[ -n $mode ]] || { usage >&2; exit 2; }
}

run() {
    if [[ $dry_run == 1 ]]; then echo "+ $*"; else "$@"; fi
}

# System commands (apt, useradd, systemctl): printed, not run, under --root.
sys_run() {
    if [[ -n $root ]]; then echo "+ (root=$root, not run) $*"; else as_root "$@"; fi
}

as_root() {
    if [[ $(id -u) == 0 ]]; then run "$@"; else run sudo "$@"; fi
}

apt_updated=0
apt_update() {
    [[ $apt_updated == 1 ]] && return 0
    as_root apt-get update -qq
    apt_updated=1
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# A -dev package depends on its runtime library at exactly its own version, so installing
# the newest libsystemd-dev upgrades libsystemd0 and with it systemd, the running init
# (PID 1), as a side effect.  Ask for the -dev version that matches the library already
# installed, when the archive still has it (lists: "dev:runtime").
DEV_RUNTIME=(libsystemd-dev:libsystemd0 libudev-dev:libudev1)

# Print each package of "$@" on its own line, pinned (pkg=version) where DEV_RUNTIME says.
match_installed_runtime() {
    local pkg pair lib have
    for pkg in "$@"; do
        for pair in "${DEV_RUNTIME[@]}"; do
            lib=${pair#*:}
            [[ $pkg == "${pair%%:*}" ]] || continue
            if installed "$lib"; then
                have=$(dpkg-query -W -f='${Version}' "$lib" 2>/dev/null || true)
                if [[ -n $have ]] && apt-cache show "$pkg=$have" >/dev/null 2>&1; then
                    pkg="$pkg=$have"
                fi
            fi
            break
        done
        echo "$pkg"
    done
}

joined() {
    local out="" item
    for item in "$@"; do out+="${out:+, }$item"; done
    printf '%s' "$out"
}

# systemd and the libraries it is built with: upgrading one upgrades PID 1.
PID1_PACKAGES=" systemd systemd-sysv libsystemd0 libsystemd-shared udev libudev1 "

# Read 'apt-get -s install' output on stdin and say what it would do: new packages,
# installed packages it would change (systemd named loudly), packages it would remove.
# Returns 1 when apt would remove packages: that is never done as a side effect.
apt_plan() {
    local line name new=() changes=() pid1=() removals=()
    local change='^Inst ([^ ]+) \[([^]]+)\] \(([^ ]+)' add='^Inst ([^ ]+) \(([^ ]+)'
    local remove='^Remv ([^ ]+)'
    while IFS= read -r line; do
        if [[ $line =~ $change ]]; then
            name=${BASH_REMATCH[1]}
            changes+=("$name ${BASH_REMATCH[2]} -> ${BASH_REMATCH[3]}")
            if [[ $PID1_PACKAGES == *" ${name%%:*} "* ]]; then pid1+=("${name%%:*}"); fi
        elif [[ $line =~ $add ]]; then
            new+=("${BASH_REMATCH[1]} ${BASH_REMATCH[2]}")
        elif [[ $line =~ $remove ]]; then
            removals+=("${BASH_REMATCH[1]}")
        fi
    done
    if [[ ${#new[@]} -gt 0 ]]; then
        echo "install.sh: apt will install ${#new[@]} new package(s): $(joined "${new[@]}")"
    fi
    if [[ ${#changes[@]} -gt 0 ]]; then
        echo "install.sh: apt will UPGRADE ${#changes[@]} installed package(s):" \
             "$(joined "${changes[@]}")"
    fi
    if [[ ${#pid1[@]} -gt 0 ]]; then
        echo "install.sh: WARNING: this upgrades systemd, the running init (PID 1):" \
             "$(joined "${pid1[@]}"); it re-executes itself in place; reboot when convenient"
    fi
    if [[ ${#removals[@]} -gt 0 ]]; then
        echo "install.sh: apt would REMOVE $(joined "${removals[@]}"); not done as a side" \
             "effect: install the packages by hand (apt-get install) and run install.sh again" >&2
        return 1
    fi
    return 0
}

# Install the Debian packages that are not installed yet (one apt transaction), saying
# first what apt will install and upgrade (a simulation, which needs no root).
apt_install() {
    local missing=() wanted=() pkg sim
    for pkg in "$@"; do
        installed "$pkg" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -gt 0 ]] || return 0
    apt_update
    mapfile -t wanted < <(match_installed_runtime "${missing[@]}")
    echo "install.sh: installing system packages: ${wanted[*]}"
    if ! sim=$(LC_ALL=C apt-get -s install --no-install-recommends "${wanted[@]}" 2>&1); then
        printf '%s\n' "$sim" >&2
        echo "install.sh: apt cannot install ${wanted[*]} (see above)" >&2
        exit 1
    fi
    apt_plan <<<"$sim" || exit 1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${wanted[@]}"
    changed=1
}

# The central's tests start their own PostgreSQL in a temporary folder (tests/pgserver.py):
# they need the server binaries (/usr/lib/postgresql/*/bin), not the system's cluster.  On
# a first install, a drop-in tells Debian's postgresql-common not to create (and start)
# the "main" cluster; a machine that has PostgreSQL already is left as it is.
PG_NO_CLUSTER=/etc/postgresql-common/createcluster.d/checkpoint-kiosk-dev.conf
postgres_server_binaries() {
    if ! installed postgresql-common && [[ ! -e $PG_NO_CLUSTER ]]; then
        echo "install.sh: $PG_NO_CLUSTER: no 'main' cluster for the dev install"
        as_root mkdir -p "$(dirname "$PG_NO_CLUSTER")"
        printf '# checkpoint-kiosk dev install: tests run their own server\ncreate_main_cluster = false\n' \
            | as_root tee "$PG_NO_CLUSTER" >/dev/null
    fi
    apt_install postgresql
}

dev_setup() {
    # libzbar0: the pyzbar backend; libsystemd-dev + pkg-config + gcc: systemd-python builds
    # from source; fonts: the UI bundles its own, DejaVu is the fallback for tests.
    apt_install python3 python3-venv python3-dev gcc pkg-config libzbar0 libsystemd-dev \
        fonts-dejavu-core shellcheck
    postgres_server_binaries
    # The dashboard's browser test (tests/test_dashboard_browser.py): headless Chromium
    # driven by Selenium through chromedriver.
    apt_install chromium chromium-driver
    local venv="$here/.venv"
    if [[ ! -x $venv/bin/python ]]; then
        run python3 -m venv "$venv"
    fi
    run "$venv/bin/python" -m pip install -q --upgrade pip
    run "$venv/bin/python" -m pip install -q -e "${here}[test,v4l2,systemd,central]"
}

# ---- appliance -------------------------------------------------------------------------

APP=/opt/checkpoint-kiosk
ETC=/etc/checkpoint-kiosk
UNIT=checkpoint-kiosk.service
# input: a keyboard-mode scanner (evdev); dialout: a USB COM scanner (/dev/ttyACM*).
KIOSK_GROUPS=(video render input gpio dialout)

# Install $1 as $2 with mode $3 when missing or different; sets changed=1 when it does.
put() {
    local src=$1 dest=$root$2 mode=$3
    if [[ -f $dest ]] && cmp -s "$src" "$dest"; then
        return 0
    fi
    echo "install.sh: ${dest#"$root"} $([[ -f $dest ]] && echo updated || echo added)"
    run install -D -m "$mode" "$src" "$dest"
    changed=1
}

# Create the file $1 with mode $2 (and group $3, not under --root) from stdin only if it
# does not exist (config: never overwritten).
put_once() {
    local dest=$root$1 mode=$2 group=${3:-} tmp
    tmp=$(mktemp)
    cat >"$tmp"
    if [[ -e $dest ]]; then
        rm -f "$tmp"
        return 0
    fi
    echo "install.sh: ${dest#"$root"} created"
    run install -D -m "$mode" "$tmp" "$dest"
    if [[ -n $group && -z $root ]]; then
        run chgrp "$group" "$dest"
    fi
    rm -f "$tmp"
    changed=1
}

appliance_packages() {
    # KMSDRM pygame: Debian's python3-pygame uses the system SDL2, built with the kmsdrm
    # driver (the PyPI wheel's bundled SDL is not).  picamera2, numpy, gpiozero/lgpio and
    # systemd-python also come from apt and are seen through --system-site-packages, so
    # picamera2 runs against the numpy it was built for.
    local pkgs=(python3 python3-venv python3-pip python3-pygame python3-numpy python3-pil
                python3-gpiozero python3-systemd python3-requests python3-click
                python3-serial python3-evdev
                libzbar0 fonts-noto-core fonts-dejavu-core)
    # Only in Raspberry Pi OS's archive (Debian has none of them): the camera stack and the
    # lgpio pin backend.  Without them the kiosk needs a USB camera and gpiozero falls back.
    local pi_only=(python3-picamera2 python3-libcamera python3-lgpio) pkg absent=()
    if [[ -n $root ]]; then
        echo "+ (root=$root, not run) apt-get install ${pkgs[*]} ${pi_only[*]} (those the archive has)"
        return 0
    fi
    # Images ship with empty package lists: refresh them before asking whether the Pi-only
    # packages exist.  Otherwise only when a package must be installed (apt_install), so a
    # re-run on a system without the Pi-only packages does not touch the lists.
    if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
        apt_update
    fi
    for pkg in "${pi_only[@]}"; do
        if installed "$pkg" || apt-cache show "$pkg" >/dev/null 2>&1; then
            pkgs+=("$pkg")
        else
            absent+=("$pkg")
        fi
    done
    if [[ ${#absent[@]} -gt 0 ]]; then
        echo "install.sh: not in this system's archive (not Raspberry Pi OS?), skipped: ${absent[*]};" \
             "use camera.spec = v4l2:/dev/video0 or replay:PATH"
    fi
    apt_install "${pkgs[@]}"
}

appliance_user() {
    local g
    if [[ -n $root ]]; then
        echo "+ (root=$root, not run) user kiosk, groups ${KIOSK_GROUPS[*]}"
        return 0
    fi
    for g in "${KIOSK_GROUPS[@]}"; do
        getent group "$g" >/dev/null 2>&1 || { sys_run groupadd --system "$g"; changed=1; }
    done
    if ! getent passwd kiosk >/dev/null 2>&1; then
        sys_run useradd --system --home-dir /var/lib/checkpoint-kiosk --no-create-home \
            --shell /usr/sbin/nologin --user-group --groups "$(IFS=,; echo "${KIOSK_GROUPS[*]}")" kiosk
        changed=1
    else
        local have
        have=" $(id -nG kiosk) "
        for g in "${KIOSK_GROUPS[@]}"; do
            [[ $have == *" $g "* ]] || { sys_run usermod -a -G "$g" kiosk; changed=1; }
        done
    fi
}

appliance_venv() {
    local venv=$root$APP/venv
    if [[ ! -x $venv/bin/python ]]; then
        if [[ -n $root ]]; then
            echo "+ (root=$root, not run) python3 -m venv --system-site-packages $APP/venv"
            return 0
        fi
        run python3 -m venv --system-site-packages "$venv"
        changed=1
    fi
    [[ -n $root ]] && return 0
    # Same version installed already: nothing to do (pip would still rebuild a local path).
    local want have
    want=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$here/kiosk/__init__.py")
    # -I: the installed distribution, never the checkout's kiosk/ in the current directory
    # (run from the checkout, a plain 'import kiosk' found that and pip never ran).
    have=$("$venv/bin/python" -I -c \
        'import importlib.metadata as m; print(m.version("checkpoint-kiosk"))' 2>/dev/null || true)
    if [[ $want != "$have" || ${CHECKPOINT_KIOSK_REINSTALL:-0} == 1 ]]; then
        run "$venv/bin/python" -m pip install -q --upgrade "$here"
        changed=1
    fi
}

appliance_files() {
    put "$here/systemd/checkpoint-kiosk.service" /etc/systemd/system/$UNIT 0644
    put "$here/systemd/checkpoint-kiosk-provision.service" \
        /etc/systemd/system/checkpoint-kiosk-provision.service 0644
    put "$here/systemd/checkpoint-kiosk-provision.path" \
        /etc/systemd/system/checkpoint-kiosk-provision.path 0644
    put "$here/systemd/journald.conf.d/checkpoint-kiosk.conf" \
        /etc/systemd/journald.conf.d/checkpoint-kiosk.conf 0644
    put "$here/systemd/99-checkpoint-kiosk-usb.rules" /etc/udev/rules.d/99-checkpoint-kiosk-usb.rules 0644
    put "$here/docs/appliance.md" $APP/docs/appliance.md 0644
    if [[ $hw_watchdog == 1 ]]; then
        put "$here/systemd/system.conf.d/checkpoint-kiosk-hardware-watchdog.conf" \
            /etc/systemd/system.conf.d/checkpoint-kiosk-hardware-watchdog.conf 0644
    fi
    # Config: written once, never overwritten by an upgrade (provisioning owns it later).
    # Ownership is set on creation only: provisioning later writes the config and the
    # device token as kiosk:kiosk 0600/0640, and an upgrade must leave them readable.
    if [[ ! -d $root$ETC ]]; then
        run install -d -m 0770 "$root$ETC"
        [[ -n $root ]] || run chown root:kiosk "$ETC"
        changed=1
    fi
    # -B: no root-owned __pycache__ left in the checkout.
    (cd "$here" && PYTHONPATH=$here python3 -B -c \
        'from kiosk.config import defaults_toml; print(defaults_toml(), end="")') \
        | put_once $ETC/kiosk.toml 0640 kiosk
}

appliance_console() {
    # Console blanking off: the kernel blanks the VT after 10 minutes of no keyboard input.
    local cmdline=$root/boot/firmware/cmdline.txt
    if [[ -f $cmdline ]] && ! grep -qw 'consoleblank=0' "$cmdline"; then
        echo "install.sh: ${cmdline#"$root"}: consoleblank=0"
        run sed -i '1 s/$/ consoleblank=0/' "$cmdline"
        changed=1
    fi
}

# systemd as PID 1 (the sd_booted(3) test).  Not in a chroot or an image build: there the
# units are enabled offline (systemctl only writes symlinks) and nothing is started.
systemd_running() {
    [[ -d /run/systemd/system ]]
}

appliance_enable() {
    local units=(checkpoint-kiosk.service checkpoint-kiosk-provision.service
                 checkpoint-kiosk-provision.path)
    local to_enable=() unit getty=0
    if [[ -n $root ]]; then
        # systemctl is not asked about a scratch root: print the whole step when files changed.
        if [[ $changed == 1 ]]; then to_enable=("${units[@]}"); getty=1; fi
    else
        # Enablement is state like the files: repaired even when no file changed.
        for unit in "${units[@]}"; do
            [[ $(systemctl is-enabled "$unit" 2>/dev/null) == enabled ]] || to_enable+=("$unit")
        done
        [[ $(systemctl is-enabled getty@tty1.service 2>/dev/null) == enabled ]] && getty=1
    fi
    if [[ $changed == 0 && ${#to_enable[@]} == 0 && $getty == 0 ]]; then
        echo "install.sh: nothing changed"
        return 0
    fi
    if [[ -n $root ]] || systemd_running; then
        sys_run systemctl daemon-reload
    fi
    # getty on tty1 would fight the kiosk for the screen.
    if [[ $getty == 1 ]]; then
        sys_run systemctl disable getty@tty1.service
    fi
    if [[ ${#to_enable[@]} -gt 0 ]]; then
        echo "install.sh: enabling ${to_enable[*]}"
        sys_run systemctl enable "${to_enable[@]}"
    fi
    if [[ $changed == 0 ]]; then
        return 0
    fi
    if [[ -z $root ]] && ! systemd_running; then
        echo "install.sh: systemd is not running (chroot or image build): units enabled," \
             "nothing started or restarted; the kiosk starts at the next boot"
        return 0
    fi
    sys_run udevadm control --reload
    sys_run systemctl restart systemd-journald.service
    # The .path unit watches for USB sticks from now on, not only after the next boot.
    sys_run systemctl start checkpoint-kiosk-provision.path
    sys_run systemctl restart $UNIT
}

appliance_setup() {
    if [[ -z $root && $dry_run == 0 && $(id -u) != 0 ]]; then
        echo "install.sh: --appliance must run as root (sudo systemd/install.sh --appliance)" >&2
        exit 1
    fi
    appliance_packages
    appliance_user
    appliance_venv
    appliance_files
    appliance_console
    appliance_enable
}

main() {
    parse_args "$@"
    case "$mode" in
        dev) dev_setup ;;
        appliance) appliance_setup ;;
    esac
}

# Sourced (the tests call single functions): define only.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
