//! Fair shares of the gateway's connection slots (issue 32).
//!
//! Every connection holds one of [`Limits::max_connections`] slots, from
//! accept until it closes. Connections still in their handshake (TLS and
//! WebSocket, i.e. not yet authenticated) are *pending*; each source (an
//! IPv4 address, or an IPv6 /64: one customer of a hosting provider gets a
//! whole /64) may have at most [`Limits::max_per_address`] pending. In the
//! spirit of OpenSSH's `MaxStartups`, a full table never refuses a new
//! connection while unauthenticated ones hold slots:
//!
//! - a source at its share makes room by dropping its own oldest pending
//!   connection;
//! - when every slot is taken, the oldest pending connection of the source
//!   holding the most pending ones is dropped;
//! - sessions (handshake done, client authenticated) are never dropped to
//!   make room: only when every slot is a session is a new connection refused.
//!
//! So no number of idle half-open sockets, from any number of addresses,
//! keeps a real client out: its connection is the newest, the last to be
//! dropped, and to drop it an attacker must open a whole table's worth of
//! connections during its few milliseconds of handshake.
//!
//! [`Limits::max_connections`]: super::Limits::max_connections
//! [`Limits::max_per_address`]: super::Limits::max_per_address

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use tokio::sync::oneshot;

/// Whose share a connection counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Source {
    /// One IPv4 address (IPv4-mapped IPv6 addresses count as IPv4).
    V4([u8; 4]),
    /// One IPv6 /64 (its first 64 bits).
    V6(u64),
}

impl Source {
    /// The source of a peer address.
    pub(super) fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.octets()),
                None => Source::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// A pending connection's place: dropping `evict` tells its task to close.
struct Pending {
    id: u64,
    evict: oneshot::Sender<()>,
}

/// What [`SlotTable::admit`] gives a new connection.
pub(super) struct Ticket {
    /// The connection's id in the table.
    pub(super) id: u64,
    /// Resolves when the connection is dropped to make room.
    pub(super) evicted: oneshot::Receiver<()>,
    /// Whether an older pending connection was dropped for this one.
    pub(super) made_room: bool,
}

/// The slots, counted.
pub(super) struct SlotTable {
    max_connections: usize,
    max_per_source: usize,
    /// Slots taken: pending connections and sessions.
    open: usize,
    next_id: u64,
    /// Pending connections by source, oldest first.
    pending: HashMap<Source, VecDeque<Pending>>,
}

impl SlotTable {
    pub(super) fn new(max_connections: usize, max_per_source: usize) -> SlotTable {
        SlotTable {
            max_connections,
            max_per_source,
            open: 0,
            next_id: 0,
            pending: HashMap::new(),
        }
    }

    /// Gives a new connection from `source` a slot, dropping an older
    /// pending connection if that is what makes room; `None` only when
    /// every slot is held by a session.
    pub(super) fn admit(&mut self, source: Source) -> Option<Ticket> {
        let mine = self.pending.get(&source).map_or(0, VecDeque::len);
        let mut made_room = false;
        if mine >= self.max_per_source {
            made_room = self.evict_oldest_of(source);
        } else if self.open >= self.max_connections {
            // Every slot a session: nothing may be closed for a newcomer.
            let largest = self.largest_source()?;
            made_room = self.evict_oldest_of(largest);
        }
        if self.open >= self.max_connections {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        let id = self.next_id;
        self.next_id += 1;
        self.open += 1;
        self.pending
            .entry(source)
            .or_default()
            .push_back(Pending { id, evict: tx });
        Some(Ticket {
            id,
            evicted: rx,
            made_room,
        })
    }

    /// The handshake of `id` is done: it is a session now, never dropped to
    /// make room. False when it was dropped meanwhile (it must close).
    pub(super) fn handshake_done(&mut self, source: Source, id: u64) -> bool {
        self.remove_pending(source, id)
    }

    /// A connection closes. `pending`: it was still in its handshake (if it
    /// is no longer in the table it was dropped, and its slot already given back).
    pub(super) fn close(&mut self, source: Source, id: u64, pending: bool) {
        if !pending || self.remove_pending(source, id) {
            self.open -= 1;
        }
    }

    /// Slots taken.
    #[cfg(test)]
    pub(super) fn open(&self) -> usize {
        self.open
    }

    /// Pending connections of `source`.
    #[cfg(test)]
    pub(super) fn pending_of(&self, source: Source) -> usize {
        self.pending.get(&source).map_or(0, VecDeque::len)
    }

    fn remove_pending(&mut self, source: Source, id: u64) -> bool {
        let Some(queue) = self.pending.get_mut(&source) else {
            return false;
        };
        let Some(at) = queue.iter().position(|p| p.id == id) else {
            return false;
        };
        queue.remove(at);
        if queue.is_empty() {
            self.pending.remove(&source);
        }
        true
    }

    /// The source with the most pending connections (ties: the one whose
    /// oldest is oldest).
    fn largest_source(&self) -> Option<Source> {
        self.pending
            .iter()
            .filter_map(|(s, q)| Some((*s, q.len(), q.front()?.id)))
            .max_by_key(|(_, len, oldest)| (*len, std::cmp::Reverse(*oldest)))
            .map(|(s, _, _)| s)
    }

    /// Drops the oldest pending connection of `source`; its slot is free at once.
    fn evict_oldest_of(&mut self, source: Source) -> bool {
        let Some(queue) = self.pending.get_mut(&source) else {
            return false;
        };
        let Some(oldest) = queue.pop_front() else {
            return false;
        };
        if queue.is_empty() {
            self.pending.remove(&source);
        }
        drop(oldest.evict);
        self.open -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> Source {
        Source::of(IpAddr::from([127, 0, 0, last]))
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::of(a), Source::of(b), "one /64, one share");
        assert_ne!(Source::of(a), Source::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(Source::of(mapped), Source::of("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn a_full_table_drops_the_oldest_pending_of_the_largest_source() {
        let mut t = SlotTable::new(8, 4);
        let mut tickets = Vec::new();
        for last in [2, 2, 2, 3, 3, 4, 4, 4] {
            tickets.push((last, t.admit(v4(last)).unwrap()));
        }
        assert_eq!(t.open(), 8);
        // 127.0.0.2 and .4 hold three each; .2's oldest is older.
        let new = t.admit(v4(9)).expect("a new connection gets in");
        assert!(new.made_room);
        assert_eq!(t.open(), 8);
        assert_eq!(t.pending_of(v4(2)), 2);
        let closed = |t: &mut Ticket| {
            matches!(
                t.evicted.try_recv(),
                Err(oneshot::error::TryRecvError::Closed)
            )
        };
        assert!(closed(&mut tickets[0].1), "the oldest was told");
        assert!(!closed(&mut tickets[1].1), "the others were not");
        assert!(!closed(&mut tickets[5].1));
        let first = tickets[0].1.id;
        assert!(
            !t.handshake_done(v4(2), first),
            "and may not become a session"
        );
        // Its close does not give the slot back twice.
        t.close(v4(2), first, true);
        assert_eq!(t.open(), 8);
    }

    #[test]
    fn a_source_at_its_share_drops_its_own_oldest() {
        let mut t = SlotTable::new(100, 3);
        let ids: Vec<u64> = (0..3).map(|_| t.admit(v4(2)).unwrap().id).collect();
        let other = t.admit(v4(3)).unwrap();
        let fourth = t.admit(v4(2)).unwrap();
        assert!(fourth.made_room);
        assert_eq!(t.pending_of(v4(2)), 3);
        assert!(!t.handshake_done(v4(2), ids[0]));
        assert!(t.handshake_done(v4(2), ids[1]));
        assert!(t.handshake_done(v4(3), other.id), "other sources untouched");
    }

    #[test]
    fn sessions_are_never_dropped_to_make_room() {
        let mut t = SlotTable::new(4, 4);
        let mut sessions = Vec::new();
        for _ in 0..3 {
            let ticket = t.admit(v4(2)).unwrap();
            assert!(t.handshake_done(v4(2), ticket.id));
            sessions.push(ticket);
        }
        let pending = t.admit(v4(3)).unwrap();
        // Full: three sessions and one pending connection.
        let newer = t.admit(v4(4)).expect("the pending one makes room");
        assert!(!t.handshake_done(v4(3), pending.id));
        assert!(t.handshake_done(v4(4), newer.id));
        // Now all four are sessions: a new connection is refused.
        assert!(t.admit(v4(5)).is_none());
        t.close(v4(2), sessions[0].id, false);
        assert_eq!(t.open(), 3);
        assert!(t.admit(v4(5)).is_some());
    }
}
