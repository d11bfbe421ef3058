#!/usr/bin/env bash
# The project's one test command: both tiers of tests.
#
#   Tier 1 (needs nothing): unit tests, engine tests against local PTYs and
#           sockets, replays of fixtures/. Always runs.
#   Tier 2 (the lab): tests marked #[ignore = "lab: …"] that boot a real Debian
#           VM under QEMU. Runs after tier 1, when this machine can (root,
#           QEMU, debootstrap); otherwise this script says plainly which tests
#           did not run and why.
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

if [ -z "$why_no_lab" ]; then
  echo "== running both tiers: unit/replay tests, then lab tests (real QEMU VM)"
elif [ "${CI:-}" = true ]; then
  echo "CI must run the lab tests, but: $why_no_lab" >&2
  exit 1
else
  echo "== running tier 1 only; the lab tests will NOT run: $why_no_lab"
fi

count() { # count WORD LOG: the sum of "N WORD" over the log's `test result:` lines
  awk -v w="$1" '/^test result:/ {for (i=1;i<=NF;i++) if ($i ~ "^" w ";?$") s+=$(i-1)} END {print s+0}' "$2"
}

# Tests that cannot run on this machine (the browser test without Chromium)
# say why here; they are reported, not counted as passed.
rm -rf target/not-run
tier1=$(mktemp)
tier2=$(mktemp)
trap 'rm -f "$tier1" "$tier2"' EXIT
# Tier 1 first, on its own: its timing-sensitive tests never share the CPU
# with a QEMU VM.
started=$(date +%s)
cargo test --no-fail-fast "$@" 2>&1 | tee "$tier1"
status=${PIPESTATUS[0]}
echo "== tier 1 took $(( $(date +%s) - started )) s"
if [ -z "$why_no_lab" ]; then
  echo
  echo "== tier 2: the lab tests"
  started=$(date +%s)
  # record_shell_fixtures re-records fixtures/shell from local test users
  # (docs/shell.md): a tool for developers, not a test of the product.
  cargo test --no-fail-fast "$@" -- --ignored --skip record_shell_fixtures 2>&1 | tee "$tier2"
  lab_status=${PIPESTATUS[0]}
  echo "== tier 2 took $(( $(date +%s) - started )) s"
  [ "$status" = 0 ] && status=$lab_status
fi

passed=$(( $(count passed "$tier1") + $(count passed "$tier2") ))
failed=$(( $(count failed "$tier1") + $(count failed "$tier2") ))
ran_in_lab=$(( $(count passed "$tier2") + $(count failed "$tier2") ))
ignored=$(( $(count ignored "$tier1") - ran_in_lab ))
if [ -n "$why_no_lab" ] && [ "$ignored" -gt 0 ]; then
  echo
  echo "== $ignored lab test(s) did not run: $why_no_lab. They are:"
  cargo test "$@" -- --ignored --list 2>/dev/null | grep ': test$' | sed 's/: test$//; s/^/   /'
fi
not_run=0
if [ -d target/not-run ]; then
  echo
  for f in target/not-run/*; do
    echo "== did not run: $(cat "$f")"
    not_run=$((not_run + 1))
  done
  passed=$((passed - not_run))
  ignored=$((ignored + not_run))
fi
echo
echo "summary: $passed passed, $failed failed, $ignored skipped"
exit "$status"
