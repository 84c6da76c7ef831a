//! # runtime-polling
//!
//! The chat protocol of [`chat_core`] on real sockets, driven by one
//! single-threaded event loop on the [`polling`] crate (epoll on Linux):
//!
//! - [`PollingServer`]: the reference server, shipped as the `chat-server`
//!   binary. Embed it: [`PollingServer::bind`], [`PollingServer::local_addr`],
//!   [`PollingServer::stop_handle`], [`PollingServer::run`].
//! - [`cli`]: the command line, logger and signal handling that the server
//!   binaries share.
//!
//! The loop holds no protocol logic: it accepts, reads once per readiness
//! event, writes what the core queued, closes when the core says so, and sleeps
//! until the core's next deadline.
//!
//! ```no_run
//! use runtime_polling::PollingServer;
//! use chat_core::ServerConfig;
//!
//! let server = PollingServer::bind("127.0.0.1:0", ServerConfig::default())?;
//! println!("listening on {}", server.local_addr());
//! let stop = server.stop_handle();
//! let thread = std::thread::spawn(move || server.run());
//! stop.stop(); // graceful: BYE(SHUTDOWN) to everyone, then run() returns
//! thread.join().expect("server thread")?;
//! # Ok::<(), std::io::Error>(())
//! ```

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod cli;
mod memory;
mod server;
pub mod terminal;
mod throttle;

pub use memory::{handle_timeout, return_freed_memory};
pub use server::{
    PollingServer, SEND_BUFFER, StopHandle, finish_gracefully, listen, log_event, tune_accepted,
};
pub use throttle::{LogThrottle, is_out_of_descriptors, warn_out_of_descriptors};
