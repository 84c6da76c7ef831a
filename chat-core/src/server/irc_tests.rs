//! The IRC front door driven through the server core: IRC and native
//! connections side by side, scripted lines and frames, a virtual clock.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::*;
use crate::frame::{ClientFrame, ServerFrame};
use crate::text::Text;

/// The defaults, with presence written at once: these tests are about what
/// each connection gets, at one instant; holding presence in a storm has
/// tests of its own.
fn immediate() -> ServerConfig {
    ServerConfig {
        presence_batch: Duration::ZERO,
        ..ServerConfig::default()
    }
}

/// A server with connections whose output is collected as it is written.
struct Net {
    server: Server,
    now: Instant,
    out: HashMap<ConnId, Vec<u8>>,
    /// Connections whose output is not written (a reader that stopped).
    stalled: HashSet<ConnId>,
    /// Named by `poll_transmit` and not written empty yet: like a runtime,
    /// the test writes only these (a connection the server forgets to
    /// name is never written).
    to_write: HashSet<ConnId>,
    closed: Vec<ConnId>,
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

impl Net {
    fn new(config: ServerConfig) -> Self {
        Self {
            server: Server::new(config),
            now: Instant::now(),
            out: HashMap::new(),
            stalled: HashSet::new(),
            to_write: HashSet::new(),
            closed: Vec::new(),
        }
    }

    fn default() -> Self {
        Self::new(immediate())
    }

    /// An IRC user registered as `nick`, its welcome burst read.
    fn irc(&mut self, nick: &str) -> ConnId {
        let id = self.server.handle_accept_irc(self.now);
        self.line(id, &format!("NICK {nick}"));
        self.line(id, &format!("USER {nick} 0 * :{nick} the tester"));
        let burst = self.lines(id);
        assert!(burst.iter().any(|l| l.contains(" 001 ")), "{burst:?}");
        id
    }

    /// Two IRC users in `channel`, what they were sent so far read.
    fn irc_pair_in(&mut self, first: &str, second: &str, channel: &str) -> (ConnId, ConnId) {
        let (a, b) = (self.irc(first), self.irc(second));
        for id in [a, b] {
            self.line(id, &format!("JOIN {channel}"));
        }
        self.lines(a);
        self.lines(b);
        (a, b)
    }

    /// A native user registered as `name`, its welcome and roster read.
    fn native(&mut self, user: &str) -> ConnId {
        let id = self.server.handle_accept(self.now);
        self.frame(id, &ClientFrame::Hello { name: name(user) });
        let frames = self.frames(id);
        assert!(
            matches!(frames.first(), Some(ServerFrame::Welcome { .. })),
            "{frames:?}"
        );
        id
    }

    fn line(&mut self, id: ConnId, line: &str) {
        self.bytes(id, format!("{line}\r\n").as_bytes());
    }

    fn bytes(&mut self, id: ConnId, bytes: &[u8]) {
        self.server.handle_input(self.now, id, bytes);
        self.pump();
    }

    fn frame(&mut self, id: ConnId, frame: &ClientFrame) {
        self.bytes(id, &frame.to_bytes());
    }

    fn say(&mut self, id: ConnId, text: &str) {
        let text = Text::new(text).unwrap();
        self.frame(id, &ClientFrame::Say { text });
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.pump();
    }

    /// Writes every connection's output (but the stalled ones'), runs due
    /// timers and paused input, until nothing moves.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(id) = self.server.poll_transmit() {
                self.to_write.insert(id);
            }
            let mut ready: Vec<ConnId> = self.to_write.iter().copied().collect();
            ready.sort_unstable();
            for id in ready {
                if !self.stalled.contains(&id) {
                    moved |= self.write(id);
                    self.to_write.remove(&id);
                }
            }
            while let Some(event) = self.server.poll_event() {
                if let ServerEvent::Close { conn, .. } = event {
                    self.closed.push(conn);
                }
                moved = true;
            }
            if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
                self.server.handle_timeout(self.now);
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("the server never settles");
    }

    fn write(&mut self, id: ConnId) -> bool {
        let mut wrote = false;
        loop {
            let bytes = self.server.outbound(id).to_vec();
            if bytes.is_empty() {
                return wrote;
            }
            self.out.entry(id).or_default().extend_from_slice(&bytes);
            self.server.handle_written(self.now, id, bytes.len());
            wrote = true;
        }
    }

    /// Everything written to an IRC connection since last asked, by line.
    fn lines(&mut self, id: ConnId) -> Vec<String> {
        let bytes = self.out.remove(&id).unwrap_or_default();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.is_empty() || text.ends_with("\r\n"), "{text:?}");
        text.split_terminator("\r\n").map(str::to_owned).collect()
    }

    /// Everything written to a native connection since last asked.
    fn frames(&mut self, id: ConnId) -> Vec<ServerFrame> {
        let bytes = self.out.remove(&id).unwrap_or_default();
        let mut deframer = Deframer::new();
        let mut input = bytes.as_slice();
        let mut frames = Vec::new();
        while let Some(frame) = deframer.next_frame(&mut input).unwrap() {
            frames.push(ServerFrame::decode(frame).unwrap());
        }
        frames
    }

    fn numerics(&mut self, id: ConnId) -> Vec<String> {
        self.lines(id)
            .iter()
            .filter_map(|l| l.split(' ').nth(1).map(str::to_owned))
            .collect()
    }

    fn is_closed(&self, id: ConnId) -> bool {
        self.closed.contains(&id)
    }
}

#[test]
fn registration_refuses_what_the_contract_says_then_welcomes() {
    let mut n = Net::default();
    n.native("alice");
    let c = n.server.handle_accept_irc(n.now);
    n.line(c, "JOIN #lobby");
    assert_eq!(n.numerics(c), ["451"]);
    n.line(c, "NICK bad!nick");
    assert_eq!(n.numerics(c), ["432"]);
    n.line(c, "NICK ALICE");
    assert_eq!(n.numerics(c), ["433"], "names are global and case-blind");
    n.line(c, "NICK carol");
    n.line(c, "USER c 0 * :Carol");
    let burst = n.numerics(c);
    for code in [
        "001", "002", "003", "004", "005", "251", "252", "253", "254", "255", "422",
    ] {
        assert!(burst.iter().any(|c| c == code), "{code} missing: {burst:?}");
    }
    assert_eq!(n.server.protocol(c), Some(Protocol::Irc));
    assert_eq!(n.server.registered_count(), 2);
    let h = n.server.handle_accept(n.now);
    n.frame(
        h,
        &ClientFrame::Hello {
            name: name("Carol"),
        },
    );
    assert!(matches!(
        n.frames(h).as_slice(),
        [ServerFrame::Error {
            code: ErrorCode::NameTaken,
            ..
        }]
    ));
}

#[test]
fn the_lobby_is_one_chat_for_both_protocols() {
    let mut n = Net::default();
    let alice = n.native("alice");
    let bob = n.irc("bob");
    assert!(n.frames(alice).is_empty(), "bob is not in the lobby yet");
    n.line(bob, "JOIN #lobby");
    assert_eq!(n.frames(alice), [ServerFrame::Joined { name: name("bob") }]);
    let joined = n.lines(bob);
    assert_eq!(joined[0], ":bob!bob@irc JOIN #lobby");
    assert!(
        joined[1].ends_with(" 353 bob = #lobby :alice bob"),
        "{joined:?}"
    );
    assert!(joined[2].contains(" 366 bob #lobby "), "{joined:?}");

    n.say(alice, "hi\nthere");
    assert_eq!(
        n.lines(bob),
        [
            ":alice!alice@native PRIVMSG #lobby :hi",
            ":alice!alice@native PRIVMSG #lobby :there"
        ]
    );
    n.line(bob, "PRIVMSG #lobby :\x02bold\x02 \x0304,12red\x0f move");
    n.line(bob, "PRIVMSG #lobby :\x01ACTION waves\x01");
    n.line(bob, "PRIVMSG #lobby :\x01VERSION\x01");
    n.line(bob, "PRIVMSG #lobby :\x02\x02");
    n.line(bob, "NOTICE #lobby :IRC only");
    let message = |s: &str| ServerFrame::Message {
        from: name("bob"),
        text: Text::new(s).unwrap(),
    };
    let own = ServerFrame::Message {
        from: name("alice"),
        text: Text::new("hi\nthere").unwrap(),
    };
    assert_eq!(
        n.frames(alice),
        [own, message("bold red move"), message("/me waves")],
        "the sender's own SAY comes back, as in the native protocol"
    );
    assert!(n.lines(bob).is_empty(), "no echo to the sender");

    n.frame(alice, &ClientFrame::Who);
    let Some(ServerFrame::Users { names, .. }) = n.frames(alice).pop() else {
        panic!("no roster")
    };
    let names: Vec<&str> = names.iter().map(Name::as_str).collect();
    assert_eq!(
        names,
        ["alice", "bob"],
        "WHO is the lobby, IRC users included"
    );
}

#[test]
fn native_users_see_irc_users_come_and_go_in_the_lobby_only() {
    let mut n = Net::default();
    let alice = n.native("alice");
    let bob = n.irc("bob");
    let carol = n.irc("carol");
    n.line(bob, "JOIN #lobby,#side");
    n.line(carol, "JOIN #side");
    n.frames(alice);
    n.lines(bob);
    n.line(carol, "PRIVMSG #side :elsewhere");
    assert!(n.frames(alice).is_empty());
    assert_eq!(n.lines(bob), [":carol!carol@irc PRIVMSG #side :elsewhere"]);

    n.line(bob, "PART #lobby :later");
    assert_eq!(
        n.frames(alice),
        [ServerFrame::Left {
            name: name("bob"),
            reason: Reason::Quit
        }]
    );
    n.line(bob, "JOIN #lobby");
    n.frame(alice, &ClientFrame::Who);
    n.frames(alice);
    n.line(bob, "NICK robert");
    assert_eq!(
        n.frames(alice),
        [
            ServerFrame::Left {
                name: name("bob"),
                reason: Reason::Quit
            },
            ServerFrame::Joined {
                name: name("robert")
            }
        ],
        "a rename is a departure and a join to native users"
    );
    // The roster a WHO or WELCOME gets (kept between rosters) follows it.
    n.frame(alice, &ClientFrame::Who);
    assert_eq!(
        n.frames(alice),
        [ServerFrame::Users {
            last: true,
            names: vec![name("alice"), name("robert")]
        }]
    );
    let carol_saw = n.lines(carol);
    assert!(
        carol_saw.contains(&":bob!bob@irc NICK robert".to_owned()),
        "{carol_saw:?}"
    );

    n.lines(bob);
    n.line(bob, "QUIT :gone fishing");
    assert_eq!(
        n.frames(alice),
        [ServerFrame::Left {
            name: name("robert"),
            reason: Reason::Quit
        }]
    );
    assert_eq!(n.lines(bob), ["ERROR :Closing link (Quit: gone fishing)"]);
    assert!(n.is_closed(bob));
    assert_eq!(n.lines(carol), [":robert!bob@irc QUIT :Quit: gone fishing"]);

    // A lost connection is DISCONNECTED; a native departure is a QUIT line.
    n.line(carol, "JOIN #lobby");
    n.frames(alice);
    n.server.handle_eof(n.now, carol);
    n.pump();
    assert_eq!(
        n.frames(alice),
        [ServerFrame::Left {
            name: name("carol"),
            reason: Reason::Disconnected
        }]
    );
    let dave = n.irc("dave");
    n.line(dave, "JOIN #lobby");
    n.lines(dave);
    n.frame(alice, &ClientFrame::Bye);
    assert_eq!(n.lines(dave), [":alice!alice@native QUIT :Quit"]);
}

#[test]
fn private_messages_cross_protocols_and_unknown_nicks_are_refused() {
    let mut n = Net::default();
    let alice = n.native("alice");
    let bob = n.irc("bob");
    n.frame(
        alice,
        &ClientFrame::Whisper {
            to: name("BOB"),
            text: Text::new("psst").unwrap(),
        },
    );
    assert_eq!(n.lines(bob), [":alice!alice@native PRIVMSG bob :psst"]);
    n.line(bob, "PRIVMSG Alice :\x1fback\x1f at you");
    assert_eq!(
        n.frames(alice),
        [ServerFrame::Private {
            from: name("bob"),
            text: Text::new("back at you").unwrap()
        }]
    );
    n.line(bob, "NOTICE alice :not for natives");
    assert!(n.frames(alice).is_empty());
    n.line(bob, "PRIVMSG nobody :x");
    assert_eq!(n.numerics(bob), ["401"]);
    n.line(bob, "PRIVMSG");
    n.line(bob, "PRIVMSG alice");
    assert_eq!(n.numerics(bob), ["411", "412"]);
    let carol = n.irc("carol");
    n.line(carol, "AWAY :lunch");
    assert_eq!(n.numerics(carol), ["306"]);
    n.line(bob, "PRIVMSG carol :there?");
    assert_eq!(n.numerics(bob), ["301"]);
    assert_eq!(n.lines(carol), [":bob!bob@irc PRIVMSG carol :there?"]);
}

#[test]
fn channels_have_operators_modes_and_lists() {
    let mut n = Net::default();
    let op = n.irc("op");
    let joe = n.irc("joe");
    n.line(op, "JOIN #rust");
    assert!(
        n.lines(op)
            .iter()
            .any(|l| l.ends_with(" 353 op = #rust @op"))
    );
    n.line(op, "MODE #rust +tk sesame");
    assert_eq!(n.lines(op), [":op!op@irc MODE #rust +tk sesame"]);
    n.line(joe, "JOIN #rust");
    assert_eq!(n.numerics(joe), ["475"]);
    n.line(joe, "JOIN #rust sesame");
    n.lines(joe);
    assert_eq!(n.lines(op), [":joe!joe@irc JOIN #rust"]);
    n.line(joe, "TOPIC #rust :mine");
    assert_eq!(n.numerics(joe), ["482"]);
    n.line(op, "TOPIC #rust :Rust talk");
    assert_eq!(n.lines(joe), [":op!op@irc TOPIC #rust :Rust talk"]);
    n.line(joe, "TOPIC #rust");
    let topic = n.lines(joe);
    assert!(topic[0].ends_with(" 332 joe #rust :Rust talk"), "{topic:?}");
    assert!(topic[1].contains(" 333 joe #rust op!op@irc "), "{topic:?}");
    n.line(op, "MODE #rust +b joe!*@*");
    n.line(op, "MODE #rust b");
    let bans = n.lines(op);
    assert!(
        bans.iter().any(|l| l.ends_with(" 367 op #rust joe!*@*")),
        "{bans:?}"
    );
    assert!(
        bans.iter().any(|l| l.contains(" 368 op #rust ")),
        "{bans:?}"
    );
    n.line(op, "KICK #rust joe :behave");
    assert_eq!(
        n.lines(joe).last().unwrap(),
        ":op!op@irc KICK #rust joe :behave"
    );
    n.line(joe, "JOIN #rust sesame");
    assert_eq!(n.numerics(joe), ["474"]);
    n.line(op, "MODE #rust -b+i joe!*@*");
    n.line(joe, "JOIN #rust sesame");
    assert_eq!(n.numerics(joe), ["473"]);
    n.line(op, "INVITE joe #rust");
    assert_eq!(n.numerics(op).last().map(String::as_str), Some("341"));
    assert_eq!(n.lines(joe), [":op!op@irc INVITE joe #rust"]);
    n.line(joe, "JOIN #rust sesame");
    assert_eq!(n.lines(joe)[0], ":joe!joe@irc JOIN #rust");
    n.line(op, "MODE #rust +o joe");
    n.line(op, "NAMES #rust");
    let names = n.lines(op);
    assert!(
        names
            .iter()
            .any(|l| l.ends_with(" 353 op = #rust :@op @joe")),
        "{names:?}"
    );
    n.line(op, "MODE #rust +z");
    assert_eq!(n.numerics(op), ["472"]);
    n.line(joe, "LIST");
    let list = n.lines(joe);
    assert!(
        list.iter()
            .any(|l| l.ends_with(" 322 joe #rust 2 :Rust talk")),
        "{list:?}"
    );
}

#[test]
fn nobody_runs_the_lobby() {
    let mut n = Net::default();
    n.native("alice");
    let bob = n.irc("bob");
    n.line(bob, "JOIN #lobby");
    n.lines(bob);
    n.line(bob, "TOPIC #lobby :mine");
    n.line(bob, "MODE #lobby +m");
    n.line(bob, "KICK #lobby alice");
    assert_eq!(n.numerics(bob), ["482", "482", "482"]);
    n.line(bob, "NAMES #lobby");
    assert!(
        n.lines(bob)[0].ends_with(":alice bob"),
        "nobody is @ in the lobby"
    );
}

#[test]
fn bad_input_gets_its_numeric_and_the_connection_goes_on() {
    let mut n = Net::default();
    let bob = n.irc("bob");
    let long = format!("PRIVMSG bob :{}", "x".repeat(600));
    n.line(bob, &long);
    n.line(bob, "FROB");
    n.line(bob, "JOIN");
    n.line(bob, "KICK #x");
    n.line(bob, "JOIN nochannel");
    n.line(bob, "USER again 0 * :x");
    n.line(bob, "");
    n.line(bob, "PING :still here");
    let lines = n.lines(bob);
    let codes: Vec<&str> = lines.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    assert_eq!(codes, ["417", "421", "461", "461", "403", "462", "PONG"]);
    assert_eq!(
        lines.last().unwrap(),
        ":chat.local PONG chat.local :still here"
    );
    assert!(!n.is_closed(bob));
}

#[test]
fn irc_connections_get_the_same_timers_in_irc_words() {
    let mut n = Net::new(ServerConfig {
        handshake_timeout: Duration::from_secs(5),
        ping_interval: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(25),
        ..immediate()
    });
    let lurker = n.server.handle_accept_irc(n.now);
    n.line(lurker, "NICK lurker");
    let bob = n.irc("bob");
    n.advance(Duration::from_secs(5));
    assert_eq!(n.lines(lurker), ["ERROR :Closing link (handshake timeout)"]);
    assert!(n.is_closed(lurker));
    n.advance(Duration::from_secs(5));
    assert_eq!(n.lines(bob), ["PING chat.local"]);
    n.line(bob, "PONG chat.local");
    for _ in 0..24 {
        n.advance(Duration::from_secs(1));
    }
    assert_eq!(n.lines(bob), ["PING chat.local", "PING chat.local"]);
    assert!(!n.is_closed(bob));
    n.advance(Duration::from_secs(1));
    assert_eq!(n.lines(bob), ["ERROR :Closing link (idle timeout)"]);
    assert!(n.is_closed(bob));
}

/// The runtime had written part of a line when the reader was dropped, and
/// perhaps held more to write later (`handle_taken`, as a blocked writer
/// thread or a TLS batch does): what it holds and the line begun by then
/// are finished before the ERROR, which starts a line of its own (it was
/// glued to the half line, or eaten by the late report of the held bytes).
/// In the lobby (its feed) and in another channel (own buffer).
#[test]
fn a_slow_irc_consumer_cut_mid_line_gets_the_line_finished_then_its_error() {
    for (channel, held) in [("#lobby", 0), ("#side", 0), ("#lobby", 300), ("#side", 300)] {
        let mut n = Net::new(ServerConfig {
            max_outbound: 4096,
            ..immediate()
        });
        let sender = n.irc("sender");
        let slow = n.irc("slow");
        n.line(sender, &format!("JOIN {channel}"));
        n.line(slow, &format!("JOIN {channel}"));
        n.lines(slow);
        n.stalled.insert(slow);
        n.advance(Duration::from_secs(1));
        let text = "y".repeat(200);
        for _ in 0..3 {
            n.line(sender, &format!("PRIVMSG {channel} :{text}"));
        }
        // The socket took 10 bytes; the runtime holds the next `held`.
        let mut got = n.server.outbound(slow)[..10].to_vec();
        n.server.handle_written(n.now, slow, 10);
        let holding = n.server.outbound(slow)[..held].to_vec();
        n.server.handle_taken(slow, held);
        let mut said = 3;
        while !n.server.is_closing(slow) {
            n.line(sender, &format!("PRIVMSG {channel} :{text}"));
            n.advance(Duration::from_millis(100));
            said += 1;
            assert!(said < 100, "never dropped");
        }
        // What it held is written, and reported, after the drop.
        got.extend_from_slice(&holding);
        n.server.handle_written(n.now, slow, held);
        n.stalled.remove(&slow);
        n.pump();
        got.extend(n.out.remove(&slow).unwrap_or_default());
        let got = String::from_utf8(got).unwrap();
        let line = format!(":sender!sender@irc PRIVMSG {channel} :{text}\r\n");
        let lines = 1 + held / line.len();
        assert_eq!(
            got,
            format!(
                "{}ERROR :Closing link (slow consumer)\r\n",
                line.repeat(lines)
            ),
            "in {channel}, {held} bytes held"
        );
        assert!(n.is_closed(slow));
    }
}

#[test]
fn a_stalled_irc_reader_is_dropped_with_an_error_and_others_go_on() {
    let mut n = Net::new(ServerConfig {
        max_outbound: 4096,
        ..immediate()
    });
    let alice = n.native("alice");
    let slow = n.irc("slow");
    let fast = n.irc("fast");
    n.line(slow, "JOIN #lobby");
    n.line(fast, "JOIN #lobby");
    n.lines(slow);
    n.lines(fast);
    n.frames(alice);
    n.stalled.insert(slow);
    n.advance(Duration::from_secs(1));
    let text = "y".repeat(200);
    let mut said = 0;
    while !n.server.is_closing(slow) {
        assert!(
            n.server.queued(slow) <= 4096 + 512,
            "bounded while it stalls"
        );
        n.say(alice, &text);
        n.advance(Duration::from_millis(100));
        said += 1;
        assert!(said < 100, "never dropped");
    }
    n.stalled.remove(&slow);
    n.pump();
    assert_eq!(
        n.lines(slow),
        ["ERROR :Closing link (slow consumer)"],
        "its backlog went, its ERROR came"
    );
    assert!(n.is_closed(slow));
    assert_eq!(
        n.lines(fast)
            .iter()
            .filter(|l| l.contains("PRIVMSG"))
            .count(),
        said
    );
    let left: Vec<ServerFrame> = n
        .frames(alice)
        .into_iter()
        .filter(|f| !matches!(f, ServerFrame::Message { .. }))
        .collect();
    assert_eq!(
        left,
        [ServerFrame::Left {
            name: name("slow"),
            reason: Reason::SlowConsumer
        }]
    );
}

#[test]
fn an_irc_flood_waits_for_a_reader_that_still_reads_and_loses_nothing() {
    let mut n = Net::new(ServerConfig {
        max_outbound: 2048,
        ..immediate()
    });
    let alice = n.native("alice");
    let bob = n.irc("bob");
    n.line(bob, "JOIN #lobby");
    n.lines(bob);
    n.frames(alice);
    n.stalled.insert(alice);
    let flood: String = (0..100)
        .map(|i| format!("PRIVMSG #lobby :message {i:03}\r\n"))
        .collect();
    n.bytes(bob, flood.as_bytes());
    assert!(!n.server.wants_read(bob), "paused while alice is behind");
    let mut got = Vec::new();
    for _ in 0..200 {
        // Alice reads a little at a time, never stalling for the grace.
        n.stalled.remove(&alice);
        n.pump();
        n.stalled.insert(alice);
        got.extend(n.frames(alice));
        n.advance(Duration::from_millis(100));
        if n.server.wants_read(bob) && got.len() == 100 {
            break;
        }
    }
    let texts: Vec<String> = got
        .iter()
        .map(|f| match f {
            ServerFrame::Message { text, .. } => text.as_str().to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    let wanted: Vec<String> = (0..100).map(|i| format!("message {i:03}")).collect();
    assert_eq!(texts, wanted);
    assert!(!n.is_closed(alice));
}

#[test]
fn operators_kill_on_either_protocol_and_shutdown_says_so_in_irc() {
    let mut config = immediate();
    config.irc.opers = vec![("root".into(), "hunter2".into())];
    let mut n = Net::new(config);
    let alice = n.native("alice");
    let bob = n.irc("bob");
    let carol = n.irc("carol");
    n.line(carol, "JOIN #lobby");
    n.lines(carol);
    n.frames(alice);
    n.line(bob, "KILL alice :spam");
    assert_eq!(n.numerics(bob), ["481"]);
    n.line(bob, "OPER root wrong");
    assert_eq!(n.numerics(bob), ["464"]);
    n.line(bob, "OPER root hunter2");
    assert_eq!(
        n.lines(bob),
        [
            ":chat.local 381 bob :You are now an IRC operator",
            ":bob MODE bob +o"
        ]
    );
    n.line(bob, "KILL alice :spam");
    let frames = n.frames(alice);
    assert!(
        matches!(
            frames.as_slice(),
            [ServerFrame::Bye {
                reason: Reason::Disconnected,
                ..
            }]
        ),
        "{frames:?}"
    );
    assert_eq!(
        n.lines(carol),
        [":alice!alice@native QUIT :Killed by bob (spam)"]
    );
    n.line(bob, "KILL carol :enough");
    assert_eq!(
        n.lines(carol),
        [
            ":bob!bob@irc KILL carol :enough",
            "ERROR :Closing link (Killed by bob (enough))"
        ],
        "Modern IRC: the victim gets the KILL, then its ERROR"
    );
    n.line(bob, "WHOWAS carol");
    let whowas = n.numerics(bob);
    assert_eq!(whowas, ["314", "369"]);

    n.server.shutdown(n.now);
    n.pump();
    assert_eq!(n.lines(bob), ["ERROR :Server shutting down"]);
    assert!(n.server.is_shut_down());
}

#[test]
fn queries_answer_for_both_protocols() {
    let mut n = Net::default();
    n.native("alice");
    let bob = n.irc("bob");
    n.line(bob, "ISON alice nobody BOB");
    assert_eq!(n.lines(bob), [":chat.local 303 bob :alice bob"]);
    n.line(bob, "USERHOST alice bob");
    assert_eq!(
        n.lines(bob),
        [":chat.local 302 bob :alice=+alice@native bob=+bob@irc"]
    );
    n.line(bob, "WHOIS alice");
    assert_eq!(n.numerics(bob), ["311", "319", "312", "318"]);
    n.line(bob, "WHO #lobby");
    let who = n.lines(bob);
    assert!(
        who[0].ends_with(" 352 bob #lobby alice native chat.local alice H :0 alice"),
        "{who:?}"
    );
    n.line(bob, "LUSERS");
    n.line(bob, "MOTD");
    n.line(bob, "VERSION");
    n.line(bob, "TIME");
    n.line(bob, "INFO");
    n.line(bob, "LINKS");
    n.line(bob, "HELP");
    n.line(bob, "MODE bob");
    n.line(bob, "MODE bob +i");
    let codes = n.numerics(bob);
    for code in [
        "251", "422", "351", "005", "391", "371", "374", "364", "365", "704", "706", "221", "MODE",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code} missing: {codes:?}");
    }
}

#[test]
fn lobby_messages_are_shared_not_copied_and_never_echoed_to_their_irc_sender() {
    let mut n = Net::default();
    let alice = n.native("alice");
    let irc: Vec<ConnId> = (0..50).map(|i| n.irc(&format!("u{i}"))).collect();
    for &c in &irc {
        n.line(c, "JOIN #lobby");
    }
    for &c in &irc {
        n.lines(c);
    }
    n.frames(alice);
    n.stalled.extend(irc.iter().copied());
    n.line(irc[0], "PRIVMSG #lobby :one line for fifty readers");
    let line = ":u0!u0@irc PRIVMSG #lobby :one line for fifty readers\r\n";
    // Queued for 49 readers, held once.
    assert_eq!(n.server.queued(irc[1]), line.len());
    assert_eq!(n.server.queued(irc[0]), 0, "no echo");
    assert!(
        n.server.output_memory() < 2 * line.len(),
        "{}",
        n.server.output_memory()
    );
    n.stalled.clear();
    n.pump();
    assert!(n.lines(irc[0]).is_empty());
    for &c in &irc[1..] {
        assert_eq!(n.lines(c), [line.trim_end()]);
    }
}

#[test]
fn channel_messages_are_shared_not_copied_and_keep_their_place_among_replies() {
    let mut n = Net::default();
    let irc: Vec<ConnId> = (0..50).map(|i| n.irc(&format!("u{i}"))).collect();
    for &c in &irc {
        n.line(c, "JOIN #side");
    }
    for &c in &irc {
        n.lines(c);
    }
    n.stalled.extend(irc.iter().copied());
    let line = |i: usize| format!(":u0!u0@irc PRIVMSG #side :line {i} for forty-nine readers");
    for i in 0..3 {
        n.line(
            irc[0],
            &format!("PRIVMSG #side :line {i} for forty-nine readers"),
        );
        // A reply of its own between the shared lines, for one reader.
        n.line(irc[1], "PING :between");
    }
    let shared = 3 * (line(0).len() + 2);
    assert_eq!(n.server.queued(irc[2]), shared);
    assert_eq!(n.server.queued(irc[0]), 0, "no echo");
    assert!(n.server.queued(irc[1]) > shared, "its PONGs too");
    // 49 queues hold the three lines; memory counts them about once.
    let memory = n.server.output_memory();
    assert!(
        memory < 2 * shared,
        "{memory} bytes held for {shared} shared"
    );
    n.stalled.clear();
    n.pump();
    assert!(n.lines(irc[0]).is_empty());
    let pong = n.lines(irc[1]);
    assert_eq!(pong.len(), 6, "{pong:?}");
    for i in 0..3 {
        assert_eq!(pong[2 * i], line(i));
        assert!(
            pong[2 * i + 1].ends_with("PONG chat.local :between"),
            "{pong:?}"
        );
    }
    for &c in &irc[2..] {
        assert_eq!(n.lines(c), (0..3).map(line).collect::<Vec<_>>());
    }
    assert_eq!(n.server.output_memory(), 0, "all of it let go");
}

#[test]
fn an_irc_user_that_leaves_the_lobby_unread_cannot_pin_it() {
    let mut n = Net::new(ServerConfig {
        max_outbound: 4096,
        ..immediate()
    });
    let alice = n.native("alice");
    let gone = n.irc("gone");
    let stays = n.irc("stays");
    n.line(gone, "JOIN #lobby");
    n.line(stays, "JOIN #lobby");
    n.lines(gone);
    n.lines(stays);
    n.stalled.insert(gone);
    n.say(alice, "before the part");
    n.line(gone, "PART #lobby");
    assert!(
        n.server.queued(gone) > 0,
        "its backlog and its PART wait for it"
    );
    for _ in 0..60 {
        n.say(alice, &"z".repeat(200));
        n.advance(Duration::from_millis(100));
        assert!(
            n.server.output_memory() <= 3 * 4096,
            "{}",
            n.server.output_memory()
        );
    }
    // Its backlog left the feed with it: the lobby ran on without it, and
    // it was not dropped for that.
    assert!(!n.is_closed(gone));
    n.stalled.clear();
    n.pump();
    let backlog = n.lines(gone);
    assert_eq!(said(&backlog), ["#lobby before the part"], "{backlog:?}");
    assert!(
        backlog.last().unwrap().ends_with("PART #lobby"),
        "{backlog:?}"
    );
    assert_eq!(
        n.lines(stays)
            .iter()
            .filter(|l| l.contains("PRIVMSG"))
            .count(),
        61
    );
}

#[test]
fn an_irc_sender_that_never_reads_is_paced_by_its_own_lines() {
    let mut n = Net::new(ServerConfig {
        max_outbound: 64 * 1024,
        ..immediate()
    });
    let alice = n.native("alice");
    let flooder = n.irc("flooder");
    // It never reads again: its JOIN and the names stay unread, and every
    // line it sends after them is held in the feed for it.
    n.stalled.insert(flooder);
    n.line(flooder, "JOIN #lobby");
    n.frames(alice);
    let line = format!("PRIVMSG #lobby :{}\r\n", "f".repeat(400));
    for _ in 0..5_000 {
        n.bytes(flooder, line.as_bytes());
        if !n.server.wants_read(flooder) {
            break;
        }
    }
    assert!(
        !n.server.wants_read(flooder),
        "paused: the feed holds its own lines for it"
    );
    assert!(
        n.server.output_memory() <= 2 * 64 * 1024,
        "{}",
        n.server.output_memory()
    );
    let seen = n.frames(alice).len();
    assert!(seen > 0 && seen < 5_000, "{seen}");
}

#[test]
fn review_defects_stay_fixed() {
    // A JOIN/PART cycle leaves no trail in the list of readers with a stop.
    let mut n = Net::new(ServerConfig {
        max_outbound: 8192,
        ..immediate()
    });
    let alice = n.native("alice");
    let cycler = n.irc("cycler");
    n.stalled.insert(cycler);
    for _ in 0..300 {
        n.line(cycler, "JOIN #lobby");
        n.line(cycler, "PART #lobby");
    }
    assert!(
        n.server.closing_readers.len() <= 1,
        "{}",
        n.server.closing_readers.len()
    );
    n.stalled.remove(&cycler);
    n.pump();
    n.lines(cycler);
    n.frames(alice);

    // A long QUIT reason is cut to fit, not dropped: the quitter gets its
    // ERROR and its peers the QUIT.
    let peer = n.irc("peer");
    let quitter = n.irc("quitter");
    n.line(peer, "JOIN #q");
    n.line(quitter, "JOIN #q");
    n.lines(peer);
    n.lines(quitter);
    n.line(quitter, &format!("QUIT :{}", "r".repeat(490)));
    let error = n.lines(quitter);
    assert!(
        error[0].starts_with("ERROR :Closing link (Quit: rrr"),
        "{error:?}"
    );
    let quit = n.lines(peer);
    assert!(
        quit[0].starts_with(":quitter!quitter@irc QUIT :Quit: rrr"),
        "{quit:?}"
    );
    assert!(quit[0].len() + 2 <= crate::irc::MAX_LINE);

    // NAMES serves one channel per line; CAP after registration answers.
    n.line(peer, &format!("NAMES {}", ["#lobby"; 60].join(",")));
    assert_eq!(n.numerics(peer), ["353", "366"]);
    n.line(peer, "CAP REQ :multi-prefix");
    assert_eq!(n.lines(peer), [":chat.local CAP peer NAK :multi-prefix"]);
    n.line(peer, "CAP FOO");
    n.line(peer, "CAP");
    assert_eq!(n.numerics(peer), ["410", "461"]);

    // The lobby keeps its spelling whoever creates it.
    let mut m = Net::default();
    let first = m.irc("first");
    m.line(first, "JOIN #LOBBY");
    assert_eq!(m.lines(first)[0], ":first!first@irc JOIN #lobby");
}

#[test]
fn a_multi_target_message_that_waits_is_not_sent_twice() {
    let mut n = Net::new(ServerConfig {
        max_outbound: 2048,
        ..immediate()
    });
    let a = n.irc("a");
    let b = n.irc("b");
    let sender = n.irc("sender");
    // b is not reading for the moment: its queue is 30 bytes short of
    // half the limit, so the line to a goes and the one to b must wait.
    n.stalled.insert(b);
    for _ in 0..7 {
        n.line(sender, &format!("PRIVMSG b :{}", "x".repeat(100)));
    }
    n.line(sender, &format!("PRIVMSG b :{}", "y".repeat(30)));
    // `:sender!sender@irc PRIVMSG b :hello once` is 43 bytes with CRLF.
    assert!(
        (1024 - 43 + 1..=1024).contains(&n.server.queued(b)),
        "{}",
        n.server.queued(b)
    );
    assert!(n.server.wants_read(sender));
    n.line(sender, "PRIVMSG a,b :hello once");
    assert!(
        !n.server.wants_read(sender),
        "waiting for b at its second target"
    );
    n.stalled.remove(&b);
    n.pump();
    let to_a: Vec<String> = n
        .lines(a)
        .into_iter()
        .filter(|l| l.contains("hello once"))
        .collect();
    assert_eq!(to_a.len(), 1, "{to_a:?}");
    assert_eq!(
        n.lines(b)
            .iter()
            .filter(|l| l.contains("hello once"))
            .count(),
        1
    );
}

/// `JOIN 0` that waits for a reader part-way runs again over the channels
/// it is still in: none is skipped (found by review: the resumed line
/// skipped as many channels as it had already left).
#[test]
fn a_join_zero_that_waits_parts_every_channel() {
    let mut n = Net::new(ServerConfig {
        max_outbound: 2048,
        ..immediate()
    });
    let u = n.irc("u");
    let b = n.irc("b");
    let sender = n.irc("sender");
    for channel in ["#c1", "#c2", "#c3", "#c4"] {
        n.line(u, &format!("JOIN {channel}"));
    }
    n.line(b, "JOIN #c4");
    n.lines(u);
    n.lines(b);
    // b is not reading for the moment, its queue just short of half the
    // limit: the PART of #c4 must wait for it.
    n.stalled.insert(b);
    for _ in 0..7 {
        n.line(sender, &format!("PRIVMSG b :{}", "x".repeat(100)));
    }
    n.line(sender, &format!("PRIVMSG b :{}", "y".repeat(50)));
    n.line(u, "JOIN 0");
    assert!(!n.server.wants_read(u), "waiting for b");
    n.stalled.remove(&b);
    n.pump();
    let parts: Vec<String> = n
        .lines(u)
        .into_iter()
        .filter(|l| l.contains(" PART "))
        .collect();
    assert_eq!(parts.len(), 4, "{parts:?}");
    n.line(u, "WHOIS u");
    assert!(
        !n.numerics(u).contains(&"319".to_owned()),
        "in no channel any more"
    );
}

#[test]
fn a_rename_flood_waits_for_a_reader_that_still_reads() {
    let mut n = Net::new(ServerConfig {
        max_outbound: 4096,
        ..immediate()
    });
    let alice = n.native("alice");
    let renamer = n.irc("renamer");
    n.line(renamer, "JOIN #lobby");
    n.lines(renamer);
    n.frames(alice);
    n.stalled.insert(alice);
    let flood: String = (0..400).map(|i| format!("NICK bob{i}\r\n")).collect();
    n.bytes(renamer, flood.as_bytes());
    for _ in 0..400 {
        n.stalled.remove(&alice);
        n.pump();
        n.stalled.insert(alice);
        n.advance(Duration::from_millis(100));
        if n.server.wants_read(renamer) {
            break;
        }
    }
    assert!(!n.is_closed(alice), "a reader that reads is never dropped");
    assert_eq!(
        n.server.name_of(renamer).map(|m| m.as_str().to_owned()),
        Some("bob399".into())
    );
}

#[test]
fn a_closing_slow_irc_consumer_whose_socket_fails_is_closed() {
    let mut n = Net::new(ServerConfig {
        max_outbound: 1024,
        ..immediate()
    });
    let alice = n.native("alice");
    let slow = n.irc("slow");
    n.line(slow, "JOIN #lobby");
    n.lines(slow);
    n.stalled.insert(slow);
    n.advance(Duration::from_secs(1));
    while !n.server.is_closing(slow) {
        n.say(alice, &"s".repeat(300));
        n.advance(Duration::from_millis(50));
    }
    n.server.handle_io_error(n.now, slow);
    n.pump();
    assert!(n.is_closed(slow));
}

/// A native text longer than an IRC line reaches IRC users whole: split
/// into lines of at most 512 bytes that add up to every byte of it (one
/// byte of each full line was cut off, counted out of a line one short).
#[test]
fn long_native_texts_reach_irc_users_split_but_whole() {
    let mut n = Net::default();
    let alice = n.native("alice");
    let bob = n.irc("bob");
    n.line(bob, "JOIN #lobby");
    n.lines(bob);
    let prefix = ":alice!alice@native PRIVMSG #lobby :";
    for len in [473, 474, 475, 947, 948, 949, 1000, crate::MAX_TEXT] {
        for unit in ["z", "é", "中", "🦀"] {
            let text: String = unit.repeat(len / unit.len());
            n.say(alice, &text);
            let lines = n.lines(bob);
            let mut got = String::new();
            for line in &lines {
                assert!(line.len() + 2 <= 512, "{} bytes", line.len() + 2);
                got.push_str(line.strip_prefix(prefix).unwrap());
            }
            assert_eq!(got, text, "{len} bytes of {unit}");
        }
    }
}

/// The lines of `lines` that are messages, as `channel text`.
fn said(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.split_once(" PRIVMSG "))
        .map(|(_, rest)| rest.replacen(" :", " ", 1))
        .collect()
}

#[test]
fn a_member_reads_one_channel_from_its_feed_and_the_others_by_copy_each_line_once_in_order() {
    let mut n = Net::default();
    let hub = n.irc("hub");
    let a = n.irc("a");
    let b = n.irc("b");
    let alice = n.native("alice");
    // hub's stream reads #one's feed (its first channel); #two and the
    // lobby come by copy.
    for line in ["JOIN #one", "JOIN #two", "JOIN #lobby"] {
        n.line(hub, line);
    }
    n.line(a, "JOIN #one");
    n.line(b, "JOIN #two");
    for c in [hub, a, b] {
        n.lines(c);
    }
    n.frames(alice);
    assert_eq!(
        n.server.conn(hub).and_then(|c| c.stream.feed_id()),
        Some(FeedId::Channel(0))
    );
    n.stalled.insert(hub);
    n.line(a, "PRIVMSG #one :1");
    n.line(b, "PRIVMSG #two :2");
    n.say(alice, "3");
    n.line(a, "PRIVMSG hub :4");
    n.line(a, "PRIVMSG #one :5");
    n.line(b, "PRIVMSG #two :6");
    n.stalled.clear();
    n.pump();
    assert_eq!(
        said(&n.lines(hub)),
        ["#one 1", "#two 2", "#lobby 3", "hub 4", "#one 5", "#two 6"]
    );
    // Its own lines are not echoed, whichever way it reads.
    n.line(hub, "PRIVMSG #one :7");
    n.line(hub, "PRIVMSG #two :8");
    assert!(n.lines(hub).is_empty());
    assert_eq!(said(&n.lines(a)), ["#one 7"]);
    assert_eq!(said(&n.lines(b)), ["#two 8"]);
}

#[test]
fn a_member_that_leaves_a_channel_it_reads_gets_its_part_then_nothing_and_reads_the_next() {
    let mut n = Net::default();
    let hub = n.irc("hub");
    let a = n.irc("a");
    n.line(hub, "JOIN #one");
    n.line(a, "JOIN #one");
    n.line(a, "JOIN #two");
    n.lines(hub);
    n.lines(a);
    // Unread #one lines, then the PART: they and the PART still arrive.
    n.stalled.insert(hub);
    n.line(a, "PRIVMSG #one :before");
    n.line(hub, "PART #one");
    n.line(a, "PRIVMSG #one :after");
    // It left #one's feed at its PART, its backlog kept as its own queue:
    // #two, joined while that backlog is unread, comes after it.
    n.line(hub, "JOIN #two");
    n.line(a, "PRIVMSG #two :two");
    n.stalled.clear();
    n.pump();
    let lines = n.lines(hub);
    assert_eq!(said(&lines), ["#one before", "#two two"], "{lines:?}");
    assert!(lines.iter().any(|l| l.ends_with("PART #one")), "{lines:?}");
    // Out of every channel it reads no feed; the next channel it joins it
    // reads from that channel's feed, and the broadcast names it.
    n.line(hub, "PART #two");
    n.lines(hub);
    assert_eq!(n.server.conn(hub).and_then(|c| c.stream.feed_id()), None);
    n.line(hub, "JOIN #three");
    n.line(a, "JOIN #three");
    n.lines(hub);
    n.line(a, "PRIVMSG #three :three");
    n.line(a, "PRIVMSG #one :one");
    assert_eq!(said(&n.lines(hub)), ["#three three"]);
    assert!(matches!(
        n.server.conn(hub).and_then(|c| c.stream.feed_id()),
        Some(FeedId::Channel(_))
    ));
}

#[test]
fn a_kicked_member_reading_the_channel_feed_gets_its_kick_then_nothing() {
    let mut n = Net::default();
    let op = n.irc("op");
    let victim = n.irc("victim");
    n.line(op, "JOIN #room");
    n.line(victim, "JOIN #room");
    n.lines(op);
    n.lines(victim);
    n.line(op, "KICK #room victim :out");
    n.line(op, "PRIVMSG #room :private now");
    let lines = n.lines(victim);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].ends_with("KICK #room victim :out"), "{lines:?}");
    assert_eq!(n.server.conn(victim).and_then(|c| c.stream.feed_id()), None);
}

#[test]
fn a_gone_channels_feed_is_reused_only_after_its_last_reader_left_it() {
    let mut n = Net::default();
    let slow = n.irc("slow");
    let a = n.irc("a");
    let b = n.irc("b");
    n.line(slow, "JOIN #old");
    n.line(a, "JOIN #old");
    n.lines(slow);
    n.lines(a);
    n.stalled.insert(slow);
    n.line(a, "PRIVMSG #old :unread");
    // Quitting, it still reads #old's feed up to where it left.
    n.line(slow, "QUIT :bye");
    n.line(a, "PART #old");
    // #old is gone, but `slow` still reads its feed: a new channel gets a
    // slot of its own.
    n.line(a, "JOIN #new");
    assert_eq!(n.server.feeds.channel_slots(), 2);
    n.line(a, "PART #new");
    n.stalled.clear();
    n.pump();
    let lines = n.lines(slow);
    assert_eq!(said(&lines), ["#old unread"]);
    assert!(lines.last().unwrap().starts_with("ERROR"), "{lines:?}");
    assert!(n.is_closed(slow));
    // Both slots are free now: new channels reuse them.
    n.line(a, "JOIN #x");
    n.line(b, "JOIN #y");
    assert_eq!(n.server.feeds.channel_slots(), 2);
    n.line(a, "JOIN #y");
    n.lines(b);
    n.line(a, "PRIVMSG #y :fresh");
    assert_eq!(said(&n.lines(b)), ["#y fresh"]);
    assert_eq!(n.server.output_memory(), 0);
}

/// `a`, `slow` and `b` in `#busy` (a 4 KiB limit), `slow` not reading.
fn busy_channel_with_a_stalled_member() -> (Net, ConnId, ConnId, ConnId) {
    let mut n = Net::new(ServerConfig {
        max_outbound: 4096,
        ..immediate()
    });
    let a = n.irc("a");
    let slow = n.irc("slow");
    let b = n.irc("b");
    for c in [a, slow, b] {
        n.line(c, "JOIN #busy");
    }
    for c in [a, slow, b] {
        n.lines(c);
    }
    n.stalled.insert(slow);
    (n, a, slow, b)
}

/// Found by review: a member that left a busy channel with lines unread,
/// and reads on slowly, was dropped once the channel ran a limit ahead of
/// it (the feed kept its backlog and bounded it like a closing reader's).
#[test]
fn a_member_that_left_a_busy_channel_and_reads_on_is_not_dropped() {
    for leave in ["PART #busy", "KICK"] {
        let (mut n, a, slow, b) = busy_channel_with_a_stalled_member();
        for i in 0..10 {
            n.line(
                a,
                &format!("PRIVMSG #busy :backlog {i} {}", "x".repeat(100)),
            );
        }
        match leave {
            "KICK" => n.line(a, "KICK #busy slow :out"),
            part => n.line(slow, part),
        }
        for i in 0..60 {
            n.line(a, &format!("PRIVMSG #busy :after {i} {}", "y".repeat(100)));
            // It reads 20 bytes a line: slower than the channel, never stalled.
            let chunk: Vec<u8> = n.server.outbound(slow).iter().take(20).copied().collect();
            if !chunk.is_empty() {
                n.out.entry(slow).or_default().extend_from_slice(&chunk);
                n.server.handle_written(n.now, slow, chunk.len());
            }
            n.pump();
        }
        n.stalled.clear();
        n.pump();
        let lines = n.lines(slow);
        assert!(!n.is_closed(slow), "{leave}: dropped: {:?}", lines.last());
        assert_eq!(said(&lines).len(), 10, "{leave}: {lines:?}");
        let last = lines.last().unwrap();
        assert!(
            last.ends_with("PART #busy") || last.ends_with("KICK #busy slow :out"),
            "{leave}: {lines:?}"
        );
        assert_eq!(said(&n.lines(b)).len(), 70);
    }
}

/// Lines the command table never reaches still get their numeric: a
/// command that is not letters (421, or 451 before registration), a list of
/// targets that names none (411 or 461), ISON without nicks (461), and an
/// ISON answer that would not fit a line (whole nicks, over two lines).
#[test]
fn odd_commands_empty_target_lists_and_long_ison_answers_get_their_numerics() {
    let mut n = Net::default();
    let early = n.server.handle_accept_irc(n.now);
    n.line(early, "CAP_LS");
    assert_eq!(
        n.lines(early),
        [":chat.local 451 * :You have not registered"]
    );
    let bob = n.irc("bob");
    for (sent, reply) in [
        ("FOO_", ":chat.local 421 bob FOO_ :Unknown command"),
        ("P\x01NG x", ":chat.local 421 bob P\x01NG :Unknown command"),
        ("PING\t:x", ":chat.local 421 bob PING\t:x :Unknown command"),
        (
            "PRIVMSG , :hi",
            ":chat.local 411 bob :No recipient given (PRIVMSG)",
        ),
        ("JOIN ,", ":chat.local 461 bob JOIN :Not enough parameters"),
        ("PART ,,", ":chat.local 461 bob PART :Not enough parameters"),
        (
            "KICK , ,",
            ":chat.local 461 bob KICK :Not enough parameters",
        ),
        (
            "KICK #lobby ,",
            ":chat.local 461 bob KICK :Not enough parameters",
        ),
        ("ISON", ":chat.local 461 bob ISON :Not enough parameters"),
        (
            "WHOIS far.away bob",
            ":chat.local 402 bob far.away :No such server",
        ),
    ] {
        n.line(bob, sent);
        assert_eq!(n.lines(bob), [reply], "{sent:?}");
    }
    for asked in ["WHOIS chat.local bob", "WHOIS bob bob", "WHOIS *.local bob"] {
        n.line(bob, asked);
        assert_eq!(n.numerics(bob), ["311", "312", "318"], "{asked}");
    }
    let nicks: Vec<String> = (0..14)
        .map(|i| format!("O{i:02}{}", "o".repeat(29)))
        .collect();
    for nick in &nicks {
        n.irc(nick);
    }
    // Asked by a long nick, the answer needs two lines: every nick online
    // is named, whole, in order.
    let asker = n.irc(&"A".repeat(32));
    n.line(asker, &format!("ISON {}", nicks.join(" ")));
    let reply = n.lines(asker);
    assert_eq!(reply.len(), 2, "{reply:?}");
    let mut online = Vec::new();
    for line in &reply {
        assert!(line.len() + 2 <= 512, "{}", line.len());
        assert!(line.contains(" 303 "), "{line}");
        // `:server 303 asker :names`, the colon only where needed.
        let names = line.splitn(4, ' ').nth(3).unwrap();
        online.extend(names.trim_start_matches(':').split(' '));
    }
    assert_eq!(online, nicks, "whole nicks, in order, none left out");
}

/// A target named twice in one PRIVMSG (in any case) gets it once: a
/// 512-byte line cannot make a hundred copies for each member.
#[test]
fn a_target_named_twice_gets_the_message_once() {
    let mut n = Net::default();
    let (alice, bob) = n.irc_pair_in("alice", "bob", "#c");
    n.line(alice, "PRIVMSG bob,#c,BOB,#C,bob :hi");
    assert_eq!(
        n.lines(bob),
        [
            ":alice!alice@irc PRIVMSG bob :hi",
            ":alice!alice@irc PRIVMSG #c :hi"
        ]
    );
}

/// NUL or a lone CR inside a line cannot be relayed as is: like invalid
/// UTF-8 it becomes U+FFFD, and the message goes (it was dropped without a
/// word).
#[test]
fn nul_and_lone_cr_in_a_line_are_relayed_as_replacement_characters() {
    let mut n = Net::default();
    let (alice, bob) = n.irc_pair_in("alice", "bob", "#c");
    n.bytes(alice, b"PRIVMSG #c :a\0b\rc\r\n");
    assert_eq!(
        n.lines(bob),
        [":alice!alice@irc PRIVMSG #c :a\u{FFFD}b\u{FFFD}c"]
    );
    n.bytes(alice, b"PING :x\ry\n");
    assert_eq!(n.lines(alice), [":chat.local PONG chat.local :x\u{FFFD}y"]);
}

/// LIST with names answers for those channels (a secret one only to its
/// members); without, every channel the asker may see, the most populated
/// when there are more than a reply holds, and a notice says so.
#[test]
fn list_answers_for_the_channels_named_and_says_when_it_leaves_some_out() {
    let mut n = Net::default();
    let asker = n.irc("asker");
    let op = n.irc("op");
    for channel in ["#a", "#b", "#s"] {
        n.line(op, &format!("JOIN {channel}"));
    }
    n.line(op, "MODE #s +s");
    n.lines(op);
    n.line(asker, "LIST #b,#nowhere,#s,#a,#A");
    let rows: Vec<String> = n
        .lines(asker)
        .iter()
        .filter(|l| l.contains(" 322 "))
        .cloned()
        .collect();
    assert_eq!(
        rows,
        [
            ":chat.local 322 asker #a 1 :",
            ":chat.local 322 asker #b 1 :"
        ]
    );
    // More channels than a reply lists: 20 members in each of five, and
    // 300 more of one member each.
    for i in 0..20 {
        let member = n.irc(&format!("c{i}"));
        for big in 0..5 {
            n.line(member, &format!("JOIN #big{big}"));
        }
        for own in 0..15 {
            n.line(member, &format!("JOIN #own{i}-{own}"));
        }
        n.lines(member);
    }
    n.line(asker, "LIST");
    let reply = n.lines(asker);
    let rows: Vec<&String> = reply.iter().filter(|l| l.contains(" 322 ")).collect();
    assert_eq!(rows.len(), 200, "{}", reply.len());
    for big in 0..5 {
        let row = format!(":chat.local 322 asker #big{big} 20 :");
        assert!(reply.contains(&row), "{row}");
    }
    assert!(!reply.iter().any(|l| l.contains("#s ")), "secret");
    let notice = &reply[reply.len() - 2];
    assert!(
        notice.starts_with(":chat.local NOTICE asker :LIST shows the 200 largest of 307 channels"),
        "{notice}"
    );
}

/// Each change of a MODE line stands on its own (Modern IRC): one refused
/// with 696, 441 or 478 does not cancel the others, which are announced.
#[test]
fn a_refused_mode_change_does_not_cancel_the_rest_of_the_line() {
    let mut n = Net::default();
    let (op, other) = n.irc_pair_in("op", "other", "#m");
    n.line(op, "MODE #m +tk+o a,b nobody-here");
    let reply = n.lines(op);
    assert_eq!(
        reply,
        [
            ":chat.local 401 op nobody-here :No such nick/channel",
            ":chat.local 696 op #m k * :Invalid mode parameter",
            ":op!op@irc MODE #m +t",
        ],
        "{reply:?}"
    );
    assert_eq!(n.lines(other), [":op!op@irc MODE #m +t"]);
    n.line(other, "PART #m");
    n.lines(other);
    n.lines(op);
    n.line(op, "MODE #m +mv other");
    assert_eq!(
        n.lines(op),
        [
            ":chat.local 441 op other #m :They aren't on that channel",
            ":op!op@irc MODE #m +m",
        ]
    );
    n.line(op, "MODE #m +l-m lots");
    assert_eq!(
        n.lines(op),
        [
            ":chat.local 696 op #m l lots :Invalid mode parameter",
            ":op!op@irc MODE #m -m",
        ]
    );
    for i in 0..crate::channel::MAX_LIST {
        n.line(op, &format!("MODE #m +b m{i}!*@*"));
    }
    n.lines(op);
    n.line(op, "MODE #m +b-b z!*@* m0!*@*");
    assert_eq!(
        n.lines(op),
        [
            ":chat.local 478 op #m b :Channel list is full",
            ":op!op@irc MODE #m -b m0!*@*",
        ]
    );
}

/// Details the irctest conformance suite checks (found by running it; see
/// docs/TESTING.md), each as the Modern IRC document words it.
#[test]
fn numerics_follow_modern_irc_where_irctest_looks() {
    let mut n = Net::default();
    let op = n.irc("op");
    let other = n.irc("other");
    n.line(op, "JOIN #c");
    n.lines(op);
    // 696 <client> <target> <mode char> <parameter> :<description>; a key
    // is never echoed.
    n.line(op, "MODE #c +k :with space");
    let reply = n.lines(op);
    assert_eq!(reply.len(), 1, "{reply:?}");
    assert!(
        reply[0].starts_with(":chat.local 696 op #c k * :"),
        "{reply:?}"
    );
    n.line(op, &format!("MODE #c +b {}", "m".repeat(150)));
    let reply = n.lines(op);
    assert!(
        reply[0].starts_with(&format!(":chat.local 696 op #c b {} :", "m".repeat(64))),
        "{reply:?}"
    );
    // MODE #c: 324, then 329 RPL_CREATIONTIME.
    n.line(op, "MODE #c");
    let codes = n.numerics(op);
    assert_eq!(codes, ["324", "329"]);
    // LINKS: 364 <client> <mask> <server> :<hopcount> <info>.
    n.line(op, "LINKS");
    let reply = n.lines(op);
    assert!(
        reply[0].starts_with(":chat.local 364 op chat.local chat.local :0 "),
        "{reply:?}"
    );
    // LUSERS ends with 265 and 266, current and highest counts.
    n.line(other, "QUIT");
    n.line(op, "LUSERS");
    let reply = n.lines(op);
    let local = reply.iter().find(|l| l.contains(" 265 ")).unwrap();
    assert!(local.contains(" 265 op 1 2 :"), "{reply:?}");
    assert!(reply.last().unwrap().contains(" 266 op 1 2 :"), "{reply:?}");
    // A server query naming another server: 402.
    n.line(op, "TIME other.example");
    assert_eq!(n.numerics(op), ["402"]);
    n.line(op, "TIME chat.local");
    assert_eq!(n.numerics(op), ["391"]);
}

#[test]
fn an_empty_user_or_real_name_is_a_missing_one() {
    let mut n = Net::default();
    for user in ["USER u 0 * :", "USER :  ", "USER  0 * :Real"] {
        let c = n.server.handle_accept_irc(n.now);
        n.line(c, "NICK someone");
        n.line(c, user);
        let codes = n.numerics(c);
        assert_eq!(codes, ["461"], "{user}");
    }
}

#[test]
fn whowas_takes_a_count_and_who_masks_see_invisible_users_in_shared_channels() {
    let mut n = Net::default();
    let asker = n.irc("asker");
    for round in 0..3 {
        let gone = n.irc("gone");
        n.line(gone, &format!("NICK gone{round}"));
        n.line(gone, "NICK gone");
        n.line(gone, "QUIT");
    }
    // A rename leaves the old nick to WHOWAS too (RFC 2812): each round
    // gives `gone` twice and `gone<round>` once.
    let entries = |n: &mut Net, asked: &str| {
        n.line(asker, asked);
        let codes = n.numerics(asker);
        assert_eq!(codes.last().map(String::as_str), Some("369"), "{asked}");
        codes.iter().filter(|c| *c == "314").count()
    };
    assert_eq!(entries(&mut n, "WHOWAS gone"), 6);
    assert_eq!(entries(&mut n, "WHOWAS gone 2"), 2);
    assert_eq!(entries(&mut n, "WHOWAS gone -1"), 6);
    assert_eq!(entries(&mut n, "WHOWAS gone1"), 1);
    // A change of case leaves no nick behind.
    let casey = n.irc("casey");
    n.line(casey, "NICK Casey");
    assert_eq!(entries(&mut n, "WHOWAS casey"), 0);
    let evan = n.irc("evan");
    n.line(evan, "MODE evan +i");
    n.lines(evan);
    n.line(asker, "WHO eva*");
    assert_eq!(n.numerics(asker), ["315"], "hidden from a mask");
    n.line(asker, "WHO evan");
    assert_eq!(n.numerics(asker), ["352", "315"], "not from its nick");
    n.line(evan, "JOIN #t");
    n.line(asker, "JOIN #t");
    n.lines(asker);
    n.line(asker, "WHO eva*");
    assert_eq!(n.numerics(asker), ["352", "315"], "nor from a channel mate");
}

#[test]
fn a_relayed_irc_message_too_long_for_a_line_is_cut_not_split() {
    let mut n = Net::default();
    let a = n.irc("nick1");
    let b = n.irc("nick2");
    n.line(a, "JOIN #c");
    n.line(b, "JOIN #c");
    n.lines(a);
    n.lines(b);
    // 510 bytes from the client; with its source the line would be longer.
    for target in ["nick2", "#c"] {
        let head = format!("PRIVMSG {target} :");
        let text: String = "é".repeat(300);
        let mut end = 510 - head.len();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let text = &text[..end];
        n.line(a, &format!("{head}{text}"));
        let got = n.lines(b);
        assert_eq!(got.len(), 1, "one line, not two: {got:?}");
        assert!(got[0].len() + 2 <= 512);
        let relayed = got[0].rsplit_once(" :").unwrap().1;
        assert!(
            text.starts_with(relayed) && relayed.len() > 400,
            "{relayed}"
        );
    }
    // A CTCP ACTION cut to fit keeps its closing \x01.
    let action = format!("\x01ACTION {}\x01", "w".repeat(480));
    n.line(a, &format!("PRIVMSG #c :{action}"));
    let got = n.lines(b);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].len() + 2, 512, "as long as a line may be");
    let relayed = got[0].rsplit_once(" :").unwrap().1;
    assert!(
        relayed.starts_with("\x01ACTION ww") && relayed.ends_with("w\x01"),
        "{relayed:?}"
    );
    // Native text is still split, never cut (the contract's rule for it).
    let alice = n.native("alice");
    n.line(b, "JOIN #lobby");
    n.lines(b);
    n.say(alice, &"z".repeat(1000));
    let got = n.lines(b);
    assert_eq!(got.len(), 3, "{got:?}");
    let total: usize = got
        .iter()
        .map(|l| l.rsplit_once(" :").unwrap().1.len())
        .sum();
    assert_eq!(total, 1000);
}

/// Found by review: a sender paused for a member went on waiting (until the
/// stall grace) after that member left the channel.
#[test]
fn a_sender_waiting_on_a_member_that_left_resumes_at_once() {
    let (mut n, a, slow, b) = busy_channel_with_a_stalled_member();
    for i in 0..30 {
        n.line(a, &format!("PRIVMSG #busy :{i} {}", "x".repeat(100)));
    }
    assert!(!n.server.wants_read(a), "paused for slow");
    let before = said(&n.lines(b)).len();
    n.line(slow, "PART #busy");
    let after = said(&n.lines(b)).len();
    assert_eq!(
        before + after,
        30,
        "resumed once slow left ({before} + {after})"
    );
}

/// Found by review: ADMIN (not supported) answered 402 with a target and
/// 421 without.
#[test]
fn an_unsupported_server_query_is_unknown_with_or_without_a_target() {
    let mut n = Net::default();
    let a = n.irc("a");
    n.line(a, "ADMIN");
    assert_eq!(n.numerics(a), ["421"]);
    n.line(a, "ADMIN other.example");
    assert_eq!(n.numerics(a), ["421"]);
}

#[test]
fn invisible_users_are_hidden_from_those_outside_their_channels_and_counted_apart() {
    let mut n = Net::default();
    let (alice, bob) = n.irc_pair_in("alice", "bob", "#pub");
    let carol = n.irc("carol");
    n.line(alice, "MODE alice +i");
    n.lines(alice);
    // Outside the channel: alice is not listed, in NAMES or WHO.
    n.line(carol, "NAMES #pub");
    assert_eq!(
        n.lines(carol),
        [
            ":chat.local 353 carol = #pub bob",
            ":chat.local 366 carol #pub :End of /NAMES list"
        ]
    );
    n.line(carol, "WHO #pub");
    let who = n.lines(carol);
    assert!(
        who.len() == 2 && who[0].contains(" bob ") && who[1].contains(" 315 "),
        "{who:?}"
    );
    // Inside it, she is.
    n.line(bob, "NAMES #pub");
    assert_eq!(n.lines(bob)[0], ":chat.local 353 bob = #pub :@alice bob");
    n.line(bob, "WHO #pub");
    assert_eq!(n.numerics(bob), ["352", "352", "315"]);
    // LUSERS counts her apart, and forgets her when she goes or shows.
    let lusers = |n: &mut Net| {
        n.line(carol, "LUSERS");
        n.lines(carol)
            .into_iter()
            .find(|l| l.contains(" 251 "))
            .unwrap()
    };
    assert!(lusers(&mut n).ends_with(":There are 2 users and 1 invisible on 1 servers"));
    n.line(alice, "MODE alice +i");
    assert!(n.lines(alice).is_empty(), "already +i: nothing changes");
    assert!(lusers(&mut n).ends_with(":There are 2 users and 1 invisible on 1 servers"));
    n.line(alice, "MODE alice -i");
    n.lines(alice);
    assert!(lusers(&mut n).ends_with(":There are 3 users and 0 invisible on 1 servers"));
    n.line(alice, "MODE alice +i");
    n.line(alice, "QUIT");
    assert!(lusers(&mut n).ends_with(":There are 2 users and 0 invisible on 1 servers"));
}

/// The KILL line is part of the victim's farewell: a stalled victim whose
/// queue is nearly full is not dropped by it before its ERROR.
#[test]
fn a_kill_victim_with_a_nearly_full_queue_still_gets_its_error() {
    let mut config = ServerConfig {
        max_outbound: 4096,
        ..immediate()
    };
    config.irc.opers = vec![("root".into(), "hunter2".into())];
    let mut n = Net::new(config);
    let bob = n.irc("bob");
    let carol = n.irc("carol");
    n.line(bob, "OPER root hunter2");
    n.lines(bob);
    n.stalled.insert(carol);
    n.line(bob, "PRIVMSG carol :first");
    n.advance(Duration::from_secs(1));
    // To 16 bytes short of the limit (a line to carol is its text plus 30
    // bytes), past the stall grace: the KILL line alone passes the limit.
    let target = 4096 - 16;
    while n.server.queued(carol) < target {
        let room = target - n.server.queued(carol);
        let len = if room > 260 { 200 } else { room - 30 };
        n.line(bob, &format!("PRIVMSG carol :{}", "y".repeat(len)));
        assert!(!n.is_closed(carol), "dropped while being filled");
    }
    assert_eq!(n.server.queued(carol), target);
    n.advance(Duration::from_secs(1));
    n.line(bob, "KILL carol :enough");
    n.stalled.remove(&carol);
    n.pump();
    let lines = n.lines(carol);
    assert_eq!(
        lines[lines.len() - 2..],
        [
            ":bob!bob@irc KILL carol :enough",
            "ERROR :Closing link (Killed by bob (enough))"
        ]
    );
}
