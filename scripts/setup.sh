#!/usr/bin/env bash
# Installs the Debian packages the project needs, and nothing when they are
# all present (so it is cheap to run before every test run, and safe to re-run).
#
#   the build:      gcc libc6-dev (ring compiles C)
#   the lab:        qemu-system-x86 debootstrap socat openssh-server openssh-client e2fsprogs
#   benchmarks:     expect (the Tcl Expect we compare against)
#   EC2 stand-in:   libnss-wrapper (sshd's i-….port0 users), python3-venv (moto)
#   GRUB rescue:    grub-pc-bin grub-common xorriso (the lab's GRUB boot CD,
#                   `lab up --boot grub`; grub-pc-bin only holds GRUB's files,
#                   it installs no boot loader on this machine)
#   tests:          man-db (the man page is rendered with `man -l -`), whiptail (a
#                   real full-screen program for the screen-aware expect)
#   browser tests:  chromium fonts-dejavu-core (the gateway's web page in a real
#                   browser), and Playwright from PyPI in a venv at
#                   /opt/ese-browser (Debian's python3; never `playwright
#                   install`: the tests launch /usr/bin/chromium)
#
# `apt-get update` runs only when something is missing. Run as root on a
# Debian 12 machine (CI does: .ci/run). Not root: it says what to run instead.
set -euo pipefail

packages=(gcc libc6-dev qemu-system-x86 debootstrap socat openssh-server openssh-client e2fsprogs expect libnss-wrapper python3-venv man-db whiptail grub-pc-bin grub-common xorriso chromium fonts-dejavu-core)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present (${packages[*]})"
elif [ "$(id -u)" != 0 ]; then
  echo "setup: missing packages: ${missing[*]}" >&2
  echo "setup: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 2
else
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # A stale package list can name a chromium the mirror no longer has.
  apt-get update -q
  # --no-install-recommends: qemu's recommends pull in a desktop's worth of packages.
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Playwright (Python) for the browser tests, in its own venv; cheap when present.
browser_venv=/opt/ese-browser
playwright_version=1.65.3
if [ "$(id -u)" = 0 ]; then
  [ -x "$browser_venv/bin/python" ] || /usr/bin/python3 -m venv "$browser_venv"
  if ! "$browser_venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('playwright') != '$playwright_version')" 2>/dev/null; then
    echo "setup: installing playwright $playwright_version into $browser_venv"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$browser_venv/bin/pip" install -q "playwright==$playwright_version"
  fi
fi
echo "setup: done"
