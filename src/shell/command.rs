//! The lines the shell layer types, and the markers it reads back.
//!
//! Every command runs as
//! `printf '%s\n' "__ESX""_B7"; ( eval 'CMD' ) </dev/null; printf '\n%s %s\n' "__ESX""_E7" "$?"`:
//! a start marker, the command in a subshell with stdin closed, then a
//! newline, an end marker and the exit status (labgrid's `MARKER $?`). The
//! markers are split by `""` on the command line, so the line's own echo can
//! never match them; they carry the run number, so the output of an earlier
//! command that timed out can never be taken for this one's. The newline
//! printed before the end marker is ours: the output is exactly what lies
//! between the start marker's line and it, with or without a final newline.
//!
//! A tty in canonical mode takes at most 4095 bytes per line and interprets
//! control characters (Ctrl-C, Ctrl-U, erase…). A command that is long or
//! holds any control character is therefore sent in short lines appended to
//! a shell variable, every byte that is not printable ASCII (and `\`)
//! written as a `printf %b` escape, and decoded by the shell's own `printf`.
//! Not a temp file: on a full disk or a read-only `/tmp` (exactly when a
//! console is the way in) writing it fails, and the command would silently
//! run empty. Not base64 either (as until issue 13): `base64 -d` is one more
//! program to start, about 0.1 s on an emulated instance, for every long
//! command, and the text grows by a third.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::Regex;

/// The prompt set after login; `PS1` is written with `''` inside it so that
/// the echo of the line setting it cannot look like the prompt.
pub(super) const PROMPT: &str = "__ESX_P> ";

/// Longest command line typed as is; longer commands go through a variable.
pub(super) const MAX_PLAIN_LINE: usize = 1024;
/// Most characters typed per line when sending a command through a
/// variable: well under the tty's 4095, and few lines, since each waits for
/// the prompt (a round trip; 900 until issue 13 typed 6 KB in 8 of them).
const CHUNK: usize = 3000;
/// The longest line a tty in canonical mode takes whole.
#[cfg(test)]
const TTY_LINE_MAX: usize = 4095;

/// The line that makes any POSIX shell predictable: our prompt, no `PS2`, no
/// `PROMPT_COMMAND`, `TERM=dumb`, no echo, no history file; for bash also no
/// history, no bracketed paste and no line editing (readline off: the tty's
/// canonical mode reads the lines, like a plain `sh`).
pub(super) fn sync_line() -> String {
    "PS1='__ESX''_P> '; PS2=''; unset PROMPT_COMMAND HISTFILE; export TERM=dumb; \
     stty -echo 2>/dev/null; if [ -n \"$BASH_VERSION\" ]; then set +o history; \
     bind 'set enable-bracketed-paste off' 2>/dev/null; set +o emacs +o vi; fi"
        .to_string()
}

/// The line that logs our shell out. Its EXIT trap prints `__ESX_GONE`
/// and the name of the shell's parent when that parent leads a session of
/// its own (its session id is its pid), as getty's `login` does: when such
/// a shell exits, `login` ends the session and the kernel hangs the console
/// up, so no shell is left on it (docs/shell.md names the one layout where
/// that does not hold). That proves the logout without waiting for getty to come
/// back (about 1.4 s on an emulated instance). A nested shell, or one whose
/// parent is anything else, prints nothing, and the logout goes on as
/// before: `exit` again at the next shell prompt, until a login prompt.
/// Replacing the user's own EXIT trap is harmless: the shell is exiting.
pub(super) const EXIT_LINE: &str = "trap 'read -r _ c _ _ _ s _ 2>/dev/null </proc/$PPID/stat; \
     [ \"$s\" = \"$PPID\" ] && printf \"\\n%s %s\\n\" __ESX\"\"_GONE \"$c\"' EXIT; exit";

/// Puts `/bin/sh` in charge of a login shell that does not read POSIX
/// lines: fish, tcsh and csh all take it, and `exec` keeps the process (so
/// its parent is still `login`, and the logout proof holds). `stty sane`
/// gives the tty back its canonical mode, which a line editor (fish's) may
/// have left off; `ENV` and `TMOUT` empty, so no startup file of the user
/// runs and no idle timer ends the shell under us. The prompt is set by
/// `env`, split by `""` so the line's echo is not it.
pub(super) const START_SH: &str = "exec env ENV= TMOUT= PS1=\"__ESX\"\"_P> \" /bin/sh -c \
                                   'stty sane 2>/dev/null; exec /bin/sh'";

/// Matches our prompt at the start of a line: what a shell shows after the
/// sync line (an error message quoting the line does not start with it).
pub(super) fn synced_prompt_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(&format!(r"(?:^|[\r\n]){}", regex::escape(PROMPT)))
            .expect("prompt regex is valid")
    })
}

/// Matches our prompt.
pub(super) fn prompt_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(&regex::escape(PROMPT)).expect("prompt regex is valid"))
}

/// Quotes `s` for a POSIX shell (single quotes, `'` as `'\''`).
pub(super) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What to type for run number `n` of `cmd`.
#[derive(Debug, Clone)]
pub(super) struct CommandPlan {
    /// Lines typed first, each waited on until the prompt returns.
    pub setup: Vec<String>,
    /// The line that runs the command between the markers.
    pub run_line: String,
    /// The start marker's line, as the console prints it.
    pub start: Regex,
    /// The end marker's line; group 1 is the exit status.
    pub end: Regex,
}

/// The start and end marker regexes of run number `n`. Every session numbers
/// its runs from 1, so the first few are compiled once per thread and
/// cloned (a clone shares the compiled program): compiling two regexes per
/// command was 4 % of a replayed fleet's CPU (perf).
fn markers(n: u64) -> (Regex, Regex) {
    const KEPT: u64 = 32;
    thread_local! {
        static KNOWN: std::cell::RefCell<Vec<(Regex, Regex)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let compile = |n: u64| {
        (
            Regex::new(&format!("__ESX_B{n}\n")).expect("marker regex is valid"),
            Regex::new(&format!("\n__ESX_E{n} (\\d+)\n")).expect("marker regex is valid"),
        )
    };
    if n >= KEPT {
        return compile(n);
    }
    KNOWN.with_borrow_mut(|known| {
        while known.len() as u64 <= n {
            known.push(compile(known.len() as u64));
        }
        known[n as usize].clone()
    })
}

/// Plans how to type `cmd` as run number `n`.
pub(super) fn plan(cmd: &str, n: u64) -> CommandPlan {
    let (start, end) = markers(n);
    let begin = format!("printf '%s\\n' \"__ESX\"\"_B{n}\"");
    let quoted = quote(cmd);
    let plain_ok = cmd.chars().all(|c| c >= ' ' && c != '\x7f');
    if plain_ok && quoted.len() + 120 <= MAX_PLAIN_LINE {
        let run_line = format!(
            "{begin}; ( eval {quoted} ) </dev/null; printf '\\n%s %s\\n' \"__ESX\"\"_E{n}\" \"$?\""
        );
        return CommandPlan {
            setup: Vec::new(),
            run_line,
            start,
            end,
        };
    }
    let pieces = escape_for_printf(cmd);
    // The first line sets the variable, the others append to it.
    let mut setup: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut len = 0;
    let flush = |line: &str, setup: &mut Vec<String>| {
        let before = if setup.is_empty() { "" } else { "$__esx_b" };
        setup.push(format!("__esx_b={before}'{line}'"));
    };
    for (typed, counted) in pieces {
        if line.len() + typed.len() > CHUNK {
            flush(&line, &mut setup);
            line.clear();
        }
        line.push_str(&typed);
        len += counted;
    }
    flush(&line, &mut setup);
    // The variable's length is checked, so a lost or cut line can never run
    // as a truncated command.
    let run_line = format!(
        "{begin}; ( [ ${{#__esx_b}} -eq {len} ] || exit 125; \
         __esx_c=$(printf %b \"$__esx_b\") || exit 125; eval \"$__esx_c\" ) </dev/null; \
         __esx_s=$?; unset __esx_b; printf '\\n%s %s\\n' \"__ESX\"\"_E{n}\" \"$__esx_s\""
    );
    CommandPlan {
        setup,
        run_line,
        start,
        end,
    }
}

/// The command a typed run line runs, if it is one of ours typed whole
/// (`( eval 'CMD' )`): how a replay that parted from its recording is told
/// in the script's words rather than in the shell's framing.
pub(super) fn command_of(line: &str) -> Option<String> {
    static FRAMED: OnceLock<Regex> = OnceLock::new();
    let framed = FRAMED.get_or_init(|| {
        Regex::new(r"; \( eval '((?:[^']|'\\'')*)' \) </dev/null; ").expect("valid regex")
    });
    let quoted = framed.captures(line)?.get(1)?.as_str();
    Some(quoted.replace(r"'\''", "'"))
}

/// Says where `recorded` and `ran` (two commands) differ: each with the
/// part that differs in brackets, `uname -[s]` and `uname -[a]`.
pub(super) fn marked_difference(recorded: &str, ran: &str) -> (String, String) {
    let (a, b): (Vec<char>, Vec<char>) = (recorded.chars().collect(), ran.chars().collect());
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let mark = |s: &[char]| {
        let (head, rest) = s.split_at(prefix);
        let (middle, tail) = rest.split_at(rest.len() - suffix);
        format!(
            "{}[{}]{}",
            head.iter().collect::<String>(),
            middle.iter().collect::<String>(),
            tail.iter().collect::<String>()
        )
    };
    (mark(&a), mark(&b))
}

/// `cmd` as `printf %b` reads it, one piece per byte: what is typed inside
/// single quotes, and how many characters it adds to the variable. Only
/// printable ASCII is typed as is (`\` doubled, `'` as `'\''`); a newline is
/// `\n`, every other byte `\0` and three octal digits.
fn escape_for_printf(cmd: &str) -> impl Iterator<Item = (Cow<'_, str>, usize)> {
    // Printable ASCII is borrowed from `cmd` itself (one byte is a whole
    // character): the gather script is ~5 KB, and a String per byte made it
    // the most allocating line of a replayed fleet (heaptrack: 4,800 per target).
    cmd.bytes().enumerate().map(|(at, b)| match b {
        b'\\' => (Cow::Borrowed(r"\\"), 2),
        b'\'' => (Cow::Borrowed(r"'\''"), 1),
        b'\n' => (Cow::Borrowed(r"\n"), 2),
        b' '..=b'~' => (Cow::Borrowed(&cmd[at..=at]), 1),
        _ => (Cow::Owned(format!("\\0{b:03o}")), 5),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_leave_only_printable_ascii_and_count_what_the_shell_holds() {
        let pieces = escape_for_printf("a\\'\n\t\u{7f}é");
        let pieces: Vec<_> = pieces.collect();
        let typed: String = pieces.iter().map(|(t, _)| t.as_ref()).collect();
        assert_eq!(typed, r"a\\'\''\n\0011\0177\0303\0251");
        let held: usize = pieces.iter().map(|(_, n)| n).sum();
        // What the variable holds once the quotes are gone.
        assert_eq!(held, r"a\\'\n\0011\0177\0303\0251".len());
        // Every other printable character is typed as itself.
        let printable: String = (' '..='~').filter(|c| !matches!(c, '\\' | '\'')).collect();
        let typed: String = escape_for_printf(&printable).map(|(t, _)| t).collect();
        assert_eq!(typed, printable);
    }

    /// Kept marker regexes (the first runs) and compiled ones (later runs)
    /// match their own run's markers only.
    #[test]
    fn each_run_matches_its_own_markers_kept_or_not() {
        for n in [0, 3, 3, 31, 32, 40] {
            let p = plan("true", n);
            assert!(p.start.is_match(&format!("__ESX_B{n}\n")), "{n}");
            assert!(!p.start.is_match(&format!("__ESX_B{}\n", n + 1)), "{n}");
            let ended = format!("x\n__ESX_E{n} 5\n");
            assert_eq!(&p.end.captures(&ended).unwrap()[1], "5", "{n}");
            assert!(!p.end.is_match(&format!("\n__ESX_E1{n} 0\n")), "{n}");
        }
    }

    #[test]
    fn short_commands_are_typed_quoted_and_the_line_cannot_match_its_markers() {
        let p = plan("echo 'it''s' && false", 7);
        assert!(p.setup.is_empty());
        assert!(
            p.run_line
                .contains(r#"eval 'echo '\''it'\'''\''s'\'' && false'"#),
            "{}",
            p.run_line
        );
        assert!(!p.start.is_match(&p.run_line));
        assert!(!p.end.is_match(&p.run_line));
        assert!(!prompt_regex().is_match(&sync_line()));
        assert!(p.end.is_match("out\n__ESX_E7 127\n"));
        assert!(!p.end.is_match("out\n__ESX_E17 0\n"));
    }

    #[test]
    fn a_typed_run_line_gives_back_its_command_and_a_difference_is_marked() {
        for cmd in ["uname -s", "echo 'it''s' && false", ""] {
            let line = format!("{}\r", plan(cmd, 3).run_line);
            assert_eq!(command_of(&line).as_deref(), Some(cmd), "{line}");
        }
        assert_eq!(command_of("stty -echo\r"), None);
        assert_eq!(
            marked_difference("uname -s", "uname -a"),
            ("uname -[s]".to_string(), "uname -[a]".to_string())
        );
        assert_eq!(
            marked_difference("ls", "ls -l"),
            ("ls[]".to_string(), "ls[ -l]".to_string())
        );
        assert_eq!(
            marked_difference("aXa", "aa"),
            ("a[X]a".to_string(), "a[]a".to_string())
        );
    }

    #[test]
    fn long_or_control_commands_go_through_short_printable_lines() {
        let long = format!("echo {}", "x".repeat(10_000));
        let p = plan(&long, 1);
        assert!(p.setup.len() > 3);
        assert!(p
            .setup
            .iter()
            .chain([&p.run_line])
            .all(|l| l.len() < TTY_LINE_MAX));
        assert!(p.setup[0].starts_with("__esx_b='echo x"));
        assert!(p.setup[1..]
            .iter()
            .all(|l| l.starts_with("__esx_b=$__esx_b'")));
        let with_newline = plan("echo a\necho b", 2);
        assert_eq!(with_newline.setup, ["__esx_b='echo a\\necho b'"]);
        assert!(with_newline
            .setup
            .iter()
            .chain([&with_newline.run_line])
            .all(|l| l.bytes().all(|b| (b' '..=b'~').contains(&b))));
    }
}
