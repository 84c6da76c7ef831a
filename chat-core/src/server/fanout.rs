//! How a channel's lines reach its IRC members: through the channel's own
//! feed, appended once per line whatever the number of members, or, for a
//! member whose stream already reads another feed, as a line shared among
//! its own frames.
//!
//! Invariants:
//!
//! - Every channel with an IRC member has a [`ChannelFeed`]: the lobby's
//!   is the IRC lobby feed ([`FeedId::Irc`]), any other channel's a feed
//!   of its own, retired when the channel ends (its slot is reused only
//!   once every reader has left it).
//! - An IRC member of a channel gets each of the channel's lines exactly
//!   once: either its stream receives the channel's feed, or it is listed
//!   in `by_copy`, never both. A stream reads one feed at a time, so a
//!   member reads the feed of the channel it joined while reading none,
//!   and gets the others' lines by copy.
//! - A member that leaves (PART, KICK) still gets what was appended before
//!   it left, and nothing after: its unread part of the feed becomes its
//!   own queue and it leaves the feed at once
//!   ([`Stream::leave_feed_keeping`]), so it is paced and bounded like any
//!   reader and never dropped because the channel runs ahead. Only closing
//!   connections read a feed up to a stop (`closing_readers`).
//! - A sender's own line is skipped in the feed it reads (IRC echoes a
//!   JOIN or PART, never a PRIVMSG), and counts as queued until passed,
//!   which paces a sender that never reads.

use super::*;
use crate::channel::ChannelName;

/// The feed of one channel and its IRC members that get its lines by copy.
#[derive(Debug)]
pub(super) struct ChannelFeed {
    feed: FeedId,
    by_copy: Vec<ConnId>,
}

impl Server {
    /// Whether any IRC user is in `channel` (reading its feed or not).
    pub(super) fn channel_has_irc(&self, channel: &ChannelName) -> bool {
        self.channel_feeds
            .get(&channel.key())
            .is_some_and(|c| !c.by_copy.is_empty() || self.feeds.get(c.feed).slowest().is_some())
    }

    /// The feed of `channel` and its members that get its lines by copy
    /// (`sender` only with `echo`); `None` when no IRC user is in it.
    fn recipients(
        &self,
        channel: &ChannelName,
        sender: ConnId,
        echo: bool,
    ) -> Option<(FeedId, Vec<ConnId>)> {
        let c = self.channel_feeds.get(&channel.key())?;
        let copies = c
            .by_copy
            .iter()
            .copied()
            .filter(|&m| echo || m != sender)
            .collect();
        Some((c.feed, copies))
    }

    /// Admits a line of `irc_len` bytes to the IRC members of `channel`
    /// (the sender too with `echo`) before anything changes. `Err(reader)`
    /// when a reader that is still reading must drain first.
    pub(super) fn admit_channel(
        &mut self,
        now: Instant,
        channel: &ChannelName,
        sender: ConnId,
        echo: bool,
        irc_len: usize,
    ) -> Result<(), ConnId> {
        let Some((feed, copies)) = self.recipients(channel, sender, echo) else {
            return Ok(());
        };
        if self.feeds.get(feed).slowest().is_some() {
            self.admit_broadcast(now, feed, irc_len)?;
        }
        self.admit_copies(now, irc_len, &copies)
    }

    /// Queues `irc` (whole lines, encoded once) for the IRC members of
    /// `channel`: once into its feed, and shared with each member reading
    /// by copy. `sender` gets it only with `echo`, and at once (held
    /// presence is for the others).
    pub(super) fn deliver_channel(
        &mut self,
        now: Instant,
        channel: &ChannelName,
        sender: ConnId,
        echo: bool,
        kind: Broadcast,
        irc: &[u8],
    ) {
        if irc.is_empty() {
            return;
        }
        let Some((feed, copies)) = self.recipients(channel, sender, echo) else {
            return;
        };
        // Only the lobby's presence is held back in storms: handle_timeout
        // and the hold limits look after the lobby's feeds.
        let kind = match feed {
            FeedId::Channel(_) => Broadcast::Message,
            _ => kind,
        };
        if self.feeds.get(feed).slowest().is_some() {
            self.scratch.clear();
            self.scratch.extend_from_slice(irc);
            let (from, to) = self.broadcast(now, feed, kind);
            let Self {
                slots,
                feeds,
                readers,
                transmits,
                ..
            } = self;
            let sender_reads = live_conn(slots, sender)
                .filter(|c| c.stream.receiving() && c.stream.feed_id() == Some(feed));
            if let Some(conn) = sender_reads {
                if echo {
                    transmits.push(sender, &mut conn.announced);
                } else {
                    conn.stream.skip(feeds, from, to);
                    if conn.stream.queued(feeds) == 0 {
                        // The broadcast took it off the idle list for bytes
                        // it does not get: back on, or the next one would
                        // not name it.
                        list_idle(readers, sender, conn, feed);
                    }
                    self.reindex(sender);
                }
            }
        }
        self.deliver(now, irc, &copies);
    }

    /// IRC connection `id`, just in `channel`, receives its lines from now
    /// on: from the channel's feed when it reads no feed now, else by copy.
    pub(super) fn enter_channel(&mut self, id: ConnId, channel: &ChannelName) {
        let lobby = *channel == *self.channels.lobby();
        let Self {
            channel_feeds,
            feeds,
            ..
        } = self;
        let entry = channel_feeds
            .entry(channel.key())
            .or_insert_with(|| ChannelFeed {
                feed: if lobby {
                    FeedId::Irc
                } else {
                    feeds.open_channel()
                },
                by_copy: Vec::new(),
            });
        let feed = entry.feed;
        if self.conn(id).is_some_and(|c| c.stream.feed_id().is_none()) {
            self.subscribe(id, feed);
        } else if let Some(entry) = self.channel_feeds.get_mut(&channel.key()) {
            entry.by_copy.push(id);
        }
    }

    /// IRC connection `id` is no longer in `channel` (PART, KICK, QUIT):
    /// no more of its lines, but what was sent before still arrives. The
    /// channel's feed is retired with the channel.
    pub(super) fn leave_channel(&mut self, now: Instant, id: ConnId, channel: &ChannelName) {
        let key = channel.key();
        let Some(entry) = self.channel_feeds.get_mut(&key) else {
            return;
        };
        entry.by_copy.retain(|&m| m != id);
        let feed = entry.feed;
        let gone = self.channels.get(channel).is_none() && feed != FeedId::Irc;
        if gone {
            self.channel_feeds.remove(&key);
        }
        let Self {
            slots,
            feeds,
            pool,
            transmits,
            ..
        } = self;
        if let Some(conn) = live_conn(slots, id) {
            if conn.stream.receiving() && conn.stream.feed_id() == Some(feed) {
                // Its unread part goes with it: a member that left and reads
                // on is never dropped because the channel runs ahead of it.
                conn.stream.leave_feed_keeping(feeds, pool);
                if conn.stream.queued(feeds) > 0 {
                    // Held presence of the feed it left is its own now.
                    transmits.push(id, &mut conn.announced);
                }
                self.leave_load(id);
            }
        }
        // Senders paused for it may not need to wait any more.
        self.wake_waiters(now, id);
        if gone {
            self.feeds.retire(feed);
        }
    }

    /// Every channel is gone at once (shutdown).
    pub(super) fn clear_channel_feeds(&mut self) {
        for (_, entry) in self.channel_feeds.drain() {
            self.feeds.retire(entry.feed);
        }
    }
}
