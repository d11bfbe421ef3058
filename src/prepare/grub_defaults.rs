//! Rewriting GRUB's defaults file so that the menu is on the serial console
//! and waits long enough to be stopped: the settings AWS documents per AMI
//! (EC2 User Guide, "Troubleshoot your Linux instance using GRUB"), as one
//! function of the file's text, idempotent (its own output comes back
//! unchanged) and minimal (only the lines that must change do; missing keys
//! are appended under one comment).

/// What the rescue path needs from GRUB's defaults.
const MARK: &str = "# ec2-serial-expect prepare: GRUB on the serial console (docs/rescue.md)";
/// Keys that override `GRUB_TERMINAL` or hide the menu: commented out.
const OVERRIDES: &[&str] = &[
    "GRUB_TERMINAL_OUTPUT",
    "GRUB_TERMINAL_INPUT",
    "GRUB_HIDDEN_TIMEOUT",
    "GRUB_HIDDEN_TIMEOUT_QUIET",
];
/// The serial console of a Nitro instance (and of the lab).
const SERIAL_CONSOLE: &str = "console=tty0 console=ttyS0,115200n8";

/// `text` (a `/etc/default/grub`-style file) with the serial settings.
pub(super) fn with_serial_menu(text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for key in OVERRIDES {
        for i in assignments(&lines, key) {
            lines[i] = format!("# {}  # disabled by ec2-serial-expect prepare", lines[i]);
        }
    }
    let mut missing = Vec::new();
    let wanted = [
        (
            "GRUB_TIMEOUT",
            timeout(value(&lines, "GRUB_TIMEOUT").as_deref()),
        ),
        (
            "GRUB_TIMEOUT_STYLE",
            value(&lines, "GRUB_TIMEOUT_STYLE")
                .filter(|v| v != "menu")
                .map(|_| "menu".to_string()),
        ),
        (
            "GRUB_TERMINAL",
            keep_if(
                &lines,
                "GRUB_TERMINAL",
                |v| v.contains("serial"),
                "console serial",
            ),
        ),
        (
            "GRUB_SERIAL_COMMAND",
            keep_if(
                &lines,
                "GRUB_SERIAL_COMMAND",
                |v| v.starts_with("serial"),
                "serial --speed=115200",
            ),
        ),
        ("GRUB_CMDLINE_LINUX", kernel_console(&lines)),
    ];
    for (key, new) in wanted {
        let Some(new) = new else { continue };
        match assignments(&lines, key).last() {
            Some(&i) => lines[i] = format!("{key}=\"{new}\""),
            None => missing.push(format!("{key}=\"{new}\"")),
        }
    }
    if !missing.is_empty() {
        if !lines.iter().any(|l| l == MARK) {
            lines.push(MARK.to_string());
        }
        lines.extend(missing);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The indices of the lines assigning `key` (not commented out).
fn assignments(lines: &[String], key: &str) -> Vec<usize> {
    let prefix = format!("{key}=");
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(&prefix))
        .map(|(i, _)| i)
        .collect()
}

/// The value of the last assignment of `key`, unquoted.
fn value(lines: &[String], key: &str) -> Option<String> {
    let i = *assignments(lines, key).last()?;
    let (_, v) = lines[i].split_once('=')?;
    Some(v.trim().trim_matches(['"', '\'']).to_string())
}

/// `None` when the timeout already lets the menu be stopped (at least 1 s,
/// or -1: wait forever), else 1.
fn timeout(current: Option<&str>) -> Option<String> {
    match current.and_then(|v| v.parse::<i64>().ok()) {
        Some(t) if t >= 1 || t == -1 => None,
        _ => Some("1".into()),
    }
}

/// `None` when the key's value is fine, else `want`.
fn keep_if(lines: &[String], key: &str, fine: impl Fn(&str) -> bool, want: &str) -> Option<String> {
    match value(lines, key) {
        Some(v) if fine(&v) => None,
        _ => Some(want.to_string()),
    }
}

/// The kernel line with the serial console, when neither kernel variable
/// has one: the rescue shell and the boot must show on ttyS0.
fn kernel_console(lines: &[String]) -> Option<String> {
    let has = |key| value(lines, key).is_some_and(|v| v.contains("console=ttyS"));
    if has("GRUB_CMDLINE_LINUX") || has("GRUB_CMDLINE_LINUX_DEFAULT") {
        return None;
    }
    let current = value(lines, "GRUB_CMDLINE_LINUX").unwrap_or_default();
    Some(format!("{current} {SERIAL_CONSOLE}").trim().to_string())
}

/// The lines that differ, as `-old`/`+new` pairs: the edits are in place
/// or appended, so comparing line by line is the whole diff.
pub(super) fn diff(before: &str, after: &str) -> Vec<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    let mut out = Vec::new();
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                out.extend(x.map(|x| format!("-{x}")));
                out.extend(y.map(|y| format!("+{y}")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lab's (and a Debian cloud image's) defaults.
    const DEBIAN: &str = "GRUB_DEFAULT=0\nGRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"console=tty0 console=ttyS0,115200n8\"\n";
    /// Amazon Linux 2's, as shipped.
    const AL2: &str = "GRUB_CMDLINE_LINUX_DEFAULT=\"console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0 nvme_core.io_timeout=4294967295 rd.emergency=poweroff rd.shell=0\"\nGRUB_TIMEOUT=0\nGRUB_DISABLE_RECOVERY=\"true\"\nGRUB_TERMINAL=\"ec2-console\"\nGRUB_X86_USE_32BIT=\"true\"\n";
    /// Ubuntu's cloud-image settings file.
    const UBUNTU: &str = "GRUB_CMDLINE_LINUX_DEFAULT=\"console=tty1 console=ttyS0 nvme_core.io_timeout=4294967295\"\nGRUB_HIDDEN_TIMEOUT=0.1\nGRUB_TIMEOUT_STYLE=hidden\nGRUB_TIMEOUT=0\n";
    /// RHEL's.
    const RHEL: &str = "GRUB_TIMEOUT=1\nGRUB_DEFAULT=saved\nGRUB_TERMINAL_OUTPUT=\"console\"\nGRUB_CMDLINE_LINUX=\"console=ttyS0,115200n8 no_timer_check net.ifnames=0 crashkernel=auto\"\n";

    fn value_of(text: &str, key: &str) -> Option<String> {
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        value(&lines, key)
    }

    #[test]
    fn every_ami_ends_with_a_serial_menu_that_waits() {
        for (name, text) in [
            ("debian", DEBIAN),
            ("al2", AL2),
            ("ubuntu", UBUNTU),
            ("rhel", RHEL),
        ] {
            let out = with_serial_menu(text);
            assert_eq!(
                value_of(&out, "GRUB_TIMEOUT").as_deref(),
                Some("1"),
                "{name}:\n{out}"
            );
            assert!(
                value_of(&out, "GRUB_TERMINAL").unwrap().contains("serial"),
                "{name}:\n{out}"
            );
            assert!(
                value_of(&out, "GRUB_SERIAL_COMMAND")
                    .unwrap()
                    .starts_with("serial"),
                "{name}"
            );
            for key in OVERRIDES {
                assert_eq!(value_of(&out, key), None, "{name}: {key} still set:\n{out}");
            }
            let console = [
                value_of(&out, "GRUB_CMDLINE_LINUX"),
                value_of(&out, "GRUB_CMDLINE_LINUX_DEFAULT"),
            ];
            assert!(
                console
                    .iter()
                    .flatten()
                    .any(|v| v.contains("console=ttyS0")),
                "{name}"
            );
            assert_eq!(
                with_serial_menu(&out),
                out,
                "{name}: a second run changes nothing"
            );
        }
    }

    #[test]
    fn only_what_must_change_changes() {
        let out = with_serial_menu(DEBIAN);
        assert_eq!(
            diff(DEBIAN, &out),
            [
                "-GRUB_TIMEOUT=0",
                "+GRUB_TIMEOUT=\"1\"",
                format!("+{MARK}").as_str(),
                "+GRUB_TERMINAL=\"console serial\"",
                "+GRUB_SERIAL_COMMAND=\"serial --speed=115200\"",
            ]
        );
        let ubuntu = with_serial_menu(UBUNTU);
        assert!(ubuntu.contains("GRUB_TIMEOUT_STYLE=\"menu\""), "{ubuntu}");
        assert!(
            ubuntu.contains("# GRUB_HIDDEN_TIMEOUT=0.1  # disabled"),
            "{ubuntu}"
        );
        let rhel = with_serial_menu(RHEL);
        assert!(
            rhel.starts_with("GRUB_TIMEOUT=1\n"),
            "a 1 s timeout is kept: {rhel}"
        );
        assert!(
            rhel.contains("# GRUB_TERMINAL_OUTPUT=\"console\"  # disabled"),
            "{rhel}"
        );
    }

    #[test]
    fn a_kernel_line_without_the_serial_console_gets_it() {
        let out = with_serial_menu("GRUB_CMDLINE_LINUX=\"quiet\"\n");
        assert_eq!(
            value_of(&out, "GRUB_CMDLINE_LINUX").as_deref(),
            Some("quiet console=tty0 console=ttyS0,115200n8")
        );
    }
}
