//! The IRC wire format, for the IRC front door (`../shared/IRC.md`): the
//! pieces that do not depend on the connection's state.
//!
//! - [`LineReader`] cuts a byte stream into lines (CRLF or a bare LF), split
//!   anywhere, in at most [`MAX_LINE`] bytes of memory; a longer line is
//!   reported once as [`Line::TooLong`] and skipped.
//! - [`Message::parse`] reads a line as tags, source, command and parameters,
//!   without copying; [`write_message`] writes one back, choosing the
//!   trailing form where it must.
//! - [`text`] maps text between IRC and the native protocol: formatting
//!   codes removed, `ACTION` as `/me`, long or multi-line text split at UTF-8
//!   boundaries into lines that fit.
//! - [`mode`] reads channel `MODE` arguments into [`crate::channel`]'s typed
//!   changes; [`registration`] runs `CAP`/`PASS`/`NICK`/`USER` and writes the
//!   welcome burst.
//!
//! The connection state machine that joins these to the server core lives
//! with the server (`server/irc.rs`), which owns names and channels.
//!
//! Invariants: nothing here panics or allocates beyond one line on any
//! input; a line is cut the same way whatever the read sizes were.

mod line;
mod message;
pub mod mode;
pub mod registration;
pub mod text;

pub use line::{Line, LineReader, MAX_LINE};
pub use message::{
    MAX_PARAMS, Message, ParseError, command_word, echo, write_message, write_text_message,
};
