//! Outbound bytes: each connection's [`Stream`], the [`Feeds`] of broadcasts
//! (the lobby's native frames, the lobby's IRC lines, and the IRC lines of
//! each other channel), and the [`BufferPool`] that keeps drained buffers
//! warm.
//!
//! Invariants:
//!
//! - A broadcast is stored once per wire format, in its channel's feed. A
//!   connection's stream is its own frames (replies, whispers, pings, its
//!   BYE) interleaved with its unread part of one feed, in the order they
//!   were queued: a [`Mark`] says after which feed offset a run of its own
//!   bytes comes. Nothing is copied out of a feed, so dropping or closing a
//!   connection that is far behind costs no memory. Two exceptions copy,
//!   each bounded by one queue: [`Stream::discard_after_line`] (what the
//!   runtime holds and the line begun, for an IRC slow consumer's ERROR),
//!   and [`Stream::leave_feed_keeping`] (the unread part of a channel's
//!   feed, for a member that leaves the channel and stays connected).
//! - A line for several connections outside the feed each reads (a channel
//!   line for members that read another channel's feed; NICK and QUIT for
//!   everyone sharing a channel) is stored once in [`SharedLines`], and each
//!   of their streams holds it among its own frames, in order; it counts as
//!   queued for each, its bytes exist once, and it is freed when the last
//!   stream has written or dropped it.
//! - A stream may skip ranges of its feed (an IRC user's own messages, which
//!   IRC does not echo): skipped bytes are never written, but they count as
//!   queued until the reader has passed them, since the feed keeps them for
//!   it: a sender that never reads is paced and bounded by its own lines.
//! - The feed keeps the bytes from its slowest reader's position onwards; a
//!   reader's position only moves forward. Bytes every reader has passed go
//!   at once when the slowest catches up, else in one move once they are
//!   [`COMPACT_AT`] or more and at least half the buffer (amortised O(1) per
//!   byte): the read prefix a feed keeps is under
//!   `max(COMPACT_AT, unread)`, a constant per feed, never per reader.
//! - [`Stream::queued`] is exactly what the runtime still has to write for
//!   that connection, and [`Stream::outbound`] is a prefix of it that is never
//!   empty while `queued` is not.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::ConnId;

/// Which feed a stream reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum FeedId {
    /// Native frames, read by every registered native connection.
    Native,
    /// IRC lines of the lobby, read by IRC connections in the lobby.
    Irc,
    /// IRC lines of one channel other than the lobby (a slot in
    /// [`Feeds`], reused once the channel is gone and nobody reads it).
    Channel(u32),
}

impl FeedId {
    /// A dense index: 0 and 1 for the lobby's feeds, then the channels'.
    pub(super) fn index(self) -> usize {
        match self {
            Self::Native => 0,
            Self::Irc => 1,
            Self::Channel(slot) => 2 + slot as usize,
        }
    }
}

/// One [`Feed`] per wire format of the lobby, one per other channel with
/// IRC members, and the [`SharedLines`] outside them.
///
/// Invariant: a channel's feed slot is reused only once the channel is gone
/// ([`retire`](Self::retire)) and the last reader has left it, so a stream
/// never reads a feed that became another channel's.
#[derive(Debug)]
pub(super) struct Feeds {
    native: Feed,
    irc: Feed,
    channels: Vec<Feed>,
    /// Slots of `channels` that are free to reuse.
    free_channels: Vec<u32>,
    pub(super) lines: SharedLines,
}

impl Default for Feeds {
    fn default() -> Self {
        Self {
            native: Feed::with_keep(Feed::KEEP),
            irc: Feed::with_keep(Feed::KEEP),
            channels: Vec::new(),
            free_channels: Vec::new(),
            lines: SharedLines::default(),
        }
    }
}

/// What a feed slot that is not in use reads as.
static NO_FEED: Feed = Feed {
    buf: Vec::new(),
    base: 0,
    positions: BTreeMap::new(),
    keep: 0,
    retired: true,
    freed: true,
};

impl Feeds {
    pub(super) fn get(&self, id: FeedId) -> &Feed {
        match id {
            FeedId::Native => &self.native,
            FeedId::Irc => &self.irc,
            FeedId::Channel(slot) => self.channels.get(slot as usize).unwrap_or(&NO_FEED),
        }
    }

    pub(super) fn get_mut(&mut self, id: FeedId) -> &mut Feed {
        match id {
            FeedId::Native => &mut self.native,
            FeedId::Irc => &mut self.irc,
            FeedId::Channel(slot) => {
                let slot = slot as usize;
                if slot >= self.channels.len() {
                    // Not reachable: ids come from `open_channel`.
                    debug_assert!(false, "a channel feed that was never opened");
                    self.channels.resize_with(slot + 1, Feed::default);
                }
                match self.channels.get_mut(slot) {
                    Some(feed) => feed,
                    None => &mut self.native,
                }
            }
        }
    }

    /// A new, empty feed for a channel. Channel feeds keep no buffer once
    /// drained: there may be many channels, each mostly idle.
    pub(super) fn open_channel(&mut self) -> FeedId {
        let feed = Feed::with_keep(0);
        match self.free_channels.pop() {
            Some(slot) => {
                if let Some(old) = self.channels.get_mut(slot as usize) {
                    *old = feed;
                }
                FeedId::Channel(slot)
            }
            None => {
                self.channels.push(feed);
                FeedId::Channel(u32::try_from(self.channels.len() - 1).unwrap_or(u32::MAX))
            }
        }
    }

    /// The channel of `id` is gone: nothing more is appended, and the slot
    /// is reused once its last reader has left.
    pub(super) fn retire(&mut self, id: FeedId) {
        if let FeedId::Channel(_) = id {
            self.get_mut(id).retired = true;
            self.free_if_done(id);
        }
    }

    /// A reader at `pos` leaves feed `id`.
    fn leave(&mut self, id: FeedId, pos: u64) {
        self.get_mut(id).leave(pos);
        self.free_if_done(id);
    }

    fn free_if_done(&mut self, id: FeedId) {
        if let FeedId::Channel(slot) = id {
            let feed = self.get_mut(id);
            if feed.retired && !feed.freed && feed.positions.is_empty() {
                feed.buf = Vec::new();
                feed.freed = true;
                self.free_channels.push(slot);
            }
        }
    }

    /// Bytes held by every feed and shared line.
    pub(super) fn len(&self) -> usize {
        self.native.len()
            + self.irc.len()
            + self.channels.iter().map(Feed::len).sum::<usize>()
            + self.lines.bytes
    }

    /// Channel feed slots, in use or free.
    #[cfg(test)]
    pub(super) fn channel_slots(&self) -> usize {
        self.channels.len()
    }

    /// The feeds, for checks that look at each.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn each(&self) -> impl Iterator<Item = &Feed> {
        [&self.native, &self.irc]
            .into_iter()
            .chain(self.channels.iter())
    }
}

/// Most bytes kept of a line begun when the rest of a queue is dropped.
const LONGEST_LINE: usize = 4096;

/// Written bytes at the front of a buffer worth moving the rest down for.
pub(super) const COMPACT_AT: usize = 64 * 1024;

/// Drained output buffers kept for reuse, so that warm queues do not
/// allocate per delivery. Bounded in total bytes: the pool's memory does not
/// grow with the number of connections, and an idle connection holds nothing.
#[derive(Debug, Default)]
pub(super) struct BufferPool {
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

    /// Capacity held for reuse.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

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
    pub(super) fn trim(&mut self, now: Instant) -> Option<Instant> {
        if self.free.is_empty() {
            self.seen = (self.handed_out, None);
            return None;
        }
        match self.seen {
            (seen, Some(since)) if seen == self.handed_out => {
                let due = since.checked_add(Self::IDLE)?;
                if now >= due {
                    self.free = Vec::new();
                    self.bytes = 0;
                    self.seen.1 = None;
                    return None;
                }
                Some(due)
            }
            _ => {
                self.seen = (self.handed_out, Some(now));
                now.checked_add(Self::IDLE)
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

/// Lines for several connections outside the feeds they read (a channel
/// line for members reading another feed, a QUIT for everyone sharing a
/// channel), each stored once and counted by its holders: the
/// queues it is in, and its sender while it is being handed out.
///
/// Invariant: a line is stored while it has a holder, and freed when the
/// last lets go; an id is only used by its holders. Counts are plain
/// integers (the server is single-threaded): no atomic operation per
/// recipient.
#[derive(Debug, Default)]
pub(super) struct SharedLines {
    slots: Vec<SharedLine>,
    free: Vec<usize>,
    /// Bytes of every stored line.
    bytes: usize,
}

#[derive(Debug, Default)]
struct SharedLine {
    bytes: Box<[u8]>,
    holders: usize,
}

/// A line stored in [`SharedLines`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct LineId(usize);

impl SharedLines {
    /// Stores `bytes` with one holder, the caller, who hands it to queues
    /// with [`Stream::push_shared`] and then [`release`](Self::release)s it.
    pub(super) fn insert(&mut self, bytes: &[u8]) -> LineId {
        self.bytes += bytes.len();
        let line = SharedLine {
            bytes: bytes.into(),
            holders: 1,
        };
        if let Some(index) = self.free.pop() {
            if let Some(slot) = self.slots.get_mut(index) {
                *slot = line;
                return LineId(index);
            }
        }
        self.slots.push(line);
        LineId(self.slots.len() - 1)
    }

    fn get(&self, id: LineId) -> &[u8] {
        self.slots.get(id.0).map_or(&[], |line| &line.bytes)
    }

    fn hold(&mut self, id: LineId) {
        if let Some(line) = self.slots.get_mut(id.0) {
            line.holders += 1;
        }
    }

    /// One holder lets go; the last frees the line.
    pub(super) fn release(&mut self, id: LineId) {
        let Some(line) = self.slots.get_mut(id.0) else {
            return;
        };
        debug_assert!(line.holders > 0, "a line released more often than held");
        line.holders = line.holders.saturating_sub(1);
        if line.holders == 0 {
            self.bytes -= line.bytes.len();
            line.bytes = Box::default();
            self.free.push(id.0);
        }
    }

    /// Holders of each stored line, for checks against the queues.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn holders(&self) -> std::collections::BTreeMap<LineId, usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, line)| line.holders > 0)
            .map(|(index, line)| (LineId(index), line.holders))
            .collect()
    }
}

/// A connection's own frames, in order: bytes in its own buffer, and
/// between them lines it shares with other connections (a channel message
/// encoded once and held by every member's queue, never copied).
#[derive(Debug, Default)]
struct Outbox {
    /// `buf[sent..]` is what is still to be written of the own buffer.
    buf: Vec<u8>,
    sent: usize,
    /// Shared lines, in order, each placed after a count of own-buffer bytes.
    shared: VecDeque<SharedRun>,
    /// Unwritten bytes of `shared`.
    shared_len: usize,
    /// Own-buffer bytes written since the connection opened: where the
    /// shared lines sit is counted in these.
    buf_total_sent: u64,
    /// Own bytes (buffer and shared) written since the connection opened:
    /// marks refer to it.
    total_sent: u64,
}

/// A line shared with other queues, queued after the first `after`
/// own-buffer bytes of the connection.
#[derive(Debug)]
struct SharedRun {
    after: u64,
    line: LineId,
    len: usize,
    sent: usize,
}

impl SharedRun {
    fn rest<'a>(&self, lines: &'a SharedLines) -> &'a [u8] {
        crate::in_bounds(lines.get(self.line), self.sent..)
    }
}

impl Outbox {
    /// Hands `each` what is still to be written, one contiguous run at a
    /// time, while it returns true; returns whether it always did.
    fn runs<'a>(&'a self, lines: &'a SharedLines, each: &mut impl FnMut(&'a [u8]) -> bool) -> bool {
        let mut from = self.sent;
        let mut at = self.buf_total_sent;
        for run in &self.shared {
            let gap = usize::try_from(run.after.saturating_sub(at)).unwrap_or(usize::MAX);
            let upto = from.saturating_add(gap).min(self.buf.len());
            let own = crate::in_bounds(&self.buf, from..upto);
            if !own.is_empty() && !each(own) {
                return false;
            }
            (from, at) = (upto, run.after);
            let rest = run.rest(lines);
            if !rest.is_empty() && !each(rest) {
                return false;
            }
        }
        let own = crate::in_bounds(&self.buf, from..);
        own.is_empty() || each(own)
    }

    /// [`runs`](Self::runs) clipped to `skip..skip + take` of what is still
    /// to be written.
    fn runs_within<'a>(
        &'a self,
        lines: &'a SharedLines,
        skip: usize,
        take: usize,
        each: &mut impl FnMut(&'a [u8]) -> bool,
    ) -> bool {
        let (mut skip, mut take) = (skip, take);
        let mut going = true;
        self.runs(lines, &mut |run: &'a [u8]| {
            let passed = skip.min(run.len());
            skip -= passed;
            let run = crate::in_bounds(run, passed..run.len().min(passed.saturating_add(take)));
            take -= run.len();
            if !run.is_empty() {
                going = each(run);
            }
            going && take > 0
        });
        going
    }

    fn len(&self) -> usize {
        self.buf.len() - self.sent + self.shared_len
    }

    /// Keeps the first `keep` bytes still to be written and drops the rest,
    /// letting go of the shared lines dropped. Returns false, changing
    /// nothing, when `keep` ends inside a shared line.
    fn truncate(&mut self, keep: usize, lines: &mut SharedLines) -> bool {
        let mut left = keep;
        let mut from = self.sent;
        let mut at = self.buf_total_sent;
        // Where the own buffer is cut, and the first shared run dropped.
        let mut cut = None;
        for (index, run) in self.shared.iter().enumerate() {
            let gap = usize::try_from(run.after.saturating_sub(at)).unwrap_or(usize::MAX);
            let upto = from.saturating_add(gap).min(self.buf.len());
            if left < upto - from {
                cut = Some((from + left, index));
                break;
            }
            left -= upto - from;
            (from, at) = (upto, run.after);
            let rest = run.len - run.sent;
            if left == 0 {
                cut = Some((from, index));
                break;
            }
            if left < rest {
                return false;
            }
            left -= rest;
        }
        let (buf_at, first_dropped) = match cut {
            Some(cut) => cut,
            None => ((from + left).min(self.buf.len()), self.shared.len()),
        };
        for run in self.shared.drain(first_dropped..) {
            lines.release(run.line);
        }
        self.buf.truncate(buf_at);
        self.shared_len = self.shared.iter().map(|run| run.len - run.sent).sum();
        true
    }

    /// Own bytes queued since the connection opened.
    fn total_queued(&self) -> u64 {
        self.total_sent + self.len() as u64
    }

    /// Own-buffer bytes queued since the connection opened.
    fn buf_total_queued(&self) -> u64 {
        self.buf_total_sent + (self.buf.len() - self.sent) as u64
    }

    /// Makes sure there is a buffer to append to, reusing a pooled one.
    fn ensure(&mut self, pool: &mut BufferPool) -> &mut Vec<u8> {
        if self.buf.capacity() == 0 {
            self.buf = pool.get();
        }
        &mut self.buf
    }

    /// Queues a shared line after everything queued so far, as one more
    /// holder of it; false if there is nothing to queue (empty or freed).
    fn push_shared(&mut self, lines: &mut SharedLines, line: LineId) -> bool {
        let len = lines.get(line).len();
        if len == 0 {
            return false;
        }
        lines.hold(line);
        self.shared_len += len;
        self.shared.push_back(SharedRun {
            after: self.buf_total_queued(),
            line,
            len,
            sent: 0,
        });
        true
    }

    /// Drops everything queued, giving the buffer to the pool and letting
    /// go of the shared lines.
    fn discard(&mut self, lines: &mut SharedLines, pool: &mut BufferPool) {
        self.total_sent += self.len() as u64;
        self.buf_total_sent = self.buf_total_queued();
        pool.put(std::mem::take(&mut self.buf));
        self.sent = 0;
        for run in std::mem::take(&mut self.shared) {
            lines.release(run.line);
        }
        self.shared_len = 0;
    }

    /// Takes `n` written bytes off the front; returns the last of them.
    fn consume(&mut self, n: usize, lines: &mut SharedLines, pool: &mut BufferPool) -> Option<u8> {
        let mut n = n.min(self.len());
        self.total_sent += n as u64;
        let mut last = None;
        while n > 0 {
            let taken = match self.shared.front_mut() {
                Some(run) if run.after <= self.buf_total_sent => {
                    let taken = n.min(run.len - run.sent);
                    run.sent += taken;
                    last = lines.get(run.line).get(run.sent.wrapping_sub(1)).copied();
                    self.shared_len -= taken;
                    if run.sent == run.len {
                        lines.release(run.line);
                        self.shared.pop_front();
                    }
                    taken
                }
                next => {
                    let own = self.buf.len() - self.sent;
                    let before_next = next.map_or(own, |run| {
                        let gap = run.after - self.buf_total_sent;
                        usize::try_from(gap).unwrap_or(usize::MAX).min(own)
                    });
                    let taken = n.min(before_next);
                    self.sent += taken;
                    self.buf_total_sent += taken as u64;
                    last = self.buf.get(self.sent.wrapping_sub(1)).copied().or(last);
                    taken
                }
            };
            if taken == 0 {
                debug_assert!(false, "{n} bytes consumed past the queue");
                break;
            }
            n -= taken;
        }
        if self.sent == self.buf.len() {
            // An idle connection holds no buffer; the pool keeps it warm
            // for whoever needs one next.
            pool.put(std::mem::take(&mut self.buf));
            self.sent = 0;
            if self.shared.is_empty() {
                self.shared = VecDeque::new();
            }
        } else if self.sent >= COMPACT_AT && self.sent * 2 >= self.buf.len() {
            // A connection that never fully drains must not grow without
            // bound: drop the written half (amortised O(1) per byte).
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
        last
    }
}

/// Broadcast frames not yet read by every reader. A reader at stream offset
/// `pos` has `buf[pos - base..]` left to read.
#[derive(Debug, Default)]
pub(super) struct Feed {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// How many readers stand at each offset: the first entry is the slowest,
    /// and everything before it can go.
    positions: BTreeMap<u64, usize>,
    /// Capacity a drained feed keeps.
    keep: usize,
    /// Its channel is gone: nothing is appended any more.
    retired: bool,
    /// Retired and left by its last reader: its slot is free to reuse.
    freed: bool,
}

impl Feed {
    /// A drained lobby feed keeps at most this much capacity.
    const KEEP: usize = 64 * 1024;

    fn with_keep(keep: usize) -> Self {
        Self {
            keep,
            ..Self::default()
        }
    }

    /// The offset just past the last frame appended.
    pub(super) fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Bytes held (what the slowest reader has not read).
    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes every reader has passed that the feed still keeps, waiting to
    /// be compacted away (see the module's invariants).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn read_prefix(&self) -> usize {
        let slowest = self.slowest().unwrap_or(self.end());
        usize::try_from(slowest.saturating_sub(self.base)).unwrap_or(usize::MAX)
    }

    /// The slowest reader's offset, if anyone reads.
    pub(super) fn slowest(&self) -> Option<u64> {
        self.positions.keys().next().copied()
    }

    pub(super) fn append(&mut self, frame: &[u8]) {
        debug_assert!(
            !self.retired,
            "appended to the feed of a channel that is gone"
        );
        if self.positions.is_empty() {
            // Nobody reads it: only the offsets move on.
            self.base = self.end() + frame.len() as u64;
            self.buf.clear();
            return;
        }
        self.buf.extend_from_slice(frame);
    }

    fn slice(&self, from: u64, to: u64) -> &[u8] {
        let start = usize::try_from(from.saturating_sub(self.base)).unwrap_or(usize::MAX);
        let end = usize::try_from(to.saturating_sub(self.base)).unwrap_or(usize::MAX);
        crate::in_bounds(&self.buf, start..end.min(self.buf.len()))
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
        } else {
            debug_assert!(false, "left the feed at {pos} without being there");
        }
    }

    /// Drops what every reader has read: all of it once the slowest has
    /// caught up, else a large read prefix (amortised O(1) per byte).
    fn compact(&mut self) {
        let slowest = self.slowest().unwrap_or(self.end());
        let read = usize::try_from(slowest.saturating_sub(self.base))
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        if read == self.buf.len() {
            self.base = self.end();
            self.buf.clear();
            if self.buf.capacity() > self.keep {
                self.buf = Vec::new();
            }
        } else if read >= COMPACT_AT && read * 2 >= self.buf.len() {
            self.buf.drain(..read);
            self.base += read as u64;
        }
    }
}

/// Own bytes up to `own_upto` (counted from the connection's start) come once
/// the feed has been read up to `feed_at`.
#[derive(Debug, Clone, Copy)]
struct Mark {
    feed_at: u64,
    own_upto: u64,
}

/// Where a connection reads its feed.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    feed: FeedId,
    pos: u64,
    /// A closing connection reads no further than this.
    stop: Option<u64>,
}

/// Everything queued for one connection, in order.
#[derive(Debug, Default)]
pub(super) struct Stream {
    own: Outbox,
    /// Where runs of own bytes sit between feed bytes (only while reading the
    /// feed; every own byte then belongs to a mark).
    marks: VecDeque<Mark>,
    cursor: Option<Cursor>,
    /// Feed ranges after the cursor that this stream does not get, in
    /// order; the first starts past the cursor (see `normalize`).
    skips: VecDeque<(u64, u64)>,
    /// The last byte written did not end a line: a line-based peer (IRC)
    /// is in the middle of one.
    line_open: bool,
}

impl Stream {
    /// Whether new broadcasts are appended to this stream.
    pub(super) fn receiving(&self) -> bool {
        self.cursor.is_some_and(|c| c.stop.is_none())
    }

    /// Whether it still reads the feed (receiving, or closing and not past its stop).
    pub(super) fn in_feed(&self) -> bool {
        self.cursor.is_some()
    }

    /// Feed offset of this stream's reader, if it reads a feed.
    pub(super) fn feed_pos(&self) -> Option<u64> {
        self.cursor.map(|c| c.pos)
    }

    /// The feed this stream reads, if any.
    pub(super) fn feed_id(&self) -> Option<FeedId> {
        self.cursor.map(|c| c.feed)
    }

    /// Bytes queued in all.
    pub(super) fn queued(&self, feeds: &Feeds) -> usize {
        let from_feed = self.cursor.map_or(0, |c| {
            let to = c.stop.unwrap_or(feeds.get(c.feed).end());
            // Skipped bytes included: the feed holds them until it passes.
            let unread = to.saturating_sub(c.pos);
            usize::try_from(unread).unwrap_or(usize::MAX)
        });
        self.own.len() + from_feed
    }

    /// The key under which a receiving stream is indexed by load in its
    /// feed: the feed's end minus the key is [`queued`](Self::queued),
    /// whatever is appended.
    pub(super) fn load_key(&self) -> Option<(FeedId, i128)> {
        match self.cursor {
            Some(Cursor {
                feed,
                pos,
                stop: None,
            }) => Some((feed, i128::from(pos) - self.own.len() as i128)),
            _ => None,
        }
    }

    /// Heap bytes of its own: its buffer, and its list of the lines it
    /// shares with other queues (the lines themselves are not its own).
    pub(super) fn capacity(&self) -> usize {
        self.own.buf.capacity() + self.own.shared.capacity() * std::mem::size_of::<SharedRun>()
    }

    /// Own-buffer bytes queued (not counting the feed or shared lines).
    pub(super) fn own_len(&self) -> usize {
        self.own.buf.len() - self.own.sent
    }

    /// The shared lines it holds, once per place in its queue.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn shared_lines(&self) -> impl Iterator<Item = LineId> {
        self.own.shared.iter().map(|run| run.line)
    }

    /// The next bytes to write: a prefix of everything queued.
    pub(super) fn outbound<'a>(&'a self, feeds: &'a Feeds) -> &'a [u8] {
        let mut first: &[u8] = &[];
        self.chunks(feeds, |chunk| {
            first = chunk;
            false
        });
        first
    }

    /// Hands `each` what is to be written, in order, one contiguous run at
    /// a time (own frames, then feed bytes up to the next own frames or
    /// skip, and so on), while it returns true. Nothing empty is handed.
    pub(super) fn chunks<'a>(&'a self, feeds: &'a Feeds, mut each: impl FnMut(&'a [u8]) -> bool) {
        let Some(cursor) = self.cursor else {
            self.own.runs(&feeds.lines, &mut each);
            return;
        };
        let feed = feeds.get(cursor.feed);
        let end = cursor.stop.unwrap_or(feed.end());
        let mut pos = cursor.pos;
        // Own bytes before this count (since the connection opened) are handed.
        let mut own_at = self.own.total_sent;
        let mut marks = self.marks.iter().peekable();
        let mut skips = self.skips.iter().peekable();
        loop {
            while let Some(&&(start, stop)) = skips.peek() {
                if start > pos {
                    break;
                }
                pos = pos.max(stop);
                skips.next();
            }
            match marks.peek() {
                Some(mark) if mark.feed_at <= pos => {
                    let from = own_at.saturating_sub(self.own.total_sent);
                    let len = mark.own_upto.saturating_sub(own_at);
                    own_at = mark.own_upto;
                    marks.next();
                    let from = usize::try_from(from).unwrap_or(usize::MAX);
                    let len = usize::try_from(len).unwrap_or(usize::MAX);
                    if !self.own.runs_within(&feeds.lines, from, len, &mut each) {
                        return;
                    }
                }
                next => {
                    let to = next.map_or(end, |mark| mark.feed_at);
                    let to = skips.peek().map_or(to, |&&(start, _)| to.min(start));
                    if to <= pos {
                        return;
                    }
                    let run = feed.slice(pos, to);
                    if run.is_empty() {
                        return;
                    }
                    pos = to;
                    if !each(run) {
                        return;
                    }
                }
            }
        }
    }

    /// Queues an own frame after everything queued so far.
    pub(super) fn push_own(
        &mut self,
        feeds: &Feeds,
        pool: &mut BufferPool,
        encode: impl FnOnce(&mut Vec<u8>),
    ) {
        encode(self.own.ensure(pool));
        self.mark_own_queued(feeds);
    }

    /// Queues a line shared with other queues after everything queued so
    /// far: the line is held, not copied.
    pub(super) fn push_shared(&mut self, feeds: &mut Feeds, line: LineId) {
        // A mark with no bytes behind it would take feed bytes for its own.
        if self.own.push_shared(&mut feeds.lines, line) {
            self.mark_own_queued(feeds);
        }
    }

    /// Own bytes just queued come after the feed bytes queued so far.
    fn mark_own_queued(&mut self, feeds: &Feeds) {
        if let Some(cursor) = self.cursor {
            let at = cursor.stop.unwrap_or(feeds.get(cursor.feed).end());
            let upto = self.own.total_queued();
            match self.marks.back_mut() {
                Some(mark) if mark.feed_at == at => mark.own_upto = upto,
                _ => self.marks.push_back(Mark {
                    feed_at: at,
                    own_upto: upto,
                }),
            }
        }
    }

    /// Takes `n` written bytes off the front.
    pub(super) fn consume(&mut self, mut n: usize, feeds: &mut Feeds, pool: &mut BufferPool) {
        if self.cursor.is_none() {
            // Own frames only: no feed bytes to interleave, one pass.
            if let Some(last) = self.own.consume(n, &mut feeds.lines, pool) {
                self.line_open = last != b'\n';
            }
            return;
        }
        while n > 0 {
            let chunk = self.outbound(feeds);
            if chunk.is_empty() {
                break;
            }
            let taken = n.min(chunk.len());
            if let Some(&last) = chunk.get(taken - 1) {
                self.line_open = last != b'\n';
            }
            n -= taken;
            let mark = self.marks.front().copied();
            match (self.cursor.as_mut(), mark) {
                (Some(cursor), Some(mark)) if mark.feed_at > cursor.pos => {
                    advance(feeds.get_mut(cursor.feed), cursor, taken);
                }
                (Some(_), Some(mark)) => {
                    self.own.consume(taken, &mut feeds.lines, pool);
                    if self.own.total_sent >= mark.own_upto {
                        self.marks.pop_front();
                    }
                }
                (Some(cursor), None) => advance(feeds.get_mut(cursor.feed), cursor, taken),
                (None, _) => {
                    self.own.consume(taken, &mut feeds.lines, pool);
                }
            }
            self.normalize(feeds);
        }
        self.leave_feed_if_done(feeds);
    }

    /// Moves the cursor over skipped ranges it has reached: nothing of them
    /// is ever written.
    fn normalize(&mut self, feeds: &mut Feeds) {
        let Some(cursor) = self.cursor.as_mut() else {
            return;
        };
        while let Some(&(start, end)) = self.skips.front() {
            if start > cursor.pos {
                break;
            }
            debug_assert_eq!(start, cursor.pos, "a skip behind the cursor");
            let len = end.saturating_sub(cursor.pos);
            advance(
                feeds.get_mut(cursor.feed),
                cursor,
                usize::try_from(len).unwrap_or(usize::MAX),
            );
            self.skips.pop_front();
        }
    }

    /// This stream does not get `from..to` of its feed (just appended while
    /// it receives): an IRC user's own message, which IRC does not echo.
    pub(super) fn skip(&mut self, feeds: &mut Feeds, from: u64, to: u64) {
        debug_assert!(self.receiving(), "skipping what is not received");
        if to > from && self.receiving() {
            self.skips.push_back((from, to));
            self.normalize(feeds);
        }
    }

    /// A closing stream that has read its feed up to its stop is done with
    /// it: what is left is its own frames (its BYE), in order, and the feed
    /// need not keep anything for it any more.
    fn leave_feed_if_done(&mut self, feeds: &mut Feeds) {
        if let Some(cursor) = self.cursor {
            if cursor.stop == Some(cursor.pos)
                && self.marks.iter().all(|mark| mark.feed_at <= cursor.pos)
            {
                self.marks.clear();
                self.skips.clear();
                self.cursor = None;
                feeds.leave(cursor.feed, cursor.pos);
            }
        }
    }

    /// Starts receiving every broadcast appended to `feed` from now on,
    /// after what is already queued. A stream reads one feed at a time: it
    /// must have left any other.
    pub(super) fn subscribe(&mut self, feeds: &mut Feeds, feed: FeedId) {
        if self.cursor.is_some() {
            return;
        }
        let end = feeds.get(feed).end();
        self.cursor = Some(Cursor {
            feed,
            pos: end,
            stop: None,
        });
        feeds.get_mut(feed).enter(end);
        if self.own.len() > 0 {
            self.marks.push_back(Mark {
                feed_at: end,
                own_upto: self.own.total_queued(),
            });
        }
    }

    /// Stops receiving new broadcasts; what was appended so far is still
    /// delivered, and own frames queued later come after it.
    pub(super) fn stop_receiving(&mut self, feeds: &mut Feeds) {
        if let Some(cursor) = self.cursor.as_mut() {
            if cursor.stop.is_none() {
                cursor.stop = Some(feeds.get(cursor.feed).end());
            }
        }
        self.leave_feed_if_done(feeds);
    }

    /// Leaves its feed at once, keeping everything queued: what it has not
    /// read of the feed, its shared lines and its own frames become its own
    /// bytes, in order. For a member that leaves a channel whose feed it
    /// reads and stays connected: from then on it is paced and bounded by
    /// its own queue like any reader (pacing kept that to about half the
    /// limit, or the limit for one that stalled), and the feed keeps nothing
    /// for it, however far the channel runs ahead.
    ///
    /// Own bytes queued before its first unread feed byte stay where they
    /// are; only what follows that byte is rebuilt. Bytes rebuilt are in
    /// place from then on, so each byte is copied at most once however
    /// often it joins and leaves: O(1) per byte delivered.
    ///
    /// Returns how many bytes it rebuilt.
    pub(super) fn leave_feed_keeping(&mut self, feeds: &mut Feeds, pool: &mut BufferPool) -> usize {
        let Some(cursor) = self.cursor else {
            return 0;
        };
        let settled = self
            .marks
            .iter()
            .take_while(|mark| mark.feed_at <= cursor.pos)
            .last()
            .map_or(self.own.total_sent, |mark| mark.own_upto);
        let settled = usize::try_from(settled.saturating_sub(self.own.total_sent))
            .unwrap_or(usize::MAX)
            .min(self.own.len());
        let mut rest = Vec::new();
        let mut skip = settled;
        self.chunks(feeds, |chunk| {
            let passed = skip.min(chunk.len());
            skip -= passed;
            rest.extend_from_slice(crate::in_bounds(chunk, passed..));
            true
        });
        let line_open = self.line_open;
        if !self.own.truncate(settled, &mut feeds.lines) {
            // Not reachable (marks sit between whole pushes): copy it all.
            debug_assert!(false, "a mark inside a shared line");
            let mut all = Vec::new();
            self.chunks(feeds, |chunk| {
                all.extend_from_slice(chunk);
                true
            });
            self.discard(feeds, pool);
            rest = all;
        }
        if let Some(cursor) = self.cursor.take() {
            feeds.leave(cursor.feed, cursor.pos);
        }
        self.marks.clear();
        self.skips.clear();
        if !rest.is_empty() {
            self.push_own(feeds, pool, |out| out.extend_from_slice(&rest));
        }
        self.line_open = line_open;
        rest.len()
    }

    /// [`discard`](Self::discard) for a line-based peer, keeping the first
    /// `taken` bytes (which the runtime holds and will report written) and
    /// the rest of a line begun by then, so that what is queued next (an
    /// IRC `ERROR`) starts a line of its own.
    pub(super) fn discard_after_line(
        &mut self,
        feeds: &mut Feeds,
        pool: &mut BufferPool,
        taken: usize,
    ) {
        let mut kept = Vec::new();
        let mut open = self.line_open;
        if taken > 0 || open {
            self.chunks(feeds, |mut chunk| {
                if kept.len() < taken {
                    let (head, tail) = chunk.split_at((taken - kept.len()).min(chunk.len()));
                    kept.extend_from_slice(head);
                    if let Some(&last) = head.last() {
                        open = last != b'\n';
                    }
                    if kept.len() < taken {
                        return true;
                    }
                    if !open {
                        return false;
                    }
                    chunk = tail;
                }
                match chunk.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        kept.extend_from_slice(crate::in_bounds(chunk, ..=end));
                        false
                    }
                    // A line is at most 512 bytes: more would not be a line.
                    None => {
                        kept.extend_from_slice(chunk);
                        kept.len() < taken + LONGEST_LINE
                    }
                }
            });
        }
        self.discard(feeds, pool);
        if !kept.is_empty() {
            self.push_own(feeds, pool, |out| out.extend_from_slice(&kept));
        }
    }

    /// Drops everything queued and leaves its feed.
    pub(super) fn discard(&mut self, feeds: &mut Feeds, pool: &mut BufferPool) {
        if let Some(cursor) = self.cursor.take() {
            feeds.leave(cursor.feed, cursor.pos);
        }
        self.marks.clear();
        self.skips.clear();
        self.own.discard(&mut feeds.lines, pool);
    }
}

fn advance(feed: &mut Feed, cursor: &mut Cursor, n: usize) {
    let to = cursor.pos + n as u64;
    feed.enter(to);
    feed.leave(cursor.pos);
    cursor.pos = to;
}

/// A FIFO of connections in which each is listed at most once: the owner
/// keeps a flag per connection that says whether it is listed.
#[derive(Debug, Default)]
pub(super) struct Queue {
    ids: VecDeque<ConnId>,
}

impl Queue {
    /// Lists `id` unless `listed` says it already is.
    pub(super) fn push(&mut self, id: ConnId, listed: &mut bool) {
        if !*listed {
            *listed = true;
            self.ids.push_back(id);
        }
    }

    pub(super) fn pop(&mut self) -> Option<ConnId> {
        self.ids.pop_front()
    }

    /// Takes `id` out of the list (O(length)).
    pub(super) fn remove(&mut self, id: ConnId) {
        self.ids.retain(|&listed| listed != id);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub(super) fn take(&mut self) -> VecDeque<ConnId> {
        std::mem::take(&mut self.ids)
    }
}

/// The receiving connections of one feed that are not listed for writing:
/// idle ones (nothing queued) and ones holding presence back.
///
/// Invariant: a held reader's queue is presence appended to its feed since
/// `hold`'s offset, nothing else (any other output announces it), so it is
/// at most the feed's growth since then.
#[derive(Debug, Default)]
pub(super) struct FeedReaders {
    /// Receiving connections whose queue emptied: the next broadcast makes
    /// them ready to transmit (or holds them).
    pub(super) idle: Queue,
    /// Readers with only held presence queued, not yet announced.
    pub(super) held: Queue,
    /// While readers are held: when they are announced at the latest, and
    /// the feed's end when holding began.
    pub(super) hold: Option<(Instant, u64)>,
    /// When presence was last broadcast to this feed.
    pub(super) last_presence: Option<Instant>,
}

/// How long presence must stop for a storm to count as over.
const QUIET: Duration = Duration::from_millis(10);

impl FeedReaders {
    /// When the held readers are announced: `batch` after holding began,
    /// or sooner, once presence has stopped coming for [`QUIET`] (the storm
    /// is over).
    pub(super) fn hold_due(&self, batch: Duration) -> Option<Instant> {
        let (latest, _) = self.hold?;
        let quiet = self
            .last_presence
            .and_then(|at| at.checked_add(batch.min(QUIET)));
        Some(quiet.map_or(latest, |quiet| quiet.min(latest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes everything queued in vectored writes of at most `chunk`
    /// bytes from up to three runs, checking that the runs begin with
    /// `outbound` and add up to everything that is then written.
    fn drain(
        stream: &mut Stream,
        feed: &mut Feeds,
        pool: &mut BufferPool,
        chunk: usize,
    ) -> Vec<u8> {
        let mut whole = Vec::new();
        stream.chunks(feed, |run| {
            whole.extend_from_slice(run);
            true
        });
        let mut out = Vec::new();
        loop {
            let mut runs = Vec::new();
            stream.chunks(feed, |run| {
                runs.push(run.to_vec());
                runs.len() < 3
            });
            let Some(first) = runs.first() else {
                assert!(stream.outbound(feed).is_empty());
                break;
            };
            assert_eq!(stream.outbound(feed), &first[..]);
            let bytes = runs.concat();
            let n = bytes.len().min(chunk);
            out.extend_from_slice(&bytes[..n]);
            stream.consume(n, feed, pool);
        }
        assert_eq!(out, whole, "the runs are everything written");
        out
    }

    #[test]
    fn own_frames_and_broadcasts_keep_their_order_for_every_write_size() {
        for chunk in [1, 2, 3, 5, 100] {
            let mut feed = Feeds::default();
            let mut pool = BufferPool::default();
            let mut a = Stream::default();
            let mut b = Stream::default();
            a.push_own(&feed, &mut pool, |o| o.extend_from_slice(b"W"));
            a.subscribe(&mut feed, FeedId::Native);
            b.subscribe(&mut feed, FeedId::Native);
            feed.native.append(b"1");
            a.push_own(&feed, &mut pool, |o| o.extend_from_slice(b"p"));
            feed.native.append(b"22");
            a.push_own(&feed, &mut pool, |o| o.extend_from_slice(b"q"));
            a.push_own(&feed, &mut pool, |o| o.extend_from_slice(b"r"));
            assert_eq!(a.queued(&feed), 7);
            assert_eq!(drain(&mut a, &mut feed, &mut pool, chunk), b"W1p22qr");
            feed.native.append(b"3");
            assert_eq!(drain(&mut a, &mut feed, &mut pool, chunk), b"3");
            assert_eq!(feed.native.len(), 4, "b has read nothing yet");
            assert_eq!(drain(&mut b, &mut feed, &mut pool, chunk), b"1223");
            assert_eq!(feed.native.len(), 0, "read by everyone: gone");
        }
    }

    #[test]
    fn shared_lines_keep_their_place_among_own_frames_and_broadcasts() {
        for chunk in [1, 2, 3, 4, 7, 100] {
            let mut feed = Feeds::default();
            let mut pool = BufferPool::default();
            let mut a = Stream::default();
            let mut b = Stream::default();
            let x = feed.lines.insert(b"xx");
            let y = feed.lines.insert(b"yyy");
            let z = feed.lines.insert(b"z");
            a.push_shared(&mut feed, x);
            a.push_own(&feed, &mut pool, |o| o.extend_from_slice(b"W"));
            a.subscribe(&mut feed, FeedId::Native);
            b.push_shared(&mut feed, x);
            b.subscribe(&mut feed, FeedId::Native);
            feed.native.append(b"1");
            a.push_shared(&mut feed, y);
            a.push_own(&feed, &mut pool, |o| o.extend_from_slice(b"p"));
            b.push_shared(&mut feed, y);
            a.push_shared(&mut feed, z);
            feed.native.append(b"22");
            a.push_own(&feed, &mut pool, |o| o.extend_from_slice(b"q"));
            a.push_shared(&mut feed, z);
            for line in [x, y, z] {
                feed.lines.release(line);
            }
            assert_eq!(a.queued(&feed), 13);
            assert_eq!(a.own_len(), 3, "the shared lines are not in its buffer");
            assert_eq!(feed.len(), 3 + 6, "the feed's bytes and each line once");
            let got = drain(&mut a, &mut feed, &mut pool, chunk);
            assert_eq!(got, b"xxW1yyypz22qz", "write size {chunk}");
            assert_eq!(feed.lines.holders().len(), 2, "b still holds x and y");
            assert_eq!(drain(&mut b, &mut feed, &mut pool, chunk), b"xx1yyy22");
            assert!(feed.lines.holders().is_empty(), "every line let go of");
            assert_eq!(feed.len(), 0);
            assert_eq!(a.capacity() + b.capacity(), 0, "idle: nothing held");
        }
    }

    #[test]
    fn leaving_a_feed_keeps_everything_and_copies_only_what_follows_the_first_unread_feed_byte() {
        for chunk in [1, 3, 100] {
            let mut feeds = Feeds::default();
            let mut pool = BufferPool::default();
            let mut s = Stream::default();
            let x = feeds.lines.insert(b"xx");
            let y = feeds.lines.insert(b"yyy");
            // A backlog of its own (a shared line among it) before it reads
            // the feed: it stays where it is.
            s.push_own(&feeds, &mut pool, |o| o.extend_from_slice(&[b'o'; 1000]));
            s.push_shared(&mut feeds, x);
            s.subscribe(&mut feeds, FeedId::Irc);
            feeds.irc.append(b"1");
            s.push_shared(&mut feeds, y);
            s.push_own(&feeds, &mut pool, |o| o.extend_from_slice(b"p"));
            feeds.irc.append(b"22");
            // Only the bytes from the first unread feed byte on are copied.
            assert_eq!(s.leave_feed_keeping(&mut feeds, &mut pool), 7);
            assert!(!s.in_feed());
            feeds.irc.append(b"not for it");
            // Joining and leaving again with nothing unread copies nothing.
            s.subscribe(&mut feeds, FeedId::Irc);
            assert_eq!(s.leave_feed_keeping(&mut feeds, &mut pool), 0);
            for line in [x, y] {
                feeds.lines.release(line);
            }
            let mut want = vec![b'o'; 1000];
            want.extend_from_slice(b"xx1yyyp22");
            assert_eq!(
                drain(&mut s, &mut feeds, &mut pool, chunk),
                want,
                "write size {chunk}"
            );
            assert!(feeds.lines.holders().is_empty(), "every line let go of");
            assert_eq!(feeds.len(), 0, "the feed keeps nothing for it");
        }
    }

    #[test]
    fn a_freed_line_queues_nothing_and_leaves_the_feed_in_order() {
        let mut feeds = Feeds::default();
        let mut pool = BufferPool::default();
        let mut a = Stream::default();
        a.subscribe(&mut feeds, FeedId::Native);
        feeds.native.append(b"abc");
        let line = feeds.lines.insert(b"gone");
        feeds.lines.release(line);
        a.push_shared(&mut feeds, line);
        feeds.native.append(b"def");
        assert_eq!(drain(&mut a, &mut feeds, &mut pool, 2), b"abcdef");
    }

    #[test]
    fn a_shared_line_lives_while_a_queue_holds_it_and_its_slot_is_reused() {
        let mut feeds = Feeds::default();
        let mut pool = BufferPool::default();
        let mut a = Stream::default();
        let line = feeds.lines.insert(b"once");
        a.push_shared(&mut feeds, line);
        feeds.lines.release(line);
        assert_eq!(feeds.lines.holders().get(&line), Some(&1));
        a.discard(&mut feeds, &mut pool);
        assert!(feeds.lines.holders().is_empty(), "discarding lets go");
        let next = feeds.lines.insert(b"again");
        assert_eq!(next, line, "the freed slot is used again");
        feeds.lines.release(next);
        assert_eq!(feeds.len(), 0);
    }

    #[test]
    fn a_closing_stream_reads_up_to_its_stop_then_its_farewell_then_leaves_the_feed() {
        let mut feed = Feeds::default();
        let mut pool = BufferPool::default();
        let mut a = Stream::default();
        let mut b = Stream::default();
        a.subscribe(&mut feed, FeedId::Native);
        b.subscribe(&mut feed, FeedId::Native);
        feed.native.append(b"12");
        a.stop_receiving(&mut feed);
        a.push_own(&feed, &mut pool, |o| o.extend_from_slice(b"BYE"));
        feed.native.append(b"3");
        assert!(!a.receiving() && a.in_feed());
        assert_eq!(a.queued(&feed), 5);
        assert_eq!(drain(&mut a, &mut feed, &mut pool, 2), b"12BYE");
        assert!(!a.in_feed(), "done with the feed");
        assert_eq!(drain(&mut b, &mut feed, &mut pool, 7), b"123");
    }

    #[test]
    fn discarding_a_stream_far_behind_copies_nothing_and_frees_the_feed() {
        let mut feed = Feeds::default();
        let mut pool = BufferPool::default();
        let mut slow = Stream::default();
        let mut fast = Stream::default();
        slow.subscribe(&mut feed, FeedId::Native);
        fast.subscribe(&mut feed, FeedId::Native);
        for _ in 0..100 {
            feed.native.append(&[7; 100]);
            drain(&mut fast, &mut feed, &mut pool, 1000);
        }
        assert_eq!(feed.native.len(), 10_000);
        slow.push_own(&feed, &mut pool, |o| o.extend_from_slice(b"PING"));
        slow.discard(&mut feed, &mut pool);
        assert_eq!(slow.queued(&feed), 0);
        assert_eq!(slow.capacity(), 0);
        assert_eq!(feed.native.len(), 0, "nobody needs the backlog any more");
    }

    /// A reader that never quite catches up: what both have read is moved
    /// out once it is worth it, so the feed stays bounded by the compaction
    /// rule rather than growing with everything ever broadcast. (The crowded
    /// simulation once took such a read prefix for unread output.)
    #[test]
    fn a_feed_never_fully_read_keeps_a_bounded_read_prefix() {
        let mut feed = Feeds::default();
        let mut pool = BufferPool::default();
        let mut lagging = Stream::default();
        let mut fast = Stream::default();
        lagging.subscribe(&mut feed, FeedId::Native);
        fast.subscribe(&mut feed, FeedId::Native);
        let mut peak = 0;
        for i in 0..2_000u32 {
            let frame = [u8::try_from(i % 251).unwrap(); 150];
            feed.native.append(&frame);
            drain(&mut fast, &mut feed, &mut pool, 4096);
            // Everything but the frame just appended.
            let behind = lagging.queued(&feed) - frame.len();
            lagging.consume(behind, &mut feed, &mut pool);
            assert_eq!(lagging.queued(&feed), frame.len());
            let read = feed.native.read_prefix();
            assert_eq!(feed.native.len() - read, frame.len(), "unread: one frame");
            assert!(read < COMPACT_AT, "{read} read bytes kept");
            peak = peak.max(feed.native.len());
        }
        assert!(peak > COMPACT_AT / 2, "the read prefix is kept for a while");
        assert!(peak <= COMPACT_AT + 150, "peak {peak}");
    }

    #[test]
    fn the_load_key_tracks_queued_bytes_as_the_feed_grows() {
        let mut feed = Feeds::default();
        let mut pool = BufferPool::default();
        let mut a = Stream::default();
        a.subscribe(&mut feed, FeedId::Native);
        feed.native.append(b"12345");
        a.push_own(&feed, &mut pool, |o| o.extend_from_slice(b"ab"));
        let (_, key) = a.load_key().unwrap();
        feed.native.append(b"678");
        assert_eq!(i128::from(feed.native.end()) - key, a.queued(&feed) as i128);
        assert_eq!(a.queued(&feed), 10);
    }

    #[test]
    fn skipped_ranges_are_never_written_but_held_until_passed() {
        for chunk in [1, 2, 3, 100] {
            let mut feeds = Feeds::default();
            let mut pool = BufferPool::default();
            let mut sender = Stream::default();
            let mut other = Stream::default();
            sender.subscribe(&mut feeds, FeedId::Irc);
            other.subscribe(&mut feeds, FeedId::Irc);
            feeds.irc.append(b"a1");
            let from = feeds.irc.end();
            feeds.irc.append(b"MINE");
            let to = feeds.irc.end();
            sender.skip(&mut feeds, from, to);
            sender.push_own(&feeds, &mut pool, |o| o.extend_from_slice(b"r"));
            feeds.irc.append(b"b2");
            let from = feeds.irc.end();
            feeds.irc.append(b"ME");
            let to = feeds.irc.end();
            sender.skip(&mut feeds, from, to);
            assert_eq!(sender.queued(&feeds), 11, "a1, r, b2 and its own 6 bytes");
            let (_, key) = sender.load_key().unwrap();
            assert_eq!(i128::from(feeds.irc.end()) - key, 11);
            assert_eq!(drain(&mut sender, &mut feeds, &mut pool, chunk), b"a1rb2");
            assert_eq!(sender.queued(&feeds), 0);
            assert_eq!(
                drain(&mut other, &mut feeds, &mut pool, chunk),
                b"a1MINEb2ME"
            );
            assert_eq!(feeds.irc.len(), 0, "read or skipped by everyone: gone");
        }
    }

    #[test]
    fn a_skip_at_the_cursor_is_passed_at_once() {
        let mut feeds = Feeds::default();
        let mut pool = BufferPool::default();
        let mut sender = Stream::default();
        sender.subscribe(&mut feeds, FeedId::Irc);
        feeds.irc.append(b"MINE");
        sender.skip(&mut feeds, 0, 4);
        assert_eq!(sender.queued(&feeds), 0);
        assert!(sender.outbound(&feeds).is_empty());
        assert_eq!(sender.feed_pos(), Some(4));
        sender.stop_receiving(&mut feeds);
        assert!(!sender.in_feed());
        assert_eq!(drain(&mut sender, &mut feeds, &mut pool, 9), b"");
    }
}
