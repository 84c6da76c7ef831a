//! Acting on one client frame: the request handlers of section 2 of the
//! contract, in the order of checks it gives (registered, then text, then
//! recipient; for HELLO: version, already registered, name, taken).

use std::time::Instant;

use super::*;

impl Server {
    pub(super) fn protocol_error(&mut self, now: Instant, id: ConnId, detail: &str) {
        self.depart(now, id, Reason::ProtocolError, Farewell::Bye(detail));
    }

    pub(super) fn handle_frame(&mut self, now: Instant, id: ConnId, frame: RawFrame<'_>) -> Flow {
        let request = match RawClientFrame::parse(frame) {
            Ok(request) => request,
            Err(malformed) => {
                let detail = malformed.to_string();
                self.protocol_error(now, id, &detail);
                return Flow::Done;
            }
        };
        let sender = self.name_of(id);
        match request {
            RawClientFrame::Hello { name } => return self.hello(now, id, sender, name),
            RawClientFrame::Say { text } => {
                let Some(from) = self.require_registered(now, id, sender) else {
                    return Flow::Done;
                };
                if let Err(error) = validate_text(text) {
                    self.reply_error(now, id, ErrorCode::BadText, &error.to_string());
                    return Flow::Done;
                }
                // Encoded once per wire format, for everyone in the lobby.
                let lines = match validate_text(text) {
                    Ok(text) => self.lobby_lines(&from, text),
                    Err(_) => Vec::new(),
                };
                let mut native = Vec::new();
                frame::encode_message(&mut native, &from, text);
                if let Err(blocker) = self.admit_lobby(now, id, native.len(), lines.len()) {
                    return Flow::Wait(blocker);
                }
                if self.is_doomed(id) {
                    // The sender was the stalled reader admission dropped.
                    return Flow::Done;
                }
                self.deliver_lobby(now, id, false, Broadcast::Message, &native, &lines);
            }
            RawClientFrame::Whisper { to, text } => {
                let Some(from) = self.require_registered(now, id, sender) else {
                    return Flow::Done;
                };
                if let Err(error) = validate_text(text) {
                    self.reply_error(now, id, ErrorCode::BadText, &error.to_string());
                    return Flow::Done;
                }
                let recipient = Name::from_bytes(to)
                    .ok()
                    .and_then(|to| self.presence.lookup(&to));
                let Some(to) = recipient else {
                    self.reply_error(now, id, ErrorCode::NoSuchUser, "no such user");
                    return Flow::Done;
                };
                let mut out = Vec::new();
                if self.is_irc(to) {
                    let text = validate_text(text).unwrap_or_default();
                    out = self.private_lines(&from, to, text);
                } else {
                    frame::encode_private(&mut out, &from, text);
                }
                if let Err(blocker) = self.admit_private(now, to, out.len()) {
                    return Flow::Wait(blocker);
                }
                if self.is_doomed(id) {
                    return Flow::Done;
                }
                self.send(now, to, Delivery::Unasked, |queue| {
                    queue.extend_from_slice(&out)
                });
            }
            RawClientFrame::Who => {
                if self.require_registered(now, id, sender).is_some() {
                    self.send_roster(now, id);
                }
            }
            RawClientFrame::Ping { token } => {
                self.send(now, id, Delivery::Reply, |out| {
                    frame::encode_pong(out, token)
                });
            }
            RawClientFrame::Pong { .. } => {}
            RawClientFrame::Bye => self.depart(now, id, Reason::Quit, Farewell::Bye("")),
        }
        Flow::Done
    }

    pub(super) fn hello(
        &mut self,
        now: Instant,
        id: ConnId,
        sender: Option<Name>,
        raw_name: &[u8],
    ) -> Flow {
        if sender.is_some() {
            self.reply_error(now, id, ErrorCode::AlreadyRegistered, "already registered");
            return Flow::Done;
        }
        let name = match Name::from_bytes(raw_name) {
            Ok(name) => name,
            Err(error) => {
                self.reply_error(now, id, ErrorCode::NameInvalid, &error.to_string());
                return Flow::Done;
            }
        };
        if self.presence.contains(&name) {
            self.reply_error(now, id, ErrorCode::NameTaken, "name taken");
            return Flow::Done;
        }
        let mut joined_frame = Vec::new();
        frame::encode_joined(&mut joined_frame, &name);
        let irc_join = self.lobby_join_line(&name);
        if let Err(blocker) = self.admit_lobby(now, id, joined_frame.len(), irc_join.len()) {
            return Flow::Wait(blocker);
        }
        self.presence.insert(name, id);
        self.max_users = self.max_users.max(self.presence.len());
        // The lobby takes every native user: it has no modes, and a
        // native user is in no other channel (O(1), for connect storms).
        self.channels.join_lobby(id);
        if let Some(conn) = self.conn_mut(id) {
            conn.phase = Phase::Registered(name);
        }
        self.send(now, id, Delivery::Reply, |out| {
            frame::encode_welcome(out, &name)
        });
        self.send_roster(now, id);
        self.deliver_lobby(now, id, true, Broadcast::Presence, &joined_frame, &irc_join);
        // After the JOINED: the newcomer does not hear of itself.
        self.subscribe(id, FeedId::Native);
        self.events.push_back(ServerEvent::Joined {
            conn: id,
            name,
            protocol: Protocol::Native,
        });
        Flow::Done
    }

    pub(super) fn require_registered(
        &mut self,
        now: Instant,
        id: ConnId,
        sender: Option<Name>,
    ) -> Option<Name> {
        if sender.is_none() {
            self.reply_error(
                now,
                id,
                ErrorCode::NotRegistered,
                "not registered: send HELLO first",
            );
        }
        sender
    }

    pub(super) fn reply_error(&mut self, now: Instant, id: ConnId, code: ErrorCode, detail: &str) {
        self.send(now, id, Delivery::Reply, |out| {
            frame::encode_error(out, code, detail);
        });
    }

    pub(super) fn send_roster(&mut self, now: Instant, id: ConnId) {
        let roster = self.lobby_roster();
        self.send(now, id, Delivery::Reply, |out| {
            out.extend_from_slice(roster.frames.as_bytes())
        });
        self.roster = Some(roster);
    }

    /// The lobby's roster, up to date: the last one extended by the
    /// members who joined since, or begun again after a departure or a
    /// rename. A connect storm thus encodes each name once.
    fn lobby_roster(&mut self) -> LobbyRoster {
        let departures = self.channels.lobby_departures();
        let members = self
            .channels
            .get(self.channels.lobby())
            .map(Channel::members)
            .unwrap_or_default();
        let mut roster = match self.roster.take() {
            Some(roster) if roster.departures == departures && roster.members <= members.len() => {
                roster
            }
            _ => LobbyRoster {
                frames: frame::RosterFrames::new(),
                members: 0,
                departures,
            },
        };
        for member in members.get(roster.members..).unwrap_or_default() {
            if let Some(name) = self.name_of(member.id) {
                roster.frames.push(&name);
            }
        }
        roster.members = members.len();
        debug_assert!(
            {
                let mut fresh = Vec::new();
                frame::encode_roster(&mut fresh, &self.lobby_names());
                fresh == roster.frames.as_bytes()
            },
            "the kept roster differs from the lobby's"
        );
        roster
    }
}
