//! A console's recent output, kept for whoever attaches next and for the
//! read-only viewers following it live.
//!
//! Every byte a console prints goes in once, at an absolute position (the
//! count of bytes ever written); the backlog keeps the last
//! [`Backlog::capacity`] of them. A reader keeps its own position and asks
//! for what came after it: readers share one copy of the output, so a
//! hundred viewers cost a hundred positions, not a hundred queues, and the
//! writer never waits for any of them. A reader that falls more than the
//! capacity behind is told how much it missed and carries on from the
//! oldest byte still kept.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::watch;

/// The scrollback a client sees first when it attaches (256 KiB).
pub const DEFAULT_SCROLLBACK: usize = 256 * 1024;

/// Recent output of one console.
pub(super) struct Backlog {
    kept: Mutex<Kept>,
    /// The position after the newest byte; readers wait on its changes.
    written: watch::Sender<u64>,
    capacity: usize,
}

struct Kept {
    bytes: VecDeque<u8>,
    /// The absolute position of `bytes[0]`.
    start: u64,
}

/// What a reader gets: the bytes after its position, and how many it
/// missed because it fell too far behind.
pub(super) struct Catchup {
    /// The bytes, oldest first.
    pub(super) bytes: Vec<u8>,
    /// Bytes dropped between the reader's position and `bytes`.
    pub(super) missed: u64,
    /// The reader's new position.
    pub(super) next: u64,
}

impl Backlog {
    /// An empty backlog keeping the last `capacity` bytes.
    pub(super) fn new(capacity: usize) -> Backlog {
        Backlog {
            kept: Mutex::new(Kept {
                bytes: VecDeque::new(),
                start: 0,
            }),
            written: watch::channel(0).0,
            capacity,
        }
    }

    /// Appends what the console printed, and wakes the readers.
    pub(super) fn push(&self, bytes: &[u8]) {
        if self.capacity == 0 || bytes.is_empty() {
            return;
        }
        let end = {
            let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            if kept.bytes.capacity() == 0 {
                // Exactly the capacity, once: growing by doubling would
                // hold up to twice it (a console that never prints holds
                // nothing).
                kept.bytes.reserve_exact(self.capacity);
            }
            let cut = bytes.len().saturating_sub(self.capacity);
            let bytes = &bytes[cut..];
            let overflow = (kept.bytes.len() + bytes.len()).saturating_sub(self.capacity);
            kept.bytes.drain(..overflow);
            kept.start += (overflow + cut) as u64;
            kept.bytes.extend(bytes);
            kept.start + kept.bytes.len() as u64
        };
        // Bytes cut from an oversized push count as written (and missed).
        self.written.send_replace(end);
    }

    /// The position of the oldest byte kept: a reader starting here sees
    /// the whole scrollback first.
    pub(super) fn oldest(&self) -> u64 {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).start
    }

    /// The position after the newest byte: a reader starting here sees
    /// only what comes next.
    pub(super) fn newest(&self) -> u64 {
        *self.written.borrow()
    }

    /// Everything after `from` that is still kept, at most `max` bytes.
    pub(super) fn read_from(&self, from: u64, max: usize) -> Catchup {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let begin = from.max(kept.start);
        let offset = (begin - kept.start) as usize;
        let take = kept.bytes.len().saturating_sub(offset).min(max);
        let (a, b) = kept.bytes.as_slices();
        let mut bytes = Vec::with_capacity(take);
        let in_a = a.len().saturating_sub(offset).min(take);
        bytes.extend_from_slice(&a[offset.min(a.len())..offset.min(a.len()) + in_a]);
        let b_from = offset.saturating_sub(a.len());
        bytes.extend_from_slice(&b[b_from..b_from + (take - in_a)]);
        Catchup {
            missed: begin - from.min(begin),
            next: begin + take as u64,
            bytes,
        }
    }

    /// A receiver that changes whenever something is pushed.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.written.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_gets_what_came_after_its_position_and_what_it_missed() {
        let backlog = Backlog::new(8);
        backlog.push(b"abcdef");
        let all = backlog.read_from(backlog.oldest(), 100);
        assert_eq!(
            (all.bytes.as_slice(), all.missed, all.next),
            (&b"abcdef"[..], 0, 6)
        );
        backlog.push(b"ghijk");
        // Only the last eight bytes are kept: "defghijk".
        assert_eq!(backlog.oldest(), 3);
        let late = backlog.read_from(1, 100);
        assert_eq!((late.bytes.as_slice(), late.missed), (&b"defghijk"[..], 2));
        let follow = backlog.read_from(6, 3);
        assert_eq!((follow.bytes.as_slice(), follow.next), (&b"ghi"[..], 9));
        let up_to_date = backlog.read_from(backlog.newest(), 100);
        assert!(up_to_date.bytes.is_empty());
        // One push bigger than the whole backlog keeps its tail.
        backlog.push(b"0123456789");
        let tail = backlog.read_from(0, 100);
        assert_eq!((tail.bytes.as_slice(), tail.next), (&b"23456789"[..], 21));
    }
}
