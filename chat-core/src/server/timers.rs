//! Timers: each connection's named deadlines ([`Timer`]: handshake, ping,
//! idle, linger, and the recheck of a paused sender's blocker), one live heap
//! entry per connection for the earliest of them, and what each does when it
//! fires.
//!
//! Invariants: `Conn::timer` is the deadline of the connection's live heap
//! entry; superseded entries are skipped when they surface, and
//! `prune_timers` keeps the heap's top live so `poll_timeout` is exact. Which
//! timer fired is read off [`Timer::armed`], the same list the deadline is
//! the minimum of, so the two cannot disagree.

use std::time::Instant;

use super::*;

/// A timer a connection can have armed. When several are due at once, the
/// greatest in this order fires first: a departure makes the rest moot, and
/// a handshake timeout is the truer reason than the idle one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// Silence of `ping_interval × (pings_sent + 1)`: time for a PING.
    Ping,
    /// The blocker of this paused sender would now count as stalled: check.
    Recheck,
    /// Silence reached `idle_timeout`: the connection is dropped.
    Idle,
    /// No HELLO within `handshake_timeout` of connecting.
    Handshake,
    /// A closing connection's last bytes had their time: it is released.
    Linger,
}

impl Timer {
    /// Every timer `conn` has armed, with its deadline (a timer so far off
    /// that it overflows the clock is not armed).
    fn armed(conn: &Conn, config: &ServerConfig) -> [Option<(Instant, Timer)>; 4] {
        let recheck = conn
            .paused
            .and_then(|pause| pause.recheck_at)
            .map(|at| (at, Timer::Recheck));
        match conn.phase {
            Phase::Closing { deadline, .. } => {
                [deadline.map(|at| (at, Timer::Linger)), None, None, None]
            }
            // Not read because others are slow: its silence does not count
            // (see `waits_for_others`); only the recheck is due.
            _ if waits_for_others(conn) => [recheck, None, None, None],
            phase => {
                let pings = config
                    .ping_interval
                    .saturating_mul(conn.pings_sent.saturating_add(1));
                let handshake = match phase {
                    Phase::AwaitingHello => conn.connected_at.checked_add(config.handshake_timeout),
                    _ => None,
                };
                [
                    recheck,
                    conn.last_received
                        .checked_add(pings)
                        .map(|at| (at, Timer::Ping)),
                    conn.last_received
                        .checked_add(config.idle_timeout)
                        .map(|at| (at, Timer::Idle)),
                    handshake.map(|at| (at, Timer::Handshake)),
                ]
            }
        }
    }
}

/// Whether `conn`'s input is paused because another connection is slow: the
/// server is not reading it, so neither its handshake nor its silence may
/// count against it (a slow reader would otherwise time everyone out).
fn waits_for_others(conn: &Conn) -> bool {
    conn.paused.is_some_and(|pause| pause.on_others)
}

impl Server {
    /// The earliest moment one of `conn`'s timers is due; `None` when none is
    /// armed.
    pub(super) fn deadline(&self, conn: &Conn) -> Option<Instant> {
        Timer::armed(conn, &self.config)
            .into_iter()
            .flatten()
            .map(|(at, _)| at)
            .min()
    }

    /// The timer of `conn` that fires first at `now`, among those due and not
    /// yet fired in this turn.
    fn due(&self, conn: &Conn, now: Instant, fired: &[Timer]) -> Option<Timer> {
        Timer::armed(conn, &self.config)
            .into_iter()
            .flatten()
            .filter(|&(at, timer)| at <= now && !fired.contains(&timer))
            .map(|(_, timer)| timer)
            .max()
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

    /// Fires every timer of `id` due at `now`, each at most once (so a zero
    /// interval cannot spin), then schedules what is left.
    pub(super) fn fire_timers(&mut self, now: Instant, id: ConnId) {
        let mut fired = Vec::with_capacity(4);
        while let Some(timer) = self.conn(id).and_then(|conn| self.due(conn, now, &fired)) {
            fired.push(timer);
            match timer {
                Timer::Linger => {
                    let reason = match self.conn(id).map(|conn| conn.phase) {
                        Some(Phase::Closing { reason, .. }) => reason,
                        _ => return,
                    };
                    return self.release(now, id, reason, false);
                }
                Timer::Handshake => {
                    return self.depart(
                        now,
                        id,
                        Reason::Timeout,
                        Farewell::Bye("handshake timeout"),
                    );
                }
                Timer::Idle => {
                    return self.depart(now, id, Reason::Timeout, Farewell::Bye("idle timeout"));
                }
                Timer::Recheck => {
                    let Some(conn) = live_conn(&mut self.slots, id) else {
                        return;
                    };
                    if let Some(pause) = conn.paused.as_mut() {
                        // Its blocker may have stalled: try again.
                        pause.recheck_at = None;
                        self.resumable.push(id, &mut conn.resumable_listed);
                        self.resume_due = earliest(self.resume_due, Some(now));
                    }
                }
                Timer::Ping => self.send_ping(now, id),
            }
        }
        self.schedule(id);
    }

    /// Sends `id` a PING and counts the intervals of silence it covers, so
    /// the next one is due a whole interval later.
    fn send_ping(&mut self, now: Instant, id: ConnId) {
        let interval = self.config.ping_interval.as_nanos().max(1);
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let silent_for = now.saturating_duration_since(conn.last_received);
        conn.pings_sent = u32::try_from(silent_for.as_nanos() / interval).unwrap_or(u32::MAX);
        let token = self.next_ping_token;
        self.next_ping_token = self.next_ping_token.wrapping_add(1);
        let irc = self.is_irc(id);
        let server = &self.config.irc.server_name;
        let mut out = Vec::new();
        if irc {
            crate::irc::write_message(&mut out, None, "PING", &[server]);
        } else {
            frame::encode_ping(&mut out, token);
        }
        self.send(now, id, Delivery::Unasked, |queue| {
            queue.extend_from_slice(&out);
        });
    }
}
