//! Console tests: a script and the recordings it must replay against, found,
//! run side by side and judged (`ec2-serial-expect test`).
//!
//! A console test is a script `NAME.rhai` and one of its recordings,
//! `NAME.cast` or `NAME.VARIANT.cast`, beside the script or in a recordings
//! directory. Replaying it runs the script with the recording as the console:
//! every send must be the one recorded, at its place, and the run must end
//! the way the recording's expectations say (exit 0 unless pinned otherwise).
//! The expectations live beside the recording in `NAME[.VARIANT].expect`, a
//! few lines:
//!
//! ```text
//! # what replaying check.home-777.cast must give
//! var user=ec2-user        # a --var the script was recorded with
//! exit 1                   # the exit code (default 0)
//! fail sshd refuses        # text the fail("...") reason contains
//! ```
//!
//! Secrets need no value: a replay compares a secret send with the
//! recording's `<redacted>`. Re-recording ([`record`]) runs the script on a
//! live console with real secrets and replaces the recording only when the
//! run ends as expected.
//!
//! From Rust, a replay is a console like any other: open it as a session,
//! log in with a shell, run commands. On tokio's paused clock (as in
//! `#[tokio::test(start_paused = true)]`) its waits cost nothing:
//!
//! ```
//! use ec2_serial_expect::connect::Console;
//! use ec2_serial_expect::shell::{LoginSpec, Shell};
//! use ec2_serial_expect::{Secret, Target};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> ec2_serial_expect::Result<()> {
//! // Recorded on the lab VM: log in, `uname -n`, log out.
//! let target: Target = "replay:fixtures/shell/lab-doc-example.cast".parse()?;
//! let mut session = Console::open(&target).session().await?;
//! // A replay compares secret sends with <redacted>: any value does.
//! let spec = LoginSpec::new("ec2-user", Secret::new("password", "not-the-real-one"));
//! let out = Shell::scoped(&mut session, &spec, async |shell| {
//!     shell.run("uname -n").await
//! })
//! .await?;
//! assert_eq!(out.output, "lab-instance\n");
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{run_script, Script, ScriptInputs};
use crate::connect::Console;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use crate::target::Target;

/// One script and one of its recordings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleTest {
    /// The script.
    pub script: PathBuf,
    /// The recording it replays against.
    pub recording: PathBuf,
    /// How the run must end, from the recording's `.expect` file.
    pub expect: Expectation,
}

impl ConsoleTest {
    /// `NAME` or `NAME.VARIANT`: the recording's name without `.cast`.
    pub fn name(&self) -> String {
        let file = self.recording.file_name().unwrap_or_default();
        file.to_string_lossy().trim_end_matches(".cast").to_string()
    }
}

/// How a replayed run must end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Expectation {
    /// The `--var` values the script was recorded with.
    pub vars: BTreeMap<String, String>,
    /// The exit code.
    #[serde(rename = "exit_code")]
    pub exit: i32,
    /// Text the `fail()` reason must contain.
    pub fail: Option<String>,
}

impl Expectation {
    /// Reads `path` (missing: the defaults, exit 0).
    fn read(path: &Path) -> Result<Expectation> {
        match std::fs::read_to_string(path) {
            Ok(text) => Expectation::parse(&text)
                .map_err(|why| Error::usage(format!("{}: {why}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Expectation::default()),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// The `.expect` file's text for this expectation.
    fn render(&self) -> String {
        let mut text = String::new();
        for (name, value) in &self.vars {
            text.push_str(&format!("var {name}={value}\n"));
        }
        if self.exit != 0 {
            text.push_str(&format!("exit {}\n", self.exit));
        }
        if let Some(fail) = &self.fail {
            text.push_str(&format!("fail {fail}\n"));
        }
        text
    }

    fn parse(text: &str) -> std::result::Result<Expectation, String> {
        let mut expect = Expectation::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.split(" #").next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            let value = value.trim();
            let bad = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
            match key {
                "var" => {
                    let (name, v) = value
                        .split_once('=')
                        .ok_or_else(|| bad("expected `var NAME=VALUE`"))?;
                    expect.vars.insert(name.to_string(), v.to_string());
                }
                "exit" => {
                    expect.exit = value
                        .parse()
                        .map_err(|_| bad("expected `exit N` with N a number"))?
                }
                "fail" if !value.is_empty() => expect.fail = Some(value.to_string()),
                _ => return Err(bad("expected `var NAME=VALUE`, `exit N` or `fail TEXT`")),
            }
        }
        Ok(expect)
    }
}

/// What [`discover`] found.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Every script with each of its recordings, in path order.
    pub tests: Vec<ConsoleTest>,
    /// Scripts with no recording (listed, never counted as passed).
    pub unrecorded: Vec<PathBuf>,
}

/// Finds the console tests under `paths` (scripts, or directories searched
/// recursively), with recordings beside each script or, given
/// `recordings`, in that directory.
pub fn discover(paths: &[PathBuf], recordings: Option<&Path>) -> Result<Discovery> {
    let mut scripts = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| {
            Error::usage(format!(
                "{}: {e}; give script files or directories that hold them",
                path.display()
            ))
        })?;
        if meta.is_dir() {
            find_scripts(path, &mut scripts)?;
        } else if path.extension().is_some_and(|e| e == "rhai") {
            scripts.push(path.clone());
        } else {
            return Err(Error::usage(format!(
                "{}: not a .rhai script or a directory",
                path.display()
            )));
        }
    }
    scripts.sort();
    scripts.dedup();
    let mut found = Discovery::default();
    for script in scripts {
        let stem = script
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let casts = recordings_of(&recording_dir(&script, recordings), &stem)?;
        if casts.is_empty() {
            found.unrecorded.push(script);
            continue;
        }
        for recording in casts {
            let expect = Expectation::read(&recording.with_extension("expect"))?;
            found.tests.push(ConsoleTest {
                script: script.clone(),
                recording,
                expect,
            });
        }
    }
    Ok(found)
}

/// Where `script`'s recordings are: `recordings`, else beside it.
fn recording_dir(script: &Path, recordings: Option<&Path>) -> PathBuf {
    recordings.map(Path::to_path_buf).unwrap_or_else(|| {
        // A bare file name's parent is "": the current directory.
        let parent = script.parent().filter(|p| !p.as_os_str().is_empty());
        parent.unwrap_or(Path::new(".")).to_path_buf()
    })
}

impl ConsoleTest {
    /// The test a script without a recording gets when it is recorded the
    /// first time: `STEM.cast` where its recordings go, run with `vars`.
    pub fn first(script: &Path, recordings: Option<&Path>, vars: BTreeMap<String, String>) -> Self {
        let stem = script.file_stem().unwrap_or_default().to_string_lossy();
        ConsoleTest {
            script: script.to_path_buf(),
            recording: recording_dir(script, recordings).join(format!("{stem}.cast")),
            expect: Expectation {
                vars,
                ..Expectation::default()
            },
        }
    }

    /// Whether `pattern` is part of the test's name or its script's path
    /// (`test -k`).
    pub fn is_named_by(&self, pattern: &str) -> bool {
        self.name().contains(pattern) || self.script.to_string_lossy().contains(pattern)
    }
}

fn find_scripts(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        match entry.file_type() {
            Ok(t) if t.is_dir() && !hidden && entry.file_name() != "target" => {
                find_scripts(&path, out)?
            }
            Ok(t) if t.is_file() && path.extension().is_some_and(|e| e == "rhai") => out.push(path),
            _ => {}
        }
    }
    Ok(())
}

/// `STEM.cast` and `STEM.*.cast` in `dir`, sorted.
fn recordings_of(dir: &Path, stem: &str) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::usage(format!(
                "the recordings directory {} does not exist",
                dir.display()
            )))
        }
        Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
    };
    let mut casts: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.strip_suffix(".cast").is_some_and(|rest| {
                rest == stem || rest.strip_prefix(stem).is_some_and(|v| v.starts_with('.'))
            })
        })
        .collect();
    casts.sort();
    Ok(casts)
}

/// How one console test ended.
#[derive(Debug, Clone, Serialize)]
pub struct TestOutcome {
    /// The test.
    pub test: ConsoleTest,
    /// True when the run ended as expected.
    pub passed: bool,
    /// The run's exit code.
    #[serde(rename = "exit_code")]
    pub exit: i32,
    /// Why it failed (what differs), or empty.
    pub message: String,
    /// How long the run took.
    #[serde(rename = "duration_ms", serialize_with = "as_millis")]
    pub duration: Duration,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Replays every test, `jobs` at a time, telling `done` each outcome as it
/// comes; returns the outcomes in the tests' order.
pub async fn run_all(
    tests: Vec<ConsoleTest>,
    jobs: usize,
    done: &mut (dyn FnMut(&TestOutcome) + Send),
) -> Vec<TestOutcome> {
    let gate = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut running = tokio::task::JoinSet::new();
    for (i, test) in tests.into_iter().enumerate() {
        let gate = gate.clone();
        running.spawn(async move {
            let _slot = gate.acquire_owned().await;
            (i, replay(test).await)
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = running.join_next().await {
        if let Ok((i, outcome)) = joined {
            done(&outcome);
            outcomes.push((i, outcome));
        }
    }
    outcomes.sort_by_key(|(i, _)| *i);
    outcomes.into_iter().map(|(_, o)| o).collect()
}

/// Replays one test: the recording is the console, secrets need no value.
pub async fn replay(test: ConsoleTest) -> TestOutcome {
    let started = Instant::now();
    let target = Target::Replay {
        path: test.recording.clone(),
    };
    let inputs = ScriptInputs {
        vars: test.expect.vars.clone(),
        secrets: BTreeMap::new(),
        any_secret: Some(Secret::new("replayed", "replayed-secret")),
    };
    let ran = run(&test.script, Console::open(&target), inputs).await;
    judge(test, ran, started.elapsed())
}

/// Runs `test`'s script on the live console `target` with `secrets`,
/// recording to a new file beside the recording, and puts it in the
/// recording's place only when the run ends as expected (a failed run's
/// new recording is kept as `NAME.new.cast.failed` to look at). While it
/// records, the new file is `NAME.cast.new`: a name discovery never takes
/// for a recording, even if the run is killed.
///
/// With `write_expect`, a passing run also writes the recording's `.expect`
/// (its vars, exit code and `fail` text), so the replay runs as recorded.
pub async fn record(
    test: ConsoleTest,
    console: Console<'_>,
    secrets: BTreeMap<String, Secret>,
    write_expect: bool,
) -> Result<TestOutcome> {
    let started = Instant::now();
    let fresh = test.recording.with_extension("cast.new");
    let console = console.transcript(fresh.clone());
    let inputs = ScriptInputs {
        vars: test.expect.vars.clone(),
        secrets,
        any_secret: None,
    };
    let ran = run(&test.script, console, inputs).await;
    let recording = test.recording.clone();
    let outcome = judge(test, ran, started.elapsed());
    let keep = if outcome.passed {
        recording.clone()
    } else {
        recording.with_extension("new.cast.failed")
    };
    if fresh.exists() {
        std::fs::rename(&fresh, &keep).map_err(|e| {
            Error::io(
                format!("moving {} to {}", fresh.display(), keep.display()),
                e,
            )
        })?;
    }
    let sidecar = recording.with_extension("expect");
    let text = outcome.test.expect.render();
    if outcome.passed && write_expect && (!text.is_empty() || sidecar.exists()) {
        // Never through a link or FIFO someone planted beside the recording.
        crate::private_file::write(&sidecar, text.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", sidecar.display()), e))?;
    }
    Ok(outcome)
}

async fn run(script: &Path, console: Console<'_>, inputs: ScriptInputs) -> Result<()> {
    let script = Script::read(script)?;
    let session = console.session().await?;
    run_script(session, script, inputs, None).await.map(|_| ())
}

/// Compares how the run ended with what the test expects.
fn judge(test: ConsoleTest, ran: Result<()>, duration: Duration) -> TestOutcome {
    let (exit, error) = match &ran {
        Ok(()) => (0, None),
        Err(e) => (e.exit_code().code(), Some(e)),
    };
    let reason = error.and_then(|e| match e.kind() {
        ErrorKind::Problems(reason) => Some(reason.as_str()),
        _ => None,
    });
    let mut wrong = Vec::new();
    if exit != test.expect.exit {
        wrong.push(format!("expected exit {}, got {exit}", test.expect.exit));
    }
    if let Some(want) = &test.expect.fail {
        if !reason.is_some_and(|r| r.contains(want.as_str())) {
            wrong.push(format!(
                "expected fail() saying {want:?}, got {}",
                reason.map_or("no fail()".to_string(), |r| format!("{r:?}"))
            ));
        }
    }
    let message = match (wrong.is_empty(), error) {
        (true, _) => String::new(),
        (false, Some(e)) => format!("{}: {e}", wrong.join("; ")),
        (false, None) => wrong.join("; "),
    };
    TestOutcome {
        passed: wrong.is_empty(),
        test,
        exit,
        message,
        duration,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_read_vars_exit_and_fail_text() {
        let e = Expectation::parse(
            "# pinned\nvar user=ec2-user\nvar x=a=b  # comment\nexit 1\nfail sshd refuses\n",
        )
        .unwrap();
        assert_eq!(e.vars["user"], "ec2-user");
        assert_eq!(e.vars["x"], "a=b");
        assert_eq!(e.exit, 1);
        assert_eq!(e.fail.as_deref(), Some("sshd refuses"));
        let bad = Expectation::parse("exit one\n").unwrap_err();
        assert!(bad.contains("line 1") && bad.contains("exit N"), "{bad}");
        assert!(Expectation::parse("exits 1\n").is_err());
    }

    #[test]
    fn recordings_are_the_script_name_or_a_dotted_variant() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "check.cast",
            "check.home-777.cast",
            "checker.cast",
            "check.rhai",
            "other.cast",
        ] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let names: Vec<String> = recordings_of(dir.path(), "check")
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, ["check.cast", "check.home-777.cast"]);
    }
}
