//! Running the repairs as root so that no user can redirect them.
//!
//! Most repairs act inside directories the diagnosed user owns: `~` and
//! `~/.ssh`. That user (or anyone who can write there) may plant a link
//! (`authorized_keys -> /etc/shadow`) or swap one in between our check and
//! our action; a root `chmod`, `chown`, `sed -i` or `>>` that follows it
//! hands a system file to the user. A check right before the action cannot
//! help: the swap can land between the two.
//!
//! So the guarantee is made by construction, in `guard.sh`: before root
//! touches a path, every directory above it is writable by root alone.
//! Directories someone else can write are *locked* (owner root, no group or
//! other write bit) from the top down, each while its parent is already
//! root-only, so nothing on the way can change; a link is followed only
//! where root alone could have made it; the target itself must not be a
//! link, and a file must have a single name (no hard link to a file
//! elsewhere). After the repairs, on every exit path including signals, the
//! directories get their owner and mode back, or what a repair set.
//! Backups go to a root-only directory under `/var/backups`, never beside
//! the file in the user's directory.
//!
//! All repairs of a run go in one script, one console round trip. Each step
//! reports its start, exit status and output behind markers that carry a
//! nonce the script draws on the instance before any step runs, so no file
//! name or command output can forge them (`restorecon -v` prints names the
//! user chose), what we type is the same on every run (replays match), and
//! the report can say which steps ran even when the run was cut short.

use super::checks::{CheckId, Finding, Severity};
use super::repair::{config_line, Repair};

/// The shell functions the steps call.
const LIBRARY: &str = include_str!("guard.sh");

/// [`LIBRARY`] as it is typed: without its comments and indentation, which
/// the shell skips anyway. Every byte crosses the console (and a serial
/// line is slow): this is about half of the file. `guard.sh` has no
/// here-documents or multi-line strings, so no line's content changes.
fn typed_library() -> String {
    let mut typed = String::with_capacity(LIBRARY.len());
    for line in LIBRARY.lines().map(str::trim_start) {
        if !line.is_empty() && !line.starts_with('#') {
            typed.push_str(line);
            typed.push('\n');
        }
    }
    typed
}

/// The script's first line of output: this prefix, then the nonce.
const NONCE_LINE: &str = "@@ese-guard:";

/// One run of repairs: the script to run as root and how to read its output.
pub(super) struct Batch {
    /// The whole script, run in a subshell of the root command.
    pub script: String,
    steps: usize,
}

/// What one step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct StepResult {
    /// Its exit status; `None` when it started but never ended (refused or cut short).
    pub status: Option<i32>,
    /// What it printed.
    pub output: String,
    /// Backups it made.
    pub backups: Vec<String>,
}

/// What the whole run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct BatchResult {
    /// By step; `None` for a step that never started.
    pub steps: Vec<Option<StepResult>>,
    /// Why the guard stopped the run, if it did.
    pub refused: Option<String>,
    /// Directories whose owner and mode could not be given back, with the
    /// owner and mode they should have: `uid:gid mode path`.
    pub unlock_failed: Vec<String>,
    /// Whether the script got to its end (directories given back).
    pub finished: bool,
    /// Why the output cannot be trusted: more than one start line (something
    /// else on the console prints text shaped like the guard's).
    pub unreadable: Option<String>,
}

impl Batch {
    /// Plans `repairs` (already validated with [`Repair::is_safe`]).
    pub(super) fn new(repairs: &[&Repair]) -> Batch {
        let mut script = typed_library();
        for (k, repair) in repairs.iter().enumerate() {
            script.push_str(&format!("ese_step {k} {}\n", q(&step_line(repair))));
        }
        Batch {
            script,
            steps: repairs.len(),
        }
    }

    /// Reads the script's output back.
    pub(super) fn parse(&self, output: &str) -> BatchResult {
        let starts = output
            .lines()
            .filter(|l| l.trim_end_matches('\r').starts_with(NONCE_LINE))
            .count();
        if starts > 1 {
            return BatchResult {
                steps: vec![None; self.steps],
                unreadable: Some(format!(
                    "{starts} start lines of the repair guard: something else on the console prints text shaped like its markers"
                )),
                ..BatchResult::default()
            };
        }
        let mut lines = output.lines();
        let nonce = lines
            .by_ref()
            .find_map(|l| l.trim_end_matches('\r').strip_prefix(NONCE_LINE))
            .unwrap_or_default();
        let mark = format!("@@ese:{nonce}:");
        let mut result = BatchResult {
            steps: vec![None; self.steps],
            ..BatchResult::default()
        };
        let mut current: Option<usize> = None;
        if nonce.is_empty() {
            return result;
        }
        for line in lines {
            let line = line.trim_end_matches('\r');
            let Some(rest) = line.strip_prefix(&mark) else {
                if let Some(step) = current.and_then(|k| result.steps[k].as_mut()) {
                    step.output.push_str(line);
                    step.output.push('\n');
                }
                continue;
            };
            let (word, arg) = rest.split_once(' ').unwrap_or((rest, ""));
            match word {
                "begin" => {
                    current = arg.parse().ok().filter(|&k| k < self.steps);
                    if let Some(k) = current {
                        result.steps[k] = Some(StepResult::default());
                    }
                }
                "end" => {
                    let status = arg.split_whitespace().nth(1).and_then(|s| s.parse().ok());
                    if let Some(step) = current.and_then(|k| result.steps[k].as_mut()) {
                        step.status = status;
                    }
                    current = None;
                }
                "backup" => {
                    if let Some(step) = current.and_then(|k| result.steps[k].as_mut()) {
                        step.backups.push(arg.to_string());
                    }
                }
                "refused" => result.refused = Some(arg.to_string()),
                "unlock-failed" => result.unlock_failed.push(arg.to_string()),
                "done" => result.finished = true,
                _ => {}
            }
        }
        result
    }
}

impl Finding {
    /// A directory the repair guard locked and could not give back
    /// (`owner mode path`, as the guard reports it).
    pub(super) fn unlock_failed(report: &str) -> Finding {
        let mut parts = report.splitn(3, ' ');
        let (owner, mode, path) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        Finding::new(
            CheckId::RepairUnlockFailed,
            Severity::Error,
            format!(
                "the repair locked this directory (owner root) while it ran and could not give it back: \
                 as root, run `chown {owner} {path}` and `chmod {mode} {path}`"
            ),
        )
        .at(path)
        .values(format!("{owner} {mode}"), "root:root")
    }
}

/// The guard.sh line that performs `repair`.
fn step_line(repair: &Repair) -> String {
    match repair {
        Repair::Chown { path, owner, group } => {
            let owner = format!("{owner}:{}", group.as_deref().unwrap_or(""));
            format!("ese_chown {} {}", q(&owner), q(path))
        }
        Repair::Chmod { path, mode } => format!("ese_chmod {} {}", q(mode), q(path)),
        Repair::CreateDir { path, user } => format!("ese_mkdir {} {}", q(user.as_str()), q(path)),
        Repair::CreateFile { path, user } => {
            format!("ese_mkfile {} {}", q(user.as_str()), q(path))
        }
        Repair::StripCr { path } => format!("ese_strip_cr {}", q(path)),
        Repair::AppendKey { path, key } => format!("ese_append {} {}", q(path), q(key.trim())),
        Repair::Restorecon { path } => format!("ese_restorecon {}", q(path)),
        Repair::CommentOutSshd { lines, .. } => {
            let mut parts: Vec<String> = lines
                .iter()
                .filter_map(|l| config_line(l))
                .map(|(file, line)| format!("ese_sshd_off {} {line}", q(&file)))
                .collect();
            parts.push(super::repair::RELOAD_SSHD.to_string());
            parts.join(" && ")
        }
        // `useradd` writes no path a user controls: it adopts a home as it
        // is, or makes a new one, only under a `/home` root alone can write
        // (the check attaches this repair only then).
        Repair::Unlock(_)
        | Repair::Unexpire(_)
        | Repair::RestartSshd
        | Repair::HostKeys
        | Repair::CreateUser { .. } => repair.command(),
    }
}

fn q(s: &str) -> String {
    shell_words::quote(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::facts::UserName;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_typed_library_is_the_same_program_in_fewer_bytes() {
        let typed = typed_library();
        assert!(
            typed.len() * 10 < LIBRARY.len() * 7,
            "{} of {} bytes",
            typed.len(),
            LIBRARY.len()
        );
        let code_lines = |s: &str| -> Vec<String> {
            s.lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect()
        };
        assert_eq!(code_lines(&typed), code_lines(LIBRARY));
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &typed])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn every_step_is_one_quoted_guard_call() {
        let chmod = Repair::Chmod {
            path: "/home/it's me".into(),
            mode: "700".into(),
        };
        let mkdir = Repair::CreateDir {
            path: "/home/u/.ssh".into(),
            user: UserName::parse("u").unwrap(),
        };
        let batch = Batch::new(&[&chmod, &mkdir]);
        let steps: Vec<Vec<String>> = batch
            .script
            .lines()
            .filter(|l| l.starts_with("ese_step "))
            .map(|l| shell_words::split(l).unwrap())
            .collect();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0][..2], ["ese_step", "0"]);
        assert_eq!(
            shell_words::split(&steps[0][2]).unwrap(),
            ["ese_chmod", "700", "/home/it's me"]
        );
        assert_eq!(steps[1][2], "ese_mkdir u /home/u/.ssh");
        assert_eq!(
            batch.script,
            Batch::new(&[&chmod, &mkdir]).script,
            "the same every run"
        );
    }

    #[test]
    fn only_markers_with_the_nonce_count() {
        let r = Repair::HostKeys;
        let batch = Batch::new(&[&r, &r]);
        let n = "0123456789abcdef01234567";
        let out = format!(
            "@@ese:{n}:begin 0\n@@ese-guard:{n}\n@@ese:{n}:begin 0\nok\n@@ese:forged:end 0 0\n@@ese:{n}:backup /var/b/x\n@@ese:{n}:end 0 3\n\
             @@ese:{n}:begin 1\n@@ese:{n}:refused /home/u/.ssh is a symbolic link\n@@ese:{n}:done\n"
        );
        let ran = batch.parse(&out);
        let first = ran.steps[0].as_ref().unwrap();
        assert_eq!(first.status, Some(3));
        assert_eq!(first.output, "ok\n@@ese:forged:end 0 0\n");
        assert_eq!(first.backups, vec!["/var/b/x".to_string()]);
        assert_eq!(ran.steps[1].as_ref().unwrap().status, None);
        assert_eq!(
            ran.refused.as_deref(),
            Some("/home/u/.ssh is a symbolic link")
        );
        assert!(ran.finished);
    }

    /// A start line printed by someone else (before or after ours) makes
    /// the whole output untrusted: the first one used to be taken, and the
    /// markers of its nonce believed.
    #[test]
    fn a_second_start_line_makes_the_output_unreadable() {
        let r = Repair::HostKeys;
        let batch = Batch::new(&[&r]);
        let (n, f) = ("0123456789abcdef01234567", "fedcba9876543210fedcba98");
        let out = format!(
            "@@ese-guard:{f}\n@@ese:{f}:begin 0\n@@ese:{f}:end 0 0\n@@ese:{f}:done\n\
             @@ese-guard:{n}\n@@ese:{n}:begin 0\n@@ese:{n}:unlock-failed 0:0 700 /home/u\n@@ese:{n}:end 0 1\n@@ese:{n}:done\n"
        );
        let ran = batch.parse(&out);
        assert!(ran.unreadable.is_some(), "{ran:?}");
        assert_eq!(ran.steps, vec![None]);
        assert!(!ran.finished);
    }

    /// A user who keeps swapping `~/.ssh`, `authorized_keys` and the old
    /// backup name for links to root's files, while root repairs them again
    /// and again: the guarded repairs never touch root's files (they are
    /// refused, or act on the user's own files), and once the swapping stops
    /// they get their work done. The same attack against the unguarded commands
    /// (the control) does reach a root file, so the attack is real.
    #[test]
    #[ignore = "lab: needs root (files owned by another user; scripts/test.sh runs it as root)"]
    fn a_user_swapping_links_cannot_redirect_the_repairs() {
        let tree = RaceTree::new();
        let user = UserName::parse("nobody").unwrap();
        let (home, ssh, ak) = (
            tree.path("home/u"),
            tree.path("home/u/.ssh"),
            tree.path("home/u/.ssh/authorized_keys"),
        );
        let repairs = [
            Repair::Chmod { path: home.clone(), mode: "700".into() },
            Repair::Chmod { path: ssh.clone(), mode: "700".into() },
            Repair::StripCr { path: ak.clone() },
            Repair::AppendKey {
                path: ak.clone(),
                key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl t".into(),
            },
            Repair::Chmod { path: ak.clone(), mode: "600".into() },
            Repair::Chown { path: ak.clone(), owner: user.as_str().into(), group: None },
            Repair::CreateFile { path: tree.path("home/u/.ssh/new"), user: user.clone() },
        ];
        let attacker = tree.attack();
        for _ in 0..40 {
            let ran = run_guarded(&repairs);
            assert!(ran.finished && ran.unlock_failed.is_empty(), "{ran:?}");
            tree.assert_canaries_untouched();
            let _ = std::fs::remove_file(tree.path("home/u/.ssh/new"));
        }
        drop(attacker);
        // Once the swapping stops (and what it left half-swapped is put
        // back), a run completes and gives the user their directories back,
        // repaired.
        let undo = format!(
            "cd {} && rm -rf .ssh s && mkdir -m 755 .ssh && printf 'k\\r\\n' > .ssh/authorized_keys && chown -R 65534:65534 .ssh",
            q(&home)
        );
        assert!(std::process::Command::new("sh")
            .arg("-c")
            .arg(undo)
            .status()
            .unwrap()
            .success());
        let ran = run_guarded(&repairs);
        assert!(ran.refused.is_none() && ran.finished, "{ran:?}");
        assert!(
            ran.steps
                .iter()
                .all(|s| s.as_ref().is_some_and(|s| s.status == Some(0))),
            "{ran:?}"
        );
        for dir in [&home, &ssh] {
            let meta = std::fs::symlink_metadata(dir).unwrap();
            use std::os::unix::fs::MetadataExt;
            assert_eq!((meta.uid(), meta.mode() & 0o7777), (65534, 0o700), "{dir}");
        }

        // The control: the same attack against the commands the report shows.
        drop(tree);
        let tree = RaceTree::new();
        let plain: Vec<String> = [
            format!("cp -p {ak} {ak}.ese-backup"),
            format!("chmod 700 {}", tree.path("home/u/.ssh")),
            format!("chown nobody: {ak}"),
        ]
        .into_iter()
        .map(|c| c.replace(&ak, &tree.path("home/u/.ssh/authorized_keys")))
        .collect();
        let attacker = tree.attack();
        let mut hit = false;
        // Until the race is won, for up to 30 s: on a busy machine the
        // attacker's swaps land in the window far less often (200 rounds
        // were not always enough in a fresh root under load).
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < until {
            for c in &plain {
                let _ = std::process::Command::new("sh").arg("-c").arg(c).output();
            }
            if !tree.canaries_untouched() {
                hit = true;
                break;
            }
        }
        drop(attacker);
        assert!(
            hit,
            "the control attack never reached a root file: the test would prove nothing"
        );
    }

    /// Runs `repairs` as root in the guard; returns what it reported.
    fn run_guarded(repairs: &[Repair]) -> BatchResult {
        let batch = Batch::new(&repairs.iter().collect::<Vec<_>>());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&batch.script)
            .output()
            .unwrap();
        batch.parse(&String::from_utf8_lossy(&out.stdout))
    }

    /// Found in review: a link planted in a world-writable directory that an
    /// earlier step makes root-only (`chmod 755 /home`, `chown root /home`)
    /// was then trusted, and root handed its own file to the user.
    #[test]
    #[ignore = "lab: needs root (files owned by another user; scripts/test.sh runs it as root)"]
    fn a_link_in_a_directory_an_earlier_step_tightens_is_still_refused() {
        for first in ["chmod", "chown"] {
            let tree = RaceTree::new();
            let shared = tree.path("home");
            let planted = format!(
                "chmod 777 {s} && mkdir -p {c}/.ssh && printf %s {k} > {c}/.ssh/authorized_keys && \
                 chmod 600 {c}/.ssh/authorized_keys && rm -rf {s}/u && ln -s {c} {s}/u && chown -h 65534:65534 {s}/u",
                s = q(&shared),
                c = q(&tree.path("canarydir")),
                k = q(CANARY),
            );
            assert!(std::process::Command::new("sh")
                .arg("-c")
                .arg(&planted)
                .status()
                .unwrap()
                .success());
            let tighten = if first == "chmod" {
                Repair::Chmod {
                    path: shared.clone(),
                    mode: "755".into(),
                }
            } else {
                Repair::Chown {
                    path: shared.clone(),
                    owner: "root".into(),
                    group: Some("root".into()),
                }
            };
            let ak = tree.path("home/u/.ssh/authorized_keys");
            let ran = run_guarded(&[
                tighten,
                Repair::Chown { path: ak.clone(), owner: "nobody".into(), group: None },
                Repair::AppendKey { path: ak, key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl t".into() },
            ]);
            assert!(ran.refused.is_some(), "{first}: {ran:?}");
            let key = tree.root.join("canarydir/.ssh/authorized_keys");
            use std::os::unix::fs::MetadataExt;
            assert_eq!(std::fs::metadata(&key).unwrap().uid(), 0, "{first}");
            assert_eq!(std::fs::read_to_string(&key).unwrap(), CANARY, "{first}");
            assert!(
                ran.finished && ran.unlock_failed.is_empty(),
                "{first}: {ran:?}"
            );
        }
    }

    /// Found in review: a directory given back before its child (the child
    /// was locked first) let its user swap the child for a link, which the
    /// child's unlock then followed. Every directory a repair changes stays
    /// locked to the end, and children are given back first.
    #[test]
    #[ignore = "lab: needs root (files owned by another user; scripts/test.sh runs it as root)"]
    fn directories_are_given_back_deepest_first() {
        use std::os::unix::fs::MetadataExt;
        let tree = RaceTree::new();
        let home = tree.path("home/u");
        assert!(std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("chown 0:0 {h} && chmod 755 {h}", h = q(&home)))
            .status()
            .unwrap()
            .success());
        let steps = [
            Repair::Chmod {
                path: tree.path("home/u/.ssh/authorized_keys"),
                mode: "600".into(),
            },
            Repair::Chown {
                path: home.clone(),
                owner: "nobody".into(),
                group: None,
            },
        ];
        let batch = Batch::new(&steps.iter().collect::<Vec<_>>());
        let out = std::process::Command::new("sh")
            .arg("-x")
            .arg("-c")
            .arg(&batch.script)
            .output()
            .unwrap();
        let ran = batch.parse(&String::from_utf8_lossy(&out.stdout));
        assert!(ran.refused.is_none() && ran.finished, "{ran:?}");
        // The order the shell ran the chowns in.
        let trace = String::from_utf8_lossy(&out.stderr);
        let chowns: Vec<&str> = trace
            .lines()
            .filter(|l| l.starts_with("+ chown") && !l.contains(" 0:0 "))
            .collect();
        let at = |suffix: &str| chowns.iter().position(|l| l.ends_with(suffix));
        let (ssh, home_at) = (at("/home/u/.ssh"), at("/home/u"));
        assert!(
            ssh.is_some() && home_at.is_some() && ssh < home_at,
            "{chowns:#?}"
        );
        let meta = |p: &str| std::fs::symlink_metadata(p).unwrap();
        assert_eq!(meta(&home).uid(), 65534, "the home went to its user");
        assert_eq!(
            meta(&tree.path("home/u/.ssh")).uid(),
            65534,
            "and .ssh back to its user"
        );
    }

    /// Found in review: a second signal while the exit trap gave the
    /// directories back cut it short and left them root-owned.
    #[test]
    #[ignore = "lab: needs root (files owned by another user; scripts/test.sh runs it as root)"]
    fn a_second_signal_cannot_cut_the_unlock_short() {
        use std::os::unix::fs::MetadataExt;
        use std::os::unix::process::CommandExt;
        for round in 0..20 {
            let tree = RaceTree::new();
            let ak = tree.path("home/u/.ssh/authorized_keys");
            let steps: Vec<Repair> = (0..30)
                .map(|_| Repair::Chmod {
                    path: ak.clone(),
                    mode: "600".into(),
                })
                .collect();
            let batch = Batch::new(&steps.iter().collect::<Vec<_>>());
            let child = std::process::Command::new("sh")
                .arg("-c")
                .arg(&batch.script)
                .stdout(std::process::Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20 + round));
            for _ in 0..2 {
                // SAFETY: kill(2) on our own child's process group.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            let _ = child.wait_with_output();
            for dir in ["home/u", "home/u/.ssh"] {
                let uid = std::fs::symlink_metadata(tree.root.join(dir))
                    .unwrap()
                    .uid();
                assert_eq!(uid, 65534, "round {round}: {dir} was left locked");
            }
        }
    }

    /// A directory tree under `target/` (not under /tmp, which the guard
    /// would rightly lock as world-writable): `home/u` owned by nobody with
    /// `.ssh/authorized_keys` (CR LF), and root's canaries beside it.
    struct RaceTree {
        root: std::path::PathBuf,
    }

    /// The attacking process group (as nobody), killed on drop: the
    /// group, so that no `ln` it started lands after the attack ended.
    struct Attacker(std::process::Child);

    impl Drop for Attacker {
        fn drop(&mut self) {
            // SAFETY: kill(2) on our own child's process group.
            unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }

    impl Drop for RaceTree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    const CANARY: &str = "root's canary\n";
    static TREES: AtomicUsize = AtomicUsize::new(0);

    impl RaceTree {
        fn new() -> RaceTree {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join(format!(
                    "guard-race-{}-{}",
                    std::process::id(),
                    TREES.fetch_add(1, Ordering::Relaxed)
                ));
            let setup = format!(
                "set -e; umask 022; mkdir -p {r}/home/u/.ssh {r}/canarydir; \
                 printf %s {c} > {r}/canary; printf %s {c} > {r}/canarydir/authorized_keys; \
                 printf 'ssh-ed25519 AAAA x\\r\\n' > {r}/home/u/.ssh/authorized_keys; \
                 chown -R 65534:65534 {r}/home/u; chmod 777 {r}/home/u; chmod 755 {r}/home/u/.ssh",
                r = q(&root.display().to_string()),
                c = q(CANARY)
            );
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(&setup)
                .status()
                .unwrap();
            assert!(status.success(), "setting up {}", root.display());
            RaceTree { root }
        }

        fn path(&self, rel: &str) -> String {
            self.root.join(rel).display().to_string()
        }

        /// Starts nobody's loop of swaps in `home/u`.
        fn attack(&self) -> Attacker {
            use std::os::unix::process::CommandExt;
            let script = format!(
                "cd {h} || exit 1; while :; do \
                   ln -sfn {c} .ssh/authorized_keys.ese-backup 2>/dev/null; \
                   if mv .ssh/authorized_keys .ssh/k 2>/dev/null; then ln -s {c} .ssh/authorized_keys 2>/dev/null; \
                     rm -f .ssh/authorized_keys 2>/dev/null; mv .ssh/k .ssh/authorized_keys 2>/dev/null; fi; \
                   if mv .ssh s 2>/dev/null; then ln -s {d} .ssh 2>/dev/null; rm -f .ssh 2>/dev/null; fi; \
                   [ -d s ] && [ ! -e .ssh ] && mv s .ssh 2>/dev/null; \
                 done",
                h = q(&self.path("home/u")),
                c = q(&self.path("canary")),
                d = q(&self.path("canarydir")),
            );
            let child = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .uid(65534)
                .gid(65534)
                .process_group(0)
                .spawn()
                .unwrap();
            Attacker(child)
        }

        fn canaries_untouched(&self) -> bool {
            use std::os::unix::fs::MetadataExt;
            let root_owned = |rel: &str, mode: u32| {
                let meta = std::fs::symlink_metadata(self.root.join(rel)).unwrap();
                meta.uid() == 0 && meta.gid() == 0 && meta.mode() & 0o7777 == mode
            };
            let intact =
                |rel: &str| std::fs::read_to_string(self.root.join(rel)).unwrap() == CANARY;
            root_owned("canarydir", 0o755)
                && root_owned("canary", 0o644)
                && root_owned("canarydir/authorized_keys", 0o644)
                && intact("canary")
                && intact("canarydir/authorized_keys")
        }

        fn assert_canaries_untouched(&self) {
            assert!(
                self.canaries_untouched(),
                "a root file was changed through a link:\n{}",
                String::from_utf8_lossy(
                    &std::process::Command::new("ls")
                        .arg("-laR")
                        .arg(&self.root)
                        .output()
                        .unwrap()
                        .stdout
                )
            );
        }
    }
}
