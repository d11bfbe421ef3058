//! Gathering the facts behind "Server refused our key" in one round trip.
//!
//! A single root shell script (sent with `sudo sh -c`) prints every fact the
//! checks need in sections headed `@@name`: the passwd entry, the account's
//! lock state and expiry, the `stat` of every path component at once, sshd's
//! effective configuration for the user, the key file's fingerprints,
//! SELinux, mounts, disk space and sshd's log lines naming the user. [`parse`]
//! reads it back strictly: a section that is missing or malformed is
//! reported, not guessed. A [`Scope`] narrows a gather to what repairs can
//! have changed, for the verification.

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

/// A validated `SHA256:` key fingerprint, as `ssh-keygen -l` prints it:
/// base64 characters only, so it is safe inside a shell command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Accepts `SHA256:` followed by 43 base64 characters.
    pub fn parse(text: &str) -> Result<Fingerprint, String> {
        let ok = text.strip_prefix("SHA256:").is_some_and(|b| {
            b.len() == 43
                && b.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
        });
        if ok {
            Ok(Fingerprint(text.to_string()))
        } else {
            Err(format!("fingerprint {text:?}: expected SHA256:<43 base64 characters>, as `ssh-keygen -lf KEY.pub` prints"))
        }
    }

    /// The fingerprint.
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
    /// Recent sshd log lines about this login: lines naming the user, and
    /// the `[preauth]` lines about key types and signature algorithms
    /// (which name no user), oldest first.
    pub log: Vec<String>,
    /// The distribution, from `/etc/os-release`.
    pub os: Os,
    /// When the user has no account: what is left of it, and who else can log in.
    pub absent: Absent,
    /// Accounts other than the user whose key files hold the key sought
    /// (`--public-key`/`--fingerprint`): (account, key file). Looked for only
    /// when the user's own file lacks it.
    pub key_holders: Vec<(String, String)>,
    /// Sections that were missing or could not be parsed.
    pub unparsed: Vec<String>,
}

/// The distribution, from `/etc/os-release`: what names its AMIs' default user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Os {
    /// `ID` (`debian`, `amzn`, `ubuntu`, `rhel`, …).
    pub id: String,
    /// `ID_LIKE`, space-separated.
    pub id_like: String,
    /// `PRETTY_NAME`, for messages.
    pub pretty_name: String,
}

/// What is known about a user name that has no account (all empty when it has one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Absent {
    /// `/home/USER` as left behind (a deleted user's home), if anything is there.
    pub home: Option<Leftover>,
    /// Which of the administrators' groups (`adm`, `wheel`, `sudo`) exist.
    pub admin_groups: Vec<String>,
    /// Whether a group with the user's name is left (`userdel` can keep it).
    pub own_group: bool,
    /// `getent`'s exit status when it failed other than "no such user" (a
    /// name service down): the account may exist, unseen.
    pub lookup_failed: Option<i32>,
    /// Accounts with a regular user id (1000–59999), which can log in.
    pub accounts: Vec<String>,
}

/// A path left where a deleted user's home was: `stat` with numeric ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// `directory`, `symbolic link`, …
    pub kind: String,
    /// The owner's user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
    /// The owner's name, or `UNKNOWN` when no account has that id any more.
    pub owner: String,
    /// The path.
    pub path: String,
}

/// The passwd entry fields the checks use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// Which facts a gather prints. The diagnosis looks at everything; the
/// verification after repairs looks again only at what the repairs that ran
/// can have changed, and carries the rest over from the diagnosis (see
/// [`Facts::refresh`]). The files (passwd entry, `stat`s, the key file) are
/// always looked at again: every file repair changes them, and a repair can
/// uncover a problem there (an empty key file once it exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// Password status, expiry and groups (`user.locked`, `user.expired`).
    pub account: bool,
    /// sshd's configuration test, effective settings, config lines, host
    /// keys and whether it runs.
    pub sshd: bool,
    /// SELinux mode and the label of `~/.ssh`.
    pub selinux: bool,
    /// Mounts and disk space: no repair changes them.
    pub system: bool,
    /// sshd's log lines: evidence for the report, never a finding.
    pub log: bool,
}

impl Scope {
    /// Every fact: the diagnosis.
    pub const EVERYTHING: Scope = Scope {
        account: true,
        sshd: true,
        selinux: true,
        system: true,
        log: true,
    };

    /// The files alone (passwd entry, `stat`s, the key file): the least a
    /// verification looks at ([`super::repair::touched`] adds the rest).
    pub const FILES: Scope = Scope {
        account: false,
        sshd: false,
        selinux: false,
        system: false,
        log: false,
    };
}

/// Reads `sshd -T`'s output (`$T`) with the shell's own `case`, where `awk`
/// and `grep` would be two more programs: `$S` gets the settings the checks
/// read, `$a` the first AuthorizedKeysFile entry as written (default
/// `.ssh/authorized_keys`), `$C` is set when a setting a repair may comment
/// out is not the default, `$G` when AllowGroups or DenyGroups is set.
/// Globbing is off while the lines are split (a value may hold `*`).
const SSHD_SETTINGS: &str = "nl=$(printf '\\nx'); nl=${nl%x}; a=; S=; C=; G=; set -f; ifs=$IFS; IFS=$nl; \
    for L in $T; do case $L in 'authorizedkeysfile '*) [ -n \"$a\" ] || a=${L#* };; 'pubkeyauthentication no') C=1;; 'allowgroups '*|'denygroups '*) G=1;; esac; \
    case $L in strictmodes\\ *|pubkeyauthentication\\ *|authorizedkeysfile\\ *|authorizedkeyscommand\\ *|pubkeyacceptedalgorithms\\ *|pubkeyacceptedkeytypes\\ *|usepam\\ *|allowusers\\ *|denyusers\\ *|allowgroups\\ *|denygroups\\ *) S=$S$L$nl;; esac; done; \
    IFS=$ifs; set +f; a=${a%% *}; [ -n \"$a\" ] || a=.ssh/authorized_keys; \
    case $a in .ssh/authorized_keys|%h/.ssh/authorized_keys) ;; *) C=1;; esac";

/// Expands `%h`, `%u` and `%%` in `$a`, left to right as sshd does, and
/// makes it absolute (relative to the home, `$h`).
const EXPAND_KEY_FILE: &str = "x=$a; a=; while :; do case $x in *%*) a=$a${x%%\\%*}; x=${x#*\\%}; \
    case $x in h*) a=$a$h; x=${x#?};; u*) a=$a$u; x=${x#?};; %*) a=$a%; x=${x#?};; *) a=$a%;; esac;; \
    *) a=$a$x; break;; esac; done; case $a in /*) ;; *) a=\"$h/$a\";; esac";

/// The script that prints the facts of `scope` for `user`, as one line for
/// `sh -c`. Without [`Scope::sshd`], `key_path` is the authorized-keys path
/// the diagnosis found (it comes from `sshd -T`, the slowest fact).
///
/// Every program started on the instance costs time (a small instance, or a
/// VM under emulation, pays tens of milliseconds per `exec`), so the script
/// uses the shell's own expansions where a program is not needed: the passwd
/// and shadow fields are cut with `${…#…}`, and `sshd -T` is run once and
/// serves as the configuration test too (it fails, with the same message, where
/// `sshd -t` would).
pub fn script(user: &UserName, scope: Scope, key_path: Option<&str>) -> String {
    let u = shell_words::quote(user.as_str());
    let setup =
        format!("u={u}; p=$(getent passwd \"$u\"); r=${{p#*:*:*:*:*:}}; h=${{r%%:*}}; s=${{r#*:}}");
    // The facts nothing else waits for; the rest waits for `sshd -T` (the
    // key file's path). See [`side_by_side`].
    let mut side: Vec<String> = Vec::new();
    let mut sections: Vec<String> = vec![
        "echo @@ese:passwd; [ -n \"$p\" ] && printf '%s\\n' \"$p\"".into(),
        "echo @@ese:shell; [ -n \"$s\" ] && [ -x \"$s\" ] && echo ok".into(),
    ];
    if scope.account {
        // The shadow entry's lock state and expiry day, never the hash.
        // Locked is a leading `!`, as sshd reads it; `*` (no password at
        // all, as a key-only account has) does not stop a key.
        side.push("q=$(getent shadow \"$u\"); w=${q#*:}; w=${w%%:*}; e=${q#*:*:*:*:*:*:*:}; e=${e%%:*}; case $w in '!'*) l=L;; '') l=NP;; *) l=P;; esac".into());
        side.push("echo @@ese:shadow; [ -n \"$q\" ] && echo \"$l $e\"".into());
        // The groups matter only to AllowGroups/DenyGroups: with sshd's
        // settings in scope, asked for only when one is set.
        if !scope.sshd {
            side.push("echo @@ese:groups; id -Gn \"$u\" 2>/dev/null".into());
        }
    }
    match (scope.sshd, key_path) {
        (false, Some(path)) => sections.push(format!("a={}", shell_words::quote(path))),
        _ => {
            sections.push(
                "T=$(sshd -T -C user=\"$u\",host=localhost,addr=127.0.0.1 2>&1); t=$?".into(),
            );
            sections.push(SSHD_SETTINGS.into());
            sections.push(EXPAND_KEY_FILE.into());
        }
    }
    sections.extend([
        "echo @@ese:akpath; echo \"$a\"".into(),
        // Keys are read from the file the checks judge: the configured one,
        // or the default when the configured one is missing (see checks).
        "k=$a; [ -e \"$a\" ] || k=\"$h/.ssh/authorized_keys\"".into(),
        "echo @@ese:stat; stat -c '%F|%U|%G|%a|%n' /home \"$h\" \"$h/.ssh\" \"$a\" \"$h/.ssh/authorized_keys\" /etc/ssh 2>/dev/null".into(),
        // Fingerprint and type only, cut by the shell's `read`: the
        // comment between them is the file owner's text, kept out of what
        // the doctor parses.
        "echo @@ese:keys; ssh-keygen -lf \"$k\" 2>/dev/null | while read -r _ f c; do echo \"$f ${c##* }\"; done".into(),
        // Lines ending in CR, and lines that are neither blank, a comment
        // nor a key entry (a key wrapped by a copy and paste).
        "echo @@ese:keylines; awk '/\\r$/{c++} !/^[[:space:]]*(#|$)/&&!/(^|[[:space:]])(ssh-|ecdsa-|sk-)[a-z0-9@.-]+[[:space:]]+AAAA/{b++} END{print c+0; print b+0}' \"$k\" 2>/dev/null".into(),
    ]);
    if scope.sshd {
        sections.extend([
            "echo @@ese:sshdt; [ $t = 0 ] && echo ok || printf '%s\\n' \"$T\"".into(),
            "echo @@ese:sshdT; [ $t = 0 ] && printf %s \"$S\"".into(),
            // Where a setting is made matters only to a repair that
            // comments it out: looked up only when one may be needed.
            "echo @@ese:sshdconf; [ -n \"$C\" ] && grep -HniE '^[[:space:]]*(authorizedkeysfile|pubkeyauthentication|strictmodes)[[:space:]]' /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf 2>/dev/null".into(),
            // The pid file sshd keeps while it runs, if the pid is an sshd;
            // else ask systemd about both unit names (Debian's ssh, the
            // others' sshd), and pgrep where neither is active.
            "echo @@ese:running; p=; [ -r /run/sshd.pid ] && read -r p </run/sshd.pid; case $p in ''|*[!0-9]*) c=;; *) c=; [ -r /proc/$p/comm ] && read -r c </proc/$p/comm;; esac; if [ \"$c\" = sshd ]; then echo \"$p\"; else { systemctl is-active ssh sshd || pgrep -x sshd; } 2>/dev/null; fi".into(),
            "echo @@ese:hostkeys; for f in /etc/ssh/ssh_host_*_key; do [ -e \"$f\" ] && echo \"$f\"; done".into(),
        ]);
    }
    if scope.sshd && scope.account {
        sections.push("echo @@ese:groups; [ -n \"$G\" ] && id -Gn \"$u\" 2>/dev/null".into());
    }
    if scope.selinux {
        sections.push("echo @@ese:selinux; command -v getenforce >/dev/null && getenforce && ls -Zd \"$h/.ssh\" 2>/dev/null".into());
    }
    if scope.system {
        side.extend([
            // /home in fstab but not in the mount table, read by the shell.
            "f=; while read -r d m _; do case $d in '#'*) ;; *) [ \"$m\" = /home ] && f=1;; esac; done </etc/fstab; o=; while read -r d m _; do [ \"$m\" = /home ] && o=1; done </proc/mounts".into(),
            "echo @@ese:mount; [ -n \"$f\" ] && [ -z \"$o\" ] && echo unmounted".into(),
            "echo @@ese:df; df --output=pcent,ipcent /home 2>/dev/null".into(),
        ]);
    }
    if scope.log {
        // Since boot (the journal), else the log files' last lines: the last
        // 10 that say why a login failed, oldest first. Lines naming the user,
        // and the `[preauth]` refusals of a signature algorithm, which name
        // no user (scanners' key-exchange noise does not match).
        side.push("echo @@ese:log; j=$(journalctl -q -b -u ssh -u sshd --no-pager -n 300 2>/dev/null); [ -n \"$j\" ] || j=$(tail -q -n 300 /var/log/auth.log /var/log/secure 2>/dev/null); printf '%s\\n' \"$j\" | awk -v u=\"$u\" '(index($0,u)&&tolower($0)~/refused|not allowed|could not|invalid|bad ownership|authentication/)||(/preauth/&&/not in PubkeyAcceptedAlgorithms/){l[n++]=$0} END{for(i=(n>10?n-10:0);i<n;i++)print l[i]}'".into());
    }
    if scope.system {
        side.push("echo @@ese:os; while IFS== read -r k v; do case $k in ID|ID_LIKE|PRETTY_NAME) echo \"$k=$v\";; esac; done 2>/dev/null </etc/os-release".into());
    }
    format!(
        "{setup}; {}; echo @@ese:end",
        side_by_side(&sections.join("; "), &side.join("; "))
    )
}

/// The script that looks further when the diagnosis found no account for
/// `user`, or a key file without the key sought: what is left of a deleted
/// account, who can log in, and (with `sought`) which accounts' key files
/// hold the key. A second round trip, paid only in those cases, so the
/// common diagnosis types none of it.
pub fn whereabouts(user: &UserName, sought: Option<&Fingerprint>) -> String {
    let u = shell_words::quote(user.as_str());
    // No account (and not for want of a name service: getent says 2 for
    // "no such key"): the home a deleted user leaves (numeric ids: the name
    // is gone), the administrators' groups, a group left with the user's
    // name, and the accounts with a login shell.
    let mut parts = vec![
        format!("u={u}; p=$(getent passwd \"$u\"); gs=$?"),
        "echo @@ese:absent; [ -z \"$p\" ] && { [ $gs = 2 ] || echo \"lookup $gs\"; stat -c 'home %F|%u|%g|%U|%n' \"/home/$u\" 2>/dev/null; while IFS=: read -r g _; do case $g in adm|wheel|sudo) echo \"group $g\";; \"$u\") echo own;; esac; done </etc/group; while IFS=: read -r n _ i _ _ _ sh; do case $sh in */nologin|*/false) continue;; esac; [ \"$i\" -ge 1000 ] 2>/dev/null && [ \"$i\" -lt 60000 ] && echo \"user $n\"; done </etc/passwd; }".to_string(),
    ];
    if let Some(fp) = sought {
        // Each key file is read as its owner when setpriv exists (as sshd
        // reads it), never through a link, bounded in time (a FIFO swapped
        // in would block) and in number; root and accounts with no shell
        // are skipped (cloud-init's root key only says "log in as …").
        parts.push(format!("F={}; echo @@ese:holders; R=; command -v setpriv >/dev/null && R=1; c=0; while IFS=: read -r n _ i gi _ d sh; do [ \"$i\" = 0 ] && continue; case $sh in */nologin|*/false) continue;; esac; [ -h \"$d/.ssh\" ] && continue; for f in \"$d/.ssh/authorized_keys\" \"$d/.ssh/authorized_keys2\"; do [ -f \"$f\" ] && [ ! -h \"$f\" ] || continue; c=$((c+1)); [ $c -gt 100 ] && break 2; case $(timeout 5 ${{R:+setpriv --reuid=$i --regid=$gi --clear-groups}} ssh-keygen -lf \"$f\" 2>/dev/null) in *\" $F \"*) echo \"$n $f\";; esac; done; done </etc/passwd", shell_words::quote(fp.as_str())));
    }
    parts.push("echo @@ese:end".into());
    parts.join("; ")
}

/// Reads the output of [`whereabouts`] into `facts`.
pub fn parse_whereabouts(output: &str, facts: &mut Facts) {
    let sections = split_sections(output);
    if !sections.contains_key("end") {
        facts
            .unparsed
            .push("section end missing from the console output".into());
    }
    for line in sections.get("absent").map(Vec::as_slice).unwrap_or(&[]) {
        match line.split_once(' ') {
            Some(("home", rest)) => match parse_leftover(rest) {
                Some(home) => facts.absent.home = Some(home),
                None => facts.unparsed.push(format!("absent home line {line:?}")),
            },
            Some(("group", g)) => facts.absent.admin_groups.push(g.to_string()),
            Some(("lookup", code)) => facts.absent.lookup_failed = code.trim().parse().ok(),
            Some(("user", n)) => facts.absent.accounts.push(n.to_string()),
            None if line.trim() == "own" => facts.absent.own_group = true,
            _ => facts.unparsed.push(format!("absent line {line:?}")),
        }
    }
    facts.key_holders = sections
        .get("holders")
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, f)| (n.to_string(), f.to_string()))
        .collect();
}

/// Runs the shell commands `main` and `side` at the same time and prints
/// `main`'s output, then `side`'s. Each program started on a small instance
/// (or a VM under emulation) costs tens of milliseconds, mostly CPU, so two
/// lines of work nearly halve the wait where there are two CPUs. No
/// temporary file (the disk may be full): `side` runs in a command
/// substitution on the right of a pipe while `main` writes into the pipe,
/// whose buffer holds all of its output; the shell's own `read` then copies
/// it through.
fn side_by_side(main: &str, side: &str) -> String {
    if side.is_empty() {
        return main.to_string();
    }
    format!(
        "{{ {main}; }} | {{ b=$({side}); while IFS= read -r l; do printf '%s\\n' \"$l\"; done; printf '%s\\n' \"$b\"; }}"
    )
}

/// The gather's part of an output that starts with something else (the
/// repairs, when the verification runs in the same command).
pub fn gathered(output: &str) -> &str {
    let first = format!("{MARK}passwd");
    output
        .match_indices(&first)
        .find(|(at, _)| *at == 0 || output[..*at].ends_with('\n'))
        .map_or("", |(at, _)| &output[at..])
}

/// Parses the output of [`script`] for `scope`.
pub fn parse(output: &str, scope: Scope) -> Facts {
    let sections = split_sections(output);
    let mut facts = Facts::default();
    let get = |name: &str| sections.get(name).map(Vec::as_slice);
    let mut required = vec!["passwd", "stat", "end"];
    if scope.sshd {
        required.extend(["sshdt", "sshdT"]);
    }
    for required in required {
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
    let shadow: Vec<&str> = get("shadow")
        .and_then(|l| l.first())
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    facts.password_status = shadow.first().map(|s| s.to_string());
    facts.expired = shadow
        .get(1)
        .and_then(|day| day.parse::<i64>().ok())
        .is_some_and(account_expired);
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
    facts.sshd_running = get("running").unwrap_or(&[]).iter().any(|l| {
        let l = l.trim();
        l == "active" || (!l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
    });
    facts.groups = get("groups")
        .and_then(|l| l.first())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    facts.keys = get("keys")
        .unwrap_or(&[])
        .iter()
        .filter_map(|l| parse_key_line(l))
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
    // `Use% IUse%`, then the two percentages.
    facts.disk_use = get("df").unwrap_or(&[]).iter().find_map(|l| {
        let pcts: Vec<u32> = l
            .split_whitespace()
            .filter_map(|w| w.strip_suffix('%')?.parse().ok())
            .collect();
        (pcts.len() == 2).then(|| (pcts[0], pcts[1]))
    });
    facts.log = get("log").unwrap_or(&[]).to_vec();
    for line in get("os").unwrap_or(&[]) {
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        let value = value.trim_matches('"').to_string();
        match key {
            "ID" => facts.os.id = value,
            "ID_LIKE" => facts.os.id_like = value,
            "PRETTY_NAME" => facts.os.pretty_name = value,
            _ => {}
        }
    }
    facts
}

/// A key's fingerprint and type from a `keys` line (`SHA256:… (ED25519)`).
fn parse_key_line(line: &str) -> Option<(String, String)> {
    let (fp, ty) = line.split_once(' ')?;
    Some((
        fp.to_string(),
        ty.trim_matches(|c| c == '(' || c == ')').to_string(),
    ))
}

/// `%F|%u|%g|%U|%n` of a deleted user's home.
fn parse_leftover(line: &str) -> Option<Leftover> {
    let mut f = line.splitn(5, '|');
    Some(Leftover {
        kind: f.next()?.to_string(),
        uid: f.next()?.parse().ok()?,
        gid: f.next()?.parse().ok()?,
        owner: f.next()?.to_string(),
        path: f.next()?.to_string(),
    })
}

impl Facts {
    /// The facts after a verification gather of `scope`: what it looked at
    /// from `newer`, the rest as the diagnosis found it.
    pub fn refresh(self, newer: Facts, scope: Scope) -> Facts {
        let old = self;
        let mut facts = newer;
        if !scope.account {
            facts.password_status = old.password_status;
            facts.expired = old.expired;
            facts.groups = old.groups;
        }
        if !scope.sshd {
            facts.sshd_test_error = old.sshd_test_error;
            facts.sshd = old.sshd;
            facts.sshd_config_lines = old.sshd_config_lines;
            facts.sshd_running = old.sshd_running;
            facts.host_keys = old.host_keys;
        }
        if !scope.selinux {
            facts.selinux = old.selinux;
            facts.ssh_dir_context = old.ssh_dir_context;
        }
        if !scope.system {
            facts.home_unmounted = old.home_unmounted;
            facts.disk_use = old.disk_use;
        }
        if !scope.log {
            facts.log = old.log;
        }
        if !scope.system {
            facts.os = old.os;
        }
        // Never looked at again: a verification is about what repairs changed.
        facts.absent = old.absent;
        facts.key_holders = old.key_holders;
        facts
    }
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

/// Whether an account whose shadow entry expires on `day` (days since
/// 1970-01-01) has expired: login refuses it from that day on, as
/// shadow's `isexpired` does. 0 or an empty field never expires.
fn account_expired(day: i64) -> bool {
    let today = time::OffsetDateTime::now_utc()
        .unix_timestamp()
        .div_euclid(86_400);
    day > 0 && today >= day
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
@@ese:passwd
ec2-user:x:1000:1000::/home/ec2-user:/bin/bash
@@ese:shell
ok
@@ese:shadow
P 
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
Use% IUse%
 12%    3%
@@ese:log
sshd[812]: Authentication refused: bad ownership or modes for directory /home/ec2-user
@@ese:end
";

    #[test]
    fn parses_a_real_shaped_report() {
        let f = parse(SAMPLE, Scope::EVERYTHING);
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
    fn reads_an_absent_user_the_distribution_and_the_key_holders() {
        let mut f = parse(
            "@@ese:passwd\n@@ese:stat\n@@ese:keys\n\
             @@ese:os\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n@@ese:end\n",
            Scope::FILES,
        );
        parse_whereabouts(
            "@@ese:absent\nhome directory|1000|1000|UNKNOWN|/home/ec2-user\n\
             group adm\ngroup sudo\nown\nuser lab-admin\n\
             @@ese:holders\nlab-admin /home/lab-admin/.ssh/authorized_keys\n@@ese:end\n",
            &mut f,
        );
        assert!(f.unparsed.is_empty(), "{:?}", f.unparsed);
        let home = f.absent.home.unwrap();
        assert_eq!((home.uid, home.owner.as_str()), (1000, "UNKNOWN"));
        assert_eq!(f.absent.admin_groups, ["adm", "sudo"]);
        assert!(f.absent.own_group);
        assert_eq!(f.absent.accounts, ["lab-admin"]);
        assert_eq!(f.os.id, "debian");
        assert_eq!(f.os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(
            f.key_holders,
            [(
                "lab-admin".to_string(),
                "/home/lab-admin/.ssh/authorized_keys".to_string()
            )]
        );
        let mut g = Facts::default();
        parse_whereabouts("@@ese:absent\nlookup 1\n", &mut g);
        assert_eq!(g.absent.lookup_failed, Some(1));
        assert!(!g.unparsed.is_empty(), "a cut answer is reported");
    }

    #[test]
    fn fingerprints_are_validated_before_they_reach_a_command() {
        assert!(Fingerprint::parse("SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU").is_ok());
        for bad in [
            "SHA256:x",
            "MD5:aa",
            "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4U'$(id)",
        ] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_truncated_report_says_what_is_missing() {
        let f = parse(
            "@@ese:passwd\nec2-user:x:1000:1000::/home/ec2-user:/bin/bash\n",
            Scope::EVERYTHING,
        );
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

    /// One line (the shell layer sends a long one in pieces, under the
    /// tty's 4095-byte cut), and short: every byte crosses the serial line.
    #[test]
    fn the_script_is_one_short_line() {
        let s = script(
            &UserName::parse("ec2-user").unwrap(),
            Scope::EVERYTHING,
            None,
        );
        assert!(s.len() < 3600, "{} bytes", s.len());
        let fp = Fingerprint::parse("SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU").unwrap();
        let w = whereabouts(&UserName::parse("ec2-user").unwrap(), Some(&fp));
        assert!(w.len() < 1500, "{} bytes", w.len());
        assert!(!w.contains('\n'));
        assert!(!s.contains('\n'));
    }

    #[test]
    fn expiry_days() {
        let today = time::OffsetDateTime::now_utc().unix_timestamp() / 86_400;
        assert!(!account_expired(0), "0 never expires");
        assert!(account_expired(1), "1970-01-02 is long past");
        assert!(account_expired(today), "the day itself refuses");
        assert!(!account_expired(today + 1));
    }

    #[test]
    fn the_lock_state_comes_from_the_shadow_entry_and_the_hash_is_never_printed() {
        let f = parse(
            "@@ese:passwd\n@@ese:stat\n@@ese:shadow\nL 1\n@@ese:end\n",
            Scope::EVERYTHING,
        );
        assert_eq!(f.password_status.as_deref(), Some("L"));
        assert!(f.expired);
        let s = script(
            &UserName::parse("ec2-user").unwrap(),
            Scope::EVERYTHING,
            None,
        );
        for leak in ["echo \"$q", "echo \"$w", "'%s\\n' \"$q", "'%s\\n' \"$w"] {
            assert!(!s.contains(leak), "the shadow entry is printed: {s}");
        }
        assert!(
            s.contains("echo \"$l $e\""),
            "only the state letter and the day: {s}"
        );
    }

    #[test]
    fn a_refresh_keeps_what_the_verification_did_not_look_at() {
        let first = parse(SAMPLE, Scope::EVERYTHING);
        let scope = Scope {
            selinux: true,
            ..Scope::FILES
        };
        let again = parse(
            "@@ese:passwd\nec2-user:x:1000:1000::/home/ec2-user:/bin/bash\n@@ese:stat\n\
             directory|ec2-user|ec2-user|700|/home/ec2-user\n@@ese:end\n",
            scope,
        );
        assert!(again.unparsed.is_empty(), "{:?}", again.unparsed);
        let now = first.refresh(again, scope);
        assert_eq!(now.paths["/home/ec2-user"].mode, 0o700);
        assert_eq!(now.sshd["strictmodes"], "yes", "sshd facts carried over");
        assert!(now.sshd_running);
        assert_eq!(now.disk_use, Some((12, 3)));
        assert_eq!(now.log.len(), 1);
        assert!(now.keys.is_empty(), "the files are always read again");
    }

    #[test]
    fn the_gather_part_of_a_combined_output() {
        let out = "@@ese:n1:begin 0\nchmod\n@@ese:n1:end 0 0\n@@ese:passwd\nx\n@@ese:end\n";
        assert_eq!(gathered(out), "@@ese:passwd\nx\n@@ese:end\n");
        assert_eq!(gathered("@@ese:passwd\n"), "@@ese:passwd\n");
        assert_eq!(gathered("no gather here"), "");
    }

    /// The script is valid for the instance's `sh` (dash here, bash on
    /// Amazon Linux): run for real, it prints every section it promises.
    /// Runs the settings reader and the key-file expansion under a real sh
    /// on `T` (as `sshd -T` would print it); returns `a|C|G|S`.
    fn read_settings(t: &str) -> String {
        let script = format!(
            "T={}; h=/home/ann; u=ann; {SSHD_SETTINGS}; {EXPAND_KEY_FILE}; printf '%s|%s|%s|%s' \"$a\" \"$C\" \"$G\" \"$S\"",
            shell_words::quote(t)
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn sshd_settings_are_read_by_the_shell_alone() {
        // The defaults: nothing to look up, the key file under the home.
        let t = "port 22\nstrictmodes yes\npubkeyauthentication yes\nauthorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2\nsubsystem sftp /usr/lib/*\n";
        assert_eq!(
            read_settings(t),
            "/home/ann/.ssh/authorized_keys|||strictmodes yes\npubkeyauthentication yes\nauthorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2\n"
        );
        // Tokens expanded left to right as sshd does (`%%h` is `%h`), a
        // `*` never globbed, and what a repair or a check needs flagged.
        let t =
            "authorizedkeysfile /etc/keys/%u/%%h%x*\npubkeyauthentication no\nallowgroups adm *\n";
        assert_eq!(
            read_settings(t),
            "/etc/keys/ann/%h%x*|1|1|authorizedkeysfile /etc/keys/%u/%%h%x*\npubkeyauthentication no\nallowgroups adm *\n"
        );
        // sshd -T failed: its message is no setting; the default path.
        assert_eq!(
            read_settings("/etc/ssh/sshd_config line 3: Bad configuration option: Foo"),
            "/home/ann/.ssh/authorized_keys|||"
        );
    }

    #[test]
    fn a_key_comment_never_reaches_the_parsed_facts() {
        // ssh-keygen -l's lines, as the script cuts them: the comment (the
        // file owner's text, here posing as a section) is left out.
        let lines = "256 SHA256:N0Fi50u6BAJSnmk6YVFkNVhoYvRY/KU6S20uTv9IJ+o @@ese:stat x (ED25519)\n3072 SHA256:abc no comment (RSA)\n";
        let cut = r#"while read -r _ f c; do echo "$f ${c##* }"; done"#;
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf %s {} | {{ {cut}; }}",
                shell_words::quote(lines)
            ))
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            text,
            "SHA256:N0Fi50u6BAJSnmk6YVFkNVhoYvRY/KU6S20uTv9IJ+o (ED25519)\nSHA256:abc (RSA)\n"
        );
        assert!(script(&UserName::parse("ann").unwrap(), Scope::EVERYTHING, None).contains(cut));
        let keys: Vec<_> = text.lines().filter_map(parse_key_line).collect();
        assert_eq!(keys[1], ("SHA256:abc".to_string(), "RSA".to_string()));
    }

    #[test]
    fn the_script_runs_under_a_real_sh() {
        // A user with no account, and a key looked for everywhere.
        let ghost = UserName::parse("ese-no-such-user").unwrap();
        let fp = Fingerprint::parse("SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU").unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script(&ghost, Scope::EVERYTHING, None))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut facts = parse(&text, Scope::EVERYTHING);
        assert!(facts.unparsed.is_empty(), "{:?}\n{text}", facts.unparsed);
        assert!(facts.passwd.is_none());
        assert!(!facts.os.id.is_empty(), "/etc/os-release read: {text}");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(whereabouts(&ghost, Some(&fp)))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        parse_whereabouts(&text, &mut facts);
        assert!(facts.unparsed.is_empty(), "{:?}\n{text}", facts.unparsed);
        assert!(
            text.contains("@@ese:holders"),
            "the key was looked for: {text}"
        );
        assert_eq!(
            facts.absent.lookup_failed, None,
            "getent said: no such user"
        );
        let user = UserName::parse("root").unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script(&user, Scope::EVERYTHING, None))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let facts = parse(&text, Scope::EVERYTHING);
        assert!(facts.unparsed.is_empty(), "{:?}\n{text}", facts.unparsed);
        assert_eq!(
            facts.passwd.as_ref().map(|p| p.home.as_str()),
            Some("/root")
        );
        assert!(facts.paths.contains_key("/root"), "{text}");
        assert!(facts.disk_use.is_some(), "df's two percentages: {text}");
        assert!(
            facts
                .authorized_keys_path
                .as_deref()
                .is_some_and(|p| p.starts_with("/root/")),
            "{text}"
        );
        let scope = Scope::FILES;
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script(&user, scope, Some("/root/.ssh/authorized_keys")))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let again = parse(&text, scope);
        assert!(again.unparsed.is_empty(), "{:?}\n{text}", again.unparsed);
        assert_eq!(
            again.authorized_keys_path.as_deref(),
            Some("/root/.ssh/authorized_keys")
        );
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
                let facts = parse(&lines.join("\n"), Scope::EVERYTHING);
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
