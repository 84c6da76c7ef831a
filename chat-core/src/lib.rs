//! # chat-core
//!
//! The chat protocol of this project as pure, sans-IO state machines: framing,
//! typed frames, presence and messaging for the [`server`] and the [`client`].
//! Nothing in this crate opens a socket, spawns a thread, reads a clock or
//! prints: it is fed bytes and the current time, and hands back bytes to send,
//! events, and its next deadline. The runtimes (`runtime-polling`,
//! `runtime-std`) only move bytes and time in and out.
//!
//! ## Wire format
//!
//! Each direction of a TCP connection is a sequence of frames:
//!
//! ```text
//! +---------------------+-----------+-----------------------+
//! | length: u32, BE     | op: u8    | payload               |
//! +---------------------+-----------+-----------------------+
//! ```
//!
//! `length = 1 + payload.len()`, between 1 and [`MAX_FRAME`] (16384). A header
//! outside that range is a fatal error as soon as its four bytes are in.
//!
//! ## The driving loop
//!
//! Both state machines ([`Server`] and [`Client`]) are driven the same way:
//! feed what happened (`handle_*`, each with the current time), then drain
//! every output until it is empty (`poll_transmit`/`outbound` for bytes,
//! `poll_event`, `poll_timeout`), then sleep until the next deadline or I/O.
//!
//! ```
//! use std::time::Instant;
//! use chat_core::{ClientFrame, ServerEvent, Name, Server, ServerConfig};
//!
//! let mut server = Server::new(ServerConfig::default());
//! let now = Instant::now();
//!
//! // 1. Input: a connection was accepted and its first read arrived.
//! let conn = server.handle_accept(now);
//! let hello = ClientFrame::Hello { name: Name::new("alice").unwrap() };
//! server.handle_input(now, conn, &hello.to_bytes());
//!
//! // 2. Output, until empty: bytes for each connection that has some...
//! let mut socket = Vec::new(); // stands in for a TcpStream
//! while let Some(ready) = server.poll_transmit() {
//!     while !server.outbound(ready).is_empty() {
//!         let bytes = server.outbound(ready);
//!         socket.extend_from_slice(bytes); // socket.write(bytes)?
//!         let written = bytes.len();
//!         server.handle_written(now, ready, written);
//!     }
//! }
//! // ...events (close sockets, resume reading, log)...
//! while let Some(event) = server.poll_event() {
//!     match event {
//!         ServerEvent::Close { .. } => { /* close the socket */ }
//!         ServerEvent::Resume { .. } => { /* read this socket again */ }
//!         ServerEvent::Joined { .. } | ServerEvent::Left { .. } => { /* log */ }
//!     }
//! }
//! // ...and when to call `handle_timeout` next (it may already be due).
//! let _wake_at = server.poll_timeout();
//! assert!(socket.starts_with(&[0, 0, 0, 8, 0x81])); // WELCOME
//! ```
//!
//! The [`server`] and [`client`] module docs give the full contract of each
//! loop (what to do with `wants_read`, partial writes, the quit linger).
//!
//! ## Modules
//!
//! - [`codec`]: the [`Deframer`] that cuts a byte stream into
//!   frames, split anywhere, with bounded memory.
//! - [`frame`]: typed frames ([`ClientFrame`], [`ServerFrame`]), their encoders
//!   and decoders, error and reason codes.
//! - [`Name`] and [`Text`]: the validated values every frame carries.
//! - [`server`]: the server state machine.
//! - [`client`]: the client state machine.
//!
//! ## Example: encode a frame, decode it from two pieces
//!
//! ```
//! use chat_core::{ClientFrame, Name, codec::Deframer};
//!
//! let hello = ClientFrame::Hello { name: Name::new("alice").unwrap() };
//! let bytes = hello.to_bytes();
//! assert_eq!(bytes, b"\x00\x00\x00\x08\x01\x01\x05alice");
//!
//! let (first, second) = bytes.split_at(3);
//! let mut deframer = Deframer::new();
//! let mut input = first;
//! assert!(deframer.next_frame(&mut input).unwrap().is_none()); // nothing complete yet
//! let mut input = second;
//! let frame = deframer.next_frame(&mut input).unwrap().expect("a whole frame");
//! assert_eq!(ClientFrame::decode(frame).unwrap(), hello);
//! ```

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]
#![warn(unreachable_pub)]

pub mod channel;
pub mod client;
pub mod codec;
pub mod frame;
pub mod irc;
mod name;
mod presence;
pub mod server;
#[cfg(any(test, feature = "fuzzing"))]
mod sim;
#[cfg(any(test, feature = "fuzzing"))]
mod sim_mixed;
mod text;

pub use client::{Client, ClientConfig, ClientEvent, CloseReason, ProtocolError, UsageError};
pub use codec::{Deframer, FrameError, MAX_FRAME};
pub use frame::{ClientFrame, DecodeError, EncodeError, ErrorCode, Malformed, Reason, ServerFrame};
pub use name::{MAX_NAME, Name, NameError};
pub use server::{ConfigError, ConnId, IrcConfig, Protocol, Server, ServerConfig, ServerEvent};
pub use text::{MAX_TEXT, Text, TextError, validate_text};

/// `slice[range]` for a range that an internal invariant keeps in bounds
/// (never one that input chooses). A broken invariant is loud where it can
/// be found (tests, debug builds, fuzzing: a panic naming the range); a
/// release build gets an empty slice rather than a crash of every connection.
#[track_caller]
pub(crate) fn in_bounds<T, R>(slice: &[T], range: R) -> &[T]
where
    R: std::slice::SliceIndex<[T], Output = [T]> + std::fmt::Debug + Clone,
{
    let within = slice.get(range.clone());
    debug_assert!(
        within.is_some(),
        "invariant broken: {range:?} out of bounds of a slice of {}",
        slice.len()
    );
    within.unwrap_or_default()
}

/// Invariant-checking drivers the fuzz targets are thin shims over (feature
/// `fuzzing`): each panics when the state machine it drives breaks a rule.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::client::fuzzing::drive as drive_client;
    pub use crate::sim::run_ops as drive_server;
    pub use crate::sim_mixed::run_mixed as drive_mixed;
}
