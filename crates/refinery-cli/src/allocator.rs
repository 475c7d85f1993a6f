//! The allocator, and how the daemon keeps its resident memory near what it uses.
//!
//! A pass over a big fleet allocates and frees tens of megabytes across the runtime's threads
//! (listings, inspections, plans, HTTP buffers). glibc's allocator kept most of that peak
//! resident, fragmented over its per-thread arenas, even after `malloc_trim`: 10,000 containers
//! cost about 120 MB. jemalloc groups allocations by size, and its background thread hands freed
//! pages back to the kernel within a second; after each full pass the daemon hands them back at
//! once. Measured by the fleet benchmark (README, "Fleet benchmark").

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at its first allocation: two arenas (the runtime has two worker
/// threads), a background thread that purges, freed pages returned after a second, and no
/// "muzzy" middle state (pages are either in use or the kernel's).
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: Conf =
    Conf(c"narenas:2,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// What jemalloc reads `malloc_conf` as: a C string's address (a plain `&[u8]` would be a
/// pointer and a length, whose layout Rust does not promise).
#[repr(transparent)]
struct Conf(*const std::ffi::c_char);

// SAFETY: the pointer is to a `'static` byte string, never written.
unsafe impl Sync for Conf {}

/// `MALLCTL_ARENAS_ALL` (4096): a mallctl name's arena index meaning every arena.
const PURGE_ALL_ARENAS: &std::ffi::CStr = c"arena.4096.purge";

/// Hands the free pages of every arena back to the kernel (after a full pass).
pub fn give_back() {
    // SAFETY: `arena.<i>.purge` takes no value and returns none; the name is NUL-terminated and
    // jemalloc takes its own locks.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            PURGE_ALL_ARENAS.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
}
