#!/usr/bin/env bash
# Install p2pchat for development into .venv (idempotent; safe to run again).
#
#   bash scripts/install.sh                 # .venv + pip install -e '.[test]' + browser build
#   bash scripts/install.sh --with-system   # also apt packages the LAN/browser tests need
#
# Needs python3 (>= 3.11), node/npm (for the browser client) and, for --with-system,
# root and apt. Then: .venv/bin/p2pchat (run) or bash scripts/test.sh (tests).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV="$REPO/.venv"
STAMP="$VENV/.p2pchat-install-stamp"
# chromium, firefox-esr: browser tests; iproute2 (ip netns), nftables (nft), iputils-ping:
# LAN tests.
SYSTEM_PACKAGES=(chromium firefox-esr iproute2 nftables iputils-ping)

with_system=0
for arg in "$@"; do
    case "$arg" in
        --with-system) with_system=1 ;;
        -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "install: unknown option: $arg" >&2; exit 2 ;;
    esac
done

say() { echo "install: $*"; }
die() { echo "install: error: $*" >&2; exit 1; }

have_package() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'; }

# --- apt packages -----------------------------------------------------------------------
missing=()
if [ ! -x "$VENV/bin/python" ] && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)  # Debian splits venv/ensurepip out of python3
fi
if [ "$with_system" = 1 ]; then
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        have_package "$pkg" || missing+=("$pkg")
    done
fi
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    elif [[ " ${missing[*]} " == *" python3-venv "* ]]; then
        die "python3 cannot create a venv; as root run: apt-get install python3-venv"
    else
        say "warning: not root, not installing ${missing[*]} (LAN/browser tests will skip)"
    fi
elif [ "$with_system" = 1 ]; then
    say "system packages present (${SYSTEM_PACKAGES[*]})"
fi

# --- Python -----------------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 not found"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "python3 >= 3.11 needed"
if [ ! -x "$VENV/bin/python" ]; then
    say "creating .venv"
    python3 -m venv "$VENV"
fi
wanted=$(sha256sum <pyproject.toml | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ] \
    && "$VENV/bin/python" -c 'import p2pchat' >/dev/null 2>&1; then
    say "python packages up to date"
else
    say "pip install -e '.[test]' (quiet)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
    echo "$wanted" >"$STAMP"
fi

# --- browser client ---------------------------------------------------------------------
if [ -f browser/package.json ]; then
    command -v npm >/dev/null || die "npm not found (needed for browser/)"
    (
        cd browser
        if [ -f package-lock.json ]; then
            if [ ! -f node_modules/.package-lock.json ] \
                || [ package-lock.json -nt node_modules/.package-lock.json ]; then
                say "npm ci (browser/)"
                npm ci --no-audit --no-fund --loglevel=error
            else
                say "node modules up to date"
            fi
        else
            say "npm install (browser/, no lock file)"
            npm install --no-audit --no-fund --loglevel=error
        fi
        say "npm run build (browser/)"
        npm run build --if-present --silent
    )
fi

say "done"
