//! A Rhai script, the kind `ec2-serial-expect run` takes, run from Rust
//! against a local program under a PTY (`exec:`), with its transcript kept.
//!
//! ```sh
//! cargo run --example script_on_a_local_program
//! ```

use ec2_serial_expect::connect::Console;
use ec2_serial_expect::script::{run_script, Script, ScriptInputs};
use ec2_serial_expect::{Result, Target};

/// Types a sum into the shell and reads the answer back.
const SCRIPT: &str = r#"
send_line("echo answer=$((6 * 7))");
let m = expect(["answer=([0-9]+)"], 10);
log("the shell says " + m.groups[1]);
send_line("exit");
"#;

async fn run(transcript: std::path::PathBuf) -> Result<Vec<String>> {
    let target: Target = "exec:sh".parse()?;
    let session = Console::open(&target)
        .transcript(transcript)
        .session()
        .await?;
    let script = Script {
        name: "sum.rhai".into(),
        source: SCRIPT.into(),
    };
    let report = run_script(session, script, ScriptInputs::default(), None).await?;
    Ok(report.logs)
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let dir =
        std::env::temp_dir().join(format!("ec2-serial-expect-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let transcript = dir.join("sum.cast");
    let logs = runtime.block_on(run(transcript.clone()))?;
    for line in &logs {
        println!("{line}");
    }
    println!("transcript: {}", transcript.display());
    assert_eq!(logs, ["the shell says 42"]);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_script_reads_the_answer() {
        super::main().unwrap();
    }
}
