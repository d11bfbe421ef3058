#!/usr/bin/env bash
# Runs the engine benchmarks for us and the peers side by side, in one run,
# and writes the medians and ratios with the machine's description to
# BENCHMARKS.md.
#
#   benches/compare.sh            full run (16 and 64 MiB, 5,000 round trips,
#                                 256 MiB in memory, 1,000 sessions, the doctor
#                                 on a lab VM; 5 runs each) → BENCHMARKS.md
#   benches/compare.sh --smoke    small sizes, five runs, release build, no VM,
#                                 a few minutes → target/bench/BENCHMARKS-smoke.md;
#                                 CI runs it so the benchmark cannot rot, and as a
#                                 regression guard: it fails when a ratio (never a
#                                 time: a noisy machine slows both sides) is worse
#                                 than its target by more than 25 % (the guard
#                                 table at the end of the report; a timed ratio
#                                 is the median of each run's own ratio)
#   --runs N                      runs per measurement (default 5)
#
# Workloads (issue 8): 1. big output under a PTY until a marker matches, with
# peak memory; 2. send/expect round trips against `cat` under a PTY; 3. the
# engine's in-memory matching against a plain memchr scan; 4. many sessions
# in one process (replayed doctor checks, then `cat` under PTYs); 6. console
# tests (100 script/recording pairs in one `test` process); 8. the gateway
# (200 held consoles, 100 viewers of one console); 5. the job
# itself: `doctor --fix` on a broken lab VM against a Tcl Expect script of the
# seed article's five repair commands (root + QEMU; full run only), and
# replays of a recorded `doctor --fix`. Peers: Tcl Expect (Debian package
# `expect`), pexpect (pip, into a venv under target/), expectrl and rexpect
# (benches/peers/, its own Cargo project built into target/bench/peers),
# installed here if missing. Every measurement is its own process (so peak RSS
# is per workload), implementations alternate within each run, and each
# harness times itself from just before it spawns the command.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=false
runs=5
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=true ;;
    --runs) runs="$2"; shift ;;
    *) echo "usage: benches/compare.sh [--smoke] [--runs N]" >&2; exit 2 ;;
  esac
  shift
done

work=target/bench
mkdir -p "$work"
if $smoke; then
  # Release: the guard compares ratios, and a debug build's are not ours.
  # 16 MiB: at a few MiB a transcript's fixed costs (its file, its header)
  # weigh more than they do at the sizes that matter, and the guard would
  # judge them, not the per-byte path.
  sizes=(16); rt_cycles=10000; rt_default_cycles=10; mem_mib=8; runs=5; limit=120
  guard_extra_runs=10
  replay_sessions=5; pty_sessions=5; pty_cycles=2; replay_runs=1
  held_consoles=20; viewers=20; viewer_cycles=200
  # Workload 7: replayed targets in one fleet `doctor` process.
  fleet_targets=100
  profile_flag=(--release); out="$work/BENCHMARKS-smoke.md"
else
  sizes=(16 64); rt_cycles=5000; rt_default_cycles=100; mem_mib=256; limit=900
  replay_sessions=1000; pty_sessions=1000; pty_cycles=10; replay_runs=10
  held_consoles=200; viewers=100; viewer_cycles=500
  fleet_targets=10000
  profile_flag=(--release); out=BENCHMARKS.md
fi
# pexpect with defaults is quadratic: 16 MiB already takes ~20 s, 64 MiB would
# take minutes per run, so it runs on the smallest size only, at most 3 times.
default_pexpect_max_mib=${sizes[0]}
# (A smoke run leaves it out: 16 MiB takes it about 40 s a run.)
$smoke && default_pexpect_max_mib=0
default_pexpect_runs=$(( runs < 3 ? runs : 3 ))
# rexpect sleeps 100 ms whenever its expected text is not there yet, so a
# round trip costs ~100 ms: it gets pexpect defaults' cycle count, as often.
# The recorded doctor session of workload 5, and the check workload 4 replays.
fix_cast=fixtures/doctor/home-777-fix.cast
# Workload 6: console tests replayed by one `test` process.
suite_pairs=100
check_cast=fixtures/doctor/home-777-check.cast
# Each recording keeps the lab key it was made with.
fix_key=${fix_cast%.cast}.pub
check_key=${check_cast%.cast}.pub

log() { echo "== $*" >&2; }

# ---------------------------------------------------------------- build and peers
log "building the benches and the CLI (${profile_flag[*]:-debug})"
# One build; the executables by target name ("engine", "sessions", "ec2-serial-expect").
cargo build "${profile_flag[@]}" --bench engine --bench sessions --bin ec2-serial-expect \
  --message-format=json 2>"$work/build.log" |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"], m["executable"])' >"$work/executables"
executable() { awk -v name="$1" '$1 == name {print $2}' "$work/executables" | tail -n 1; }
bench_bin=$(executable engine)
sessions_bin=$(executable sessions)
cli_bin=$(executable ec2-serial-expect)
for bin in "$bench_bin" "$sessions_bin" "$cli_bin"; do
  [ -x "$bin" ] || { echo "the build failed (see $work/build.log; run: cargo build --bench engine --bench sessions)" >&2; exit 1; }
done

if ! command -v expect >/dev/null && [ "$(id -u)" = 0 ]; then
  log "installing Tcl Expect (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq expect >/dev/null || true
fi
have_expect=false; command -v expect >/dev/null && have_expect=true

venv="$work/venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pexpect' 2>/dev/null; then
  log "installing pexpect into $venv"
  { python3 -m venv "$venv" && "$venv/bin/pip" install -q pexpect; } >/dev/null 2>&1 || true
fi
have_pexpect=false; "$venv/bin/python" -c 'import pexpect' 2>/dev/null && have_pexpect=true

log "building the Rust peers (benches/peers: expectrl, rexpect)"
peers_bin=""
if CARGO_TARGET_DIR="$work/peers" cargo build "${profile_flag[@]}" --manifest-path benches/peers/Cargo.toml \
  >"$work/peers-build.log" 2>&1; then
  peers_bin="$work/peers/$([ -n "${profile_flag[*]}" ] && echo release || echo debug)/ese-bench-peers"
else
  echo "warning: benches/peers did not build (see $work/peers-build.log): expectrl and rexpect left out" >&2
fi
have_peers=false; [ -n "$peers_bin" ] && [ -x "$peers_bin" ] && have_peers=true

# ---------------------------------------------------------------- peer harnesses
cat >"$work/big_output.exp" <<'EOF'
# Tcl Expect: spawn `cat FILE`, wait for the marker; prints {"seconds": …}.
set file [lindex $argv 0]
log_user 0
set timeout 600
set t0 [clock microseconds]
spawn -noecho cat $file
expect {
  -re {bench marker: all [0-9]+ lines written} {}
  timeout { puts stderr "timed out"; exit 1 }
  eof { puts stderr "EOF before the marker"; exit 1 }
}
set t1 [clock microseconds]
puts [format {{"seconds": %.6f}} [expr {($t1 - $t0) / 1e6}]]
EOF

cat >"$work/round_trips.exp" <<'EOF'
# Tcl Expect: N send/expect cycles against `cat` (echo off); prints {"seconds": …}.
set n [lindex $argv 0]
log_user 0
set timeout 10
spawn -noecho sh -c "stty -echo; echo READY; exec cat"
# (An expect body must span lines: on one line it reads as a single pattern.)
expect {
  -ex "READY\r\n" {}
  timeout { puts stderr "not ready"; exit 1 }
}
set t0 [clock microseconds]
for {set i 0} {$i < $n} {incr i} {
  send "ping $i\r"
  expect {
    -ex "ping $i\r\n" {}
    timeout { puts stderr "timed out at $i"; exit 1 }
  }
}
set t1 [clock microseconds]
puts [format {{"seconds": %.6f, "us_per_cycle": %.3f}} [expr {($t1 - $t0) / 1e6}] [expr {($t1 - $t0) / double($n)}]]
EOF

cat >"$work/peers.py" <<'EOF'
"""pexpect harnesses: big-output FILE tuned|default, round-trips N tuned|default."""
import json, sys, time
import pexpect

MARKER = rb"bench marker: all \d+ lines written"

def big_output(path, tuned):
    started = time.perf_counter()
    extra = dict(maxread=65536, searchwindowsize=4096) if tuned else {}
    child = pexpect.spawn("cat", [path], timeout=600, **extra)
    child.expect(MARKER)
    return {"seconds": time.perf_counter() - started}

def round_trips(n, tuned):
    child = pexpect.spawn("sh", ["-c", "stty -echo; echo READY; exec cat"], timeout=10)
    if tuned:
        child.delaybeforesend = None
    child.expect_exact(b"READY\r\n")
    started = time.perf_counter()
    for i in range(n):
        line = b"ping %d" % i
        child.send(line + b"\r")
        child.expect_exact(line + b"\r\n")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "us_per_cycle": seconds * 1e6 / n}

workload, arg, mode = sys.argv[1:4]
tuned = mode == "tuned"
result = big_output(arg, tuned) if workload == "big-output" else round_trips(int(arg), tuned)
print(json.dumps(result))
EOF

cat >"$work/job.py" <<'EOF'
"""Workload 5, our side: runs the CLI, prints {"seconds", "cpu_seconds", "round_trips"},
and for doctor-fix the phases read from the session's transcript markers.
   job.py doctor-fix CLI SOCKET PASSWORD_FILE     doctor --fix on the lab VM
   job.py replay-fix CLI CAST PUBLIC_KEY          doctor --fix against a replay of CAST
The CLI is started with posix_spawn and reaped with wait4, so its CPU time is its
own (a fork of this interpreter would add the copy's page faults to it)."""
import json, os, sys, tempfile, time

mode, cli, target, extra = sys.argv[1:5]
report = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
cast = tempfile.NamedTemporaryFile(suffix=".cast", delete=False).name
errors = tempfile.TemporaryFile()
record = ["--transcript", cast] if mode == "doctor-fix" else ["--no-transcript"]
args = [cli] + record + ["--output", "json", "doctor"]
env = dict(os.environ)
if mode == "doctor-fix":
    args += ["unix:" + target, "--user", "ec2-user", "--password-file", extra, "--fix"]
else:
    # A replayed login sends any password (the recording holds <redacted>).
    env["ESE_BENCH_REPLAY_PW"] = "replayed-Password-4711"
    args += ["replay:" + target, "--user", "ec2-user", "--password-env", "ESE_BENCH_REPLAY_PW",
             "--public-key", extra, "--fix", "--add-key"]
args += ["--report", report]
devnull = os.open(os.devnull, os.O_WRONLY)
started = time.perf_counter()
pid = os.posix_spawn(cli, args, env, file_actions=[
    (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, errors.fileno(), 2)])
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
if code != 0:
    errors.seek(0)
    sys.exit(f"doctor exited {code} (expected 0: repaired and verified): {errors.read().decode()[-400:]}")
result = json.load(open(report))
os.unlink(report)
out = {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
       "round_trips": result["round_trips"], "verified": result["verified"]}
# Phases, from the transcript's markers: login (connect to a synchronised
# prompt as the user), gather (the diagnosis: sudo's first use and the facts),
# repair (the guarded repairs and the verification, one root command), logout
# (exit until the logout is proven: the login session's end, or getty's prompt).
marks = {}
if mode == "doctor-fix":
    for line in open(cast).read().splitlines()[1:]:
        at, kind, data = json.loads(line)
        if kind == "m":
            for name, prefix in [("logged_in", "shell: logged in"), ("repairing", "doctor: repairing"),
                                 ("logout", "shell: logout"), ("logged_out", "shell: logged out")]:
                if data.startswith(prefix):
                    marks.setdefault(name, at)
    os.unlink(cast)
if len(marks) == 4:
    out.update(login_seconds=marks["logged_in"], gather_seconds=marks["repairing"] - marks["logged_in"],
               repair_seconds=marks["logout"] - marks["repairing"],
               logout_seconds=marks["logged_out"] - marks["logout"])
print(json.dumps(out))
EOF

cat >"$work/suite.py" <<'EOF'
"""Workload 6: one `test` invocation over DIR; prints {"seconds", "passed", "failed"}
(wall time of the whole process, start to exit)."""
import json, subprocess, sys, time
cli, tests = sys.argv[1:3]
started = time.perf_counter()
out = subprocess.run([cli, "--output", "json", "test", tests], capture_output=True, text=True)
seconds = time.perf_counter() - started
summary = json.loads(out.stdout.strip().splitlines()[-1])
if out.returncode != 0 or summary["failed"]:
    sys.exit(f"test exited {out.returncode}: {out.stdout[-300:]} {out.stderr[-300:]}")
print(json.dumps({"seconds": seconds, "passed": summary["passed"], "failed": summary["failed"]}))
EOF

cat >"$work/fleet.py" <<'EOF'
"""Workload 7: one `doctor` process over N replayed targets (`-j 1000`),
each target's report and transcript written to `--out-dir`, a new directory
for each run (run_fleet removes them all after the workload): prints
{"seconds", "targets", "exit_code"} (wall time, start to exit)."""
import json, os, subprocess, sys, tempfile, time
cli, fixtures, n, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
d = os.path.join(work, f"fleet-{n}")
os.makedirs(d, exist_ok=True)
lines = []
for i in range(n):
    fixture = "healthy-check.cast" if i % 5 < 3 else "home-777-check.cast"
    path = os.path.join(d, f"t{i:04d}.cast")
    if not os.path.exists(path):
        os.link(os.path.join(fixtures, fixture), path)
    lines.append("replay:" + path)
targets = os.path.join(d, "targets.txt")
open(targets, "w").write("\n".join(lines) + "\n")
env = dict(os.environ, ESE_BENCH_PW="replayed")
# Not the last run's directory emptied: 20,000 files removed just before
# 20,000 are created make ext4 search its inode tables for ones it may
# reuse (`recently_deleted`), which tripled the wall time (BENCHMARKS.md).
out_dir = tempfile.mkdtemp(prefix="out-", dir=d)
started = time.perf_counter()
out = subprocess.run([cli, "--output", "json", "doctor", "--targets", targets, "--out-dir", out_dir,
                      "-j", "1000", "--user", "ec2-user", "--password-env", "ESE_BENCH_PW",
                      "--public-key", os.path.join(fixtures, "healthy-check.pub")],
                     capture_output=True, text=True, env=env)
seconds = time.perf_counter() - started
summary = json.loads(out.stdout.strip().splitlines()[-1])["summary"]
if summary["targets"] != n:
    sys.exit(f"doctor reported {summary['targets']} of {n} targets: {out.stderr[-300:]}")
print(json.dumps({"seconds": seconds, "targets": n, "exit_code": out.returncode}))
EOF

# ---------------------------------------------------------------- measuring
rm -f "$out.failed"
results="$work/results.tsv"
: >"$results"

# measure WORKLOAD SIZE IMPL RUN COMMAND…: runs COMMAND under /usr/bin/time,
# appends "workload size impl run rss_kib cpu_s json" to the results (RSS:
# the largest process in the tree; CPU: user + system of the whole tree). A
# measurement that fails or hangs (past $limit seconds) is reported and left out.
measure() {
  local workload=$1 size=$2 impl=$3 run=$4; shift 4
  local json rss user sys
  if ! json=$(timeout "$limit" /usr/bin/time -f '%M %U %S' -o "$work/rss" "$@" 2>"$work/stderr" | tail -n 1) ||
    [ -z "$json" ]; then
    echo "warning: $impl $workload $size failed: $(tail -n 3 "$work/stderr")" >&2
    return 0
  fi
  read -r rss user sys < <(tail -n 1 "$work/rss")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$size" "$impl" "$run" "$rss" \
    "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" "$json" >>"$results"
  log "$workload $size $impl run $run: $json"
}

for mib in "${sizes[@]}"; do
  file="$work/kernel-$mib.log"
  [ -s "$file" ] || { log "generating $file"; "$bench_bin" gen "$file" "$mib"; }
done

# The implementations of workload 1 in a rotating order, so none always goes first.
big_impls=(floor ours ours_transcript tcl_expect pexpect_tuned pexpect_default expectrl rexpect)
rt_impls=(floor ours ours_same_pattern tcl_expect pexpect_tuned pexpect_default expectrl rexpect)

run_big() {
  local impl=$1 mib=$2 run=$3 file="$work/kernel-$2.log"
  case "$impl" in
    floor) measure big_output "$mib" floor "$run" "$bench_bin" floor "$file" ;;
    ours) measure big_output "$mib" ours "$run" "$bench_bin" big-output "$file" ;;
    ours_transcript)
      measure big_output "$mib" ours_transcript "$run" "$bench_bin" big-output "$file" --transcript "$work/big.cast"
      rm -f "$work/big.cast" ;;
    tcl_expect) $have_expect && measure big_output "$mib" tcl_expect "$run" expect "$work/big_output.exp" "$file" ;;
    pexpect_tuned) $have_pexpect && measure big_output "$mib" pexpect_tuned "$run" "$venv/bin/python" "$work/peers.py" big-output "$file" tuned ;;
    pexpect_default)
      if $have_pexpect && [ "$mib" -le "$default_pexpect_max_mib" ] && [ "$run" -le "$default_pexpect_runs" ]; then
        measure big_output "$mib" pexpect_default "$run" "$venv/bin/python" "$work/peers.py" big-output "$file" default
      fi ;;
    expectrl | rexpect) $have_peers && measure big_output "$mib" "$impl" "$run" "$peers_bin" "$impl" big-output "$file" ;;
  esac
  return 0
}

run_rt() {
  local impl=$1 run=$2
  case "$impl" in
    floor) measure round_trips "$rt_cycles" floor "$run" "$bench_bin" round-trips-floor "$rt_cycles" ;;
    ours) measure round_trips "$rt_cycles" ours "$run" "$bench_bin" round-trips "$rt_cycles" ;;
    ours_same_pattern) measure round_trips "$rt_cycles" ours_same_pattern "$run" "$bench_bin" round-trips "$rt_cycles" --same-pattern ;;
    tcl_expect) $have_expect && measure round_trips "$rt_cycles" tcl_expect "$run" expect "$work/round_trips.exp" "$rt_cycles" ;;
    pexpect_tuned) $have_pexpect && measure round_trips "$rt_cycles" pexpect_tuned "$run" "$venv/bin/python" "$work/peers.py" round-trips "$rt_cycles" tuned ;;
    pexpect_default)
      if $have_pexpect && [ "$run" -le "$default_pexpect_runs" ]; then
        measure round_trips "$rt_default_cycles" pexpect_default "$run" "$venv/bin/python" "$work/peers.py" round-trips "$rt_default_cycles" default
      fi ;;
    expectrl) $have_peers && measure round_trips "$rt_cycles" expectrl "$run" "$peers_bin" expectrl round-trips "$rt_cycles" ;;
    rexpect)
      if $have_peers && [ "$run" -le "$default_pexpect_runs" ]; then
        measure round_trips "$rt_default_cycles" rexpect "$run" "$peers_bin" rexpect round-trips "$rt_default_cycles"
      fi ;;
  esac
  return 0
}

# Workload 4: N sessions in one process; replayed doctor checks, then PTYs.
run_sessions() {
  local run=$1
  measure many_sessions "$replay_sessions" replay "$run" \
    "$sessions_bin" replay "$replay_sessions" "$check_cast" "$check_key"
  measure many_sessions "$pty_sessions" pty "$run" "$sessions_bin" pty "$pty_sessions" "$pty_cycles"
}

# Workload 4, once: as many PTY sessions as the kernel's PTY limit leaves
# room for (/proc/sys/kernel/pty/max, less those in use and a margin).
run_most_ptys() {
  $smoke && return 0
  local free=$(( $(cat /proc/sys/kernel/pty/max) - $(cat /proc/sys/kernel/pty/nr) - 64 ))
  local most=$(( free < 4000 ? free : 4000 ))
  [ "$most" -gt "$pty_sessions" ] &&
    measure many_sessions "$most" pty 1 "$sessions_bin" pty "$most" "$pty_cycles"
  return 0
}

# Workload 5b: replays of the recorded `doctor --fix`: one CLI process each,
# in a row; then N at once in one process (the sessions bench).
run_replays() {
  local run
  for run in $(seq 1 "$replay_runs"); do
    measure job_replay 1 ours "$run" python3 "$work/job.py" replay-fix "$cli_bin" "$fix_cast" "$fix_key"
  done
  for run in $(seq 1 "$runs"); do
    measure job_replay_many "$replay_sessions" ours "$run" \
      "$sessions_bin" replay "$replay_sessions" "$fix_cast" "$fix_key" --fix
  done
}

# Workload 6: the console-test runner. $suite_pairs script/recording pairs
# (the shipped scripts' recordings in fixtures/scripts/, copied under new
# names until there are enough) replayed by one `test` process.
run_suite() {
  local dir="$work/suite" n=0 run
  rm -rf "$dir"; mkdir -p "$dir"
  while [ "$n" -lt "$suite_pairs" ]; do
    for cast in fixtures/scripts/*.cast; do
      [ "$n" -lt "$suite_pairs" ] || break
      local base name script variant copy
      base=$(basename "$cast" .cast); name=${base%%.*}; variant=${base#"$name"}
      script=scripts/$name.rhai
      [ -f "$script" ] || script=scripts/examples/$name.rhai
      [ -f "$script" ] || continue
      copy=$(printf 'p%03d-%s' "$n" "$name")
      cp "$script" "$dir/$copy.rhai"
      cp "$cast" "$dir/$copy$variant.cast"
      if [ -f "${cast%.cast}.expect" ]; then cp "${cast%.cast}.expect" "$dir/$copy$variant.expect"; fi
      n=$((n + 1))
    done
  done
  for run in $(seq 1 "$runs"); do
    measure test_runner "$suite_pairs" ours "$run" python3 "$work/suite.py" "$cli_bin" "$dir"
  done
}

# Workload 7: a fleet `doctor` over replayed targets, one process; the
# 1-target run is the baseline the per-target memory is counted from.
run_fleet() {
  local n run
  for n in 1 "$fleet_targets"; do
    for run in $(seq 1 "$runs"); do
      measure fleet "$n" ours "$run" python3 "$work/fleet.py" "$cli_bin" fixtures/doctor "$n" "$work"
    done
  done
  rm -rf "$work"/fleet-*/out "$work"/fleet-*/out-*
}

# Workload 8 (issue 36): the gateway. $held_consoles consoles held open (each
# past its scrollback) in one gateway: memory per console; and a writer's
# echo through the gateway with no viewer, then with $viewers read-only
# viewers of the web page.
run_gateway() {
  local run
  for run in $(seq 1 "$runs"); do
    measure held "$held_consoles" ours "$run" "$sessions_bin" held "$held_consoles"
    measure viewers "$viewers" ours "$run" "$sessions_bin" viewers "$viewers" "$viewer_cycles"
  done
}

# Workload 5: `doctor --fix` against the Tcl Expect seed script on one lab VM,
# alternating, re-breaking `home-777` before each (the break goes over SSH,
# so it also proves the previous repair worked).
job_skip() { echo "$1" >"$work/job_skipped"; log "workload 5 (doctor --fix on a lab VM) skipped: $1"; }
run_job() {
  rm -f "$work/job_skipped"
  if $smoke; then job_skip "a --smoke run does not boot a VM"; return 0; fi
  if [ "$(id -u)" != 0 ] || ! command -v qemu-system-x86_64 >/dev/null || ! command -v socat >/dev/null; then
    job_skip "needs root, qemu-system-x86_64 and socat"; return 0
  fi
  log "booting the lab VM 'bench'"
  local up socket password_file
  if ! up=$("$cli_bin" --no-transcript lab up --name bench --output json 2>"$work/lab.log"); then
    job_skip "lab up failed (see $work/lab.log)"; return 0
  fi
  socket=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["serial"].removeprefix("unix:"))' "$up")
  password_file=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["password_file"])' "$up")
  local order run impl
  for run in $(seq 1 "$runs"); do
    order=(ours tcl_expect); [ $(( run % 2 )) = 0 ] && order=(tcl_expect ours)
    for impl in "${order[@]}"; do
      if ! "$cli_bin" --no-transcript lab break home-777 --name bench >"$work/lab.log" 2>&1; then
        echo "warning: lab break failed before $impl run $run (see $work/lab.log)" >&2
        continue
      fi
      # Every run starts with getty's prompt back: our logout ends on the
      # login session's proof, before getty restarts (~1.4 s), and the next
      # run, whichever it is, must not pay for that.
      sleep 3
      case "$impl" in
        ours) measure job 1 ours "$run" python3 "$work/job.py" doctor-fix "$cli_bin" "$socket" "$password_file" ;;
        tcl_expect) $have_expect &&
          measure job 1 tcl_expect "$run" expect -f benches/seed_repair.exp "$socket" ec2-user "$password_file" ;;
      esac
    done
  done
  "$cli_bin" --no-transcript lab down --name bench >/dev/null 2>&1 || true
}

started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for run in $(seq 1 "$runs"); do
  shift_by=$(( run - 1 ))
  for mib in "${sizes[@]}"; do
    for k in "${!big_impls[@]}"; do
      run_big "${big_impls[$(( (k + shift_by) % ${#big_impls[@]} ))]}" "$mib" "$run"
    done
  done
  for k in "${!rt_impls[@]}"; do
    run_rt "${rt_impls[$(( (k + shift_by) % ${#rt_impls[@]} ))]}" "$run"
  done
  measure in_memory "$mem_mib" ours "$run" "$bench_bin" in-memory "$mem_mib"
  run_sessions "$run"
done
# A --smoke run gives the guarded ratios' sides more runs (each takes 0.2 to
# 0.4 s there): one slow run in five moved a median of per-run ratios by a
# third (ours with a transcript / the floor, 1.05 to 1.66 between two runs).
if $smoke; then
  big_guarded=(floor ours ours_transcript); rt_guarded=(floor ours tcl_expect)
  for run in $(seq $((runs + 1)) $((runs + guard_extra_runs))); do
    for k in 0 1 2; do
      run_big "${big_guarded[$(( (k + run) % 3 ))]}" "${sizes[0]}" "$run"
      run_rt "${rt_guarded[$(( (k + run) % 3 ))]}" "$run"
    done
  done
fi
run_most_ptys
run_replays
run_suite
run_fleet
run_gateway
run_job
elapsed=$(( $(date +%s) - started ))

# ---------------------------------------------------------------- the report
machine() {
  echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores online"
  echo "- Memory: $(free -g | awk '/^Mem:/ {print $2}') GiB; kernel $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "- $(rustc --version); build: ${profile_flag[*]:-debug (smoke)}"
  $have_expect && echo "- Tcl Expect $(expect -v | awk '{print $3}')"
  $have_peers && echo "- $(awk '/^name = "(expectrl|rexpect)"/ {n=$3; getline; printf "%s %s ", n, $3}' benches/peers/Cargo.lock | tr -d '"')(benches/peers/Cargo.lock)"
  $have_pexpect && echo "- pexpect $("$venv/bin/python" -c 'import pexpect; print(pexpect.__version__)') on $("$venv/bin/python" --version)"
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); $runs run(s) per measurement; whole comparison took ${elapsed} s"
  echo "- Load average (1/5/15 min) at the start: $load_before; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
}

job_skipped=$(cat "$work/job_skipped" 2>/dev/null || true)
limits="PTYs at most $(cat /proc/sys/kernel/pty/max) (kernel.pty.max), open files $(ulimit -Hn) (hard limit)"
python3 - "$results" "$out" "$smoke" "$job_skipped" "$limits" "$pty_cycles" <<'PY'
import json, statistics, sys
from collections import defaultdict

results, out, smoke, job_skipped, limits, pty_cycles = sys.argv[1], sys.argv[2], sys.argv[3] == "true", sys.argv[4], sys.argv[5], sys.argv[6]
rows = defaultdict(list)
cpu = defaultdict(list)
by_run = defaultdict(dict)
for line in open(results):
    workload, size, impl, run, rss, cpu_s, js = line.rstrip("\n").split("\t", 6)
    rows[(workload, int(size), impl)].append((json.loads(js), int(rss)))
    cpu[(workload, int(size), impl)].append(float(cpu_s))
    by_run[(workload, int(size), impl)][int(run)] = json.loads(js)

def med(key, field):
    vals = [r[0][field] for r in rows.get(key, []) if field in r[0]]
    return statistics.median(vals) if vals else None

def paired(key, other, field):
    # The guard's estimator: the median of the runs' own ratios. The two
    # sides of a ratio ran back to back in each run, so a machine that slows
    # down between runs slows both; a median of each side alone does not
    # cancel that (CI stop 43: 16 MiB through a PTY took 0.16 to 1.1 s within
    # one smoke run, and the ratio of medians read 1.60).
    mine, theirs = by_run.get(key, {}), by_run.get(other, {})
    ratios = [mine[r][field] / theirs[r][field] for r in mine
              if r in theirs and field in mine[r] and theirs[r].get(field)]
    return statistics.median(ratios) if ratios else None

def programs_cpu(key):
    # Replays start no program.
    cpu = med(key, "programs_cpu_seconds")
    return f"{cpu:.2f}" if cpu else "—"

def ratio(a, b):
    r = a / b
    return f"{r:.3f}" if r < 0.1 else f"{r:.2f}"

def rss_mib(key):
    vals = [r[1] for r in rows.get(key, [])]
    return statistics.median(vals) / 1024 if vals else None

NAMES = {
    "floor": "floor: raw PTY read loop into nothing",
    "ours": "**ec2-serial-expect** (no transcript)",
    "ours_transcript": "ec2-serial-expect, recording a transcript",
    "tcl_expect": "Tcl Expect",
    "pexpect_tuned": "pexpect tuned (maxread=65536, searchwindowsize=4096)",
    "pexpect_default": "pexpect defaults",
    "expectrl": "expectrl 0.9 (defaults)",
    "rexpect": "rexpect 0.7 (defaults)",
}
HEAVY = {
    "pexpect_tuned": "pexpect tuned (delaybeforesend=None)",
    "ours_same_pattern": "ec2-serial-expect, the same line every cycle (`ping\\r`)",
}
lines = []
w = lines.append
w("# Benchmarks")
w("")
w("Produced by `benches/compare.sh`%s; every number below is from one run of it on the" % (" --smoke" if smoke else ""))
w("machine described at the end. Medians of the runs; **ours / peer < 1 means we are faster**")
w("(or, for memory, smaller). Each measurement is its own process; peak RSS is that process's")
w("high-water mark as `/usr/bin/time` reports it.")
w("")
sizes = sorted({s for (wl, s, _) in rows if wl == "big_output"})
w("## 1. Big output: a command under a PTY prints kernel-log lines, then a marker")
w("")
w("Time from spawning `cat FILE` under a PTY until `/bench marker: all \\d+ lines written/` matches.")
w("")
w("| size | implementation | median s | MiB/s | peak RSS MiB | ours / this (time) | ours / this (RSS) |")
w("|---|---|---:|---:|---:|---:|---:|")
for size in sizes:
    ours_t, ours_m = med(("big_output", size, "ours"), "seconds"), rss_mib(("big_output", size, "ours"))
    for impl in ["floor", "ours", "ours_transcript", "tcl_expect", "pexpect_tuned", "pexpect_default", "expectrl", "rexpect"]:
        key = ("big_output", size, impl)
        t = med(key, "seconds")
        if t is None:
            if impl == "pexpect_default":
                w(f"| {size} MiB | {NAMES[impl]} | not run (quadratic: see the smaller size) | | | | |")
            continue
        m = rss_mib(key)
        rt = ratio(ours_t, t) if ours_t and impl != "ours" else ""
        rm = ratio(ours_m, m) if ours_m and impl != "ours" else ""
        w(f"| {size} MiB | {NAMES[impl]} | {t:.3f} | {size / t:.0f} | {m:.1f} | {rt} | {rm} |")
w("")
w("## 2. Round trips: send a line to `cat` under a PTY, expect it back")
w("")
w("`sh -c 'stty -echo; echo READY; exec cat'`, timed from READY; each cycle sends `ping N\\r` and waits for `ping N\\r\\n`.")
w("")
w("| implementation | cycles | median µs per cycle | ours / this |")
w("|---|---:|---:|---:|")
rt_keys = [k for k in rows if k[0] == "round_trips"]
ours_rt = next((med(k, "us_per_cycle") for k in rt_keys if k[2] == "ours"), None)
for impl in ["floor", "ours", "ours_same_pattern", "tcl_expect", "pexpect_tuned", "pexpect_default", "expectrl", "rexpect"]:
    for key in [k for k in rt_keys if k[2] == impl]:
        us = med(key, "us_per_cycle")
        r = ratio(ours_rt, us) if ours_rt and impl != "ours" else ""
        name = NAMES["ours"] if impl == "ours" else HEAVY.get(impl, NAMES.get(impl, impl))
        if impl == "floor":
            name = "floor: blocking write and reads on one thread, no engine"
        if impl == "pexpect_default":
            name += " (delaybeforesend=0.05)"
        w(f"| {name} | {key[1]} | {us:.1f} | {r} |")
w("")
w("## 3. In-memory matching: no PTY, no syscalls")
w("")
w("One `expect` with 1 literal and 3 regexes (none of which occurs until the end) over the")
w("stream, handed to the session in 64 KiB chunks by an in-memory transport; the stages alone")
w("(UTF-8 decoding; decoding + escape stripping), the search alone without decoding, and a")
w("plain `memchr::memmem` scan of the same chunks, for scale.")
w("")
w("| measure | size | median GiB/s |")
w("|---|---:|---:|")
for key in [k for k in rows if k[0] == "in_memory"]:
    for field, name in [("gib_per_s", "**engine: decode + strip + scrub + search**"),
                        ("decode_gib_per_s", "UTF-8 decoding alone"),
                        ("decode_strip_gib_per_s", "decoding + escape stripping"),
                        ("memchr_gib_per_s", "memchr::memmem scan (memory bandwidth)"),
                        ("combined_regex_gib_per_s", "search alone: the 4 patterns as one alternation `(p0)\\|(p1)\\|…` (the engine before c0ff229)"),
                        ("per_pattern_regex_gib_per_s", "search alone: each pattern on its own, earliest start wins (the engine without its Teddy gate)")]:
        w(f"| {name} | {key[1]} MiB | {med(key, field):.2f} |")
for key in [k for k in rows if k[0] == "in_memory" and med(k, "screen_mib_per_s")]:
    w("")
    w(f"**The screen model.** With it on (`watch_screen`, as once a script reads the screen) the engine")
    w(f"takes {med(key, 'screen_mib'):.0f} MiB of the same stream at **{med(key, 'screen_mib_per_s'):.0f} MiB/s**")
    menus = med(key, 'screen_menus_mib_per_s')
    if menus:
        w(f"and as much of its own workload, a full-screen menu redrawn (a box of 20 entries, the highlight")
        w(f"moving), at **{menus:.0f} MiB/s**")
    w("(an 80×24 grid of our own behind the `vte` parser); off (every other session) it is not fed at all.")
w("")
w("## 4. Many sessions: N consoles driven at once by one process")
w("")
w("`benches/sessions.rs`. **replay**: N doctor checks at once, each against its own replay of")
w("`fixtures/doctor/home-777-check.cast` (log in, wait until all N are logged in, examine, log")
w("out). **pty**: N `sh -c 'stty -echo; echo READY; exec cat'` under their own PTYs, all opened")
w(f"before any round trip, then {pty_cycles} round trips each. Memory per session = (peak RSS − RSS before")
w("the first session) / N; CPU is the bench process's own (user + system); the programs under")
w("the PTYs (`sh`, the `stty` it runs, `cat`) are counted apart, from their start to their end,")
w("on the same cores: their CPU over the cores is about the least the opening can take (their ends included). " + limits + ".")
w("")
w("| consoles | sessions | median s | all open after s | CPU s | CPU ms per session | programs' CPU s | peak RSS MiB | KiB per session | runs |")
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for key in sorted((k for k in rows if k[0] == "many_sessions"), key=lambda k: (k[2] != "replay", k[1])):
    n = key[1]
    w(f"| {key[2]} | {n:,} | {med(key, 'seconds'):.2f} | {med(key, 'all_alive_after_s'):.2f} "
      f"| {med(key, 'cpu_seconds'):.2f} | {med(key, 'cpu_ms_per_session'):.2f} "
      f"| {programs_cpu(key)} "
      f"| {med(key, 'peak_rss_kib') / 1024:.1f} | {med(key, 'kib_per_session'):.0f} | {len(rows[key])} |")
w("")
w("## 5. The job itself: repairing the seed's refused key on a lab VM")
w("")
job = [k for k in rows if k[0] == "job"]
if not job:
    w(f"Not measured in this run: {job_skipped or 'no successful run'}.")
else:
    w("The lab VM (Debian 12 under QEMU, its serial console on a Unix socket) with `lab break")
    w("home-777` applied before every run (so every run starts from the same broken state, and the")
    w("break, which goes over SSH, proves the previous repair worked). **ours**: `ec2-serial-expect")
    w("doctor unix:SOCKET --user ec2-user --password-file F --fix` (log in, gather every fact,")
    w("diagnose, repair and look again at what the repairs changed, log out; exit 0 = repaired and")
    w("verified).")
    w("**Tcl Expect**: `benches/seed_repair.exp`, the seed article's five `chown`/`chmod` commands")
    w("through sudo after logging in, then logout; no diagnosis and no verification. Round trips:")
    w("commands run at the shell prompt (the doctor's report counts them as `round_trips`). CPU:")
    w("the CLI's own for ours (from `wait4`); `expect` and the `socat` it spawns for Tcl Expect (from")
    w("`/usr/bin/time`, which counts in 10 ms ticks here).")
    w("")
    w("| implementation | median s | min s | max s | round trips | CPU s | ours / this | runs |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    ours_job = med(("job", 1, "ours"), "seconds")
    for impl, name in [("ours", "**ec2-serial-expect doctor --fix**"), ("tcl_expect", "Tcl Expect: the seed's five commands")]:
        key = ("job", 1, impl)
        if key not in rows:
            continue
        secs = [r[0]["seconds"] for r in rows[key]]
        r = ratio(ours_job, med(key, "seconds")) if ours_job and impl != "ours" else ""
        # Ours runs under a Python wrapper: its JSON has the CLI's own CPU time.
        cpu_s = med(key, "cpu_seconds") if "cpu_seconds" in rows[key][0][0] else statistics.median(cpu[key])
        w(f"| {name} | {statistics.median(secs):.2f} | {min(secs):.2f} | {max(secs):.2f} "
          f"| {med(key, 'round_trips'):.0f} | {cpu_s:.2f} | {r} | {len(secs)} |")
    # Where the time goes: medians of each phase over the same runs.
    phased = [(impl, ("job", 1, impl)) for impl in ("ours", "tcl_expect")
              if ("job", 1, impl) in rows and "login_seconds" in rows[("job", 1, impl)][0][0]]
    if phased:
        w("")
        w("Where the time goes (medians of each phase over the same runs). **login**: connect to a")
        w("synchronised shell prompt as the user (ours: until the prompt is our own and `id` said who")
        w("we are; Tcl Expect: until a `$ ` ends the text). **diagnosis**: sudo's first use and one root")
        w("command gathering every fact (Tcl Expect has none). **repair**: ours, the guarded repairs and")
        w("the verification in one root command; Tcl Expect, its five sudo commands. **logout**: `exit`")
        w("until the logout is proven (ours: the shell's EXIT trap saying its parent `login` ends the")
        w("session; Tcl Expect: getty's `login:` back). Every run starts 3 s after the break, with getty's")
        w("prompt back whoever ran before.")
        w("")
        w("| implementation | login s | diagnosis s | repair s | logout s | total s |")
        w("|---|---:|---:|---:|---:|---:|")
        phase = lambda key, name: med(key, name) if name in rows[key][0][0] else None
        cell = lambda v: f"{v:.2f}" if v is not None else "—"
        for impl, key in phased:
            name = "**ec2-serial-expect**" if impl == "ours" else "Tcl Expect"
            w(f"| {name} | {cell(phase(key, 'login_seconds'))} | {cell(phase(key, 'gather_seconds'))} "
              f"| {cell(phase(key, 'repair_seconds'))} | {cell(phase(key, 'logout_seconds'))} "
              f"| {med(key, 'seconds'):.2f} |")
        if len(phased) == 2:
            o, t = phased[0][1], phased[1][1]
            w(f"| ours / Tcl Expect | {ratio(med(o, 'login_seconds'), med(t, 'login_seconds'))} | "
              f"| {ratio(med(o, 'repair_seconds'), med(t, 'repair_seconds'))} "
              f"| {ratio(med(o, 'logout_seconds'), med(t, 'logout_seconds'))} "
              f"| {ratio(med(o, 'seconds'), med(t, 'seconds'))} |")
w("")
key = ("job_replay", 1, "ours")
many = [k for k in rows if k[0] == "job_replay_many"]
if key in rows or many:
    w("**Replays of the recorded repair** (`fixtures/doctor/home-777-fix.cast`: the `doctor --fix")
    w("--add-key` recorded on the lab, served back as the console; a send that differs from the")
    w("recording fails). *One at a time*: `ec2-serial-expect doctor replay:… --fix --add-key`, one")
    w("process per replay, one after another. *All at once*: the sessions bench's `replay N … --fix`,")
    w("N repairs replayed concurrently in one process, each with its own console.")
    w("")
    w("| how | replays | median s | replays per second | CPU ms per replay | KiB per session | runs |")
    w("|---|---:|---:|---:|---:|---:|---:|")
if key in rows:
    secs = med(key, "seconds")
    cpu_ms = med(key, "cpu_seconds") * 1e3
    w(f"| one at a time (CLI) | 1 | {secs:.3f} | {1 / secs:.1f} | {cpu_ms:.0f} | | {len(rows[key])} |")
for k in many:
    secs = med(k, "seconds")
    w(f"| all at once (one process) | {k[1]:,} | {secs:.2f} | {k[1] / secs:.0f} "
      f"| {med(k, 'cpu_ms_per_session'):.2f} | {med(k, 'kib_per_session'):.0f} | {len(rows[k])} |")
w("")
runner = [k for k in rows if k[0] == "test_runner"]
if runner:
    w("## 6. Console tests: many script/recording pairs in one `test` process")
    w("")
    w("`ec2-serial-expect test DIR`: the shipped scripts' recordings (`fixtures/scripts/`, recorded on")
    w("the lab VM: log in, doctor checks and repairs, a key added, a login prompt awaited) copied")
    w("under new names to make N pairs, replayed side by side (`-j` = CPUs) by one process; wall time")
    w("of the whole process, start to exit.")
    w("")
    w("| pairs | median s | pairs per second | CPU s | runs |")
    w("|---:|---:|---:|---:|---:|")
    for k in runner:
        secs = med(k, "seconds")
        w(f"| {k[1]} | {secs:.2f} | {k[1] / secs:.0f} | {statistics.median(cpu[k]):.2f} | {len(rows[k])} |")
    w("")
fleet = sorted(k for k in rows if k[0] == "fleet")
if len(fleet) == 2:
    base = fleet[0]
    w("## 7. A fleet: many replayed targets in one `doctor` process")
    w("")
    w("`doctor --targets FILE -j 1000 --out-dir DIR` over recorded lab consoles (3 of 5 healthy, 2 of")
    w("5 `home-777`), each examined as one `doctor` would (login, gather, checks, logout), each")
    w("target's report and transcript written, into a new directory each run. Peak RSS of the")
    w("process; per target: above the 1-target run, divided by the targets.")
    w("")
    w("| targets | median s | targets per second | peak RSS MiB | KiB per target | CPU s | runs |")
    w("|---:|---:|---:|---:|---:|---:|---:|")
    base_rss = statistics.median(r for _, r in rows[base])
    for k in fleet:
        secs = med(k, "seconds")
        rss = statistics.median(r for _, r in rows[k])
        per = (rss - base_rss) / k[1] if k[1] > 1 else 0
        w(f"| {k[1]} | {secs:.2f} | {k[1] / secs:.0f} | {rss / 1024:.1f} | {per:.0f} | {statistics.median(cpu[k]):.2f} | {len(rows[k])} |")
    w("")
held = sorted(k for k in rows if k[0] == "held")
watched = sorted(k for k in rows if k[0] == "viewers")
if held or watched:
    w("## 8. The gateway: consoles held open, and read-only viewers")
    w("")
    w("`benches/gateway/mod.rs` through the sessions bench. **held**: one gateway holding N consoles")
    w("open (`--hold`, recorded to a directory), each having printed 400 KiB, more than its 256 KiB")
    w("scrollback; the RSS once all settled, above the process before the gateway, divided by N")
    w("(the programs under the PTYs are other processes). **viewers**: a writer's send/expect round")
    w("trips through the gateway to `cat`, first with no viewer, then with V read-only viewers of the")
    w("web page attached (each a WebSocket client reading everything); the difference is what the")
    w("viewers cost the writer's echo (target: at most 10 ms).")
    w("")
    w("| workload | N | KiB per console | all settled after s | peak RSS MiB | runs |")
    w("|---|---:|---:|---:|---:|---:|")
    for k in held:
        w(f"| held consoles | {k[1]} | {med(k, 'kib_per_console'):.0f} | {med(k, 'settled_s'):.1f} | {statistics.median(r for _, r in rows[k]) / 1024:.1f} | {len(rows[k])} |")
    w("")
    w("| viewers | round trips | alone p50 ms | alone p99 ms | watched p50 ms | watched p99 ms | slower p50 ms | slower p99 ms | runs |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in watched:
        f = lambda field: med(k, field)
        w(f"| {k[1]} | {f('cycles'):.0f} | {f('alone_p50_ms'):.2f} | {f('alone_p99_ms'):.2f} | {f('watched_p50_ms'):.2f} | {f('watched_p99_ms'):.2f} | {f('slower_p50_ms'):.2f} | {f('slower_p99_ms'):.2f} | {len(rows[k])} |")
    w("")

# The regression guard: each ratio against its target (issue 35, 36); where
# the committed full run does not meet a target, against what it measured
# there (the floor BENCHMARKS.md explains), so the guard catches a change
# for the worse, not a target still open. Fails a --smoke run by > 25 %.
def big(impl):
    size = max(sizes) if sizes else None
    return paired(("big_output", size, impl), ("big_output", size, "floor"), "seconds")
def round_trip_vs(other):
    key = lambda impl: next((k for k in rows if k[0] == "round_trips" and k[2] == impl), None)
    return paired(key("ours"), key(other), "us_per_cycle")
def held_kib():
    return next((med(k, "kib_per_console") for k in held), None)
def viewers_slower():
    return next((med(k, "slower_p50_ms") for k in watched), None)
# (name, measured, target, an earlier full run's figure where it missed the target;
# kept while the target is met: --smoke runs are shorter and spread wider)
GUARDS = [
    ("PTY big output: ours / raw read loop", big("ours"), 1.05, 1.17),
    ("PTY big output with a transcript: ours / raw read loop", big("ours_transcript"), 1.05, 1.39),
    ("round trips: ours / Tcl Expect", round_trip_vs("tcl_expect"), 0.5, 0.92),
    # Met in quiet runs (1.27-1.45), but a host busy elsewhere slows every event loop
    # (ours, Tcl Expect, expectrl alike) more than the floor's blocking reads: a full run
    # of the same build read 2.30 while ours / Tcl Expect stayed at 0.87, the guard that
    # catches our own regressions whatever the host does. This one only catches gross ones.
    ("round trips: ours / blocking floor", round_trip_vs("floor"), 1.5, 2.3),
    ("KiB per held console (scrollback included)", held_kib(), 1024, None),
    ("writer's echo slower with viewers, p50 ms", viewers_slower(), 10, None),
]
failed_guards = []
w("## Regression guard")
w("")
w("Each figure against its target; where an earlier full run missed a target, against that")
w("run's figure. A `--smoke` run fails when a figure is worse than its bound by more than 25 %.")
w("A timed ratio is the median of each run's own ratio (the two sides ran back to back), so it")
w("can differ from the ratio of the medians above.")
w("")
w("| figure | measured | target | bound (+25 %) | |")
w("|---|---:|---:|---:|---|")
for name, value, target, committed in GUARDS:
    bound = max(target, committed or target) * 1.25
    if value is None:
        w(f"| {name} | not measured | {target} | {bound:.2f} | |")
        continue
    ok = value <= bound
    if not ok:
        failed_guards.append(f"{name}: {value:.2f} > {bound:.2f}")
    w(f"| {name} | {value:.2f} | {target} | {bound:.2f} | {'ok' if ok else '**worse**'} |")
w("")
open(out, "w").write("\n".join(lines) + "\n")
if failed_guards:
    open(out + ".failed", "w").write("\n".join(failed_guards) + "\n")
PY
# What the numbers say: kept by hand in benches/analysis.md, written against
# the committed run (the smoke report leaves it out).
if ! $smoke && [ -f benches/analysis.md ]; then
  cat benches/analysis.md >>"$out"
  echo >>"$out"
fi
{ echo "## Machine"; echo; machine; } >>"$out"
cat >>"$out" <<EOF

Reproduce with \`benches/compare.sh\` (it installs the peers: \`apt-get install expect\`, pexpect
into \`$venv\`, expectrl and rexpect built from \`benches/peers\`; workload 5 needs root and QEMU). Raw results of this run: \`$results\` (not committed).
EOF
log "wrote $out"
if [ -s "$out.failed" ]; then
  echo "regression guard: worse than the target (or the committed figure) by more than 25 %:" >&2
  sed 's/^/  /' "$out.failed" >&2
  $smoke && exit 1
fi
