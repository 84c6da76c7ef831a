//! Congestion: whether a request's deliveries may go now, pausing and
//! resuming a connection's input, and who counts as stalled.
//!
//! Invariants: a connection is paused exactly while `Conn::paused` is set;
//! its kept input is in its deframer, in order, and runs again only at
//! `handle_timeout` (after the runtime's writes) once its blocker drained,
//! stalled or left. `load` keys may overstate a queue, never understate it.

use std::time::Instant;

use super::*;

impl Server {
    /// Acts on the frames in `bytes` (after any kept back) for `id`, until
    /// one has to wait for a reader to drain.
    pub(super) fn process(&mut self, now: Instant, id: ConnId, bytes: &[u8]) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if conn.irc.is_some() {
            return self.process_irc(now, id, bytes);
        }
        let mut deframer = std::mem::take(&mut conn.deframer);
        if conn.paused.is_some() {
            // The runtime's read that was already under way.
            deframer.stash(bytes);
            conn.deframer = deframer;
            return;
        }
        let mut input = bytes;
        loop {
            let Some(conn) = self.conn(id) else { return };
            if conn.is_closing() || conn.doomed {
                return;
            }
            let queued = conn.stream.queued(&self.feeds);
            if queued > 0 && queued >= self.pace() {
                // Its own output is backed up: slow it down.
                deframer.stash(input);
                self.pause(id, id, deframer);
                return;
            }
            let frame = match deframer.next_frame(&mut input) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => {
                    let detail = error.to_string();
                    self.protocol_error(now, id, &detail);
                    return;
                }
            };
            match self.handle_frame(now, id, frame) {
                Flow::Done => self.reap(now),
                Flow::Wait(blocker) => {
                    let (op, payload) = (frame.op, frame.payload.to_vec());
                    deframer.unread(op, &payload);
                    deframer.stash(input);
                    self.pause(id, blocker, deframer);
                    return;
                }
            }
        }
        if let Some(conn) = self.conn_mut(id) {
            conn.deframer = deframer;
        }
    }

    /// Pauses `id`'s input (kept in `deframer`) until `blocker` drains.
    pub(super) fn pause(&mut self, id: ConnId, blocker: ConnId, deframer: Deframer) {
        if let Some(conn) = self.conn_mut(id) {
            conn.deframer = deframer;
        }
        self.pause_input(id, blocker);
    }

    /// Pauses `id`'s input (kept by the caller) until `blocker` drains.
    pub(super) fn pause_input(&mut self, id: ConnId, blocker: ConnId) {
        let grace = self.config.stall_grace;
        let recheck_at = match self.conn_mut(blocker) {
            Some(b) => {
                b.has_waiters = true;
                // Its own queue drains only when it reads: no recheck.
                (blocker != id)
                    .then(|| b.progress_at.checked_add(grace))
                    .flatten()
            }
            None => None,
        };
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        conn.paused = Some(Pause {
            blocker,
            recheck_at,
            on_others: blocker != id,
        });
        // Listed once: a connection paused again after a recheck keeps its
        // entry (entries of connections gone or no longer paused are dropped
        // by the next scan).
        if !conn.waiting_listed {
            conn.waiting_listed = true;
            self.waiting.push(id);
        }
        self.schedule(id);
    }

    /// Every connection waiting for `blocker` is tried again at the next
    /// `handle_timeout`, after the runtime's writes.
    pub(super) fn wake_waiters(&mut self, now: Instant, blocker: ConnId) {
        match self.conn_mut(blocker) {
            Some(b) if b.has_waiters => b.has_waiters = false,
            _ => return,
        }
        let mut waiting = std::mem::take(&mut self.waiting);
        waiting.retain(|&id| {
            let Some(conn) = live_conn(&mut self.slots, id) else {
                return false;
            };
            let keep = match conn.paused {
                Some(pause) if pause.blocker == blocker => {
                    self.resumable.push(id, &mut conn.resumable_listed);
                    false
                }
                Some(_) => true,
                None => false,
            };
            conn.waiting_listed = keep;
            keep
        });
        self.waiting = waiting;
        if !self.resumable.is_empty() {
            self.resume_due = earliest(self.resume_due, Some(now));
        }
    }

    /// Runs the kept input of every connection whose blocker drained.
    pub(super) fn resume_paused(&mut self, now: Instant) {
        for id in self.resumable.take() {
            let Some(conn) = self.conn_mut(id) else {
                continue;
            };
            conn.resumable_listed = false;
            let Some(pause) = conn.paused.take() else {
                continue;
            };
            if conn.is_closing() {
                continue;
            }
            if pause.on_others {
                // It was not read because others were slow, not because it
                // went quiet: its silence starts now.
                conn.last_received = now;
                conn.pings_sent = 0;
            }
            self.process(now, id, &[]);
            self.schedule(id);
            if self.wants_read(id) {
                if self.conn(id).is_some_and(|c| c.eof_pending) {
                    self.depart(now, id, Reason::Disconnected, Farewell::Flush);
                } else {
                    self.events.push_back(ServerEvent::Resume { conn: id });
                }
            }
            self.reap(now);
        }
    }

    /// The queue length up to which a reader that is still reading is sent
    /// more: half the limit, so that frames nobody asked for (LEFT, PING)
    /// still fit below it.
    pub(super) fn pace(&self) -> usize {
        self.config.max_outbound / 2
    }

    pub(super) fn is_doomed(&self, id: ConnId) -> bool {
        self.conn(id).is_none_or(|c| c.doomed)
    }

    /// Whether `conn`, with `queued` bytes waiting, has taken nothing for the
    /// stall grace: it no longer holds anyone back.
    /// A reader whose presence the server holds back is not: it was not
    /// given anything to take.
    pub(super) fn is_stalled(&self, conn: &Conn, queued: usize, now: Instant) -> bool {
        queued > 0
            && !conn.is_held()
            && conn
                .progress_at
                .checked_add(self.config.stall_grace)
                .is_some_and(|stalled_at| now >= stalled_at)
    }

    /// Whether a broadcast of `len` bytes to `feed` may go now:
    /// `Err(reader)` when it would take a reader that is still reading past
    /// the pace. Stalled readers it would take past the limit are dropped.
    pub(super) fn admit_broadcast(
        &mut self,
        now: Instant,
        feed: FeedId,
        len: usize,
    ) -> Result<(), ConnId> {
        let max = self.config.max_outbound;
        let mut over = Vec::new();
        for (id, queued) in self.queues_over(feed, self.pace().saturating_sub(len)) {
            let Some(conn) = self.conn(id) else { continue };
            if !self.is_stalled(conn, queued, now) {
                if conn.is_held() {
                    // Waiting for it to drain: let it.
                    self.release_hold(now, feed);
                }
                return Err(id);
            }
            if queued.saturating_add(len) > max {
                over.push(id);
            }
        }
        for id in over {
            self.doom(now, id);
        }
        Ok(())
    }

    /// Every receiving connection with more than `threshold` bytes queued
    /// (and at least one), with its queue length.
    ///
    /// `load` keys may be stale in one direction only: a write moves a
    /// reader forward without touching its key (that would cost a tree
    /// update per write), so a key can only overstate the queue. The walk
    /// stops at the first key that says "at most `threshold`", which is then
    /// true of everything after it; entries found overstated on the way are
    /// brought up to date, so each write costs at most one update, and only
    /// when the queue is looked at.
    pub(super) fn queues_over(&mut self, feed: FeedId, threshold: usize) -> Vec<(ConnId, usize)> {
        let end = i128::from(self.feeds.get(feed).end());
        let (mut over, mut stale) = (Vec::new(), Vec::new());
        let first = ConnId {
            index: 0,
            generation: 0,
        };
        for &(_, key, id) in self
            .load
            .range((feed, i128::MIN, first)..)
            .take_while(|(f, _, _)| *f == feed)
        {
            let bound = usize::try_from(end - key).unwrap_or(usize::MAX);
            if bound <= threshold {
                break;
            }
            let queued = self.conn(id).map_or(0, |c| c.stream.queued(&self.feeds));
            if queued > threshold && queued > 0 {
                over.push((id, queued));
            } else {
                stale.push(id);
            }
        }
        for id in stale {
            self.reindex(id);
        }
        over
    }

    /// [`admit_broadcast`](Self::admit_broadcast) for one recipient.
    pub(super) fn admit_private(
        &mut self,
        now: Instant,
        to: ConnId,
        len: usize,
    ) -> Result<(), ConnId> {
        let Some(conn) = self.conn(to) else {
            return Ok(());
        };
        let queued = conn.stream.queued(&self.feeds);
        if queued == 0 || queued.saturating_add(len) <= self.pace() {
            return Ok(());
        }
        if !self.is_stalled(conn, queued, now) {
            return Err(to);
        }
        if queued.saturating_add(len) > self.config.max_outbound {
            self.doom(now, to);
        }
        Ok(())
    }

    /// Whether a frame of `len` bytes nobody asked for, added to `queued`
    /// bytes past the limit, drops `id`: a stalled reader is dropped at the
    /// limit; one still reading only past twice the limit (such frames are
    /// few: one LEFT per departure, one PING per interval).
    pub(super) fn overflows(&self, id: ConnId, queued: usize, len: usize, now: Instant) -> bool {
        let total = queued.saturating_add(len);
        total > self.config.max_outbound.saturating_mul(2)
            || self
                .conn(id)
                .is_none_or(|c| self.is_stalled(c, queued, now))
    }
}
