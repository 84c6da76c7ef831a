//! The IRC front door on the server core (`../shared/IRC.md`): an IRC
//! connection's input path (lines instead of frames, paused and resumed
//! like native input), registration, and every command, mapped onto the
//! same names, channels and lobby as the native protocol.
//!
//! Invariants:
//! - Names are global: a nick is registered in the same [`Presence`] as a
//!   native name, so nobody holds a name twice across the protocols.
//! - The lobby is one channel for both protocols: every native user is a
//!   member from WELCOME until it leaves; an IRC user is one while it has
//!   joined it. Every join to and departure from the lobby is announced to
//!   native members as JOINED/LEFT (through the shared feed) and to IRC
//!   members as IRC lines, in the same call, so both see one order.
//! - A lobby message is encoded once per wire format: once into the native
//!   feed, once into the lobby's IRC feed. A message to any other channel
//!   is encoded once into that channel's feed. A member whose stream reads
//!   another feed, and any line for several users outside one channel
//!   (NICK, QUIT), gets it as a shared line its queue holds (see
//!   [`fanout`](super::fanout)); its bytes are never copied per recipient.
//! - Messages from a sender (PRIVMSG, NOTICE, JOIN, PART) are admitted
//!   against every recipient's queue before anything changes, as native
//!   SAY is: a reader that is still reading pauses the sender instead of
//!   being dropped, and a line kept back runs again unchanged.
//! - Every refusal is a numeric; nothing an IRC client sends closes its
//!   connection except QUIT.

use std::time::Instant;

use super::*;
use crate::channel::{ChannelError, ChannelName, Flag, List, ModeChange, Topic, mask_matches};
use crate::irc::registration::{self, Lusers, Registration, ServerInfo, Step};
use crate::irc::text::{split_lines, to_native};
use crate::irc::{
    Line, LineReader, MAX_LINE, Message, ParseError, command_word, echo, write_message,
    write_text_message,
};
use crate::name::MAX_NAME;

/// Software version in 002, 004 and 351.
const VERSION: &str = concat!("sansio-chat-", env!("CARGO_PKG_VERSION"));
/// Most channels one LIST names (the most populated; a notice tells of the
/// rest, which `LIST #name` still finds): a reply stays a bounded size
/// however many channels exist.
const MAX_LIST_ROWS: usize = 200;
/// Departures remembered for `WHOWAS`.
const WHOWAS_HISTORY: usize = 128;
/// Host part of an IRC user's mask (the core knows no addresses).
const IRC_HOST: &str = "irc";
/// Host part of a native user's mask.
const NATIVE_HOST: &str = "native";

/// What an IRC connection has beside the common [`Conn`].
#[derive(Debug, Default)]
pub(super) struct IrcConn {
    reader: LineReader,
    /// Input kept while paused: the line that waits, then what followed.
    pending: Vec<u8>,
    registration: Registration,
    user: String,
    realname: String,
    away: Option<String>,
    oper: bool,
    invisible: bool,
    /// Targets of the kept line already served before it had to wait: a
    /// line run again goes on from there, and nothing is sent twice.
    resume_at: usize,
}

impl IrcConn {
    pub(super) fn capacity(&self) -> usize {
        self.pending.capacity() + self.reader.buffered()
    }
}

/// A user gone, for `WHOWAS`.
#[derive(Debug, Clone)]
pub(super) struct Gone {
    nick: Name,
    user: String,
    host: &'static str,
    realname: String,
}

/// What a user looks like to IRC.
struct Who {
    nick: Name,
    user: String,
    host: &'static str,
    realname: String,
    away: Option<String>,
    oper: bool,
}

impl Who {
    fn mask(&self) -> String {
        format!("{}!{}@{}", self.nick, self.user, self.host)
    }
}

/// Upper-case command word, as an owned string (commands are short).
fn command_of(message: &Message<'_>) -> String {
    String::from_utf8_lossy(message.command).to_ascii_uppercase()
}

/// A parameter as text. What no IRC line can carry (NUL, a CR inside the
/// line) becomes U+FFFD, as invalid UTF-8 does: a message that holds one is
/// relayed, not dropped without a word.
fn text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.contains(['\0', '\r']) {
        text.replace(['\0', '\r'], "\u{FFFD}")
    } else {
        text.into_owned()
    }
}

/// The text IRC users see when a user leaves.
fn quit_text(reason: Reason, detail: &str) -> String {
    match reason {
        Reason::Quit if detail.is_empty() => "Quit".into(),
        Reason::Quit => format!("Quit: {detail}"),
        Reason::Timeout => "Ping timeout".into(),
        _ if !detail.is_empty() => detail.into(),
        _ => reason.describe().into(),
    }
}

/// The `ERROR` an IRC connection gets when the server closes it. A long
/// reason is cut so that the closing `)` still fits the line.
pub(super) fn error_text(reason: Reason, detail: &str) -> String {
    // `ERROR :Closing link (` ... `)` CR LF around the reason.
    let room = MAX_LINE - "ERROR :Closing link ()\r\n".len();
    let fit = |text: String| {
        let mut end = text.len().min(room);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("Closing link ({})", text.get(..end).unwrap_or_default())
    };
    match reason {
        Reason::Shutdown => "Server shutting down".into(),
        Reason::SlowConsumer => "Closing link (slow consumer)".into(),
        Reason::Quit => fit(quit_text(reason, detail)),
        _ if detail.is_empty() => format!("Closing link ({})", reason.describe()),
        _ => fit(detail.to_owned()),
    }
}

/// IRC text made fit for a native user, if anything is left to deliver.
fn native_text(irc: &str) -> Option<String> {
    let text = to_native(irc)?;
    let clean: String = text
        .chars()
        .filter(|&c| !c.is_control() || c == '\t')
        .collect();
    (validate_text(clean.as_bytes()).is_ok()).then_some(clean)
}

/// `unix` seconds as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian).
fn format_time(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Howard Hinnant's days-to-civil, shifted to start on 0000-03-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Appends `:source COMMAND target :text` once per piece of `text` that
/// fits in a line (each LF starts a new one; nothing is cut mid-character).
fn write_text_lines(out: &mut Vec<u8>, source: &str, command: &str, target: &str, text: &str) {
    // `:source COMMAND target :` and CRLF around the text: the colon and
    // the three spaces, the trailing colon, CR and LF.
    let overhead = source.len() + command.len() + target.len() + 7;
    let room = crate::irc::MAX_LINE.saturating_sub(overhead);
    for piece in split_lines(text, room) {
        write_text_message(out, Some(source), command, &[target, piece]);
    }
}

/// An IRC user's PRIVMSG or NOTICE relayed to IRC users: one line, the
/// text cut at a character boundary if the source added makes it longer
/// than a line (as servers do: a client that reads one line per message
/// must not get two). Native text is split instead ([`write_text_lines`]).
fn write_relayed_line(out: &mut Vec<u8>, source: &str, command: &str, target: &str, text: &str) {
    let overhead = source.len() + command.len() + target.len() + 7;
    let room = crate::irc::MAX_LINE.saturating_sub(overhead);
    if text.len() <= room {
        write_text_message(out, Some(source), command, &[target, text]);
        return;
    }
    // A CTCP (`\x01ACTION …\x01`) cut keeps its closing `\x01`.
    let ctcp = text.len() > 1 && text.starts_with('\x01') && text.ends_with('\x01');
    let mut end = room.saturating_sub(usize::from(ctcp));
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = text.get(..end).unwrap_or_default().to_owned();
    if ctcp {
        cut.push('\x01');
    }
    write_text_message(out, Some(source), command, &[target, &cut]);
}

impl Server {
    // ----- input -----

    /// [`process`](Self::process) for an IRC connection: acts on each line
    /// of `bytes` (after any kept back) until one has to wait.
    pub(super) fn process_irc(&mut self, now: Instant, id: ConnId, bytes: &[u8]) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let paused = conn.paused.is_some();
        let Some(irc) = conn.irc.as_mut() else { return };
        if paused {
            // The runtime's read that was already under way.
            irc.pending.extend_from_slice(bytes);
            return;
        }
        let mut reader = std::mem::take(&mut irc.reader);
        let kept = std::mem::take(&mut irc.pending);
        let joined;
        let mut input: &[u8] = if kept.is_empty() {
            bytes
        } else {
            let mut all = kept;
            all.extend_from_slice(bytes);
            joined = all;
            &joined
        };
        loop {
            let Some(conn) = self.conn(id) else { return };
            if conn.is_closing() || conn.doomed {
                return;
            }
            let queued = conn.stream.queued(&self.feeds);
            if queued > 0 && queued >= self.pace() && !input.is_empty() {
                self.keep_irc_input(id, reader, &[], input);
                self.pause_input(id, id);
                return;
            }
            let flow = match reader.next_line(&mut input) {
                None => break,
                Some(Line::TooLong) => {
                    self.numeric(now, id, "417", &["Input line was too long"]);
                    Flow::Done
                }
                Some(Line::Complete(line)) => match self.irc_line(now, id, line) {
                    Flow::Wait(blocker) => {
                        let mut line = line.to_vec();
                        line.push(b'\n');
                        self.keep_irc_input(id, reader, &line, input);
                        self.pause_input(id, blocker);
                        return;
                    }
                    done => done,
                },
            };
            if let Flow::Done = flow {
                self.reap(now);
            }
        }
        self.keep_irc_input(id, reader, &[], &[]);
    }

    fn keep_irc_input(&mut self, id: ConnId, reader: LineReader, line: &[u8], rest: &[u8]) {
        if let Some(irc) = self.conn_mut(id).and_then(|c| c.irc.as_mut()) {
            irc.reader = reader;
            irc.pending.clear();
            irc.pending.extend_from_slice(line);
            irc.pending.extend_from_slice(rest);
            if irc.pending.is_empty() {
                irc.pending = Vec::new();
            }
        }
    }

    fn irc_line(&mut self, now: Instant, id: ConnId, line: &[u8]) -> Flow {
        let message = match Message::parse(line) {
            Ok(message) => message,
            // An empty line (or one of spaces) is ignored, as servers do.
            Err(ParseError::Empty) => return Flow::Done,
            // A command that is not letters is no command this server knows.
            Err(ParseError::BadCommand) => {
                let command = echo(&text(command_word(line)));
                match self.name_of(id) {
                    Some(_) => self.numeric(now, id, "421", &[&command, "Unknown command"]),
                    None => self.numeric(now, id, "451", &["You have not registered"]),
                }
                return Flow::Done;
            }
        };
        match self.name_of(id) {
            None => {
                self.register_irc(now, id, &message);
                Flow::Done
            }
            Some(nick) => self.irc_command(now, id, nick, &message),
        }
    }

    /// The targets of the current line already served, if it is one that
    /// waited (see `IrcConn::resume_at`).
    fn take_resume(&mut self, id: ConnId) -> usize {
        self.irc_mut(id)
            .map_or(0, |irc| std::mem::take(&mut irc.resume_at))
    }

    /// Waits at target `i` of the current line: it runs again from there.
    fn wait_at(&mut self, id: ConnId, i: usize, blocker: ConnId) -> Flow {
        if let Some(irc) = self.irc_mut(id) {
            irc.resume_at = i;
        }
        Flow::Wait(blocker)
    }

    /// Admits `lines` lines of at most [`MAX_LINE`] bytes to every IRC
    /// member of `channel` (a TOPIC, KICK or MODE announcement), before
    /// anything changes.
    fn admit_channel_lines(
        &mut self,
        now: Instant,
        channel: &str,
        lines: usize,
    ) -> Result<(), ConnId> {
        let Ok(name) = ChannelName::new(channel) else {
            return Ok(());
        };
        let to = self.irc_members(&name);
        self.admit_copies(now, MAX_LINE.saturating_mul(lines), &to)
    }

    // ----- registration -----

    fn register_irc(&mut self, now: Instant, id: ConnId, message: &Message<'_>) {
        let mut out = Vec::new();
        let Self {
            slots,
            presence,
            config,
            ..
        } = self;
        let Some(irc) = live_conn(slots, id).and_then(|c| c.irc.as_mut()) else {
            return;
        };
        let step = irc.registration.handle(
            &config.irc.server_name,
            message,
            |nick| presence.contains(nick),
            &mut out,
        );
        self.reply_bytes(now, id, &out);
        match step {
            Step::Pending => {}
            Step::Quit => {
                let reason = message.param(0).map(text).unwrap_or_default();
                self.depart(now, id, Reason::Quit, Farewell::Bye(&reason));
            }
            Step::Registered {
                nick,
                user,
                realname,
            } => {
                if !self.presence.insert(nick, id) {
                    return;
                }
                self.max_users = self.max_users.max(self.presence.len());
                let Some(conn) = self.conn_mut(id) else {
                    return;
                };
                conn.phase = Phase::Registered(nick);
                if let Some(irc) = conn.irc.as_mut() {
                    irc.user = user.clone();
                    irc.realname = realname;
                    irc.registration = Registration::new();
                }
                let mut out = Vec::new();
                registration::welcome(
                    &mut out,
                    &self.server_info(),
                    nick.as_str(),
                    &user,
                    IRC_HOST,
                    self.lusers(),
                    self.config.irc.motd.as_deref(),
                );
                self.reply_bytes(now, id, &out);
                self.events.push_back(ServerEvent::Joined {
                    conn: id,
                    name: nick,
                    protocol: Protocol::Irc,
                });
            }
        }
    }

    fn server_info(&self) -> ServerInfo {
        let created = match self.wall_clock {
            Some((_, unix)) => format_time(unix),
            None => "at start-up".into(),
        };
        ServerInfo {
            name: self.config.irc.server_name.clone(),
            network: "sansio-chat".into(),
            version: VERSION.into(),
            created,
        }
    }

    fn lusers(&self) -> Lusers {
        Lusers {
            users: self.presence.len(),
            invisible: self.invisible_online,
            operators: self.opers_online,
            unknown: self.open.saturating_sub(self.presence.len()),
            channels: self.channels.iter().count(),
            max_users: self.max_users.max(self.presence.len()),
        }
    }

    /// Seconds since the Unix epoch at `now`, if the runtime told the wall clock.
    pub(super) fn unix_at(&self, now: Instant) -> u64 {
        self.wall_clock.map_or(0, |(at, unix)| {
            unix.saturating_add(now.saturating_duration_since(at).as_secs())
        })
    }

    // ----- who is who -----

    /// Whether a server query's target names a server other than this one
    /// (a user's nick names this one too: every user is here).
    fn names_another_server(&self, target: &str) -> bool {
        let server = &self.config.irc.server_name;
        !target.eq_ignore_ascii_case(server)
            && !mask_matches(target, server)
            && self.lookup_nick(target.as_bytes()).is_none()
    }

    /// Whether `id` is an IRC user with `+i`: left out of a channel's NAMES
    /// and WHO for those not in that channel, of WHO masks for those who
    /// share no channel with it, and counted apart by LUSERS.
    fn is_invisible(&self, id: ConnId) -> bool {
        self.conn(id)
            .and_then(|c| c.irc.as_deref())
            .is_some_and(|i| i.invisible)
    }

    pub(super) fn is_irc(&self, id: ConnId) -> bool {
        self.conn(id).is_some_and(|c| c.irc.is_some())
    }

    fn who(&self, id: ConnId) -> Option<Who> {
        let nick = self.conn(id)?.name()?;
        self.who_as(id, nick)
    }

    /// [`who`](Self::who) under `nick` (a user on its way out has no name
    /// any more, but is announced under it).
    fn who_as(&self, id: ConnId, nick: Name) -> Option<Who> {
        let conn = self.conn(id)?;
        Some(match conn.irc.as_deref() {
            Some(irc) => Who {
                nick,
                user: irc.user.clone(),
                host: IRC_HOST,
                realname: irc.realname.clone(),
                away: irc.away.clone(),
                oper: irc.oper,
            },
            None => Who {
                nick,
                user: nick.as_str().to_owned(),
                host: NATIVE_HOST,
                realname: nick.as_str().to_owned(),
                away: None,
                oper: false,
            },
        })
    }

    /// `nick!user@host` of a registered user (what channel masks match).
    pub(super) fn mask_of(&self, id: ConnId) -> String {
        self.who(id).map(|w| w.mask()).unwrap_or_default()
    }

    fn irc_mut(&mut self, id: ConnId) -> Option<&mut IrcConn> {
        self.conn_mut(id).and_then(|c| c.irc.as_deref_mut())
    }

    fn lookup_nick(&self, nick: &[u8]) -> Option<ConnId> {
        Name::from_bytes(nick)
            .ok()
            .and_then(|n| self.presence.lookup(&n))
    }

    /// IRC connections in `channel`, in join order.
    fn irc_members(&self, channel: &ChannelName) -> Vec<ConnId> {
        self.channels.get(channel).map_or_else(Vec::new, |c| {
            c.members()
                .iter()
                .map(|m| m.id)
                .filter(|&m| self.is_irc(m))
                .collect()
        })
    }

    // ----- output -----

    fn reply_bytes(&mut self, now: Instant, id: ConnId, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.send(now, id, Delivery::Reply, |out| out.extend_from_slice(bytes));
        }
    }

    /// `:server CODE nick params...` to `id`.
    fn numeric(&mut self, now: Instant, id: ConnId, code: &str, params: &[&str]) {
        let mut out = Vec::new();
        self.write_numeric(&mut out, id, code, params);
        self.reply_bytes(now, id, &out);
    }

    fn write_numeric(&self, out: &mut Vec<u8>, id: ConnId, code: &str, params: &[&str]) {
        let nick = self.name_of(id);
        let mut all = vec![nick.as_ref().map_or("*", Name::as_str)];
        all.extend_from_slice(params);
        let server = Some(self.config.irc.server_name.as_str());
        // A text too long for the line is cut to fit (an away message, a
        // real name); a middle parameter that cannot be written is left
        // out rather than the whole reply.
        if !write_message(out, server, code, &all) && !write_text_message(out, server, code, &all) {
            let last = params.last().copied().unwrap_or_default();
            let nick = all.first().copied().unwrap_or("*");
            write_text_message(out, server, code, &[nick, last]);
        }
    }

    fn channel_error(&mut self, now: Instant, id: ConnId, error: ChannelError, channel: &str) {
        let message = match error {
            ChannelError::NoSuchChannel => "No such channel".to_owned(),
            other => {
                let text = other.to_string();
                let mut chars = text.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            }
        };
        let code = format!("{:03}", error.numeric());
        self.numeric(now, id, &code, &[&echo(channel), &message]);
    }

    /// Admits a message of `irc_len` bytes to each of `to` (copies).
    /// `Err(reader)` when a reader that is still reading must drain first.
    pub(super) fn admit_copies(
        &mut self,
        now: Instant,
        irc_len: usize,
        to: &[ConnId],
    ) -> Result<(), ConnId> {
        for &reader in to {
            self.admit_private(now, reader, irc_len)?;
        }
        Ok(())
    }

    /// Queues `irc` for each of `to`: encoded once, held by every queue,
    /// copied into none.
    pub(super) fn deliver(&mut self, now: Instant, irc: &[u8], to: &[ConnId]) {
        if irc.is_empty() {
            return;
        }
        if let [reader] = to {
            // Only one reader: its own buffer is cheaper than sharing.
            self.send(now, *reader, Delivery::Unasked, |out| {
                out.extend_from_slice(irc);
            });
            return;
        }
        let line = self.feeds.lines.insert(irc);
        for &reader in to {
            self.send_shared(now, reader, Delivery::Unasked, line);
        }
        self.feeds.lines.release(line);
    }

    /// Whether anyone on IRC is in the lobby (reading its feed or not).
    pub(super) fn lobby_has_irc(&self) -> bool {
        self.channel_has_irc(self.channels.lobby())
    }

    /// Whether `id` is in the lobby.
    fn in_lobby(&self, id: ConnId) -> bool {
        if !self.is_irc(id) {
            // Every registered native user is, from WELCOME to departure.
            return self.name_of(id).is_some();
        }
        self.channels
            .get(self.channels.lobby())
            .is_some_and(|c| c.member(id).is_some())
    }

    /// Admits one lobby event before anything changes: `native_len` bytes
    /// into the native feed and `irc_len` into the IRC feed and to each IRC
    /// member reading by copy (`sender` excepted).
    pub(super) fn admit_lobby(
        &mut self,
        now: Instant,
        sender: ConnId,
        native_len: usize,
        irc_len: usize,
    ) -> Result<(), ConnId> {
        if native_len > 0 && self.feeds.get(FeedId::Native).slowest().is_some() {
            self.admit_broadcast(now, FeedId::Native, native_len)?;
        }
        if irc_len > 0 {
            let lobby = self.channels.lobby().clone();
            self.admit_channel(now, &lobby, sender, false, irc_len)?;
        }
        Ok(())
    }

    /// One lobby event in both wire formats, each encoded once: `native` (a
    /// frame) into the native feed, `irc` (lines) into the IRC feed and to
    /// each IRC member reading by copy. `sender` gets the IRC lines only
    /// with `echo` (IRC echoes a JOIN, never a PRIVMSG), and at once: held
    /// presence is for the others.
    pub(super) fn deliver_lobby(
        &mut self,
        now: Instant,
        sender: ConnId,
        echo: bool,
        kind: Broadcast,
        native: &[u8],
        irc: &[u8],
    ) {
        if !native.is_empty() {
            self.scratch.clear();
            self.scratch.extend_from_slice(native);
            self.broadcast(now, FeedId::Native, kind);
        }
        let lobby = self.channels.lobby().clone();
        self.deliver_channel(now, &lobby, sender, echo, kind, irc);
    }

    // ----- what native users do, seen by IRC users -----

    /// IRC lines for a native SAY, if any IRC user is in the lobby.
    pub(super) fn lobby_lines(&self, from: &Name, text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if self.lobby_has_irc() {
            let source = format!("{from}!{from}@{NATIVE_HOST}");
            write_text_lines(
                &mut out,
                &source,
                "PRIVMSG",
                self.channels.lobby().as_str(),
                text,
            );
        }
        out
    }

    /// IRC lines for a native user joining the lobby.
    pub(super) fn lobby_join_line(&self, name: &Name) -> Vec<u8> {
        let mut out = Vec::new();
        if self.lobby_has_irc() {
            let source = format!("{name}!{name}@{NATIVE_HOST}");
            write_message(
                &mut out,
                Some(&source),
                "JOIN",
                &[self.channels.lobby().as_str()],
            );
        }
        out
    }

    /// A native WHISPER to an IRC user, as PRIVMSG lines.
    pub(super) fn private_lines(&self, from: &Name, to: ConnId, text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(nick) = self.name_of(to) {
            let source = format!("{from}!{from}@{NATIVE_HOST}");
            write_text_lines(&mut out, &source, "PRIVMSG", nick.as_str(), text);
        }
        out
    }

    /// Tells everyone who shares a channel with `id` that it left, and takes
    /// it out of every channel. Native lobby members hear `LEFT(reason)`.
    pub(super) fn announce_departure(
        &mut self,
        now: Instant,
        id: ConnId,
        name: Name,
        reason: Reason,
        detail: &str,
    ) {
        // Called once the connection has lost its name: a native user is
        // in the lobby by definition.
        let irc = self.is_irc(id);
        if self.is_invisible(id) {
            self.invisible_online = self.invisible_online.saturating_sub(1);
        }
        let in_lobby = !irc || self.in_lobby(id);
        let peers = self.irc_peers_outside_lobby(id);
        let gone = self.who_as(id, name);
        let mask = gone.as_ref().map(Who::mask).unwrap_or_default();
        if let Some(gone) = gone {
            let oper = gone.oper;
            self.remember_gone(gone);
            if oper {
                self.opers_online = self.opers_online.saturating_sub(1);
            }
        }
        if irc {
            for channel in self.channels.remove(id) {
                self.leave_channel(now, id, &channel);
            }
        } else {
            self.channels.leave_lobby(id);
        }
        let mut line = Vec::new();
        write_text_message(
            &mut line,
            Some(&mask),
            "QUIT",
            &[&quit_text(reason, detail)],
        );
        if in_lobby {
            // Never held back: a departure drops stalled readers instead.
            let mut native = Vec::new();
            frame::encode_left(&mut native, &name, reason);
            let irc = if self.lobby_has_irc() {
                line.clone()
            } else {
                Vec::new()
            };
            self.deliver_lobby(now, id, false, Broadcast::Presence, &native, &irc);
        }
        self.deliver(now, &line, &peers);
    }

    /// IRC connections sharing a channel other than the lobby with `id`,
    /// each once, lobby members excepted (they hear it in the lobby).
    fn irc_peers_outside_lobby(&self, id: ConnId) -> Vec<ConnId> {
        if !self.is_irc(id) {
            return Vec::new(); // in the lobby only
        }
        let lobby = self.channels.lobby();
        let mut peers: Vec<ConnId> = self
            .channels
            .of(id)
            .filter(|c| c.name() != lobby)
            .flat_map(|c| c.members().iter().map(|m| m.id))
            .filter(|&m| m != id && self.is_irc(m))
            .collect();
        if peers.is_empty() || !self.in_lobby(id) {
            peers.sort_unstable();
            peers.dedup();
            return peers;
        }
        let in_lobby: std::collections::HashSet<ConnId> = self
            .channels
            .get(lobby)
            .map(|c| c.members().iter().map(|m| m.id).collect())
            .unwrap_or_default();
        peers.retain(|m| !in_lobby.contains(m));
        peers.sort_unstable();
        peers.dedup();
        peers
    }

    // ----- commands of a registered user -----

    fn irc_command(&mut self, now: Instant, id: ConnId, nick: Name, message: &Message<'_>) -> Flow {
        let command = command_of(message);
        let param = |i: usize| message.param(i).map(text);
        let count = message.params().len();
        let needs = |n: usize| count >= n && message.param(n - 1).is_some_and(|p| !p.is_empty());
        // A list of targets that names at least one (`,` alone names none).
        let names_one = |p: &String| p.split(',').any(|t| !t.is_empty());
        let lists = |n: usize| needs(n) && param(n - 1).is_some_and(|p| names_one(&p));
        let too_few = |server: &mut Self| {
            server.numeric(now, id, "461", &[&echo(&command), "Not enough parameters"]);
            Flow::Done
        };
        match command.as_str() {
            "PING" => match param(0) {
                Some(token) => {
                    let server = self.config.irc.server_name.clone();
                    let mut out = Vec::new();
                    write_text_message(&mut out, Some(&server), "PONG", &[&server, &token]);
                    self.reply_bytes(now, id, &out);
                }
                None => return too_few(self),
            },
            "PONG" => {}
            "PASS" | "USER" => self.numeric(now, id, "462", &["You may not reregister"]),
            "CAP" => {
                let server = self.config.irc.server_name.clone();
                let mut out = Vec::new();
                match param(0).map(|s| s.to_ascii_uppercase()).as_deref() {
                    Some(sub @ ("LS" | "LIST")) => {
                        write_message(&mut out, Some(&server), "CAP", &[nick.as_str(), sub, ""]);
                    }
                    Some("REQ") => {
                        let asked = registration::realname_of(&param(1).unwrap_or_default());
                        write_text_message(
                            &mut out,
                            Some(&server),
                            "CAP",
                            &[nick.as_str(), "NAK", &asked],
                        );
                    }
                    Some("END") => {}
                    Some(other) => {
                        self.write_numeric(
                            &mut out,
                            id,
                            "410",
                            &[&echo(other), "Invalid CAP command"],
                        );
                    }
                    None => return too_few(self),
                }
                self.reply_bytes(now, id, &out);
            }
            "QUIT" => {
                let reason = param(0).unwrap_or_default();
                self.depart(now, id, Reason::Quit, Farewell::Bye(&reason));
            }
            "NICK" => match param(0).filter(|p| !p.is_empty()) {
                None => self.numeric(now, id, "431", &["No nickname given"]),
                Some(wanted) => {
                    // Told to everyone sharing a channel: admitted first.
                    let peers = self.irc_peers_outside_lobby(id);
                    let admitted = if self.in_lobby(id) {
                        self.admit_lobby(now, id, 2 * (HEADER_LEN + 2 + MAX_NAME), MAX_LINE)
                    } else {
                        Ok(())
                    };
                    if let Err(blocker) =
                        admitted.and_then(|()| self.admit_copies(now, MAX_LINE, &peers))
                    {
                        return Flow::Wait(blocker);
                    }
                    self.rename(now, id, nick, &wanted);
                }
            },
            "JOIN" if !lists(1) => return too_few(self),
            "JOIN" => return self.join(now, id, &param(0).unwrap_or_default(), param(1)),
            "PART" if !lists(1) => return too_few(self),
            "PART" => return self.part(now, id, &param(0).unwrap_or_default(), param(1)),
            "PRIVMSG" | "NOTICE" => {
                let notice = command == "NOTICE";
                match (param(0).filter(names_one), message.param(1)) {
                    (None, _) if !notice => {
                        let text = format!("No recipient given ({command})");
                        self.numeric(now, id, "411", &[&text]);
                    }
                    (Some(_), None) | (Some(_), Some(b"")) if !notice => {
                        self.numeric(now, id, "412", &["No text to send"]);
                    }
                    (Some(targets), Some(body)) if !body.is_empty() => {
                        let body = text(body);
                        let done = self.take_resume(id);
                        // A target named twice gets the message once.
                        let mut unique: Vec<&str> = Vec::new();
                        for target in targets.split(',').filter(|t| !t.is_empty()) {
                            if !unique.iter().any(|u| u.eq_ignore_ascii_case(target)) {
                                unique.push(target);
                            }
                        }
                        for (i, target) in unique.into_iter().enumerate().skip(done) {
                            if let Flow::Wait(blocker) =
                                self.message(now, id, &command, target, &body)
                            {
                                return self.wait_at(id, i, blocker);
                            }
                        }
                    }
                    _ => {}
                }
            }
            "NAMES" => match param(0) {
                // One channel per command (ISUPPORT TARGMAX=NAMES:1): a reply
                // is as long as the channel, and a line must not ask for
                // the lobby a hundred times.
                Some(channels) => {
                    if let Some(channel) = channels.split(',').find(|c| !c.is_empty()) {
                        self.names_reply(now, id, channel);
                    }
                }
                None => self.numeric(now, id, "366", &["*", "End of /NAMES list"]),
            },
            "TOPIC" if !needs(1) => return too_few(self),
            "TOPIC" => {
                let channel = param(0).unwrap_or_default();
                if param(1).is_some() {
                    if let Err(blocker) = self.admit_channel_lines(now, &channel, 1) {
                        return Flow::Wait(blocker);
                    }
                }
                self.topic(now, id, &channel, param(1));
            }
            "LIST" => self.list(now, id, param(0).filter(|p| !p.is_empty()).as_deref()),
            "KICK" if !lists(1) || !lists(2) => return too_few(self),
            "KICK" => {
                let (channel, target) =
                    (param(0).unwrap_or_default(), param(1).unwrap_or_default());
                let reason = param(2)
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| nick.as_str().to_owned());
                let victims: Vec<&str> = target.split(',').filter(|t| !t.is_empty()).collect();
                if let Err(blocker) = self.admit_channel_lines(now, &channel, victims.len()) {
                    return Flow::Wait(blocker);
                }
                for victim in victims {
                    self.kick(now, id, &channel, victim, &reason);
                }
            }
            "INVITE" if !needs(2) => return too_few(self),
            "INVITE" => self.invite(
                now,
                id,
                &param(0).unwrap_or_default(),
                &param(1).unwrap_or_default(),
            ),
            "MODE" if !needs(1) => return too_few(self),
            "MODE" => {
                let target = param(0).unwrap_or_default();
                let args: Vec<String> = message.params().iter().skip(1).map(|p| text(p)).collect();
                if target.starts_with('#') {
                    if args.len() > 1 || args.first().is_some_and(|m| m.starts_with(['+', '-'])) {
                        if let Err(blocker) = self.admit_channel_lines(now, &target, 1) {
                            return Flow::Wait(blocker);
                        }
                    }
                    self.channel_mode(now, id, &target, &args);
                } else {
                    self.user_mode(now, id, nick, &target, &args);
                }
            }
            "WHO" => self.who_reply(now, id, &param(0).unwrap_or_else(|| "*".into())),
            // `WHOIS <server> <nick>` asks the server named.
            "WHOIS" if count > 1 && param(0).is_some_and(|t| self.names_another_server(&t)) => {
                let target = echo(&param(0).unwrap_or_default());
                self.numeric(now, id, "402", &[&target, "No such server"]);
            }
            "WHOIS" if !needs(1) => {
                self.numeric(now, id, "431", &["No nickname given"]);
            }
            "WHOIS" => {
                let target = message.params().last().map(|p| text(p)).unwrap_or_default();
                self.whois(now, id, &target);
            }
            "WHOWAS" if !needs(1) => return too_few(self),
            "WHOWAS" => {
                // `WHOWAS nick [count]`: a count that is not positive means all.
                let count = param(1)
                    .and_then(|c| c.parse::<i64>().ok())
                    .and_then(|c| usize::try_from(c).ok())
                    .filter(|&c| c > 0);
                self.whowas_reply(now, id, &param(0).unwrap_or_default(), count);
            }
            "AWAY" => {
                let away = param(0).filter(|a| !a.is_empty());
                let (code, says) = match away {
                    Some(_) => ("306", "You have been marked as being away"),
                    None => ("305", "You are no longer marked as being away"),
                };
                if let Some(irc) = self.irc_mut(id) {
                    irc.away = away;
                }
                self.numeric(now, id, code, &[says]);
            }
            "LUSERS" => {
                let mut out = Vec::new();
                let server = self.config.irc.server_name.clone();
                registration::lusers(&mut out, &server, nick.as_str(), self.lusers());
                self.reply_bytes(now, id, &out);
            }
            // A server query naming another server (there is only this one;
            // a user's nick names this one too).
            "MOTD" | "VERSION" | "TIME" | "INFO"
                if param(0).is_some_and(|target| self.names_another_server(&target)) =>
            {
                let target = echo(&param(0).unwrap_or_default());
                self.numeric(now, id, "402", &[&target, "No such server"]);
            }
            "MOTD" => self.motd(now, id, nick),
            "VERSION" => {
                let server = self.config.irc.server_name.clone();
                self.numeric(
                    now,
                    id,
                    "351",
                    &[
                        VERSION,
                        &server,
                        "sans-IO chat server with an IRC front door",
                    ],
                );
                let mut out = Vec::new();
                for chunk in registration::isupport(&self.server_info()).chunks(13) {
                    let mut params: Vec<&str> = chunk.iter().map(String::as_str).collect();
                    params.push("are supported by this server");
                    self.write_numeric(&mut out, id, "005", &params);
                }
                self.reply_bytes(now, id, &out);
            }
            "TIME" => {
                let server = self.config.irc.server_name.clone();
                let time = format_time(self.unix_at(now));
                self.numeric(now, id, "391", &[&server, &time]);
            }
            "INFO" => {
                let mut out = Vec::new();
                for line in [
                    VERSION,
                    "A chat server built as a sans-IO protocol core with thin runtimes.",
                    "Native and IRC users share one lobby, one set of names and one order.",
                ] {
                    self.write_numeric(&mut out, id, "371", &[line]);
                }
                self.write_numeric(&mut out, id, "374", &["End of INFO list"]);
                self.reply_bytes(now, id, &out);
            }
            "LINKS" => {
                let server = self.config.irc.server_name.clone();
                let mut out = Vec::new();
                // `364 <client> <mask> <server> :<hopcount> <info>`: one server.
                self.write_numeric(&mut out, id, "364", &[&server, &server, "0 sans-IO chat"]);
                self.write_numeric(&mut out, id, "365", &["*", "End of /LINKS list"]);
                self.reply_bytes(now, id, &out);
            }
            "HELP" | "HELPOP" => self.help(now, id, param(0)),
            "ISON" if !needs(1) => return too_few(self),
            "ISON" => {
                // Whole nicks after `:server 303 nick :`; an answer longer
                // than a line goes on in another 303 (a long asking nick
                // can make it so), rather than call someone absent.
                let room = MAX_LINE
                    .saturating_sub(self.config.irc.server_name.len() + nick.as_str().len() + 10);
                let mut out = Vec::new();
                let mut online = String::new();
                for word in message
                    .params()
                    .iter()
                    .flat_map(|p| p.split(|&b| b == b' '))
                {
                    let Some(found) = self.lookup_nick(word).and_then(|c| self.name_of(c)) else {
                        continue;
                    };
                    if !online.is_empty() && online.len() + 1 + found.as_str().len() > room {
                        self.write_numeric(&mut out, id, "303", &[&online]);
                        online.clear();
                    }
                    if !online.is_empty() {
                        online.push(' ');
                    }
                    online.push_str(found.as_str());
                }
                self.write_numeric(&mut out, id, "303", &[&online]);
                self.reply_bytes(now, id, &out);
            }
            "USERHOST" if !needs(1) => return too_few(self),
            "USERHOST" => {
                let replies: Vec<String> = message
                    .params()
                    .iter()
                    .take(5)
                    .filter_map(|p| self.lookup_nick(p).and_then(|c| self.who(c)))
                    .map(|w| {
                        let oper = if w.oper { "*" } else { "" };
                        let away = if w.away.is_some() { '-' } else { '+' };
                        format!("{}{oper}={away}{}@{}", w.nick, w.user, w.host)
                    })
                    .collect();
                self.numeric(now, id, "302", &[&replies.join(" ")]);
            }
            "OPER" if !needs(2) => return too_few(self),
            "OPER" => self.oper(
                now,
                id,
                nick,
                &param(0).unwrap_or_default(),
                &param(1).unwrap_or_default(),
            ),
            "KILL" if !needs(2) => return too_few(self),
            "KILL" => self.kill(
                now,
                id,
                nick,
                &param(0).unwrap_or_default(),
                &param(1).unwrap_or_default(),
            ),
            "WALLOPS" if !needs(1) => return too_few(self),
            "WALLOPS" => self.wallops(now, id, &param(0).unwrap_or_default()),
            _ => self.numeric(now, id, "421", &[&echo(&command), "Unknown command"]),
        }
        Flow::Done
    }

    /// Keeps a nick no longer in use for `WHOWAS` (RFC 2812: a departure or
    /// a rename), the oldest forgotten beyond [`WHOWAS_HISTORY`].
    fn remember_gone(&mut self, gone: Who) {
        if self.whowas.len() >= WHOWAS_HISTORY {
            self.whowas.pop_front();
        }
        self.whowas.push_back(Gone {
            nick: gone.nick,
            user: gone.user,
            host: gone.host,
            realname: gone.realname,
        });
    }

    fn rename(&mut self, now: Instant, id: ConnId, old: Name, wanted: &str) {
        let new = match Name::new(wanted) {
            Ok(name) => name,
            Err(_) => {
                return self.numeric(now, id, "432", &[&echo(wanted), "Erroneous nickname"]);
            }
        };
        if new.as_str() == old.as_str() {
            return;
        }
        if self
            .presence
            .lookup(&new)
            .is_some_and(|holder| holder != id)
        {
            return self.numeric(
                now,
                id,
                "433",
                &[new.as_str(), "Nickname is already in use"],
            );
        }
        let mask = self.mask_of(id);
        // A change of case only leaves no nick behind.
        if !new.as_str().eq_ignore_ascii_case(old.as_str()) {
            if let Some(gone) = self.who(id) {
                self.remember_gone(gone);
            }
        }
        let in_lobby = self.in_lobby(id);
        let mut peers = self.irc_peers_outside_lobby(id);
        if !in_lobby {
            peers.push(id);
        }
        self.presence.remove(&old);
        self.presence.insert(new, id);
        // The kept lobby roster has the old name.
        self.roster = None;
        if let Some(conn) = self.conn_mut(id) {
            conn.phase = Phase::Registered(new);
        }
        let mut line = Vec::new();
        write_message(&mut line, Some(&mask), "NICK", &[new.as_str()]);
        if in_lobby {
            // Native users know no renames: the old name leaves, the new
            // joins. IRC members of the lobby, the renamer too, get NICK.
            let mut native = Vec::new();
            frame::encode_left(&mut native, &old, Reason::Quit);
            self.deliver_lobby(now, id, true, Broadcast::Presence, &native, &line);
            native.clear();
            frame::encode_joined(&mut native, &new);
            self.deliver_lobby(now, id, true, Broadcast::Presence, &native, &[]);
        }
        self.deliver(now, &line, &peers);
    }

    fn join(&mut self, now: Instant, id: ConnId, channels: &str, keys: Option<String>) -> Flow {
        if channels == "0" {
            // Run again after a wait, it lists only the channels still to
            // leave: it starts from the first of them, whatever it did.
            self.take_resume(id);
            let mine: Vec<String> = self
                .channels
                .of(id)
                .map(|c| c.name().as_str().to_owned())
                .collect();
            return self.part(now, id, &mine.join(","), Some("Left all channels".into()));
        }
        let keys: Vec<String> = keys
            .map(|k| k.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        let done = self.take_resume(id);
        for (i, wanted) in channels
            .split(',')
            .filter(|c| !c.is_empty())
            .enumerate()
            .skip(done)
        {
            let Ok(name) = ChannelName::new(wanted) else {
                self.numeric(now, id, "403", &[&echo(wanted), "No such channel"]);
                continue;
            };
            if self
                .channels
                .get(&name)
                .is_some_and(|c| c.member(id).is_some())
            {
                continue; // Already there: nothing to say (a JOIN that waited runs again).
            }
            let lobby = name == *self.channels.lobby();
            let mask = self.mask_of(id);
            let mut line = Vec::new();
            write_message(&mut line, Some(&mask), "JOIN", &[name.as_str()]);
            let Some(nick) = self.name_of(id) else {
                return Flow::Done;
            };
            let mut native = Vec::new();
            let admitted = if lobby {
                frame::encode_joined(&mut native, &nick);
                self.admit_lobby(now, id, native.len(), line.len())
            } else {
                self.admit_channel(now, &name, id, true, line.len())
            }
            .and_then(|()| self.admit_private(now, id, line.len()));
            if let Err(blocker) = admitted {
                return self.wait_at(id, i, blocker);
            }
            let key = keys.get(i).map(String::as_str);
            match self.channels.join(id, &name, key, &mask) {
                Err(error) => {
                    self.channel_error(now, id, error, name.as_str());
                    continue;
                }
                Ok(joined) if joined.created => {
                    let at = self.unix_at(now);
                    self.channels.set_created_at(&name, at);
                }
                Ok(_) => {}
            }
            let Some(channel) = self.channels.get(&name) else {
                continue;
            };
            let shown = channel.name().as_str().to_owned();
            line.clear();
            write_message(&mut line, Some(&mask), "JOIN", &[&shown]);
            // In first, so that its own JOIN reaches it like the others'.
            self.enter_channel(id, &name);
            if lobby {
                self.deliver_lobby(now, id, true, Broadcast::Presence, &native, &line);
            } else {
                self.deliver_channel(now, &name, id, true, Broadcast::Presence, &line);
            }
            self.topic_reply(now, id, &name, false);
            self.names_reply(now, id, &shown);
        }
        Flow::Done
    }

    fn part(&mut self, now: Instant, id: ConnId, channels: &str, reason: Option<String>) -> Flow {
        let done = self.take_resume(id);
        for (i, wanted) in channels
            .split(',')
            .filter(|c| !c.is_empty())
            .enumerate()
            .skip(done)
        {
            let Some(channel) = ChannelName::new(wanted)
                .ok()
                .and_then(|n| self.channels.get(&n))
            else {
                self.numeric(now, id, "403", &[&echo(wanted), "No such channel"]);
                continue;
            };
            let name = channel.name().clone();
            if channel.member(id).is_none() {
                self.channel_error(now, id, ChannelError::NotOnChannel, name.as_str());
                continue;
            }
            let lobby = name == *self.channels.lobby();
            let mask = self.mask_of(id);
            let mut line = Vec::new();
            match reason.as_deref().filter(|r| !r.is_empty()) {
                Some(reason) => {
                    write_text_message(&mut line, Some(&mask), "PART", &[name.as_str(), reason])
                }
                None => write_message(&mut line, Some(&mask), "PART", &[name.as_str()]),
            };
            let Some(nick) = self.name_of(id) else {
                return Flow::Done;
            };
            let mut native = Vec::new();
            let admitted = if lobby {
                frame::encode_left(&mut native, &nick, Reason::Quit);
                self.admit_lobby(now, id, native.len(), line.len())
            } else {
                self.admit_channel(now, &name, id, true, line.len())
            };
            if let Err(blocker) = admitted {
                return self.wait_at(id, i, blocker);
            }
            // Its own PART still reaches it, then nothing more.
            if lobby {
                self.deliver_lobby(now, id, true, Broadcast::Presence, &native, &line);
            } else {
                self.deliver_channel(now, &name, id, true, Broadcast::Presence, &line);
            }
            if self.channels.part(id, &name).is_err() {
                continue;
            }
            self.leave_channel(now, id, &name);
        }
        Flow::Done
    }

    /// PRIVMSG or NOTICE to one target.
    fn message(
        &mut self,
        now: Instant,
        id: ConnId,
        command: &str,
        target: &str,
        body: &str,
    ) -> Flow {
        let notice = command == "NOTICE";
        let Some(from) = self.name_of(id) else {
            return Flow::Done;
        };
        let mask = self.mask_of(id);
        if target.starts_with('#') {
            let channel = ChannelName::new(target)
                .ok()
                .and_then(|n| self.channels.get(&n));
            let Some(channel) = channel else {
                if !notice {
                    self.numeric(now, id, "403", &[&echo(target), "No such channel"]);
                }
                return Flow::Done;
            };
            let name = channel.name().clone();
            if !channel.may_speak(id, &mask) {
                if !notice {
                    self.numeric(now, id, "404", &[name.as_str(), "Cannot send to channel"]);
                }
                return Flow::Done;
            }
            let lobby = name == *self.channels.lobby();
            let mut lines = Vec::new();
            write_relayed_line(&mut lines, &mask, command, name.as_str(), body);
            if lobby {
                let mut native = Vec::new();
                if let (false, Some(text)) = (notice, native_text(body)) {
                    frame::encode_message(&mut native, &from, text.as_bytes());
                }
                if let Err(blocker) = self.admit_lobby(now, id, native.len(), lines.len()) {
                    return Flow::Wait(blocker);
                }
                if !self.is_doomed(id) {
                    self.deliver_lobby(now, id, false, Broadcast::Message, &native, &lines);
                }
                return Flow::Done;
            }
            if let Err(blocker) = self.admit_channel(now, &name, id, false, lines.len()) {
                return Flow::Wait(blocker);
            }
            if !self.is_doomed(id) {
                self.deliver_channel(now, &name, id, false, Broadcast::Message, &lines);
            }
            return Flow::Done;
        }
        let Some(to) = self.lookup_nick(target.as_bytes()) else {
            if !notice {
                self.numeric(now, id, "401", &[&echo(target), "No such nick/channel"]);
            }
            return Flow::Done;
        };
        if self.is_irc(to) {
            let mut lines = Vec::new();
            let shown = self
                .name_of(to)
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default();
            write_relayed_line(&mut lines, &mask, command, &shown, body);
            if let Err(blocker) = self.admit_private(now, to, lines.len()) {
                return Flow::Wait(blocker);
            }
            self.deliver(now, &lines, &[to]);
            let away = self.who(to).and_then(|w| w.away);
            if let (false, Some(away)) = (notice, away) {
                self.numeric(now, id, "301", &[&shown, &away]);
            }
        } else if let (false, Some(text)) = (notice, native_text(body)) {
            let len = HEADER_LEN + 2 + from.as_str().len() + text.len();
            if let Err(blocker) = self.admit_private(now, to, len) {
                return Flow::Wait(blocker);
            }
            self.send(now, to, Delivery::Unasked, |out| {
                frame::encode_private(out, &from, text.as_bytes());
            });
        }
        Flow::Done
    }

    /// 353 lines and 366 for `wanted` (only 366 for a channel that is not).
    fn names_reply(&mut self, now: Instant, id: ConnId, wanted: &str) {
        let mut out = Vec::new();
        let channel = ChannelName::new(wanted)
            .ok()
            .and_then(|n| self.channels.get(&n));
        let shown = channel.map_or_else(|| echo(wanted), |c| c.name().as_str().to_owned());
        if let Some(channel) = channel {
            let member = channel.member(id).is_some();
            if member || !channel.has(Flag::Secret) {
                let symbol = if channel.has(Flag::Secret) { "@" } else { "=" };
                let names: Vec<String> = channel
                    .members()
                    .iter()
                    .filter(|m| member || !self.is_invisible(m.id))
                    .filter_map(|m| {
                        let name = self.name_of(m.id)?;
                        let prefix = if m.op {
                            "@"
                        } else if m.voice {
                            "+"
                        } else {
                            ""
                        };
                        Some(format!("{prefix}{name}"))
                    })
                    .collect();
                let nick = self.name_of(id).map(|n| n.as_str().len()).unwrap_or(1);
                // `:server 353 nick = #channel :` and CRLF around the names.
                let room = crate::irc::MAX_LINE
                    .saturating_sub(self.config.irc.server_name.len() + nick + shown.len() + 14);
                let mut line = String::new();
                for name in names {
                    if !line.is_empty() && line.len() + 1 + name.len() > room {
                        self.write_numeric(&mut out, id, "353", &[symbol, &shown, &line]);
                        line.clear();
                    }
                    if !line.is_empty() {
                        line.push(' ');
                    }
                    line.push_str(&name);
                }
                if !line.is_empty() {
                    self.write_numeric(&mut out, id, "353", &[symbol, &shown, &line]);
                }
            }
        }
        self.write_numeric(&mut out, id, "366", &[&shown, "End of /NAMES list"]);
        self.reply_bytes(now, id, &out);
    }

    /// 332 and 333, or 331 when asked and there is no topic.
    fn topic_reply(&mut self, now: Instant, id: ConnId, name: &ChannelName, asked: bool) {
        let Some(channel) = self.channels.get(name) else {
            return;
        };
        let shown = channel.name().as_str().to_owned();
        let mut out = Vec::new();
        match channel.topic() {
            Some(topic) => {
                self.write_numeric(&mut out, id, "332", &[&shown, &topic.text]);
                let at = topic.set_at.to_string();
                self.write_numeric(&mut out, id, "333", &[&shown, &topic.set_by, &at]);
            }
            None if asked => self.write_numeric(&mut out, id, "331", &[&shown, "No topic is set"]),
            None => {}
        }
        self.reply_bytes(now, id, &out);
    }

    fn topic(&mut self, now: Instant, id: ConnId, wanted: &str, new: Option<String>) {
        let Some(name) = ChannelName::new(wanted)
            .ok()
            .and_then(|n| self.channels.get(&n))
            .map(|c| c.name().clone())
        else {
            return self.numeric(now, id, "403", &[&echo(wanted), "No such channel"]);
        };
        let Some(text) = new else {
            return self.topic_reply(now, id, &name, true);
        };
        let mask = self.mask_of(id);
        let topic = Topic {
            text,
            set_by: mask.clone(),
            set_at: self.unix_at(now),
        };
        if let Err(error) = self.channels.set_topic(id, &name, topic) {
            return self.channel_error(now, id, error, name.as_str());
        }
        let shown = self
            .channels
            .get(&name)
            .and_then(|c| c.topic())
            .map(|t| t.text.clone())
            .unwrap_or_default();
        let mut line = Vec::new();
        write_text_message(&mut line, Some(&mask), "TOPIC", &[name.as_str(), &shown]);
        self.deliver_channel(now, &name, id, true, Broadcast::Message, &line);
    }

    /// `LIST [channel{,channel}]`: the channels named, or every channel the
    /// asker may see (`+s` ones only to their members); beyond
    /// [`MAX_LIST_ROWS`], the most populated, and a notice says so.
    fn list(&mut self, now: Instant, id: ConnId, wanted: Option<&str>) {
        // The asker's own channels (at most CHANLIMIT): a secret channel is
        // shown only to its members, looked up here rather than per channel.
        let mine: Vec<String> = self.channels.of(id).map(|c| c.name().key()).collect();
        let visible = |c: &&crate::channel::Channel<ConnId>| {
            !c.has(Flag::Secret) || mine.contains(&c.name().key())
        };
        let mut shown: Vec<&crate::channel::Channel<ConnId>> = match wanted {
            Some(names) => {
                let mut named: Vec<_> = names
                    .split(',')
                    .filter_map(|n| ChannelName::new(n).ok())
                    .filter_map(|n| self.channels.get(&n))
                    .filter(visible)
                    .collect();
                named.sort_by_cached_key(|c| c.name().key());
                named.dedup_by(|a, b| a.name() == b.name());
                named
            }
            None => self.channels.iter().filter(visible).collect(),
        };
        let total = shown.len();
        if total > MAX_LIST_ROWS {
            shown.select_nth_unstable_by_key(MAX_LIST_ROWS, |c| {
                std::cmp::Reverse(c.members().len())
            });
            shown.truncate(MAX_LIST_ROWS);
        }
        shown.sort_by_cached_key(|c| c.name().key());
        let rows: Vec<(String, String, String)> = shown
            .iter()
            .map(|c| {
                (
                    c.name().as_str().to_owned(),
                    c.members().len().to_string(),
                    c.topic().map(|t| t.text.clone()).unwrap_or_default(),
                )
            })
            .collect();
        let mut out = Vec::new();
        self.write_numeric(&mut out, id, "321", &["Channel", "Users  Name"]);
        for (name, count, topic) in rows {
            self.write_numeric(&mut out, id, "322", &[&name, &count, &topic]);
        }
        if total > MAX_LIST_ROWS {
            let server = self.config.irc.server_name.clone();
            let nick = self
                .name_of(id)
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default();
            let note = format!(
                "LIST shows the {MAX_LIST_ROWS} largest of {total} channels; LIST #name,#other asks for others"
            );
            write_text_message(&mut out, Some(&server), "NOTICE", &[&nick, &note]);
        }
        self.write_numeric(&mut out, id, "323", &["End of /LIST"]);
        self.reply_bytes(now, id, &out);
    }

    fn kick(&mut self, now: Instant, id: ConnId, wanted: &str, victim: &str, reason: &str) {
        let Some(name) = ChannelName::new(wanted)
            .ok()
            .and_then(|n| self.channels.get(&n))
            .map(|c| c.name().clone())
        else {
            return self.numeric(now, id, "403", &[&echo(wanted), "No such channel"]);
        };
        let Some(target) = self.lookup_nick(victim.as_bytes()) else {
            return self.numeric(now, id, "401", &[&echo(victim), "No such nick/channel"]);
        };
        match self.channels.kick(id, target, &name) {
            Err(ChannelError::TargetNotOnChannel) => {
                let shown = self
                    .name_of(target)
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default();
                self.numeric(
                    now,
                    id,
                    "441",
                    &[&shown, name.as_str(), "They aren't on that channel"],
                );
            }
            Err(error) => self.channel_error(now, id, error, name.as_str()),
            Ok(()) => {
                let shown = self
                    .name_of(target)
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default();
                let mask = self.mask_of(id);
                let mut line = Vec::new();
                write_text_message(
                    &mut line,
                    Some(&mask),
                    "KICK",
                    &[name.as_str(), &shown, reason],
                );
                // The target is still listed: it hears its KICK, then nothing.
                self.deliver_channel(now, &name, id, true, Broadcast::Message, &line);
                self.leave_channel(now, target, &name);
            }
        }
    }

    fn invite(&mut self, now: Instant, id: ConnId, invitee: &str, wanted: &str) {
        let Some(target) = self.lookup_nick(invitee.as_bytes()) else {
            return self.numeric(now, id, "401", &[&echo(invitee), "No such nick/channel"]);
        };
        let Some(name) = ChannelName::new(wanted)
            .ok()
            .and_then(|n| self.channels.get(&n))
            .map(|c| c.name().clone())
        else {
            return self.numeric(now, id, "403", &[&echo(wanted), "No such channel"]);
        };
        let shown = self
            .name_of(target)
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default();
        match self.channels.invite(id, target, &name) {
            Err(ChannelError::AlreadyOnChannel) => {
                self.numeric(
                    now,
                    id,
                    "443",
                    &[&shown, name.as_str(), "is already on channel"],
                );
            }
            Err(error) => self.channel_error(now, id, error, name.as_str()),
            Ok(()) => {
                self.numeric(now, id, "341", &[&shown, name.as_str()]);
                if self.is_irc(target) {
                    let mask = self.mask_of(id);
                    let mut line = Vec::new();
                    write_message(&mut line, Some(&mask), "INVITE", &[&shown, name.as_str()]);
                    self.deliver(now, &line, &[target]);
                }
            }
        }
    }

    fn channel_mode(&mut self, now: Instant, id: ConnId, wanted: &str, args: &[String]) {
        let Some(channel) = ChannelName::new(wanted)
            .ok()
            .and_then(|n| self.channels.get(&n))
        else {
            return self.numeric(now, id, "403", &[&echo(wanted), "No such channel"]);
        };
        let name = channel.name().clone();
        let Some((modes, rest)) = args.split_first() else {
            let (letters, values) = channel.mode_string(channel.member(id).is_some());
            // The lobby may have been created by a native user, who says
            // no time: it is as old as the server's clock.
            let created = channel
                .created_at()
                .or(self.wall_clock.map(|(_, unix)| unix))
                .unwrap_or(0)
                .to_string();
            let mut params = vec![name.as_str(), letters.as_str()];
            params.extend(values.iter().map(String::as_str));
            let mut out = Vec::new();
            self.write_numeric(&mut out, id, "324", &params);
            self.write_numeric(&mut out, id, "329", &[name.as_str(), &created]);
            return self.reply_bytes(now, id, &out);
        };
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        let request = crate::irc::mode::parse_channel_modes(modes, &rest);
        let mut out = Vec::new();
        for letter in &request.unknown {
            let letter = letter.to_string();
            self.write_numeric(
                &mut out,
                id,
                "472",
                &[&letter, "is unknown mode char to me"],
            );
        }
        if request.missing_argument {
            self.write_numeric(&mut out, id, "461", &["MODE", "Not enough parameters"]);
        }
        for (letter, argument) in &request.invalid {
            // `696 <client> <target> <mode char> <parameter> :<description>`
            let letter = letter.to_string();
            let params = [
                name.as_str(),
                &letter,
                &echo(argument),
                "Invalid mode parameter",
            ];
            self.write_numeric(&mut out, id, "696", &params);
        }
        for list in &request.queries {
            let (item, end, what) = match list {
                List::Ban => ("367", "368", "End of channel ban list"),
                List::Except => ("348", "349", "End of channel exception list"),
                List::Invite => ("346", "347", "End of channel invite list"),
            };
            let masks: Vec<String> = channel.list(*list).to_vec();
            for mask in &masks {
                self.write_numeric(&mut out, id, item, &[name.as_str(), mask]);
            }
            self.write_numeric(&mut out, id, end, &[name.as_str(), what]);
        }
        self.reply_bytes(now, id, &out);
        if request.changes.is_empty() {
            return;
        }
        let mut changes = Vec::with_capacity(request.changes.len());
        for change in request.changes {
            let member = |nick: &str| {
                self.lookup_nick(nick.as_bytes())
                    .ok_or_else(|| nick.to_owned())
            };
            let resolved = match change {
                ModeChange::Op(nick, on) => member(&nick).map(|m| ModeChange::Op(m, on)),
                ModeChange::Voice(nick, on) => member(&nick).map(|m| ModeChange::Voice(m, on)),
                ModeChange::Flag(flag, on) => Ok(ModeChange::Flag(flag, on)),
                ModeChange::Key(key) => Ok(ModeChange::Key(key)),
                ModeChange::Limit(limit) => Ok(ModeChange::Limit(limit)),
                ModeChange::Mask(list, mask, add) => Ok(ModeChange::Mask(list, mask, add)),
            };
            match resolved {
                Ok(change) => changes.push(change),
                Err(nick) => self.numeric(now, id, "401", &[&echo(&nick), "No such nick/channel"]),
            }
        }
        let outcome = match self.channels.change_modes(id, &name, changes) {
            Ok(outcome) => outcome,
            Err(error) => return self.channel_error(now, id, error, name.as_str()),
        };
        let mut out = Vec::new();
        for (change, error) in &outcome.refused {
            match (error, change) {
                (ChannelError::InvalidModeParam, change) => {
                    // `696 <client> <target> <mode char> <parameter> :<description>`
                    let (letter, shown) = change.invalid_parameter().unwrap_or(('*', "*"));
                    let letter = letter.to_string();
                    let shown = echo(shown);
                    let params = [name.as_str(), &letter, &shown, "Invalid mode parameter"];
                    self.write_numeric(&mut out, id, "696", &params);
                }
                (
                    ChannelError::TargetNotOnChannel,
                    ModeChange::Op(target, _) | ModeChange::Voice(target, _),
                ) => {
                    let nick = self
                        .name_of(*target)
                        .map(|n| n.as_str().to_owned())
                        .unwrap_or_else(|| "*".into());
                    let params = [nick.as_str(), name.as_str(), "They aren't on that channel"];
                    self.write_numeric(&mut out, id, "441", &params);
                }
                (ChannelError::ListFull, ModeChange::Mask(list, ..)) => {
                    // `478 <client> <channel> <char> :<reason>`
                    let letter = list.letter().to_string();
                    let params = [name.as_str(), &letter, "Channel list is full"];
                    self.write_numeric(&mut out, id, "478", &params);
                }
                (error, _) => {
                    let code = format!("{:03}", error.numeric());
                    self.write_numeric(&mut out, id, &code, &[name.as_str(), &error.to_string()]);
                }
            }
        }
        self.reply_bytes(now, id, &out);
        let applied = outcome.applied;
        if applied.is_empty() {
            return;
        }
        let (letters, values) = self.mode_line(&applied);
        let mut params = vec![name.as_str(), letters.as_str()];
        params.extend(values.iter().map(String::as_str));
        let mask = self.mask_of(id);
        let mut line = Vec::new();
        write_message(&mut line, Some(&mask), "MODE", &params);
        self.deliver_channel(now, &name, id, true, Broadcast::Message, &line);
    }

    /// `+o-k+b alice *!*@x` for applied changes.
    fn mode_line(&self, applied: &[ModeChange<ConnId>]) -> (String, Vec<String>) {
        let mut letters = String::new();
        let mut values = Vec::new();
        let mut sign = None;
        for change in applied {
            let (on, letter, value) = match change {
                ModeChange::Op(m, on) => {
                    (*on, 'o', self.name_of(*m).map(|n| n.as_str().to_owned()))
                }
                ModeChange::Voice(m, on) => {
                    (*on, 'v', self.name_of(*m).map(|n| n.as_str().to_owned()))
                }
                ModeChange::Flag(flag, on) => {
                    let letter = Flag::ALL
                        .iter()
                        .find(|(f, _)| f == flag)
                        .map_or('?', |(_, l)| *l);
                    (*on, letter, None)
                }
                ModeChange::Key(key) => (
                    key.is_some(),
                    'k',
                    Some(key.clone().unwrap_or_else(|| "*".into())),
                ),
                ModeChange::Limit(limit) => (limit.is_some(), 'l', limit.map(|l| l.to_string())),
                ModeChange::Mask(list, mask, add) => (*add, list.letter(), Some(mask.clone())),
            };
            if sign != Some(on) {
                letters.push(if on { '+' } else { '-' });
                sign = Some(on);
            }
            letters.push(letter);
            values.extend(value);
        }
        (letters, values)
    }

    fn user_mode(&mut self, now: Instant, id: ConnId, nick: Name, target: &str, args: &[String]) {
        let Some(holder) = self.lookup_nick(target.as_bytes()) else {
            return self.numeric(now, id, "401", &[&echo(target), "No such nick/channel"]);
        };
        if holder != id {
            return self.numeric(now, id, "502", &["Cant change mode for other users"]);
        }
        let Some(modes) = args.first() else {
            let (invisible, oper) = self
                .conn(id)
                .and_then(|c| c.irc.as_deref())
                .map_or((false, false), |i| (i.invisible, i.oper));
            let mut letters = String::from("+");
            if invisible {
                letters.push('i');
            }
            if oper {
                letters.push('o');
            }
            return self.numeric(now, id, "221", &[&letters]);
        };
        let mut on = true;
        let mut changed = String::new();
        let mut unknown = false;
        let mut sign = None;
        for letter in modes.chars() {
            let applied = match letter {
                '+' => {
                    on = true;
                    continue;
                }
                '-' => {
                    on = false;
                    continue;
                }
                'i' => {
                    let flipped = self
                        .irc_mut(id)
                        .is_some_and(|irc| std::mem::replace(&mut irc.invisible, on) != on);
                    if flipped && on {
                        self.invisible_online += 1;
                    } else if flipped {
                        self.invisible_online = self.invisible_online.saturating_sub(1);
                    }
                    flipped
                }
                // Operator status comes from OPER only; it can be dropped.
                'o' if !on => {
                    let was = self
                        .irc_mut(id)
                        .is_some_and(|irc| std::mem::take(&mut irc.oper));
                    if was {
                        self.opers_online = self.opers_online.saturating_sub(1);
                    }
                    was
                }
                'o' => false,
                _ => {
                    unknown = true;
                    false
                }
            };
            if applied {
                if sign != Some(on) {
                    changed.push(if on { '+' } else { '-' });
                    sign = Some(on);
                }
                changed.push(letter);
            }
        }
        let mut out = Vec::new();
        if unknown {
            self.write_numeric(&mut out, id, "501", &["Unknown MODE flag"]);
        }
        if !changed.is_empty() {
            write_message(
                &mut out,
                Some(nick.as_str()),
                "MODE",
                &[nick.as_str(), &changed],
            );
        }
        self.reply_bytes(now, id, &out);
    }

    fn who_reply(&mut self, now: Instant, id: ConnId, mask: &str) {
        let server = self.config.irc.server_name.clone();
        let mut rows: Vec<(String, ConnId, bool, bool)> = Vec::new();
        if let Some(channel) = ChannelName::new(mask)
            .ok()
            .and_then(|n| self.channels.get(&n))
        {
            let member = channel.member(id).is_some();
            if member || !channel.has(Flag::Secret) {
                let shown = channel.name().as_str().to_owned();
                rows.extend(
                    channel
                        .members()
                        .iter()
                        .filter(|m| member || !self.is_invisible(m.id))
                        .map(|m| (shown.clone(), m.id, m.op, m.voice)),
                );
            }
        } else if let Some(user) = self.lookup_nick(mask.as_bytes()) {
            rows.push(("*".into(), user, false, false));
        } else if mask.contains(['*', '?']) {
            // `+i` hides a user from masks, except from those who share a
            // channel with it: looked up once, not per user.
            let mates: std::collections::HashSet<ConnId> = self
                .channels
                .of(id)
                .flat_map(|c| c.members().iter().map(|m| m.id))
                .collect();
            for &user in self.presence.conns() {
                let visible = user == id || !self.is_invisible(user) || mates.contains(&user);
                if visible
                    && self.who(user).is_some_and(|w| {
                        mask_matches(mask, w.nick.as_str()) || mask_matches(mask, &w.mask())
                    })
                {
                    rows.push(("*".into(), user, false, false));
                }
            }
        }
        let mut out = Vec::new();
        for (channel, user, op, voice) in rows {
            let Some(w) = self.who(user) else { continue };
            let mut flags = String::from(if w.away.is_some() { "G" } else { "H" });
            if w.oper {
                flags.push('*');
            }
            if op {
                flags.push('@');
            } else if voice {
                flags.push('+');
            }
            let real = format!("0 {}", w.realname);
            self.write_numeric(
                &mut out,
                id,
                "352",
                &[
                    &channel,
                    &w.user,
                    w.host,
                    &server,
                    w.nick.as_str(),
                    &flags,
                    &real,
                ],
            );
        }
        self.write_numeric(&mut out, id, "315", &[&echo(mask), "End of /WHO list"]);
        self.reply_bytes(now, id, &out);
    }

    fn whois(&mut self, now: Instant, id: ConnId, target: &str) {
        let mut out = Vec::new();
        match self
            .lookup_nick(target.as_bytes())
            .and_then(|c| self.who(c).map(|w| (c, w)))
        {
            None => {
                self.write_numeric(
                    &mut out,
                    id,
                    "401",
                    &[&echo(target), "No such nick/channel"],
                );
                self.write_numeric(&mut out, id, "318", &[&echo(target), "End of /WHOIS list"]);
            }
            Some((user, w)) => {
                let nick = w.nick.as_str();
                self.write_numeric(
                    &mut out,
                    id,
                    "311",
                    &[nick, &w.user, w.host, "*", &w.realname],
                );
                let channels: Vec<String> = self
                    .channels
                    .of(user)
                    .filter(|c| !c.has(Flag::Secret) || c.member(id).is_some())
                    .map(|c| {
                        let role = c.member(user).map_or("", |m| {
                            if m.op {
                                "@"
                            } else if m.voice {
                                "+"
                            } else {
                                ""
                            }
                        });
                        format!("{role}{}", c.name())
                    })
                    .collect();
                // As many 319 lines as the channels need.
                let mut line = String::new();
                for channel in channels {
                    if !line.is_empty() && line.len() + channel.len() > 300 {
                        self.write_numeric(&mut out, id, "319", &[nick, &line]);
                        line.clear();
                    }
                    if !line.is_empty() {
                        line.push(' ');
                    }
                    line.push_str(&channel);
                }
                if !line.is_empty() {
                    self.write_numeric(&mut out, id, "319", &[nick, &line]);
                }
                let server = self.config.irc.server_name.clone();
                let kind = if self.is_irc(user) {
                    "via IRC"
                } else {
                    "via the native protocol"
                };
                self.write_numeric(&mut out, id, "312", &[nick, &server, kind]);
                if w.oper {
                    self.write_numeric(&mut out, id, "313", &[nick, "is an IRC operator"]);
                }
                if let Some(away) = &w.away {
                    self.write_numeric(&mut out, id, "301", &[nick, away]);
                }
                self.write_numeric(&mut out, id, "318", &[nick, "End of /WHOIS list"]);
            }
        }
        self.reply_bytes(now, id, &out);
    }

    fn whowas_reply(&mut self, now: Instant, id: ConnId, target: &str, count: Option<usize>) {
        let mut out = Vec::new();
        let wanted = Name::new(target).ok();
        let found: Vec<Gone> = self
            .whowas
            .iter()
            .rev()
            .filter(|g| wanted.is_some_and(|w| w == g.nick))
            .take(count.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        if found.is_empty() {
            self.write_numeric(
                &mut out,
                id,
                "406",
                &[&echo(target), "There was no such nickname"],
            );
        }
        for gone in found {
            self.write_numeric(
                &mut out,
                id,
                "314",
                &[
                    gone.nick.as_str(),
                    &gone.user,
                    gone.host,
                    "*",
                    &gone.realname,
                ],
            );
        }
        self.write_numeric(&mut out, id, "369", &[&echo(target), "End of WHOWAS"]);
        self.reply_bytes(now, id, &out);
    }

    fn motd(&mut self, now: Instant, id: ConnId, nick: Name) {
        let mut out = Vec::new();
        registration::write_motd(
            &mut out,
            &self.config.irc.server_name,
            nick.as_str(),
            self.config.irc.motd.as_deref(),
        );
        self.reply_bytes(now, id, &out);
    }

    fn help(&mut self, now: Instant, id: ConnId, subject: Option<String>) {
        const COMMANDS: &str = "CAP PASS NICK USER PING PONG QUIT JOIN PART NAMES TOPIC LIST KICK INVITE MODE PRIVMSG NOTICE WHO WHOIS WHOWAS AWAY LUSERS MOTD VERSION TIME INFO LINKS HELP ISON USERHOST OPER KILL WALLOPS";
        let subject = subject.unwrap_or_else(|| "index".into());
        let known = subject == "index"
            || COMMANDS
                .split(' ')
                .any(|c| c.eq_ignore_ascii_case(&subject));
        if !known {
            return self.numeric(
                now,
                id,
                "524",
                &[&echo(&subject), "No help available on this topic"],
            );
        }
        let subject = echo(&subject);
        let mut out = Vec::new();
        let first = if subject == "index" {
            "Commands this server knows:".to_owned()
        } else {
            format!(
                "{} is supported; see the Modern IRC client protocol.",
                subject.to_ascii_uppercase()
            )
        };
        self.write_numeric(&mut out, id, "704", &[&subject, &first]);
        if subject == "index" {
            self.write_numeric(&mut out, id, "705", &[&subject, COMMANDS]);
        }
        self.write_numeric(&mut out, id, "706", &[&subject, "End of /HELP"]);
        self.reply_bytes(now, id, &out);
    }

    fn oper(&mut self, now: Instant, id: ConnId, nick: Name, account: &str, password: &str) {
        let ok = self
            .config
            .irc
            .opers
            .iter()
            .any(|(name, secret)| name == account && secret == password);
        if !ok {
            return self.numeric(now, id, "464", &["Password incorrect"]);
        }
        let was = self
            .irc_mut(id)
            .is_some_and(|irc| std::mem::replace(&mut irc.oper, true));
        if !was {
            self.opers_online += 1;
        }
        let mut out = Vec::new();
        self.write_numeric(&mut out, id, "381", &["You are now an IRC operator"]);
        write_message(
            &mut out,
            Some(nick.as_str()),
            "MODE",
            &[nick.as_str(), "+o"],
        );
        self.reply_bytes(now, id, &out);
    }

    fn is_oper(&self, id: ConnId) -> bool {
        self.conn(id)
            .and_then(|c| c.irc.as_deref())
            .is_some_and(|i| i.oper)
    }

    fn kill(&mut self, now: Instant, id: ConnId, nick: Name, victim: &str, reason: &str) {
        if !self.is_oper(id) {
            return self.numeric(
                now,
                id,
                "481",
                &["Permission Denied- You're not an IRC operator"],
            );
        }
        let Some(target) = self.lookup_nick(victim.as_bytes()) else {
            return self.numeric(now, id, "401", &[&echo(victim), "No such nick/channel"]);
        };
        let detail = format!("Killed by {nick} ({reason})");
        // (No let chain: the core builds with Rust 1.85.)
        if let Some(victim) = self.name_of(target).filter(|_| self.is_irc(target)) {
            // Modern IRC: the victim gets the KILL itself, then its ERROR.
            // Part of the farewell: a victim whose queue is nearly full must
            // not be dropped by it before its ERROR.
            let source = self.mask_of(id);
            self.send(now, target, Delivery::Farewell, |out| {
                write_text_message(out, Some(&source), "KILL", &[victim.as_str(), reason]);
            });
        }
        self.depart(now, target, Reason::Disconnected, Farewell::Bye(&detail));
    }

    fn wallops(&mut self, now: Instant, id: ConnId, body: &str) {
        if !self.is_oper(id) {
            return self.numeric(
                now,
                id,
                "481",
                &["Permission Denied- You're not an IRC operator"],
            );
        }
        let mask = self.mask_of(id);
        let mut line = Vec::new();
        let room = crate::irc::MAX_LINE.saturating_sub(mask.len() + 14);
        for piece in split_lines(body, room) {
            write_text_message(&mut line, Some(&mask), "WALLOPS", &[piece]);
        }
        let opers: Vec<ConnId> = self
            .presence
            .conns()
            .iter()
            .copied()
            .filter(|&c| self.is_oper(c))
            .collect();
        self.deliver(now, &line, &opers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_are_shown_as_calendar_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_time(1_796_215_445), "2026-12-02 12:44:05 UTC");
    }

    #[test]
    fn irc_text_reaches_native_users_only_when_something_is_left() {
        assert_eq!(native_text("\x02bold\x02 move"), Some("bold move".into()));
        assert_eq!(
            native_text("\x01ACTION waves\x01"),
            Some("/me waves".into())
        );
        assert_eq!(native_text("\x01VERSION\x01"), None);
        assert_eq!(native_text("bell\x07"), Some("bell".into()));
        assert_eq!(native_text("\x07"), None);
    }

    #[test]
    fn the_server_closes_irc_links_with_the_contract_words() {
        assert_eq!(
            error_text(Reason::Shutdown, "server shutting down"),
            "Server shutting down"
        );
        assert_eq!(
            error_text(Reason::SlowConsumer, ""),
            "Closing link (slow consumer)"
        );
        assert_eq!(error_text(Reason::Quit, "bye"), "Closing link (Quit: bye)");
        assert_eq!(quit_text(Reason::Quit, ""), "Quit");
        // A reason too long for the line is cut before the closing `)`.
        for reason in [Reason::Quit, Reason::Disconnected] {
            let text = error_text(reason, &"é".repeat(400));
            let mut line = Vec::new();
            crate::irc::write_text_message(&mut line, None, "ERROR", &[&text]);
            assert!(line.ends_with(")\r\n".as_bytes()), "{reason:?}");
            assert!(line.len() <= MAX_LINE, "{}", line.len());
        }
    }
}
