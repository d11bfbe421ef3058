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

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How much a script may grow the heap.
pub const SCRIPT_BUDGET: usize = 512 * 1024 * 1024;

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting live bytes.
pub struct CountingAllocator;

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is only arithmetic on the sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

/// Heap bytes live now (0 without the allocator).
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}
