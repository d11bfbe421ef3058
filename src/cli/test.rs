//! `test [PATH…]`: console tests replayed side by side, reported one line
//! each and as a summary, optionally as JUnit XML; `test --update` re-records
//! them from a live console ([`crate::script::suite`] does the work).

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::{connect_options, session_options, Common, OutputFormat, TestArgs};
use crate::cli::stdout::{json_line, outln};
use crate::connect::Console;
use crate::error::{Error, ExitCode, Result};
use crate::script::suite::{self, ConsoleTest, TestOutcome};
use crate::script::ScriptInputs;
use crate::target::Target;

/// `test --output json`: the last line.
#[derive(Serialize)]
struct TestSummary<'a> {
    passed: usize,
    failed: usize,
    unrecorded: &'a [std::path::PathBuf],
    duration_ms: u64,
}

/// Runs `test`.
pub(super) async fn command(args: TestArgs, common: Common) -> Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        vec![".".into()]
    } else {
        args.paths.clone()
    };
    let found = select(&args, suite::discover(&paths, args.recordings.as_deref())?)?;
    if found.tests.is_empty() {
        let selected = match &args.filter {
            Some(pattern) => format!(" named by -k {pattern:?}"),
            None => String::new(),
        };
        return Err(Error::usage(format!(
            "no console tests{selected} under {}: a test is a SCRIPT.rhai with a recording SCRIPT.cast or \
             SCRIPT.VARIANT.cast beside it (or in --recordings DIR); make the first recording with \
             `ec2-serial-expect test SCRIPT.rhai --update --target TARGET [--var NAME=VALUE]…`",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    let started = Instant::now();
    let human = common.output == OutputFormat::Human;
    let outcomes = if args.update {
        let write_expect = !args.vars.is_empty();
        update(&args, &common, found.tests, human, write_expect).await?
    } else {
        let jobs = args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let mut show = |o: &TestOutcome| {
            let _ = if human {
                print_outcome(o)
            } else {
                json_line(o)
            };
        };
        suite::run_all(found.tests, jobs, &mut show).await
    };
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let failed = outcomes.len() - passed;
    if let Some(file) = &args.junit {
        write_junit(file, &outcomes, started.elapsed().as_secs_f64())?;
    }
    if human {
        for script in &found.unrecorded {
            outln!("no recording: {} (not run)", script.display())?;
        }
        let unrecorded = match found.unrecorded.len() {
            0 => String::new(),
            n => format!(", {n} script(s) without recordings"),
        };
        outln!(
            "{passed} passed, {failed} failed{unrecorded} in {:.2} s",
            started.elapsed().as_secs_f64()
        )?;
    } else {
        json_line(&TestSummary {
            passed,
            failed,
            unrecorded: &found.unrecorded,
            duration_ms: started.elapsed().as_millis() as u64,
        })?;
    }
    Ok(if failed == 0 {
        ExitCode::Success
    } else {
        ExitCode::Problems
    })
}

/// The tests `-k` names, with the `--var`s; with `--update`, a script
/// without a recording gets its first one.
fn select(args: &TestArgs, mut found: suite::Discovery) -> Result<suite::Discovery> {
    let vars = ScriptInputs::from_args(&args.vars, &[], &super::prompt::hidden)?.vars;
    if let Some(pattern) = &args.filter {
        found.tests.retain(|t| t.is_named_by(pattern));
        found
            .unrecorded
            .retain(|s| s.to_string_lossy().contains(pattern.as_str()));
    }
    for test in &mut found.tests {
        test.expect.vars.extend(vars.clone());
    }
    if args.update {
        // What .expect cannot hold as written (it reads a line, trimmed, to
        // ` #`) would replay with another value than it was recorded with.
        if let Some((name, _)) = vars
            .iter()
            .find(|(_, v)| v.contains('\n') || v.contains(" #") || v.trim() != v.as_str())
        {
            return Err(Error::usage(format!(
                "--var {name}=…: a value recorded into .expect cannot hold a newline, ` #` or \
                 spaces at its ends; pass it another way (a secret, or a value without them)"
            )));
        }
        let first: Vec<ConsoleTest> = found
            .unrecorded
            .drain(..)
            .map(|s| ConsoleTest::first(&s, args.recordings.as_deref(), vars.clone()))
            .collect();
        found.tests.extend(first);
    }
    Ok(found)
}

/// Re-records every test from `--target`, one at a time.
async fn update(
    args: &TestArgs,
    common: &Common,
    tests: Vec<ConsoleTest>,
    human: bool,
    write_expect: bool,
) -> Result<Vec<TestOutcome>> {
    let target: Target = args
        .target
        .as_deref()
        .ok_or_else(|| Error::usage("--update needs --target TARGET, the live console"))?
        .parse()?;
    if matches!(target, Target::Replay { .. }) {
        return Err(Error::usage(
            "--update records from a live console; --target replay:… would only copy a recording",
        ));
    }
    let secrets = ScriptInputs::from_args(&[], &args.secrets, &super::prompt::hidden)?.secrets;
    let console = Console::open(&target)
        .connect(connect_options(common).await?)
        .options(session_options(common)?);
    let mut outcomes = Vec::new();
    for test in tests {
        let first = !test.recording.exists();
        let outcome = suite::record(
            test,
            console.clone(),
            secrets.clone(),
            write_expect || first,
        )
        .await?;
        if human {
            let what = if outcome.passed {
                "updated"
            } else {
                "NOT updated"
            };
            outln!("{what}: {}", outcome.test.recording.display())?;
            if !outcome.passed {
                outln!("      {}", outcome.message)?;
            }
        } else {
            json_line(&outcome)?;
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

fn print_outcome(o: &TestOutcome) -> Result<()> {
    let verdict = if o.passed { "ok  " } else { "FAIL" };
    outln!(
        "{verdict}  {} @ {} ({} ms)",
        o.test.script.display(),
        o.test.recording.display(),
        o.duration.as_millis()
    )?;
    if !o.passed {
        outln!("      {}", o.message)?;
    }
    Ok(())
}

/// The outcomes as JUnit XML: one test suite, a test case per recording
/// (class: the script, name: the recording), a `failure` for each that did
/// not end as expected. Written by hand: a few escaped strings do not need an
/// XML library.
fn write_junit(file: &Path, outcomes: &[TestOutcome], seconds: f64) -> Result<()> {
    let failures = outcomes.iter().filter(|o| !o.passed).count();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"{}\" failures=\"{failures}\" time=\"{seconds:.3}\">\n\
         <testsuite name=\"ec2-serial-expect console tests\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{seconds:.3}\">\n",
        outcomes.len(),
        outcomes.len()
    );
    for o in outcomes {
        xml.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"{}\" file=\"{}\" time=\"{:.3}\">",
            escape(&o.test.script.display().to_string()),
            escape(&o.test.name()),
            escape(&o.test.recording.display().to_string()),
            o.duration.as_secs_f64()
        ));
        if !o.passed {
            xml.push_str(&format!(
                "\n    <failure message=\"{}\" type=\"exit {}\">{}</failure>\n  ",
                escape(o.message.lines().next().unwrap_or("")),
                o.exit,
                escape(&o.message)
            ));
        }
        xml.push_str("</testcase>\n");
    }
    xml.push_str("</testsuite>\n</testsuites>\n");
    // As every document the tool writes: no secret the process knows.
    let xml = crate::secret::scrub_known(&xml);
    crate::private_file::write(file, xml.as_bytes()).map_err(|e| {
        Error::usage(format!(
            "cannot write the JUnit report {}: {e}",
            file.display()
        ))
    })
}

/// Text safe inside an XML attribute or element: the five special
/// characters escaped, and what XML 1.0 cannot hold at all (control
/// characters, U+FFFE and U+FFFF) dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn xml_text_is_escaped_and_control_characters_dropped() {
        assert_eq!(
            escape("a<b>&\"c'\u{1b}[0m\n"),
            "a&lt;b&gt;&amp;&quot;c&apos;[0m\n"
        );
        // Found in the audit: U+FFFF in a test name made the report unreadable.
        assert_eq!(escape("t\u{FFFF}\u{FFFE}\u{FFFD}"), "t\u{FFFD}");
    }

    #[test]
    fn a_report_with_every_character_is_well_formed_xml() {
        let name: String = (0u32..0x11000).filter_map(char::from_u32).collect();
        let xml = format!("<t n=\"{}\">{}</t>", escape(&name), escape(&name));
        roxmltree::Document::parse(&xml).expect("well-formed XML");
    }
}
