//! Timers: each connection's next deadline (handshake, ping, idle, linger,
//! or the recheck of a paused sender's blocker), one live entry per
//! connection in the heap, and what fires when it is due.
//!
//! Invariant: `Conn::timer` is the deadline of the connection's live heap
//! entry; superseded entries are skipped when they surface, and
//! `prune_timers` keeps the heap's top live so `poll_timeout` is exact.

use std::time::Instant;

use super::*;

/// Whether `conn`'s input is paused because another connection is slow: the
/// server is not reading it, so neither its handshake nor its silence may
/// count against it (a slow reader would otherwise time everyone out).
fn waits_for_others(conn: &Conn) -> bool {
    conn.paused.is_some_and(|pause| pause.on_others)
}

impl Server {
    /// The earliest moment something is due for `conn`; `None` when nothing
    /// ever is (timers so long that they overflow the clock).
    pub(super) fn deadline(&self, conn: &Conn) -> Option<Instant> {
        let config = &self.config;
        match conn.phase {
            Phase::Closing { deadline, .. } => deadline,
            // Not read because others are slow: its silence does not count
            // (see `waits_for_others`); only the recheck is due.
            _ if waits_for_others(conn) => conn.paused.and_then(|p| p.recheck_at),
            phase => {
                let pings = config
                    .ping_interval
                    .saturating_mul(conn.pings_sent.saturating_add(1));
                let silence = earliest(
                    conn.last_received.checked_add(pings),
                    conn.last_received.checked_add(config.idle_timeout),
                );
                let due = match phase {
                    Phase::AwaitingHello => earliest(
                        silence,
                        conn.connected_at.checked_add(config.handshake_timeout),
                    ),
                    _ => silence,
                };
                earliest(due, conn.paused.and_then(|p| p.recheck_at))
            }
        }
    }

    /// Makes sure the timer heap holds an entry for `id` no later than its
    /// deadline. A later deadline needs no new entry: the early one fires,
    /// finds nothing due and reschedules.
    pub(super) fn schedule(&mut self, id: ConnId) {
        let Some(conn) = self.conn(id) else { return };
        let Some(deadline) = self.deadline(conn) else {
            return;
        };
        if conn.timer.is_some_and(|t| t <= deadline) {
            return;
        }
        if let Some(conn) = self.conn_mut(id) {
            conn.timer = Some(deadline);
        }
        self.timers.push(Reverse((deadline, id)));
    }

    /// Pops superseded timer entries off the top of the heap, so that
    /// [`poll_timeout`](Self::poll_timeout) names a live connection's entry.
    pub(super) fn prune_timers(&mut self) {
        while let Some(Reverse((deadline, id))) = self.timers.peek().copied() {
            if self.conn(id).is_some_and(|c| c.timer == Some(deadline)) {
                break;
            }
            self.timers.pop();
        }
    }

    pub(super) fn fire_timers(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = live_conn(&mut self.slots, id) else {
            return;
        };
        if let Some(pause) = conn.paused.as_mut() {
            if pause.recheck_at.is_some_and(|at| at <= now) {
                // Its blocker may have stalled: try again.
                pause.recheck_at = None;
                self.resumable.push(id, &mut conn.resumable_listed);
                self.resume_due = earliest(self.resume_due, Some(now));
            }
        }
        let Some(conn) = self.conn(id) else { return };
        let config = &self.config;
        let silent_for = now.saturating_duration_since(conn.last_received);
        match conn.phase {
            // Suspended while others are slow (see `waits_for_others`).
            Phase::AwaitingHello | Phase::Registered(_) if waits_for_others(conn) => {}
            Phase::Closing { deadline, reason } => {
                if deadline.is_some_and(|deadline| now >= deadline) {
                    return self.release(now, id, reason, false);
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
                    self.send(now, id, Delivery::Unasked, |out| {
                        frame::encode_ping(out, token);
                    });
                }
            }
        }
        self.schedule(id);
    }
}
