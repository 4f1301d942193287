//! The `sluice` binary: the allocator, and the command line of the
//! library ([`sluice::cli`]).

// mimalloc instead of the system allocator: query execution allocates and
// frees many small buffers per batch, and glibc's malloc and free took
// about a fifth of the server's CPU time on the TSBS queries (perf).
// Counted, so /metrics shows the live heap beside the pool (`heap`).
#[global_allocator]
static ALLOCATOR: sluice::heap::Counting<mimalloc::MiMalloc> =
    sluice::heap::Counting(mimalloc::MiMalloc);

// Run from the ELF constructor list, before Rust's runtime allocates:
// the allocator's options must be in place when it makes its arena.
#[used]
#[unsafe(link_section = ".init_array")]
static ALLOCATOR_SETUP: extern "C" fn() = {
    extern "C" fn setup() {
        sluice::heap::install();
    }
    setup
};

fn main() -> std::process::ExitCode {
    sluice::cli::run()
}
