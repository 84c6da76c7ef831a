//! Giving freed heap back to the system.
//!
//! A connect storm of 5,000 clients queues 12.5 M JOINED notices, and the
//! core's buffer pool holds tens of megabytes while it lasts. The core frees
//! its pool after a quiet second, but glibc keeps freed memory resident, so
//! without this step the storm would set the server's idle footprint (about
//! 8 KB per connection instead of under 1 KiB).

#![allow(unsafe_code)] // malloc_trim is a C function; see the SAFETY comment.

use std::time::Instant;

use chat_core::Server;

/// `core.handle_timeout(now)`, then [`return_freed_memory`] if that freed the
/// core's buffer pool: what both server runtimes do when their timer fires.
pub fn handle_timeout_then_trim(core: &mut Server, now: Instant) {
    let pooled = core.pooled_bytes();
    core.handle_timeout(now);
    if pooled > 0 && core.pooled_bytes() == 0 {
        return_freed_memory();
    }
}

/// Asks the allocator to return freed memory to the system. Call it when the
/// core's pool was just freed ([`chat_core::Server::pooled_bytes`] dropped to
/// zero): that happens at most once per quiet second, and the call walks the
/// heap once. A no-op where the allocator has no such call (not glibc).
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a plain integer, touches only the allocator's
    // own state under its locks, and is safe to call from any thread at any
    // time in a glibc process.
    unsafe {
        libc::malloc_trim(0);
    }
}
