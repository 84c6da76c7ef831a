//! # runtime-common
//!
//! The plumbing that both chat server runtimes share, so that neither
//! depends on the other and each stays a thin translation between its
//! sockets and [`chat_core::Server`]:
//!
//! - [`cli`]: the command line of the contract ([`cli::ServerArgs`]), the
//!   logger, SIGINT/SIGTERM handling, and the whole `main` of a server
//!   binary over the [`cli::ChatServer`] trait each runtime implements.
//! - What an extra listener serves ([`Door`]: TLS, IRC).
//! - The listening socket ([`listen`]), the options of an accepted
//!   connection ([`tune_accepted`], [`SEND_BUFFER`]) and the end of a
//!   graceful close or reset ([`close_connection`]).
//! - Logging the core's events with the peer's address ([`log_event`]), and
//!   a throttle for warnings that can repeat many times a second
//!   ([`LogThrottle`], [`warn_out_of_descriptors`]).
//! - Giving the memory of a freed buffer pool back to the system
//!   ([`handle_timeout_then_trim`], [`return_freed_memory`]).
//!
//! Nothing here decides anything about the protocol: that is the core's.

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod cli;
mod door;
mod logging;
mod memory;
mod net;
mod throttle;
pub mod tls;

pub use door::{Door, door_label};
pub use logging::log_event;
pub use memory::{handle_timeout_then_trim, return_freed_memory};
pub use net::{SEND_BUFFER, close_connection, coalesce, connect, listen, tune_accepted};
pub use throttle::{LogThrottle, is_out_of_descriptors, warn_out_of_descriptors};

/// A server core told the wall-clock time, for the dates IRC shows.
pub fn core_with_wall_clock(config: chat_core::ServerConfig) -> chat_core::Server {
    let mut core = chat_core::Server::new(config);
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    core.set_wall_clock(std::time::Instant::now(), unix);
    core
}
