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
#
# `apt-get update` runs only when something is missing. Run as root on a
# Debian 12 machine (CI does: .ci/run). Not root: it says what to run instead.
set -euo pipefail

packages=(gcc libc6-dev qemu-system-x86 debootstrap socat openssh-server openssh-client e2fsprogs expect libnss-wrapper python3-venv man-db whiptail grub-pc-bin grub-common xorriso)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present (${packages[*]})"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "setup: missing packages: ${missing[*]}" >&2
  echo "setup: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 2
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# --no-install-recommends: qemu's recommends pull in a desktop's worth of packages.
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
