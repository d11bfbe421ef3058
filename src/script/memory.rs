//! A memory budget for scripts, which Rhai's per-value limits cannot give.
//!
//! Rhai bounds each string, array and map, but not their sum: a map of
//! 10,000 four-MiB strings is 40 GiB, and an allocation that fails aborts
//! the process (exit 134, no logout, no transcript end). So the binary
//! counts live heap bytes with [`CountingAllocator`], and the sandbox
//! checks the count on every Rhai operation: a script that grows the heap
//! by more than [`SCRIPT_BUDGET`] ends with a clear error. One operation can
//! allocate at most one value's limit, so the overshoot is bounded.
//!
//! A program that links the library without installing the allocator gets
//! no budget (the count stays 0); the `ec2-serial-expect` binary installs it.
//!
//! The count runs only while a script engine lives ([`Counting`]): every other
//! allocation (a fleet's thousands of doctor sessions) skips the shared
//! counter, whose cache line the worker threads otherwise pass back and
//! forth on every allocation (about 7 % of a replayed fleet's CPU, perf).
//! The count is signed: memory allocated before counting began and freed
//! during it only lowers it, which makes the budget more lenient by at most
//! what was freed, never stricter.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

/// How much a script may grow the heap.
pub const SCRIPT_BUDGET: usize = 512 * 1024 * 1024;

static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Scripts running now; the allocator counts while this is above 0.
static SCRIPTS: AtomicUsize = AtomicUsize::new(0);

/// Counts heap bytes while it lives: held by each sandboxed engine.
pub struct Counting(());

impl Counting {
    /// Starts counting (if no other script has).
    pub fn start() -> Counting {
        SCRIPTS.fetch_add(1, Ordering::SeqCst);
        Counting(())
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        SCRIPTS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Adds `delta` to the count while a script runs.
#[inline]
fn count(delta: isize) {
    if SCRIPTS.load(Ordering::Relaxed) > 0 {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

/// The system allocator, counting live bytes.
pub struct CountingAllocator;

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is only arithmetic on the sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        count(-(layout.size() as isize));
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Heap bytes counted now: what was allocated and not freed while scripts
/// ran (0 without the allocator).
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}
