//! [`ConnId`], the handle of one connection, and [`ServerEvent`], what the server
//! asks of the runtime or tells it.

use super::Protocol;
use crate::frame::Reason;
use crate::name::Name;

/// A handle to one connection. Ids are never reused while the connection lives,
/// and a stale id (after its [`ServerEvent::Close`]) is ignored by every method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(super) index: u32,
    pub(super) generation: u32,
}

impl ConnId {
    /// A small number, unique among live connections, handy as a slab key.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

/// What the server asks of the runtime, or tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// Close this connection's socket now; anything not yet written is
    /// discarded (a graceful close is only emitted once the output drained or
    /// the linger time ran out). Emitted exactly once per connection.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why it ends.
        reason: Reason,
        /// Whether everything queued was delivered to the socket (a BYE was
        /// flushed). When false, the peer is gone, broken or not reading, and
        /// the runtime should abort the connection (reset it) so that the
        /// kernel drops what it still buffers instead of trickling it out.
        graceful: bool,
    },
    /// A user registered (for logging).
    Joined {
        /// The user's connection.
        conn: ConnId,
        /// The name as registered.
        name: Name,
        /// The wire format it speaks.
        protocol: Protocol,
    },
    /// Reading from this connection may resume: [`Server::wants_read`]
    /// turned true again (the input it had paused has all been acted on).
    ///
    /// [`Server::wants_read`]: super::Server::wants_read
    Resume {
        /// The connection.
        conn: ConnId,
    },
    /// A registered user left (for logging); the others were sent `LEFT`.
    Left {
        /// The user's connection.
        conn: ConnId,
        /// The user's name.
        name: Name,
        /// Why.
        reason: Reason,
    },
}

impl ServerEvent {
    /// The connection the event is about.
    pub fn conn(&self) -> ConnId {
        match self {
            Self::Close { conn, .. }
            | Self::Joined { conn, .. }
            | Self::Resume { conn }
            | Self::Left { conn, .. } => *conn,
        }
    }
}

/// A one-line description for logs, e.g. `alice left (#3.0): quit`.
impl std::fmt::Display for ServerEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Close {
                conn,
                reason,
                graceful,
            } => {
                let how = if *graceful { "" } else { ", reset" };
                write!(f, "closing {conn}: {}{how}", reason.describe())
            }
            Self::Resume { conn } => write!(f, "reading {conn} again"),
            Self::Joined {
                conn,
                name,
                protocol,
            } => write!(f, "{name} joined ({conn}, {protocol})"),
            Self::Left { conn, name, reason } => {
                write!(f, "{name} left ({conn}): {}", reason.describe())
            }
        }
    }
}
