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
//! crypt hash does (`chpasswd -e`, fed from a pipe, not argv), and the
//! session redacts that too.

mod grub_defaults;

use crate::doctor::facts::UserName;
use crate::doctor::RootConsole;
use crate::error::{Error, Result};

/// Ubuntu's cloud images keep their GRUB settings here, overriding
/// `/etc/default/grub`.
const UBUNTU_CLOUD: &str = "/etc/default/grub.d/50-cloudimg-settings.cfg";

/// What to prepare.
#[derive(Debug, Clone)]
pub struct Request {
    /// The password user to create when missing (with sudo).
    pub rescue_user: UserName,
}

/// What the machine has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Whether the rescue user exists.
    pub user_exists: bool,
    /// The group that gives sudo (`sudo` on Debian/Ubuntu, `wheel` on
    /// RHEL/Amazon Linux), if there is one.
    pub admin_group: Option<String>,
    /// The GRUB defaults file and its text, if there is one.
    pub grub: Option<(String, String)>,
    /// The command that regenerates GRUB's menu from the defaults.
    pub regenerate: Option<String>,
}

/// One change the plan makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
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
        regenerate: String,
    },
}

/// What [`plan`] decided.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The changes, in the order they run.
    pub changes: Vec<Change>,
    /// What is already right, or cannot be done here, in words.
    pub notes: Vec<String>,
}

impl Plan {
    /// Whether the plan creates a user (and so needs a password).
    pub fn creates_user(&self) -> bool {
        self.changes
            .iter()
            .any(|c| matches!(c, Change::CreateUser { .. }))
    }
}

/// Reads what the machine has, as root.
pub async fn examine(console: &mut dyn RootConsole, req: &Request) -> Result<Facts> {
    let user = req.rescue_user.as_str();
    let script = format!(
        "u={user}; if id -u \"$u\" >/dev/null 2>&1; then echo '@@user yes'; else echo '@@user no'; fi; \
         for g in sudo wheel; do if getent group \"$g\" >/dev/null; then echo \"@@group $g\"; break; fi; done; \
         f=/etc/default/grub; [ -f {UBUNTU_CLOUD} ] && f={UBUNTU_CLOUD}; \
         if [ -f \"$f\" ]; then echo \"@@grub $f $(base64 -w0 <\"$f\")\"; fi; \
         if command -v update-grub >/dev/null; then echo '@@regen update-grub'; \
         elif command -v grub2-mkconfig >/dev/null; then echo '@@regen grub2-mkconfig -o /boot/grub2/grub.cfg'; \
         elif command -v grub-mkconfig >/dev/null; then echo '@@regen grub-mkconfig -o /boot/grub/grub.cfg'; fi"
    );
    let (output, status) = console.run_as_root(&script).await?;
    if status != 0 {
        return Err(Error::problems(format!(
            "reading the machine's users and GRUB settings failed ({status}): {}",
            output.trim()
        )));
    }
    parse(&output)
}

fn parse(output: &str) -> Result<Facts> {
    let mut facts = Facts {
        user_exists: false,
        admin_group: None,
        grub: None,
        regenerate: None,
    };
    let mut saw_user = false;
    for line in output.lines().map(str::trim) {
        if let Some(yes) = line.strip_prefix("@@user ") {
            facts.user_exists = yes == "yes";
            saw_user = true;
        } else if let Some(group) = line.strip_prefix("@@group ") {
            facts.admin_group = Some(group.to_string());
        } else if let Some(rest) = line.strip_prefix("@@grub ") {
            let (path, encoded) = rest.split_once(' ').unwrap_or((rest, ""));
            let text = base64_decode(encoded).ok_or_else(|| {
                Error::problems(format!("the machine's {path} came back damaged; try again"))
            })?;
            facts.grub = Some((path.to_string(), text));
        } else if let Some(command) = line.strip_prefix("@@regen ") {
            facts.regenerate = Some(command.to_string());
        }
    }
    if !saw_user {
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

/// Whether GRUB's menu is on the serial console and waits (what the GRUB
/// path needs), or why not.
pub fn grub_ready(facts: &Facts) -> std::result::Result<(), String> {
    match &facts.grub {
        None => Err("no /etc/default/grub (another boot loader?)".into()),
        Some((path, text)) if grub_defaults::with_serial_menu(text) != *text => Err(format!(
            "{path} does not put a waiting menu on the serial console: run `prepare`"
        )),
        Some(_) => Ok(()),
    }
}

/// What must change for both rescue paths to work.
pub fn plan(facts: &Facts, req: &Request) -> Plan {
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
                    regenerate: regenerate.clone(),
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
/// redaction of the hash covers it (a long command travels base64-encoded).
pub async fn apply(
    console: &mut dyn RootConsole,
    plan: &Plan,
    password_hash: Option<&str>,
) -> Result<()> {
    for change in &plan.changes {
        let command = match change {
            Change::CreateUser { user, group } => {
                let hash = password_hash
                    .ok_or_else(|| Error::usage("creating the rescue user needs its password"))?;
                let name = user.as_str();
                let group = group
                    .as_deref()
                    .map(|g| format!(" -G {}", shell_words::quote(g)))
                    .unwrap_or_default();
                // The hash through a pipe: never in a process's argv.
                format!(
                    "useradd -m -s /bin/bash{group} {} && printf '%s\\n' {} | chpasswd -e && sync",
                    shell_words::quote(name),
                    shell_words::quote(&format!("{name}:{hash}"))
                )
            }
            Change::GrubDefaults {
                path,
                text,
                regenerate,
                ..
            } => {
                use base64::Engine;
                let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                let p = shell_words::quote(path);
                format!(
                    "set -e; cp -p {p} {p}.ese-backup; printf %s '{encoded}' | base64 -d >{p}.ese-new; \
                     chmod 0644 {p}.ese-new; mv {p}.ese-new {p}; \
                     {regenerate} >/dev/null 2>&1 || {{ echo '{regenerate} failed'; exit 1; }}; sync"
                )
            }
        };
        let (output, status) = console.run_as_root(&command).await?;
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

    fn facts() -> Facts {
        Facts {
            user_exists: false,
            admin_group: Some("sudo".into()),
            grub: Some((
                "/etc/default/grub".into(),
                "GRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX=\"console=ttyS0\"\n".into(),
            )),
            regenerate: Some("update-grub".into()),
        }
    }

    fn request() -> Request {
        Request {
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
        let prepared = Facts {
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
        let text = "GRUB_TIMEOUT=5\n";
        use base64::Engine;
        let out = format!(
            "@@user no\n@@group wheel\n@@grub /etc/default/grub {}\n@@regen grub2-mkconfig -o /boot/grub2/grub.cfg\n",
            base64::engine::general_purpose::STANDARD.encode(text)
        );
        let facts = parse(&out).unwrap();
        assert_eq!(facts.admin_group.as_deref(), Some("wheel"));
        assert_eq!(facts.grub, Some(("/etc/default/grub".into(), text.into())));
        assert!(parse("bash: command not found").is_err());
    }

    #[test]
    fn no_grub_is_a_note_not_a_change() {
        let plan = plan(
            &Facts {
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
