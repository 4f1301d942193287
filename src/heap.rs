//! The process's heap: the global allocator's setup and a count of its
//! live bytes. `/metrics` shows the count beside the query pool's
//! reservations (what DataFusion allocates without reserving is the
//! difference) and the kernel's view, so the footprint can be told apart
//! into live data and what the allocator keeps.
//!
//! The binary installs [`Counting`] over mimalloc as its global allocator
//! and calls [`install`]; where it does not (unit tests) [`live`] is
//! `None`.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// Bytes allocated and not yet freed, through [`Counting`].
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// The highest [`LIVE`] so far.
static PEAK: AtomicIsize = AtomicIsize::new(0);
/// Whether a [`Counting`] allocator is installed ([`install`]).
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Wraps an allocator and counts its live bytes: one relaxed atomic add
/// per allocation and per free. Its cost was not measured apart; every
/// TSBS, export and query-memory figure of 2026-12-07 in docs/ was
/// measured with it in place.
pub struct Counting<A>(pub A);

unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            grown(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            grown(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { self.0.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grown(new_size as isize - layout.size() as isize);
        }
        p
    }
}

fn grown(by: isize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    // A plain load first: the peak moves rarely, so most allocations
    // only read its cache line.
    if now > PEAK.load(Ordering::Relaxed) {
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

/// Marks the counting allocator as installed (so a library used without
/// it never acts on a count of 0) and sets mimalloc's options for a
/// server's footprint. The binary calls it from its ELF constructor list,
/// before the first allocation: mimalloc reads the arena option when it
/// makes its arena, which Rust's runtime start-up already does (set from
/// `main`, the option changed nothing measurable).
///
/// Why: with mimalloc's defaults a spilling aggregation of 1M groups
/// under `query.memory.limit=8m` grew RssAnon by 92-124 MiB while the
/// live heap grew by 20 MiB: the arena committed its memory eagerly, so
/// each of the ~20 threads a spilling query runs kept pages of its own.
/// Committing on demand and returning freed pages after 3 ms instead of
/// 10: see docs/clients.md, "Query memory", for the figures. At once (0)
/// saved no more memory and made the larger TSBS queries 25-35 % slower.
pub fn install() {
    INSTALLED.store(true, Ordering::Relaxed);
    // The crate names no constant for these: their numbers in mimalloc
    // 3's `mi_option_e` (the version libmimalloc-sys builds).
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    for (option, env, value) in [
        (ARENA_EAGER_COMMIT, c"MIMALLOC_ARENA_EAGER_COMMIT", 0),
        (PURGE_DELAY, c"MIMALLOC_PURGE_DELAY", 3),
    ] {
        // mimalloc's own environment variable still wins. libc's getenv,
        // not std's: std's allocates, and nothing may allocate yet.
        // SAFETY: a NUL-terminated name; no thread sets the environment
        // this early. The option store happens before any other thread.
        unsafe {
            if libc::getenv(env.as_ptr()).is_null() {
                libmimalloc_sys::mi_option_set(option, value);
            }
        }
    }
}

/// Live heap bytes, or `None` where [`Counting`] is not the allocator.
pub fn live() -> Option<u64> {
    INSTALLED
        .load(Ordering::Relaxed)
        .then(|| LIVE.load(Ordering::Relaxed).max(0) as u64)
}

/// The highest live heap bytes since the process started (the heap's
/// own high-water mark, beside the kernel's `VmHWM` for all memory).
pub fn peak() -> Option<u64> {
    live().map(|_| PEAK.load(Ordering::Relaxed).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_is_live() {
        let a = Counting(std::alloc::System);
        let before = LIVE.load(Ordering::Relaxed);
        let l = Layout::from_size_align(1000, 8).unwrap();
        unsafe {
            let p = a.alloc(l);
            assert_eq!(LIVE.load(Ordering::Relaxed) - before, 1000);
            let p = a.realloc(p, l, 3000);
            assert_eq!(LIVE.load(Ordering::Relaxed) - before, 3000);
            a.dealloc(p, Layout::from_size_align(3000, 8).unwrap());
        }
        assert_eq!(LIVE.load(Ordering::Relaxed), before);
    }
}
