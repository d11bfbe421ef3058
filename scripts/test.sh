#!/usr/bin/env bash
# The project's one test command: both tiers of tests.
#
#   Tier 1 (needs nothing): unit tests, engine tests against local PTYs and
#           sockets, replays of fixtures/. Always runs.
#   Tier 2 (the lab): tests marked #[ignore = "lab: …"] that boot a real Debian
#           VM under QEMU. Runs when this machine can (root, QEMU, debootstrap);
#           otherwise this script says plainly which tests did not run and why.
#
# As root it first installs what the project needs (scripts/setup.sh).
# Under CI (CI=true) a missing lab prerequisite is a failure, not a skip.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && [ -f scripts/setup.sh ]; then
  bash scripts/setup.sh || { echo "scripts/setup.sh failed" >&2; exit 1; }
fi

why_no_lab=""
[ "$(id -u)" = 0 ] || why_no_lab="not root (the lab builds its image with debootstrap, which needs root)"
command -v qemu-system-x86_64 >/dev/null || why_no_lab="${why_no_lab:+$why_no_lab; }qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
command -v debootstrap >/dev/null || why_no_lab="${why_no_lab:+$why_no_lab; }debootstrap not installed (apt-get install debootstrap)"

ignored_flag=()
if [ -z "$why_no_lab" ]; then
  # record_shell_fixtures re-records fixtures/shell from local test users
  # (docs/shell.md): a tool for developers, not a test of the product.
  ignored_flag=(--include-ignored --skip record_shell_fixtures)
  echo "== running both tiers: unit/replay tests and lab tests (real QEMU VM)"
elif [ "${CI:-}" = true ]; then
  echo "CI must run the lab tests, but: $why_no_lab" >&2
  exit 1
else
  echo "== running tier 1 only; the lab tests will NOT run: $why_no_lab"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --no-fail-fast "$@" -- "${ignored_flag[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

passed=$(awk '/^test result:/ {for (i=1;i<=NF;i++) if ($i ~ /^passed;?$/) s+=$(i-1)} END {print s+0}' "$log")
failed=$(awk '/^test result:/ {for (i=1;i<=NF;i++) if ($i ~ /^failed;?$/) s+=$(i-1)} END {print s+0}' "$log")
ignored=$(awk '/^test result:/ {for (i=1;i<=NF;i++) if ($i ~ /^ignored;?$/) s+=$(i-1)} END {print s+0}' "$log")
if [ -n "$why_no_lab" ] && [ "$ignored" -gt 0 ]; then
  echo
  echo "== $ignored lab test(s) did not run: $why_no_lab. They are:"
  cargo test "$@" -- --ignored --list 2>/dev/null | grep ': test$' | sed 's/: test$//; s/^/   /'
fi
echo
echo "summary: $passed passed, $failed failed, $ignored skipped"
exit "$status"
