//! What a user's shell and `man` get: completion scripts every supported
//! shell accepts, a man page that renders with every command in it, and
//! help that shows a command's own options before the global ones.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ec2-serial-expect"))
}

fn stdout_of(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Feeds `input` to `program args` and returns (success, stdout + stderr).
fn pipe_through(program: &str, args: &[&str], input: &str) -> (bool, String) {
    let out = crate::support::output_with_stdin(Command::new(program).args(args), input);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn bash_accepts_the_completions_and_they_know_the_commands() {
    let script = stdout_of(&["completions", "bash"]);
    let (ok, text) = pipe_through("bash", &["-n"], &script);
    assert!(ok, "bash -n refused the completion script: {text}");
    for word in ["doctor", "--filter", "--out-dir", "completions", "merge"] {
        assert!(script.contains(word), "no {word} in the bash completions");
    }
    for shell in ["zsh", "fish", "powershell"] {
        assert!(
            stdout_of(&["completions", shell]).contains("doctor"),
            "{shell}"
        );
    }
    let out = bin().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown shell is bad usage");
}

#[test]
fn the_man_page_renders_with_every_command() {
    let page = stdout_of(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH"),
        "roff: {}",
        &page[..80.min(page.len())]
    );
    // The page is the program's own text, printed as it is: "a bearer
    // token" is not a credential (printing through the scrubber made it
    // "a bearer <redacted>").
    assert!(!page.contains("<redacted>"), "the man page was scrubbed");
    assert!(page.contains("bearer token"), "the man page was scrubbed");
    let (ok, text) = pipe_through("man", &["-l", "-"], &page);
    assert!(ok, "man -l - failed: {text}");
    for command in [
        "doctor",
        "run",
        "console",
        "gateway",
        "merge",
        "completions",
    ] {
        assert!(
            text.contains(&format!("ec2-serial-expect-{command}")),
            "the rendered page has no {command} section"
        );
    }
    assert!(
        text.contains("--filter"),
        "a subcommand's own options are in it"
    );
    // Issue 34: the global options are described once, not once per
    // command (the page was 1,853 lines), and the page ends as git's and
    // cargo's do.
    let described = text.matches("--host-key-fingerprint <").count();
    assert_eq!(described, 1, "a global option described {described} times");
    assert!(
        page.lines().count() < 1000,
        "{} lines",
        page.lines().count()
    );
    for section in ["EXAMPLES", "EXIT STATUS"] {
        assert!(text.contains(section), "no {section} section");
    }
}

#[test]
fn help_shows_a_commands_own_options_first_and_groups_the_global_ones() {
    let help = stdout_of(&["doctor", "--help"]);
    let at = |heading: &str| {
        help.find(&format!("\n{heading}:\n"))
            .unwrap_or_else(|| panic!("no {heading:?} heading in: {help}"))
    };
    let own = at("Options");
    assert!(help[own..].find("--user").unwrap() < at("Global options") - own);
    assert!(at("Options") < at("Global options"));
    assert!(at("Global options") < at("AWS and EC2 targets (global)"));
    let aws = at("AWS and EC2 targets (global)");
    assert!(help[aws..].contains("--region"), "{help}");
    assert!(
        !help[own..at("Global options")].contains("--region"),
        "AWS flags grouped: {help}"
    );
}

/// Issue 34: `lab status --help` listed --ws-auth and every AWS option. A
/// command's help lists only the global options that apply to it (they
/// still parse everywhere, for scripts that pass them to every command).
#[test]
fn each_commands_help_lists_only_the_global_options_that_apply() {
    for command in [
        &["lab", "status"][..],
        &["lint"],
        &["play"],
        &["merge"],
        &["man"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let help = stdout_of(&args);
        for absent in ["--ws-auth", "--region", "--ca-file", "--transcript"] {
            assert!(
                !help.contains(absent),
                "{command:?} lists {absent}:\n{help}"
            );
        }
        assert!(help.contains("--output"), "{command:?}:\n{help}");
    }
    let demo = stdout_of(&["lab", "demo", "--help"]);
    assert!(
        demo.contains("--transcript") && !demo.contains("--region"),
        "{demo}"
    );
    let doctor = stdout_of(&["doctor", "--help"]);
    for present in ["--ws-auth", "--region", "--transcript", "--output"] {
        assert!(doctor.contains(present), "doctor lacks {present}");
    }
    // Hidden, not removed: a global option still parses where it is hidden.
    let out = bin()
        .args([
            "lint",
            "--region",
            "us-east-1",
            "scripts/examples/wait-for-login.rhai",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
