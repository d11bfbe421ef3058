//! The gateway's web page in a real browser: Debian's Chromium driven by
//! Playwright (`tests/browser/web_console.py`), against two real gateways
//! started as a user starts them (the binary), with real shells under PTYs.
//!
//! Tier 1 when the browser is installed (`scripts/setup.sh` installs
//! Chromium and Playwright); CI must have it. Without it, the test records
//! why it did not run in `target/not-run/`, which `scripts/test.sh` reports
//! and does not count as passed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ec2-serial-expect");
const PYTHON: &str = "/opt/ese-browser/bin/python";
const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN: &str = "browser-test-token-0123456789abcdef";
const HELD_SESSION_SECS: u64 = 12;

/// A gateway process, stopped when dropped.
struct Gateway {
    child: Child,
    url: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `gateway --web` with `args`, and waits for its page's address.
fn gateway(args: &[&str]) -> Gateway {
    let mut child = Command::new(BIN)
        .args([
            "--token-env",
            "WEB_TOKEN",
            "gateway",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--auth", "token", "--web", "--on-disconnect", "keep"])
        .args(args)
        .env("WEB_TOKEN", TOKEN)
        .env("PS1", "web$ ")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("web page at ") {
                let _ = tx.send(url.trim_end_matches('/').to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the gateway did not say where its web page is");
    Gateway { child, url }
}

/// Says why the browser test cannot run here, if it cannot.
fn browser_missing() -> Option<String> {
    let missing: Vec<&str> = [PYTHON, CHROMIUM]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "web_browser: {} not installed (run scripts/setup.sh as root)",
            missing.join(" and ")
        )
    })
}

fn not_run(why: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/not-run");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("web_browser"), format!("{why}\n")).unwrap();
}

#[test]
fn the_web_page_in_a_real_browser_signs_in_writes_watches_records_and_holds() {
    if let Some(why) = browser_missing() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the browser test: {why}"
        );
        not_run(&why);
        return;
    }
    let records = tempfile::tempdir().unwrap();
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-shots");
    std::fs::create_dir_all(&shots).unwrap();
    let web = gateway(&[
        "--console",
        "lab=exec:sh -i",
        "--record-dir",
        records.path().to_str().unwrap(),
    ]);
    let session = HELD_SESSION_SECS.to_string();
    let held = gateway(&[
        "--hold",
        "--web-session",
        &session,
        "--console",
        "boot=exec:sh -c 'echo BOOT-MARK-$((40+2)); exec sh -i'",
    ]);
    // The held console boots while nobody is attached.
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let out = Command::new(PYTHON)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/web_console.py"))
        .env("WEB_URL", &web.url)
        .env("HELD_URL", &held.url)
        .env("WEB_TOKEN", TOKEN)
        .env("HELD_SESSION_SECS", &session)
        .env("SHOTS", &shots)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the browser test failed after {:?}:\n{text}",
        started.elapsed()
    );
    assert!(text.contains("browser: all steps passed"), "{text}");
    assert!(shots.join("web-console.png").exists());
    // Nothing the browser did put the token into a recording.
    for entry in std::fs::read_dir(records.path()).unwrap() {
        let recorded = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!recorded.contains(TOKEN));
    }
}
