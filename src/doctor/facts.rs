//! Gathering the facts behind "Server refused our key" in one round trip.
//!
//! A single root shell script (`gather.sh`, one function per section)
//! prints every fact the checks need in sections headed `@@ese:NAME`: the
//! passwd entry, the account's lock state and expiry, the `stat` of every
//! path component at once, sshd's effective configuration for the user, the
//! key file's fingerprints, SELinux, mounts, disk space and sshd's log lines
//! naming the user. Every line goes out behind a nonce the script draws on
//! the instance (so nothing else printed on the console can pass for it) and
//! the last one counts them. [`parse`] reads it back strictly: only lines
//! with the nonce; a repeated or unexpected section, a second start line or
//! a wrong count is an error; a required section missing is an error, any
//! other is reported not checked, never guessed. A [`Scope`] narrows a
//! gather to what repairs can have changed, for the verification.

use std::collections::HashMap;
use std::sync::OnceLock;

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
    /// Why the key file was not read (a link, a special file, too many
    /// keys): its content is not checked.
    pub keys_unread: Option<String>,
    /// What could not be checked, with why: a section missing from the
    /// console's answer, the key file not read. Never reported healthy.
    pub not_checked: Vec<String>,
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

/// The gather's shell functions (`gather.sh`): one per section, and the
/// few they share.
const LIBRARY: &str = include_str!("gather.sh");

/// The start line of a gather's output: this prefix, then the nonce it
/// drew on the instance. Every later line of it is `NONCE TEXT`.
const START: &str = "@@ese-facts:";

/// Where a section runs in [`LIBRARY`]'s `ese_run`: in order, or beside
/// the others (the facts nothing else waits for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Main,
    Side,
}

/// One section of a gather: its name (the shell function `ese_NAME` prints
/// it), where it runs, which look asks for it, and what it feeds. A
/// required section missing makes the answer unreadable; any other is
/// reported as not checked, never as healthy.
struct Section {
    name: &'static str,
    part: Part,
    wanted: fn(Scope, bool) -> bool,
    required: bool,
    feeds: &'static str,
}

const fn section(
    name: &'static str,
    part: Part,
    wanted: fn(Scope, bool) -> bool,
    required: bool,
    feeds: &'static str,
) -> Section {
    Section {
        name,
        part,
        wanted,
        required,
        feeds,
    }
}

fn always(_: Scope, _: bool) -> bool {
    true
}

/// The sections of the gather ([`script`]), in the order they print; the
/// `bool` given to `wanted` is unused.
const GATHER: &[Section] = &[
    section("passwd", Part::Main, always, true, "the account"),
    section("shell", Part::Main, always, false, "user.shell"),
    section("akpath", Part::Main, always, true, "the key file's path"),
    section("stat", Part::Main, always, true, "the paths"),
    section(
        "keys",
        Part::Main,
        always,
        false,
        "authorized_keys.key_missing, authorized_keys.empty, authorized_keys.key_algorithm",
    ),
    section(
        "keylines",
        Part::Main,
        always,
        false,
        "authorized_keys.crlf, authorized_keys.malformed",
    ),
    section("sshdt", Part::Main, |s, _| s.sshd, true, "sshd.config"),
    section("sshdT", Part::Main, |s, _| s.sshd, true, "sshd's settings"),
    section(
        "sshdconf",
        Part::Main,
        |s, _| s.sshd,
        false,
        "the sshd_config lines a repair comments out",
    ),
    section("running", Part::Main, |s, _| s.sshd, false, "sshd.running"),
    section(
        "hostkeys",
        Part::Main,
        |s, _| s.sshd,
        false,
        "sshd.host_keys",
    ),
    section(
        "groups",
        Part::Main,
        |s, _| s.account,
        false,
        "sshd.user_not_allowed (the user's groups)",
    ),
    section(
        "selinux",
        Part::Main,
        |s, _| s.selinux,
        false,
        "selinux.ssh_dir_label",
    ),
    section(
        "shadow",
        Part::Side,
        |s, _| s.account,
        false,
        "user.locked, user.expired",
    ),
    section("mount", Part::Side, |s, _| s.system, false, "home.mounted"),
    section("df", Part::Side, |s, _| s.system, false, "disk.full"),
    section(
        "log",
        Part::Side,
        |s, _| s.log,
        false,
        "the evidence (sshd's log)",
    ),
    section(
        "os",
        Part::Side,
        |s, _| s.system,
        false,
        "the distribution's default user",
    ),
];

/// The sections of [`whereabouts`]; the `bool` given to `wanted` is
/// whether a key is sought.
const WHEREABOUTS: &[Section] = &[
    section(
        "absent",
        Part::Main,
        always,
        true,
        "what is left of the account",
    ),
    section(
        "holders",
        Part::Main,
        |_, sought| sought,
        false,
        "which accounts hold the key",
    ),
];

/// The shell functions every gather uses, besides its sections'.
const RUNNER: &[&str] = &["ese_run", "ese_each"];
/// Those that read sshd's settings (`sshd -T`, the slowest fact).
const SETTINGS: &[&str] = &["ese_settings", "ese_read_settings", "ese_expand"];

/// The definition of shell function `name` in [`LIBRARY`], as it is typed:
/// without comments and indentation, which the shell skips anyway (every
/// byte crosses the console). `gather.sh` has no here-documents or
/// multi-line strings, so no line's content changes.
fn function(name: &str) -> &'static str {
    // Cut out once per process: a fleet types the gather thousands of
    // times, and searching gather.sh for each function each time was a
    // tenth of a replayed fleet's CPU (perf, 1,000 targets).
    static TYPED: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    TYPED
        .get_or_init(cut_out_all)
        .get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("gather.sh defines no function {name}"))
}

/// Every function of gather.sh (`NAME() {` at the start of a line, to the
/// first `}` line), as it is typed.
fn cut_out_all() -> HashMap<&'static str, String> {
    let mut functions = HashMap::new();
    let mut rest = LIBRARY;
    while let Some((line, after)) = rest.split_once('\n') {
        rest = after;
        let Some(name) = line.strip_suffix("() {") else {
            continue;
        };
        let len = rest
            .find("\n}\n")
            .expect("a function in gather.sh ends with `}`")
            + 3;
        let mut typed = format!("{line}\n");
        for body in rest[..len].lines().map(str::trim_start) {
            if !body.is_empty() && !body.starts_with('#') {
                typed.push_str(body);
                typed.push('\n');
            }
        }
        functions.insert(name, typed);
        rest = &rest[len..];
    }
    functions
}

/// The typed script: the functions named, then `run` (the line that sets
/// the variables and calls `ese_run` with the sections).
fn typed(functions: &[&str], sections: &[&Section], run: &str) -> String {
    let mut script: String = functions.iter().map(|f| function(f)).collect();
    for s in sections {
        script.push_str(function(&format!("ese_{}", s.name)));
    }
    let names = |part: Part| -> String {
        sections
            .iter()
            .filter(|s| s.part == part)
            .map(|s| s.name)
            .collect::<Vec<_>>()
            .join(" ")
    };
    script.push_str(&format!(
        "{run}; ese_run '{}' '{}'",
        names(Part::Main),
        names(Part::Side)
    ));
    script
}

/// The script that prints the facts of `scope` for `user`: the functions
/// of `gather.sh` this look needs, and one line that runs them. Without
/// [`Scope::sshd`], `key_path` is the authorized-keys path the diagnosis
/// found (it comes from `sshd -T`, the slowest fact).
///
/// Every program started on the instance costs time (a small instance, or a
/// VM under emulation, pays tens of milliseconds per `exec`), so the script
/// uses the shell's own expansions where a program is not needed: the passwd
/// and shadow fields are cut with `${…#…}`, and `sshd -T` is run once and
/// serves as the configuration test too (it fails, with the same message, where
/// `sshd -t` would).
pub fn script(user: &UserName, scope: Scope, key_path: Option<&str>) -> String {
    let u = shell_words::quote(user.as_str());
    let sections: Vec<&Section> = GATHER.iter().filter(|s| (s.wanted)(scope, false)).collect();
    let (a, settings) = match (scope.sshd, key_path) {
        (false, Some(path)) => (shell_words::quote(path).into_owned(), false),
        _ => (String::new(), true),
    };
    let mut functions = RUNNER.to_vec();
    if settings {
        functions.extend(SETTINGS);
    }
    typed(&functions, &sections, &format!("u={u}; a={a}"))
}

/// The script that looks further when the diagnosis found no account for
/// `user`, or a key file without the key sought: what is left of a deleted
/// account, who can log in, and (with `sought`) which accounts' key files
/// hold the key. A second round trip, paid only in those cases, so the
/// common diagnosis types none of it.
pub fn whereabouts(user: &UserName, sought: Option<&Fingerprint>) -> String {
    let u = shell_words::quote(user.as_str());
    let sections: Vec<&Section> = WHEREABOUTS
        .iter()
        .filter(|s| (s.wanted)(Scope::FILES, sought.is_some()))
        .collect();
    let f = sought
        .map(|fp| shell_words::quote(fp.as_str()).into_owned())
        .unwrap_or_default();
    typed(RUNNER, &sections, &format!("u={u}; F={f}"))
}

/// Reads the output of [`whereabouts`] (`sought`: with a key sought) into
/// `facts`.
pub fn parse_whereabouts(output: &str, sought: bool, facts: &mut Facts) {
    let wanted: Vec<&Section> = WHEREABOUTS
        .iter()
        .filter(|s| (s.wanted)(Scope::FILES, sought))
        .collect();
    let sections = match read_sections(output, &wanted, facts) {
        Some(sections) => sections,
        None => return,
    };
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

/// The lines of a gather's output that carry its nonce, without it; `Err`
/// says why the output cannot be trusted or is incomplete.
///
/// The nonce is the one of the single start line ([`START`]). Lines without
/// it (anything else printed on the console: `wall`, `write`, a program on
/// another tty, the kernel) are not ours and are left out. A second start
/// line means something else prints text shaped like ours: nothing is read.
/// The end line counts the lines before it, so a line lost or garbled on
/// the way is noticed, and no line of ours may follow it.
fn unframe<'a>(output: &'a str) -> Result<Vec<&'a str>, String> {
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
    // Where a line holds the start (or the nonce), what comes before it is
    // someone else's text left without a newline: our lines are written
    // whole, each in one write, which no other writer can split.
    let after = |line: &'a str, mark: &str| line.find(mark).map(|at| &line[at + mark.len()..]);
    // A start line ends with the nonce: a log line quoting the marker is no
    // start line.
    let starts: Vec<&str> = lines
        .iter()
        .filter_map(|l| after(l, START))
        .filter(|n| n.len() == 24 && n.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    let nonce = match starts.as_slice() {
        [] => return Err("the gather's start line is missing from the console output".into()),
        [n] => *n,
        more => {
            return Err(format!(
                "the console output holds {} start lines for one gather: something else on the console \
                 prints text shaped like the doctor's (a forgery?), so none of it is trusted",
                more.len()
            ))
        }
    };
    let tag = format!("{nonce} ");
    let mut ours = Vec::new();
    let mut end: Option<&str> = None;
    for line in lines {
        let Some(text) = after(line, &tag) else {
            continue;
        };
        if end.is_some() {
            return Err(format!("a line after the gather's end line: {text:?}"));
        }
        match text.strip_prefix(MARK).and_then(|t| t.strip_prefix("end ")) {
            Some(count) => end = Some(count),
            None => ours.push(text),
        }
    }
    match end {
        None => Err("section end missing from the console output (cut short?)".into()),
        Some(count) if count.trim().parse() == Ok(ours.len()) => Ok(ours),
        Some(count) => Err(format!(
            "the gather printed {count} lines but {} arrived with its nonce: lines were lost or garbled on the console",
            ours.len()
        )),
    }
}

/// The sections of a gather's output, by name, read strictly: only the
/// lines bound to its nonce ([`unframe`]), each section at most once, none
/// that was not asked for. A required section missing is reported in
/// `facts.unparsed`; any other missing is `facts.not_checked` (what it
/// feeds was not checked). `None` when the output cannot be read at all
/// (the reason in `facts.unparsed`).
fn read_sections(
    output: &str,
    wanted: &[&Section],
    facts: &mut Facts,
) -> Option<HashMap<String, Vec<String>>> {
    let lines = match unframe(output) {
        Ok(lines) => lines,
        Err(why) => {
            facts.unparsed.push(why);
            return None;
        }
    };
    let mut sections: HashMap<String, Vec<String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in lines {
        if let Some(name) = line.strip_prefix(MARK) {
            let name = name.trim();
            if !wanted.iter().any(|s| s.name == name) {
                facts.unparsed.push(format!(
                    "an unexpected section {name:?} in the console output"
                ));
                return None;
            }
            if sections.contains_key(name) {
                facts.unparsed.push(format!(
                    "section {name} appears twice in the console output"
                ));
                return None;
            }
            sections.insert(name.to_string(), Vec::new());
            current = Some(name.to_string());
        } else if let Some(name) = &current {
            if !line.trim().is_empty() {
                sections
                    .get_mut(name)
                    .expect("the current section exists")
                    .push(line.to_string());
            }
        } else if !line.trim().is_empty() {
            facts
                .unparsed
                .push(format!("a line before the first section: {line:?}"));
            return None;
        }
    }
    for s in wanted {
        if !sections.contains_key(s.name) {
            if s.required {
                facts.unparsed.push(format!(
                    "section {} missing from the console output",
                    s.name
                ));
            } else {
                facts.not_checked.push(format!(
                    "{}: the console's answer had no {} section",
                    s.feeds, s.name
                ));
            }
        }
    }
    Some(sections)
}

/// Parses the output of [`script`] for `scope` (the output may hold other
/// text: only the gather's own lines are read).
pub fn parse(output: &str, scope: Scope) -> Facts {
    let mut facts = Facts::default();
    let wanted: Vec<&Section> = GATHER.iter().filter(|s| (s.wanted)(scope, false)).collect();
    let Some(sections) = read_sections(output, &wanted, &mut facts) else {
        return facts;
    };
    let sections = Sections(&sections);
    read_account(&sections, &mut facts);
    read_paths(&sections, &mut facts);
    read_sshd(&sections, &mut facts);
    read_keys(&sections, &mut facts);
    read_system(&sections, &mut facts);
    facts
}

/// The gather's sections by name; a section not there reads as no lines.
struct Sections<'a>(&'a HashMap<String, Vec<String>>);

impl Sections<'_> {
    fn lines(&self, name: &str) -> &[String] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }

    fn first(&self, name: &str) -> Option<&String> {
        self.lines(name).first()
    }

    fn has_line(&self, name: &str, wanted: &str) -> bool {
        self.lines(name).iter().any(|l| l == wanted)
    }
}

/// `passwd`, `shell`, `shadow`, `groups`: the account.
fn read_account(sections: &Sections<'_>, facts: &mut Facts) {
    facts.passwd = sections.first("passwd").and_then(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() == 7).then(|| Passwd {
            home: f[5].to_string(),
            shell: f[6].to_string(),
        })
    });
    facts.shell_ok = sections.has_line("shell", "ok");
    let shadow: Vec<&str> = sections
        .first("shadow")
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    facts.password_status = shadow.first().map(|s| s.to_string());
    facts.expired = shadow
        .get(1)
        .and_then(|day| day.parse::<i64>().ok())
        .is_some_and(account_expired);
    facts.groups = sections
        .first("groups")
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
}

/// `akpath`, `stat`: the key file's path and every directory on the way.
fn read_paths(sections: &Sections<'_>, facts: &mut Facts) {
    facts.authorized_keys_path = sections.first("akpath").cloned();
    for line in sections.lines("stat") {
        match parse_stat(line) {
            Some((path, p)) => {
                facts.paths.insert(path, p);
            }
            None => facts.unparsed.push(format!("stat line {line:?}")),
        }
    }
}

/// `sshdt`, `sshdT`, `sshdconf`, `running`, `hostkeys`: the daemon.
fn read_sshd(sections: &Sections<'_>, facts: &mut Facts) {
    let test = sections.lines("sshdt");
    facts.sshd_test_error =
        (test.last().map(String::as_str) != Some("ok")).then(|| test.join("; "));
    for line in sections.lines("sshdT") {
        if let Some((k, v)) = line.split_once(' ') {
            facts
                .sshd
                .insert(k.to_ascii_lowercase(), v.trim().to_string());
        }
    }
    facts.sshd_config_lines = sections.lines("sshdconf").to_vec();
    facts.sshd_running = sections.lines("running").iter().any(|l| {
        let l = l.trim();
        l == "active" || (!l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
    });
    facts.host_keys = sections.lines("hostkeys").to_vec();
}

/// `keys`, `keylines`: the authorized keys and the file's bad lines.
fn read_keys(sections: &Sections<'_>, facts: &mut Facts) {
    for line in sections.lines("keys") {
        if let Some(why) = line.strip_prefix("unread ") {
            facts.keys_unread = Some(format!("the key file {why}"));
        } else if line == "more" {
            facts.keys_unread = Some("the key file holds more than 2000 keys".into());
        } else if let Some(key) = parse_key_line(line) {
            facts.keys.push(key);
        }
    }
    if let Some(why) = &facts.keys_unread {
        facts.not_checked.push(format!(
            "authorized_keys.key_missing, authorized_keys.empty, authorized_keys.crlf, \
             authorized_keys.malformed, authorized_keys.key_algorithm: not read, because {why} \
             (root does not read through a link or a special file its user can swap in)"
        ));
    }
    let counts: Vec<usize> = sections
        .lines("keylines")
        .iter()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    facts.crlf_lines = counts.first().copied().unwrap_or(0);
    facts.bad_lines = counts.get(1).copied().unwrap_or(0);
}

/// `selinux`, `mount`, `df`, `log`, `os`: the machine around the account.
fn read_system(sections: &Sections<'_>, facts: &mut Facts) {
    let selinux = sections.lines("selinux");
    facts.selinux = selinux.first().cloned();
    facts.ssh_dir_context = selinux
        .get(1)
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string);
    facts.home_unmounted = sections.has_line("mount", "unmounted");
    // `Use% IUse%`, then the two percentages.
    facts.disk_use = sections.lines("df").iter().find_map(|l| {
        let pcts: Vec<u32> = l
            .split_whitespace()
            .filter_map(|w| w.strip_suffix('%')?.parse().ok())
            .collect();
        (pcts.len() == 2).then(|| (pcts[0], pcts[1]))
    });
    facts.log = sections.lines("log").to_vec();
    for line in sections.lines("os") {
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        let value = value.trim_matches('"').to_string();
        match key {
            "ID" => facts.os.id = value,
            "ID_LIKE" => facts.os.id_like = value,
            "PRETTY_NAME" => facts.os.pretty_name = value,
            _ => {}
        }
    }
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
@@ese:akpath
/home/ec2-user/.ssh/authorized_keys
@@ese:stat
directory|root|root|755|/home
directory|ec2-user|ec2-user|777|/home/ec2-user
directory|ec2-user|ec2-user|700|/home/ec2-user/.ssh
regular empty file|ec2-user|ec2-user|600|/home/ec2-user/.ssh/authorized_keys
directory|root|root|755|/etc/ssh
@@ese:keys
SHA256:abc ED25519
@@ese:keylines
0
0
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
@@ese:hostkeys
/etc/ssh/ssh_host_ed25519_key
@@ese:groups
ec2-user sudo
@@ese:selinux
@@ese:shadow
P 
@@ese:mount
@@ese:df
Use% IUse%
 12%    3%
@@ese:log
sshd[812]: Authentication refused: bad ownership or modes for directory /home/ec2-user
@@ese:os
ID=debian
";

    const NONCE: &str = "0123456789abcdef01234567";

    /// `body` as a gather prints it: the start line, every line behind the
    /// nonce, the end line with the count.
    fn framed(body: &str) -> String {
        let mut out = format!("{START}{NONCE}\n");
        for line in body.lines() {
            out.push_str(&format!("{NONCE} {line}\n"));
        }
        out.push_str(&format!("{NONCE} @@ese:end {}\n", body.lines().count()));
        out
    }

    #[test]
    fn parses_a_real_shaped_report() {
        let f = parse(&framed(SAMPLE), Scope::EVERYTHING);
        assert!(f.unparsed.is_empty(), "{:?}", f.unparsed);
        assert!(f.not_checked.is_empty(), "{:?}", f.not_checked);
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

    /// Text printed on the console by anyone else (`wall`, `write`, a
    /// program on another tty), shaped like the gather's sections, is not
    /// read: it lacks the nonce. Issue 31 item 3.
    #[test]
    fn a_forged_section_without_the_nonce_is_ignored() {
        let forged = "@@ese:keys\nSHA256:forged ED25519\n@@ese:shadow\nP 0\n";
        let body = SAMPLE
            .replace("P \n", "L 1\n")
            .replace("@@ese:keys\nSHA256:abc ED25519\n", "@@ese:keys\n");
        let real = framed(&body);
        // Before, inside (between two of our lines) and after our output.
        let mut lines: Vec<&str> = real.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.ends_with("@@ese:keys"))
            .unwrap()
            + 1;
        lines.insert(at, "SHA256:forged2 ED25519");
        // And someone's text left without a newline before one of ours.
        let at = lines
            .iter()
            .position(|l| l.ends_with("@@ese:shadow"))
            .unwrap();
        let glued = format!("P 0 {}", lines[at]);
        lines[at] = &glued;
        let out = format!("{forged}{}\n{forged}", lines.join("\n"));
        let f = parse(&out, Scope::EVERYTHING);
        assert!(f.unparsed.is_empty(), "{:?}", f.unparsed);
        assert!(f.keys.is_empty(), "forged keys read: {:?}", f.keys);
        assert_eq!(f.password_status.as_deref(), Some("L"));
        assert!(f.expired);
        // Without the nonce, nothing is read at all.
        let f = parse(&format!("{SAMPLE}@@ese:end\n"), Scope::EVERYTHING);
        assert!(!f.unparsed.is_empty());
        assert!(f.passwd.is_none() && f.keys.is_empty());
    }

    /// A second start line (someone printing a whole forged gather with a
    /// nonce of their own) stops the run: nothing is read.
    #[test]
    fn a_second_start_line_makes_the_answer_unreadable() {
        let other = "fedcba9876543210fedcba98";
        let forged = format!(
            "{START}{other}\n{other} @@ese:passwd\n{other} @@ese:keys\n{other} SHA256:forged ED25519\n{other} @@ese:end 3\n"
        );
        for out in [
            format!("{forged}{}", framed(SAMPLE)),
            format!("{}{forged}", framed(SAMPLE)),
        ] {
            let f = parse(&out, Scope::EVERYTHING);
            assert!(
                f.unparsed.iter().any(|u| u.contains("2 start lines")),
                "{:?}",
                f.unparsed
            );
            assert!(f.keys.is_empty());
        }
    }

    #[test]
    fn a_repeated_or_unexpected_section_is_an_error_not_merged() {
        let f = parse(
            &framed(&format!("{SAMPLE}@@ese:keys\nSHA256:more RSA\n")),
            Scope::EVERYTHING,
        );
        assert!(
            f.unparsed.iter().any(|u| u.contains("keys appears twice")),
            "{:?}",
            f.unparsed
        );
        assert!(f.keys.is_empty(), "nothing is read: {:?}", f.keys);
        // `os` is not asked for by a verification of the files.
        let f = parse(&framed(SAMPLE), Scope::FILES);
        assert!(
            f.unparsed.iter().any(|u| u.contains("unexpected section")),
            "{:?}",
            f.unparsed
        );
    }

    /// A section that is missing is not checked, never fine: the shadow
    /// section gone says nothing about the lock or the expiry.
    #[test]
    fn a_missing_section_is_not_checked() {
        let body = SAMPLE.replace("@@ese:shadow\nP \n", "");
        let f = parse(&framed(&body), Scope::EVERYTHING);
        assert!(f.unparsed.is_empty(), "{:?}", f.unparsed);
        assert_eq!(f.password_status, None);
        assert!(
            f.not_checked
                .iter()
                .any(|n| n.contains("user.locked, user.expired") && n.contains("shadow")),
            "{:?}",
            f.not_checked
        );
        // A required one makes the answer unreadable.
        let body = SAMPLE.replace("@@ese:sshdT\n", "@@ese:other\n");
        assert!(!parse(&framed(&body), Scope::EVERYTHING).unparsed.is_empty());
    }

    /// The end line counts the lines: one lost (or garbled so that it lost
    /// its nonce) on the way is noticed.
    #[test]
    fn a_lost_line_is_noticed() {
        let out = framed(SAMPLE).replace(&format!("{NONCE} SHA256:abc"), "SHA256:abc");
        let f = parse(&out, Scope::EVERYTHING);
        assert!(
            f.unparsed.iter().any(|u| u.contains("lost or garbled")),
            "{:?}",
            f.unparsed
        );
        let cut = framed(SAMPLE).replace(&format!("{NONCE} @@ese:end"), "");
        assert!(!parse(&cut, Scope::EVERYTHING).unparsed.is_empty());
    }

    #[test]
    fn reads_an_absent_user_the_distribution_and_the_key_holders() {
        let scope = Scope {
            system: true,
            ..Scope::FILES
        };
        let mut f = parse(
            &framed(
                "@@ese:passwd\n@@ese:akpath\n/home/ec2-user/.ssh/authorized_keys\n@@ese:stat\n@@ese:keys\n\
                 @@ese:os\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n",
            ),
            scope,
        );
        parse_whereabouts(
            &framed(
                "@@ese:absent\nhome directory|1000|1000|UNKNOWN|/home/ec2-user\n\
                 group adm\ngroup sudo\nown\nuser lab-admin\n\
                 @@ese:holders\nlab-admin /home/lab-admin/.ssh/authorized_keys\n",
            ),
            true,
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
        let cut = framed("@@ese:absent\nlookup 1\n").replace(&format!("{NONCE} @@ese:end"), "");
        parse_whereabouts(&cut, false, &mut g);
        assert!(!g.unparsed.is_empty(), "a cut answer is reported");
        // A forged holder, without the nonce, is not read.
        let mut h = Facts::default();
        let out = format!(
            "@@ese:holders\nadmin /home/admin/.ssh/authorized_keys\n{}",
            framed("@@ese:absent\n@@ese:holders\n")
        );
        parse_whereabouts(&out, true, &mut h);
        assert!(h.unparsed.is_empty(), "{:?}", h.unparsed);
        assert!(h.key_holders.is_empty());
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
        let out = format!("{START}{NONCE}\n{NONCE} @@ese:passwd\n{NONCE} ec2-user:x:1000:1000::/home/ec2-user:/bin/bash\n");
        let f = parse(&out, Scope::EVERYTHING);
        assert!(
            f.unparsed.iter().any(|u| u.contains("end missing")),
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

    /// Short: every byte crosses the serial line. The typed text holds no
    /// marker the output will carry (the nonce is drawn on the instance),
    /// so the echo of what is typed can never be taken for output, and
    /// every section has its function in gather.sh, and no function is left
    /// unused.
    #[test]
    fn the_script_is_short_and_holds_no_marker_of_its_output() {
        let s = script(
            &UserName::parse("ec2-user").unwrap(),
            Scope::EVERYTHING,
            None,
        );
        assert!(s.len() < 5000, "{} bytes", s.len());
        let fp = Fingerprint::parse("SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU").unwrap();
        let w = whereabouts(&UserName::parse("ec2-user").unwrap(), Some(&fp));
        assert!(w.len() < 2000, "{} bytes", w.len());
        for typed in [&s, &w] {
            assert!(!typed.contains("@@ese:") && !typed.contains(START));
        }
        let mut defined: Vec<&str> = LIBRARY
            .lines()
            .filter_map(|l| l.strip_suffix("() {"))
            .collect();
        defined.sort();
        let mut used: Vec<String> = RUNNER
            .iter()
            .chain(SETTINGS)
            .map(|s| s.to_string())
            .chain(
                GATHER
                    .iter()
                    .chain(WHEREABOUTS)
                    .map(|s| format!("ese_{}", s.name)),
            )
            .collect();
        used.sort();
        assert_eq!(defined, used);
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &s])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
        let scope = Scope {
            account: true,
            ..Scope::FILES
        };
        let f = parse(
            &framed("@@ese:passwd\n@@ese:akpath\n/x\n@@ese:stat\n@@ese:shadow\nL 1\n"),
            scope,
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
        let first = parse(&framed(SAMPLE), Scope::EVERYTHING);
        let scope = Scope {
            selinux: true,
            ..Scope::FILES
        };
        let again = parse(
            &framed(
                "@@ese:passwd\nec2-user:x:1000:1000::/home/ec2-user:/bin/bash\n@@ese:shell\nok\n\
                 @@ese:akpath\n/home/ec2-user/.ssh/authorized_keys\n@@ese:stat\n\
                 directory|ec2-user|ec2-user|700|/home/ec2-user\n@@ese:keys\n@@ese:keylines\n@@ese:selinux\n",
            ),
            scope,
        );
        assert!(again.unparsed.is_empty(), "{:?}", again.unparsed);
        assert!(again.not_checked.is_empty(), "{:?}", again.not_checked);
        let now = first.refresh(again, scope);
        assert_eq!(now.paths["/home/ec2-user"].mode, 0o700);
        assert_eq!(now.sshd["strictmodes"], "yes", "sshd facts carried over");
        assert!(now.sshd_running);
        assert_eq!(now.disk_use, Some((12, 3)));
        assert_eq!(now.log.len(), 1);
        assert!(now.keys.is_empty(), "the files are always read again");
    }

    /// The verification runs after the guard in the same command: its part
    /// of the output is found by its own start line, and the guard's
    /// markers (another nonce) are not taken for it.
    #[test]
    fn the_gather_part_of_a_combined_output() {
        let guard = "@@ese-guard:n1\n@@ese:n1:begin 0\nchmod\n@@ese:n1:end 0 0\n@@ese:n1:done\n";
        let f = parse(&format!("{guard}{}", framed(SAMPLE)), Scope::EVERYTHING);
        assert!(f.unparsed.is_empty(), "{:?}", f.unparsed);
        assert_eq!(f.keys.len(), 1);
        assert!(!parse(guard, Scope::EVERYTHING).unparsed.is_empty());
    }

    /// Runs the settings reader and the key-file expansion under a real sh
    /// on `T` (as `sshd -T` would print it); returns `a|C|G|S`.
    fn read_settings(t: &str) -> String {
        let script = format!(
            "{}{}T={}; h=/home/ann; u=ann; ese_read_settings; ese_expand; printf '%s|%s|%s|%s' \"$a\" \"$C\" \"$G\" \"$S\"",
            function("ese_read_settings"),
            function("ese_expand"),
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

    /// Runs `ese_akpath`, `ese_keys` and `ese_keylines` under a real sh for
    /// the home `h` (key file `h/.ssh/authorized_keys`), with `PATH`
    /// starting at `bin`; the output, or `None` when it had to be killed.
    fn read_keys(h: &std::path::Path, bin: Option<&std::path::Path>) -> Option<String> {
        let script = format!(
            "{}{}{}h={}; a=\"$h/.ssh/authorized_keys\"; ese_akpath >/dev/null; ese_keys; echo ---; ese_keylines",
            function("ese_akpath"),
            function("ese_keys"),
            function("ese_keylines"),
            shell_words::quote(h.to_str().unwrap())
        );
        let mut cmd = std::process::Command::new("timeout");
        cmd.args(["20", "sh", "-c", &script]);
        if let Some(bin) = bin {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", bin.display()));
        }
        let out = cmd.output().unwrap();
        (out.status.code() != Some(124)).then(|| String::from_utf8(out.stdout).unwrap())
    }

    #[test]
    fn a_key_comment_never_reaches_the_parsed_facts() {
        // ssh-keygen -l's lines, as the script cuts them: the comment (the
        // file owner's text, here posing as a section) is left out.
        let dir = tempfile::tempdir().unwrap();
        let (home, bin) = (dir.path().join("home"), dir.path().join("bin"));
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(home.join(".ssh/authorized_keys"), "x\n").unwrap();
        let fake = bin.join("ssh-keygen");
        std::fs::write(&fake, "#!/bin/sh\nprintf '%s\\n' '256 SHA256:N0Fi50u6BAJSnmk6YVFkNVhoYvRY/KU6S20uTv9IJ+o @@ese:stat x (ED25519)' '3072 SHA256:abc no comment (RSA)'\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let text = read_keys(&home, Some(&bin)).unwrap();
        let keys = text.split("---").next().unwrap();
        assert_eq!(
            keys,
            "SHA256:N0Fi50u6BAJSnmk6YVFkNVhoYvRY/KU6S20uTv9IJ+o (ED25519)\nSHA256:abc (RSA)\n"
        );
        let keys: Vec<_> = keys.lines().filter_map(parse_key_line).collect();
        assert_eq!(keys[1], ("SHA256:abc".to_string(), "RSA".to_string()));
    }

    /// Root never reads the key file through a link or a special file the
    /// user controls: a FIFO, a link to /dev/zero, a linked ~/.ssh are
    /// reported unread at once, where the reads used to block or grow
    /// until the doctor timed out. Issue 32 item 7.
    #[test]
    fn the_key_file_is_never_read_through_a_link_or_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let ssh = home.join(".ssh");
        let ak = ssh.join("authorized_keys");
        std::fs::create_dir_all(&ssh).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(&ak)
            .status()
            .unwrap();
        assert!(fifo.success());
        let out = read_keys(&home, None).expect("a FIFO made the read block");
        assert!(out.starts_with("unread is not a regular file\n"), "{out}");
        std::fs::remove_file(&ak).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &ak).unwrap();
        let out = read_keys(&home, None).expect("a link to /dev/zero made the read grow");
        assert!(out.starts_with("unread is a symbolic link\n"), "{out}");
        std::fs::remove_file(&ak).unwrap();
        let real = dir.path().join("elsewhere");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::write(
            real.join("authorized_keys"),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl t\n",
        )
        .unwrap();
        std::fs::remove_dir(&ssh).unwrap();
        std::os::unix::fs::symlink(&real, &ssh).unwrap();
        let out = read_keys(&home, None).unwrap();
        assert!(
            out.starts_with("unread lies behind a symbolic link"),
            "{out}"
        );
        // What the parser makes of it: not checked, with the reason.
        let body = SAMPLE.replace(
            "@@ese:keys\nSHA256:abc ED25519\n@@ese:keylines\n0\n0\n",
            "@@ese:keys\nunread is not a regular file\n@@ese:keylines\n",
        );
        let f = parse(&framed(&body), Scope::EVERYTHING);
        assert!(f.unparsed.is_empty(), "{:?}", f.unparsed);
        assert_eq!(
            f.keys_unread.as_deref(),
            Some("the key file is not a regular file")
        );
        assert!(
            f.not_checked
                .iter()
                .any(|n| n.contains("authorized_keys.key_missing")
                    && n.contains("not a regular file")),
            "{:?}",
            f.not_checked
        );
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
        parse_whereabouts(&text, true, &mut facts);
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
                let mut out = format!("{START}0123456789abcdef01234567\n");
                for l in &lines {
                    out.push_str(&format!("0123456789abcdef01234567 {l}\n"));
                }
                out.push_str(&format!("0123456789abcdef01234567 @@ese:end {}\n", lines.len()));
                let facts = parse(&out, Scope::EVERYTHING);
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
