//! Gathering the facts behind "Server refused our key" in one round trip.
//!
//! A single root shell script (sent with `sudo sh -c`) prints every fact the
//! checks need in sections headed `@@name`: the passwd entry, password
//! status, the `stat` of every path component at once, sshd's effective
//! configuration for the user, the key file's fingerprints, SELinux, mounts,
//! disk space and sshd's log lines naming the user. [`parse`] reads it back
//! strictly: a section that is missing or malformed is reported, not guessed.

use std::collections::HashMap;

/// The section marker prefix; chosen so no tool's output starts with it.
const MARK: &str = "@@ese:";

/// A validated Unix user name: safe inside a shell command even unquoted,
/// and quoted anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// Accepts the portable user-name set (`[a-z_][a-z0-9_.-]*`, optional
    /// trailing `$`, at most 32 characters): a hostile name never becomes a command.
    pub fn parse(name: &str) -> Result<UserName, String> {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && name.trim_end_matches('$').chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')
            });
        if ok {
            Ok(UserName(name.to_string()))
        } else {
            Err(format!(
                "{name:?} is not a valid Unix user name (lowercase letters, digits, '_', '.', '-', starting with a letter or '_')"
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One `stat` line: type, owner, group, octal mode, path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathFacts {
    /// `directory`, `regular file`, `symbolic link`, …
    pub kind: String,
    /// Owner name.
    pub owner: String,
    /// Group name.
    pub group: String,
    /// Permission bits.
    pub mode: u32,
}

/// Everything the checks look at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// `getent passwd` fields, if the user exists.
    pub passwd: Option<Passwd>,
    /// Whether the login shell exists and is executable.
    pub shell_ok: bool,
    /// `passwd -S` status letter (`P`, `L`, `NP`, …).
    pub password_status: Option<String>,
    /// Whether `chage -l` says the account has expired.
    pub expired: bool,
    /// `stat` results by path; absent paths are missing.
    pub paths: HashMap<String, PathFacts>,
    /// The authorized-keys path sshd uses for this user (first of AuthorizedKeysFile).
    pub authorized_keys_path: Option<String>,
    /// `sshd -t`'s complaint, when it fails.
    pub sshd_test_error: Option<String>,
    /// Effective sshd settings for the user (`sshd -T -C …`), lower-case keys.
    pub sshd: HashMap<String, String>,
    /// Lines of sshd config files setting AuthorizedKeysFile/PubkeyAuthentication/StrictModes (file:line:text).
    pub sshd_config_lines: Vec<String>,
    /// Whether sshd is running.
    pub sshd_running: bool,
    /// The user's groups.
    pub groups: Vec<String>,
    /// `ssh-keygen -lf` lines: (bits, fingerprint, type).
    pub keys: Vec<(String, String)>,
    /// Lines of authorized_keys ending in CR.
    pub crlf_lines: usize,
    /// Non-empty, non-comment lines that do not look like a key entry (wrapped keys).
    pub bad_lines: usize,
    /// `getenforce` output, when SELinux exists.
    pub selinux: Option<String>,
    /// SELinux context of ~/.ssh.
    pub ssh_dir_context: Option<String>,
    /// Host private keys present under /etc/ssh.
    pub host_keys: Vec<String>,
    /// Whether /home is listed in fstab but not mounted.
    pub home_unmounted: bool,
    /// Use percentages of /home: blocks and inodes.
    pub disk_use: Option<(u32, u32)>,
    /// sshd log lines that mention the user.
    pub log: Vec<String>,
    /// Sections that were missing or could not be parsed.
    pub unparsed: Vec<String>,
}

/// The passwd entry fields the checks use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// The script that prints every fact for `user`, as one line for `sh -c`.
pub fn script(user: &UserName) -> String {
    let u = shell_words::quote(user.as_str());
    let sections = [
        format!("u={u}; h=$(getent passwd \"$u\" | cut -d: -f6); s=$(getent passwd \"$u\" | cut -d: -f7)"),
        "echo @@ese:passwd; getent passwd \"$u\"".into(),
        "echo @@ese:shell; [ -n \"$s\" ] && [ -x \"$s\" ] && echo ok".into(),
        "echo @@ese:pwstatus; passwd -S \"$u\" 2>/dev/null".into(),
        "echo @@ese:chage; LC_ALL=C chage -l \"$u\" 2>/dev/null | grep -i 'account expires'".into(),
        // sshd -T is slow on a small instance: run it once.
        "T=$(sshd -T -C user=\"$u\",host=localhost,addr=127.0.0.1 2>/dev/null); a=$(printf '%s\\n' \"$T\" | awk '/^authorizedkeysfile /{print $2}')".into(),
        "a=$(printf %s \"${a:-.ssh/authorized_keys}\" | sed \"s|%h|$h|g; s|%u|$u|g; s|%%|%|g\"); case $a in /*) ;; *) a=\"$h/$a\";; esac".into(),
        "echo @@ese:akpath; echo \"$a\"".into(),
        // Keys are read from the file the checks judge: the configured one,
        // or the default when the configured one is missing (see checks).
        "k=$a; [ -e \"$a\" ] || k=\"$h/.ssh/authorized_keys\"".into(),
        "echo @@ese:stat; stat -c '%F|%U|%G|%a|%n' /home \"$h\" \"$h/.ssh\" \"$a\" \"$h/.ssh/authorized_keys\" /etc/ssh 2>/dev/null".into(),
        "echo @@ese:sshdt; sshd -t 2>&1 && echo ok".into(),
        "echo @@ese:sshdT; printf '%s\\n' \"$T\" | grep -E '^(strictmodes|pubkeyauthentication|authorizedkeysfile|authorizedkeyscommand|pubkeyacceptedalgorithms|usepam|allowusers|denyusers|allowgroups|denygroups) '".into(),
        "echo @@ese:sshdconf; grep -HniE '^[[:space:]]*(authorizedkeysfile|pubkeyauthentication|strictmodes)[[:space:]]' /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf 2>/dev/null".into(),
        "echo @@ese:running; (systemctl is-active ssh || systemctl is-active sshd || pgrep -x sshd) 2>/dev/null | head -1".into(),
        "echo @@ese:groups; id -Gn \"$u\" 2>/dev/null".into(),
        "echo @@ese:keys; ssh-keygen -lf \"$k\" 2>/dev/null | awk '{print $2, $NF}'".into(),
        "echo @@ese:keylines; grep -c \"$(printf '\\r')\\$\" \"$k\" 2>/dev/null; grep -vcE '^[[:space:]]*(#|$)|(^|[[:space:]])(ssh-|ecdsa-|sk-)[a-z0-9@.-]+[[:space:]]+AAAA' \"$k\" 2>/dev/null".into(),
        "echo @@ese:selinux; command -v getenforce >/dev/null && getenforce && ls -Zd \"$h/.ssh\" 2>/dev/null".into(),
        "echo @@ese:hostkeys; ls /etc/ssh/ssh_host_*_key 2>/dev/null".into(),
        "echo @@ese:mount; grep -qE '^[^#]+[[:space:]]/home[[:space:]]' /etc/fstab && ! mountpoint -q /home && echo unmounted".into(),
        "echo @@ese:df; df -P /home | awk 'NR==2{print $5}'; df -Pi /home | awk 'NR==2{print $5}'".into(),
        "echo @@ese:log; (journalctl -u ssh -u sshd --no-pager -n 300 2>/dev/null; tail -n 300 /var/log/auth.log /var/log/secure 2>/dev/null) | grep -F \"$u\" | grep -iE 'refused|not allowed|could not|invalid|bad ownership|authentication' | tail -n 8".into(),
        "echo @@ese:end".into(),
    ];
    sections.join("; ")
}

/// Parses the script's output.
pub fn parse(output: &str) -> Facts {
    let sections = split_sections(output);
    let mut facts = Facts::default();
    let get = |name: &str| sections.get(name).map(Vec::as_slice);
    for required in ["passwd", "stat", "sshdt", "sshdT", "end"] {
        if get(required).is_none() {
            facts.unparsed.push(format!(
                "section {required} missing from the console output"
            ));
        }
    }
    facts.passwd = get("passwd").and_then(|l| l.first()).and_then(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() == 7).then(|| Passwd {
            home: f[5].to_string(),
            shell: f[6].to_string(),
        })
    });
    facts.shell_ok = get("shell").is_some_and(|l| l.iter().any(|x| x == "ok"));
    facts.password_status = get("pwstatus")
        .and_then(|l| l.first())
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_string);
    facts.expired = get("chage")
        .and_then(|l| l.first())
        .is_some_and(|l| account_expired(l));
    facts.authorized_keys_path = get("akpath").and_then(|l| l.first()).cloned();
    for line in get("stat").unwrap_or(&[]) {
        match parse_stat(line) {
            Some((path, p)) => {
                facts.paths.insert(path, p);
            }
            None => facts.unparsed.push(format!("stat line {line:?}")),
        }
    }
    let sshdt = get("sshdt").unwrap_or(&[]);
    facts.sshd_test_error =
        (sshdt.last().map(String::as_str) != Some("ok")).then(|| sshdt.join("; "));
    for line in get("sshdT").unwrap_or(&[]) {
        if let Some((k, v)) = line.split_once(' ') {
            facts
                .sshd
                .insert(k.to_ascii_lowercase(), v.trim().to_string());
        }
    }
    facts.sshd_config_lines = get("sshdconf").unwrap_or(&[]).to_vec();
    facts.sshd_running = get("running")
        .and_then(|l| l.first())
        .is_some_and(|l| l == "active" || l.chars().all(|c| c.is_ascii_digit()));
    facts.groups = get("groups")
        .and_then(|l| l.first())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    facts.keys = get("keys")
        .unwrap_or(&[])
        .iter()
        .filter_map(|l| {
            l.split_once(' ').map(|(fp, ty)| {
                (
                    fp.to_string(),
                    ty.trim_matches(|c| c == '(' || c == ')').to_string(),
                )
            })
        })
        .collect();
    let counts: Vec<usize> = get("keylines")
        .unwrap_or(&[])
        .iter()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    facts.crlf_lines = counts.first().copied().unwrap_or(0);
    facts.bad_lines = counts.get(1).copied().unwrap_or(0);
    let selinux = get("selinux").unwrap_or(&[]);
    facts.selinux = selinux.first().cloned();
    facts.ssh_dir_context = selinux
        .get(1)
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string);
    facts.host_keys = get("hostkeys").unwrap_or(&[]).to_vec();
    facts.home_unmounted = get("mount").is_some_and(|l| l.iter().any(|x| x == "unmounted"));
    let df: Vec<u32> = get("df")
        .unwrap_or(&[])
        .iter()
        .filter_map(|l| l.trim_end_matches('%').parse().ok())
        .collect();
    facts.disk_use = (df.len() == 2).then(|| (df[0], df[1]));
    facts.log = get("log").unwrap_or(&[]).to_vec();
    facts
}

fn split_sections(output: &str) -> HashMap<String, Vec<String>> {
    let mut sections: HashMap<String, Vec<String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in output.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(name) = line.strip_prefix(MARK) {
            current = Some(name.trim().to_string());
            sections.entry(name.trim().to_string()).or_default();
        } else if let Some(name) = &current {
            if !line.trim().is_empty() {
                sections
                    .entry(name.clone())
                    .or_default()
                    .push(line.to_string());
            }
        }
    }
    sections
}

fn parse_stat(line: &str) -> Option<(String, PathFacts)> {
    let mut f = line.splitn(5, '|');
    // GNU stat says "regular empty file" for an empty one: same type to sshd.
    let kind = f.next()?.replace("regular empty file", "regular file");
    let owner = f.next()?.to_string();
    let group = f.next()?.to_string();
    let mode = u32::from_str_radix(f.next()?, 8).ok()?;
    let path = f.next()?.to_string();
    Some((
        path,
        PathFacts {
            kind,
            owner,
            group,
            mode,
        },
    ))
}

/// `Account expires : never` or a date in the past.
fn account_expired(line: &str) -> bool {
    let value = line.split_once(':').map(|(_, v)| v.trim()).unwrap_or("");
    if value.eq_ignore_ascii_case("never") || value.is_empty() {
        return false;
    }
    let format = time::macros::format_description!("[month repr:short] [day padding:zero], [year]");
    let normalized = value.split_whitespace().collect::<Vec<_>>().join(" ");
    match time::Date::parse(&normalized, format) {
        Ok(date) => date < time::OffsetDateTime::now_utc().date(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
@@ese:passwd
ec2-user:x:1000:1000::/home/ec2-user:/bin/bash
@@ese:shell
ok
@@ese:pwstatus
ec2-user P 11/23/2026 0 99999 7 -1
@@ese:chage
Account expires\t\t\t\t\t\t: never
@@ese:akpath
/home/ec2-user/.ssh/authorized_keys
@@ese:stat
directory|root|root|755|/home
directory|ec2-user|ec2-user|777|/home/ec2-user
directory|ec2-user|ec2-user|700|/home/ec2-user/.ssh
regular empty file|ec2-user|ec2-user|600|/home/ec2-user/.ssh/authorized_keys
directory|root|root|755|/etc/ssh
@@ese:sshdt
ok
@@ese:sshdT
strictmodes yes
pubkeyauthentication yes
authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2
usepam yes
@@ese:sshdconf
@@ese:running
active
@@ese:groups
ec2-user sudo
@@ese:keys
SHA256:abc ED25519
@@ese:keylines
0
0
@@ese:selinux
@@ese:hostkeys
/etc/ssh/ssh_host_ed25519_key
@@ese:mount
@@ese:df
12%
3%
@@ese:log
sshd[812]: Authentication refused: bad ownership or modes for directory /home/ec2-user
@@ese:end
";

    #[test]
    fn parses_a_real_shaped_report() {
        let f = parse(SAMPLE);
        assert!(f.unparsed.is_empty(), "{:?}", f.unparsed);
        assert_eq!(f.passwd.as_ref().unwrap().home, "/home/ec2-user");
        assert!(f.shell_ok);
        assert_eq!(f.password_status.as_deref(), Some("P"));
        assert!(!f.expired);
        assert_eq!(f.paths["/home/ec2-user"].mode, 0o777);
        assert_eq!(
            f.paths["/home/ec2-user/.ssh/authorized_keys"].kind,
            "regular file"
        );
        assert_eq!(f.sshd["strictmodes"], "yes");
        assert!(f.sshd_running);
        assert_eq!(
            f.keys,
            vec![("SHA256:abc".to_string(), "ED25519".to_string())]
        );
        assert_eq!(f.disk_use, Some((12, 3)));
        assert_eq!(f.log.len(), 1);
        assert_eq!(f.sshd_test_error, None);
    }

    #[test]
    fn a_truncated_report_says_what_is_missing() {
        let f = parse("@@ese:passwd\nec2-user:x:1000:1000::/home/ec2-user:/bin/bash\n");
        assert!(
            f.unparsed.iter().any(|u| u.contains("stat")),
            "{:?}",
            f.unparsed
        );
    }

    #[test]
    fn hostile_user_names_are_refused() {
        for bad in ["", "root; reboot", "$(id)", "a b", "Ec2", "../x", "-rf"] {
            assert!(UserName::parse(bad).is_err(), "{bad}");
        }
        for good in ["ec2-user", "ubuntu", "_svc", "admin$", "a.b"] {
            assert!(UserName::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn the_script_fits_one_tty_line() {
        let s = script(&UserName::parse("ec2-user").unwrap());
        assert!(s.len() < 3500, "{} bytes", s.len());
        assert!(!s.contains('\n'));
    }

    #[test]
    fn expiry_dates() {
        assert!(!account_expired("Account expires : never"));
        assert!(account_expired("Account expires : Jan 02, 2020"));
        assert!(!account_expired("Account expires : Jan 02, 2999"));
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Whatever the console answers, the parser returns facts or
            /// names what it could not read: never a panic, never a guess.
            #[test]
            fn any_answer_is_read_or_reported(
                lines in proptest::collection::vec("(@@ese:[a-zA-Z]{0,8}|[ -~]{0,40}|[a-z ]{0,12}\\|[a-z0-9-]{0,8}\\|[a-z]{0,6}\\|[0-9]{0,5}\\|/[ -~]{0,20})", 0..30),
            ) {
                let facts = parse(&lines.join("\n"));
                for p in facts.paths.values() {
                    prop_assert!(p.mode <= 0o7777_7777);
                }
            }

            /// `stat` lines read back exactly, whatever the path holds.
            #[test]
            fn stat_lines_round_trip(
                kind in "(directory|regular file|regular empty file|symbolic link)",
                owner in "[a-z_][a-z0-9_-]{0,15}",
                group in "[a-z_][a-z0-9_-]{0,15}",
                mode in 0u32..0o7777,
                path in "/[ -~]{0,40}",
            ) {
                let line = format!("{kind}|{owner}|{group}|{mode:o}|{path}");
                let (got_path, facts) = parse_stat(&line).unwrap();
                prop_assert_eq!(got_path, path);
                prop_assert_eq!((facts.owner, facts.group, facts.mode), (owner, group, mode));
                prop_assert_eq!(facts.kind, kind.replace("regular empty file", "regular file"));
            }
        }
    }
}
