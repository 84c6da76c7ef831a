//! A deterministic simulation of native and IRC users on one server, with a
//! virtual clock: the IRC front door's invariants under scripted or
//! fuzzer-chosen operations. Compiled for tests and the `fuzzing` feature.
//!
//! The world drives the server like a runtime (input only while the server
//! wants it, one bounded read at a time; `handle_timeout` when due; output
//! delivered to reading peers). Each peer decodes what it gets in its own
//! wire format and keeps:
//!
//! - the lobby's roster as it learns it: native users from the USERS
//!   snapshot and JOINED/LEFT, IRC users in the lobby from 353 and
//!   JOIN/PART/QUIT/NICK lines; every delta must make sense (nobody joins
//!   twice or leaves without having joined), which makes "exactly one
//!   departure notice per departure";
//! - the lobby messages it saw with unique texts, in order.
//!
//! Checks, after every step: queues bounded, every IRC line at most 512
//! bytes with CRLF and parseable, every native frame decodable, exactly one
//! close per connection. At the end, once everyone has read everything:
//! every lobby member's roster equals the server's lobby, and any two peers
//! saw their common lobby messages in the same order (one order per channel).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::codec::Deframer;
use crate::frame::{ClientFrame, ServerFrame};
use crate::irc::{MAX_LINE, Message};
use crate::name::Name;
use crate::server::{ConnId, Protocol, Server, ServerConfig, ServerEvent};
use crate::text::Text;

/// The other channel IRC users meet in.
const SIDE: &str = "#side";
const THIRD: &str = "#third";

/// Lowercased, as names compare.
fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

#[derive(Debug)]
struct Peer {
    conn: ConnId,
    irc: bool,
    deframer: Deframer,
    /// IRC bytes after the last CRLF.
    partial: Vec<u8>,
    /// Our registered name, as the server told us.
    name: Option<String>,
    /// The lobby roster as this peer knows it (lowercased names), while it
    /// is in the lobby.
    roster: Option<BTreeSet<String>>,
    /// 353 names of the lobby being collected after our own JOIN (IRC).
    names_reply: Option<BTreeSet<String>>,
    /// USERS frames being collected (native).
    users_reply: Option<BTreeSet<String>>,
    /// Ledger texts of lobby messages seen, in order.
    seen: Vec<String>,
    /// Ledger texts of messages seen in each channel other than the lobby
    /// (lowercased), in order (IRC only).
    seen_in: BTreeMap<String, Vec<String>>,
    /// Channels other than the lobby it is in (lowercased), with their
    /// rosters as it was told: the 353 names after its own JOIN (`None`
    /// until 366), then every JOIN, PART, KICK, QUIT and NICK.
    rooms: BTreeMap<String, Option<BTreeSet<String>>>,
    /// 353 names being collected, per channel other than the lobby.
    room_names: BTreeMap<String, BTreeSet<String>>,
    reading: bool,
    /// Bytes its runtime took to write later (`handle_taken`), as a writer
    /// thread blocked on a full socket does: written when it reads again.
    held: Vec<u8>,
    outgoing: Vec<u8>,
    ended: bool,
    closed: bool,
    /// It sent bytes of no protocol: its messages are not expected.
    garbled: bool,
}

impl Peer {
    fn receive(&mut self, bytes: &[u8], lobby: &str) {
        if self.irc {
            self.partial.extend_from_slice(bytes);
            while let Some(end) = self.partial.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.partial.drain(..end + 2).collect();
                assert!(line.len() <= MAX_LINE, "a line of {} bytes", line.len());
                let line = &line[..line.len() - 2];
                assert!(!line.contains(&0) && !line.contains(&b'\r') && !line.contains(&b'\n'));
                // Whole lines only: an ERROR glued to a line cut short, or
                // the tail of one, is a line nobody wrote.
                let text = String::from_utf8_lossy(line);
                assert!(
                    line.starts_with(b":")
                        || line.starts_with(b"ERROR :")
                        || line.starts_with(b"PING "),
                    "a line without a source: {text:.80}"
                );
                assert!(
                    !text.contains("Closing link") || line.starts_with(b"ERROR :"),
                    "an ERROR inside a line: {text:.80}"
                );
                let message = Message::parse(line).expect("a line the server wrote parses");
                self.apply_irc(&message, lobby);
            }
            assert!(self.partial.len() < MAX_LINE, "a line without its end");
        } else {
            let mut input = bytes;
            while let Some(raw) = self.deframer.next_frame(&mut input).expect("valid frames") {
                let frame = ServerFrame::decode(raw).expect("a frame the server wrote decodes");
                self.apply_native(&frame);
            }
        }
    }

    /// Membership and rosters of the channels other than the lobby: a line
    /// about a channel it is not in is one it should not have got.
    fn apply_rooms(
        &mut self,
        command: &str,
        nick: Option<&String>,
        me: Option<&String>,
        param: &dyn Fn(usize) -> Option<String>,
        lobby: &str,
    ) {
        let channel = |i| {
            param(i)
                .map(|c| key(&c))
                .filter(|c| c.starts_with('#') && *c != key(lobby))
        };
        let mine = nick.is_some() && nick == me;
        match command {
            "JOIN" | "PART" | "PRIVMSG" | "KICK" | "TOPIC" | "MODE" => {
                let Some(room) = channel(0) else { return };
                if command == "JOIN" && mine {
                    assert!(!self.rooms.contains_key(&room), "joined {room} twice");
                    self.rooms.insert(room.clone(), None);
                    self.room_names.insert(room, BTreeSet::new());
                    return;
                }
                let roster = self.rooms.get_mut(&room);
                let roster = roster.unwrap_or_else(|| panic!("{command} seen outside {room}"));
                let roster = roster
                    .as_mut()
                    .unwrap_or_else(|| panic!("{command} in {room} before its names"));
                let nick = nick.expect("a channel line has a source").clone();
                match command {
                    "JOIN" => assert!(
                        roster.insert(nick.clone()),
                        "JOIN of {nick} to {room} twice"
                    ),
                    "PART" if mine => {
                        self.rooms.remove(&room);
                    }
                    "PART" => assert!(roster.remove(&nick), "PART of {nick}, not in {room}"),
                    "KICK" => {
                        let victim = key(&param(1).unwrap_or_default());
                        assert!(roster.remove(&victim), "KICK of {victim}, not in {room}");
                        if Some(&victim) == me {
                            self.rooms.remove(&room);
                        }
                    }
                    _ => {}
                }
            }
            "353" => {
                if let Some(names) = channel(2).and_then(|room| self.room_names.get_mut(&room)) {
                    for name in param(3).unwrap_or_default().split(' ') {
                        names.insert(key(name.trim_start_matches(['@', '+'])));
                    }
                }
            }
            "366" => {
                if let Some(room) = channel(1) {
                    if let Some(names) = self.room_names.remove(&room) {
                        assert!(
                            names.contains(me.map_or("", String::as_str)),
                            "{room}'s names without us"
                        );
                        self.rooms.insert(room, Some(names));
                    }
                }
            }
            "QUIT" => {
                if let Some(nick) = nick {
                    for roster in self.rooms.values_mut().flatten() {
                        roster.remove(nick);
                    }
                }
            }
            "NICK" => {
                if let Some(old) = nick {
                    let new = key(&param(0).unwrap_or_default());
                    for roster in self.rooms.values_mut().flatten() {
                        if roster.remove(old) {
                            assert!(roster.insert(new.clone()), "NICK to {new}, already there");
                        }
                    }
                }
            }
            "ERROR" => {
                self.rooms.clear();
                self.room_names.clear();
            }
            _ => {}
        }
    }

    fn apply_native(&mut self, frame: &ServerFrame) {
        match frame {
            ServerFrame::Welcome { name } => {
                self.name = Some(name.as_str().to_owned());
                self.users_reply = Some(BTreeSet::new());
            }
            ServerFrame::Users { last, names } => {
                if let Some(users) = self.users_reply.as_mut() {
                    users.extend(names.iter().map(|n| key(n.as_str())));
                    if *last {
                        self.roster = self.users_reply.take();
                    }
                }
                // Otherwise a WHO answer: the roster is checked at the end.
            }
            ServerFrame::Joined { name } => {
                let roster = self.roster.as_mut().expect("JOINED before the roster");
                assert!(roster.insert(key(name.as_str())), "JOINED({name}) twice");
            }
            ServerFrame::Left { name, .. } => {
                let roster = self.roster.as_mut().expect("LEFT before the roster");
                assert!(
                    roster.remove(&key(name.as_str())),
                    "LEFT({name}) for nobody"
                );
            }
            ServerFrame::Message { text, .. } if text.as_str().starts_with('§') => {
                self.seen.push(text.as_str().to_owned());
            }
            ServerFrame::Bye { .. } => self.roster = None,
            _ => {}
        }
    }

    fn apply_irc(&mut self, message: &Message<'_>, lobby: &str) {
        let param = |i| {
            message
                .param(i)
                .map(|p| String::from_utf8_lossy(p).into_owned())
        };
        let nick = message
            .source
            .and_then(|s| s.split(|&b| b == b'!').next())
            .map(|n| key(&String::from_utf8_lossy(n)));
        let command = String::from_utf8_lossy(message.command).to_ascii_uppercase();
        let is_lobby = |p: Option<String>| p.is_some_and(|c| c.eq_ignore_ascii_case(lobby));
        let me = self.name.as_deref().map(key);
        self.apply_rooms(&command, nick.as_ref(), me.as_ref(), &param, lobby);
        match command.as_str() {
            "001" => self.name = param(0),
            "353" if is_lobby(param(2)) => {
                if let Some(names) = self.names_reply.as_mut() {
                    for name in param(3).unwrap_or_default().split(' ') {
                        names.insert(key(name.trim_start_matches(['@', '+'])));
                    }
                }
            }
            "366" if is_lobby(param(1)) => {
                if let Some(names) = self.names_reply.take() {
                    self.roster = Some(names);
                }
            }
            "JOIN" if is_lobby(param(0)) => {
                let nick = nick.expect("JOIN has a source");
                if Some(&nick) == me.as_ref() {
                    assert!(
                        self.roster.is_none() && self.names_reply.is_none(),
                        "joined twice"
                    );
                    self.names_reply = Some(BTreeSet::new());
                } else {
                    let roster = self.roster.as_mut().expect("JOIN seen outside the lobby");
                    assert!(roster.insert(nick.clone()), "JOIN of {nick} twice");
                }
            }
            "PART" if is_lobby(param(0)) => {
                let nick = nick.expect("PART has a source");
                if Some(&nick) == me.as_ref() {
                    assert!(self.roster.take().is_some(), "left a lobby it was not in");
                } else {
                    let roster = self.roster.as_mut().expect("PART seen outside the lobby");
                    assert!(roster.remove(&nick), "PART of {nick}, not in the lobby");
                }
            }
            "QUIT" => {
                let nick = nick.expect("QUIT has a source");
                if let Some(roster) = self.roster.as_mut() {
                    // Peers in other channels only are told too: the lobby
                    // roster changes only for members.
                    roster.remove(&nick);
                }
            }
            "NICK" => {
                let old = nick.expect("NICK has a source");
                let new = key(&param(0).unwrap_or_default());
                if Some(&old) == me.as_ref() {
                    self.name = param(0);
                }
                if let Some(roster) = self.roster.as_mut() {
                    if roster.remove(&old) {
                        assert!(roster.insert(new.clone()), "NICK to {new}, already there");
                    }
                }
            }
            "PRIVMSG" if is_lobby(param(0)) => {
                let text = param(1).unwrap_or_default();
                if text.starts_with('§') {
                    self.seen.push(text);
                }
            }
            "PRIVMSG" if param(0).is_some_and(|c| c.starts_with('#')) => {
                let text = param(1).unwrap_or_default();
                if text.starts_with('§') {
                    let channel = key(&param(0).unwrap_or_default());
                    self.seen_in.entry(channel).or_default().push(text);
                }
            }
            "ERROR" => self.roster = None,
            _ => {}
        }
    }
}

/// The server and its native and IRC peers.
#[derive(Debug)]
pub(crate) struct Mixed {
    server: Server,
    now: Instant,
    peers: Vec<Peer>,
    read_chunk: usize,
    next_text: u64,
    lobby: String,
    closes: BTreeMap<ConnId, usize>,
    /// Named by `poll_transmit` and not written empty yet: only these are
    /// written, as a runtime does.
    to_write: BTreeSet<ConnId>,
}

impl Mixed {
    pub(crate) fn new(config: ServerConfig) -> Self {
        let lobby = config.irc.lobby.as_str().to_owned();
        Self {
            server: Server::new(config),
            now: Instant::now(),
            peers: Vec::new(),
            read_chunk: 4096,
            next_text: 0,
            lobby,
            closes: BTreeMap::new(),
            to_write: BTreeSet::new(),
        }
    }

    fn connect(&mut self, irc: bool) -> usize {
        let conn = if irc {
            self.server.handle_accept_irc(self.now)
        } else {
            self.server.handle_accept(self.now)
        };
        self.peers.push(Peer {
            conn,
            irc,
            deframer: Deframer::new(),
            partial: Vec::new(),
            name: None,
            roster: None,
            names_reply: None,
            users_reply: None,
            seen: Vec::new(),
            seen_in: BTreeMap::new(),
            rooms: BTreeMap::new(),
            room_names: BTreeMap::new(),
            reading: true,
            held: Vec::new(),
            outgoing: Vec::new(),
            ended: false,
            closed: false,
            garbled: false,
        });
        self.drive();
        self.peers.len() - 1
    }

    fn send(&mut self, peer: usize, bytes: &[u8]) {
        if !self.peers[peer].ended {
            self.peers[peer].outgoing.extend_from_slice(bytes);
        }
        self.drive();
    }

    fn line(&mut self, peer: usize, line: &str) {
        self.send(peer, format!("{line}\r\n").as_bytes());
    }

    fn frame(&mut self, peer: usize, frame: &ClientFrame) {
        self.send(peer, &frame.to_bytes());
    }

    fn register(&mut self, peer: usize, name: &str) {
        if self.peers[peer].irc {
            self.line(peer, &format!("NICK {name}"));
            self.line(peer, &format!("USER {name} 0 * :{name}"));
        } else {
            let name = Name::new(name).unwrap();
            self.frame(peer, &ClientFrame::Hello { name });
        }
    }

    /// A lobby message with a unique text, in the sender's protocol.
    fn say(&mut self, peer: usize, len: usize) {
        self.next_text += 1;
        let mut text = format!("§{}#", self.next_text);
        text.extend(std::iter::repeat_n('.', len.saturating_sub(text.len())));
        if self.peers[peer].irc {
            let line = format!("PRIVMSG {} :{text}", self.lobby);
            self.line(peer, &line);
        } else {
            let text = Text::new(&text).unwrap();
            self.frame(peer, &ClientFrame::Say { text });
        }
    }

    /// A message with a unique text to `channel`, not the lobby (IRC
    /// users only).
    fn say_in(&mut self, peer: usize, channel: &str, len: usize) {
        self.next_text += 1;
        let mut text = format!("§{}#", self.next_text);
        text.extend(std::iter::repeat_n('.', len.saturating_sub(text.len())));
        self.line(peer, &format!("PRIVMSG {channel} :{text}"));
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.drive();
    }

    /// Drains the server until it is idle; panics on a deadline that stays
    /// due while nothing else happens (a runtime would spin on it).
    fn drive(&mut self) {
        let mut idle_due_rounds = 0u32;
        loop {
            let mut moved = false;
            for peer in &mut self.peers {
                if peer.closed || !self.server.wants_read(peer.conn) {
                    continue;
                }
                if !peer.outgoing.is_empty() {
                    let n = peer.outgoing.len().min(self.read_chunk);
                    let read: Vec<u8> = peer.outgoing.drain(..n).collect();
                    self.server.handle_input(self.now, peer.conn, &read);
                    moved = true;
                } else if peer.ended {
                    peer.ended = false;
                    self.server.handle_eof(self.now, peer.conn);
                    moved = true;
                }
            }
            let fired = self
                .server
                .poll_timeout()
                .is_some_and(|due| due <= self.now);
            if fired {
                self.server.handle_timeout(self.now);
            }
            while let Some(conn) = self.server.poll_transmit() {
                self.to_write.insert(conn);
                moved = true;
            }
            while let Some(event) = self.server.poll_event() {
                moved = true;
                if let ServerEvent::Close { conn, .. } = event {
                    *self.closes.entry(conn).or_default() += 1;
                    assert_eq!(self.closes[&conn], 1, "{conn} closed twice");
                    let peer = self.peers.iter_mut().find(|p| p.conn == conn && !p.closed);
                    let peer = peer.expect("a close for a connection we know");
                    peer.closed = true;
                    peer.roster = None;
                }
            }
            for index in 0..self.peers.len() {
                let peer = &self.peers[index];
                if !peer.closed && peer.reading && !peer.held.is_empty() {
                    let (conn, lobby) = (peer.conn, self.lobby.clone());
                    let held = std::mem::take(&mut self.peers[index].held);
                    self.peers[index].receive(&held, &lobby);
                    self.server.handle_written(self.now, conn, held.len());
                    moved = true;
                }
                let peer = &self.peers[index];
                if peer.closed || !peer.reading || !self.to_write.contains(&peer.conn) {
                    continue;
                }
                let pending = self.server.outbound(peer.conn).to_vec();
                if pending.is_empty() {
                    self.to_write.remove(&peer.conn);
                    continue;
                }
                let conn = peer.conn;
                let lobby = self.lobby.clone();
                self.peers[index].receive(&pending, &lobby);
                self.server.handle_written(self.now, conn, pending.len());
                moved = true;
            }
            if moved {
                idle_due_rounds = 0;
            } else if fired {
                idle_due_rounds += 1;
                assert!(idle_due_rounds < 10_000, "the server never settles");
            } else {
                self.check_bounds();
                return;
            }
        }
    }

    fn check_bounds(&self) {
        self.server.check_shared_lines();
        for peer in self.peers.iter().filter(|p| !p.closed) {
            assert!(
                self.server.queued(peer.conn) == 0
                    || self.to_write.contains(&peer.conn)
                    || self.server.holds_presence(peer.conn),
                "{} has output queued that the server never named",
                peer.conn
            );
        }
        let max = self.server.config().max_outbound;
        // Own replies may pass half the limit by one burst (a NAMES reply of
        // every user, a WELCOME roster); unasked lines by the limit again.
        let bound = 2 * max + self.server.registered_count() * 40 + 64 * 1024;
        for peer in self.peers.iter().filter(|p| !p.closed) {
            let queued = self.server.queued(peer.conn);
            assert!(
                queued <= bound,
                "{queued} bytes queued for {} (bound {bound})",
                peer.conn
            );
            assert!(
                self.server.protocol(peer.conn)
                    == Some(if peer.irc {
                        Protocol::Irc
                    } else {
                        Protocol::Native
                    })
            );
        }
    }

    /// Everyone reads everything; then the end-to-end checks.
    pub(crate) fn finish(&mut self) {
        for peer in &mut self.peers {
            peer.reading = true;
        }
        self.drive();
        // Held presence goes out when its batch time is up.
        for step in 0.. {
            let holding = self
                .peers
                .iter()
                .any(|p| !p.closed && self.server.holds_presence(p.conn));
            if !holding {
                break;
            }
            assert!(step < 1000, "presence is held again and again");
            let due = self.server.poll_timeout().expect("a hold has a deadline");
            let batch = self.server.config().presence_batch;
            assert!(due <= self.now + batch, "presence held past the batch time");
            self.now = self.now.max(due);
            self.drive();
        }
        let lobby: BTreeSet<String> = self
            .server
            .lobby_names()
            .iter()
            .map(|n| key(n.as_str()))
            .collect();
        for peer in self.peers.iter().filter(|p| !p.closed) {
            let Some(name) = peer.name.as_deref().map(key) else {
                continue;
            };
            let member = lobby.contains(&name);
            match &peer.roster {
                Some(roster) => {
                    assert!(
                        member,
                        "{name} thinks it is in the lobby {roster:?}; lobby {lobby:?}, registered as {:?}, closing {}",
                        self.server.name_of(peer.conn),
                        self.server.is_closing(peer.conn)
                    );
                    assert_eq!(roster, &lobby, "{name}'s lobby roster");
                }
                None => assert!(!member || !peer.irc, "{name} is in the lobby unawares"),
            }
            // Rosters of the other channels: the names, then every change.
            for channel in [SIDE, THIRD] {
                let members: BTreeSet<String> = self
                    .server
                    .channel_member_names(channel)
                    .iter()
                    .map(|n| key(n.as_str()))
                    .collect();
                let told = peer.rooms.get(&key(channel));
                if members.contains(&name) {
                    assert_eq!(told, Some(&Some(members)), "{name}'s roster of {channel}");
                } else {
                    assert_eq!(told, None, "{name} thinks it is in {channel}");
                }
            }
        }
        // One order per channel: common texts appear in the same order
        // everywhere.
        let lobby_seen = |p: &Peer| p.seen.clone();
        let side_seen = |p: &Peer| p.seen_in.get(SIDE).cloned().unwrap_or_default();
        let third_seen = |p: &Peer| p.seen_in.get(THIRD).cloned().unwrap_or_default();
        for (channel, seen) in [
            ("the lobby", &lobby_seen as &dyn Fn(&Peer) -> Vec<String>),
            (SIDE, &side_seen),
            (THIRD, &third_seen),
        ] {
            for a in self.peers.iter().filter(|p| !p.garbled) {
                let a_seen = seen(a);
                let position: BTreeMap<&str, usize> = a_seen
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.as_str(), i))
                    .collect();
                assert_eq!(
                    position.len(),
                    a_seen.len(),
                    "a message seen twice in {channel}"
                );
                for b in self.peers.iter().filter(|p| !p.garbled) {
                    let order: Vec<usize> = seen(b)
                        .iter()
                        .filter_map(|t| position.get(t.as_str()).copied())
                        .collect();
                    assert!(
                        order.windows(2).all(|w| w[0] < w[1]),
                        "two peers saw {channel} in different orders"
                    );
                }
            }
        }
    }
}

/// Runs a mixed scenario described by arbitrary bytes (the `mixed` fuzz
/// target's input).
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))] // `crate::fuzzing` re-exports it
pub fn run_mixed(data: &[u8]) {
    let config = ServerConfig {
        max_clients: 12,
        max_outbound: 4096,
        ..ServerConfig::default()
    };
    run_mixed_with(config, data);
}

pub(crate) fn run_mixed_with(config: ServerConfig, data: &[u8]) -> Mixed {
    let mut world = Mixed::new(config);
    const NAMES: [&str; 6] = ["ann", "Bob", "bob", "cy", "dee", "eve"];
    let mut rest = data;
    while let [op, who, arg, tail @ ..] = rest {
        rest = tail;
        let open: Vec<usize> = (0..world.peers.len())
            .filter(|&p| !world.peers[p].closed)
            .collect();
        let peer = (!open.is_empty()).then(|| open[usize::from(*who) % open.len()]);
        let name = NAMES[usize::from(*arg) % NAMES.len()];
        let channel = match arg % 4 {
            3 => SIDE.to_owned(),
            2 => THIRD.to_owned(),
            _ => world.lobby.clone(),
        };
        match (op % 16, peer) {
            (0, _) | (_, None) => {
                world.connect(arg % 2 == 0);
            }
            (1, Some(p)) => {
                world.register(p, name);
                if world.peers[p].irc && arg % 2 == 0 {
                    let join = format!("JOIN {}", world.lobby);
                    world.line(p, &join);
                }
            }
            (2, Some(p)) if world.peers[p].irc && arg % 5 == 4 => world.say_in(p, SIDE, 40),
            (2, Some(p)) if world.peers[p].irc && arg % 5 == 3 => world.say_in(p, THIRD, 40),
            (2, Some(p)) => world.say(p, [8, 100, 400][usize::from(*arg) % 3]),
            (3, Some(p)) if world.peers[p].irc => world.line(p, &format!("JOIN {channel}")),
            (4, Some(p)) if world.peers[p].irc && arg % 7 == 6 => world.line(p, "JOIN 0"),
            (4, Some(p)) if world.peers[p].irc => world.line(p, &format!("PART {channel} :bye")),
            (5, Some(p)) if world.peers[p].irc => world.line(p, &format!("NICK {name}")),
            (6, Some(p)) if world.peers[p].irc => world.line(p, &format!("PRIVMSG {name} :hi")),
            (6, Some(p)) => {
                let to = Name::new(name).unwrap();
                let text = Text::new("hi").unwrap();
                world.frame(p, &ClientFrame::Whisper { to, text });
            }
            (7, Some(p)) if world.peers[p].irc => world.line(p, "QUIT :done"),
            (7, Some(p)) => world.frame(p, &ClientFrame::Bye),
            (8, Some(p)) => {
                world.peers[p].ended = true;
                world.drive();
            }
            (9, Some(p)) => {
                world.peers[p].reading = !world.peers[p].reading;
                world.drive();
            }
            (10, Some(p)) => {
                let n = usize::from(*arg % 24).min(rest.len());
                let (garbage, tail) = rest.split_at(n);
                rest = tail;
                world.peers[p].garbled = true;
                world.send(p, garbage);
            }
            (11, Some(p)) => {
                // A burst of lobby messages in one read.
                for _ in 0..(1 + arg % 16) {
                    world.say(p, 200);
                }
            }
            (12, Some(p)) if world.peers[p].irc => world.line(p, &format!("NAMES {}", world.lobby)),
            (12, Some(p)) => world.frame(p, &ClientFrame::Who),
            (13, _) => {
                // The runtimes of peers that stopped reading may have taken
                // part of their queues, even part of a line, to write once
                // the socket drains (`handle_taken`).
                for peer in world.peers.iter_mut().filter(|p| !p.reading && !p.closed) {
                    if peer.held.is_empty() {
                        let pending = world.server.outbound(peer.conn);
                        let take = pending.len().min(usize::from(*arg) * 13);
                        peer.held = pending.get(..take).unwrap_or_default().to_vec();
                        world.server.handle_taken(peer.conn, take);
                    }
                }
                world.advance(Duration::from_millis(u64::from(*arg) * 5));
            }
            (14, _) => world.advance(Duration::from_millis(u64::from(*arg) * 500)),
            (15, Some(p)) if world.peers[p].irc && arg % 3 == 0 => {
                world.line(p, &format!("KICK {channel} {name} :out"));
            }
            (15, Some(p)) if world.peers[p].irc && arg % 3 == 1 => {
                world.line(p, &format!("TOPIC {channel} :topic {arg}"));
            }
            (15, Some(p)) if world.peers[p].irc => {
                // Several changes, some refused (a ban list entry twice,
                // a nick perhaps not in the channel).
                let mode = format!("MODE {channel} +ov-o+b {name} {name} {name} {name}!*@*");
                world.line(p, &mode);
            }
            _ => world.advance(Duration::from_millis(1)),
        }
    }
    world.finish();
    world
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn mixed_scenarios_keep_every_invariant(ops in proptest::collection::vec(any::<u8>(), 0..1200)) {
            run_mixed(&ops);
        }
    }

    #[test]
    fn irc_users_come_and_go_while_everyone_watches() {
        let mut world = Mixed::new(ServerConfig::default());
        let native = world.connect(false);
        world.register(native, "nat");
        let watcher = world.connect(true);
        world.register(watcher, "watch");
        world.line(watcher, "JOIN #lobby");
        for round in 0..3 {
            let p = world.connect(true);
            world.register(p, &format!("guest{round}"));
            world.line(p, "JOIN #lobby");
            world.say(p, 20);
            world.line(p, "PART #lobby");
            world.line(p, "JOIN #lobby");
            world.line(p, &format!("NICK renamed{round}"));
            world.say(native, 20);
            match round {
                0 => world.line(p, "QUIT :bye"),
                1 => {
                    world.peers[p].ended = true;
                    world.drive();
                }
                _ => {}
            }
        }
        world.finish();
        assert_eq!(world.peers[native].seen.len(), 6);
        assert_eq!(
            world.peers[native].roster.as_ref().map(BTreeSet::len),
            Some(3),
            "nat, watch and renamed2"
        );
    }

    #[test]
    fn a_mixed_crowd_chats_in_one_order() {
        let mut world = Mixed::new(ServerConfig::default());
        let mut peers = Vec::new();
        for i in 0..12 {
            let p = world.connect(i % 2 == 1);
            world.register(p, &format!("user{i}"));
            if i % 2 == 1 {
                world.line(p, "JOIN #lobby");
            }
            peers.push(p);
        }
        for &p in &peers {
            if world.peers[p].irc {
                world.line(p, "JOIN #side");
            }
        }
        for round in 0..5 {
            for &p in &peers {
                world.say(p, 10 + round);
                if world.peers[p].irc {
                    world.say_in(p, SIDE, 20);
                }
            }
        }
        world.finish();
        for &p in &peers {
            let peer = &world.peers[p];
            // Native users hear their own messages, IRC users do not.
            let expected = if peer.irc { 60 - 5 } else { 60 };
            assert_eq!(peer.seen.len(), expected, "peer {p}");
            let side = if peer.irc { 30 - 5 } else { 0 };
            let seen_side = peer.seen_in.get(SIDE).map_or(0, Vec::len);
            assert_eq!(seen_side, side, "peer {p} in #side");
            assert_eq!(peer.roster.as_ref().map(BTreeSet::len), Some(12));
        }
    }
}
