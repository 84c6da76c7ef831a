//! Typed frames: what a client sends ([`ClientFrame`]) and what a server sends
//! ([`ServerFrame`]), with their encoders and decoders.
//!
//! Invariants:
//!
//! - Decoding is total: any op and payload yields a frame or a typed
//!   [`DecodeError`]; nothing panics and nothing is allocated beyond the frame's
//!   own fields.
//! - Decoding is split in two steps so that the server can apply the contract's
//!   order of checks: [`RawClientFrame::parse`] decides whether a frame is
//!   structurally sound (a [`Malformed`] frame is fatal), then
//!   [`RawClientFrame::validate`] checks names and texts (a bad one earns an
//!   `ERROR` reply and the connection stays).
//! - Encoding appends to a caller's buffer; every frame a typed value can hold
//!   fits in [`MAX_FRAME`], except a server frame whose detail string or name
//!   list is too long, which [`ServerFrame::encode`] refuses.

use crate::codec::{HEADER_LEN, MAX_FRAME, RawFrame, put_header};
use crate::name::{MAX_NAME, Name, NameError};
use crate::text::{Text, TextError, validate_text};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u8 = 1;

/// Op bytes, as in the contract's tables.
pub mod op {
    /// Client HELLO.
    pub const HELLO: u8 = 0x01;
    /// Client SAY.
    pub const SAY: u8 = 0x02;
    /// Client WHISPER.
    pub const WHISPER: u8 = 0x03;
    /// Client WHO.
    pub const WHO: u8 = 0x04;
    /// PING, either direction.
    pub const PING: u8 = 0x05;
    /// PONG, either direction.
    pub const PONG: u8 = 0x06;
    /// Client BYE.
    pub const BYE: u8 = 0x07;
    /// Server WELCOME.
    pub const WELCOME: u8 = 0x81;
    /// Server ERROR.
    pub const ERROR: u8 = 0x82;
    /// Server MESSAGE.
    pub const MESSAGE: u8 = 0x83;
    /// Server PRIVATE.
    pub const PRIVATE: u8 = 0x84;
    /// Server JOINED.
    pub const JOINED: u8 = 0x85;
    /// Server LEFT.
    pub const LEFT: u8 = 0x86;
    /// Server USERS.
    pub const USERS: u8 = 0x87;
    /// Server BYE.
    pub const SERVER_BYE: u8 = 0x88;
}

/// The most names that always fit one USERS frame, whatever their lengths.
pub const MAX_USERS_PER_FRAME: usize = (MAX_FRAME - USERS_OVERHEAD) / (1 + MAX_NAME);

/// Op, `last` and `count` bytes of a USERS frame.
const USERS_OVERHEAD: usize = 1 + 1 + 2;

/// Defines a one-byte wire enum from one list of variants, codes and
/// descriptions, so the enum, `from_u8` and `describe` cannot drift apart.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $($(#[$variant_meta:meta])* $variant:ident = $code:literal => $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$variant_meta])* $variant = $code,)+
        }

        impl $name {
            #[doc = concat!("The ", $what, " for a wire byte, if it is one.")]
            pub fn from_u8(code: u8) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// A short lower-case description, as the terminal client prints
            /// it (e.g. `name taken`, `slow consumer`).
            pub fn describe(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }
    };
}

wire_enum! {
    /// Codes carried by a server `ERROR` frame. The connection stays open after one.
    pub enum ErrorCode ("code") {
        /// HELLO with a name already registered (any case).
        NameTaken = 1 => "name taken",
        /// HELLO with a name that is not valid.
        NameInvalid = 2 => "name invalid",
        /// WHISPER to a name no registered user has.
        NoSuchUser = 3 => "no such user",
        /// SAY, WHISPER or WHO before a successful HELLO.
        NotRegistered = 4 => "not registered",
        /// HELLO after a successful HELLO.
        AlreadyRegistered = 5 => "already registered",
        /// SAY or WHISPER whose text is not valid.
        BadText = 6 => "bad text",
    }
}

wire_enum! {
    /// Why a connection ended: carried by `LEFT` and by the server's `BYE`.
    pub enum Reason ("reason") {
        /// The client sent BYE.
        Quit = 0 => "quit",
        /// Handshake or idle timeout.
        Timeout = 1 => "timeout",
        /// The stream ended or broke without a BYE.
        Disconnected = 2 => "disconnected",
        /// Malformed frame, frame too large, unsupported version.
        ProtocolError = 3 => "protocol error",
        /// The client did not read and its queued output passed the limit.
        SlowConsumer = 4 => "slow consumer",
        /// The server is at its connection limit.
        ServerFull = 5 => "server full",
        /// The server is shutting down.
        Shutdown = 6 => "shutdown",
    }
}

/// A structural defect that makes a frame malformed. Fatal to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// The op byte is not in the protocol at all.
    #[error("unknown op 0x{0:02x}")]
    UnknownOp(u8),
    /// The op exists but the other side sends it (e.g. WELCOME from a client).
    #[error("op 0x{0:02x} is not sent in this direction")]
    WrongDirection(u8),
    /// A field runs past the end of the frame.
    #[error("{op} frame ends inside its {field} field")]
    Truncated {
        /// The frame's name, e.g. `HELLO`.
        op: &'static str,
        /// The field that is cut short.
        field: &'static str,
    },
    /// Bytes follow the last field of a fixed-layout frame.
    #[error("{extra} unexpected bytes after the last field of {op}")]
    TrailingBytes {
        /// The frame's name.
        op: &'static str,
        /// How many bytes are left over.
        extra: usize,
    },
    /// HELLO or WELCOME carries a version other than 1.
    #[error("unsupported protocol version {0} (only version 1 is spoken)")]
    UnsupportedVersion(u8),
    /// An ERROR frame with a code the protocol does not define.
    #[error("unknown error code {0}")]
    UnknownErrorCode(u8),
    /// A LEFT or BYE frame with a reason the protocol does not define.
    #[error("unknown reason code {0}")]
    UnknownReason(u8),
    /// A flag byte that is neither 0 nor 1.
    #[error("{op} flag byte is {value}; only 0 and 1 are defined")]
    BadFlag {
        /// The frame's name.
        op: &'static str,
        /// The byte found.
        value: u8,
    },
    /// A detail string that is not UTF-8.
    #[error("{op} detail is not valid UTF-8")]
    DetailNotUtf8 {
        /// The frame's name.
        op: &'static str,
    },
}

/// Why a frame could not be decoded into a typed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame is structurally broken.
    #[error("malformed frame: {0}")]
    Malformed(#[from] Malformed),
    /// A name field holds an invalid name.
    #[error("invalid name: {0}")]
    Name(#[from] NameError),
    /// A text field holds an invalid text.
    #[error("invalid text: {0}")]
    Text(#[from] TextError),
}

/// A server frame that cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The frame would exceed [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the maximum of 16384")]
    TooLarge(usize),
}

/// A frame a client sends, with every field valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// Register under a name.
    Hello {
        /// The name to register.
        name: Name,
    },
    /// Say something to everyone.
    Say {
        /// The message.
        text: Text,
    },
    /// Say something to one user.
    Whisper {
        /// The recipient.
        to: Name,
        /// The message.
        text: Text,
    },
    /// Ask for the roster.
    Who,
    /// Liveness probe; the server answers PONG with the same token.
    Ping {
        /// Echoed back.
        token: u64,
    },
    /// Answer to a server PING.
    Pong {
        /// The PING's token.
        token: u64,
    },
    /// Leave.
    Bye,
}

/// A client frame that is structurally sound but whose name and text fields are
/// still unchecked bytes borrowed from the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawClientFrame<'a> {
    /// HELLO (its version byte was 1).
    Hello {
        /// Unchecked name bytes.
        name: &'a [u8],
    },
    /// SAY.
    Say {
        /// Unchecked text bytes.
        text: &'a [u8],
    },
    /// WHISPER.
    Whisper {
        /// Unchecked recipient bytes.
        to: &'a [u8],
        /// Unchecked text bytes.
        text: &'a [u8],
    },
    /// WHO.
    Who,
    /// PING.
    Ping {
        /// Token.
        token: u64,
    },
    /// PONG.
    Pong {
        /// Token.
        token: u64,
    },
    /// BYE.
    Bye,
}

/// A frame a server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// Liveness probe; the client answers PONG with the same token.
    Ping {
        /// Echoed back.
        token: u64,
    },
    /// Answer to a client PING.
    Pong {
        /// The PING's token.
        token: u64,
    },
    /// Registration succeeded.
    Welcome {
        /// The name as registered.
        name: Name,
    },
    /// A request failed; the connection stays open.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// Human-readable detail, may be empty.
        detail: String,
    },
    /// A public message.
    Message {
        /// The sender, set by the server.
        from: Name,
        /// The message.
        text: Text,
    },
    /// A private message.
    Private {
        /// The sender, set by the server.
        from: Name,
        /// The message.
        text: Text,
    },
    /// A user registered.
    Joined {
        /// Who.
        name: Name,
    },
    /// A registered user went away.
    Left {
        /// Who.
        name: Name,
        /// Why.
        reason: Reason,
    },
    /// One frame of a roster listing.
    Users {
        /// Whether this frame ends the listing.
        last: bool,
        /// Names in this frame.
        names: Vec<Name>,
    },
    /// The server is closing the connection.
    Bye {
        /// Why.
        reason: Reason,
        /// Human-readable detail, may be empty.
        detail: String,
    },
}

/// A cursor over a frame's payload.
struct Reader<'a> {
    op: &'static str,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(op: &'static str, payload: &'a [u8]) -> Self {
        Self { op, rest: payload }
    }

    fn truncated(&self, field: &'static str) -> Malformed {
        Malformed::Truncated { op: self.op, field }
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, Malformed> {
        let (&b, rest) = self.rest.split_first().ok_or(self.truncated(field))?;
        self.rest = rest;
        Ok(b)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, Malformed> {
        let (bytes, rest) = self
            .rest
            .split_first_chunk::<2>()
            .ok_or(self.truncated(field))?;
        self.rest = rest;
        Ok(u16::from_be_bytes(*bytes))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, Malformed> {
        let (bytes, rest) = self
            .rest
            .split_first_chunk::<8>()
            .ok_or(self.truncated(field))?;
        self.rest = rest;
        Ok(u64::from_be_bytes(*bytes))
    }

    /// A `name` field: a length byte, then that many bytes (unchecked).
    fn name(&mut self, field: &'static str) -> Result<&'a [u8], Malformed> {
        let len = usize::from(self.u8(field)?);
        if self.rest.len() < len {
            return Err(self.truncated(field));
        }
        let (name, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(name)
    }

    /// A `text` or `detail` field: the rest of the frame.
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    fn detail(&mut self) -> Result<String, Malformed> {
        let op = self.op;
        std::str::from_utf8(self.rest())
            .map(str::to_owned)
            .map_err(|_| Malformed::DetailNotUtf8 { op })
    }

    /// Ends a fixed-layout frame: nothing may follow.
    fn end(self) -> Result<(), Malformed> {
        match self.rest.len() {
            0 => Ok(()),
            extra => Err(Malformed::TrailingBytes { op: self.op, extra }),
        }
    }
}

/// The contract's name for an op byte, for error messages.
pub fn op_name(op: u8) -> &'static str {
    match op {
        op::HELLO => "HELLO",
        op::SAY => "SAY",
        op::WHISPER => "WHISPER",
        op::WHO => "WHO",
        op::PING => "PING",
        op::PONG => "PONG",
        op::BYE | op::SERVER_BYE => "BYE",
        op::WELCOME => "WELCOME",
        op::ERROR => "ERROR",
        op::MESSAGE => "MESSAGE",
        op::PRIVATE => "PRIVATE",
        op::JOINED => "JOINED",
        op::LEFT => "LEFT",
        op::USERS => "USERS",
        _ => "unknown",
    }
}

fn is_server_op(op: u8) -> bool {
    matches!(op, op::PING | op::PONG | op::WELCOME..=op::SERVER_BYE)
}

fn is_client_op(op: u8) -> bool {
    matches!(op, op::HELLO..=op::BYE)
}

impl<'a> RawClientFrame<'a> {
    /// Parses a frame from a client, checking its structure only.
    pub fn parse(frame: RawFrame<'a>) -> Result<Self, Malformed> {
        let mut r = Reader::new(op_name(frame.op), frame.payload);
        let parsed = match frame.op {
            op::HELLO => {
                let version = r.u8("version")?;
                if version != PROTOCOL_VERSION {
                    return Err(Malformed::UnsupportedVersion(version));
                }
                Self::Hello {
                    name: r.name("name")?,
                }
            }
            op::SAY => Self::Say { text: r.rest() },
            op::WHISPER => Self::Whisper {
                to: r.name("to")?,
                text: r.rest(),
            },
            op::WHO => Self::Who,
            op::PING => Self::Ping {
                token: r.u64("token")?,
            },
            op::PONG => Self::Pong {
                token: r.u64("token")?,
            },
            op::BYE => Self::Bye,
            other if is_server_op(other) => return Err(Malformed::WrongDirection(other)),
            other => return Err(Malformed::UnknownOp(other)),
        };
        r.end()?;
        Ok(parsed)
    }

    /// Checks names and texts. For WHISPER the text is checked before the
    /// recipient, as the contract orders the server's checks.
    pub fn validate(self) -> Result<ClientFrame, DecodeError> {
        Ok(match self {
            Self::Hello { name } => ClientFrame::Hello {
                name: Name::from_bytes(name)?,
            },
            Self::Say { text } => ClientFrame::Say {
                text: Text::from_bytes(text)?,
            },
            Self::Whisper { to, text } => {
                let text = Text::from_bytes(text)?;
                ClientFrame::Whisper {
                    to: Name::from_bytes(to)?,
                    text,
                }
            }
            Self::Who => ClientFrame::Who,
            Self::Ping { token } => ClientFrame::Ping { token },
            Self::Pong { token } => ClientFrame::Pong { token },
            Self::Bye => ClientFrame::Bye,
        })
    }
}

impl ClientFrame {
    /// Decodes a client frame: structure, then every field.
    pub fn decode(frame: RawFrame<'_>) -> Result<Self, DecodeError> {
        RawClientFrame::parse(frame)?.validate()
    }

    /// Appends the frame, header included, to `out`. Every valid client frame
    /// fits in [`MAX_FRAME`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Hello { name } => {
                put_header(out, op::HELLO, 2 + name.len());
                out.push(PROTOCOL_VERSION);
                put_name(out, name);
            }
            Self::Say { text } => {
                put_header(out, op::SAY, text.as_bytes().len());
                out.extend_from_slice(text.as_bytes());
            }
            Self::Whisper { to, text } => {
                put_header(out, op::WHISPER, 1 + to.len() + text.as_bytes().len());
                put_name(out, to);
                out.extend_from_slice(text.as_bytes());
            }
            Self::Who => put_header(out, op::WHO, 0),
            Self::Ping { token } => put_token(out, op::PING, *token),
            Self::Pong { token } => put_token(out, op::PONG, *token),
            Self::Bye => put_header(out, op::BYE, 0),
        }
    }

    /// The frame's encoded bytes, header included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl ServerFrame {
    /// Decodes a frame from a server like [`decode`](Self::decode), except
    /// that a MESSAGE or PRIVATE whose text is not valid is kept, its text
    /// made displayable by [`Text::lossy`]: a client shows what a faulty
    /// server relayed, escaped, instead of giving up on the connection.
    pub fn decode_lenient(frame: RawFrame<'_>) -> Result<Self, DecodeError> {
        let strict = Self::decode(frame);
        if strict.is_ok() || !matches!(frame.op, op::MESSAGE | op::PRIVATE) {
            return strict;
        }
        let mut r = Reader::new(op_name(frame.op), frame.payload);
        let Ok(from) = r.name("from").map(Name::from_bytes) else {
            return strict;
        };
        let Ok(from) = from else { return strict };
        let text = Text::lossy(r.rest());
        Ok(if frame.op == op::MESSAGE {
            Self::Message { from, text }
        } else {
            Self::Private { from, text }
        })
    }

    /// Decodes a frame from a server.
    pub fn decode(frame: RawFrame<'_>) -> Result<Self, DecodeError> {
        let mut r = Reader::new(op_name(frame.op), frame.payload);
        let decoded = match frame.op {
            op::PING => Self::Ping {
                token: r.u64("token")?,
            },
            op::PONG => Self::Pong {
                token: r.u64("token")?,
            },
            op::WELCOME => {
                let version = r.u8("version")?;
                if version != PROTOCOL_VERSION {
                    return Err(Malformed::UnsupportedVersion(version).into());
                }
                Self::Welcome {
                    name: Name::from_bytes(r.name("name")?)?,
                }
            }
            op::ERROR => {
                let code = r.u8("code")?;
                Self::Error {
                    code: ErrorCode::from_u8(code).ok_or(Malformed::UnknownErrorCode(code))?,
                    detail: r.detail()?,
                }
            }
            op::MESSAGE | op::PRIVATE => {
                let from = Name::from_bytes(r.name("from")?)?;
                let text = Text::from_bytes(r.rest())?;
                if frame.op == op::MESSAGE {
                    Self::Message { from, text }
                } else {
                    Self::Private { from, text }
                }
            }
            op::JOINED => Self::Joined {
                name: Name::from_bytes(r.name("name")?)?,
            },
            op::LEFT => {
                let name = Name::from_bytes(r.name("name")?)?;
                let reason = r.u8("reason")?;
                Self::Left {
                    name,
                    reason: Reason::from_u8(reason).ok_or(Malformed::UnknownReason(reason))?,
                }
            }
            op::USERS => {
                let last = match r.u8("last")? {
                    0 => false,
                    1 => true,
                    other => {
                        return Err(Malformed::BadFlag {
                            op: "USERS",
                            value: other,
                        }
                        .into());
                    }
                };
                let count = r.u16("count")?;
                // Each name takes at least two bytes, which bounds the allocation
                // by the payload size whatever `count` claims.
                let mut names = Vec::with_capacity(usize::from(count).min(r.rest.len() / 2));
                for _ in 0..count {
                    names.push(Name::from_bytes(r.name("names")?)?);
                }
                Self::Users { last, names }
            }
            op::SERVER_BYE => {
                let reason = r.u8("reason")?;
                Self::Bye {
                    reason: Reason::from_u8(reason).ok_or(Malformed::UnknownReason(reason))?,
                    detail: r.detail()?,
                }
            }
            other if is_client_op(other) => {
                return Err(Malformed::WrongDirection(other).into());
            }
            other => return Err(Malformed::UnknownOp(other).into()),
        };
        r.end()?;
        Ok(decoded)
    }

    /// Appends the frame, header included, to `out`.
    ///
    /// Fails, leaving `out` untouched, only for an `Error` or `Bye` whose detail
    /// or a `Users` whose name list does not fit in [`MAX_FRAME`].
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let length = self.encoded_len();
        if length > MAX_FRAME {
            return Err(EncodeError::TooLarge(length));
        }
        match self {
            Self::Ping { token } => put_token(out, op::PING, *token),
            Self::Pong { token } => put_token(out, op::PONG, *token),
            Self::Welcome { name } => encode_welcome(out, name),
            Self::Error { code, detail } => encode_error(out, *code, detail),
            Self::Message { from, text } => encode_message(out, from, text.as_bytes()),
            Self::Private { from, text } => encode_private(out, from, text.as_bytes()),
            Self::Joined { name } => encode_joined(out, name),
            Self::Left { name, reason } => encode_left(out, name, *reason),
            Self::Users { last, names } => put_users(out, *last, names),
            Self::Bye { reason, detail } => encode_bye(out, *reason, detail),
        }
        Ok(())
    }

    /// The frame's encoded bytes, header included.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    /// `length` as the header would carry it: op byte plus payload.
    fn encoded_len(&self) -> usize {
        1 + match self {
            Self::Ping { .. } | Self::Pong { .. } => 8,
            Self::Welcome { name } => 2 + name.len(),
            Self::Error { detail, .. } | Self::Bye { detail, .. } => 1 + detail.len(),
            Self::Message { from, text } | Self::Private { from, text } => {
                1 + from.len() + text.as_bytes().len()
            }
            Self::Joined { name } => 1 + name.len(),
            Self::Left { name, .. } => 2 + name.len(),
            Self::Users { names, .. } => {
                USERS_OVERHEAD - 1 + names.iter().map(|n| 1 + n.len()).sum::<usize>()
            }
        }
    }
}

fn put_name(out: &mut Vec<u8>, name: &Name) {
    // A name is at most 32 bytes, so its length fits the u8 prefix.
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
}

fn put_token(out: &mut Vec<u8>, op: u8, token: u64) {
    put_header(out, op, 8);
    out.extend_from_slice(&token.to_be_bytes());
}

/// Bytes of `detail` that fit a frame after its one-byte code, cut on a
/// character boundary.
fn clamp_detail(detail: &str) -> &[u8] {
    let max = MAX_FRAME - 2;
    if detail.len() <= max {
        return detail.as_bytes();
    }
    let mut end = max;
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    crate::in_bounds(detail.as_bytes(), ..end)
}

/// Appends WELCOME for `name`.
pub(crate) fn encode_welcome(out: &mut Vec<u8>, name: &Name) {
    put_header(out, op::WELCOME, 2 + name.len());
    out.push(PROTOCOL_VERSION);
    put_name(out, name);
}

/// Appends ERROR; a detail too long for one frame is cut short.
pub(crate) fn encode_error(out: &mut Vec<u8>, code: ErrorCode, detail: &str) {
    let detail = clamp_detail(detail);
    put_header(out, op::ERROR, 1 + detail.len());
    out.push(code as u8);
    out.extend_from_slice(detail);
}

/// Appends BYE (server to client); a detail too long for one frame is cut short.
pub(crate) fn encode_bye(out: &mut Vec<u8>, reason: Reason, detail: &str) {
    let detail = clamp_detail(detail);
    put_header(out, op::SERVER_BYE, 1 + detail.len());
    out.push(reason as u8);
    out.extend_from_slice(detail);
}

/// Appends MESSAGE. `text` must already be a valid text (see
/// [`validate_text`]), which keeps the frame within [`MAX_FRAME`].
pub(crate) fn encode_message(out: &mut Vec<u8>, from: &Name, text: &[u8]) {
    put_name_and_text(out, op::MESSAGE, from, text);
}

/// Appends PRIVATE. `text` must already be a valid text.
pub(crate) fn encode_private(out: &mut Vec<u8>, from: &Name, text: &[u8]) {
    put_name_and_text(out, op::PRIVATE, from, text);
}

fn put_name_and_text(out: &mut Vec<u8>, op: u8, from: &Name, text: &[u8]) {
    debug_assert!(validate_text(text).is_ok());
    put_header(out, op, 1 + from.len() + text.len());
    put_name(out, from);
    out.extend_from_slice(text);
}

/// Appends JOINED.
pub(crate) fn encode_joined(out: &mut Vec<u8>, name: &Name) {
    put_header(out, op::JOINED, 1 + name.len());
    put_name(out, name);
}

/// Appends LEFT.
pub(crate) fn encode_left(out: &mut Vec<u8>, name: &Name, reason: Reason) {
    put_header(out, op::LEFT, 2 + name.len());
    put_name(out, name);
    out.push(reason as u8);
}

/// Appends a PING or PONG (either direction).
pub(crate) fn encode_ping(out: &mut Vec<u8>, token: u64) {
    put_token(out, op::PING, token);
}

/// Appends a PONG (either direction).
pub(crate) fn encode_pong(out: &mut Vec<u8>, token: u64) {
    put_token(out, op::PONG, token);
}

fn put_users(out: &mut Vec<u8>, last: bool, names: &[Name]) {
    let names_len: usize = names.iter().map(|n| 1 + n.len()).sum();
    put_header(out, op::USERS, USERS_OVERHEAD - 1 + names_len);
    out.push(u8::from(last));
    // Callers keep a frame within MAX_FRAME, so the count fits in u16.
    out.extend_from_slice(&(names.len() as u16).to_be_bytes());
    for name in names {
        put_name(out, name);
    }
}

/// Appends a whole roster as USERS frames, as many as needed to stay within
/// [`MAX_FRAME`]; the last one has `last = 1`. An empty roster is one empty frame.
pub(crate) fn encode_roster(out: &mut Vec<u8>, names: &[Name]) {
    let budget = MAX_FRAME - USERS_OVERHEAD;
    let mut start = 0;
    loop {
        let mut used = 0;
        let mut end = start;
        for name in crate::in_bounds(names, start..) {
            if used + 1 + name.len() > budget {
                break;
            }
            used += 1 + name.len();
            end += 1;
        }
        let last = end >= names.len();
        put_users(out, last, crate::in_bounds(names, start..end));
        if last {
            return;
        }
        start = end;
    }
}

/// A roster as USERS frames that grows a name at a time: always the bytes
/// [`encode_roster`] gives for the names pushed so far, without encoding
/// them again. The server keeps the lobby's this way, so that the WELCOME of
/// the 5,000th user of a connect storm copies a roster instead of building
/// one.
#[derive(Debug, Clone)]
pub(crate) struct RosterFrames {
    bytes: Vec<u8>,
    /// Where the last frame (the one with `last = 1`) starts.
    last_at: usize,
    /// Bytes and count of the names in the last frame.
    last_names_len: usize,
    last_count: u16,
}

impl RosterFrames {
    /// Offset of `last` in a USERS frame; `count` follows it.
    const LAST_FLAG: usize = HEADER_LEN + 1;

    /// The empty roster: one empty frame.
    pub(crate) fn new() -> Self {
        let mut bytes = Vec::new();
        put_users(&mut bytes, true, &[]);
        Self {
            bytes,
            last_at: 0,
            last_names_len: 0,
            last_count: 0,
        }
    }

    /// The encoded frames.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Adds `name` at the end: into the last frame while it fits
    /// [`MAX_FRAME`] (as `encode_roster` fills them), else in a new one.
    pub(crate) fn push(&mut self, name: &Name) {
        let need = 1 + name.len();
        if self.last_names_len + need > MAX_FRAME - USERS_OVERHEAD {
            if let Some(last) = self.bytes.get_mut(self.last_at + Self::LAST_FLAG) {
                *last = 0;
            }
            self.last_at = self.bytes.len();
            put_users(&mut self.bytes, true, std::slice::from_ref(name));
            self.last_names_len = need;
            self.last_count = 1;
            return;
        }
        self.last_names_len += need;
        self.last_count += 1;
        // Within MAX_FRAME, so both fit their fields.
        let length = (USERS_OVERHEAD + self.last_names_len) as u32;
        let at = self.last_at;
        if let Some(field) = self.bytes.get_mut(at..at + HEADER_LEN) {
            field.copy_from_slice(&length.to_be_bytes());
        }
        let count_at = at + Self::LAST_FLAG + 1;
        if let Some(field) = self.bytes.get_mut(count_at..count_at + 2) {
            field.copy_from_slice(&self.last_count.to_be_bytes());
        }
        put_name(&mut self.bytes, name);
    }
}

#[cfg(test)]
mod tests;
