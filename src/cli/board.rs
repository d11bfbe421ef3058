//! The live table of a fleet run, on a terminal: one row per running target
//! (its phase and how long it has run), the finished ones collapsed into
//! counts, redrawn in place on stderr.
//!
//! Only when stderr is a terminal (and not `-q`): in a pipe or a file the
//! per-target lines on stdout are the progress, and no cursor movement is
//! ever written. Whatever else goes to the terminal while the table shows
//! (a finished target's line, a repair being announced) goes through
//! [`Board::print`], which takes the table away, prints, and draws it again,
//! so lines never land inside it.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fleet::Outcome;

/// How often the elapsed times are redrawn.
const TICK: Duration = Duration::from_millis(500);

/// What a running target is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Opening the console (for EC2: the SSH connection).
    Connecting,
    /// EC2: asking about access, the instance's state and type.
    Preflight,
    /// EC2: pushing the ephemeral key, at the account's pace.
    KeyPush,
    /// EC2: another session holds the serial port; waiting for it to end.
    SessionBusy,
    /// Waiting for the login prompt, logging in.
    LoggingIn,
    /// Gathering the facts, checking.
    Examining,
    /// Running the repairs and verifying them (one console round trip,
    /// so one phase).
    Repairing,
    /// Logging out, closing the transcript.
    LoggingOut,
    /// `--via grub`: a stage of reaching the rescue shell, or leaving it.
    Rescue(crate::rescue::RescueStep),
}

/// A rescue stage in a word or two, for the table.
fn rescue_word(step: crate::rescue::RescueStep) -> &'static str {
    use crate::rescue::RescueStep as Step;
    match step {
        Step::PowerCycling => "power cycle",
        Step::WaitingForReboot => "waiting for your reboot",
        Step::WaitingForGrub => "waiting for GRUB",
        Step::EditingGrub => "editing GRUB",
        Step::BootingRescue => "booting rescue",
        Step::PreparingRoot => "mounting read-write",
        Step::Rebooting => "rebooting",
    }
}

impl From<crate::doctor::job::Stage> for Phase {
    fn from(stage: crate::doctor::job::Stage) -> Phase {
        use crate::doctor::job::Stage;
        match stage {
            Stage::LoggingIn => Phase::LoggingIn,
            Stage::Examining => Phase::Examining,
            Stage::Repairing => Phase::Repairing,
            Stage::LoggingOut => Phase::LoggingOut,
            Stage::Rescue(step) => Phase::Rescue(step),
        }
    }
}

impl From<crate::ec2::Step> for Phase {
    fn from(step: crate::ec2::Step) -> Phase {
        use crate::ec2::Step;
        match step {
            Step::Preflight => Phase::Preflight,
            Step::PushingKey => Phase::KeyPush,
            Step::WaitingForSession => Phase::SessionBusy,
            Step::OpeningSsh => Phase::Connecting,
        }
    }
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Preflight => "preflight",
            Phase::KeyPush => "key push",
            Phase::SessionBusy => "waiting for the other session",
            Phase::LoggingIn => "logging in",
            Phase::Examining => "examining",
            Phase::Repairing => "repair + verify",
            Phase::LoggingOut => "logging out",
            Phase::Rescue(step) => rescue_word(step),
        }
    }
}

#[derive(Default)]
struct Table {
    running: Vec<(String, Phase, Instant)>,
    finished: BTreeMap<Outcome, usize>,
    total: usize,
    /// Lines of the table now on the screen.
    drawn: usize,
}

/// The table, shared by the run and its redraw timer; `None` inside when
/// there is no terminal to draw on.
#[derive(Clone)]
pub(super) struct Board {
    table: Option<Arc<Mutex<Table>>>,
}

impl Board {
    /// A board for `total` targets: live when stderr is a terminal and not `quiet`.
    pub(super) fn new(total: usize, live: bool) -> Board {
        Board {
            table: live.then(|| {
                Arc::new(Mutex::new(Table {
                    total,
                    ..Table::default()
                }))
            }),
        }
    }

    /// Redraws every [`TICK`] until the returned guard is dropped.
    pub(super) fn keep_drawing(&self) -> Option<tokio::task::JoinHandle<()>> {
        let table = self.table.clone()?;
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(TICK).await;
                redraw(&mut lock(&table));
            }
        }))
    }

    /// `target` is now in `phase`.
    pub(super) fn phase(&self, target: &str, phase: Phase) {
        let Some(table) = &self.table else { return };
        let mut t = lock(table);
        match t.running.iter_mut().find(|(name, ..)| name == target) {
            Some(row) => row.1 = phase,
            None => t.running.push((target.to_string(), phase, Instant::now())),
        }
        redraw(&mut t);
    }

    /// `target` ended as `outcome`.
    pub(super) fn finished(&self, target: &str, outcome: Outcome) {
        let Some(table) = &self.table else { return };
        let mut t = lock(table);
        t.running.retain(|(name, ..)| name != target);
        *t.finished.entry(outcome).or_insert(0) += 1;
        redraw(&mut t);
    }

    /// Runs `print` (which writes lines to the terminal) with the table
    /// taken away, then draws it again.
    pub(super) fn print<T>(&self, print: impl FnOnce() -> T) -> T {
        let Some(table) = &self.table else {
            return print();
        };
        let mut t = lock(table);
        erase(&mut t);
        let result = print();
        draw(&mut t);
        result
    }

    /// Takes the table away for good (the summary follows).
    pub(super) fn close(&self) {
        if let Some(table) = &self.table {
            let mut t = lock(table);
            erase(&mut t);
            t.running.clear();
        }
    }
}

fn lock(table: &Mutex<Table>) -> std::sync::MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(|p| p.into_inner())
}

fn redraw(t: &mut Table) {
    erase(t);
    draw(t);
}

/// Moves up over the table and clears to the end of the screen.
fn erase(t: &mut Table) {
    if t.drawn > 0 {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[{}A\x1b[J", t.drawn);
        let _ = err.flush();
        t.drawn = 0;
    }
}

fn draw(t: &mut Table) {
    let lines = render(t);
    let mut err = std::io::stderr().lock();
    for line in &lines {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
    t.drawn = lines.len();
}

fn render(t: &Table) -> Vec<String> {
    let done: usize = t.finished.values().sum();
    let mut head = format!("{done}/{} done", t.total);
    for (outcome, count) in &t.finished {
        head.push_str(&format!(", {count} {}", outcome.as_str()));
    }
    let mut lines = vec![head];
    for (name, phase, since) in &t.running {
        lines.push(format!(
            "  {:<12} {:>5}s  {name}",
            phase.as_str(),
            since.elapsed().as_secs()
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_running_rows_and_finished_counts() {
        let mut t = Table {
            total: 3,
            ..Table::default()
        };
        t.running
            .push(("i-0abc".into(), Phase::LoggingIn, Instant::now()));
        t.finished.insert(Outcome::Healthy, 2);
        assert_eq!(
            render(&t),
            ["2/3 done, 2 healthy", "  logging in       0s  i-0abc"]
        );
    }

    #[test]
    fn an_off_board_prints_and_keeps_no_table() {
        let board = Board::new(2, false);
        board.phase("x", Phase::Connecting);
        assert_eq!(board.print(|| 7), 7);
        assert!(board.keep_drawing().is_none());
    }
}
