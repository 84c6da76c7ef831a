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
        self.outbox.get(self.sent..).unwrap_or_default()
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
    /// [`ClientEvent::PrivateSent`] at once so the program can show it.
    pub fn whisper(&mut self, now: Instant, to: Name, text: Text) -> Result<(), UsageError> {
        self.user_activity(now)?;
        self.send(&ClientFrame::Whisper {
            to,
            text: text.clone(),
        });
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

/// Drivers that check the client's invariants on arbitrary input, for fuzz
/// targets (thin shims over [`fuzzing::drive`]) and the property tests.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing {
    use super::*;

    /// Interprets `data` as a script of server bytes, user intents and clock
    /// ticks, runs it against a [`Client`] whose clock starts at `start`, and
    /// panics if an invariant breaks: one `Closed` at most, always last, and
    /// always reached by the final end of stream; no output, no deadline and no
    /// event after it; the idle exit exactly when a model of its own (the
    /// last user intent while open, plus the idle time) says, and the
    /// deadline the model's; the client's memory bounded whatever the server
    /// sends.
    ///
    /// Each step takes a control byte `c`: `c % 8` in `0..=3` feeds the next
    /// `c / 8 + 1` bytes as server input; 4 advances the clock by `c / 8`
    /// seconds and calls `handle_timeout`; 5 writes `c / 8` bytes of output;
    /// 6 is a user intent chosen by `c / 8`; 7 is end of stream.
    pub fn drive(start: Instant, data: &[u8]) {
        let idle = Duration::from_secs(10);
        let mut client = Client::new(
            ClientConfig {
                idle_exit: Some(idle),
                quit_linger: LINGER,
            },
            start,
        );
        let mut model = Model {
            now: start,
            activity: start,
            open: true,
            idle_exit_due: false,
            quit_at: None,
            close_due: false,
            closed_seen: false,
            idle,
        };
        let mut rest = data;
        while let Some((&c, tail)) = rest.split_first() {
            rest = tail;
            let arg = usize::from(c / 8);
            match c % 8 {
                0..=3 => {
                    let (chunk, tail) = rest.split_at((arg + 1).min(rest.len()));
                    rest = tail;
                    client.handle_input(model.now, chunk);
                }
                4 => {
                    model.now += Duration::from_secs(u64::from(c / 8));
                    if model.open && model.now >= model.activity + idle {
                        model.idle_exit_due = true;
                    }
                    if !model.closed_seen
                        && model.quit_at.is_some_and(|at| model.now >= at + LINGER)
                    {
                        model.close_due = true;
                    }
                    client.handle_timeout(model.now);
                }
                5 => client.handle_written(arg),
                6 => intent(&mut client, &mut model, arg),
                _ => client.handle_eof(model.now),
            }
            check(&mut client, &mut model);
        }
        client.handle_eof(model.now);
        check(&mut client, &mut model);
        assert!(model.closed_seen, "end of stream always closes the client");
    }

    /// The quit linger the driver configures.
    const LINGER: Duration = Duration::from_secs(3);

    /// What the driver expects of the client's lifecycle, kept apart from
    /// the client's own state.
    struct Model {
        now: Instant,
        /// The last user intent while open.
        activity: Instant,
        /// Neither quitting nor closed.
        open: bool,
        /// An IdleExit event must come now.
        idle_exit_due: bool,
        /// When we quit (by intent or idle exit).
        quit_at: Option<Instant>,
        /// The quit linger ran out: Closed must come now.
        close_due: bool,
        closed_seen: bool,
        idle: Duration,
    }

    fn intent(client: &mut Client, model: &mut Model, which: usize) {
        let now = model.now;
        let name = match which % 3 {
            0 => Name::new("alice"),
            1 => Name::new("bob"),
            _ => Name::new("Carol"),
        };
        let (Ok(name), Ok(text)) = (name, Text::new("hi")) else {
            return;
        };
        if which % 6 <= 3 && model.open {
            model.activity = now;
        }
        // Refusals are fine here; the invariants are what is checked.
        let _refused = match which % 6 {
            0 => client.hello(now, name),
            1 => client.say(now, text),
            2 => client.whisper(now, name, text),
            3 => client.who(now),
            4 => {
                client.quit(now);
                if model.open {
                    model.quit_at = Some(now);
                }
                model.open = false;
                Ok(())
            }
            _ => Ok(()),
        };
    }

    /// Drains the events of one step and checks them and the client's state
    /// against the model.
    fn check(client: &mut Client, model: &mut Model) {
        while let Some(event) = client.poll_event() {
            assert!(!model.closed_seen, "an event after Closed: {event:?}");
            match event {
                ClientEvent::Closed { .. } => {
                    model.closed_seen = true;
                    model.open = false;
                }
                ClientEvent::IdleExit => {
                    assert!(model.idle_exit_due, "idle exit before its time");
                    model.idle_exit_due = false;
                    model.open = false;
                    model.quit_at = Some(model.now);
                }
                _ => {}
            }
        }
        assert!(!model.idle_exit_due || !model.open, "idle exit missed");
        model.idle_exit_due = false;
        assert!(
            !model.close_due || model.closed_seen,
            "the quit linger ran out without a close"
        );
        model.close_due = false;
        assert_eq!(client.is_closed(), model.closed_seen);
        if model.closed_seen {
            assert!(client.outbound().is_empty(), "output after Closed");
        }
        let expected = if model.closed_seen {
            None
        } else if model.open {
            Some(model.activity + model.idle)
        } else {
            model.quit_at.map(|at| at + LINGER)
        };
        assert_eq!(client.poll_timeout(), expected, "the deadline");
        // Whatever the server sent, the roster is bounded, and the input
        // buffer holds at most one frame.
        assert!(client.roster.len() <= MAX_ROSTER && client.listing.len() <= MAX_ROSTER);
        assert!(client.deframer.buffered() <= crate::codec::HEADER_LEN + crate::MAX_FRAME);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::encode_roster;
    use crate::name::MAX_NAME;
    use proptest::prelude::*;

    fn n(s: &str) -> Name {
        Name::new(s).unwrap()
    }

    fn t(s: &str) -> Text {
        Text::new(s).unwrap()
    }

    /// Server frames, encoded back to back.
    fn wire(frames: &[ServerFrame]) -> Vec<u8> {
        let mut out = Vec::new();
        for frame in frames {
            frame.encode(&mut out).unwrap();
        }
        out
    }

    fn users(last: bool, names: &[&str]) -> ServerFrame {
        ServerFrame::Users {
            last,
            names: names.iter().map(|s| n(s)).collect(),
        }
    }

    fn drain(client: &mut Client) -> Vec<ClientEvent> {
        std::iter::from_fn(|| client.poll_event()).collect()
    }

    /// Takes everything the client wants to send, as a program writing it all.
    fn sent(client: &mut Client) -> Vec<u8> {
        let out = client.outbound().to_vec();
        client.handle_written(out.len());
        out
    }

    fn names(list: &[&str]) -> Vec<Name> {
        list.iter().map(|s| n(s)).collect()
    }

    fn roster(client: &Client) -> Vec<String> {
        client.roster().map(|n| n.as_str().to_owned()).collect()
    }

    struct Clock(Instant);

    impl Clock {
        fn new() -> Self {
            Self(Instant::now())
        }

        fn at(&self, secs: f64) -> Instant {
            self.0 + Duration::from_secs_f64(secs)
        }
    }

    fn no_idle() -> ClientConfig {
        ClientConfig::without_idle_exit()
    }

    /// A client registered as alice with roster alice, bob; events drained.
    fn registered(clock: &Clock) -> Client {
        let mut c = Client::new(no_idle(), clock.at(0.0));
        c.hello(clock.at(0.0), n("alice")).unwrap();
        sent(&mut c);
        c.handle_input(
            clock.at(0.1),
            &wire(&[
                ServerFrame::Welcome { name: n("alice") },
                users(true, &["alice", "bob"]),
            ]),
        );
        drain(&mut c);
        c
    }

    #[test]
    fn control_characters_from_the_server_are_shown_escaped_not_fatal() {
        let clock = Clock::new();
        let mut c = registered(&clock);
        let mut bytes = Vec::new();
        crate::frame::encode_message(&mut bytes, &n("bob"), b"\x1b[2Jgotcha\x07");
        crate::frame::encode_private(&mut bytes, &n("bob"), b"\xff\xc2\x9b");
        c.handle_input(clock.at(1.0), &bytes);
        assert_eq!(
            drain(&mut c),
            [
                ClientEvent::Message {
                    from: n("bob"),
                    text: t("\\u{1b}[2Jgotcha\\u{7}")
                },
                ClientEvent::Private {
                    from: n("bob"),
                    text: t("\u{fffd}\\u{9b}")
                },
            ]
        );
        assert!(!c.is_closed());
    }

    #[test]
    fn a_roster_that_never_ends_is_refused_at_the_bound() {
        let clock = Clock::new();
        let mut c = registered(&clock);
        let mut name_index = 0usize;
        let mut frames = 0;
        while !c.is_closed() {
            let batch: Vec<String> = (0..400)
                .map(|_| {
                    name_index += 1;
                    format!("u{name_index}")
                })
                .collect();
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            c.handle_input(clock.at(1.0), &wire(&[users(false, &refs)]));
            frames += 1;
            assert!(frames <= MAX_ROSTER / 400 + 1, "never refused");
        }
        assert!(drain(&mut c).contains(&ClientEvent::Closed {
            reason: CloseReason::ProtocolError(ProtocolError::RosterTooLarge)
        }));
    }

    #[test]
    fn handshake_sends_exact_hello_and_registers_on_welcome() {
        let clock = Clock::new();
        let mut c = Client::new(ClientConfig::default(), clock.at(0.0));
        assert!(c.outbound().is_empty(), "nothing is sent before hello");
        assert_eq!(c.name(), None);
        c.hello(clock.at(1.0), n("alice")).unwrap();
        assert!(c.is_hello_pending());
        assert_eq!(sent(&mut c), b"\x00\x00\x00\x08\x01\x01\x05alice");
        c.handle_input(
            clock.at(1.1),
            &wire(&[
                ServerFrame::Welcome { name: n("alice") },
                users(true, &["bob", "alice"]),
            ]),
        );
        assert_eq!(
            drain(&mut c),
            [
                ClientEvent::Welcome { name: n("alice") },
                ClientEvent::Roster {
                    names: names(&["alice", "bob"])
                },
            ]
        );
        assert_eq!(c.name(), Some(n("alice")));
        assert!(!c.is_hello_pending());
        assert_eq!(roster(&c), ["alice", "bob"]);
        assert_eq!(
            c.hello(clock.at(2.0), n("other")),
            Err(UsageError::AlreadyRegistered)
        );
        assert!(c.outbound().is_empty());
    }

    #[test]
    fn name_taken_and_name_invalid_allow_another_hello() {
        let clock = Clock::new();
        let mut c = Client::new(no_idle(), clock.at(0.0));
        c.hello(clock.at(0.0), n("alice")).unwrap();
        assert_eq!(
            c.hello(clock.at(0.0), n("alice2")),
            Err(UsageError::HelloPending)
        );
        assert_eq!(
            sent(&mut c),
            ClientFrame::Hello { name: n("alice") }.to_bytes()
        );
        let taken = ServerFrame::Error {
            code: ErrorCode::NameTaken,
            detail: "name taken".into(),
        };
        c.handle_input(clock.at(0.1), &wire(&[taken]));
        assert_eq!(
            drain(&mut c),
            [ClientEvent::Error {
                code: ErrorCode::NameTaken,
                detail: "name taken".into()
            }]
        );
        assert_eq!(c.name(), None);

        c.hello(clock.at(1.0), n("Alice_2")).unwrap();
        assert_eq!(sent(&mut c), b"\x00\x00\x00\x0a\x01\x01\x07Alice_2");
        let invalid = ServerFrame::Error {
            code: ErrorCode::NameInvalid,
            detail: String::new(),
        };
        c.handle_input(clock.at(1.1), &wire(&[invalid]));
        assert!(matches!(
            drain(&mut c).as_slice(),
            [ClientEvent::Error {
                code: ErrorCode::NameInvalid,
                ..
            }]
        ));

        c.hello(clock.at(2.0), n("alice3")).unwrap();
        assert_eq!(
            sent(&mut c),
            ClientFrame::Hello { name: n("alice3") }.to_bytes()
        );
        c.handle_input(
            clock.at(2.1),
            &wire(&[
                ServerFrame::Welcome { name: n("alice3") },
                users(true, &["alice3"]),
            ]),
        );
        assert_eq!(drain(&mut c).len(), 2);
        assert_eq!(c.name(), Some(n("alice3")));
    }

    #[test]
    fn other_errors_do_not_reset_a_pending_hello() {
        let clock = Clock::new();
        let mut c = Client::new(no_idle(), clock.at(0.0));
        c.hello(clock.at(0.0), n("alice")).unwrap();
        let not_registered = ServerFrame::Error {
            code: ErrorCode::NotRegistered,
            detail: "send HELLO first".into(),
        };
        c.handle_input(clock.at(0.1), &wire(&[not_registered]));
        assert_eq!(drain(&mut c).len(), 1);
        assert!(c.is_hello_pending());
    }

    #[test]
    fn a_roster_in_several_users_frames_is_one_event_at_the_last() {
        let clock = Clock::new();
        let mut c = Client::new(no_idle(), clock.at(0.0));
        c.hello(clock.at(0.0), n("alice")).unwrap();
        c.handle_input(
            clock.at(0.1),
            &wire(&[
                ServerFrame::Welcome { name: n("alice") },
                users(false, &["dave", "alice"]),
            ]),
        );
        assert_eq!(drain(&mut c), [ClientEvent::Welcome { name: n("alice") }]);
        assert_eq!(roster(&c), Vec::<String>::new(), "no roster until last = 1");
        c.handle_input(clock.at(0.2), &wire(&[users(false, &[])]));
        assert_eq!(drain(&mut c), []);
        c.handle_input(clock.at(0.3), &wire(&[users(true, &["Carol", "bob"])]));
        assert_eq!(
            drain(&mut c),
            [ClientEvent::Roster {
                names: names(&["alice", "bob", "Carol", "dave"])
            }]
        );
        assert_eq!(roster(&c), ["alice", "bob", "Carol", "dave"]);
    }

    #[test]
    fn a_roster_too_big_for_one_frame_arrives_whole() {
        let clock = Clock::new();
        let mut c = registered(&clock);
        let big: Vec<Name> = (0..1500)
            .map(|i| n(&format!("{i:0>width$}", width = MAX_NAME)))
            .collect();
        let mut bytes = Vec::new();
        encode_roster(&mut bytes, &big);
        assert!(bytes.len() > 3 * crate::MAX_FRAME, "several USERS frames");
        c.who(clock.at(1.0)).unwrap();
        assert_eq!(sent(&mut c), b"\x00\x00\x00\x01\x04");
        c.handle_input(clock.at(1.1), &bytes);
        let events = drain(&mut c);
        assert_eq!(events.len(), 1);
        let ClientEvent::Roster { names } = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(names.len(), 1500);
        assert_eq!(c.roster().count(), 1500);
    }

    #[test]
    fn every_display_event_and_the_bytes_of_each_intent() {
        let clock = Clock::new();
        let mut c = registered(&clock);
        c.say(clock.at(1.0), t("hello all")).unwrap();
        assert_eq!(sent(&mut c), b"\x00\x00\x00\x0a\x02hello all");
        c.whisper(clock.at(1.0), n("bob"), t("psst")).unwrap();
        assert_eq!(sent(&mut c), b"\x00\x00\x00\x09\x03\x03bobpsst");
        c.who(clock.at(1.0)).unwrap();
        assert_eq!(sent(&mut c), b"\x00\x00\x00\x01\x04");
        assert_eq!(
            drain(&mut c),
            [ClientEvent::PrivateSent {
                to: n("bob"),
                text: t("psst")
            }]
        );

        let script = [
            ServerFrame::Message {
                from: n("alice"),
                text: t("hello all"),
            },
            ServerFrame::Private {
                from: n("bob"),
                text: t("hi there"),
            },
            ServerFrame::Joined { name: n("carol") },
            ServerFrame::Left {
                name: n("bob"),
                reason: Reason::Timeout,
            },
            ServerFrame::Error {
                code: ErrorCode::NoSuchUser,
                detail: "no such user".into(),
            },
            users(true, &["alice", "carol"]),
        ];
        c.handle_input(clock.at(2.0), &wire(&script));
        assert_eq!(
            drain(&mut c),
            [
                ClientEvent::Message {
                    from: n("alice"),
                    text: t("hello all")
                },
                ClientEvent::Private {
                    from: n("bob"),
                    text: t("hi there")
                },
                ClientEvent::Joined { name: n("carol") },
                ClientEvent::Left {
                    name: n("bob"),
                    reason: Reason::Timeout
                },
                ClientEvent::Error {
                    code: ErrorCode::NoSuchUser,
                    detail: "no such user".into()
                },
                ClientEvent::Roster {
                    names: names(&["alice", "carol"])
                },
            ]
        );
        assert!(c.outbound().is_empty(), "display frames need no answer");
    }

    #[test]
    fn joined_and_left_update_the_roster_and_who_replaces_it() {
        let clock = Clock::new();
        let mut c = registered(&clock);
        c.handle_input(
            clock.at(1.0),
            &wire(&[
                ServerFrame::Joined { name: n("Zed") },
                ServerFrame::Joined { name: n("carol") },
                ServerFrame::Left {
                    name: n("BOB"),
                    reason: Reason::Quit,
                },
            ]),
        );
        assert_eq!(roster(&c), ["alice", "carol", "Zed"]);
        // Leaving under another case is the same user; unknown names are harmless.
        c.handle_input(
            clock.at(1.1),
            &wire(&[ServerFrame::Left {
                name: n("nobody"),
                reason: Reason::Disconnected,
            }]),
        );
        assert_eq!(roster(&c), ["alice", "carol", "Zed"]);
        c.handle_input(clock.at(2.0), &wire(&[users(true, &["alice", "eve"])]));
        assert_eq!(roster(&c), ["alice", "eve"]);
        assert_eq!(drain(&mut c).len(), 5);
    }

    #[test]
    fn ping_is_answered_with_the_same_token_and_no_event() {
        let clock = Clock::new();
        let mut c = Client::new(no_idle(), clock.at(0.0));
        c.handle_input(
            clock.at(30.0),
            &wire(&[ServerFrame::Ping {
                token: 0x0102_0304_0506_0708,
            }]),
        );
        assert_eq!(
            sent(&mut c),
            b"\x00\x00\x00\x09\x06\x01\x02\x03\x04\x05\x06\x07\x08"
        );
        assert_eq!(drain(&mut c), []);
        // A PONG from the server answers nothing we sent: ignored.
        c.handle_input(clock.at(31.0), &wire(&[ServerFrame::Pong { token: 9 }]));
        assert_eq!(drain(&mut c), []);
        assert!(c.outbound().is_empty());
    }

    #[test]
    fn a_ping_flood_the_program_cannot_write_stays_bounded() {
        let clock = Clock::new();
        let mut c = Client::new(no_idle(), clock.at(0.0));
        let pings = wire(&vec![ServerFrame::Ping { token: 1 }; 20_000]);
        c.handle_input(clock.at(1.0), &pings);
        assert!(c.outbound().len() <= PONG_BACKLOG_LIMIT + 13);
        assert!(c.outbound().len() >= PONG_BACKLOG_LIMIT);
        // Once written, PINGs are answered again.
        sent(&mut c);
        c.handle_input(clock.at(2.0), &wire(&[ServerFrame::Ping { token: 2 }]));
        assert_eq!(sent(&mut c), ClientFrame::Pong { token: 2 }.to_bytes());
    }

    #[test]
    fn partial_writes_keep_order_and_drained_output_frees_memory() {
        let clock = Clock::new();
        let mut c = Client::new(no_idle(), clock.at(0.0));
        c.hello(clock.at(0.0), n("alice")).unwrap();
        c.who(clock.at(0.0)).unwrap();
        let mut expected = ClientFrame::Hello { name: n("alice") }.to_bytes();
        expected.extend(ClientFrame::Who.to_bytes());
        let mut written = Vec::new();
        while !c.outbound().is_empty() {
            written.push(c.outbound()[0]);
            c.handle_written(1);
        }
        assert_eq!(written, expected);
        assert_eq!(c.outbox.capacity(), 0);
        c.handle_written(100); // over-reporting is clamped, not a panic
        assert!(c.outbound().is_empty());
    }

    #[test]
    fn idle_exit_fires_at_the_deadline_and_user_input_postpones_it() {
        let clock = Clock::new();
        let config = ClientConfig::default();
        assert_eq!(config.idle_exit, Some(Duration::from_secs(60)));
        let mut c = Client::new(config, clock.at(0.0));
        assert_eq!(c.poll_timeout(), Some(clock.at(60.0)));
        c.handle_timeout(clock.at(59.999));
        assert_eq!(drain(&mut c), []);

        c.hello(clock.at(10.0), n("alice")).unwrap();
        sent(&mut c);
        assert_eq!(c.poll_timeout(), Some(clock.at(70.0)));
        c.handle_timeout(clock.at(60.0));
        assert_eq!(drain(&mut c), [], "hello was user activity");

        // Server traffic is not user activity.
        c.handle_input(
            clock.at(65.0),
            &wire(&[
                ServerFrame::Welcome { name: n("alice") },
                users(true, &["alice"]),
                ServerFrame::Ping { token: 1 },
            ]),
        );
        drain(&mut c);
        sent(&mut c);
        assert_eq!(c.poll_timeout(), Some(clock.at(70.0)));

        // A refused intent is still the user at the keyboard.
        assert_eq!(
            c.hello(clock.at(69.0), n("alice")),
            Err(UsageError::AlreadyRegistered)
        );
        assert_eq!(c.poll_timeout(), Some(clock.at(129.0)));
        c.handle_timeout(clock.at(128.9));
        assert_eq!(drain(&mut c), []);
        assert!(c.outbound().is_empty());

        c.handle_timeout(clock.at(129.0));
        assert_eq!(drain(&mut c), [ClientEvent::IdleExit]);
        assert_eq!(sent(&mut c), b"\x00\x00\x00\x01\x07");
        assert!(c.is_quitting());
        // Now only the quit linger is pending.
        assert_eq!(c.poll_timeout(), Some(clock.at(130.0)));
        c.handle_timeout(clock.at(129.5));
        assert_eq!(drain(&mut c), [], "idle exit fires once");
        assert_eq!(c.say(clock.at(129.5), t("late")), Err(UsageError::Closing));

        c.handle_input(
            clock.at(129.8),
            &wire(&[ServerFrame::Bye {
                reason: Reason::Quit,
                detail: String::new(),
            }]),
        );
        assert_eq!(
            drain(&mut c),
            [ClientEvent::Closed {
                reason: CloseReason::Quit
            }]
        );
    }

    #[test]
    fn idle_exit_can_be_disabled_and_huge_values_do_not_overflow() {
        let clock = Clock::new();
        let mut c = Client::new(no_idle(), clock.at(0.0));
        assert_eq!(c.poll_timeout(), None);
        c.handle_timeout(clock.at(1e6));
        assert_eq!(drain(&mut c), []);
        let huge = ClientConfig {
            idle_exit: Some(Duration::MAX),
            quit_linger: Duration::MAX,
        };
        let mut c = Client::new(huge, clock.at(0.0));
        assert_eq!(c.poll_timeout(), None);
        c.handle_timeout(clock.at(1e6));
        assert_eq!(drain(&mut c), []);
    }

    #[test]
    fn a_quit_the_server_never_answers_closes_after_the_linger() {
        let clock = Clock::new();
        let mut c = registered(&clock);
        c.quit(clock.at(1.0));
        sent(&mut c);
        assert_eq!(
            c.poll_timeout(),
            Some(clock.at(2.0)),
            "one second of linger"
        );
        c.handle_timeout(clock.at(1.999));
        assert!(!c.is_closed());
        c.handle_timeout(clock.at(2.0));
        assert_eq!(
            drain(&mut c),
            [ClientEvent::Closed {
                reason: CloseReason::Quit
            }]
        );
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn quit_sends_bye_and_closes_after_the_servers_bye() {
        let clock = Clock::new();
        let mut c = registered(&clock);
        c.quit(clock.at(1.0));
        c.quit(clock.at(1.0)); // harmless twice
        assert_eq!(sent(&mut c), b"\x00\x00\x00\x01\x07");
        assert!(c.is_quitting());
        assert_eq!(c.say(clock.at(1.1), t("x")), Err(UsageError::Closing));
        assert_eq!(c.who(clock.at(1.1)), Err(UsageError::Closing));
        assert!(c.outbound().is_empty());

        // Frames already on their way are still shown; PINGs no longer answered.
        let mut bytes = wire(&[
            ServerFrame::Message {
                from: n("bob"),
                text: t("bye alice"),
            },
            ServerFrame::Ping { token: 3 },
            ServerFrame::Bye {
                reason: Reason::Quit,
                detail: String::new(),
            },
        ]);
        bytes.extend(b"ignored after BYE");
        c.handle_input(clock.at(1.2), &bytes);
        assert_eq!(
            drain(&mut c),
            [
                ClientEvent::Message {
                    from: n("bob"),
                    text: t("bye alice")
                },
                ClientEvent::Closed {
                    reason: CloseReason::Quit
                },
            ]
        );
        assert!(c.outbound().is_empty());
        assert!(c.is_closed());
        assert_eq!(c.poll_timeout(), None);
        c.handle_input(
            clock.at(2.0),
            &wire(&[ServerFrame::Joined { name: n("x") }]),
        );
        c.handle_eof(clock.at(2.0));
        c.quit(clock.at(2.0));
        assert_eq!(c.say(clock.at(2.0), t("x")), Err(UsageError::Closed));
        assert_eq!(drain(&mut c), []);
        assert!(c.outbound().is_empty());
    }

    #[test]
    fn quit_then_end_of_stream_is_a_quit_and_a_crossing_shutdown_is_reported() {
        let clock = Clock::new();
        let mut c = registered(&clock);
        c.quit(clock.at(1.0));
        c.handle_eof(clock.at(1.1));
        assert_eq!(
            drain(&mut c),
            [ClientEvent::Closed {
                reason: CloseReason::Quit
            }]
        );

        let mut c = registered(&clock);
        c.quit(clock.at(1.0));
        let shutdown = ServerFrame::Bye {
            reason: Reason::Shutdown,
            detail: "server shutting down".into(),
        };
        c.handle_input(clock.at(1.1), &wire(&[shutdown]));
        assert_eq!(
            drain(&mut c),
            [ClientEvent::Closed {
                reason: CloseReason::ServerBye {
                    reason: Reason::Shutdown,
                    detail: "server shutting down".into()
                }
            }]
        );
    }

    #[test]
    fn server_bye_closes_with_its_reason_and_drops_unsent_output() {
        let clock = Clock::new();
        let mut c = Client::new(ClientConfig::default(), clock.at(0.0));
        c.hello(clock.at(0.0), n("alice")).unwrap();
        let full = ServerFrame::Bye {
            reason: Reason::ServerFull,
            detail: "server full".into(),
        };
        c.handle_input(clock.at(0.1), &wire(&[full]));
        assert_eq!(
            drain(&mut c),
            [ClientEvent::Closed {
                reason: CloseReason::ServerBye {
                    reason: Reason::ServerFull,
                    detail: "server full".into()
                }
            }]
        );
        assert!(c.outbound().is_empty());
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn end_of_stream_without_bye_is_disconnected_and_inside_a_frame_a_protocol_error() {
        let clock = Clock::new();
        let mut c = registered(&clock);
        c.handle_eof(clock.at(1.0));
        assert_eq!(
            drain(&mut c),
            [ClientEvent::Closed {
                reason: CloseReason::Disconnected
            }]
        );
        assert!(c.is_closed());
        c.handle_eof(clock.at(1.0));
        assert_eq!(drain(&mut c), [], "Closed once");

        let mut c = registered(&clock);
        let bytes = wire(&[ServerFrame::Joined { name: n("bob") }]);
        c.handle_input(clock.at(1.0), &bytes[..5]);
        c.handle_eof(clock.at(1.1));
        assert_eq!(
            drain(&mut c),
            [ClientEvent::Closed {
                reason: CloseReason::ProtocolError(ProtocolError::Frame(FrameError::Truncated {
                    buffered: 5
                }))
            }]
        );
    }

    #[test]
    fn garbage_closes_with_a_typed_protocol_error() {
        use crate::frame::Malformed;
        use crate::name::NameError;
        let clock = Clock::new();
        let cases: Vec<(Vec<u8>, ProtocolError)> = vec![
            (
                vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
                ProtocolError::Frame(FrameError::TooLong(u32::MAX)),
            ),
            (
                vec![0, 0, 0, 0],
                ProtocolError::Frame(FrameError::ZeroLength),
            ),
            (
                b"\x00\x00\x00\x01\x99".to_vec(),
                ProtocolError::Decode(Malformed::UnknownOp(0x99).into()),
            ),
            // A frame only clients send.
            (
                ClientFrame::Hello { name: n("alice") }.to_bytes(),
                ProtocolError::Decode(Malformed::WrongDirection(0x01).into()),
            ),
            (
                b"\x00\x00\x00\x05\x85\x03a b".to_vec(),
                ProtocolError::Decode(NameError::BadByte(b' ').into()),
            ),
            (
                b"\x00\x00\x00\x03\x81\x02\x01".to_vec(),
                ProtocolError::Decode(Malformed::UnsupportedVersion(2).into()),
            ),
            (
                b"\x00\x00\x00\x02\x05\x01".to_vec(),
                ProtocolError::Decode(
                    Malformed::Truncated {
                        op: "PING",
                        field: "token",
                    }
                    .into(),
                ),
            ),
        ];
        for (bytes, error) in cases {
            let mut c = registered(&clock);
            c.say(clock.at(1.0), t("unsent")).unwrap();
            // A good frame before the garbage still counts.
            let mut stream = wire(&[ServerFrame::Joined { name: n("carol") }]);
            stream.extend(&bytes);
            c.handle_input(clock.at(1.0), &stream);
            assert_eq!(
                drain(&mut c),
                [
                    ClientEvent::Joined { name: n("carol") },
                    ClientEvent::Closed {
                        reason: CloseReason::ProtocolError(error)
                    }
                ],
                "{bytes:?}"
            );
            assert!(c.is_closed());
            assert!(c.outbound().is_empty());
            c.handle_input(
                clock.at(2.0),
                &wire(&[ServerFrame::Joined { name: n("x") }]),
            );
            c.handle_eof(clock.at(2.0));
            assert_eq!(drain(&mut c), []);
        }
    }

    #[test]
    fn odd_but_well_formed_frames_are_tolerated() {
        let clock = Clock::new();
        let mut c = Client::new(no_idle(), clock.at(0.0));
        // Before any HELLO: shown as they come.
        let early = [
            ServerFrame::Message {
                from: n("bob"),
                text: t("early"),
            },
            ServerFrame::Joined { name: n("bob") },
        ];
        c.handle_input(clock.at(0.1), &wire(&early));
        assert_eq!(drain(&mut c).len(), 2);
        assert_eq!(roster(&c), ["bob"]);
        c.hello(clock.at(1.0), n("alice")).unwrap();
        c.handle_input(
            clock.at(1.1),
            &wire(&[
                ServerFrame::Welcome { name: n("alice") },
                ServerFrame::Welcome { name: n("mallory") },
            ]),
        );
        assert_eq!(drain(&mut c), [ClientEvent::Welcome { name: n("alice") }]);
        assert_eq!(c.name(), Some(n("alice")));
        assert!(!c.is_closed());
    }

    /// A long session script: every server frame kind but BYE, PINGs among them.
    fn session() -> Vec<u8> {
        wire(&[
            ServerFrame::Error {
                code: ErrorCode::NameTaken,
                detail: "name taken".into(),
            },
            ServerFrame::Welcome { name: n("alice") },
            users(false, &["alice", "bob"]),
            users(true, &["carol"]),
            ServerFrame::Ping { token: u64::MAX },
            ServerFrame::Message {
                from: n("bob"),
                text: t("héllo ✓\tworld\nline two"),
            },
            ServerFrame::Private {
                from: n("carol"),
                text: t("secret"),
            },
            ServerFrame::Joined { name: n("dave") },
            ServerFrame::Left {
                name: n("bob"),
                reason: Reason::SlowConsumer,
            },
            ServerFrame::Pong { token: 7 },
            ServerFrame::Ping { token: 42 },
            users(true, &[]),
        ])
    }

    /// Feeds `chunks` to a client that sent HELLO, writing its output after
    /// each, then ends the stream. Returns the events and everything written.
    /// (Output still queued when the client closes is dropped, so only runs
    /// that close at the end of stream write the same whatever the cuts.)
    fn run(chunks: &[&[u8]]) -> (Vec<ClientEvent>, Vec<u8>) {
        let clock = Clock::new();
        let mut c = Client::new(no_idle(), clock.at(0.0));
        c.hello(clock.at(0.0), n("alice")).unwrap();
        sent(&mut c);
        let mut out = Vec::new();
        for chunk in chunks {
            c.handle_input(clock.at(1.0), chunk);
            out.extend(sent(&mut c));
        }
        c.handle_eof(clock.at(2.0));
        (drain(&mut c), out)
    }

    #[test]
    fn byte_by_byte_gives_the_same_events_and_output() {
        let stream = session();
        let whole = run(&[stream.as_slice()]);
        assert_eq!(whole.0.len(), 9);
        assert_eq!(
            whole.0.last(),
            Some(&ClientEvent::Closed {
                reason: CloseReason::Disconnected
            })
        );
        let mut pongs = ClientFrame::Pong { token: u64::MAX }.to_bytes();
        pongs.extend(ClientFrame::Pong { token: 42 }.to_bytes());
        assert_eq!(whole.1, pongs);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(&bytes), whole);
        let threes: Vec<&[u8]> = stream.chunks(3).collect();
        assert_eq!(run(&threes), whole);

        // Ended by the server's BYE instead: the same events, however cut.
        let mut stream = stream;
        let bye = ServerFrame::Bye {
            reason: Reason::Shutdown,
            detail: "bye ✓".into(),
        };
        bye.encode(&mut stream).unwrap();
        let whole = run(&[stream.as_slice()]).0;
        assert_eq!(
            whole.last(),
            Some(&ClientEvent::Closed {
                reason: CloseReason::ServerBye {
                    reason: Reason::Shutdown,
                    detail: "bye ✓".into()
                }
            })
        );
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(&bytes).0, whole);
    }

    #[test]
    fn the_fuzz_driver_runs_clean_on_a_session() {
        let mut script = Vec::new();
        // Hello, then the whole session in 32-byte input steps.
        script.push(6); // intent 0: hello
        for chunk in session().chunks(32) {
            script.push(((chunk.len() - 1) as u8) << 3);
            script.extend(chunk);
        }
        fuzzing::drive(Instant::now(), &script);
    }

    fn arb_name() -> impl Strategy<Value = Name> {
        "[A-Za-z0-9_-]{1,32}".prop_map(|s| n(&s))
    }

    fn arb_text() -> impl Strategy<Value = Text> {
        "[a-zA-Z0-9 \t\né✓]{1,40}".prop_map(|s| t(&s))
    }

    fn arb_reason() -> impl Strategy<Value = Reason> {
        (0u8..7).prop_map(|r| Reason::from_u8(r).unwrap())
    }

    fn arb_frame() -> impl Strategy<Value = ServerFrame> {
        prop_oneof![
            any::<u64>().prop_map(|token| ServerFrame::Ping { token }),
            any::<u64>().prop_map(|token| ServerFrame::Pong { token }),
            arb_name().prop_map(|name| ServerFrame::Welcome { name }),
            (1u8..7, "[a-z ]{0,10}").prop_map(|(code, detail)| ServerFrame::Error {
                code: ErrorCode::from_u8(code).unwrap(),
                detail
            }),
            (arb_name(), arb_text()).prop_map(|(from, text)| ServerFrame::Message { from, text }),
            (arb_name(), arb_text()).prop_map(|(from, text)| ServerFrame::Private { from, text }),
            arb_name().prop_map(|name| ServerFrame::Joined { name }),
            (arb_name(), arb_reason())
                .prop_map(|(name, reason)| ServerFrame::Left { name, reason }),
            (any::<bool>(), prop::collection::vec(arb_name(), 0..5))
                .prop_map(|(last, names)| ServerFrame::Users { last, names }),
            (arb_reason(), "[a-z ]{0,10}")
                .prop_map(|(reason, detail)| ServerFrame::Bye { reason, detail }),
        ]
    }

    /// Cuts `bytes` at the given points (taken modulo its length).
    fn cut<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for p in points {
            chunks.push(&bytes[start..p]);
            start = p;
        }
        chunks.push(&bytes[start..]);
        chunks
    }

    /// Checks the event stream: exactly one Closed (EOF ends every run), last.
    fn assert_closed_once_and_last(events: &[ClientEvent]) {
        let closed = events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Closed { .. }))
            .count();
        assert_eq!(closed, 1, "{events:?}");
        assert!(matches!(events.last(), Some(ClientEvent::Closed { .. })));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_in_arbitrary_chunks_never_panic_and_close_once(
            bytes in prop::collection::vec(any::<u8>(), 0..600),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            let chunks = cut(&bytes, &cuts);
            let (events, _) = run(&chunks);
            assert_closed_once_and_last(&events);
            // Cut differently, the same bytes mean the same thing.
            prop_assert_eq!(run(&[bytes.as_slice()]).0, events);
        }

        #[test]
        fn valid_streams_mean_the_same_however_cut_even_with_a_corrupt_byte(
            frames in prop::collection::vec(arb_frame(), 0..25),
            cuts in prop::collection::vec(any::<usize>(), 0..30),
            corrupt in prop::option::of((any::<usize>(), any::<u8>())),
        ) {
            let mut bytes = wire(&frames);
            if let Some((at, value)) = corrupt {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = value;
                }
            }
            let whole = run(&[bytes.as_slice()]).0;
            assert_closed_once_and_last(&whole);
            prop_assert_eq!(run(&cut(&bytes, &cuts)).0, whole);
        }

        #[test]
        fn fuzz_driver_holds_its_invariants(
            script in prop::collection::vec(any::<u8>(), 0..800),
        ) {
            fuzzing::drive(Instant::now(), &script);
        }
    }
}
