#!/usr/bin/env bash
# The minimum Rust version, kept honest: Cargo.toml's rust-version must be at
# least every locked dependency's rust-version, the README must state the
# same number, and the toolchain here must meet it. CI runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! meta=$(cargo metadata --format-version 1 --locked 2>&1 >/dev/null); then
  echo "msrv: cannot check: \`cargo metadata --locked\` failed (no access to crates.io?):" >&2
  echo "$meta" | tail -5 >&2
  exit 1
fi
cargo metadata --format-version 1 --locked 2>/dev/null | python3 -c '
import json, re, subprocess, sys
meta = json.load(sys.stdin)
def v(s): return tuple(int(x) for x in s.split("."))
ours = next(p for p in meta["packages"] if p["name"] == "ec2-serial-expect")["rust_version"]
need = max(((p["rust_version"], p["name"]) for p in meta["packages"]
           if p.get("rust_version") and p["name"] != "ec2-serial-expect"), key=lambda t: v(t[0]))
problems = []
if v(ours) < v(need[0]):
    problems.append(f"Cargo.toml says rust-version = {ours} but {need[1]} needs {need[0]}: raise it")
readme = open("README.md").read()
if f"Rust {ours} or newer" not in readme:
    problems.append(f"README.md must say \"Rust {ours} or newer\"")
rustc = re.search(r"rustc (\d+\.\d+\.\d+)", subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout).group(1)
if v(rustc) < v(ours):
    problems.append(f"rustc {rustc} is older than rust-version {ours}: rustup update")
for p in problems:
    print("msrv:", p)
print(f"msrv: rust-version {ours} (the newest a dependency needs: {need[0]}, {need[1]}); rustc {rustc}")
sys.exit(1 if problems else 0)
'
