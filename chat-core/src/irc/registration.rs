//! IRC registration: `CAP`, `PASS`, `NICK` and `USER` until the client has a
//! nick and a user (and has ended capability negotiation), then the welcome
//! burst: 001–005, the LUSERS numerics and the MOTD (or 422).
//!
//! Invariants: nothing is registered with a nick that is invalid or that
//! `taken` says is in use at the moment registration completes; every
//! refusal writes its numeric; the output for one message is at most a
//! handful of lines (the welcome burst is written by [`welcome`], once).

use crate::irc::{Message, echo, write_message};
use crate::name::Name;

/// What the server says about itself in the welcome burst.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `--server-name`: the source of every numeric.
    pub name: String,
    /// The network name in 001 and ISUPPORT `NETWORK`.
    pub network: String,
    /// The software version in 002 and 004.
    pub version: String,
    /// When the server started, as shown in 003.
    pub created: String,
}

/// Registration in progress on one IRC connection.
#[derive(Debug, Default)]
pub struct Registration {
    nick: Option<Name>,
    user: Option<(String, String)>,
    /// `CAP LS` or `CAP REQ` came: registration waits for `CAP END`.
    negotiating: bool,
}

/// What a message did to registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Still registering (any reply is in the output).
    Pending,
    /// Registered: write [`welcome`] and make the user a member.
    Registered {
        /// The nick, as the user wrote it.
        nick: Name,
        /// The `USER` username.
        user: String,
        /// The `USER` real name.
        realname: String,
    },
    /// `QUIT` before registering.
    Quit,
}

impl Registration {
    /// A connection that has said nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The nick chosen so far (`*` in numerics until there is one).
    pub fn nick(&self) -> Option<Name> {
        self.nick
    }

    /// Acts on `message`, writing replies to `out` as `server`; `taken`
    /// says whether a nick is in use by anyone, on either protocol.
    pub fn handle(
        &mut self,
        server: &str,
        message: &Message<'_>,
        taken: impl Fn(&Name) -> bool,
        out: &mut Vec<u8>,
    ) -> Step {
        let target = self
            .nick
            .map_or_else(|| "*".to_owned(), |n| n.as_str().to_owned());
        let reply = |out: &mut Vec<u8>, code: &str, params: &[&str]| {
            let mut all = vec![target.as_str()];
            all.extend_from_slice(params);
            write_message(out, Some(server), code, &all);
        };
        let param = |i| {
            message
                .param(i)
                .map(|p| String::from_utf8_lossy(p).into_owned())
        };
        let command = String::from_utf8_lossy(message.command).to_ascii_uppercase();
        match command.as_str() {
            "CAP" => match param(0).map(|s| s.to_ascii_uppercase()).as_deref() {
                Some("LS") | Some("LIST") => {
                    self.negotiating |= param(0).is_some_and(|s| s.eq_ignore_ascii_case("LS"));
                    let sub = param(0).unwrap_or_default().to_ascii_uppercase();
                    write_message(out, Some(server), "CAP", &[&target, &sub, ""]);
                }
                Some("REQ") => {
                    // No capabilities: every request is refused.
                    self.negotiating = true;
                    let asked = realname_of(&param(1).unwrap_or_default());
                    write_message(out, Some(server), "CAP", &[&target, "NAK", &asked]);
                }
                Some("END") => self.negotiating = false,
                Some(other) => reply(out, "410", &[&echo(other), "Invalid CAP command"]),
                None => reply(out, "461", &["CAP", "Not enough parameters"]),
            },
            // No password is asked for; a PASS must still be well formed.
            "PASS" if param(0).is_none() => reply(out, "461", &["PASS", "Not enough parameters"]),
            "PASS" => {}
            "NICK" => match param(0).filter(|nick| !nick.is_empty()) {
                None => reply(out, "431", &["No nickname given"]),
                Some(wanted) => match Name::new(&wanted) {
                    Err(_) => reply(out, "432", &[&echo(&wanted), "Erroneous nickname"]),
                    Ok(name) if taken(&name) => {
                        reply(out, "433", &[name.as_str(), "Nickname is already in use"])
                    }
                    Ok(name) => self.nick = Some(name),
                },
            },
            // An empty user name or real name is a missing one (Modern IRC).
            "USER" => match (param(0), param(3)) {
                (Some(user), Some(realname))
                    if message.params().len() >= 4 && !user.is_empty() && !realname.is_empty() =>
                {
                    self.user = Some((username(&user), realname_of(&realname)));
                }
                _ => reply(out, "461", &["USER", "Not enough parameters"]),
            },
            "PING" => match param(0) {
                Some(token) => {
                    let token = realname_of(&token);
                    crate::irc::write_text_message(out, Some(server), "PONG", &[server, &token]);
                }
                None => reply(out, "461", &["PING", "Not enough parameters"]),
            },
            "PONG" => {}
            "QUIT" => return Step::Quit,
            _ => reply(out, "451", &["You have not registered"]),
        };
        self.complete(server, &taken, out)
    }

    fn complete(
        &mut self,
        server: &str,
        taken: &impl Fn(&Name) -> bool,
        out: &mut Vec<u8>,
    ) -> Step {
        let (Some(nick), Some((user, realname))) = (self.nick, self.user.clone()) else {
            return Step::Pending;
        };
        if self.negotiating {
            return Step::Pending;
        }
        if taken(&nick) {
            // Taken between NICK and USER: choose again.
            self.nick = None;
            write_message(
                out,
                Some(server),
                "433",
                &["*", nick.as_str(), "Nickname is already in use"],
            );
            return Step::Pending;
        }
        Step::Registered {
            nick,
            user,
            realname,
        }
    }
}

/// Most bytes of a username (the `user` in `nick!user@host`).
pub const MAX_USERNAME: usize = 16;
/// Most bytes of a real name.
pub const MAX_REALNAME: usize = 100;

/// The `USER` username as this server shows it in prefixes: characters that
/// could break a prefix (`!`, `@`, `:`, spaces, controls) dropped, at most
/// [`MAX_USERNAME`] bytes, `user` if nothing is left.
pub fn username(sent: &str) -> String {
    let mut name: String = sent
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, ' ' | '!' | '@' | ':'))
        .collect();
    truncate(&mut name, MAX_USERNAME);
    if name.is_empty() {
        name.push_str("user");
    }
    name
}

/// A real name (or any trailing text echoed back) without control
/// characters, at most [`MAX_REALNAME`] bytes.
pub fn realname_of(sent: &str) -> String {
    let mut name: String = sent.chars().filter(|c| !c.is_control()).collect();
    truncate(&mut name, MAX_REALNAME);
    name
}

fn truncate(text: &mut String, max: usize) {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

/// Counts for the LUSERS numerics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lusers {
    /// Registered users, both protocols.
    pub users: usize,
    /// Of those, IRC users with `+i`.
    pub invisible: usize,
    /// IRC operators online.
    pub operators: usize,
    /// Connections not registered yet.
    pub unknown: usize,
    /// Channels that exist.
    pub channels: usize,
    /// The most users registered at once since the server started.
    pub max_users: usize,
}

/// Writes the LUSERS numerics (251–255) for `nick`.
pub fn lusers(out: &mut Vec<u8>, server: &str, nick: &str, counts: Lusers) {
    let users = format!(
        "There are {} users and {} invisible on 1 servers",
        counts.users.saturating_sub(counts.invisible),
        counts.invisible
    );
    write_message(out, Some(server), "251", &[nick, &users]);
    let (ops, unknown, channels) = (
        counts.operators.to_string(),
        counts.unknown.to_string(),
        counts.channels.to_string(),
    );
    write_message(
        out,
        Some(server),
        "252",
        &[nick, &ops, "operator(s) online"],
    );
    write_message(
        out,
        Some(server),
        "253",
        &[nick, &unknown, "unknown connection(s)"],
    );
    write_message(
        out,
        Some(server),
        "254",
        &[nick, &channels, "channels formed"],
    );
    let me = format!("I have {} clients and 0 servers", counts.users);
    write_message(out, Some(server), "255", &[nick, &me]);
    // One server: the local counts are the global ones.
    let (now, max) = (counts.users.to_string(), counts.max_users.to_string());
    let local = format!("Current local users {now}, max {max}");
    write_message(out, Some(server), "265", &[nick, &now, &max, &local]);
    let global = format!("Current global users {now}, max {max}");
    write_message(out, Some(server), "266", &[nick, &now, &max, &global]);
}

/// The ISUPPORT tokens this server advertises (005), in lines of at most 13.
pub fn isupport(info: &ServerInfo) -> Vec<String> {
    vec![
        "CASEMAPPING=ascii".into(),
        "CHANTYPES=#".into(),
        format!("NICKLEN={}", crate::name::MAX_NAME),
        format!("CHANNELLEN={}", crate::channel::MAX_CHANNEL_NAME),
        "PREFIX=(ov)@+".into(),
        "CHANMODES=beI,k,l,imnst".into(),
        format!("MODES={}", crate::irc::mode::MAX_MODES),
        format!("NETWORK={}", info.network),
        format!("LINELEN={}", crate::irc::MAX_LINE),
        format!("TOPICLEN={}", crate::channel::MAX_TOPIC),
        format!("KEYLEN={}", crate::channel::MAX_KEY),
        format!("CHANLIMIT=#:{}", crate::channel::MAX_CHANNELS_PER_MEMBER),
        // Each list on its own (`beI:100` would cap the three together).
        format!("MAXLIST=b:{0},e:{0},I:{0}", crate::channel::MAX_LIST),
        "EXCEPTS=e".into(),
        "INVEX=I".into(),
        "TARGMAX=NAMES:1,WHOIS:1".into(),
    ]
}

/// The welcome burst after registration: 001–005, LUSERS, then the MOTD
/// (375, 372 per line, 376) or 422 without one.
pub fn welcome(
    out: &mut Vec<u8>,
    info: &ServerInfo,
    nick: &str,
    user: &str,
    host: &str,
    counts: Lusers,
    motd: Option<&[String]>,
) {
    let server = Some(info.name.as_str());
    let welcome = format!(
        "Welcome to the {} Network, {nick}!{user}@{host}",
        info.network
    );
    write_message(out, server, "001", &[nick, &welcome]);
    let host_line = format!(
        "Your host is {}, running version {}",
        info.name, info.version
    );
    write_message(out, server, "002", &[nick, &host_line]);
    let created = format!("This server was created {}", info.created);
    write_message(out, server, "003", &[nick, &created]);
    write_message(
        out,
        server,
        "004",
        &[
            nick,
            &info.name,
            &info.version,
            "io",
            "beIiklmnostv",
            "beIklov",
        ],
    );
    let tokens = isupport(info);
    for chunk in tokens.chunks(13) {
        let mut params = vec![nick];
        params.extend(chunk.iter().map(String::as_str));
        params.push("are supported by this server");
        write_message(out, server, "005", &params);
    }
    lusers(out, &info.name, nick, counts);
    write_motd(out, &info.name, nick, motd);
}

/// Writes the MOTD (375, 372 per line, 376), or 422 without one: the end
/// of the welcome burst, and the answer to `MOTD`.
pub fn write_motd(out: &mut Vec<u8>, server_name: &str, nick: &str, motd: Option<&[String]>) {
    let server = Some(server_name);
    match motd {
        None => {
            write_message(out, server, "422", &[nick, "MOTD File is missing"]);
        }
        Some(lines) => {
            let start = format!("- {server_name} Message of the day - ");
            write_message(out, server, "375", &[nick, &start]);
            // Room for the text after `:server 372 nick :- ` and CRLF.
            let room = crate::irc::MAX_LINE.saturating_sub(server_name.len() + nick.len() + 14);
            for line in lines {
                // A line too long for one message is cut at a character
                // boundary rather than dropped.
                for piece in crate::irc::text::split_lines(line, room) {
                    write_message(out, server, "372", &[nick, &format!("- {piece}")]);
                }
            }
            write_message(out, server, "376", &[nick, "End of /MOTD command."]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(registration: &mut Registration, line: &str, taken: &[&str]) -> (Step, String) {
        let message = Message::parse(line.as_bytes()).unwrap();
        let mut out = Vec::new();
        let step = registration.handle(
            "chat.local",
            &message,
            |n| taken.iter().any(|t| n.as_str().eq_ignore_ascii_case(t)),
            &mut out,
        );
        (step, String::from_utf8(out).unwrap())
    }

    fn registered(nick: &str) -> Step {
        Step::Registered {
            nick: Name::new(nick).unwrap(),
            user: "u".into(),
            realname: "Real Name".into(),
        }
    }

    #[test]
    fn nick_then_user_registers() {
        let mut r = Registration::new();
        assert_eq!(
            run(&mut r, "PASS", &[]),
            (
                Step::Pending,
                ":chat.local 461 * PASS :Not enough parameters\r\n".into()
            ),
            "a bare PASS is refused, and registration goes on"
        );
        assert_eq!(
            run(&mut r, "PASS secret", &[]),
            (Step::Pending, String::new())
        );
        assert_eq!(
            run(&mut r, "NICK alice", &[]),
            (Step::Pending, String::new())
        );
        assert_eq!(
            run(&mut r, "USER u 0 * :Real Name", &[]),
            (registered("alice"), String::new())
        );
    }

    #[test]
    fn cap_negotiation_holds_registration_until_cap_end() {
        let mut r = Registration::new();
        assert_eq!(
            run(&mut r, "CAP LS 302", &[]).1,
            ":chat.local CAP * LS :\r\n"
        );
        run(&mut r, "NICK bob", &[]);
        assert_eq!(run(&mut r, "USER u 0 * :Real Name", &[]).0, Step::Pending);
        assert_eq!(
            run(&mut r, "CAP REQ :sasl", &[]).1,
            ":chat.local CAP bob NAK sasl\r\n"
        );
        assert_eq!(run(&mut r, "CAP END", &[]).0, registered("bob"));
    }

    #[test]
    fn bad_and_taken_nicks_and_missing_parameters_get_their_numerics() {
        let mut r = Registration::new();
        assert_eq!(
            run(&mut r, "NICK", &[]).1,
            ":chat.local 431 * :No nickname given\r\n"
        );
        assert_eq!(
            run(&mut r, "NICK a.b", &[]).1,
            ":chat.local 432 * a.b :Erroneous nickname\r\n"
        );
        assert_eq!(
            run(&mut r, "NICK Bob", &["bob"]).1,
            ":chat.local 433 * Bob :Nickname is already in use\r\n"
        );
        assert_eq!(
            run(&mut r, "USER u 0 *", &[]).1,
            ":chat.local 461 * USER :Not enough parameters\r\n"
        );
        assert_eq!(
            run(&mut r, "JOIN #lobby", &[]).1,
            ":chat.local 451 * :You have not registered\r\n"
        );
        assert_eq!(
            run(&mut r, "PING abc", &[]).1,
            ":chat.local PONG chat.local :abc\r\n"
        );
        run(&mut r, "NICK carol", &[]);
        // Taken by the time USER completes registration: asked again.
        let (step, out) = run(&mut r, "USER u 0 * :C", &["carol"]);
        assert_eq!(step, Step::Pending);
        assert_eq!(
            out,
            ":chat.local 433 * carol :Nickname is already in use\r\n"
        );
        assert_eq!(
            run(&mut r, "NICK carol2", &[]).0,
            Step::Registered {
                nick: Name::new("carol2").unwrap(),
                user: "u".into(),
                realname: "C".into()
            }
        );
        assert_eq!(
            run(&mut Registration::new(), "QUIT :bye", &[]).0,
            Step::Quit
        );
        // Every refusal is written, whatever the client sent.
        let mut r = Registration::new();
        assert_eq!(
            run(&mut r, "NICK :", &[]).1,
            ":chat.local 431 * :No nickname given\r\n"
        );
        assert_eq!(
            run(&mut r, "NICK :a b", &[]).1,
            ":chat.local 432 * a_b :Erroneous nickname\r\n"
        );
        assert_eq!(
            run(&mut r, "NICK ::x", &[]).1,
            ":chat.local 432 * _x :Erroneous nickname\r\n"
        );
        assert_eq!(
            run(&mut r, "CAP :x y", &[]).1,
            ":chat.local 410 * X_Y :Invalid CAP command\r\n"
        );
    }

    #[test]
    fn what_users_send_cannot_break_a_prefix() {
        assert_eq!(username("a\rb\0c@d!e f"), "abcdef");
        assert_eq!(username(&"u".repeat(40)).len(), MAX_USERNAME);
        assert_eq!(username("@!"), "user");
        assert_eq!(realname_of("Real\rName\0"), "RealName");
        let mut r = Registration::new();
        run(&mut r, "NICK n", &[]);
        match run(&mut r, "USER a\rb 0 * :x", &[]).0 {
            Step::Registered { user, .. } => assert_eq!(user, "ab"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_welcome_burst_names_the_server_and_its_limits() {
        let info = ServerInfo {
            name: "chat.local".into(),
            network: "chat".into(),
            version: "chat-0.1.0".into(),
            created: "today".into(),
        };
        let counts = Lusers {
            users: 3,
            invisible: 1,
            operators: 0,
            unknown: 1,
            channels: 2,
            max_users: 4,
        };
        let mut out = Vec::new();
        welcome(&mut out, &info, "alice", "u", "127.0.0.1", counts, None);
        let text = String::from_utf8(out).unwrap();
        let codes: Vec<&str> = text.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
        assert_eq!(
            codes,
            [
                "001", "002", "003", "004", "005", "005", "251", "252", "253", "254", "255", "265",
                "266", "422"
            ]
        );
        assert!(text.starts_with(
            ":chat.local 001 alice :Welcome to the chat Network, alice!u@127.0.0.1\r\n"
        ));
        for token in [
            "CASEMAPPING=ascii",
            "CHANTYPES=#",
            "NICKLEN=32",
            "CHANNELLEN=50",
            "PREFIX=(ov)@+",
            "NETWORK=chat",
        ] {
            assert!(text.contains(token), "{token}");
        }
        assert!(
            text.lines().all(|l| l.len() + 2 <= crate::irc::MAX_LINE),
            "CRLF included"
        );
        let mut out = Vec::new();
        welcome(
            &mut out,
            &info,
            "alice",
            "u",
            "h",
            counts,
            Some(&["hello".into(), "x".repeat(900)]),
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(":chat.local 372 alice :- hello\r\n"));
        assert_eq!(
            text.matches(" 372 ").count(),
            3,
            "hello, and 900 bytes in two pieces"
        );
        // A long server name leaves less room: the lines still fit, none lost.
        let long = ServerInfo {
            name: "s".repeat(60),
            ..info.clone()
        };
        let mut out = Vec::new();
        welcome(
            &mut out,
            &long,
            "alice",
            "u",
            "h",
            counts,
            Some(&["y".repeat(900)]),
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().all(|l| l.len() + 2 <= crate::irc::MAX_LINE));
        let shown: usize = text
            .lines()
            .filter(|l| l.contains(" 372 "))
            .map(|l| l.matches('y').count())
            .sum();
        assert_eq!(shown, 900);
        assert!(
            text.lines().all(|l| l.len() + 2 <= crate::irc::MAX_LINE),
            "CRLF included"
        );
        assert!(text.ends_with(" 376 alice :End of /MOTD command.\r\n"));
    }
}
