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
//! ## Modules
//!
//! - [`codec`]: the [`Deframer`](codec::Deframer) that cuts a byte stream into
//!   frames, split anywhere, with bounded memory.
//! - [`frame`]: typed frames ([`ClientFrame`], [`ServerFrame`]), their encoders
//!   and decoders, error and reason codes.
//! - [`name`], [`text`]: the validated values [`Name`] and [`Text`].
//! - [`presence`]: the roster of registered users.
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

pub mod client;
pub mod codec;
pub mod frame;
pub mod name;
pub mod presence;
pub mod server;
#[cfg(any(test, feature = "fuzzing"))]
pub mod sim;
pub mod text;

pub use codec::{FrameError, MAX_FRAME};
pub use frame::{ClientFrame, DecodeError, ErrorCode, Malformed, Reason, ServerFrame};
pub use name::{MAX_NAME, Name, NameError};
pub use server::{ConnId, Event, Server, ServerConfig};
pub use text::{MAX_TEXT, Text, TextError};
