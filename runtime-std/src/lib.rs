//! # runtime-std
//!
//! The chat server of [`chat_core`] on blocking `std::net` sockets, a reader
//! and a writer thread per client, shipped as `chat-server-std`.
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
//!   non-blocking sends (`MSG_DONTWAIT`; the socket itself stays blocking for
//!   its reader), holding the lock, like an event loop's write phase. It takes
//!   in one batch whatever accumulated while it was busy, so a message to
//!   1,000 clients costs 1,000 sends per batch rather than 1,000 thread
//!   wake-ups per message. Input goes first: while threads with input in hand
//!   wait for the lock, the flusher lets them in (for at most 2 ms), and it
//!   releases the lock every 64 sockets when input is waiting, so a round over
//!   thousands of sockets never holds up reads or accepts.
//! - A *writer* thread per connection takes over when that connection's send
//!   buffer is full: it copies up to 64 KiB of the queue, writes it with a
//!   blocking `write` without the lock, and on its next lock reports what went
//!   out. A client that stops reading blocks only its own writer; the core
//!   drops it as a slow consumer when its queue passes the limit, and shutting
//!   its socket down unblocks the writer. Once the queue is empty the
//!   connection goes back to the flusher. Exactly one of the two owns a
//!   connection's output at any time, so bytes never interleave.
//! - Threads sleep with `park` and are woken with `unpark` after the waker has
//!   released the lock: waking a busy thread is one atomic operation, not a
//!   system call, and a woken thread does not at once block on the lock its
//!   waker still holds.
//! - A *timer* thread sleeps on a condition variable until the core's next
//!   deadline (`poll_timeout`), never on a fixed tick.
//! - The accepting thread asks the core first: a connection the core refuses
//!   (server full, shutting down) gets its BYE written inline and no threads.
//!
//! The first design woke each connection's writer for its output. Fan-out
//! then cost one wake-up and context switch per recipient per message batch,
//! and futex calls were a third of the server's time; the flusher brought
//! 1,000-client fan-out from 1.5-1.8 M to 5.2-5.6 M deliveries/s and a
//! 5,000-client connect storm from over a minute to about 4 s
//! (`docs/BENCHMARKS.md`).
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
