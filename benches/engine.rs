//! Benchmarks of the expect engine, one workload per invocation, each result
//! printed as one JSON line (so `benches/compare.sh` can run us and the peers
//! — Tcl Expect, pexpect — side by side, each in its own process, and take
//! medians). A bench binary rather than criterion: the workloads are whole
//! processes and PTYs, and the build stays light.
//!
//! ```text
//! engine gen FILE MIB             write MIB MiB of kernel-log-like lines + the marker line
//! engine big-output FILE [--transcript CAST]
//!                                 `cat FILE` under a PTY; seconds until the marker matches
//! engine floor FILE               the same output read through a PTY into nothing (raw read loop)
//! engine round-trips-floor N    the same cycles by blocking write/read on one thread, no
//!                                 engine: what the kernel and `cat` cost (the floor)
//! engine round-trips N [--same-pattern]
//!                                 N send/expect cycles against `cat` under a PTY (echo off);
//!                                 each cycle waits for its own line, or (--same-pattern)
//!                                 always for the same one, which isolates pattern compilation
//! engine in-memory MIB            MIB MiB through the engine's text pipeline and search,
//!                                 no syscalls, against a plain memchr scan; a quarter of
//!                                 that again with the screen model on, of the same
//!                                 stream and of a full-screen menu's redraws
//! ```
//!
//! Every workload reports `peak_rss_kib` (the process's high-water mark), so
//! run one workload per process to compare memory across sizes.

// Shared with the sessions bench, which uses the parts this one does not.
#[allow(dead_code)]
#[path = "support/mod.rs"]
mod support;

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ec2_serial_expect::connect::Console;
use ec2_serial_expect::text::{EscapeStripper, Utf8Decoder};
use ec2_serial_expect::transcript::Recorder;
use ec2_serial_expect::transport::{SendKind, Transport, TransportResult};
use ec2_serial_expect::{Pattern, Session, SessionOptions, Target};
use support::{bench_args, open_cat, parse_count, report, runtime};

/// The regex every harness (ours and the peers') waits for at the end of big output.
const MARKER_REGEX: &str = r"bench marker: all \d+ lines written";
/// Literal that ends the in-memory stream.
const END_OF_STREAM: &str = "BENCH-END-OF-STREAM";
/// Chunk size the in-memory console hands out (a busy socket's read size).
const MEMORY_CHUNK: usize = 64 * 1024;
const MIB: usize = 1024 * 1024;

fn main() {
    let args = bench_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["gen", file, mib] => generate(Path::new(file), parse(mib)),
        ["big-output", file] => big_output(Path::new(file), None),
        ["big-output", file, "--transcript", cast] => {
            big_output(Path::new(file), Some(Path::new(cast)))
        }
        ["floor", file] => floor(Path::new(file)),
        ["round-trips-floor", n] => round_trips_floor(parse(n)),
        ["round-trips", n] => round_trips(parse(n), false),
        ["round-trips", n, "--same-pattern"] => round_trips(parse(n), true),
        ["in-memory", mib] => in_memory(parse(mib)),
        _ => Err(usage()),
    };
    if let Err(e) = result {
        eprintln!("engine bench: {e}");
        std::process::exit(2);
    }
}

fn usage() -> String {
    "usage: engine gen FILE MIB | big-output FILE [--transcript CAST] | floor FILE | \
     round-trips-floor N | round-trips N [--same-pattern] | in-memory MIB"
        .to_string()
}

fn parse(n: &str) -> usize {
    parse_count(n, &usage())
}

type BenchResult = Result<(), String>;

// ---------------------------------------------------------------- corpus

/// Deterministic kernel-log-like lines: dmesg, systemd with colours, cloud-init.
struct KernelLog {
    state: u64,
    line: u64,
}

const MESSAGES: &[&str] = &[
    "usb 1-1: new high-speed USB device number 3 using xhci_hcd",
    "EXT4-fs (nvme0n1p1): mounted filesystem with ordered data mode. Quota mode: none.",
    "audit: type=1400 audit(1700000000.123:45): apparmor=\"STATUS\" operation=\"profile_load\" name=\"/usr/sbin/chronyd\"",
    "systemd[1]: Started \x1b[0;1;39msystemd-journald.service\x1b[0m - Journal Service.",
    "[\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39mlocal-fs.target\x1b[0m - Local File Systems.",
    "random: crng init done",
    "ena 0000:00:05.0 ens5: renamed from eth0",
    "NET: Registered PF_INET6 protocol family",
    "cloud-init[612]: ci-info: |  ens5  | True | 10.0.1.23 | 255.255.255.0 | global | 0a:1b:2c:3d:4e:5f |",
    "sshd[811]: Server listening on 0.0.0.0 port 22.",
    "nvme nvme0: 2/0/0 default/read/poll queues",
    "Freeing unused kernel image (initmem) memory: 2800K",
];

impl KernelLog {
    fn new() -> Self {
        KernelLog {
            state: 0x9e37_79b9_7f4a_7c15,
            line: 0,
        }
    }

    /// Appends one line ending in `eol`.
    fn push_line(&mut self, out: &mut Vec<u8>, eol: &str) {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.line += 1;
        let micros = self.line * 1187 + (self.state >> 40) % 1000;
        let message = MESSAGES[((self.state >> 32) % MESSAGES.len() as u64) as usize];
        let _ = write!(
            out,
            "[{:5}.{:06}] {message}{eol}",
            micros / 1_000_000,
            micros % 1_000_000
        );
    }

    /// At least `bytes` bytes of whole lines.
    fn text(&mut self, bytes: usize, eol: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes + 256);
        while out.len() < bytes {
            self.push_line(&mut out, eol);
        }
        out
    }
}

/// A full-screen program's redraws, at least `bytes` of them: each frame
/// clears the screen and draws a menu of 20 entries in a box (as GRUB's
/// menu, dialog or whiptail do: cursor addressing, colours, box-drawing
/// characters), the highlighted entry one further down each time.
fn menu_frames(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 4096);
    let rule = "─".repeat(76);
    let mut frame = 0;
    while out.len() < bytes {
        frame += 1;
        let _ = write!(out, "\x1b[H\x1b[2J\x1b[0;37;44m┌{rule}┐\x1b[0m");
        for row in 0..20 {
            let highlight = if row == frame % 20 { "\x1b[7m" } else { "" };
            let entry = format!("Debian GNU/Linux, with Linux 6.1.0-{row}-cloud-amd64 ({frame})");
            let _ = write!(out, "\x1b[{};1H│{highlight} {entry:<74} \x1b[0m│", row + 2);
        }
        let _ = write!(
            out,
            "\x1b[22;1H└{rule}┘\x1b[23;1H\x1b[K  Use the ↑ and ↓ keys to select which entry is highlighted.\x1b[{};3H",
            frame % 20 + 2
        );
    }
    out
}

fn generate(file: &Path, mib: usize) -> BenchResult {
    let mut log = KernelLog::new();
    let mut out = io::BufWriter::new(
        std::fs::File::create(file).map_err(|e| format!("{}: {e}", file.display()))?,
    );
    let mut written = 0;
    while written < mib * MIB {
        let chunk = log.text(MIB.min(mib * MIB - written), "\n");
        written += chunk.len();
        out.write_all(&chunk).map_err(|e| e.to_string())?;
    }
    writeln!(out, "bench marker: all {} lines written", log.line).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())
}

// ---------------------------------------------------------------- PTY workloads

fn big_output(file: &Path, transcript: Option<&Path>) -> BenchResult {
    let size = std::fs::metadata(file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    runtime().block_on(async {
        let started = Instant::now();
        let target = Target::Exec {
            argv: vec!["cat".into(), file.display().to_string()],
        };
        let mut session = Console::open(&target)
            .transcript(transcript.map(Path::to_path_buf))
            .session()
            .await
            .map_err(|e| e.to_string())?;
        session
            .expect(
                &[Pattern::regex(MARKER_REGEX)],
                Some(Duration::from_secs(600)),
            )
            .await
            .map_err(|e| e.to_string())?;
        let seconds = started.elapsed().as_secs_f64();
        report(
            "big_output",
            &[
                ("bytes", size as f64),
                ("seconds", seconds),
                ("mib_per_s", size as f64 / MIB as f64 / seconds),
            ],
        );
        Ok(())
    })
}

/// The floor: `cat FILE` under a PTY, read with plain blocking reads until EOF.
fn floor(file: &Path) -> BenchResult {
    let started = Instant::now();
    let mut command = Command::new("cat");
    command.arg(file).stdin(Stdio::null());
    // Only cat holds the slave, so its exit reads as EIO here.
    let (mut child, mut master) = on_a_pty(command, false)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = child.wait();
    report(
        "floor",
        &[
            ("bytes", total as f64),
            ("seconds", seconds),
            ("mib_per_s", total as f64 / MIB as f64 / seconds),
        ],
    );
    Ok(())
}

/// Starts `command` in a session of its own with its stdout (and, with
/// `stdin`, its stdin) on a new PTY; stderr goes nowhere. The master end,
/// blocking: the harness of the floors, with no runtime in the way.
fn on_a_pty(
    mut command: Command,
    stdin: bool,
) -> Result<(std::process::Child, std::fs::File), String> {
    let pty = nix::pty::openpty(None, None).map_err(|e| e.to_string())?;
    let slave = std::fs::File::from(pty.slave);
    let end = || slave.try_clone().map_err(|e| e.to_string());
    if stdin {
        command.stdin(end()?);
    }
    command.stdout(end()?).stderr(Stdio::null());
    // SAFETY: only setsid between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = command.spawn().map_err(|e| e.to_string())?;
    // The command (holding copies of the slave) and our slave go now: only
    // the child holds the PTY open.
    drop(command);
    drop(slave);
    Ok((child, std::fs::File::from(pty.master)))
}

/// The round trips with nothing between us and the kernel: `cat` under a
/// PTY with echo off (as for the engine), each `ping N\r` written with one
/// blocking `write` and read back with blocking `read`s until its line is
/// whole. No runtime, no decoding, no search: what any engine pays at least.
fn round_trips_floor(cycles: usize) -> BenchResult {
    let mut command = Command::new("sh");
    command.args(["-c", "stty -echo; echo READY; exec cat"]);
    let (mut child, mut master) = on_a_pty(command, true)?;
    let mut buf = vec![0u8; 4096];
    let mut seen = Vec::new();
    let mut read_until = |master: &mut std::fs::File, line: &[u8]| -> Result<(), String> {
        loop {
            if let Some(at) = memchr::memmem::find(&seen, line) {
                seen.drain(..at + line.len());
                return Ok(());
            }
            let n = master.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("cat went away".into());
            }
            seen.extend_from_slice(&buf[..n]);
        }
    };
    read_until(&mut master, b"READY\r\n")?;
    let started = Instant::now();
    for i in 0..cycles {
        master
            .write_all(format!("ping {i}\r").as_bytes())
            .map_err(|e| e.to_string())?;
        read_until(&mut master, format!("ping {i}\r\n").as_bytes())?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    report(
        "round_trips_floor",
        &[
            ("cycles", cycles as f64),
            ("seconds", seconds),
            ("us_per_cycle", seconds * 1e6 / cycles as f64),
        ],
    );
    Ok(())
}

fn round_trips(cycles: usize, same_pattern: bool) -> BenchResult {
    runtime().block_on(async {
        let mut s = open_cat(Duration::from_secs(10)).await?;
        let wait = Some(Duration::from_secs(10));
        let started = Instant::now();
        for i in 0..cycles {
            let line = if same_pattern {
                "ping".to_string()
            } else {
                format!("ping {i}")
            };
            s.send_line(&line).await.map_err(|e| e.to_string())?;
            s.expect_exact(&format!("{line}\r\n"), wait)
                .await
                .map_err(|e| e.to_string())?;
        }
        let seconds = started.elapsed().as_secs_f64();
        report(
            if same_pattern {
                "round_trips_same_pattern"
            } else {
                "round_trips"
            },
            &[
                ("cycles", cycles as f64),
                ("seconds", seconds),
                ("us_per_cycle", seconds * 1e6 / cycles as f64),
            ],
        );
        Ok(())
    })
}

// ---------------------------------------------------------------- in memory

/// A console in memory: hands out `total` bytes of the corpus, chunk by
/// chunk, then the end-of-stream literal; writes are swallowed.
struct MemoryConsole {
    corpus: std::sync::Arc<Vec<u8>>,
    offset: usize,
    left: usize,
    ended: bool,
}

#[async_trait]
impl Transport for MemoryConsole {
    async fn read(&mut self, buf: &mut [u8]) -> TransportResult<usize> {
        if self.left == 0 {
            if self.ended {
                return Ok(0);
            }
            self.ended = true;
            buf[..END_OF_STREAM.len()].copy_from_slice(END_OF_STREAM.as_bytes());
            return Ok(END_OF_STREAM.len());
        }
        let n = self
            .left
            .min(buf.len())
            .min(MEMORY_CHUNK)
            .min(self.corpus.len() - self.offset);
        buf[..n].copy_from_slice(&self.corpus[self.offset..self.offset + n]);
        self.offset = (self.offset + n) % self.corpus.len();
        self.left -= n;
        Ok(n)
    }

    async fn write(&mut self, _data: &[u8], _kind: SendKind) -> TransportResult<()> {
        Ok(())
    }

    async fn close(&mut self) -> TransportResult<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

/// 1 literal and 3 regexes, none of which occurs in the corpus.
fn in_memory_patterns() -> Vec<Pattern> {
    vec![
        Pattern::exact(END_OF_STREAM),
        Pattern::regex(r"Kernel panic - not syncing: (.+)"),
        Pattern::regex(r"(\S+) login: $"),
        Pattern::regex(r"Out of memory: Killed process (\d+) \((\w+)\)"),
    ]
}

fn in_memory(mib: usize) -> BenchResult {
    // 8 MiB of distinct lines (bigger than the caches), served cyclically.
    let corpus = std::sync::Arc::new(KernelLog::new().text(8 * MIB, "\r\n"));
    let total = mib * MIB;
    let engine = engine_scan(&corpus, total, false)?;
    // The screen model is slower by nature (every byte moves a cursor over
    // a grid): a quarter of the stream is enough to measure it.
    let screen_total = total.div_ceil(4);
    let screen = engine_scan(&corpus, screen_total, true)?;
    // The screen model's own workload: what it is for.
    let menus = std::sync::Arc::new(menu_frames(8 * MIB));
    let screen_menus = engine_scan(&menus, screen_total, true)?;
    let decode = stage_scan(&corpus, total, false);
    let strip = stage_scan(&corpus, total, true);
    let memchr = memchr_scan(&corpus, total);
    let (combined, one_by_one) = regex_scans(&corpus, total)?;
    let gib = total as f64 / (1024.0 * MIB as f64);
    report(
        "in_memory",
        &[
            ("bytes", total as f64),
            ("seconds", engine),
            ("gib_per_s", gib / engine),
            ("decode_gib_per_s", gib / decode),
            ("decode_strip_gib_per_s", gib / strip),
            ("memchr_gib_per_s", gib / memchr),
            ("combined_regex_gib_per_s", gib / combined),
            ("per_pattern_regex_gib_per_s", gib / one_by_one),
            ("screen_mib", screen_total as f64 / MIB as f64),
            (
                "screen_mib_per_s",
                screen_total as f64 / MIB as f64 / screen,
            ),
            (
                "screen_menus_mib_per_s",
                screen_total as f64 / MIB as f64 / screen_menus,
            ),
        ],
    );
    Ok(())
}

/// The engine: one expect over the whole stream; `screen`: with the screen
/// model on, as once a script has read the screen (`watch_screen`).
fn engine_scan(
    corpus: &std::sync::Arc<Vec<u8>>,
    total: usize,
    screen: bool,
) -> Result<f64, String> {
    let console = MemoryConsole {
        corpus: corpus.clone(),
        offset: 0,
        left: total,
        ended: false,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut s = Session::new(
            Box::new(console),
            Recorder::disabled(),
            SessionOptions::default(),
        );
        if screen {
            s.watch_screen();
        }
        let started = Instant::now();
        let m = s
            .expect(&in_memory_patterns(), Some(Duration::from_secs(600)))
            .await
            .map_err(|e| e.to_string())?;
        if m.index != 0 {
            return Err(format!("pattern #{} matched in the corpus", m.index));
        }
        Ok(started.elapsed().as_secs_f64())
    })
}

/// The text pipeline's first stages alone (decode, then optionally strip),
/// over the same chunks: where the engine's time goes.
fn stage_scan(corpus: &[u8], total: usize, strip: bool) -> f64 {
    let mut decoder = Utf8Decoder::new();
    let mut stripper = EscapeStripper::new();
    let (mut text, mut clean) = (String::new(), String::new());
    let started = Instant::now();
    for chunk in chunks(corpus, total) {
        text.clear();
        decoder.decode(chunk, &mut text);
        if strip {
            clean.clear();
            stripper.strip(&text, &mut clean);
        }
    }
    std::hint::black_box((&text, &clean));
    started.elapsed().as_secs_f64()
}

/// The search alone, two ways, over the same chunks (no decoding): the
/// patterns compiled into one alternation `(p0)|(p1)|…` as the engine does,
/// and each pattern compiled on its own and searched in turn (each then gets
/// its own literal prefilter; the earliest start would win). Evidence for
/// where the engine's time goes, not part of the engine.
fn regex_scans(corpus: &[u8], total: usize) -> Result<(f64, f64), String> {
    let sources: Vec<String> = in_memory_patterns()
        .iter()
        .map(|p| match p {
            Pattern::Regex(s) => s.clone(),
            Pattern::Exact(s) => regex::escape(s),
        })
        .collect();
    let alternation = sources
        .iter()
        .map(|s| format!("({s})"))
        .collect::<Vec<_>>()
        .join("|");
    let combined = regex::Regex::new(&alternation).map_err(|e| e.to_string())?;
    let singles: Vec<regex::Regex> = sources
        .iter()
        .map(|s| regex::Regex::new(s).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let text = std::str::from_utf8(corpus).map_err(|e| e.to_string())?;
    let time = |regexes: &[regex::Regex]| {
        let started = Instant::now();
        let mut found = 0usize;
        for chunk in chunks(text.as_bytes(), total) {
            let chunk = std::str::from_utf8(chunk).unwrap_or("");
            for r in regexes {
                let mut locs = r.capture_locations();
                found += r.captures_read_at(&mut locs, chunk, 0).is_some() as usize;
            }
        }
        std::hint::black_box(found);
        started.elapsed().as_secs_f64()
    };
    Ok((time(std::slice::from_ref(&combined)), time(&singles)))
}

/// Memory bandwidth for this job: a memmem search for the literal.
fn memchr_scan(corpus: &[u8], total: usize) -> f64 {
    let finder = memchr::memmem::Finder::new(END_OF_STREAM.as_bytes());
    let started = Instant::now();
    let mut found = 0usize;
    for chunk in chunks(corpus, total) {
        found += finder.find(chunk).is_some() as usize;
    }
    std::hint::black_box(found);
    started.elapsed().as_secs_f64()
}

/// The chunks the in-memory console hands out, in order.
fn chunks(corpus: &[u8], total: usize) -> impl Iterator<Item = &[u8]> {
    let mut offset = 0;
    let mut left = total;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let n = left.min(MEMORY_CHUNK).min(corpus.len() - offset);
        let chunk = &corpus[offset..offset + n];
        offset = (offset + n) % corpus.len();
        left -= n;
        Some(chunk)
    })
}
