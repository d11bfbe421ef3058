//! Driving GRUB 2's menu and editor on a serial console.
//!
//! GRUB draws full screens with cursor addressing: which entry is
//! highlighted, and which line of the entry the editor's cursor is on, are
//! not in the byte stream but on the screen. So this module reads the
//! session's virtual terminal: it finds the kernel (`linux`) lines of the
//! default entry by looking at the row under the cursor after each key,
//! appends the rescue arguments at the end of each (`Ctrl-E`, then the
//! words), and checks on the screen that every kernel line now ends with
//! them before booting with `Ctrl-X`. Counting arrow presses instead breaks
//! on entries whose `search` lines wrap, or that differ per distribution
//! (appending to the `initrd` line leaves a machine that cannot mount its
//! root).

use std::time::Duration;

use tokio::time::Instant;

use super::RescueArgs;
use crate::error::{Error, Result};
use crate::expect::{Pattern, Session};

/// The menu is up: its help text names the editor key.
const MENU: &str = r"to edit the commands";
/// Signs that the boot went past GRUB without showing its menu: GRUB
/// booting an entry, the kernel starting. (Not a login prompt: one may be
/// left on the console from before the restart.)
const NO_MENU: &str = r"Booting `|Loading Linux|Linux version \d";
/// The editor is up: its help text names the boot key.
const EDITOR: &str = r"(?i)ctrl-x or f10 to boot|emacs-like screen editing";
/// GRUB's editor keys (its Emacs-like bindings; arrows are VT100 sequences).
const END_OF_LINE: &str = "\x05";
const DOWN: &str = "\x1b[B";
const BOOT: &str = "\x18";
/// No screen change for this long after a key: GRUB has answered it.
const ANSWERED: Duration = Duration::from_millis(300);
/// The longest GRUB may take to answer one key on a loaded machine.
const KEY_WAIT: Duration = Duration::from_secs(5);
/// Entry scripts longer than this are not GRUB entries we understand.
const MAX_LINES: usize = 64;

/// Waits (up to `timeout`) for GRUB's menu after the power cycle and opens
/// the editor on the highlighted (default) entry; `e` also stops the
/// countdown.
pub(super) async fn open_editor(session: &mut Session, timeout: Duration) -> Result<()> {
    let patterns = [Pattern::regex(MENU), Pattern::regex(NO_MENU)];
    let seen = session
        .expect(&patterns, Some(timeout))
        .await
        .map_err(|e| {
            if e.is_timeout() {
                e.context(format!(
                    "GRUB's menu did not appear on the console within {} s of the restart: \
                     GRUB may not use the serial terminal, or the machine did not restart; \
                     `prepare` makes GRUB listen on the serial console (docs/rescue.md)",
                    timeout.as_secs()
                ))
            } else {
                e
            }
        })?;
    if seen.index == 1 {
        return Err(Error::problems(
            "the machine booted without showing GRUB's menu on the serial console (GRUB_TIMEOUT=0, \
             a hidden menu, or a terminal other than serial): run `prepare` on it while it can still \
             be reached, or use the login path (docs/rescue.md)",
        ));
    }
    session.send("e").await?;
    session
        .expect_screen(&[Pattern::regex(EDITOR)], Some(KEY_WAIT * 2))
        .await
        .map_err(|e| e.context("opening GRUB's editor with `e`"))?;
    settle(session).await
}

/// Appends `args` to every kernel line of the entry in the editor, and
/// checks on the screen that each now ends with them.
pub(super) async fn append_to_kernel_lines(session: &mut Session, args: &RescueArgs) -> Result<()> {
    let mut edited = 0;
    for _ in 0..MAX_LINES {
        let screen = session.screen();
        let (row, _) = session.cursor();
        let editor = Editor::read(&screen);
        if editor
            .kernel_line_at(usize::from(row))
            .is_some_and(|l| !l.ends_with(args.as_str()))
        {
            session.send(END_OF_LINE).await?;
            session.send(&format!(" {}", args.as_str())).await?;
            settle(session).await?;
            edited += 1;
        }
        let before = (session.screen(), session.cursor());
        session.send(DOWN).await?;
        settle(session).await?;
        if (session.screen(), session.cursor()) == before {
            break; // the last line: GRUB does not move
        }
    }
    let screen = session.screen();
    let editor = Editor::read(&screen);
    let kernel_lines = editor.kernel_lines();
    let unedited: Vec<&String> = kernel_lines
        .iter()
        .filter(|l| !l.ends_with(args.as_str()))
        .collect();
    if edited == 0 || kernel_lines.is_empty() || !unedited.is_empty() {
        return Err(Error::problems(format!(
            "GRUB's editor does not show every kernel (`linux`) line ending with `{}` \
             (edited {edited}, unedited: {unedited:?}); nothing was booted. The screen:\n{screen}",
            args.as_str()
        )));
    }
    Ok(())
}

/// Boots the edited entry (`Ctrl-X`).
pub(super) async fn boot(session: &mut Session) -> Result<()> {
    session.mark("rescue: booting the edited entry (Ctrl-X)");
    session.send(BOOT).await
}

/// Reads until the console has been quiet for [`ANSWERED`] (at most
/// [`KEY_WAIT`]): GRUB has drawn its answer to the last key.
pub(super) async fn settle(session: &mut Session) -> Result<()> {
    let deadline = Instant::now() + KEY_WAIT;
    while Instant::now() < deadline {
        if session.read_text(ANSWERED).await?.is_none() {
            break;
        }
    }
    Ok(())
}

/// Takes what the console has sent so far (before the restart), so that
/// only what follows counts.
pub(super) async fn drain(session: &mut Session) -> Result<()> {
    settle(session).await
}

/// GRUB's editor as the screen shows it: the entry's lines inside the box,
/// wrapped lines joined.
struct Editor {
    /// (first screen row, the whole line).
    lines: Vec<(usize, String)>,
}

impl Editor {
    /// Reads the editor from the screen's rows (joined with `\n`).
    fn read(screen: &str) -> Editor {
        let rows: Vec<&str> = screen.split('\n').collect();
        let Some((top, left)) = box_corner(&rows) else {
            return Editor { lines: Vec::new() };
        };
        let mut lines: Vec<(usize, String)> = Vec::new();
        let mut continued = false;
        for (i, row) in rows.iter().enumerate().skip(top + 1) {
            if is_box_edge(row) {
                break;
            }
            let text = inside(row, left);
            let (text, wraps) = match text.strip_suffix('\\') {
                Some(t) => (t, true),
                None => (text, false),
            };
            match lines.last_mut() {
                Some((_, line)) if continued => line.push_str(text),
                _ => lines.push((i, text.to_string())),
            }
            continued = wraps;
        }
        Editor { lines }
    }

    /// The kernel line that screen row `row` is part of, if it is one.
    fn kernel_line_at(&self, row: usize) -> Option<&str> {
        self.lines
            .iter()
            .rev()
            .find(|(first, _)| *first <= row)
            .map(|(_, l)| l.trim())
            .filter(|l| is_kernel_line(l))
    }

    /// Every kernel line shown, trimmed.
    fn kernel_lines(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|(_, l)| l.trim())
            .filter(|l| is_kernel_line(l))
            .map(str::to_string)
            .collect()
    }
}

/// `linux`, `linux16` or `linuxefi` followed by the kernel's path.
fn is_kernel_line(line: &str) -> bool {
    let word = line.split_whitespace().next().unwrap_or("");
    matches!(word, "linux" | "linux16" | "linuxefi")
}

/// The row and column of the box's top-left corner: the first row that is
/// a horizontal edge.
fn box_corner(rows: &[&str]) -> Option<(usize, usize)> {
    rows.iter().enumerate().find_map(|(i, row)| {
        is_box_edge(row).then(|| (i, row.chars().take_while(|c| *c == ' ').count()))
    })
}

/// A horizontal edge of GRUB's box: mostly `-` (ASCII), `─` (Unicode) or
/// `q` (VT100 line drawing shown as plain characters).
fn is_box_edge(row: &str) -> bool {
    let t = row.trim();
    let edge = t
        .chars()
        .filter(|c| matches!(c, '-' | '─' | 'q' | '='))
        .count();
    t.chars().count() >= 20 && edge * 10 >= t.chars().count() * 9
}

/// The text of `row` inside the box whose left edge is column `left`.
fn inside(row: &str, left: usize) -> &str {
    let start = row
        .char_indices()
        .nth(left + 1)
        .map_or(row.len(), |(i, _)| i);
    let text = &row[start..];
    let text = text.trim_end();
    // The right edge, when drawn on this row.
    let text = text
        .strip_suffix(['|', '│', 'x'])
        .filter(|_| text.chars().count() > 70)
        .unwrap_or(text);
    text.trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(rows: &[&str]) -> String {
        rows.join("\n")
    }

    const DEBIAN: &[&str] = &[
        "                             GNU GRUB  version 2.06",
        "",
        " +----------------------------------------------------------------------------+",
        " |setparams 'Debian GNU/Linux'                                                |",
        " |                                                                            |",
        " |        load_video                                                          |",
        " |        insmod gzio                                                         |",
        " |        search --no-floppy --fs-uuid --set=root --hint-bios=hd0,msdos1 --hi\\|",
        " |nt-efi=hd0,msdos1 0a1b2c3d-4e5f-6789-abcd-ef0123456789                      |",
        " |        echo        'Loading Linux 6.1.0-cloud-amd64 ...'                   |",
        " |        linux        /vmlinuz root=/dev/vda ro console=ttyS0 quiet          |",
        " |        echo        'Loading initial ramdisk ...'                           |",
        " |        initrd        /initrd.img                                           |",
        " |                                                                            |",
        " +----------------------------------------------------------------------------+",
        "",
        "      Minimum Emacs-like screen editing is supported. TAB lists",
    ];

    #[test]
    fn the_kernel_line_is_found_under_the_cursor_and_wrapped_lines_join() {
        let editor = Editor::read(&screen(DEBIAN));
        assert_eq!(editor.kernel_line_at(3), None, "setparams");
        assert_eq!(
            editor.kernel_line_at(8),
            None,
            "the search line's second row"
        );
        assert_eq!(
            editor.kernel_line_at(10),
            Some("linux        /vmlinuz root=/dev/vda ro console=ttyS0 quiet")
        );
        assert_eq!(editor.kernel_line_at(12), None, "initrd");
        assert!(editor.lines.iter().any(|(row, l)| *row == 7
            && l.ends_with("--hint-efi=hd0,msdos1 0a1b2c3d-4e5f-6789-abcd-ef0123456789")));
        assert_eq!(editor.kernel_lines().len(), 1);
    }

    #[test]
    fn an_edited_line_that_wraps_still_ends_with_the_arguments() {
        let mut rows = DEBIAN.to_vec();
        rows[10] =
            " |        linux        /vmlinuz root=/dev/vda ro console=ttyS0 quiet init=/bin\\|";
        rows.insert(
            11,
            " |/sh                                                                         |",
        );
        let editor = Editor::read(&screen(&rows));
        let lines = editor.kernel_lines();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].ends_with("quiet init=/bin/sh"), "{lines:?}");
        assert!(
            editor.kernel_line_at(11).is_some(),
            "the wrapped row belongs to it"
        );
    }

    #[test]
    fn kernel_lines_are_linux_linux16_and_linuxefi_only() {
        for yes in [
            "linux /vmlinuz",
            "linux16 /boot/vmlinuz ro",
            "linuxefi /vmlinuz",
        ] {
            assert!(is_kernel_line(yes), "{yes}");
        }
        for no in [
            "initrd /initrd.img",
            "echo 'Loading Linux ...'",
            "linuxx /a",
            "",
        ] {
            assert!(!is_kernel_line(no), "{no}");
        }
    }

    /// The real GRUB 2.06 editor, from the lab's recorded rescue: the
    /// screen as it stood when the recording typed Ctrl-E (on the kernel
    /// line) and just before Ctrl-X (edited).
    #[test]
    fn the_recorded_grub_editor_reads_as_the_rescue_saw_it() {
        use crate::expect::VirtualTerminal;
        use crate::transcript::cast::{Cast, EventCode};
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rescue/grub-fix.cast");
        let cast = Cast::read(&path).unwrap();
        let mut terminal = VirtualTerminal::new((cast.header.width, cast.header.height));
        let mut at_ctrl_e = None;
        for e in &cast.events {
            match e.code {
                EventCode::Output => terminal.feed(e.data.as_bytes()),
                EventCode::Input if e.data == END_OF_LINE && at_ctrl_e.is_none() => {
                    at_ctrl_e = Some((terminal.text(), terminal.cursor()));
                }
                EventCode::Input if e.data == BOOT => break,
                _ => {}
            }
        }
        let (screen, (row, _)) = at_ctrl_e.expect("the recording typed Ctrl-E");
        let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
        let line = Editor::read(&screen)
            .kernel_line_at(usize::from(row))
            .map(words);
        assert_eq!(
            line.as_deref(),
            Some("linux /vmlinuz root=/dev/vda ro console=ttyS0 quiet"),
            "{screen}"
        );
        let edited: Vec<String> = Editor::read(&terminal.text())
            .kernel_lines()
            .iter()
            .map(|l| words(l))
            .collect();
        assert_eq!(
            edited,
            ["linux /vmlinuz root=/dev/vda ro console=ttyS0 quiet init=/bin/sh"],
            "{}",
            terminal.text()
        );
    }

    #[test]
    fn a_screen_without_the_box_has_no_lines() {
        assert!(Editor::read("login: ").lines.is_empty());
    }
}
