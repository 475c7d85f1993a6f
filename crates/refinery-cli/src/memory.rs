//! How the daemon keeps its resident memory near what it uses. glibc's allocator gives each
//! thread that allocates its own arena (up to 8 per core) and keeps what is freed inside an
//! arena's heap: a pass over a big fleet allocates and frees tens of megabytes (observations,
//! plans, HTTP buffers) across the runtime's threads, and the process would stay at that peak.
//! Two arenas, and the free pages handed back to the kernel after each full pass, keep the RSS
//! of a 10,000-container fleet near its live heap (see the README's fleet benchmark).

/// At most this many malloc arenas (glibc's default is 8 per core).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Called once at the daemon's start, before its threads allocate.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters; it is called before any other
    // thread of the process allocates (at the daemon's start), as glibc asks.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// Hands the free pages of every arena back to the kernel (after a full pass).
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes the arenas' own locks; it frees nothing in use.
    unsafe {
        libc::malloc_trim(0);
    }
}
