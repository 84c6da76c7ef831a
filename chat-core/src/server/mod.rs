//! [`Server`]: the whole server side of the protocol as a sans-IO state machine.
//!
//! The runtime owns sockets and the clock; the server owns every decision.
//!
//! # Driving loop
//!
//! Feed whatever happened, then drain every output until it is empty:
//!
//! 1. Inputs: [`handle_accept`](Server::handle_accept),
//!    [`handle_input`](Server::handle_input), [`handle_eof`](Server::handle_eof),
//!    [`handle_io_error`](Server::handle_io_error),
//!    [`handle_written`](Server::handle_written),
//!    [`handle_timeout`](Server::handle_timeout), [`shutdown`](Server::shutdown).
//!    Each takes `now`, which must never go backwards. A runtime that copies
//!    queued bytes to write them later (on another thread, into TLS records)
//!    says so with [`handle_taken`](Server::handle_taken).
//! 2. Outputs, in this order: [`poll_transmit`](Server::poll_transmit) (which
//!    connections have new bytes; write [`outbound`](Server::outbound) and report
//!    with `handle_written`, until `outbound` is empty or the socket is full),
//!    [`poll_event`](Server::poll_event) (close sockets, resume reading, log
//!    joins and departures), and [`poll_timeout`](Server::poll_timeout) (when
//!    to call `handle_timeout` next; it may already have passed, when paused
//!    input is ready to run: call `handle_timeout` without sleeping). Read
//!    from a connection only while [`wants_read`](Server::wants_read) says
//!    so, at most one bounded read per call of `handle_input`.
//!
//! A runtime's whole job, by hand:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use chat_core::{ClientFrame, ServerEvent, Name, Reason, Server, ServerConfig, ServerFrame};
//! use chat_core::codec::Deframer;
//!
//! let mut server = Server::new(ServerConfig::default());
//! let start = Instant::now();
//!
//! // A socket was accepted, and its first read carried a HELLO.
//! let conn = server.handle_accept(start);
//! let hello = ClientFrame::Hello { name: Name::new("alice").unwrap() };
//! server.handle_input(start, conn, &hello.to_bytes());
//!
//! // Drain: write what is queued until nothing is left (here the socket
//! // takes everything it is given).
//! let mut wire = Vec::new();
//! while let Some(ready) = server.poll_transmit() {
//!     loop {
//!         let bytes = server.outbound(ready);
//!         if bytes.is_empty() {
//!             break;
//!         }
//!         wire.extend_from_slice(bytes);
//!         let written = bytes.len();
//!         server.handle_written(start, ready, written);
//!     }
//! }
//! let mut deframer = Deframer::new();
//! let mut input = wire.as_slice();
//! let first = deframer.next_frame(&mut input).unwrap().unwrap();
//! assert!(matches!(ServerFrame::decode(first), Ok(ServerFrame::Welcome { .. })));
//! assert!(matches!(server.poll_event(), Some(ServerEvent::Joined { .. })));
//!
//! // Sleep until the next deadline: here the one-second check on the warm
//! // buffer pool, well before the first ping (30 s of silence).
//! let deadline = server.poll_timeout().unwrap();
//! assert_eq!(deadline, start + Duration::from_secs(1));
//!
//! // The peer hangs up: the core asks for the socket to be closed.
//! server.handle_eof(start, conn);
//! assert!(matches!(
//!     server.poll_event(),
//!     Some(ServerEvent::Left { reason: Reason::Disconnected, .. })
//! ));
//! assert!(matches!(server.poll_event(), Some(ServerEvent::Close { conn: c, .. }) if c == conn));
//! ```
//!
//! # Congestion
//!
//! Version 1 has no rate limit, so the server paces senders to their readers:
//!
//! - **Per frame, not per read.** Before a SAY, WHISPER or HELLO is acted on,
//!   the server checks its delivery against every recipient. If it would
//!   push a recipient that is still reading past half the output limit, the
//!   frame and the rest of that read are kept (unconsumed) and the sender's
//!   input pauses: [`wants_read`](Server::wants_read) turns false. Once that
//!   reader has drained to a quarter of the limit (or stalled, or left), the
//!   kept input runs again at the next [`handle_timeout`](Server::handle_timeout)
//!   (after the runtime's writes), and [`ServerEvent::Resume`] follows when all of
//!   it was acted on. How much one read carries does not matter.
//! - **Paced to the slowest reader still making progress.** A reader that
//!   has had output queued without taking any of it for
//!   [`stall_grace`](ServerConfig::stall_grace) holds nobody back: it is
//!   dropped (`LEFT(SLOW_CONSUMER)`) when a frame would take its queue past
//!   `max_outbound`. A reader that keeps reading is never dropped because of
//!   how fast others send.
//! - **Waiting is not silence.** While a connection's input waits for
//!   another reader, its handshake, ping and idle timers are suspended (the
//!   server is not reading it); its silence counts from when it is read.
//! - **A connection's own requests.** Input is not acted on while the
//!   connection's own queue is at least half the limit, so a client that
//!   pipelines requests faster than it reads the answers is slowed, not
//!   dropped. Replies to its own requests never drop it: pausing bounds them.
//! - **Frames nobody asked for** (LEFT, PING) are never held back: they drop
//!   a recipient whose non-empty queue they would take past the limit.
//!
//! # Invariants
//!
//! - Every departure of a registered user (BYE, end of stream, I/O error,
//!   timeout, protocol error, slow consumer) sends `LEFT` with its reason to every
//!   remaining user exactly once, and frees the name at once.
//! - Exactly one [`ServerEvent::Close`] is emitted per connection; after it the
//!   [`ConnId`] is dead and every call with it is ignored.
//! - Queued output per connection stays within `max_outbound`, except that a
//!   reader with nothing queued always takes the next frame, and replies to
//!   a connection's own requests may take it one reply past half the limit.
//! - Every frame broadcast is encoded once per wire format, into a feed
//!   shared by its channel's members (the lobby has one per wire format;
//!   every other channel one of IRC lines): a message to 1,000 users is
//!   stored once and written to each socket straight from the feed. A
//!   stream reads one feed; a member reading another gets the line by
//!   reference (see `fanout.rs`). A connection's own frames
//!   are interleaved with its part of the feed in the order they were queued,
//!   and nothing is copied out of the feed (see `outbound.rs`), with one
//!   bounded exception below.
//! - Memory for queued output is the feeds (each at most `max_outbound`, what
//!   its slowest remaining reader has not read; a stream reads one feed, so
//!   there are no more feeds with unread bytes than readers) plus each connection's own
//!   frames: dropping a reader that is far behind frees its share at once,
//!   whatever the number of stalled readers. The exception: an IRC reader
//!   dropped while its runtime holds bytes of its queue
//!   ([`handle_taken`](Server::handle_taken): a writer thread's chunk, a TLS
//!   batch) keeps a copy of those bytes and of the line they end in, so that
//!   its `ERROR` follows them whole; that is at most what the runtime itself
//!   holds for it (64 KiB, 16 KiB over TLS) plus one line, until its linger
//!   ends. Per connection, input holds one unfinished frame plus one read.
//!   Drained buffers are given back.

// Where each concern lives: `config` (settings), `event` (handles and
// events), `outbound` (streams, the shared feed, buffers), `congestion`
// (admission, pausing, resuming), `requests` (acting on a client frame),
// `timers` (deadlines); this file owns the connection table, the public
// driving API and the queuing of output.
mod config;
mod congestion;
mod event;
mod fanout;
mod irc;
mod outbound;
mod requests;
mod timers;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};
use std::io::IoSlice;
use std::time::Instant;

use crate::channel::{Channel, Channels};
use crate::codec::{Deframer, HEADER_LEN, RawFrame};
use crate::frame::{self, ErrorCode, RawClientFrame, Reason};
use crate::name::Name;
use crate::presence::Presence;
use crate::text::validate_text;

pub use config::{ConfigError, IrcConfig, ServerConfig};
pub use event::{ConnId, ServerEvent};
use irc::IrcConn;
use outbound::{BufferPool, FeedId, FeedReaders, Feeds, LineId, Queue, Stream};

/// The wire format a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The native binary protocol (`PROTOCOL.md`).
    Native,
    /// IRC (`IRC.md`).
    Irc,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Irc => "irc",
        })
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Connected, no successful HELLO yet.
    AwaitingHello,
    /// Registered under a name.
    Registered(Name),
    /// Flushing its last bytes; input is ignored. Closed when the output drains
    /// or at `deadline`.
    Closing {
        deadline: Option<Instant>,
        reason: Reason,
    },
}

/// Why a connection's input is paused.
#[derive(Debug, Clone, Copy)]
struct Pause {
    /// The reader whose queue is too long (maybe the connection itself).
    blocker: ConnId,
    /// The blocker is another connection: this one is not read because
    /// others are slow, so its own silence timers are suspended.
    on_others: bool,
    /// When the blocker would count as stalled if it takes nothing meanwhile.
    recheck_at: Option<Instant>,
}

#[derive(Debug)]
struct Conn {
    phase: Phase,
    deframer: Deframer,
    /// IRC's state, for a connection accepted as IRC.
    irc: Option<Box<IrcConn>>,
    stream: Stream,
    connected_at: Instant,
    last_received: Instant,
    /// PINGs sent since the last byte arrived.
    pings_sent: u32,
    /// The deadline of this connection's live entry in the timer heap.
    timer: Option<Instant>,
    /// Counted against `max_clients` (rejected connections are not).
    counted: bool,
    /// Listed in `transmits` (or named by `poll_transmit`) since its queue was
    /// last empty.
    announced: bool,
    /// Listed in the `idle` readers of `idle_feed`.
    idle_listed: bool,
    /// The feed whose idle readers list it, if `idle_listed`.
    idle_feed: FeedId,
    /// Listed in its feed's `held` readers.
    held_listed: bool,
    /// Listed in `resumable`.
    resumable_listed: bool,
    /// Listed in `Server::waiting`.
    waiting_listed: bool,
    /// Its queue passed the limit; it is dropped at the next reaping.
    doomed: bool,
    /// Bytes at the front of its queue the runtime holds to write later
    /// (see [`Server::handle_taken`]).
    taken: usize,
    /// Its key in `Server::load`, while it receives broadcasts.
    load_key: Option<(FeedId, i128)>,
    /// When it last took output, or when its queue last became non-empty.
    progress_at: Instant,
    /// Its input waits (kept in its deframer) until a reader drains.
    paused: Option<Pause>,
    /// Some connection's input waits for this one to drain.
    has_waiters: bool,
    /// The stream ended while input was paused: it departs once that input ran.
    eof_pending: bool,
}

impl Conn {
    fn name(&self) -> Option<Name> {
        match self.phase {
            Phase::Registered(name) => Some(name),
            _ => None,
        }
    }

    fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing { .. })
    }

    /// Output queued but held back by the server (presence in a storm).
    fn is_held(&self) -> bool {
        self.held_listed && !self.announced
    }
}

/// The lobby's roster as USERS frames, extended as members join.
#[derive(Debug)]
struct LobbyRoster {
    frames: frame::RosterFrames,
    /// How many of the lobby's members it lists (the first ones).
    members: usize,
    /// [`Channels::lobby_departures`] when it was begun: any departure
    /// since makes it stale.
    departures: u64,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// The server state machine. See the [module docs](self) for the driving loop.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Connections counted against `max_clients`.
    open: usize,
    /// Live connections, rejected ones included.
    live: usize,
    /// Every registered name, both protocols.
    presence: Presence<ConnId>,
    /// The most names registered at once (LUSERS 265/266).
    max_users: usize,
    /// Channels, the lobby among them (every native user is in it).
    channels: Channels<ConnId>,
    /// By channel key: how its IRC members get its lines (see [`fanout`]).
    channel_feeds: std::collections::HashMap<String, fanout::ChannelFeed>,
    /// Recent departures, for `WHOWAS`.
    whowas: VecDeque<irc::Gone>,
    /// IRC operators online.
    opers_online: usize,
    /// IRC users online with `+i` (LUSERS counts them apart).
    invisible_online: usize,
    /// An instant and the Unix time at it, if the runtime gave one.
    wall_clock: Option<(Instant, u64)>,
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    events: VecDeque<ServerEvent>,
    /// Connections whose queue went from empty to non-empty.
    transmits: Queue,
    /// Per feed (by [`FeedId::index`]), its readers not listed in `transmits`.
    readers: Vec<FeedReaders>,
    doomed: Vec<ConnId>,
    /// A frame encoded once before it is queued (a broadcast).
    scratch: Vec<u8>,
    /// The lobby's roster as last sent, to extend rather than rebuild.
    roster: Option<LobbyRoster>,
    feeds: Feeds,
    /// Every connection receiving broadcasts, by `Stream::load_key` (which
    /// may overstate a queue, never understate it: see `queues_over`): the
    /// first entries have the longest queues.
    load: BTreeSet<(FeedId, i128, ConnId)>,
    /// Connections that still read a feed up to a stop: closing ones (a
    /// member that leaves a channel takes its unread part along instead).
    closing_readers: Vec<ConnId>,
    /// Connections whose input is paused (some entries stale).
    waiting: Vec<ConnId>,
    /// Paused connections to try again at the next `handle_timeout`.
    resumable: Queue,
    /// When `resumable` was filled: `handle_timeout` is due.
    resume_due: Option<Instant>,
    pool: BufferPool,
    /// When [`handle_timeout`](Self::handle_timeout) should look at the pool.
    pool_check: Option<Instant>,
    next_ping_token: u64,
    shutting_down: bool,
}

/// The live connection `id` names, if any. A free function so that callers
/// can borrow other fields of the server alongside it.
fn live_conn(slots: &mut [Slot], id: ConnId) -> Option<&mut Conn> {
    slots
        .get_mut(id.index())
        .filter(|s| s.generation == id.generation)
        .and_then(|s| s.conn.as_mut())
}

/// The readers of `feed` that are idle or held.
fn readers_of(readers: &mut Vec<FeedReaders>, feed: FeedId) -> &mut FeedReaders {
    let index = feed.index();
    if index >= readers.len() {
        readers.resize_with(index + 1, FeedReaders::default);
    }
    #[allow(clippy::indexing_slicing)] // in bounds: resized just above
    &mut readers[index]
}

/// Lists `id`, whose queue is empty, among the idle readers of `feed`, the
/// feed it receives. Listed in another feed's (one it left), it is taken
/// out of that list first: one flag says whether it is listed, so it must
/// be listed in one feed's at most. (Today's callers never get there: a
/// stream leaves a feed only after its own PART, KICK or QUIT went into
/// it, and that broadcast empties the feed's idle list. The check keeps a
/// new way of leaving from losing wake-ups silently.)
fn list_idle(readers: &mut Vec<FeedReaders>, id: ConnId, conn: &mut Conn, feed: FeedId) {
    if conn.idle_listed && conn.idle_feed != feed {
        readers_of(readers, conn.idle_feed).idle.remove(id);
        conn.idle_listed = false;
    }
    conn.idle_feed = feed;
    readers_of(readers, feed)
        .idle
        .push(id, &mut conn.idle_listed);
}

/// Announces every reader `readers` holds (those still queued and not
/// announced meanwhile), and ends the hold.
///
/// Their queues count as new from `now`: the runtime could not write them
/// before, so their stall grace starts here.
fn release_held(
    now: Instant,
    readers: &mut FeedReaders,
    slots: &mut [Slot],
    feeds: &Feeds,
    transmits: &mut Queue,
) {
    readers.hold = None;
    while let Some(id) = readers.held.pop() {
        let Some(conn) = live_conn(slots, id) else {
            continue;
        };
        if conn.is_held() && conn.stream.queued(feeds) > 0 {
            conn.progress_at = now;
            transmits.push(id, &mut conn.announced);
        }
        conn.held_listed = false;
    }
}

/// The earlier of two optional deadlines (`None` is never).
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How a departing connection goes.
enum Farewell<'a> {
    /// Queue `BYE(reason, detail)`, then close once it is flushed.
    Bye(&'a str),
    /// No BYE, but what is queued is still written before a graceful close
    /// (within the linger): a peer that ended its half of the stream may
    /// still be reading the answers to what it sent before.
    Flush,
    /// Close at once, discarding queued output.
    Abort,
}

/// What a frame queued for one connection may do to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// An answer to the connection's own request: never drops it (pausing
    /// its input bounds these).
    Reply,
    /// Anything else: drops it if its non-empty queue would pass the limit.
    Unasked,
    /// Its BYE: always queued.
    Farewell,
}

/// What a broadcast carries, for holding presence in a storm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broadcast {
    /// A join to or departure from the lobby: may wait for more.
    Presence,
    /// Anything else: written at once, with any presence held before it.
    Message,
}

/// Whether a request was acted on, or must wait for a reader to drain.
enum Flow {
    Done,
    Wait(ConnId),
}

impl Server {
    /// A server with no connections.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            channels: Channels::new(config.irc.lobby.clone()),
            config,
            slots: Vec::new(),
            free: Vec::new(),
            open: 0,
            live: 0,
            presence: Presence::default(),
            max_users: 0,
            channel_feeds: std::collections::HashMap::new(),
            whowas: VecDeque::new(),
            opers_online: 0,
            invisible_online: 0,
            wall_clock: None,
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            transmits: Queue::default(),
            readers: Vec::new(),
            doomed: Vec::new(),
            scratch: Vec::new(),
            roster: None,
            feeds: Feeds::default(),
            load: BTreeSet::new(),
            closing_readers: Vec::new(),
            waiting: Vec::new(),
            resumable: Queue::default(),
            resume_due: None,
            pool: BufferPool::default(),
            pool_check: None,
            next_ping_token: 1,
            shutting_down: false,
        }
    }

    // ----- getters -----

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Live connections (until their [`ServerEvent::Close`]), rejected ones included.
    pub fn connection_count(&self) -> usize {
        self.live
    }

    /// Registered users.
    pub fn registered_count(&self) -> usize {
        self.presence.len()
    }

    /// The registered names, in no particular order.
    pub fn names(&self) -> &[Name] {
        self.presence.names()
    }

    /// The members of `channel` (any case), for checks against what they
    /// were told.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn channel_member_names(&self, channel: &str) -> Vec<Name> {
        crate::channel::ChannelName::new(channel)
            .ok()
            .and_then(|name| self.channels.get(&name))
            .map(|c| {
                c.members()
                    .iter()
                    .filter_map(|m| self.name_of(m.id))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The lobby's members (every native user, and the IRC users who joined
    /// it), in the order they joined: what a native WHO lists.
    pub fn lobby_names(&self) -> Vec<Name> {
        self.channels
            .get(self.channels.lobby())
            .map(|lobby| {
                lobby
                    .members()
                    .iter()
                    .filter_map(|m| self.name_of(m.id))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The wire format `conn` speaks, while it lives.
    pub fn protocol(&self, conn: ConnId) -> Option<Protocol> {
        self.conn(conn).map(|c| match c.irc {
            Some(_) => Protocol::Irc,
            None => Protocol::Native,
        })
    }

    /// The name `conn` registered, if any.
    pub fn name_of(&self, conn: ConnId) -> Option<Name> {
        self.conn(conn).and_then(Conn::name)
    }

    /// Bytes queued for `conn` that the runtime has not written yet. Write them
    /// and report how many went out with [`handle_written`](Self::handle_written).
    ///
    /// This may be only the first part of what is queued (the connection's
    /// own frames and its part of the broadcast feed, interleaved): after a
    /// full write, call it again until it is empty.
    pub fn outbound(&self, conn: ConnId) -> &[u8] {
        self.conn(conn)
            .map_or(&[], |c| c.stream.outbound(&self.feeds))
    }

    /// [`outbound`](Self::outbound) and what follows it, for one vectored
    /// write (`write_vectored`): fills `bufs` with up to `bufs.len()` runs
    /// of what is queued for `conn`, in order, and returns how many it
    /// filled (0: nothing queued). Report what the write took with
    /// [`handle_written`](Self::handle_written), wherever it ended.
    ///
    /// A connection's own frames and its part of the broadcast feed
    /// alternate in its queue: a newcomer's WELCOME and the joins after it
    /// are two runs, which one vectored write sends in one system call.
    pub fn outbound_vectored<'a>(&'a self, conn: ConnId, bufs: &mut [IoSlice<'a>]) -> usize {
        let Some(c) = self.conn(conn) else {
            return 0;
        };
        let mut filled = 0;
        let mut slots = bufs.iter_mut();
        c.stream.chunks(&self.feeds, |run| match slots.next() {
            Some(slot) => {
                *slot = IoSlice::new(run);
                filled += 1;
                true
            }
            None => false,
        });
        filled
    }

    /// Bytes queued for `conn` in all, not yet written.
    pub fn queued(&self, conn: ConnId) -> usize {
        self.conn(conn).map_or(0, |c| c.stream.queued(&self.feeds))
    }

    /// Whether the runtime should read from `conn` now. False while the
    /// connection is closing or its input is paused (see the module docs on
    /// congestion); [`ServerEvent::Resume`] says when it turns true again.
    ///
    /// A runtime MUST NOT read from a connection while this is false, except
    /// at most one more read that was already under way: input handed over
    /// while paused is kept in full, so ignoring this would let one client
    /// grow the server's memory without bound.
    pub fn wants_read(&self, conn: ConnId) -> bool {
        self.conn(conn)
            .is_some_and(|c| !c.is_closing() && !c.doomed && c.paused.is_none())
    }

    /// Output queued for every connection together, not yet written (each
    /// connection's share of the feed counted for it). O(number of
    /// connections): for monitoring, not for every turn.
    pub fn queued_bytes(&self) -> usize {
        self.conns().map(|c| c.stream.queued(&self.feeds)).sum()
    }

    /// Bytes of queued output the server actually holds: each shared feed
    /// once, every line shared by several queues once, plus every
    /// connection's own frames. O(number of connections).
    ///
    /// A feed may also keep bytes every reader has already passed, up to
    /// 64 KiB or as much as it still has unread, until moving them out is
    /// worth it; they are counted here, since they take memory.
    pub fn output_memory(&self) -> usize {
        self.feeds.len() + self.conns().map(|c| c.stream.own_len()).sum::<usize>()
    }

    /// Checks that every stored shared line is held exactly by the queues
    /// it is in (no line kept for nobody, none freed while queued).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn check_shared_lines(&self) {
        let mut held = std::collections::BTreeMap::new();
        for line in self.conns().flat_map(|c| c.stream.shared_lines()) {
            *held.entry(line).or_insert(0) += 1;
        }
        assert_eq!(
            held,
            self.feeds.lines.holders(),
            "shared lines and their holders"
        );
    }

    /// The part of [`output_memory`](Self::output_memory) that every reader
    /// has passed, after checking that each feed keeps no more of it than the
    /// compaction rule allows.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn checked_read_prefix(&self) -> usize {
        self.feeds
            .each()
            .map(|feed| {
                let read = feed.read_prefix();
                let unread = feed.len() - read;
                assert!(
                    read < outbound::COMPACT_AT.max(unread),
                    "a feed keeps {read} read bytes before {unread} unread"
                );
                read
            })
            .sum()
    }

    /// Capacity of drained output buffers kept warm for reuse. The pool is
    /// freed once it has gone unused for a second; a runtime that sees this
    /// drop to zero may ask its allocator to give the memory back to the system.
    pub fn pooled_bytes(&self) -> usize {
        self.pool.bytes()
    }

    /// Heap bytes held for `conn`'s own buffers (input and output). Zero for an
    /// idle connection whose output has been written.
    pub fn buffer_capacity(&self, conn: ConnId) -> usize {
        self.conn(conn).map_or(0, |c| {
            c.deframer.capacity()
                + c.stream.capacity()
                + c.irc.as_ref().map_or(0, |irc| irc.capacity())
        })
    }

    /// Whether `conn` has output queued that [`poll_transmit`](Self::poll_transmit)
    /// has not named because it is presence waiting for more (see
    /// [`presence_batch`](ServerConfig::presence_batch)): it is named by
    /// the [`handle_timeout`](Self::handle_timeout) that
    /// [`poll_timeout`](Self::poll_timeout) asks for, or sooner. Writing it
    /// earlier does no harm.
    pub fn holds_presence(&self, conn: ConnId) -> bool {
        self.conn(conn).is_some_and(|c| {
            c.is_held()
                && c.stream
                    .feed_id()
                    .and_then(|feed| self.readers_ref(feed))
                    .is_some_and(|readers| readers.hold.is_some())
        })
    }

    /// Whether `conn` is saying goodbye: its last output (a BYE, or after
    /// an end of stream what was queued) is being written, its input is
    /// ignored, and it is closed once flushed or after `linger`.
    pub fn is_closing(&self, conn: ConnId) -> bool {
        self.conn(conn).is_some_and(Conn::is_closing)
    }

    /// Whether [`shutdown`](Self::shutdown) was called and every connection has
    /// since been closed: the runtime can exit.
    pub fn is_shut_down(&self) -> bool {
        self.shutting_down && self.connection_count() == 0
    }

    // ----- handle_* (inputs) -----

    /// A new connection was accepted. The server may refuse it at once (server
    /// full or shutting down): it then queues a BYE and closes it when flushed.
    pub fn handle_accept(&mut self, now: Instant) -> ConnId {
        self.accept(now, None)
    }

    /// A new connection was accepted on the IRC listener: it speaks IRC
    /// (`IRC.md`), with the same limits and timers. Refused like
    /// [`handle_accept`](Self::handle_accept), with an IRC `ERROR`.
    pub fn handle_accept_irc(&mut self, now: Instant) -> ConnId {
        self.accept(now, Some(Box::default()))
    }

    /// Tells the server the wall-clock time (seconds since the Unix epoch)
    /// at `now`, for what IRC shows as dates (`TIME`, topic times). The core
    /// reads no clock; without this, dates count from zero.
    pub fn set_wall_clock(&mut self, now: Instant, unix_seconds: u64) {
        self.wall_clock = Some((now, unix_seconds));
    }

    fn accept(&mut self, now: Instant, irc: Option<Box<IrcConn>>) -> ConnId {
        let id = self.allocate(now);
        if let Some(conn) = self.conn_mut(id) {
            conn.irc = irc;
        }
        if self.shutting_down {
            self.depart(
                now,
                id,
                Reason::Shutdown,
                Farewell::Bye("server shutting down"),
            );
        } else if self.open >= self.config.max_clients {
            self.depart(now, id, Reason::ServerFull, Farewell::Bye("server full"));
        } else {
            self.open += 1;
            if let Some(conn) = self.conn_mut(id) {
                conn.counted = true;
            }
            self.schedule(id);
        }
        id
    }

    /// The runtime cannot serve `conn` after all (it could not get a thread
    /// or memory for it): it is refused like a connection over
    /// `max_clients`, with `BYE(SERVER_FULL)`, and its place is freed at once.
    pub fn reject(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conn_mut(conn) else { return };
        if c.is_closing() {
            return;
        }
        if std::mem::take(&mut c.counted) {
            self.open -= 1;
        }
        self.depart(now, conn, Reason::ServerFull, Farewell::Bye("server full"));
        self.reap(now);
    }

    /// Bytes arrived on `conn`. Every complete frame is acted on in order,
    /// unless the connection's input is paused: the rest then waits, kept
    /// here, until readers drain (see the module docs on congestion).
    pub fn handle_input(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(c) = self.conn_mut(conn) else { return };
        if c.is_closing() || bytes.is_empty() {
            return;
        }
        c.last_received = now;
        c.pings_sent = 0;
        self.process(now, conn, bytes);
        self.reap(now);
    }

    /// The peer ended its stream (a read returned 0). Mid-frame or not, a
    /// connection that had not said BYE is gone: `LEFT(DISCONNECTED)`, once
    /// any input it sent before and that is paused has been acted on. What
    /// is queued for it is still written (a half-closed peer reads on), then
    /// it is closed gracefully; a connection already closing keeps flushing
    /// its BYE.
    pub fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conn_mut(conn) else { return };
        if c.is_closing() {
            return;
        }
        if c.paused.is_some() {
            c.eof_pending = true;
            return;
        }
        self.depart(now, conn, Reason::Disconnected, Farewell::Flush);
        self.reap(now);
    }

    /// Reading or writing `conn` failed (reset, broken pipe): it is closed at once.
    pub fn handle_io_error(&mut self, now: Instant, conn: ConnId) {
        let reason = match self.conn(conn).map(|c| c.phase) {
            None => return,
            Some(Phase::Closing { reason, .. }) => reason,
            Some(_) => Reason::Disconnected,
        };
        self.depart(now, conn, reason, Farewell::Abort);
        self.reap(now);
    }

    /// The runtime holds the first `n` bytes of `conn`'s queue (from
    /// [`outbound`](Self::outbound)) to write later: a copy for a blocking
    /// write on another thread, plaintext being sealed into TLS records.
    /// They stay queued until [`handle_written`](Self::handle_written)
    /// reports them; if `conn` is dropped as a slow consumer meanwhile they
    /// are kept, so that a farewell queued after them (an IRC `ERROR`)
    /// comes after them, whole. Each call replaces the last; a runtime that
    /// writes what it takes at once need not call it.
    pub fn handle_taken(&mut self, conn: ConnId, n: usize) {
        if let Some(c) = live_conn(&mut self.slots, conn) {
            c.taken = n;
        }
    }

    /// The runtime wrote `n` bytes of [`outbound`](Self::outbound) for `conn`.
    pub fn handle_written(&mut self, now: Instant, conn: ConnId, n: usize) {
        let low_water = self.pace() / 2;
        let Self {
            slots,
            feeds,
            pool,
            readers,
            ..
        } = self;
        let Some(c) = live_conn(slots, conn) else {
            return;
        };
        let before = c.stream.queued(feeds);
        c.stream.consume(n, feeds, pool);
        c.taken = c.taken.saturating_sub(n);
        let after = c.stream.queued(feeds);
        if after < before {
            c.progress_at = now;
        }
        if after == 0 {
            c.announced = false;
            if let (true, Some(feed)) = (c.stream.receiving(), c.stream.feed_id()) {
                list_idle(readers, conn, c, feed);
            }
        }
        let closing = c.is_closing();
        let wake = c.has_waiters && after <= low_water;
        // No `reindex`: the reader moved forward, so its key now overstates
        // its queue, which `queues_over` corrects when it matters.
        if closing && after == 0 {
            let reason = self.closing_reason(conn);
            self.release(now, conn, reason, true);
        } else if wake {
            self.wake_waiters(now, conn);
        }
        self.reap(now);
    }

    /// Time passed: runs paused input whose readers drained, and fires every
    /// handshake, ping, idle and linger deadline that is due. Calling it early
    /// or often is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        for feed in [FeedId::Native, FeedId::Irc] {
            let batch = self.config.presence_batch;
            if self
                .readers_ref(feed)
                .and_then(|readers| readers.hold_due(batch))
                .is_some_and(|due| due <= now)
            {
                self.release_hold(now, feed);
            }
        }
        if self.resume_due.is_some_and(|due| due <= now) {
            self.resume_due = None;
            self.resume_paused(now);
        }
        while let Some(Reverse((deadline, id))) = self.timers.peek().copied() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let Some(conn) = self.conn_mut(id) else {
                continue;
            };
            if conn.timer != Some(deadline) {
                continue; // superseded by an earlier entry
            }
            conn.timer = None;
            self.fire_timers(now, id);
            self.reap(now);
        }
        if self.live == 0 {
            // Nobody to serve: keep no warm buffers.
            self.pool = BufferPool::default();
        }
        self.pool_check = self.pool.trim(now);
    }

    /// Starts a graceful shutdown: every connection gets `BYE(SHUTDOWN)` and is
    /// closed once flushed, or after `linger` at the latest. Connections
    /// accepted afterwards are refused the same way.
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        let ids: Vec<ConnId> = self.live_ids().collect();
        for &id in &ids {
            if let Some(name) = self.name_of(id) {
                self.events.push_back(ServerEvent::Left {
                    conn: id,
                    name,
                    reason: Reason::Shutdown,
                });
            }
            // Everyone leaves at once: no LEFT notices among them.
            if let Some(conn) = self.conn_mut(id) {
                if !conn.is_closing() {
                    conn.phase = Phase::AwaitingHello;
                }
            }
        }
        self.presence.clear();
        self.channels = Channels::new(self.config.irc.lobby.clone());
        self.roster = None;
        self.clear_channel_feeds();
        for id in ids {
            if self.conn(id).is_some_and(|c| !c.is_closing()) {
                self.depart(
                    now,
                    id,
                    Reason::Shutdown,
                    Farewell::Bye("server shutting down"),
                );
            }
        }
        self.reap(now);
    }

    // ----- poll_* (outputs) -----

    /// The next connection whose queue went from empty to non-empty. Edge
    /// triggered: a connection is named once, then the runtime writes its
    /// [`outbound`](Self::outbound) bytes (when the socket is writable) until
    /// that is empty.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<ConnId> {
        while let Some(id) = self.transmits.pop() {
            let Self { slots, feeds, .. } = self;
            let Some(conn) = live_conn(slots, id) else {
                continue;
            };
            if conn.stream.queued(feeds) > 0 {
                return Some(id);
            }
            conn.announced = false;
        }
        None
    }

    /// The next event for the runtime.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next;
    /// `None` when no deadline is pending. May be earlier than needed, and may
    /// already have passed (paused input is ready to run): then call
    /// `handle_timeout` at once.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((deadline, _))| *deadline);
        let batch = self.config.presence_batch;
        let holds = self.readers.iter().filter_map(|r| r.hold_due(batch)).min();
        earliest(
            earliest(timer, self.pool_check),
            earliest(self.resume_due, holds),
        )
    }

    // ----- internals: connections -----

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.slots
            .get(id.index())
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.conn.as_ref())
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        live_conn(&mut self.slots, id)
    }

    /// The readers of `feed` that are idle or held.
    fn readers_ref(&self, feed: FeedId) -> Option<&FeedReaders> {
        self.readers.get(feed.index())
    }

    fn conns(&self) -> impl Iterator<Item = &Conn> + '_ {
        self.slots.iter().filter_map(|slot| slot.conn.as_ref())
    }

    fn live_ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            slot.conn.as_ref().map(|_| ConnId {
                index: index as u32,
                generation: slot.generation,
            })
        })
    }

    fn allocate(&mut self, now: Instant) -> ConnId {
        let conn = Conn {
            phase: Phase::AwaitingHello,
            deframer: Deframer::new(),
            irc: None,
            stream: Stream::default(),
            connected_at: now,
            last_received: now,
            pings_sent: 0,
            timer: None,
            counted: false,
            announced: false,
            idle_listed: false,
            idle_feed: FeedId::Native,
            held_listed: false,
            resumable_listed: false,
            waiting_listed: false,
            doomed: false,
            taken: 0,
            load_key: None,
            progress_at: now,
            paused: None,
            has_waiters: false,
            eof_pending: false,
        };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot::default());
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.live += 1;
        let slot = self.slots.get_mut(index as usize);
        debug_assert!(slot.is_some(), "a slot that was just pushed or freed");
        let generation = slot.map_or(0, |slot| {
            slot.conn = Some(conn);
            slot.generation
        });
        ConnId { index, generation }
    }

    /// Emits the close event and frees the slot.
    fn release(&mut self, now: Instant, id: ConnId, reason: Reason, graceful: bool) {
        self.wake_waiters(now, id);
        self.leave_load(id);
        let Self {
            slots, feeds, pool, ..
        } = self;
        let Some(slot) = slots
            .get_mut(id.index())
            .filter(|s| s.generation == id.generation)
        else {
            return;
        };
        let Some(mut conn) = slot.conn.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        conn.stream.discard(feeds, pool);
        self.closing_readers.retain(|&c| c != id);
        self.free.push(id.index);
        self.live -= 1;
        if conn.counted {
            self.open -= 1;
        }
        self.events.push_back(ServerEvent::Close {
            conn: id,
            reason,
            graceful,
        });
    }

    fn closing_reason(&self, id: ConnId) -> Reason {
        match self.conn(id).map(|c| c.phase) {
            Some(Phase::Closing { reason, .. }) => reason,
            _ => Reason::Disconnected,
        }
    }

    /// Removes `id` from the roster (telling the others), then says goodbye.
    fn depart(&mut self, now: Instant, id: ConnId, reason: Reason, farewell: Farewell<'_>) {
        let Self {
            slots, feeds, pool, ..
        } = self;
        let Some(conn) = live_conn(slots, id) else {
            return;
        };
        let name = conn.name();
        let irc = conn.irc.is_some();
        let was_closing = conn.is_closing();
        conn.phase = Phase::AwaitingHello;
        conn.paused = None;
        // An IRC client dropped as a slow consumer is told why: what was
        // queued for it goes, its ERROR is queued instead (once: a
        // connection already closing that fails is closed).
        let farewell = match farewell {
            Farewell::Abort if irc && reason == Reason::SlowConsumer && !was_closing => {
                conn.doomed = false;
                conn.stream.discard_after_line(feeds, pool, conn.taken);
                Farewell::Bye("")
            }
            other => other,
        };
        // Out of the feed before the LEFT: a connection saying goodbye still
        // gets what was queued for it, then its BYE.
        match farewell {
            Farewell::Bye(_) | Farewell::Flush => conn.stream.stop_receiving(feeds),
            Farewell::Abort => conn.stream.discard(feeds, pool),
        }
        self.leave_load(id);
        self.wake_waiters(now, id);
        if let Some(name) = name {
            let detail = match farewell {
                Farewell::Bye(detail) => detail,
                Farewell::Flush | Farewell::Abort => "",
            };
            self.announce_departure(now, id, name, reason, detail);
            self.presence.remove(&name);
            self.events.push_back(ServerEvent::Left {
                conn: id,
                name,
                reason,
            });
        }
        match farewell {
            Farewell::Abort => self.release(now, id, reason, false),
            Farewell::Flush
                if self
                    .conn(id)
                    .is_some_and(|c| !c.doomed && c.stream.queued(&self.feeds) == 0) =>
            {
                self.release(now, id, reason, true);
            }
            Farewell::Bye(_) | Farewell::Flush => {
                let deadline = now.checked_add(self.config.linger);
                let Some(conn) = live_conn(&mut self.slots, id) else {
                    return;
                };
                conn.phase = Phase::Closing { deadline, reason };
                conn.deframer = Deframer::new();
                // Listed only now: the LEFT above must not close it early.
                if conn.stream.in_feed() {
                    self.closing_readers.push(id);
                }
                if conn.doomed {
                    self.release(now, id, reason, false);
                    return;
                }
                let Farewell::Bye(detail) = farewell else {
                    self.schedule(id);
                    return;
                };
                self.send(now, id, Delivery::Farewell, |out| {
                    if irc {
                        crate::irc::write_text_message(
                            out,
                            None,
                            "ERROR",
                            &[&irc::error_text(reason, detail)],
                        );
                    } else {
                        frame::encode_bye(out, reason, detail);
                    }
                });
                self.schedule(id);
            }
        }
    }

    /// Drops every connection found over its output limit, telling the others.
    /// Dropping one sends LEFT, which may push more over: loop until none is left.
    fn reap(&mut self, now: Instant) {
        while let Some(id) = self.doomed.pop() {
            self.depart(now, id, Reason::SlowConsumer, Farewell::Abort);
        }
        self.prune_timers();
        if self.pool_check.is_none() {
            // Buffers came back after the last look (a burst drained): look
            // again, or a server that falls silent keeps them forever.
            self.pool_check = self.pool.trim(now);
        }
    }

    /// Drops everything queued for `id` and marks it for reaping as a slow
    /// consumer. Its share of the feed is simply let go; an IRC connection
    /// keeps what its runtime holds and the line begun (see the module doc).
    fn doom(&mut self, now: Instant, id: ConnId) {
        self.wake_waiters(now, id);
        self.leave_load(id);
        let Self {
            slots,
            feeds,
            pool,
            doomed,
            ..
        } = self;
        if let Some(conn) = live_conn(slots, id) {
            if !conn.doomed {
                conn.doomed = true;
                if conn.irc.is_some() {
                    // Its ERROR follows: what the runtime holds and a line
                    // half written come first.
                    conn.stream.discard_after_line(feeds, pool, conn.taken);
                } else {
                    conn.stream.discard(feeds, pool);
                }
                doomed.push(id);
            }
        }
    }

    // ----- internals: output -----

    /// Queues one frame for one connection.
    fn send(
        &mut self,
        now: Instant,
        id: ConnId,
        delivery: Delivery,
        encode: impl FnOnce(&mut Vec<u8>),
    ) {
        self.queue(now, id, delivery, |stream, feeds, pool| {
            stream.push_own(feeds, pool, encode);
        });
    }

    /// Queues a line stored once for several connections: each queue holds
    /// it, none copies it.
    fn send_shared(&mut self, now: Instant, id: ConnId, delivery: Delivery, line: LineId) {
        self.queue(now, id, delivery, |stream, feeds, _| {
            stream.push_shared(feeds, line);
        });
    }

    /// Queues what `push` adds to one connection's stream, then drops a
    /// reader it takes too far past the limit, or names it for writing.
    fn queue(
        &mut self,
        now: Instant,
        id: ConnId,
        delivery: Delivery,
        push: impl FnOnce(&mut Stream, &mut Feeds, &mut BufferPool),
    ) {
        let max = self.config.max_outbound;
        let Self {
            slots, feeds, pool, ..
        } = self;
        let Some(conn) = live_conn(slots, id) else {
            return;
        };
        if conn.doomed || (conn.is_closing() && delivery != Delivery::Farewell) {
            return;
        }
        let before = conn.stream.queued(feeds);
        push(&mut conn.stream, feeds, pool);
        let after = conn.stream.queued(feeds);
        if delivery == Delivery::Unasked
            && before > 0
            && after > max
            && self.overflows(id, before, after - before, now)
        {
            self.doom(now, id);
            return;
        }
        let Some(conn) = live_conn(&mut self.slots, id) else {
            return;
        };
        if before == 0 || conn.is_held() {
            conn.progress_at = now;
        }
        // A held reader too: its presence goes with this frame.
        self.transmits.push(id, &mut conn.announced);
        self.reindex(id);
    }

    /// Appends `scratch` (one encoded frame) to `feed`, for every
    /// connection receiving it. Never held back: a reader whose non-empty
    /// queue it would take past the limit is dropped first (paced requests
    /// were admitted before they got here, so that only happens to stalled
    /// readers and for frames nobody asked for). Returns where the frame
    /// sits in the feed.
    ///
    /// Presence that follows other presence within
    /// [`presence_batch`](ServerConfig::presence_batch) is held for readers
    /// that had nothing queued: they are announced together when the batch
    /// time is up, when anything else is broadcast or queued for them, or
    /// when the held bytes reach [`hold_limit`](Self::hold_limit).
    fn broadcast(&mut self, now: Instant, feed: FeedId, kind: Broadcast) -> (u64, u64) {
        let len = self.scratch.len();
        let max = self.config.max_outbound;
        let over: Vec<ConnId> = self
            .queues_over(feed, max.saturating_sub(len))
            .into_iter()
            .filter(|&(id, queued)| self.overflows(id, queued, len, now))
            .map(|(id, _)| id)
            .collect();
        for id in over {
            self.doom(now, id);
        }
        self.bound_closing_readers(now, feed, len);
        let batch = self.config.presence_batch;
        let hold_limit = self.hold_limit() as u64;
        let Self {
            feeds,
            scratch,
            readers,
            slots,
            transmits,
            ..
        } = self;
        let from = feeds.get(feed).end();
        feeds.get_mut(feed).append(scratch);
        let to = from + len as u64;
        let readers = readers_of(readers, feed);
        let hold = match kind {
            Broadcast::Presence => {
                let storm = readers
                    .last_presence
                    .and_then(|at| at.checked_add(batch))
                    .is_some_and(|until| now < until);
                readers.last_presence = Some(now);
                let began = readers.hold.map_or(from, |(_, began)| began);
                storm && to - began <= hold_limit
            }
            Broadcast::Message => false,
        };
        if hold && readers.hold.is_none() {
            readers.hold = Some((now.checked_add(batch).unwrap_or(now), from));
        }
        while let Some(id) = readers.idle.pop() {
            let Some(conn) = live_conn(slots, id) else {
                continue;
            };
            if conn.idle_feed != feed {
                continue; // listed in another feed's list since
            }
            conn.idle_listed = false;
            if conn.stream.receiving() && !conn.announced {
                conn.progress_at = now;
                if hold {
                    readers.held.push(id, &mut conn.held_listed);
                } else {
                    transmits.push(id, &mut conn.announced);
                }
            }
        }
        if !hold {
            release_held(now, readers, slots, feeds, transmits);
        }
        (from, to)
    }

    /// The most presence a reader is held with: a quarter of the output
    /// limit (so that held readers never slow a sender down, which happens
    /// at half), and at most 64 KiB.
    fn hold_limit(&self) -> usize {
        (self.config.max_outbound / 4).min(64 * 1024)
    }

    /// Announces every held reader of `feed`.
    fn release_hold(&mut self, now: Instant, feed: FeedId) {
        let Self {
            readers,
            slots,
            feeds,
            transmits,
            ..
        } = self;
        release_held(now, readers_of(readers, feed), slots, feeds, transmits);
    }

    /// Closes (without waiting for their BYE) closing connections so far
    /// behind that `feed` would hold more than the limit for them.
    fn bound_closing_readers(&mut self, now: Instant, feed: FeedId, len: usize) {
        if self.closing_readers.is_empty() {
            return;
        }
        let limit = self.config.max_outbound as u64;
        let end = self.feeds.get(feed).end() + len as u64;
        if self
            .feeds
            .get(feed)
            .slowest()
            .is_none_or(|pos| end - pos <= limit)
        {
            return;
        }
        let behind: Vec<ConnId> = self
            .closing_readers
            .iter()
            .copied()
            .filter(|&id| {
                // Only readers with a stop: one that reads on is paced.
                self.conn(id).is_some_and(|c| {
                    c.stream.feed_id() == Some(feed)
                        && !c.stream.receiving()
                        && c.stream.feed_pos().is_some_and(|pos| end - pos > limit)
                })
            })
            .collect();
        for id in behind {
            if self.conn(id).is_some_and(Conn::is_closing) {
                let reason = self.closing_reason(id);
                self.release(now, id, reason, false);
            } else {
                // Only closing connections read up to a stop (a member that
                // leaves a channel takes its backlog along); were a live one
                // ever to, far behind it is a slow consumer like any other.
                self.doom(now, id);
            }
        }
        let slots = &self.slots;
        self.closing_readers.retain(|&id| {
            slots
                .get(id.index())
                .filter(|s| s.generation == id.generation)
                .and_then(|s| s.conn.as_ref())
                .is_some_and(|c| c.stream.in_feed())
        });
    }

    /// Starts giving `id` every broadcast to `feed` from now on.
    fn subscribe(&mut self, id: ConnId, feed: FeedId) {
        let Self {
            slots,
            feeds,
            readers,
            ..
        } = self;
        let Some(conn) = live_conn(slots, id) else {
            return;
        };
        conn.stream.subscribe(feeds, feed);
        if conn.stream.queued(feeds) == 0 {
            list_idle(readers, id, conn, feed);
        }
        self.reindex(id);
    }

    /// Brings `id`'s entry in `load` up to date with its queue.
    fn reindex(&mut self, id: ConnId) {
        let Some(conn) = live_conn(&mut self.slots, id) else {
            return;
        };
        let key = conn.stream.load_key().filter(|_| !conn.doomed);
        if key == conn.load_key {
            return;
        }
        if let Some((feed, old)) = conn.load_key {
            self.load.remove(&(feed, old, id));
        }
        if let Some((feed, new)) = key {
            self.load.insert((feed, new, id));
        }
        conn.load_key = key;
    }

    fn leave_load(&mut self, id: ConnId) {
        if let Some(conn) = live_conn(&mut self.slots, id) {
            if let Some((feed, old)) = conn.load_key.take() {
                self.load.remove(&(feed, old, id));
            }
        }
    }
}

#[cfg(test)]
mod irc_tests;
#[cfg(test)]
mod tests;
