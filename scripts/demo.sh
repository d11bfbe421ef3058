#!/usr/bin/env bash
# From a fresh clone to the demo in one command. Installs what is missing
# (the Debian packages and a C compiler, through sudo when not root), builds
# the tool with the locked dependencies, and runs `lab demo`: a real Debian VM
# under QEMU, its SSH broken the seed article's way, repaired over its serial
# console. The demo needs root (it builds a VM image and runs QEMU); its
# transcript is handed to you, so you can watch it without sudo.
#
# Needs: Debian 12 (or similar with apt), a Rust toolchain (rustup.rs) at
# least as new as Cargo.toml's rust-version, and sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*"; }
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)

if ! command -v cargo >/dev/null; then
  echo "demo: no Rust toolchain: install it from https://rustup.rs, then run this again" >&2
  exit 2
fi
say "installing what is missing (Debian packages, a C compiler)"
"${sudo[@]}" bash scripts/setup.sh
bash scripts/msrv.sh | tail -1

say "building (release, --locked; a few minutes the first time)"
cargo build --release --locked --bin ec2-serial-expect
bin="$PWD/target/release/ec2-serial-expect"

mine="${XDG_DATA_HOME:-$HOME/.local/share}/ec2-serial-expect/transcripts"
mkdir -p "$mine"
chmod 700 "$mine"
name="lab-demo-$(date -u +%Y%m%dT%H%M%SZ).cast"
# The demo records as root into a private temporary directory; the copy
# into your directory is written by you (this shell), not by root, so root
# never writes where you could plant a link.
private=$("${sudo[@]}" mktemp -d)
trap '"${sudo[@]}" rm -rf "$private"' EXIT
say "running the demo (the first run builds the VM image: about a minute)"
# The demo's own "watch it" line names root's copy; the last line here names yours.
"${sudo[@]}" "$bin" --transcript "$private/$name" lab demo \
  | sed -e "s|$private/$name|$mine/$name|g" -e '/^   watch it:/d'
(umask 077 && "${sudo[@]}" cat "$private/$name" > "$mine/$name")
say "yours to watch: $bin play $mine/$name"
