//! # runtime-std
//!
//! The chat server of [`chat_core`] on blocking `std::net` sockets, one reader
//! and one writer thread per client, shipped as `chat-server-std`.
//!
//! ## Design
//!
//! One [`Mutex`](std::sync::Mutex) guards the core ([`chat_core::Server`]) and
//! the per-connection bookkeeping. The rule that keeps one client from stalling
//! the others: **no thread blocks on a socket while holding the lock.**
//!
//! - A *reader* thread per connection sleeps until the core wants input, does
//!   one blocking `read` without the lock, then locks once to feed the bytes to
//!   the core and decide whether to read again.
//! - A *writer* thread per connection sleeps until the core has output for it,
//!   copies up to 64 KiB of it, writes that without the lock, and on its next
//!   lock reports what went out and takes the next chunk: one critical section
//!   per write. A client that stops reading blocks only its own writer; the
//!   core drops it as a slow consumer when its queue passes the limit, and
//!   shutting its socket down unblocks the writer.
//! - Connection threads sleep with `park` and are woken with `unpark` after the
//!   waker has released the lock. Waking a busy thread is then one atomic
//!   operation, not a system call, and a woken thread does not at once block on
//!   the lock its waker still holds; a broadcast to 1,000 idle writers is 1,000
//!   `unpark`s outside the lock.
//! - A *timer* thread sleeps on a condition variable until the core's next
//!   deadline (`poll_timeout`), never on a fixed tick.
//! - The accepting thread asks the core first: a connection the core refuses
//!   (server full, shutting down) gets its BYE written inline and no threads.
//!
//! A mutex around the core (rather than one owner thread fed by a channel)
//! keeps every decision in the order the lock is taken, with no extra copy of
//! the input, and each critical section is short: decode, queue, return.
//!
//! ```no_run
//! use runtime_std::StdServer;
//! use chat_core::ServerConfig;
//!
//! let server = StdServer::bind("127.0.0.1:0", ServerConfig::default())?;
//! let stop = server.stop_handle();
//! let thread = std::thread::spawn(move || server.run());
//! stop.stop();
//! thread.join().expect("server thread")?;
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod client;
mod server;

pub use server::{StdServer, StopHandle};
