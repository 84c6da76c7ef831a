//! # runtime-polling
//!
//! The chat protocol of [`chat_core`] on real sockets, driven by one
//! single-threaded event loop on the [`polling`] crate (epoll on Linux):
//!
//! - [`PollingServer`]: the reference server, shipped as the `chat-server`
//!   binary. Embed it: [`PollingServer::bind`], [`PollingServer::local_addr`],
//!   [`PollingServer::stop_handle`], [`PollingServer::run`].
//! - [`terminal`]: the `chat` terminal client's event loop.
//!
//! The command line, logging and socket plumbing it shares with
//! `runtime-std` live in `runtime-common`; the load generator `chat-bench`
//! has its own crate (`bench/`).
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

mod server;
pub mod terminal;

pub use server::{PollingServer, StopHandle};

impl runtime_common::cli::ChatServer for PollingServer {
    fn bind(addr: std::net::SocketAddr, config: chat_core::ServerConfig) -> std::io::Result<Self> {
        Self::bind(addr, config)
    }
    fn local_addr(&self) -> std::net::SocketAddr {
        self.local_addr()
    }
    fn stopper(&self) -> Box<dyn Fn() + Send + 'static> {
        let handle = self.stop_handle();
        Box::new(move || handle.stop())
    }
    fn run(self) -> std::io::Result<()> {
        self.run()
    }
    fn listen_door(
        self,
        addr: std::net::SocketAddr,
        door: runtime_common::Door,
    ) -> std::io::Result<Self> {
        self.listen_door(addr, door)
    }
    fn door_addr(
        &self,
        protocol: chat_core::server::Protocol,
        tls: bool,
    ) -> Option<std::net::SocketAddr> {
        self.door_addr(protocol, tls)
    }
}
