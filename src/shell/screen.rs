//! Reading what a console shows: login prompt, password prompt, a shell, or
//! one of the states that make logging in impossible.
//!
//! The login machine asks this module only when the console has settled
//! (no new program text for a moment), and only about the text received
//! since its last keystroke, with kernel lines already removed. Prompts count
//! only at the very end of that text: a MOTD that says "Password:" or
//! "login:" in the middle of a line, or anywhere but last, is not a prompt.
//! Refusals (emergency mode, nologin, expired password) count anywhere.

use std::sync::OnceLock;

use regex::{Regex, RegexSet};

/// What the console shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// A getty/login prompt: `host login: `.
    LoginPrompt,
    /// A password prompt (`Password: `, `[sudo] password for x: `).
    PasswordPrompt,
    /// `Login incorrect`: the last password was refused.
    LoginIncorrect,
    /// Logging in is impossible now; the sentence says why and what to do.
    Refused(String),
    /// Something that ends like a shell prompt (`$ `, `# `, `> `, `% `).
    ShellPrompt,
    /// zsh's first-run menu (`zsh-newuser-install`, shown to a user with
    /// no startup files), waiting for one key.
    ZshNewUserMenu,
    /// Text we do not recognise (a pager, an editor, a MOTD, boot messages).
    Unknown,
    /// No text at all.
    Nothing,
    /// Our logout line's proof that the shell ended its login session
    /// (`__ESX_GONE (login)`, see `command::EXIT_LINE`).
    SessionEnded,
}

/// Refusals: (pattern, explanation).
const REFUSALS: &[(&str, &str)] = &[
    (
        r"Give root password for maintenance|Press Enter for maintenance|You are in emergency mode|root account is locked",
        "the instance is in emergency mode (systemd's emergency shell asks for the root password); \
         fix the boot problem (often /etc/fstab) from a rescue instance or boot with a working configuration",
    ),
    (
        r"Login is currently unavailable|System is booting up|Unprivileged users are not permitted to log in",
        "the console refuses logins right now (pam_nologin: the system is still booting or /etc/nologin exists); \
         wait for boot to finish and try again",
    ),
    (
        r"This account is currently not available",
        "the account's login shell is /usr/sbin/nologin (\"This account is currently not \
         available\"), which refuses logins; log in as an account with a shell (`--login-user`) \
         or give this one a shell",
    ),
    (
        r"You are required to change your password|Your password has expired|Your account has expired",
        "the account's password or the account itself has expired, which a script cannot resolve; \
         change it interactively (`console`) or reset it",
    ),
];

fn refusals() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        RegexSet::new(REFUSALS.iter().map(|(p, _)| *p)).expect("refusal patterns are valid")
    })
}

fn regex(cell: &'static OnceLock<Regex>, source: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(source).expect("screen pattern is valid"))
}

fn login_prompt() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    regex(&RE, r"(?i)(?:^|\n)[^\n]{0,120}\blogin: ?$")
}

fn password_prompt() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    regex(
        &RE,
        r"(?i)(?:^|\n)(?:[^\n]{0,120}passwor[dt](?: for [^\n:]*)?|\[sudo\] [^\n]{0,120}): ?$",
    )
}

fn login_incorrect() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    regex(&RE, r"Login incorrect|Authentication failure")
}

fn session_ended() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    regex(&RE, r"(?:^|\n)__ESX_GONE \(login\)\s*$")
}

fn zsh_new_user_menu() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    regex(
        &RE,
        r"zsh-newuser-install(?s:.*)Type one of the keys in parentheses ---\s*$",
    )
}

fn shell_prompt() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // ksh93 pads its prompt with spaces and backspaces as it redraws it.
    regex(&RE, r"[$#%>][ \x08]*$")
}

/// Classifies `text`, everything received since our last keystroke.
pub fn classify(text: &str) -> Screen {
    if let Some(i) = refusals().matches(text).iter().next() {
        return Screen::Refused(REFUSALS[i].1.to_string());
    }
    // Only the last line matters for prompts; the whole text for failures.
    let tail = tail_lines(text);
    if login_prompt().is_match(tail) {
        // "Login incorrect" followed by a fresh prompt is still a failure.
        if login_incorrect().is_match(text) {
            return Screen::LoginIncorrect;
        }
        return Screen::LoginPrompt;
    }
    if login_incorrect().is_match(text) {
        return Screen::LoginIncorrect;
    }
    if password_prompt().is_match(tail) {
        return Screen::PasswordPrompt;
    }
    if zsh_new_user_menu().is_match(text) {
        return Screen::ZshNewUserMenu;
    }
    if session_ended().is_match(tail) {
        return Screen::SessionEnded;
    }
    if shell_prompt().is_match(tail) {
        return Screen::ShellPrompt;
    }
    if text.trim().is_empty() {
        Screen::Nothing
    } else {
        Screen::Unknown
    }
}

/// The last two lines of `text` (a prompt is on the last one).
fn tail_lines(text: &str) -> &str {
    let trimmed = text.len().saturating_sub(512);
    let start = crate::text::floor_char_boundary(text, trimmed);
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_count_only_at_the_very_end() {
        assert_eq!(
            classify("\nDebian GNU/Linux 12 lab ttyS0\n\nlab login: "),
            Screen::LoginPrompt
        );
        assert_eq!(classify("ip-172-31-41-106 login: "), Screen::LoginPrompt);
        assert_eq!(classify("Password: "), Screen::PasswordPrompt);
        assert_eq!(
            classify("[sudo] password for ec2-user: "),
            Screen::PasswordPrompt
        );
        // sudo and PAM translate their prompts (LANG=de_DE, fr_FR).
        assert_eq!(classify("Passwort: "), Screen::PasswordPrompt);
        assert_eq!(
            classify("[sudo] Mot de passe de ec2-user : "),
            Screen::PasswordPrompt
        );
        let motd =
            "Password: rotate yours!\nlogin: records are kept\nLast login: Mon\nec2-user@lab:~$ ";
        assert_eq!(classify(motd), Screen::ShellPrompt);
        assert_eq!(
            classify("[ec2-user@ip-172-31-8-156 ~]$ "),
            Screen::ShellPrompt
        );
        assert_eq!(classify("root@lab:~# "), Screen::ShellPrompt);
        assert_eq!(
            classify("\r~ [8]$      \x08\x08\x08\x08\x08"),
            Screen::ShellPrompt
        );
    }

    #[test]
    fn failures_and_refusals_are_recognised() {
        assert_eq!(
            classify("\nLogin incorrect\n\nlab login: "),
            Screen::LoginIncorrect
        );
        assert!(matches!(
            classify("Cannot open access to console, the root account is locked.\nPress Enter to continue.\n"),
            Screen::Refused(why) if why.contains("emergency mode")
        ));
        assert!(matches!(
            classify("System is booting up. Unprivileged users are not permitted to log in yet.\n\nlab login: "),
            Screen::Refused(why) if why.contains("still booting")
        ));
    }

    #[test]
    fn zshs_first_run_menu_is_recognised() {
        let menu = "This is the Z ShellState configuration function for new users,\n\
                    zsh-newuser-install.\n…\n(q)  Quit and do nothing.  The function will be run again next time.\n\n\
                    --- Type one of the keys in parentheses --- ";
        assert_eq!(classify(menu), Screen::ZshNewUserMenu);
        // Quoted in a MOTD, followed by a prompt: a prompt.
        assert_eq!(classify(&format!("{menu}\nvm% ")), Screen::ShellPrompt);
    }

    #[test]
    fn pagers_and_silence_are_not_prompts() {
        assert_eq!(classify("line 1\nline 2\n(END)"), Screen::Unknown);
        assert_eq!(classify("--More--(20%)"), Screen::Unknown);
        assert_eq!(classify("\n\n"), Screen::Nothing);
    }

    #[test]
    fn only_a_login_session_ending_proves_a_logout() {
        assert_eq!(classify("\n__ESX_GONE (login)\n"), Screen::SessionEnded);
        // A nested shell's parent, or the marker anywhere but last.
        assert_eq!(classify("\n__ESX_GONE (bash)\n"), Screen::Unknown);
        assert_eq!(
            classify("\n__ESX_GONE (login)\nuser@lab:~$ "),
            Screen::ShellPrompt
        );
    }
}
