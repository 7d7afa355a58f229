#!/usr/bin/env bash
# Install (or update) the instrument appliance on Raspberry Pi OS bookworm / Debian 12, as root.
# Idempotent: run it again after every update; it only changes what differs.
#
#   sudo deploy/install.sh                 install / update, enable and start the service
#   sudo deploy/install.sh --tune          also: CPU governor performance, Wi-Fi power saving off
#   sudo deploy/install.sh --tune --isolcpus 3
#                                          also: keep CPU 3 for the audio process (cpu = 3)
#   sudo deploy/install.sh --uninstall [--purge]
#
# Options:
#   --prefix DIR   where the code lives (default /opt/instrument; this checkout is copied there
#                  when it is somewhere else)
#   --tune         CPU governor "performance" at every boot (a oneshot unit,
#                  instrument-cpu-performance.service); Wi-Fi power saving off (a NetworkManager
#                  conf.d file, or without NetworkManager a oneshot unit running `iw`)
#   --isolcpus N   isolcpus=N on the kernel command line (/boot/firmware/cmdline.txt, else
#                  /boot/cmdline.txt; reboot to apply) and cpu = N in the configuration
#   --uninstall    stop and disable the service, remove its unit, limits and tuning; keeps
#                  /etc/instrument, /var/lib/instrument (state), /var/cache/instrument and the user
#   --purge        with --uninstall: also remove those and the user (never the code in --prefix)
#   --dry-run      print every file it would write and every command it would run; change nothing
#   --root DIR     write every file under DIR instead of / (for tests and images); commands
#                  (apt, useradd, setup.sh, systemctl) are printed, not run
#
# What it does: copies the checkout to --prefix; creates the system user "instrument" (group
# audio, home /var/lib/instrument, no login); runs ./setup.sh (Debian packages, .venv);
# compiles the DSP code into /var/cache/instrument (where the service looks), so the first boot
# starts in about a second; installs deploy/instrument.service, deploy/limits.conf and
# /etc/instrument/instrument.toml (from deploy/instrument.toml, never overwritten); enables and
# starts the service when systemd runs (PID 1).
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=/opt/instrument
ROOT=""
DRY=0
TUNE=0
ISOL=""
UNINSTALL=0
PURGE=0

UNIT=/etc/systemd/system/instrument.service
LIMITS=/etc/security/limits.d/95-instrument-audio.conf
CONFIG_DIR=/etc/instrument
CONFIG=$CONFIG_DIR/instrument.toml
STATE=/var/lib/instrument
CACHE=/var/cache/instrument
GOV_UNIT=/etc/systemd/system/instrument-cpu-performance.service
WIFI_UNIT=/etc/systemd/system/instrument-wifi-powersave.service
WIFI_NM=/etc/NetworkManager/conf.d/99-instrument-wifi-powersave.conf
USER_NAME=instrument

die() { printf 'install.sh: %s\n' "$*" >&2; exit 2; }
say() { printf 'install: %s\n' "$*"; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; PREFIX=$2; shift ;;
        --prefix=*) PREFIX=${1#*=} ;;
        --root) [ $# -ge 2 ] || die "--root needs a folder"; ROOT=$2; shift ;;
        --root=*) ROOT=${1#*=} ;;
        --isolcpus) [ $# -ge 2 ] || die "--isolcpus needs a CPU number"; ISOL=$2; shift ;;
        --isolcpus=*) ISOL=${1#*=} ;;
        --tune) TUNE=1 ;;
        --uninstall) UNINSTALL=1 ;;
        --purge) PURGE=1 ;;
        --dry-run|-n) DRY=1 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done

case "$PREFIX" in /*) PREFIX=${PREFIX%/} ;; *) die "--prefix must be an absolute path, not '$PREFIX'" ;; esac
[ -n "$PREFIX" ] || die "--prefix cannot be /"
if [ -n "$ROOT" ]; then
    case "$ROOT" in /*) ;; *) ROOT=$(pwd)/$ROOT ;; esac
    ROOT=${ROOT%/}
    [ -d "$ROOT" ] || die "--root $ROOT is not a folder (create it first)"
fi
if [ -n "$ISOL" ]; then
    case "$ISOL" in ''|*[!0-9]*) die "--isolcpus takes one CPU number, like --isolcpus 3, not '$ISOL'" ;; esac
    cpus=$(getconf _NPROCESSORS_CONF 2>/dev/null || echo 0)
    if [ -z "$ROOT" ] && [ "$cpus" -gt 0 ] && [ "$ISOL" -ge "$cpus" ]; then
        die "--isolcpus $ISOL: this machine has CPUs 0 to $((cpus - 1))"
    fi
    [ "$ISOL" != 0 ] || die "--isolcpus 0: keep CPU 0 for the system; use another, like the last one"
fi
[ "$PURGE" = 0 ] || [ "$UNINSTALL" = 1 ] || die "--purge only goes with --uninstall"
if [ "$DRY" = 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root: sudo $0 $*  (or --dry-run to see what it would do)"
fi

# Commands are printed instead of run with --dry-run and with --root (the machine itself is
# not the target then). Files go under $ROOT, or are only named with --dry-run.
simulate() { [ "$DRY" = 1 ] || [ -n "$ROOT" ]; }
systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }
CHANGED=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

run() {
    if simulate; then
        say "would run: $*"
    else
        say "run: $*"
        "$@"
    fi
}

# run_sh DIR SCRIPT: a shell command line in DIR (printed as it is, globs and all).
run_sh() {
    if simulate; then
        say "would run: cd $1 && $2"
    else
        say "run: cd $1 && $2"
        (cd "$1" && bash -c "$2")
    fi
}

mode_of() { stat -c %a "$1" 2>/dev/null || echo none; }

# put_file FROM TARGET MODE [ORIGIN]: install FROM as $ROOT/TARGET unless it is the same.
put_file() {
    local from=$1 target=$2 mode=$3 dest=$ROOT$2 origin=${4:-$1}
    if [ -f "$dest" ] && cmp -s "$from" "$dest" && [ "$(mode_of "$dest")" = "$mode" ]; then
        say "unchanged: $target"
    elif [ "$DRY" = 1 ]; then
        say "would write: $target (from $origin, mode $mode)"
    else
        install -D -m "$mode" "$from" "$dest"
        say "wrote: $target (from $origin, mode $mode)"
        CHANGED=1
    fi
}

# put_text TARGET MODE < TEXT
put_text() {
    local tmp
    tmp=$(mktemp "$TMP/text.XXXXXX")
    cat > "$tmp"
    put_file "$tmp" "$1" "$2" "install.sh"
}

make_dir() {
    local target=$1 mode=$2 dest=$ROOT$1
    if [ -d "$dest" ]; then
        say "exists: $target/"
    elif [ "$DRY" = 1 ]; then
        say "would create: $target/ (mode $mode)"
    else
        install -d -m "$mode" "$dest"
        say "created: $target/ (mode $mode)"
        CHANGED=1
    fi
}

remove() {
    local target=$1 dest=$ROOT$1
    if [ ! -e "$dest" ] && [ ! -L "$dest" ]; then
        return 0
    elif [ "$DRY" = 1 ]; then
        say "would remove: $target"
    else
        rm -rf -- "$dest"
        say "removed: $target"
        CHANGED=1
    fi
}

# The shipped file with the code's place filled in (it says /opt/instrument).
with_prefix() { sed "s|/opt/instrument|$PREFIX|g" "$1"; }

# --- the code ----------------------------------------------------------------------------------
copy_checkout() {
    local dest=$ROOT$PREFIX
    if [ -z "$ROOT" ] && [ -d "$PREFIX" ] && [ "$(cd "$PREFIX" && pwd -P)" = "$(cd "$SRC" && pwd -P)" ]; then
        say "code: using this checkout, $PREFIX"
        return 0
    fi
    if [ "$DRY" = 1 ]; then
        say "would copy: $SRC/ -> $PREFIX/ (without .git, .venv, caches)"
        return 0
    fi
    mkdir -p "$dest"
    local n=0
    if command -v rsync >/dev/null 2>&1; then
        n=$(rsync -a --delete --itemize-changes --exclude=/.git --exclude=/.venv \
            --exclude='/.cache*' --exclude=/.pytest_cache --exclude=__pycache__ \
            --exclude='*.egg-info' "$SRC/" "$dest/" | grep -c '^[<>ch*]' || true)
    else  # no rsync: copy the files that differ (files deleted in the checkout stay)
        local f
        while IFS= read -r -d '' f; do
            if ! cmp -s "$SRC/$f" "$dest/$f"; then
                mkdir -p "$(dirname "$dest/$f")"
                cp -P -p "$SRC/$f" "$dest/$f"
                n=$((n + 1))
            fi
        done < <(cd "$SRC" && find . \( -path ./.git -o -path ./.venv -o -path './.cache*' \
                 -o -name .pytest_cache -o -name __pycache__ -o -name '*.egg-info' \) -prune \
                 -o \( -type f -o -type l \) -print0)
    fi
    if [ "$n" -gt 0 ]; then
        say "code: copied $SRC -> $PREFIX ($n changes)"
        CHANGED=1
    else
        say "code: $PREFIX is up to date with $SRC"
    fi
}

create_user() {
    if simulate; then
        say "would run: getent group audio || groupadd --system audio"
        say "would run: id $USER_NAME || useradd --system --user-group --groups audio --home-dir $STATE --no-create-home --shell /usr/sbin/nologin $USER_NAME"
        say "would run: usermod -a -G audio $USER_NAME   (when not in audio yet)"
        return 0
    fi
    getent group audio >/dev/null || run groupadd --system audio
    if id "$USER_NAME" >/dev/null 2>&1; then
        if id -nG "$USER_NAME" | tr ' ' '\n' | grep -qx audio; then
            say "user: $USER_NAME exists, in group audio"
        else
            run usermod -a -G audio "$USER_NAME"
        fi
    else
        run useradd --system --user-group --groups audio --home-dir "$STATE" --no-create-home \
            --shell /usr/sbin/nologin "$USER_NAME"
    fi
}

owned() {  # owned DIR: the service user owns DIR (recursively)
    run chown -R "$USER_NAME:$USER_NAME" "$1"
}

# --- configuration ------------------------------------------------------------------------------
# set_cpu FILE N: FILE with `cpu = N` (replacing a `cpu =` line, or the commented example).
set_cpu() {
    if grep -Eq '^[[:space:]]*cpu[[:space:]]*=' "$1"; then
        sed -E "s/^[[:space:]]*cpu[[:space:]]*=.*/cpu = $2/" "$1"
    elif grep -Eq '^#[[:space:]]*cpu[[:space:]]*=' "$1"; then
        sed -E "0,/^#[[:space:]]*cpu[[:space:]]*=.*/s//cpu = $2/" "$1"
    else
        cat "$1"
        printf 'cpu = %s\n' "$2"
    fi
}

install_config() {
    make_dir "$CONFIG_DIR" 755
    local dest=$ROOT$CONFIG wanted=$TMP/instrument.toml
    if [ -f "$dest" ]; then
        if [ -n "$ISOL" ]; then
            set_cpu "$dest" "$ISOL" > "$wanted"
            put_file "$wanted" "$CONFIG" "$(mode_of "$dest")" "yours, with cpu = $ISOL"
        else
            say "kept: $CONFIG (yours; new options are listed in $PREFIX/deploy/instrument.toml)"
        fi
        return 0
    fi
    with_prefix "$SRC/deploy/instrument.toml" > "$wanted"
    if [ -n "$ISOL" ]; then
        set_cpu "$wanted" "$ISOL" > "$wanted.cpu"
        mv "$wanted.cpu" "$wanted"
    fi
    put_file "$wanted" "$CONFIG" 644 "$SRC/deploy/instrument.toml"
}

# --- tuning -------------------------------------------------------------------------------------
install_tuning() {
    put_text "$GOV_UNIT" 644 <<'EOF'
# Written by instrument's deploy/install.sh --tune: the CPU governor "performance" at every boot
# (after raspi-config's own setting), so the clock does not drop between notes and the audio
# callback does not miss its deadline while it climbs again. Remove with install.sh --uninstall.
[Unit]
Description=CPU governor performance for instrument
After=raspi-config.service systemd-modules-load.service
Before=instrument.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for g in /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor; do [ -w "$$g" ] && echo performance > "$$g"; done; true'

[Install]
WantedBy=multi-user.target
EOF
    TUNE_UNITS=(instrument-cpu-performance.service)
    if [ -d "$ROOT/etc/NetworkManager" ]; then
        put_text "$WIFI_NM" 644 <<'EOF'
# Written by instrument's deploy/install.sh --tune: Wi-Fi power saving off (2 = disable), so
# OSC from a tablet is not held back while the radio sleeps. Applies from the next connection.
[connection]
wifi.powersave = 2
EOF
        remove "$WIFI_UNIT"
    else
        put_text "$WIFI_UNIT" 644 <<'EOF'
# Written by instrument's deploy/install.sh --tune (no NetworkManager here): Wi-Fi power saving
# off on every wireless interface with `iw`, so OSC from a tablet is not held back.
[Unit]
Description=Wi-Fi power saving off for instrument
After=network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for n in $$(ls /sys/class/net); do [ -d /sys/class/net/$$n/wireless ] && iw dev $$n set power_save off; done; true'

[Install]
WantedBy=multi-user.target
EOF
        TUNE_UNITS+=(instrument-wifi-powersave.service)
        if ! simulate && ! command -v iw >/dev/null 2>&1; then
            run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iw
        elif simulate; then
            say "would run: apt-get install -y iw   (when iw is missing)"
        fi
    fi
}

cmdline_file() {
    if [ -f "$ROOT/boot/firmware/cmdline.txt" ]; then
        echo /boot/firmware/cmdline.txt
    elif [ -f "$ROOT/boot/cmdline.txt" ]; then
        echo /boot/cmdline.txt
    fi
}

install_isolcpus() {
    local target line word out=()
    target=$(cmdline_file)
    if [ -z "$target" ]; then
        say "warning: no /boot/firmware/cmdline.txt or /boot/cmdline.txt (not a Raspberry Pi?): add isolcpus=$ISOL to the kernel command line yourself"
        return 0
    fi
    line=$(head -n 1 "$ROOT$target")
    for word in $line; do
        case "$word" in isolcpus=*) ;; *) out+=("$word") ;; esac
    done
    out+=("isolcpus=$ISOL")
    printf '%s\n' "${out[*]}" > "$TMP/cmdline.txt"
    local before=$CHANGED
    put_file "$TMP/cmdline.txt" "$target" "$(mode_of "$ROOT$target")" "the one there, isolcpus=$ISOL added"
    [ "$CHANGED" = "$before" ] || say "reboot for isolcpus=$ISOL to take effect"
}

# --- systemd ------------------------------------------------------------------------------------
systemd_enable() {
    local units=("$@")
    if systemd_running || simulate; then
        run systemctl daemon-reload
        run systemctl enable --now "${units[@]}"
        if [ "$CHANGED" = 1 ]; then
            run systemctl try-restart instrument.service
        fi
    elif command -v systemctl >/dev/null 2>&1; then
        say "systemd is not running here (not PID 1): no daemon-reload, not started; enabling for the next boot"
        run systemctl enable "${units[@]}"
    else
        say "systemd is not running here (not PID 1) and there is no systemctl: start it yourself with $PREFIX/.venv/bin/instrument run --config $CONFIG"
    fi
}

# --- main ---------------------------------------------------------------------------------------
env_cache="INSTRUMENT_CACHE_DIR=$CACHE NUMBA_CACHE_DIR=$CACHE/numba"
[ -n "$ROOT" ] && say "files under $ROOT (commands are printed, not run)"
[ "$DRY" = 1 ] && say "dry run: nothing is changed"

if [ "$UNINSTALL" = 1 ]; then
    if systemd_running || simulate; then
        run systemctl disable --now instrument.service instrument-cpu-performance.service \
            instrument-wifi-powersave.service
    elif command -v systemctl >/dev/null 2>&1; then
        run systemctl disable instrument.service instrument-cpu-performance.service \
            instrument-wifi-powersave.service
    fi
    for f in "$UNIT" "$LIMITS" "$GOV_UNIT" "$WIFI_UNIT" "$WIFI_NM"; do remove "$f"; done
    if systemd_running || simulate; then run systemctl daemon-reload; fi
    target=$(cmdline_file)
    if [ -n "$target" ] && grep -q 'isolcpus=' "$ROOT$target"; then
        say "kept: isolcpus= in $target (remove it there by hand if you want that CPU back)"
    fi
    if [ "$PURGE" = 1 ]; then
        for d in "$CONFIG_DIR" "$STATE" "$CACHE"; do remove "$d"; done
        if simulate; then
            say "would run: userdel $USER_NAME"
        elif id "$USER_NAME" >/dev/null 2>&1; then
            run userdel "$USER_NAME"
        fi
        say "kept: the code in $PREFIX (remove it by hand)"
    else
        say "kept: $CONFIG_DIR, $STATE (saved state), $CACHE, the user $USER_NAME and $PREFIX (--purge removes all but the code)"
    fi
    say "uninstalled"
    exit 0
fi

copy_checkout
create_user
make_dir "$STATE" 750
make_dir "$CACHE" 755
# setup.sh: Debian packages and .venv; its DSP warm-up goes to the service's cache folder.
run_sh "$PREFIX" "env $env_cache ./setup.sh"
# The DSP code for this machine, compiled now into the folder the service uses: the first boot
# starts in about a second instead of compiling for minutes (a no-op when setup.sh just did it).
run_sh "$PREFIX" "env $env_cache .venv/bin/instrument check presets/*.toml"
run_sh "$PREFIX" "env $env_cache .venv/bin/instrument cache --warm presets/*.toml"
# numba's cache is kept per code version (instrument/cache_folder.py): drop the old versions'.
run_sh "$PREFIX" "env $env_cache .venv/bin/instrument cache --prune"
owned "$CACHE"
owned "$STATE"
with_prefix "$SRC/deploy/instrument.service" > "$TMP/instrument.service"
put_file "$TMP/instrument.service" "$UNIT" 644 "$SRC/deploy/instrument.service"
put_file "$SRC/deploy/limits.conf" "$LIMITS" 644
install_config
UNITS=(instrument.service)
TUNE_UNITS=()
if [ "$TUNE" = 1 ]; then
    install_tuning
    UNITS+=("${TUNE_UNITS[@]}")
fi
[ -n "$ISOL" ] && install_isolcpus
systemd_enable "${UNITS[@]}"
say "done: check with  $PREFIX/.venv/bin/instrument doctor --config $CONFIG ;  logs: journalctl -u instrument -f"
