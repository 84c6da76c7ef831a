//! [`Client`]: the client side of the protocol as a sans-IO state machine.
//!
//! The program owns the socket, the terminal and the clock; the client owns
//! every protocol decision: which bytes to send for what the user wants, what
//! the server's bytes mean, when to answer a PING, what the roster is, and when
//! the user has been idle too long. It never decides how anything looks on
//! screen: it hands out typed [`ClientEvent`]s and the program formats them.
//!
//! # Driving loop
//!
//! Feed whatever happened, then drain every output until it is empty:
//!
//! 1. Inputs, each with `now`, which must never go backwards:
//!    - from the server: [`handle_input`](Client::handle_input) (bytes as read,
//!      cut anywhere) and [`handle_eof`](Client::handle_eof) (the read returned 0
//!      or failed);
//!    - from the user: [`hello`](Client::hello), [`say`](Client::say),
//!      [`whisper`](Client::whisper), [`who`](Client::who),
//!      [`quit`](Client::quit);
//!    - from the clock: [`handle_timeout`](Client::handle_timeout), once
//!      [`poll_timeout`](Client::poll_timeout)'s deadline has passed (calling it
//!      early or often is harmless).
//! 2. Outputs, in this order: write [`outbound`](Client::outbound) to the
//!    socket and report how much went with
//!    [`handle_written`](Client::handle_written); show every
//!    [`poll_event`](Client::poll_event) until `None`; wait no later than
//!    [`poll_timeout`](Client::poll_timeout).
//! 3. Stop once [`ClientEvent::Closed`] has been polled: close the socket.
//!
//! After [`quit`](Client::quit) (or an idle exit) the client waits for the
//! server's `BYE(QUIT)` or the end of the stream, at most
//! [`quit_linger`](ClientConfig::quit_linger) (1 s) from the quit: then
//! `handle_timeout` closes it with [`CloseReason::Quit`] all the same. The
//! program needs no timer of its own.
//!
//! # Invariants
//!
//! - At most one [`ClientEvent::Closed`] is emitted (exactly one once
//!   [`handle_eof`](Client::handle_eof) was called), and it is the last event:
//!   afterwards every input is ignored, [`outbound`](Client::outbound) is empty
//!   and [`poll_timeout`](Client::poll_timeout) is `None`.
//! - Nothing is queued after our BYE: once quitting, user intents are refused
//!   with [`UsageError::Closing`] and PINGs are no longer answered.
//! - Every server PING is answered with a PONG carrying its token, in stream
//!   order with the rest of the output. The one exception bounds memory: while
//!   more than [`PONG_BACKLOG_LIMIT`] bytes wait to be written (the server is not
//!   reading), a PING gets no PONG; any byte the server later reads resets its
//!   silence clock just as well.
//! - The meaning of the server's stream never depends on how it was cut: the same
//!   bytes give the same events and queue the same output, whole or byte by
//!   byte.
//! - Malformed bytes from the server are fatal ([`CloseReason::ProtocolError`]);
//!   well-formed frames that arrive at odd times (a MESSAGE before WELCOME, a
//!   second WELCOME) are tolerated, never fatal. Nothing panics on any input.
//! - The roster is the last complete USERS listing (frames accumulated until
//!   `last = 1`) with every later JOINED and LEFT applied, which the contract
//!   guarantees is the server's true roster.
//! - The idle-exit deadline is the last user intent plus
//!   [`ClientConfig::idle_exit`], counted from [`Client::new`]; server traffic
//!   does not postpone it. The client never reads a clock.
//! - Memory is bounded by one unfinished frame of input, the roster, unwritten
//!   output (given back once drained) and undrained events.
//!
//! # Intents before registration
//!
//! [`say`](Client::say), [`whisper`](Client::whisper) and [`who`](Client::who)
//! are sent at once whatever the registration state. The server processes
//! frames in order, so one sent while a HELLO awaits its answer is delivered if
//! the HELLO succeeds, and one sent without a successful HELLO earns
//! `ERROR(NOT_REGISTERED)`, which arrives as a [`ClientEvent::Error`]. The
//! server stays the single authority; the client does not second-guess it.
//! [`hello`](Client::hello) is refused locally while a HELLO awaits its answer
//! and after WELCOME, since the answer to either is known in advance.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//! use chat_core::client::{Client, ClientConfig, ClientEvent};
//! use chat_core::{Name, ServerFrame, Text};
//!
//! let start = Instant::now(); // a program reads its clock; tests may fake it
//! let mut client = Client::new(ClientConfig::default(), start);
//! let alice = Name::new("alice").unwrap();
//! client.hello(start, alice).unwrap();
//! // The program writes these bytes to the socket, then reports it.
//! assert_eq!(client.outbound(), b"\x00\x00\x00\x08\x01\x01\x05alice");
//! let n = client.outbound().len();
//! client.handle_written(n);
//!
//! // The server's answer, as the program reads it from the socket.
//! let mut from_server = Vec::new();
//! ServerFrame::Welcome { name: alice }.encode(&mut from_server).unwrap();
//! ServerFrame::Users { last: true, names: vec![alice] }.encode(&mut from_server).unwrap();
//! let now = start + Duration::from_millis(5);
//! client.handle_input(now, &from_server);
//! assert_eq!(client.poll_event(), Some(ClientEvent::Welcome { name: alice }));
//! assert_eq!(client.poll_event(), Some(ClientEvent::Roster { names: vec![alice] }));
//! assert_eq!(client.poll_event(), None);
//!
//! // The user types a line; it goes out as SAY.
//! client.say(now, Text::new("hi").unwrap()).unwrap();
//! assert_eq!(client.outbound(), b"\x00\x00\x00\x03\x02hi");
//! // No user input for 60 s from then: the client gives up.
//! assert_eq!(client.poll_timeout(), Some(now + Duration::from_secs(60)));
//! ```

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::codec::{Deframer, FrameError};
use crate::frame::{ClientFrame, DecodeError, ErrorCode, Reason, ServerFrame};
use crate::name::Name;
use crate::text::Text;

/// The terminal program's default idle exit: 60 s without user input.
pub const DEFAULT_IDLE_EXIT: Duration = Duration::from_secs(60);

/// Unwritten output beyond which a server PING is not answered (see the
/// module invariants). 64 KiB.
pub const PONG_BACKLOG_LIMIT: usize = 64 * 1024;

/// Client settings. [`Default`] gives the terminal program's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// With no user intent for this long, the client emits
    /// [`ClientEvent::IdleExit`] and sends BYE. `None` disables it (what the
    /// terminal program's `--idle-exit 0` maps to). Default 60 s.
    pub idle_exit: Option<Duration>,
    /// After our BYE, how long to wait for the server's BYE or end of stream
    /// before giving up and closing anyway ([`CloseReason::Quit`] either
    /// way). Default 1 s.
    pub quit_linger: Duration,
}

/// The default [`ClientConfig::quit_linger`].
pub const DEFAULT_QUIT_LINGER: Duration = Duration::from_secs(1);

impl ClientConfig {
    /// The defaults with the idle exit disabled.
    pub fn without_idle_exit() -> Self {
        Self {
            idle_exit: None,
            ..Self::default()
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            idle_exit: Some(DEFAULT_IDLE_EXIT),
            quit_linger: DEFAULT_QUIT_LINGER,
        }
    }
}

/// The server broke the protocol. Fatal: the client closes with
/// [`CloseReason::ProtocolError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The byte stream could not be cut into frames (bad length, or the stream
    /// ended inside a frame).
    #[error("framing error: {0}")]
    Frame(#[from] FrameError),
    /// A frame could not be decoded as a server frame (unknown op, an op only
    /// clients send, a field cut short, trailing bytes, an invalid name or text).
    #[error("bad frame from server: {0}")]
    Decode(#[from] DecodeError),
    /// The server's roster (a USERS listing, or the roster grown by JOINED)
    /// passed [`MAX_ROSTER`] names: a memory bound against a hostile server.
    #[error("the server's roster passed {MAX_ROSTER} names")]
    RosterTooLarge,
}

/// Most names the client keeps in a roster or a listing being received. A
/// server with more users is refused as a protocol error rather than let
/// grow the client without bound.
pub const MAX_ROSTER: usize = 65_536;

/// A user intent the client refused without sending anything: the caller
/// misused the API, the server did nothing wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// [`quit`](Client::quit) was called or the idle exit fired: BYE is queued
    /// and nothing may follow it.
    #[error("the connection is closing")]
    Closing,
    /// The connection is closed ([`ClientEvent::Closed`] was emitted).
    #[error("the connection is closed")]
    Closed,
    /// HELLO after WELCOME (the server would answer ALREADY_REGISTERED).
    #[error("already registered")]
    AlreadyRegistered,
    /// HELLO while an earlier HELLO still awaits its answer.
    #[error("a HELLO is still waiting for its answer")]
    HelloPending,
}

/// Why the connection ended, carried by [`ClientEvent::Closed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The user quit ([`Client::quit`] or the idle exit): after our BYE the
    /// server answered `BYE(QUIT)` or ended the stream.
    Quit,
    /// The server said BYE on its own (or, after our BYE, with a reason other
    /// than QUIT, e.g. a shutdown that crossed it).
    ServerBye {
        /// Why the server closed.
        reason: Reason,
        /// The server's human-readable detail, may be empty.
        detail: String,
    },
    /// The stream ended, on a frame boundary, without a BYE from the server
    /// while we had not quit.
    Disconnected,
    /// The server sent bytes that break the protocol.
    ProtocolError(ProtocolError),
}

/// What happened, for the program to show. Events are edge-triggered: each is
/// emitted once, in the order of the server's stream and the user's intents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Registration succeeded (WELCOME). The roster snapshot follows as
    /// [`ClientEvent::Roster`].
    Welcome {
        /// Our name, as registered.
        name: Name,
    },
    /// A complete roster listing arrived (the snapshot after WELCOME, or the
    /// answer to WHO). `names` equals [`Client::roster`] at that moment:
    /// sorted ignoring ASCII case, no duplicates.
    Roster {
        /// Every registered user, us included.
        names: Vec<Name>,
    },
    /// A public message (ours too: the server echoes SAY to its sender).
    Message {
        /// The sender, as set by the server.
        from: Name,
        /// The message.
        text: Text,
    },
    /// A private message to us.
    Private {
        /// The sender, as set by the server.
        from: Name,
        /// The message.
        text: Text,
    },
    /// We sent a whisper (emitted by [`Client::whisper`], since the server
    /// sends nothing back on success; an `ERROR(NO_SUCH_USER)` may follow).
    PrivateSent {
        /// The recipient.
        to: Name,
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
    /// The server refused a request; the connection stays open. After
    /// `NAME_TAKEN` or `NAME_INVALID`, [`Client::hello`] may be tried again.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// The server's human-readable detail, may be empty.
        detail: String,
    },
    /// No user intent for [`ClientConfig::idle_exit`]: BYE has been queued, as
    /// if [`Client::quit`] had been called.
    IdleExit,
    /// The connection is over; close the socket. Always the last event.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Where registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Registration {
    /// No HELLO awaiting an answer, not registered.
    Unregistered,
    /// A HELLO was sent; WELCOME or an ERROR will answer it.
    HelloSent,
    /// WELCOME arrived.
    Registered(Name),
}

/// Whether the connection is still usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    /// Sending and receiving.
    Open,
    /// Our BYE is queued; waiting for the server's BYE or end of stream.
    Quitting,
    /// Over: [`ClientEvent::Closed`] was emitted.
    Closed,
}

/// The client state machine. See the [module docs](self) for the driving loop.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    lifecycle: Lifecycle,
    registration: Registration,
    deframer: Deframer,
    /// Bytes to send; `outbox[sent..]` is what the program still has to write.
    outbox: Vec<u8>,
    sent: usize,
    events: VecDeque<ClientEvent>,
    /// The last complete listing with later deltas applied.
    roster: BTreeSet<Name>,
    /// A USERS listing still waiting for its `last = 1` frame.
    listing: BTreeSet<Name>,
    /// When the user last did something (or the client was created).
    last_activity: Instant,
    /// While quitting: when to stop waiting for the server's answer.
    quit_deadline: Option<Instant>,
}

impl Client {
    /// A client for a freshly opened connection at `now`, which starts the
    /// idle-exit clock. Nothing is sent until [`hello`](Self::hello).
    pub fn new(config: ClientConfig, now: Instant) -> Self {
        Self {
            config,
            lifecycle: Lifecycle::Open,
            registration: Registration::Unregistered,
            deframer: Deframer::new(),
            outbox: Vec::new(),
            sent: 0,
            events: VecDeque::new(),
            roster: BTreeSet::new(),
            listing: BTreeSet::new(),
            last_activity: now,
            quit_deadline: None,
        }
    }

    // ----- getters -----

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Our name once WELCOME arrived; `None` before.
    pub fn name(&self) -> Option<Name> {
        match self.registration {
            Registration::Registered(name) => Some(name),
            _ => None,
        }
    }

    /// The registered users, sorted ignoring ASCII case: the last complete
    /// listing plus later JOINED and LEFT. Empty before the first listing.
    pub fn roster(&self) -> impl Iterator<Item = &Name> + '_ {
        self.roster.iter()
    }

    /// Whether a HELLO awaits its answer.
    pub fn is_hello_pending(&self) -> bool {
        self.registration == Registration::HelloSent
    }

    /// Whether our BYE is queued and the client waits for the server to close.
    pub fn is_quitting(&self) -> bool {
        self.lifecycle == Lifecycle::Quitting
    }

    /// Whether [`ClientEvent::Closed`] was emitted; every input is then ignored.
    pub fn is_closed(&self) -> bool {
        self.lifecycle == Lifecycle::Closed
    }

    /// Bytes the program has to write to the socket, in order. Write them and
    /// report how many went out with [`handle_written`](Self::handle_written).
    pub fn outbound(&self) -> &[u8] {
        crate::in_bounds(&self.outbox, self.sent..)
    }

    // ----- handle_* (inputs from the server and the clock) -----

    /// Bytes arrived from the server, cut anywhere. Every complete frame is
    /// acted on in order; a malformed one closes the client with
    /// [`CloseReason::ProtocolError`], and nothing after the server's BYE is read.
    pub fn handle_input(&mut self, _now: Instant, bytes: &[u8]) {
        let mut input = bytes;
        while !self.is_closed() {
            let decoded = match self.deframer.next_frame(&mut input) {
                // Text the server relays is shown escaped, not fatal.
                Ok(Some(raw)) => ServerFrame::decode_lenient(raw),
                Ok(None) => return,
                Err(error) => return self.close(CloseReason::ProtocolError(error.into())),
            };
            match decoded {
                Ok(frame) => self.handle_frame(frame),
                Err(error) => return self.close(CloseReason::ProtocolError(error.into())),
            }
        }
    }

    /// The server's stream ended (a read returned 0; a read error may be
    /// reported the same way). Inside a frame that is a protocol error;
    /// otherwise the connection is over: [`CloseReason::Quit`] if we had sent
    /// BYE, else [`CloseReason::Disconnected`].
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.is_closed() {
            return;
        }
        let reason = match self.deframer.finish() {
            Err(error) => CloseReason::ProtocolError(error.into()),
            Ok(()) if self.is_quitting() => CloseReason::Quit,
            Ok(()) => CloseReason::Disconnected,
        };
        self.close(reason);
    }

    /// The program wrote the first `n` bytes of [`outbound`](Self::outbound).
    pub fn handle_written(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.outbox.len());
        if self.sent == self.outbox.len() {
            // Give the memory back: an idle client holds no output buffer.
            self.outbox = Vec::new();
            self.sent = 0;
        }
    }

    /// Time passed: if the idle-exit deadline is due, emits
    /// [`ClientEvent::IdleExit`] and queues BYE; if the server did not answer
    /// our BYE within the quit linger, closes ([`CloseReason::Quit`]).
    /// Harmless when nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.idle_deadline().is_some_and(|deadline| now >= deadline) {
            self.events.push_back(ClientEvent::IdleExit);
            self.send_bye(now);
        }
        if self.lifecycle == Lifecycle::Quitting
            && self.quit_deadline.is_some_and(|deadline| now >= deadline)
        {
            self.close(CloseReason::Quit);
        }
    }

    // ----- user intents -----

    /// Asks to register as `name` (HELLO). Refused while an earlier HELLO
    /// awaits its answer and after WELCOME; allowed again after a
    /// `NAME_TAKEN` or `NAME_INVALID` error.
    pub fn hello(&mut self, now: Instant, name: Name) -> Result<(), UsageError> {
        self.user_activity(now)?;
        match self.registration {
            Registration::Registered(_) => Err(UsageError::AlreadyRegistered),
            Registration::HelloSent => Err(UsageError::HelloPending),
            Registration::Unregistered => {
                self.registration = Registration::HelloSent;
                self.send(&ClientFrame::Hello { name });
                Ok(())
            }
        }
    }

    /// Says `text` to everyone (SAY). The server echoes it back as a
    /// [`ClientEvent::Message`] from us. Sent even before registration (see
    /// the module docs).
    pub fn say(&mut self, now: Instant, text: Text) -> Result<(), UsageError> {
        self.user_activity(now)?;
        self.send(&ClientFrame::Say { text });
        Ok(())
    }

    /// Says `text` to `to` only (WHISPER), and emits
    /// [`ClientEvent::PrivateSent`] at once so the program can show it,
    /// naming the recipient as the roster spells it (names match in any
    /// case: `/msg BOB` reaches `Bob`, and shows as `Bob`).
    pub fn whisper(&mut self, now: Instant, to: Name, text: Text) -> Result<(), UsageError> {
        self.user_activity(now)?;
        self.send(&ClientFrame::Whisper {
            to,
            text: text.clone(),
        });
        let to = self.roster.get(&to).copied().unwrap_or(to);
        self.events.push_back(ClientEvent::PrivateSent { to, text });
        Ok(())
    }

    /// Asks for the roster (WHO); the answer arrives as [`ClientEvent::Roster`].
    pub fn who(&mut self, now: Instant) -> Result<(), UsageError> {
        self.user_activity(now)?;
        self.send(&ClientFrame::Who);
        Ok(())
    }

    /// Leaves (BYE). The client then waits for the server's `BYE(QUIT)` or the
    /// end of the stream, and ends with [`CloseReason::Quit`]. Does nothing if
    /// already quitting or closed, so it is safe to call again (a second Ctrl-C).
    pub fn quit(&mut self, now: Instant) {
        self.send_bye(now);
    }

    // ----- poll_* (outputs) -----

    /// The next event for the program to show or act on.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next:
    /// the idle-exit deadline while open (`None` when idle exit is
    /// disabled), the end of the quit linger while quitting, `None` once
    /// closed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.lifecycle {
            Lifecycle::Open => self.idle_deadline(),
            Lifecycle::Quitting => self.quit_deadline,
            Lifecycle::Closed => None,
        }
    }

    // ----- internals -----

    fn idle_deadline(&self) -> Option<Instant> {
        if self.lifecycle != Lifecycle::Open {
            return None;
        }
        // An idle exit too far away to represent is no deadline at all.
        self.config
            .idle_exit
            .and_then(|idle| self.last_activity.checked_add(idle))
    }

    /// Records a user intent, or refuses it if nothing may be sent any more.
    fn user_activity(&mut self, now: Instant) -> Result<(), UsageError> {
        match self.lifecycle {
            Lifecycle::Open => {
                self.last_activity = self.last_activity.max(now);
                Ok(())
            }
            Lifecycle::Quitting => Err(UsageError::Closing),
            Lifecycle::Closed => Err(UsageError::Closed),
        }
    }

    fn send(&mut self, frame: &ClientFrame) {
        if self.lifecycle == Lifecycle::Open {
            frame.encode(&mut self.outbox);
        }
    }

    fn send_bye(&mut self, now: Instant) {
        if self.lifecycle == Lifecycle::Open {
            self.send(&ClientFrame::Bye);
            self.lifecycle = Lifecycle::Quitting;
            // A linger too long for the clock: wait for the server forever.
            self.quit_deadline = now.checked_add(self.config.quit_linger);
        }
    }

    /// Emits the one `Closed` event and drops everything still in flight.
    fn close(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.lifecycle = Lifecycle::Closed;
        self.deframer = Deframer::new();
        self.outbox = Vec::new();
        self.sent = 0;
        self.listing = BTreeSet::new();
        self.events.push_back(ClientEvent::Closed { reason });
    }

    fn handle_frame(&mut self, frame: ServerFrame) {
        let event = match frame {
            ServerFrame::Ping { token } => {
                if self.outbound().len() <= PONG_BACKLOG_LIMIT {
                    self.send(&ClientFrame::Pong { token });
                }
                return;
            }
            // We never send PING, so a PONG answers nothing: ignore it.
            ServerFrame::Pong { .. } => return,
            ServerFrame::Welcome { name } => {
                if self.name().is_some() {
                    return; // a second WELCOME changes nothing
                }
                self.registration = Registration::Registered(name);
                ClientEvent::Welcome { name }
            }
            ServerFrame::Error { code, detail } => {
                if matches!(code, ErrorCode::NameTaken | ErrorCode::NameInvalid)
                    && self.is_hello_pending()
                {
                    self.registration = Registration::Unregistered;
                }
                ClientEvent::Error { code, detail }
            }
            ServerFrame::Message { from, text } => ClientEvent::Message { from, text },
            ServerFrame::Private { from, text } => ClientEvent::Private { from, text },
            ServerFrame::Joined { name } => {
                self.roster.insert(name);
                if self.roster.len() > MAX_ROSTER {
                    return self.close(CloseReason::ProtocolError(ProtocolError::RosterTooLarge));
                }
                ClientEvent::Joined { name }
            }
            ServerFrame::Left { name, reason } => {
                self.roster.remove(&name);
                ClientEvent::Left { name, reason }
            }
            ServerFrame::Users { last, names } => {
                self.listing.extend(names);
                if self.listing.len() > MAX_ROSTER {
                    return self.close(CloseReason::ProtocolError(ProtocolError::RosterTooLarge));
                }
                if !last {
                    return;
                }
                self.roster = std::mem::take(&mut self.listing);
                ClientEvent::Roster {
                    names: self.roster.iter().copied().collect(),
                }
            }
            ServerFrame::Bye { reason, detail } => {
                let reason = if self.is_quitting() && reason == Reason::Quit {
                    CloseReason::Quit
                } else {
                    CloseReason::ServerBye { reason, detail }
                };
                return self.close(reason);
            }
        };
        self.events.push_back(event);
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzzing;

#[cfg(test)]
mod tests;
