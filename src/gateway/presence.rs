//! Who is on a console: the one client writing to it, and the read-only
//! viewers following it. The web page lists it, and a writer in the
//! browser is told who watches as it changes.

use std::sync::Mutex;
use std::time::SystemTime;

use tokio::sync::watch;

/// Most read-only viewers of one console at once.
pub(super) const MAX_VIEWERS: usize = 200;

/// The people on one console.
pub(super) struct Presence {
    people: Mutex<People>,
    /// Bumped at every change; a writer's page waits on it.
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct People {
    writer: Option<(String, SystemTime)>,
    viewers: Vec<(u64, String)>,
    next_viewer: u64,
}

/// A viewer's place in the list; leaving it (dropping) takes it off.
pub(super) struct Viewing<'a> {
    presence: &'a Presence,
    id: u64,
}

impl Presence {
    pub(super) fn new() -> Presence {
        Presence {
            people: Mutex::new(People::default()),
            changed: watch::channel(0).0,
        }
    }

    fn change(&self, edit: impl FnOnce(&mut People)) {
        edit(&mut self.people.lock().unwrap_or_else(|p| p.into_inner()));
        self.changed.send_modify(|n| *n += 1);
    }

    /// `identity` now writes to the console (`None`: nobody does).
    pub(super) fn set_writer(&self, identity: Option<&str>) {
        self.change(|p| p.writer = identity.map(|who| (who.to_string(), SystemTime::now())));
    }

    /// `identity` starts watching; it stops when the result is dropped.
    /// None when [`MAX_VIEWERS`] already watch: each viewer holds a
    /// connection, and viewers must not take every connection there is.
    pub(super) fn watch(&self, identity: &str) -> Option<Viewing<'_>> {
        let mut id = None;
        self.change(|p| {
            if p.viewers.len() < MAX_VIEWERS {
                id = Some(p.next_viewer);
                p.viewers.push((p.next_viewer, identity.to_string()));
                p.next_viewer += 1;
            }
        });
        Some(Viewing {
            presence: self,
            id: id?,
        })
    }

    /// Who writes, since when.
    pub(super) fn writer(&self) -> Option<(String, SystemTime)> {
        self.people
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .writer
            .clone()
    }

    /// Who watches, in the order they came.
    pub(super) fn viewers(&self) -> Vec<String> {
        let people = self.people.lock().unwrap_or_else(|p| p.into_inner());
        people.viewers.iter().map(|(_, who)| who.clone()).collect()
    }

    /// Changes whenever someone comes or goes.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

impl Drop for Viewing<'_> {
    fn drop(&mut self) {
        let id = self.id;
        self.presence
            .change(|p| p.viewers.retain(|(viewer, _)| *viewer != id));
    }
}
