//! The library as another crate sees it: a new crate with a path
//! dependency writes the replay test the crate docs and
//! `examples/replay_in_a_test.rs` show, and `cargo test` passes it, using
//! only what is public. A test that reached into a hidden module, or a
//! public item that went private, fails here.
//!
//! It builds the library once more as a dependency (about 1.5 minutes on 2
//! cores; the other dependencies are shared through this target
//! directory), so it runs with the slow tier.

use std::path::Path;
use std::process::Command;

/// The test a user writes in their own crate's `tests/`, word for word the
/// crate docs' example.
const USER_TEST: &str = r#"
use ec2_serial_expect::connect::Console;
use ec2_serial_expect::shell::{LoginSpec, Shell};
use ec2_serial_expect::{Secret, Target};

#[tokio::test(start_paused = true)]
async fn the_recorded_instance_names_itself() {
    let target: Target = "replay:tests/lab-doc-example.cast".parse().unwrap();
    let mut session = Console::open(&target).session().await.unwrap();
    let login = LoginSpec::new("ec2-user", Secret::new("password", "any"));
    let out = Shell::scoped(&mut session, &login, async |shell| shell.run("uname -n").await)
    .await
    .unwrap();
    assert_eq!(out.output, "lab-instance\n");
}

#[tokio::test(start_paused = true)]
async fn a_changed_command_fails_the_replay() {
    let target: Target = "replay:tests/lab-doc-example.cast".parse().unwrap();
    let mut session = Console::open(&target).session().await.unwrap();
    let login = LoginSpec::new("ec2-user", Secret::new("password", "any"));
    let ran = Shell::scoped(&mut session, &login, async |shell| {
        shell.run("uname -a").await
    })
    .await;
    assert!(ran.is_err());
}
"#;

#[test]
#[ignore = "slow: builds a new crate against the library (about 1.5 min); runs with the lab tier"]
fn a_new_crate_replays_a_recording_through_the_public_api() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path();
    std::fs::create_dir_all(krate.join("tests")).unwrap();
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(krate.join("src/lib.rs"), "").unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"my-console-tests\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dev-dependencies]\nec2-serial-expect = {{ path = {:?} }}\n\
             tokio = {{ version = \"1\", features = [\"macros\", \"rt\", \"test-util\"] }}\n\n\
             # The library's own setting, so its dependencies are shared, not rebuilt.\n\
             [profile.dev.package.\"*\"]\nopt-level = 2\n",
            root.display().to_string()
        ),
    )
    .unwrap();
    // The same versions as the library's own build: offline, nothing new.
    std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    std::fs::copy(
        root.join("fixtures/shell/lab-doc-example.cast"),
        krate.join("tests/lab-doc-example.cast"),
    )
    .unwrap();
    std::fs::write(krate.join("tests/replay.rs"), USER_TEST).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    // What cargo told this test binary about this package is not the new
    // crate's business (and changes fingerprints of the shared build).
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if (name.starts_with("CARGO_") && name != "CARGO_HOME")
            || ["LD_LIBRARY_PATH", "OUT_DIR", "RUSTC_WRAPPER"].contains(&name.as_str())
        {
            command.env_remove(name);
        }
    }
    let out = command
        .args(["test", "--offline", "--quiet"])
        .current_dir(krate)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cargo test in the new crate failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("2 passed"),
        "the user's two tests did not both run:\n{stdout}"
    );
}
