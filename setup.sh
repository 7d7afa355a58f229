#!/usr/bin/env bash
# Set up everything `instrument` needs on Debian 12 / Raspberry Pi OS (bookworm), idempotently:
# system packages (apt, only when one is missing), a .venv with the package installed editable.
#
#   ./setup.sh          what `instrument run` needs
#   ./setup.sh --test   also what the test suite needs (pytest, jackd2, liblo-tools, sox)
#
# Environment: PYTHON=/path/to/python3 picks the interpreter for .venv (default: python3 on PATH).
# The pip step is skipped when pyproject.toml has not changed since the last successful run, so
# `./setup.sh && .venv/bin/instrument run ...` works offline once set up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

want_test=0
for arg in "$@"; do
    case "$arg" in
        --test) want_test=1 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg' (use --test, or no option)" >&2; exit 2 ;;
    esac
done

say() { printf 'setup: %s\n' "$*"; }

# --- system packages -------------------------------------------------------------------------
packages=(python3 python3-venv python3-dev gcc libportaudio2 libasound2-dev libjack-jackd2-dev)
if [ "$want_test" = 1 ]; then
    packages+=(jackd2 liblo-tools sox)
fi

installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'; }

missing=()
for p in "${packages[@]}"; do
    installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup.sh: missing system packages (${missing[*]}) and no apt-get: this script is for Debian 12 / Raspberry Pi OS" >&2
        exit 1
    fi
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "setup.sh: need root (or sudo) to install: ${missing[*]}" >&2
            exit 1
        fi
        sudo=(sudo)
    fi
    say "installing system packages: ${missing[*]}"
    # jackd2 asks whether to enable real-time limits for the audio group; answer no so it never
    # prompts (deploy/limits.conf and the systemd unit handle real-time on an appliance).
    echo "jackd2 jackd/tweak_rt_limits boolean false" | ${sudo[@]+"${sudo[@]}"} debconf-set-selections
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    say "system packages present"
fi

# --- python virtual environment --------------------------------------------------------------
python=${PYTHON:-python3}
version_ok='import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'

if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup.sh: $python not found" >&2
    exit 1
fi
if ! "$python" -c "$version_ok"; then
    echo "setup.sh: instrument needs Python >= 3.11, but $python is $("$python" -c 'import platform; print(platform.python_version())')" >&2
    exit 1
fi

if [ -x .venv/bin/python ] && ! .venv/bin/python -c "$version_ok" 2>/dev/null; then
    say "existing .venv is broken or older than Python 3.11; recreating it"
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $("$python" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    "$python" -m venv .venv
fi

# Skip pip when nothing it depends on changed since the last successful install.
extras=""
[ "$want_test" = 1 ] && extras="[test]"
stamp=.venv/.instrument-setup
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1) $(.venv/bin/python -c 'import sys; print(sys.version.split()[0])')"
have=""
[ -f "$stamp" ] && have=$(cat "$stamp")
if [ -x .venv/bin/instrument ] && { [ "$have" = "$wanted test" ] || [ "$have" = "$wanted $extras" ]; }; then
    say "python packages up to date (.venv)"
else
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
    say "upgrading pip"
    .venv/bin/python -m pip install -q --upgrade pip
    say "installing instrument${extras} (editable) into .venv"
    .venv/bin/python -m pip install -q -e ".${extras}"
    if [ "$want_test" = 1 ]; then
        echo "$wanted test" > "$stamp"
    else
        echo "$wanted " > "$stamp"
    fi
fi
if [ "$want_test" != 1 ]; then
    # The first start compiles the DSP code for this machine (a minute here, more on a Pi);
    # do it now, once, so the instrument starts in under a second afterwards.
    say "preparing the DSP code (cached; the first time takes a minute or more)"
    .venv/bin/instrument check presets/*.toml >/dev/null
    .venv/bin/instrument cache --warm presets/*.toml >/dev/null
fi
say "ready: .venv/bin/instrument"
