//! # runtime-std
//!
//! The chat server of [`chat_core`] on blocking `std::net` sockets, a thread
//! per client, shipped as `chat-server-std`; and a blocking client API
//! ([`client::BlockingClient`]).
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
//! - One *flusher* thread writes every connection's queued output with
//!   non-blocking sends (`MSG_DONTWAIT`; the socket stays blocking for its
//!   reader) while holding the lock, like an event loop's write phase, taking
//!   in one batch whatever accumulated while it was busy. Input goes first:
//!   threads waiting for the lock with input in hand are let in (for at most
//!   2 ms), and the lock is released every 64 sockets while input waits.
//! - A *writer* thread is started for a connection when its send buffer is
//!   full: it writes up to 64 KiB at a time with a blocking `write` without
//!   the lock, reports what went out, and ends once the queue is empty,
//!   handing the connection back to the flusher. Exactly one of the two owns
//!   a connection's output at any time, so bytes never interleave. A client
//!   that stops reading blocks only its own writer; the core drops it when
//!   its queue passes the limit, and shutting its socket down unblocks the
//!   writer.
//! - Threads sleep with `park` and are woken with `unpark` after the waker has
//!   released the lock.
//! - A *timer* thread sleeps on a condition variable until the core's next
//!   deadline (`poll_timeout`), never on a fixed tick.
//! - The accepting thread asks the core first: a connection the core refuses
//!   (server full, shutting down) gets its BYE and no thread; one that cannot
//!   get a thread is refused the same way (`BYE(SERVER_FULL)`).
//!
//! A mutex around the core (rather than one owner thread fed by a channel)
//! keeps every decision in the order the lock is taken, with no extra copy of
//! the input, and each critical section is short: decode, queue, return.
//! Measured figures are in `docs/BENCHMARKS.md`.
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
