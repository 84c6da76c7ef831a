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
//!    Each takes `now`, which must never go backwards.
//! 2. Outputs, in this order: [`poll_transmit`](Server::poll_transmit) (which
//!    connections have new bytes; write [`outbound`](Server::outbound) and report
//!    with `handle_written`, until `outbound` is empty or the socket is full),
//!    [`poll_event`](Server::poll_event) (close sockets, resume reading, log
//!    joins and departures), and [`poll_timeout`](Server::poll_timeout) (when
//!    to call `handle_timeout` next). Read from a connection only while
//!    [`wants_read`](Server::wants_read) says so.
//!
//! A runtime's whole job, by hand:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use chat_core::{ClientFrame, Event, Name, Reason, Server, ServerConfig, ServerFrame};
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
//! assert!(matches!(server.poll_event(), Some(Event::Joined { .. })));
//!
//! // Sleep until the next deadline: the handshake is done, so that is the
//! // first ping, 30 s of silence later.
//! let deadline = server.poll_timeout().unwrap();
//! assert!(deadline <= start + Duration::from_secs(30));
//!
//! // The peer hangs up: the core asks for the socket to be closed.
//! server.handle_eof(start, conn);
//! assert!(matches!(
//!     server.poll_event(),
//!     Some(Event::Left { reason: Reason::Disconnected, .. })
//! ));
//! assert!(matches!(server.poll_event(), Some(Event::Close { conn: c, .. }) if c == conn));
//! ```
//!
//! # Invariants
//!
//! - Every departure of a registered user (BYE, end of stream, I/O error,
//!   timeout, protocol error, slow consumer) sends `LEFT` with its reason to every
//!   remaining user exactly once, and frees the name at once.
//! - Exactly one [`Event::Close`] is emitted per connection; after it the
//!   [`ConnId`] is dead and every call with it is ignored.
//! - Queued output per connection never passes `max_outbound` plus one frame:
//!   a connection whose queue would pass it is dropped as a slow consumer. A
//!   connection's input is not processed while its own queue is at least half
//!   the limit ([`wants_read`](Server::wants_read) is false), so a client that
//!   pipelines requests faster than it reads is slowed, not dropped.
//! - While the slowest registered user is half the limit behind on
//!   broadcasts and still reading, each read is followed by a short hold on
//!   that connection's input ([`CONGESTION_HOLD`]): a flooding sender cannot
//!   outrun slower readers and get them dropped. A reader that stopped
//!   ([`STALL_GRACE`]) holds nobody back and is dropped at the limit, so
//!   nobody can stall the room.
//! - Every frame broadcast is encoded once, into a feed shared by every
//!   registered connection: each connection's stream is its own queue followed
//!   by its unread part of the feed, so a message to 1,000 users is stored once
//!   and written to each socket straight from the feed. A private frame first
//!   moves the connection's unread part of the feed into its own queue, so
//!   every connection sees frames in the order they were queued.
//! - Per-connection memory is bounded: one unfinished frame plus one read of
//!   input, and the output limit above. Drained buffers are given back. The
//!   shared feed holds at most `max_outbound` bytes (what the slowest reader
//!   has not read), whatever the number of connections.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use crate::codec::{Deframer, RawFrame};
use crate::frame::{self, ErrorCode, RawClientFrame, Reason};
use crate::name::Name;
use crate::presence::Presence;
use crate::text::validate_text;

/// Server settings. [`Default`] gives the contract's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// A connection without a successful HELLO this long after connecting gets
    /// `BYE(TIMEOUT)`. Default 10 s.
    pub handshake_timeout: Duration,
    /// After this long with nothing received, the server sends PING, and again
    /// after each further interval of silence. Default 30 s.
    pub ping_interval: Duration,
    /// After this long with nothing received, `BYE(TIMEOUT)`. Default 60 s.
    pub idle_timeout: Duration,
    /// Open connections, registered or not. Default 4096.
    pub max_clients: usize,
    /// Output queued for one connection beyond which it is dropped as a slow
    /// consumer. Default 1 MiB.
    pub max_outbound: usize,
    /// How long a closing connection may take to flush its last bytes (its BYE)
    /// before it is closed anyway. Default 1 s.
    pub linger: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_clients: 4096,
            max_outbound: 1 << 20,
            linger: Duration::from_secs(1),
        }
    }
}

/// A handle to one connection. Ids are never reused while the connection lives,
/// and a stale id (after its [`Event::Close`]) is ignored by every method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
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
pub enum Event {
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
    },
    /// Reading from this connection may resume: [`Server::wants_read`] turned
    /// true again (its own output drained below half the limit, or a hold for
    /// congestion ended).
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

/// A one-line description for logs, e.g. `alice left (#3.0): quit`.
impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Close { conn, reason, .. } => write!(f, "closing {conn}: {}", reason.describe()),
            Self::Resume { conn } => write!(f, "reading {conn} again"),
            Self::Joined { conn, name } => write!(f, "{name} joined ({conn})"),
            Self::Left { conn, name, reason } => {
                write!(f, "{name} left ({conn}): {}", reason.describe())
            }
        }
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
    Closing { deadline: Instant, reason: Reason },
}

/// Drained output buffers kept for reuse, so that warm queues do not
/// allocate per delivery. Bounded in total bytes: the pool's memory does not
/// grow with the number of connections, and an idle connection holds nothing.
#[derive(Debug, Default)]
struct BufferPool {
    free: Vec<Vec<u8>>,
    bytes: usize,
    /// Buffers handed out so far; a change means the pool is in use.
    handed_out: u64,
    /// `handed_out` when [`trim`](Self::trim) last looked, and when that was.
    seen: (u64, Option<Instant>),
}

impl BufferPool {
    /// Capacity of a new buffer: a burst of small frames fits without regrowth.
    const INITIAL: usize = 512;
    /// Larger buffers are freed rather than pooled.
    const MAX_BUFFER: usize = 64 * 1024;
    /// Total capacity the pool may hold.
    const MAX_BYTES: usize = 32 * 1024 * 1024;
    /// How long the pool may go unused before it is freed.
    const IDLE: Duration = Duration::from_secs(1);

    fn get(&mut self) -> Vec<u8> {
        self.handed_out += 1;
        match self.free.pop() {
            Some(buf) => {
                self.bytes -= buf.capacity();
                buf
            }
            None => Vec::with_capacity(Self::INITIAL),
        }
    }

    /// Frees the pool once it has gone unused for [`Self::IDLE`]: a server
    /// that went quiet keeps no warm buffers. Returns when to look again.
    fn trim(&mut self, now: Instant) -> Option<Instant> {
        if self.free.is_empty() {
            self.seen = (self.handed_out, None);
            return None;
        }
        match self.seen {
            (seen, Some(since)) if seen == self.handed_out => {
                if now >= since + Self::IDLE {
                    self.free = Vec::new();
                    self.bytes = 0;
                    self.seen.1 = None;
                    return None;
                }
                Some(since + Self::IDLE)
            }
            _ => {
                self.seen = (self.handed_out, Some(now));
                Some(now + Self::IDLE)
            }
        }
    }

    fn put(&mut self, mut buf: Vec<u8>) {
        let capacity = buf.capacity();
        if capacity > 0 && capacity <= Self::MAX_BUFFER && self.bytes + capacity <= Self::MAX_BYTES
        {
            buf.clear();
            self.bytes += capacity;
            self.free.push(buf);
        }
    }
}

/// How long a connection's input is held back after a read that arrived while
/// the feed was congested (see [`Server::wants_read`]).
pub const CONGESTION_HOLD: Duration = Duration::from_millis(20);

/// How long the slowest reader may make no progress before it stops holding
/// senders back (see [`Server::wants_read`]).
pub const STALL_GRACE: Duration = Duration::from_millis(500);

/// Written bytes at the front of an outbox worth moving the rest down for.
const COMPACT_AT: usize = 64 * 1024;

/// Bytes queued for one connection. `buf[sent..]` is what the runtime still
/// has to write.
#[derive(Debug, Default)]
struct Outbox {
    buf: Vec<u8>,
    sent: usize,
}

impl Outbox {
    fn pending(&self) -> &[u8] {
        self.buf.get(self.sent..).unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Makes sure there is a buffer to append to, reusing a pooled one.
    fn ensure(&mut self, pool: &mut BufferPool) -> &mut Vec<u8> {
        if self.buf.capacity() == 0 {
            self.buf = pool.get();
        }
        &mut self.buf
    }

    /// Drops everything queued, giving the buffer to the pool.
    fn discard(&mut self, pool: &mut BufferPool) {
        pool.put(std::mem::take(&mut self.buf));
        self.sent = 0;
    }

    fn consume(&mut self, n: usize, pool: &mut BufferPool) {
        self.sent = (self.sent + n).min(self.buf.len());
        if self.sent == self.buf.len() {
            // An idle connection holds no buffer; the pool keeps it warm
            // for whoever needs one next.
            self.discard(pool);
        } else if self.sent >= COMPACT_AT && self.sent * 2 >= self.buf.len() {
            // A connection that never fully drains must not grow without
            // bound: drop the written half (amortised O(1) per byte).
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
    }
}

/// Broadcast frames not yet taken by every subscriber (every registered
/// connection that is not closing or doomed). A subscriber's unread part is
/// `buf[its position - base..]`, after its own outbox.
#[derive(Debug, Default)]
struct Feed {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// How many subscribers stand at each stream position: the first entry is
    /// the slowest, and everything before it can go.
    positions: BTreeMap<u64, usize>,
    /// Subscribers whose queue emptied since the last append (and new ones):
    /// the next frame makes them ready to transmit again. At most one entry
    /// per connection (`Conn::idle_listed`).
    idle: Vec<ConnId>,
    /// At least the longest outbox of any subscriber, so that one comparison
    /// shows a frame keeps every subscriber within the output limit.
    outbox_high: usize,
}

impl Feed {
    /// A drained feed keeps at most this much capacity.
    const KEEP: usize = 64 * 1024;

    fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    fn unread(&self, pos: u64) -> &[u8] {
        let start = usize::try_from(pos.saturating_sub(self.base)).unwrap_or(usize::MAX);
        self.buf.get(start..).unwrap_or_default()
    }

    fn backlog(&self, pos: u64) -> usize {
        usize::try_from(self.end().saturating_sub(pos)).unwrap_or(usize::MAX)
    }

    /// The unread part of the slowest subscriber.
    fn max_backlog(&self) -> usize {
        self.positions
            .keys()
            .next()
            .map_or(0, |&pos| self.backlog(pos))
    }

    fn enter(&mut self, pos: u64) {
        *self.positions.entry(pos).or_default() += 1;
    }

    fn leave(&mut self, pos: u64) {
        if let Some(count) = self.positions.get_mut(&pos) {
            *count -= 1;
            if *count == 0 {
                self.positions.remove(&pos);
                self.compact();
            }
        }
    }

    /// Drops what every subscriber has read: all of it once the slowest has
    /// caught up, else a large read prefix (amortised O(1) per byte).
    fn compact(&mut self) {
        let slowest = self.positions.keys().next().copied().unwrap_or(self.end());
        let read = usize::try_from(slowest.saturating_sub(self.base))
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        if read == self.buf.len() {
            self.base = self.end();
            self.buf.clear();
            if self.buf.capacity() > Self::KEEP {
                self.buf = Vec::new();
            }
        } else if read >= COMPACT_AT && read * 2 >= self.buf.len() {
            self.buf.drain(..read);
            self.base += read as u64;
        }
    }
}

#[derive(Debug)]
struct Conn {
    phase: Phase,
    deframer: Deframer,
    outbox: Outbox,
    connected_at: Instant,
    last_received: Instant,
    /// PINGs sent since the last byte arrived.
    pings_sent: u32,
    /// The deadline of this connection's live entry in the timer heap.
    timer: Option<Instant>,
    /// Counted against `max_clients` (rejected connections are not).
    counted: bool,
    /// Named by `poll_transmit` since its outbox was last empty.
    announced: bool,
    /// Its queue passed the limit; it is dropped at the next reaping.
    doomed: bool,
    /// Subscribed to the feed: the stream offset up to which it has taken it.
    feed_pos: Option<u64>,
    /// In `Feed::idle`.
    idle_listed: bool,
    /// Its input is held back until then: it sent while the feed was
    /// congested (see [`Server::wants_read`]).
    held_until: Option<Instant>,
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
    presence: Presence<ConnId>,
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    events: VecDeque<Event>,
    transmits: VecDeque<ConnId>,
    doomed: Vec<ConnId>,
    /// A broadcast frame, encoded once before it goes to the feed.
    scratch: Vec<u8>,
    feed: Feed,
    /// Connections whose input is held for congestion (some entries stale).
    held: Vec<ConnId>,
    /// The slowest reader's feed position, and since when it has been there.
    slowest: Option<(u64, Instant)>,
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

/// How a departing connection goes.
enum Farewell<'a> {
    /// Queue `BYE(reason, detail)`, then close once it is flushed.
    Bye(&'a str),
    /// Close at once, discarding queued output.
    Abort,
}

impl Server {
    /// A server with no connections.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            slots: Vec::new(),
            free: Vec::new(),
            open: 0,
            live: 0,
            presence: Presence::default(),
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            doomed: Vec::new(),
            scratch: Vec::new(),
            feed: Feed::default(),
            held: Vec::new(),
            slowest: None,
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

    /// Live connections (until their [`Event::Close`]), rejected ones included.
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

    /// The name `conn` registered, if any.
    pub fn name_of(&self, conn: ConnId) -> Option<Name> {
        self.conn(conn).and_then(Conn::name)
    }

    /// Bytes queued for `conn` that the runtime has not written yet. Write them
    /// and report how many went out with [`handle_written`](Self::handle_written).
    ///
    /// This may be only the first part of what is queued (the connection's
    /// own frames, then its part of the broadcast feed): after a full write,
    /// call it again until it is empty.
    pub fn outbound(&self, conn: ConnId) -> &[u8] {
        let Some(c) = self.conn(conn) else {
            return &[];
        };
        let own = c.outbox.pending();
        match c.feed_pos {
            Some(pos) if own.is_empty() => self.feed.unread(pos),
            _ => own,
        }
    }

    /// Bytes queued for `conn` in all, not yet written.
    pub fn queued(&self, conn: ConnId) -> usize {
        self.conn(conn).map_or(0, |c| self.queued_for(c))
    }

    /// Whether the runtime should read from `conn` now. False while the
    /// connection is closing or its own output is backed up; reading anyway is
    /// allowed but only buffers (one read's worth, which the runtime must not
    /// exceed).
    ///
    /// Also false for a short while ([`CONGESTION_HOLD`]) after a read that
    /// arrived while the feed was congested (the slowest registered user at
    /// least half the output limit behind, and still reading): a client
    /// flooding messages then cannot outrun slower readers and get them
    /// dropped as slow consumers. A reader that made no progress for
    /// [`STALL_GRACE`] holds nobody back, so it reaches the limit and is
    /// dropped as quickly as before. [`Event::Resume`] says when reading may
    /// go on.
    pub fn wants_read(&self, conn: ConnId) -> bool {
        self.conn(conn).is_some_and(|c| {
            !c.is_closing() && !c.doomed && c.held_until.is_none() && !self.is_backed_up(c)
        })
    }

    /// Output queued for every connection together, not yet written (each
    /// connection's share of the feed counted for it). O(number of
    /// connections): for monitoring, not for every turn.
    pub fn queued_bytes(&self) -> usize {
        self.slots
            .iter()
            .filter_map(|slot| slot.conn.as_ref())
            .map(|conn| self.queued_for(conn))
            .sum()
    }

    /// Capacity of drained output buffers kept warm for reuse. The pool is
    /// freed once it has gone unused for a second; a runtime that sees this
    /// drop to zero may ask its allocator to give the memory back to the system.
    pub fn pooled_bytes(&self) -> usize {
        self.pool.bytes
    }

    /// Heap bytes held for `conn`'s own buffers (input and output). Zero for an
    /// idle connection whose output has been written.
    pub fn buffer_capacity(&self, conn: ConnId) -> usize {
        self.conn(conn)
            .map_or(0, |c| c.deframer.capacity() + c.outbox.buf.capacity())
    }

    /// Whether `conn` is saying goodbye: its BYE is queued, its input is
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
        let id = self.allocate(now);
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
            self.schedule(now, id);
        }
        id
    }

    /// Bytes arrived on `conn`. Every complete frame is acted on in order,
    /// unless the connection's output is backed up: the rest then waits until
    /// the runtime has written enough ([`handle_written`](Self::handle_written)).
    pub fn handle_input(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(c) = self.conn_mut(conn) else { return };
        if c.is_closing() || bytes.is_empty() {
            return;
        }
        c.last_received = now;
        c.pings_sent = 0;
        self.process(now, conn, bytes);
        self.observe_slowest(now);
        if self.congested(now) {
            self.hold(now, conn);
        }
        self.reap(now);
    }

    /// The peer ended its stream (a read returned 0). Mid-frame or not, a
    /// connection that had not said BYE is gone: `LEFT(DISCONNECTED)`. A
    /// connection already closing keeps flushing its BYE.
    pub fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        if self.conn(conn).is_some_and(|c| !c.is_closing()) {
            self.depart(now, conn, Reason::Disconnected, Farewell::Abort);
            self.reap(now);
        }
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

    /// The runtime wrote `n` bytes of [`outbound`](Self::outbound) for `conn`.
    pub fn handle_written(&mut self, now: Instant, conn: ConnId, n: usize) {
        let was_backed_up = self.is_backed_up_id(conn);
        let Self {
            slots, feed, pool, ..
        } = self;
        let Some(c) = live_conn(slots, conn) else {
            return;
        };
        let own = n.min(c.outbox.len());
        if own > 0 {
            c.outbox.consume(own, pool);
        }
        let mut backlog = 0;
        if let Some(pos) = c.feed_pos {
            let taken = (n - own).min(feed.backlog(pos));
            backlog = feed.backlog(pos) - taken;
            if taken > 0 {
                let to = pos + taken as u64;
                c.feed_pos = Some(to);
                feed.enter(to);
                feed.leave(pos);
            }
        }
        let drained = c.outbox.len() == 0 && backlog == 0;
        if drained {
            c.announced = false;
            if c.feed_pos.is_some() && !c.idle_listed {
                c.idle_listed = true;
                feed.idle.push(conn);
            }
        }
        match c.phase {
            Phase::Closing { reason, .. } if drained => self.release(conn, reason, true),
            Phase::Closing { .. } => {}
            _ => {
                if c.deframer.buffered() > 0 && !self.is_backed_up_id(conn) {
                    // Input held back while the output was backed up.
                    self.process(now, conn, &[]);
                }
            }
        }
        self.reap(now);
        if was_backed_up && self.wants_read(conn) {
            self.events.push_back(Event::Resume { conn });
        }
    }

    /// Time passed: fires every handshake, ping, idle and linger deadline that
    /// is due. Calling it early or often is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
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
        for id in ids {
            if let Some(name) = self.name_of(id) {
                self.events.push_back(Event::Left {
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
        let ids: Vec<ConnId> = self.live_ids().collect();
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
        while let Some(id) = self.transmits.pop_front() {
            if self.conn(id).is_some_and(|c| self.queued_for(c) > 0) {
                return Some(id);
            }
        }
        None
    }

    /// The next event for the runtime.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next;
    /// `None` when no deadline is pending. May be earlier than needed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((deadline, _))| *deadline);
        match (timer, self.pool_check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- internals -----

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.slots
            .get(id.index())
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.conn.as_ref())
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        live_conn(&mut self.slots, id)
    }

    fn live_ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            slot.conn.as_ref().map(|_| ConnId {
                index: index as u32,
                generation: slot.generation,
            })
        })
    }

    fn is_backed_up(&self, conn: &Conn) -> bool {
        self.queued_for(conn) >= self.config.max_outbound / 2
    }

    /// Bytes queued for `conn`: its outbox, then its unread part of the feed.
    fn queued_for(&self, conn: &Conn) -> usize {
        conn.outbox.len() + conn.feed_pos.map_or(0, |pos| self.feed.backlog(pos))
    }

    /// Starts giving `id` every broadcast from now on.
    fn subscribe(&mut self, id: ConnId) {
        let Self { slots, feed, .. } = self;
        let Some(conn) = live_conn(slots, id) else {
            return;
        };
        if conn.feed_pos.is_some() {
            return;
        }
        conn.feed_pos = Some(feed.end());
        feed.enter(feed.end());
        feed.outbox_high = feed.outbox_high.max(conn.outbox.len());
        if !conn.announced && !conn.idle_listed {
            conn.idle_listed = true;
            feed.idle.push(id);
        }
    }

    /// Stops the feed for `id`. Its unread part is moved to its outbox when
    /// `keep` (it is still owed those frames, before its BYE), else dropped.
    fn unsubscribe(&mut self, id: ConnId, keep: bool) {
        let Self {
            slots, feed, pool, ..
        } = self;
        let Some(conn) = live_conn(slots, id) else {
            return;
        };
        let Some(pos) = conn.feed_pos.take() else {
            return;
        };
        if keep && feed.backlog(pos) > 0 {
            conn.outbox.ensure(pool).extend_from_slice(feed.unread(pos));
        }
        feed.leave(pos);
    }

    /// Moves `id`'s unread part of the feed into its outbox, so that a private
    /// frame queued next comes after it.
    fn catch_up(&mut self, id: ConnId) {
        let Self {
            slots, feed, pool, ..
        } = self;
        let Some(conn) = live_conn(slots, id) else {
            return;
        };
        let Some(pos) = conn.feed_pos else { return };
        if feed.backlog(pos) > 0 {
            conn.outbox.ensure(pool).extend_from_slice(feed.unread(pos));
            conn.feed_pos = Some(feed.end());
            feed.outbox_high = feed.outbox_high.max(conn.outbox.len());
            feed.enter(feed.end());
            feed.leave(pos);
        }
    }

    /// Whether the slowest registered user is at least half the output limit
    /// behind on broadcasts and still reading: a reader that stopped for
    /// [`STALL_GRACE`] holds nobody back, it is on its way to being dropped.
    fn congested(&self, now: Instant) -> bool {
        self.feed.max_backlog() >= self.config.max_outbound / 2
            && self
                .slowest
                .is_some_and(|(_, since)| now.saturating_duration_since(since) < STALL_GRACE)
    }

    /// Notes when the slowest reader's position in the feed last moved.
    fn observe_slowest(&mut self, now: Instant) {
        let slowest = self.feed.positions.keys().next().copied();
        match (slowest, self.slowest) {
            (Some(pos), Some((seen, _))) if pos == seen => {}
            (Some(pos), _) => self.slowest = Some((pos, now)),
            (None, _) => self.slowest = None,
        }
    }

    /// Holds `id`'s input back for [`CONGESTION_HOLD`].
    fn hold(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if conn.held_until.is_some() || conn.is_closing() || conn.doomed {
            return;
        }
        conn.held_until = Some(now + CONGESTION_HOLD);
        if self.held.len() > 2 * self.live {
            // Drop entries whose hold already ended, so the list stays bounded.
            let slots = &self.slots;
            self.held.retain(|&id| {
                slots
                    .get(id.index())
                    .and_then(|s| s.conn.as_ref())
                    .is_some_and(|c| c.held_until.is_some())
            });
        }
        self.held.push(id);
        self.schedule(now, id);
    }

    /// Ends every hold once the congestion is gone.
    fn release_holds(&mut self, now: Instant) {
        if self.held.is_empty() || self.congested(now) {
            return;
        }
        for id in std::mem::take(&mut self.held) {
            if let Some(conn) = self.conn_mut(id) {
                if conn.held_until.take().is_some() {
                    self.events.push_back(Event::Resume { conn: id });
                }
            }
        }
    }

    /// Drops everything queued for `id` and marks it for reaping as a slow consumer.
    fn doom(&mut self, id: ConnId) {
        self.unsubscribe(id, false);
        if let Some(conn) = live_conn(&mut self.slots, id) {
            conn.doomed = true;
            conn.outbox.discard(&mut self.pool);
            self.doomed.push(id);
        }
    }

    fn is_backed_up_id(&self, id: ConnId) -> bool {
        self.conn(id).is_some_and(|c| self.is_backed_up(c))
    }

    fn allocate(&mut self, now: Instant) -> ConnId {
        let conn = Conn {
            phase: Phase::AwaitingHello,
            deframer: Deframer::new(),
            outbox: Outbox::default(),
            connected_at: now,
            last_received: now,
            pings_sent: 0,
            timer: None,
            counted: false,
            announced: false,
            doomed: false,
            feed_pos: None,
            idle_listed: false,
            held_until: None,
        };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        self.live += 1;
        let generation = match self.slots.get_mut(index as usize) {
            Some(slot) => {
                slot.conn = Some(conn);
                slot.generation
            }
            // Unreachable: the index was just pushed or taken from the free list.
            None => 0,
        };
        ConnId { index, generation }
    }

    /// Emits the close event and frees the slot.
    fn release(&mut self, id: ConnId, reason: Reason, graceful: bool) {
        self.unsubscribe(id, false);
        let Some(slot) = self
            .slots
            .get_mut(id.index())
            .filter(|s| s.generation == id.generation)
        else {
            return;
        };
        let Some(mut conn) = slot.conn.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        conn.outbox.discard(&mut self.pool);
        self.free.push(id.index);
        self.live -= 1;
        if conn.counted {
            self.open -= 1;
        }
        self.events.push_back(Event::Close {
            conn: id,
            reason,
            graceful,
        });
    }

    /// Removes `id` from the roster (telling the others), then says goodbye.
    fn depart(&mut self, now: Instant, id: ConnId, reason: Reason, farewell: Farewell<'_>) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let name = conn.name();
        conn.phase = Phase::AwaitingHello;
        // Out of the feed before the LEFT: a connection saying goodbye still
        // gets what was queued for it, then its BYE.
        self.unsubscribe(id, matches!(farewell, Farewell::Bye(_)));
        if let Some(name) = name {
            self.presence.remove(&name);
            self.scratch.clear();
            frame::encode_left(&mut self.scratch, &name, reason);
            self.broadcast();
            self.events.push_back(Event::Left {
                conn: id,
                name,
                reason,
            });
        }
        match farewell {
            Farewell::Abort => self.release(id, reason, false),
            Farewell::Bye(detail) => {
                let deadline = now + self.config.linger;
                let Some(conn) = self.conn_mut(id) else {
                    return;
                };
                conn.phase = Phase::Closing { deadline, reason };
                conn.deframer = Deframer::new();
                if conn.doomed {
                    self.release(id, reason, false);
                    return;
                }
                self.send_unchecked(id, |out| frame::encode_bye(out, reason, detail));
                self.schedule(now, id);
            }
        }
    }

    /// Drops every connection found over its output limit, telling the others.
    /// Dropping one sends LEFT, which may push more over: loop until none is left.
    fn reap(&mut self, now: Instant) {
        while let Some(id) = self.doomed.pop() {
            self.depart(now, id, Reason::SlowConsumer, Farewell::Abort);
        }
        self.observe_slowest(now);
        self.release_holds(now);
        self.prune_timers();
        if self.pool_check.is_none() {
            // Buffers came back after the last look (a burst drained): look
            // again, or a server that falls silent keeps them forever.
            self.pool_check = self.pool.trim(now);
        }
    }

    /// Pops superseded timer entries off the top of the heap, so that
    /// [`poll_timeout`](Self::poll_timeout) names a live connection's entry.
    fn prune_timers(&mut self) {
        while let Some(Reverse((deadline, id))) = self.timers.peek().copied() {
            if self.conn(id).is_some_and(|c| c.timer == Some(deadline)) {
                break;
            }
            self.timers.pop();
        }
    }

    /// Runs the frames in `bytes` (after any held back) for `id`.
    fn process(&mut self, now: Instant, id: ConnId, bytes: &[u8]) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let mut deframer = std::mem::take(&mut conn.deframer);
        let mut input = bytes;
        loop {
            let Some(conn) = self.conn(id) else { return };
            if conn.is_closing() || conn.doomed {
                return;
            }
            if self.is_backed_up(conn) {
                deframer.stash(input);
                break;
            }
            match deframer.next_frame(&mut input) {
                Ok(Some(frame)) => self.handle_frame(now, id, frame),
                Ok(None) => break,
                Err(error) => {
                    let detail = error.to_string();
                    self.protocol_error(now, id, &detail);
                    return;
                }
            }
            self.reap(now);
        }
        if let Some(conn) = self.conn_mut(id) {
            conn.deframer = deframer;
        }
    }

    fn protocol_error(&mut self, now: Instant, id: ConnId, detail: &str) {
        self.depart(now, id, Reason::ProtocolError, Farewell::Bye(detail));
    }

    fn handle_frame(&mut self, now: Instant, id: ConnId, frame: RawFrame<'_>) {
        let request = match RawClientFrame::parse(frame) {
            Ok(request) => request,
            Err(malformed) => {
                let detail = malformed.to_string();
                return self.protocol_error(now, id, &detail);
            }
        };
        let sender = self.name_of(id);
        match request {
            RawClientFrame::Hello { name } => self.hello(id, sender, name),
            RawClientFrame::Say { text } => {
                let Some(from) = self.require_registered(id, sender) else {
                    return;
                };
                if let Err(error) = validate_text(text) {
                    return self.reply_error(id, ErrorCode::BadText, &error.to_string());
                }
                self.scratch.clear();
                frame::encode_message(&mut self.scratch, &from, text);
                self.broadcast();
            }
            RawClientFrame::Whisper { to, text } => {
                let Some(from) = self.require_registered(id, sender) else {
                    return;
                };
                if let Err(error) = validate_text(text) {
                    return self.reply_error(id, ErrorCode::BadText, &error.to_string());
                }
                let recipient = Name::from_bytes(to)
                    .ok()
                    .and_then(|to| self.presence.lookup(&to));
                match recipient {
                    Some(to) => self.send(to, |out| frame::encode_private(out, &from, text)),
                    None => self.reply_error(id, ErrorCode::NoSuchUser, "no such user"),
                }
            }
            RawClientFrame::Who => {
                if self.require_registered(id, sender).is_some() {
                    self.send_roster(id);
                }
            }
            RawClientFrame::Ping { token } => self.send(id, |out| frame::encode_pong(out, token)),
            RawClientFrame::Pong { .. } => {}
            RawClientFrame::Bye => self.depart(now, id, Reason::Quit, Farewell::Bye("")),
        }
    }

    fn hello(&mut self, id: ConnId, sender: Option<Name>, raw_name: &[u8]) {
        if sender.is_some() {
            return self.reply_error(id, ErrorCode::AlreadyRegistered, "already registered");
        }
        let name = match Name::from_bytes(raw_name) {
            Ok(name) => name,
            Err(error) => {
                return self.reply_error(id, ErrorCode::NameInvalid, &error.to_string());
            }
        };
        if !self.presence.insert(name, id) {
            return self.reply_error(id, ErrorCode::NameTaken, "name taken");
        }
        if let Some(conn) = self.conn_mut(id) {
            conn.phase = Phase::Registered(name);
        }
        self.send(id, |out| frame::encode_welcome(out, &name));
        self.send_roster(id);
        self.scratch.clear();
        frame::encode_joined(&mut self.scratch, &name);
        self.broadcast();
        // After the JOINED: the newcomer does not hear of itself.
        self.subscribe(id);
        self.events.push_back(Event::Joined { conn: id, name });
    }

    fn require_registered(&mut self, id: ConnId, sender: Option<Name>) -> Option<Name> {
        if sender.is_none() {
            self.reply_error(
                id,
                ErrorCode::NotRegistered,
                "not registered: send HELLO first",
            );
        }
        sender
    }

    fn reply_error(&mut self, id: ConnId, code: ErrorCode, detail: &str) {
        self.send(id, |out| frame::encode_error(out, code, detail));
    }

    fn send_roster(&mut self, id: ConnId) {
        self.catch_up(id);
        let Self {
            presence,
            slots,
            pool,
            ..
        } = self;
        let names = presence.names();
        if let Some(conn) = live_conn(slots, id) {
            let before = conn.outbox.len();
            frame::encode_roster(conn.outbox.ensure(pool), names);
            self.after_push(id, before);
        }
    }

    /// Queues bytes for one connection, dooming it if that passes the limit.
    fn send(&mut self, id: ConnId, encode: impl FnOnce(&mut Vec<u8>)) {
        self.catch_up(id);
        let Some(conn) = live_conn(&mut self.slots, id) else {
            return;
        };
        if conn.doomed || conn.is_closing() {
            return;
        }
        let before = conn.outbox.len();
        encode(conn.outbox.ensure(&mut self.pool));
        self.after_push(id, before);
    }

    /// Queues a farewell regardless of the limit (the connection is closing).
    fn send_unchecked(&mut self, id: ConnId, encode: impl FnOnce(&mut Vec<u8>)) {
        self.catch_up(id);
        let Some(conn) = live_conn(&mut self.slots, id) else {
            return;
        };
        let before = conn.outbox.len();
        encode(conn.outbox.ensure(&mut self.pool));
        if before == 0 && !conn.announced {
            conn.announced = true;
            self.transmits.push_back(id);
        }
    }

    fn after_push(&mut self, id: ConnId, before: usize) {
        let max = self.config.max_outbound;
        let Some(conn) = live_conn(&mut self.slots, id) else {
            return;
        };
        // Caught up first, so the outbox is everything queued.
        if conn.outbox.len() > max {
            self.doom(id);
            return;
        }
        if conn.feed_pos.is_some() {
            self.feed.outbox_high = self.feed.outbox_high.max(conn.outbox.len());
        }
        if before == 0 && !conn.announced {
            conn.announced = true;
            self.transmits.push_back(id);
        }
    }

    /// Sends `scratch` (one encoded frame) to every subscriber: appended to
    /// the feed once when that keeps everyone within the limit, which the
    /// feed's bounds show in O(1); otherwise everyone is caught up first and
    /// each queue is checked.
    fn broadcast(&mut self) {
        let len = self.scratch.len();
        let max = self.config.max_outbound;
        let fits = |feed: &Feed| feed.outbox_high + feed.max_backlog() + len <= max;
        if !fits(&self.feed) {
            self.settle_feed();
        }
        if fits(&self.feed) {
            let Self {
                feed,
                scratch,
                slots,
                transmits,
                ..
            } = self;
            feed.buf.extend_from_slice(scratch);
            for id in feed.idle.drain(..) {
                let Some(conn) = live_conn(slots, id) else {
                    continue;
                };
                conn.idle_listed = false;
                if conn.feed_pos.is_some() && !conn.announced {
                    conn.announced = true;
                    transmits.push_back(id);
                }
            }
            return;
        }
        // Someone is near the limit: everyone is caught up (the feed is
        // empty), so each outbox is that connection's whole queue.
        let ids: Vec<ConnId> = self.presence.conns().to_vec();
        for id in ids {
            let Self {
                slots,
                scratch,
                transmits,
                feed,
                pool,
                ..
            } = self;
            let Some(conn) = live_conn(slots, id) else {
                continue;
            };
            if conn.feed_pos.is_none() {
                continue;
            }
            let before = conn.outbox.len();
            if before + scratch.len() > max {
                self.doom(id);
                continue;
            }
            conn.outbox.ensure(pool).extend_from_slice(scratch);
            feed.outbox_high = feed.outbox_high.max(conn.outbox.len());
            if before == 0 && !conn.announced {
                conn.announced = true;
                transmits.push_back(id);
            }
        }
    }

    /// Catches every subscriber up (emptying the feed) and makes
    /// `outbox_high` exact again.
    fn settle_feed(&mut self) {
        let ids: Vec<ConnId> = self.presence.conns().to_vec();
        let mut high = 0;
        for id in ids {
            self.catch_up(id);
            if let Some(conn) = self.conn(id).filter(|c| c.feed_pos.is_some()) {
                high = high.max(conn.outbox.len());
            }
        }
        self.feed.outbox_high = high;
    }

    /// The earliest moment something is due for `conn`.
    fn deadline(&self, conn: &Conn) -> Instant {
        let config = &self.config;
        match conn.phase {
            Phase::Closing { deadline, .. } => deadline,
            phase => {
                let pings = config
                    .ping_interval
                    .saturating_mul(conn.pings_sent.saturating_add(1));
                let silence =
                    (conn.last_received + pings).min(conn.last_received + config.idle_timeout);
                let due = match phase {
                    Phase::AwaitingHello => {
                        silence.min(conn.connected_at + config.handshake_timeout)
                    }
                    _ => silence,
                };
                conn.held_until.map_or(due, |held| due.min(held))
            }
        }
    }

    /// Makes sure the timer heap holds an entry for `id` no later than its
    /// deadline. A later deadline needs no new entry: the early one fires,
    /// finds nothing due and reschedules.
    fn schedule(&mut self, _now: Instant, id: ConnId) {
        let Some(conn) = self.conn(id) else { return };
        let deadline = self.deadline(conn);
        if conn.timer.is_some_and(|t| t <= deadline) {
            return;
        }
        if let Some(conn) = self.conn_mut(id) {
            conn.timer = Some(deadline);
        }
        self.timers.push(Reverse((deadline, id)));
    }

    fn fire_timers(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if conn.held_until.is_some_and(|held| held <= now) {
            conn.held_until = None;
            self.events.push_back(Event::Resume { conn: id });
        }
        let Some(conn) = self.conn(id) else { return };
        let config = &self.config;
        let silent_for = now.saturating_duration_since(conn.last_received);
        match conn.phase {
            Phase::Closing { deadline, reason } => {
                if now >= deadline {
                    return self.release(id, reason, false);
                }
            }
            Phase::AwaitingHello
                if now.saturating_duration_since(conn.connected_at) >= config.handshake_timeout =>
            {
                return self.depart(now, id, Reason::Timeout, Farewell::Bye("handshake timeout"));
            }
            _ if silent_for >= config.idle_timeout => {
                return self.depart(now, id, Reason::Timeout, Farewell::Bye("idle timeout"));
            }
            _ => {
                let due = config
                    .ping_interval
                    .saturating_mul(conn.pings_sent.saturating_add(1));
                if silent_for >= due {
                    let intervals = silent_for.as_nanos() / config.ping_interval.as_nanos().max(1);
                    let token = self.next_ping_token;
                    self.next_ping_token = self.next_ping_token.wrapping_add(1);
                    if let Some(conn) = self.conn_mut(id) {
                        conn.pings_sent = u32::try_from(intervals).unwrap_or(u32::MAX);
                    }
                    self.send(id, |out| frame::encode_ping(out, token));
                }
            }
        }
        self.schedule(now, id);
    }
}

#[cfg(test)]
mod tests;
