#!/usr/bin/env bash
# Install p2pchat into .venv (idempotent; safe to run again).
#
#   bash scripts/install.sh                       # to run it: p2pchat and what it needs, nothing else
#   bash scripts/install.sh --with-test           # also the test tools (pytest, Playwright, mypy,
#                                                 # ruff, Hypothesis) and browser/'s node modules (npm)
#   bash scripts/install.sh --with-system         # also apt packages the LAN/browser tests need (root)
#   bash scripts/install.sh --with-browser-build  # rebuild signaling/static/ from browser/src (npm)
#
# Needs python3 (>= 3.11). The guest page is committed, built, in signaling/static/, so
# running p2pchat needs no node/npm; npm is needed for the tests and to rebuild the page
# (done by itself when browser/src no longer matches browser/static-inputs.sha256 and npm
# is there). Then: .venv/bin/p2pchat (run) or bash scripts/test.sh (tests).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV="$REPO/.venv"
STAMP="$VENV/.p2pchat-install-stamp"
# chromium, firefox-esr: browser tests; iproute2 (ip netns), nftables (nft), iputils-ping:
# LAN tests; redis-server, coturn: the Internet tests (tests/lan/services.py); libsodium23:
# the password's ristretto255 (pysodium loads it).
SYSTEM_PACKAGES=(chromium firefox-esr iproute2 nftables iputils-ping redis-server coturn libsodium23)
# What signaling/static/ was built from (written by browser/build.mjs).
STATIC_INPUTS=browser/static-inputs.sha256

with_system=0
with_test=0
with_browser_build=0
for arg in "$@"; do
    case "$arg" in
        --with-system) with_system=1 ;;
        --with-test) with_test=1 ;;
        --with-browser-build) with_browser_build=1 ;;
        -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "install: unknown option: $arg (see bash scripts/install.sh --help)" >&2; exit 2 ;;
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
# The stamp says what was installed for which pyproject.toml: "<sha256> run|test" (an
# old stamp with the hash alone was a test install).
wanted=$(sha256sum <pyproject.toml | cut -d' ' -f1)
extras=$([ "$with_test" = 1 ] && echo test || echo run)
stamp_hash= stamp_extras=
if [ -f "$STAMP" ]; then
    read -r stamp_hash stamp_extras <"$STAMP" || true
    stamp_extras=${stamp_extras:-test}
fi
if [ "$stamp_hash" = "$wanted" ] && { [ "$extras" = run ] || [ "$stamp_extras" = test ]; } \
    && "$VENV/bin/python" -c 'import p2pchat' >/dev/null 2>&1; then
    say "python packages up to date"
else
    target=$([ "$extras" = test ] && echo "'.[test]'" || echo ".")
    say "pip install -e $target (quiet)"
    if [ "$extras" = test ]; then
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
    else
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e .
    fi
    echo "$wanted $extras" >"$STAMP"
fi

# --- browser client ---------------------------------------------------------------------
# The built page is committed; npm is needed only for browser/'s tests (--with-test) and to
# build the page again. Whether the committed page is current is decided by content (file
# times say nothing in a fresh clone): the hashes of its inputs against $STATIC_INPUTS.
static_inputs() {
    printf '%s\n' browser/build.mjs browser/package-lock.json
    find browser/src -type f | LC_ALL=C sort
}
static_is_current() {
    [ -f "$STATIC_INPUTS" ] && static_inputs | xargs -d '\n' sha256sum | cmp -s - "$STATIC_INPUTS"
}
build=0
if [ "$with_browser_build" = 1 ]; then
    build=1
elif ! static_is_current; then
    if [ "$with_test" = 0 ] && command -v npm >/dev/null; then
        say "browser/src changed since signaling/static/ was built: building it again"
        build=1
    else  # tests: a stale page is for browser/test to report, not for us to paper over
        say "warning: signaling/static/ was not built from this browser/src; using it as it is"
        say "warning: to build it again: bash scripts/install.sh --with-browser-build (needs npm)"
    fi
fi
if [ "$with_test" = 1 ] || [ "$build" = 1 ]; then
    what=$([ "$build" = 1 ] && echo "building the guest page" || echo "browser/'s tests")
    command -v npm >/dev/null || die "npm not found, needed for $what: install Node.js 20+ and npm (Debian: apt-get install nodejs npm)"
    (
        cd browser
        if [ ! -f node_modules/.package-lock.json ] \
            || [ package-lock.json -nt node_modules/.package-lock.json ]; then
            say "npm ci (browser/)"
            npm ci --no-audit --no-fund --loglevel=error
        else
            say "node modules up to date"
        fi
        if [ "$build" = 1 ]; then
            say "npm run build (browser/)"
            npm run build --silent
        fi
    )
fi

say "done"
if [ "$with_test" = 0 ]; then
    say "start p2pchat with: .venv/bin/p2pchat"
    say "or put it on your PATH (in each terminal, or in ~/.bashrc): export PATH=\"$VENV/bin:\$PATH\""
fi
