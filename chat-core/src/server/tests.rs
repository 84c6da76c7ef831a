//! Behaviour of the server state machine, driven through the simulation
//! world: scripted bytes, a virtual clock, no sockets and no sleeps.

use std::time::Duration;

use super::*;
use crate::frame::{ClientFrame, ServerFrame};
use crate::sim::World;
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

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn text(s: &str) -> Text {
    Text::new(s).unwrap()
}

fn say(s: &str) -> ClientFrame {
    ClientFrame::Say { text: text(s) }
}

fn whisper(to: &str, s: &str) -> ClientFrame {
    ClientFrame::Whisper {
        to: name(to),
        text: text(s),
    }
}

fn hello(s: &str) -> ClientFrame {
    ClientFrame::Hello { name: name(s) }
}

fn error(code: ErrorCode) -> impl Fn(&ServerFrame) -> bool {
    move |f| matches!(f, ServerFrame::Error { code: c, .. } if *c == code)
}

fn only_error(world: &mut World, peer: usize, code: ErrorCode) {
    let frames = world.take(peer);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(error(code)(&frames[0]), "{frames:?}");
}

fn message(from: &str, s: &str) -> ServerFrame {
    ServerFrame::Message {
        from: name(from),
        text: text(s),
    }
}

fn world() -> World {
    World::new(immediate())
}

#[test]
fn hello_gets_welcome_then_roster_and_others_get_joined() {
    let mut w = world();
    let alice = w.join("Alice");
    let bob = w.connect();
    w.send(bob, &hello("bob"));
    let frames = w.take(bob);
    assert_eq!(frames[0], ServerFrame::Welcome { name: name("bob") });
    let ServerFrame::Users { last: true, names } = &frames[1] else {
        panic!("{frames:?}")
    };
    let mut names: Vec<&str> = names.iter().map(Name::as_str).collect();
    names.sort();
    assert_eq!(names, ["Alice", "bob"]);
    assert_eq!(frames.len(), 2, "no JOINED about oneself");
    assert_eq!(w.take(alice), [ServerFrame::Joined { name: name("bob") }]);
    assert!(
        matches!(w.events.last(), Some(ServerEvent::Joined { name: n, .. }) if n.as_str() == "bob")
    );
}

#[test]
fn names_are_taken_ignoring_case_and_the_client_may_retry() {
    let mut w = world();
    w.join("Alice");
    let p = w.connect();
    w.send(p, &hello("ALICE"));
    only_error(&mut w, p, ErrorCode::NameTaken);
    w.send(p, &ClientFrame::Hello { name: name("x") });
    assert!(matches!(w.take(p)[0], ServerFrame::Welcome { .. }));
}

#[test]
fn hello_checks_run_in_contract_order() {
    let mut w = world();
    let p = w.connect();
    // An invalid name: NAME_INVALID, connection stays.
    w.send_bytes(p, b"\x00\x00\x00\x05\x01\x01\x02a!");
    only_error(&mut w, p, ErrorCode::NameInvalid);
    w.send_bytes(p, b"\x00\x00\x00\x03\x01\x01\x00");
    only_error(&mut w, p, ErrorCode::NameInvalid);
    w.send(p, &hello("p"));
    w.take(p);
    // Registered: ALREADY_REGISTERED comes before NAME_INVALID and NAME_TAKEN.
    w.send_bytes(p, b"\x00\x00\x00\x05\x01\x01\x02a!");
    only_error(&mut w, p, ErrorCode::AlreadyRegistered);
    w.send(p, &hello("P"));
    only_error(&mut w, p, ErrorCode::AlreadyRegistered);
    // A bad version is fatal, whatever else is wrong.
    w.send_bytes(p, b"\x00\x00\x00\x05\x01\x02\x02a!");
    let frames = w.take(p);
    assert!(matches!(
        frames[0],
        ServerFrame::Bye {
            reason: Reason::ProtocolError,
            ..
        }
    ));
    assert_eq!(w.peers[p].closed, Some(Reason::ProtocolError));
}

#[test]
fn requests_before_hello_are_not_registered_even_with_bad_text() {
    let mut w = world();
    let p = w.connect();
    w.send(p, &say("hi"));
    only_error(&mut w, p, ErrorCode::NotRegistered);
    w.send(p, &ClientFrame::Who);
    only_error(&mut w, p, ErrorCode::NotRegistered);
    w.send_bytes(p, b"\x00\x00\x00\x03\x03\x00\x1b");
    only_error(&mut w, p, ErrorCode::NotRegistered);
    w.send_bytes(p, b"\x00\x00\x00\x01\x02");
    only_error(&mut w, p, ErrorCode::NotRegistered);
}

#[test]
fn say_reaches_everyone_including_the_sender_and_bad_text_reaches_nobody() {
    let mut w = world();
    let a = w.join("a");
    let b = w.join("b");
    w.take(a);
    w.send(b, &say("hello"));
    assert_eq!(w.take(a), [message("b", "hello")]);
    assert_eq!(w.take(b), [message("b", "hello")]);
    for bad in [
        &b"\x00\x00\x00\x01\x02"[..],
        b"\x00\x00\x00\x03\x02\xc3\x28",
        b"\x00\x00\x00\x02\x02\x7f",
    ] {
        w.send_bytes(b, bad);
        only_error(&mut w, b, ErrorCode::BadText);
        assert!(w.take(a).is_empty());
    }
    let mut long = vec![0, 0, 0x10, 0x02, 0x02];
    long.extend(vec![b'x'; 4097]);
    w.send_bytes(b, &long);
    only_error(&mut w, b, ErrorCode::BadText);
}

#[test]
fn whisper_reaches_only_its_recipient_in_any_case() {
    let mut w = world();
    let a = w.join("Alice");
    let b = w.join("bob");
    let c = w.join("carol");
    for p in [a, b, c] {
        w.take(p);
    }
    w.send(a, &whisper("BOB", "psst"));
    assert_eq!(
        w.take(b),
        [ServerFrame::Private {
            from: name("Alice"),
            text: text("psst")
        }]
    );
    assert!(w.take(a).is_empty(), "the sender gets nothing on success");
    assert!(w.take(c).is_empty());
    w.send(a, &whisper("alice", "me"));
    assert_eq!(w.take(a).len(), 1, "whispering to oneself works");
    w.send(a, &whisper("dave", "x"));
    only_error(&mut w, a, ErrorCode::NoSuchUser);
    // An invalid recipient name is nobody's name.
    w.send_bytes(a, b"\x00\x00\x00\x05\x03\x02a!x");
    only_error(&mut w, a, ErrorCode::NoSuchUser);
    // Text is checked before the recipient.
    w.send_bytes(a, b"\x00\x00\x00\x05\x03\x02zz\x01");
    only_error(&mut w, a, ErrorCode::BadText);
}

#[test]
fn who_lists_everyone_and_big_rosters_split_across_frames() {
    let mut w = world();
    let first = w.join("u0");
    // The other users register behind the world's back, which keeps the
    // test fast; their own output is never read.
    for i in 1..600 {
        let conn = w.server.handle_accept(w.now);
        let hello = hello(&format!("user-with-a-long-name-{i:09}"));
        w.server.handle_input(w.now, conn, &hello.to_bytes());
    }
    w.drive();
    w.take(first);
    w.send(first, &ClientFrame::Who);
    let frames = w.take(first);
    assert!(frames.len() > 1, "600 long names need several USERS frames");
    let mut total = 0;
    for (i, f) in frames.iter().enumerate() {
        let ServerFrame::Users { last, names } = f else {
            panic!("{f:?}")
        };
        assert_eq!(*last, i == frames.len() - 1);
        total += names.len();
    }
    assert_eq!(total, 600);
}

#[test]
fn ping_is_answered_with_the_same_token_and_pong_is_silent() {
    let mut w = world();
    let p = w.connect();
    w.send(p, &ClientFrame::Ping { token: 0xdead_beef });
    assert_eq!(w.take(p), [ServerFrame::Pong { token: 0xdead_beef }]);
    w.send(p, &ClientFrame::Pong { token: 1 });
    assert!(w.take(p).is_empty());
}

#[test]
fn bye_is_answered_flushed_and_closed_and_others_see_quit() {
    let mut w = world();
    let a = w.join("a");
    let b = w.join("b");
    w.take(a);
    w.send(b, &ClientFrame::Bye);
    assert!(matches!(
        w.take(b)[..],
        [ServerFrame::Bye {
            reason: Reason::Quit,
            ..
        }]
    ));
    assert_eq!(w.peers[b].closed, Some(Reason::Quit));
    assert_eq!(
        w.take(a),
        [ServerFrame::Left {
            name: name("b"),
            reason: Reason::Quit
        }]
    );
    // The name is free again at once.
    w.join("B");
}

#[test]
fn frames_queued_before_a_farewell_are_delivered_before_it() {
    // `a` is not reading while a message is broadcast, then says BYE: it still
    // gets the message (queued for it in the shared feed) before its BYE.
    let mut w = world();
    let a = w.join("a");
    let b = w.join("b");
    w.take(a);
    w.set_reading(a, false);
    w.send(b, &say("before you go"));
    w.send(a, &ClientFrame::Bye);
    w.set_reading(a, true);
    w.drive();
    let frames = w.take(a);
    assert_eq!(frames.first(), Some(&message("b", "before you go")));
    assert!(matches!(
        frames.get(1..),
        Some([ServerFrame::Bye {
            reason: Reason::Quit,
            ..
        }])
    ));
}

#[test]
fn bye_before_hello_closes_without_left() {
    let mut w = world();
    let a = w.join("a");
    let p = w.connect();
    w.send(p, &ClientFrame::Bye);
    assert_eq!(w.peers[p].bye, Some(Reason::Quit));
    assert!(w.take(a).is_empty());
}

#[test]
fn end_of_stream_and_resets_are_disconnected_even_mid_frame() {
    let mut w = world();
    let a = w.join("a");
    let b = w.join("b");
    let c = w.join("c");
    w.take(a);
    w.send_bytes(b, b"\x00\x00\x00\x09\x02hal");
    w.eof(b);
    w.reset(c);
    let left = w.take(a);
    assert_eq!(
        left,
        [
            ServerFrame::Left {
                name: name("b"),
                reason: Reason::Disconnected
            },
            ServerFrame::Left {
                name: name("c"),
                reason: Reason::Disconnected
            },
        ]
    );
    assert_eq!(w.peers[b].closed, Some(Reason::Disconnected));
    // Ending again, or failing, with the dead id (straight to the server, as
    // a confused runtime would) changes nothing.
    let events = w.events.len();
    for conn in [w.peers[b].conn, w.peers[c].conn] {
        w.server.handle_eof(w.now, conn);
        w.server.handle_io_error(w.now, conn);
        w.server.handle_input(w.now, conn, &say("ghost").to_bytes());
    }
    w.drive();
    assert!(w.take(a).is_empty());
    assert_eq!(w.events.len(), events, "no event for a dead connection");
    assert_eq!(w.server.registered_count(), 1);
}

/// `printf … | nc -N`: requests, then the end of the stream at once, the
/// peer reading on. The answers must not be thrown away with the connection.
#[test]
fn a_half_closed_peer_still_gets_the_answers_to_what_it_sent() {
    let mut w = world();
    let a = w.join("a");
    w.take(a);
    let b = w.connect();
    w.set_reading(b, false);
    let mut requests = hello("b").to_bytes();
    requests.extend(ClientFrame::Who.to_bytes());
    requests.extend(say("last words").to_bytes());
    w.send_bytes(b, &requests);
    w.eof(b);
    assert_eq!(w.peers[b].closed, None, "its answers are still to go");
    assert_eq!(
        w.take(a),
        [
            ServerFrame::Joined { name: name("b") },
            message("b", "last words"),
            ServerFrame::Left {
                name: name("b"),
                reason: Reason::Disconnected
            },
        ]
    );
    w.set_reading(b, true);
    let frames = w.take(b);
    assert!(
        matches!(frames[0], ServerFrame::Welcome { .. }),
        "{frames:?}"
    );
    assert_eq!(
        frames.last(),
        Some(&message("b", "last words")),
        "{frames:?}"
    );
    assert!(
        !frames.iter().any(|f| matches!(f, ServerFrame::Bye { .. })),
        "no BYE: the peer did not say one"
    );
    assert_eq!(w.peers[b].closed, Some(Reason::Disconnected));
    assert_eq!(closed_gracefully(&w, b), Some(true));
}

#[test]
fn a_half_closed_peer_that_never_reads_is_closed_after_linger() {
    let mut w = world();
    let b = w.connect();
    w.set_reading(b, false);
    w.send(b, &hello("b"));
    w.eof(b);
    w.advance(Duration::from_millis(999));
    assert_eq!(w.peers[b].closed, None, "flushing its answers");
    w.advance(Duration::from_millis(1));
    assert_eq!(w.peers[b].closed, Some(Reason::Disconnected));
    assert_eq!(
        closed_gracefully(&w, b),
        Some(false),
        "unread past the linger"
    );
}

/// Whether the server's Close of `peer` was graceful (`None`: not closed).
fn closed_gracefully(w: &World, peer: usize) -> Option<bool> {
    let conn = w.peers[peer].conn;
    w.events.iter().find_map(|e| match e {
        ServerEvent::Close {
            conn: c, graceful, ..
        } if *c == conn => Some(*graceful),
        _ => None,
    })
}

#[test]
fn every_malformed_frame_is_fatal_with_a_protocol_error_bye() {
    let cases: &[&[u8]] = &[
        b"\x00\x00\x00\x00",                                         // length 0
        b"\x00\x00\x40\x01",                                         // length 16385
        b"\xff\xff\xff\xff",                                         // huge length
        b"\x00\x00\x00\x01\x09",                                     // unknown op
        b"\x00\x00\x00\x01\x00",                                     // unknown op 0
        b"\x00\x00\x00\x03\x81\x01\x00",                             // server op from a client
        b"\x00\x00\x00\x01\x01",                                     // HELLO without version
        b"\x00\x00\x00\x02\x01\x01",                                 // HELLO without name length
        b"\x00\x00\x00\x04\x01\x01\x05ab",                           // HELLO name runs past the end
        b"\x00\x00\x00\x05\x01\x01\x01ab",                           // HELLO trailing bytes
        b"\x00\x00\x00\x04\x01\x00\x01a",                            // HELLO version 0
        b"\x00\x00\x00\x01\x03",                                     // WHISPER without name length
        b"\x00\x00\x00\x03\x03\x05a",                                // WHISPER name past the end
        b"\x00\x00\x00\x02\x04\x00",                                 // WHO with a payload
        b"\x00\x00\x00\x08\x05\x00\x00\x00\x00\x00\x00\x00",         // PING short
        b"\x00\x00\x00\x0a\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00", // PONG long
        b"\x00\x00\x00\x02\x07\x00",                                 // BYE with a payload
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let mut w = world();
        let a = w.join("a");
        let b = w.join("b");
        w.take(a);
        // The fatal frame and a SAY after it, in one read.
        let mut read = bytes.to_vec();
        read.extend(say("late").to_bytes());
        w.send_bytes(b, &read);
        let frames = w.take(b);
        let Some(ServerFrame::Bye {
            reason: Reason::ProtocolError,
            detail,
        }) = frames.last()
        else {
            panic!("case {i}: {frames:?}")
        };
        assert!(
            !detail.is_empty(),
            "case {i}: the detail says what was wrong"
        );
        assert_eq!(w.peers[b].closed, Some(Reason::ProtocolError), "case {i}");
        assert_eq!(
            w.take(a),
            [ServerFrame::Left {
                name: name("b"),
                reason: Reason::ProtocolError
            }],
            "case {i}"
        );
        // The SAY after the fatal frame was never acted on (the LEFT above
        // was all `a` got), and input for the dead id is ignored.
        w.server
            .handle_input(w.now, w.peers[b].conn, &say("later").to_bytes());
        w.drive();
        assert!(w.take(a).is_empty(), "case {i}");
    }
}

#[test]
fn pipelined_and_bytewise_input_mean_the_same() {
    let mut stream = hello("zed").to_bytes();
    stream.extend(say("one").to_bytes());
    stream.extend(ClientFrame::Who.to_bytes());
    stream.extend(say("two").to_bytes());
    let mut whole = world();
    let watcher = whole.join("w");
    whole.take(watcher);
    let p = whole.connect();
    whole.send_bytes(p, &stream);
    let mut split = world();
    let watcher2 = split.join("w");
    split.take(watcher2);
    let q = split.connect();
    split.send_bytewise(q, &stream);
    let got = whole.take(p);
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got, split.take(q));
    assert_eq!(whole.take(watcher), split.take(watcher2));
}

#[test]
fn handshake_timeout_fires_exactly_on_time() {
    let mut w = world();
    let p = w.connect();
    w.advance(Duration::from_millis(9_999));
    assert!(w.peers[p].closed.is_none());
    w.send(p, &ClientFrame::Ping { token: 1 }); // activity does not extend the handshake
    w.advance(Duration::from_millis(1));
    let frames = w.take(p);
    assert!(
        matches!(
            frames.last(),
            Some(ServerFrame::Bye {
                reason: Reason::Timeout,
                ..
            })
        ),
        "{frames:?}"
    );
    assert_eq!(w.peers[p].closed, Some(Reason::Timeout));
}

#[test]
fn silence_brings_pings_then_an_idle_timeout_and_bytes_reset_the_clock() {
    let mut w = world();
    let a = w.join("a");
    let b = w.join("b");
    w.take(a);
    w.take(b);
    w.advance(Duration::from_secs(29));
    assert!(w.take(b).is_empty());
    w.advance(Duration::from_secs(1));
    assert!(matches!(w.take(b)[..], [ServerFrame::Ping { .. }]));
    // Bytes reset the silence clock: the next PING is 30 s after them.
    w.send(b, &ClientFrame::Pong { token: 1 });
    w.send(a, &ClientFrame::Pong { token: 1 });
    w.advance(Duration::from_secs(29));
    assert!(w.take(b).is_empty());
    w.advance(Duration::from_secs(1));
    assert!(matches!(w.take(b)[..], [ServerFrame::Ping { .. }]));
    w.send(a, &ClientFrame::Pong { token: 2 });
    w.advance(Duration::from_secs(30));
    let frames = w.take(b);
    assert!(
        matches!(
            frames.last(),
            Some(ServerFrame::Bye {
                reason: Reason::Timeout,
                ..
            })
        ),
        "{frames:?}"
    );
    assert!(w.take(a).iter().any(|f| *f
        == ServerFrame::Left {
            name: name("b"),
            reason: Reason::Timeout
        }));
}

#[test]
fn a_connection_beyond_max_clients_gets_server_full() {
    let mut w = World::new(ServerConfig {
        max_clients: 2,
        ..immediate()
    });
    let a = w.join("a");
    w.connect();
    let third = w.connect();
    assert_eq!(w.peers[third].bye, Some(Reason::ServerFull));
    assert_eq!(w.peers[third].closed, Some(Reason::ServerFull));
    w.send(a, &ClientFrame::Bye);
    let fourth = w.connect();
    assert_eq!(
        w.peers[fourth].closed, None,
        "a freed place is usable again"
    );
}

#[test]
fn a_reader_that_stalls_is_dropped_as_slow_consumer_while_others_get_everything() {
    let mut w = World::new(ServerConfig {
        max_outbound: 8192,
        ..immediate()
    });
    let sender = w.join("sender");
    let fine = w.join("fine");
    let slow = w.join("slow");
    w.set_reading(slow, false);
    for p in [sender, fine] {
        w.take(p);
    }
    for i in 0..500 {
        w.send(sender, &say(&format!("message number {i}")));
    }
    assert_eq!(
        w.peers[slow].closed, None,
        "it may still read, for the grace"
    );
    w.advance(w.server.config().stall_grace);
    assert_eq!(w.peers[slow].closed, Some(Reason::SlowConsumer));
    let got = w.take(fine);
    let left = ServerFrame::Left {
        name: name("slow"),
        reason: Reason::SlowConsumer,
    };
    assert_eq!(got.iter().filter(|f| **f == left).count(), 1);
    let messages = got
        .iter()
        .filter(|f| matches!(f, ServerFrame::Message { .. }))
        .count();
    assert_eq!(messages, 500);
    assert!(
        w.server.outbound(w.peers[slow].conn).is_empty(),
        "its buffer is freed"
    );
    w.check();
}

/// A sender, a reader that keeps up and one that does not read, with a 4 KiB
/// output limit; returns (world, sender, slow).
fn congested_world() -> (World, usize, usize) {
    let mut w = World::new(ServerConfig {
        max_outbound: 4096,
        ..immediate()
    });
    let sender = w.join("sender");
    w.join("fine");
    let slow = w.join("slow");
    w.set_reading(slow, false);
    (w, sender, slow)
}

/// Sends 100-byte messages from `sender` until its input pauses; returns how
/// many were acted on.
fn send_until_paused(w: &mut World, sender: usize) -> usize {
    let conn = w.peers[sender].conn;
    let mut sent = 0;
    while w.server.wants_read(conn) {
        w.send(sender, &say(&"m".repeat(90)));
        sent += 1;
        assert!(sent < 100, "never paused");
    }
    sent - 1
}

/// The public messages a peer received, in order.
fn messages(frames: &[ServerFrame]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Message { text, .. } => Some(text.as_str().to_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_sender_waits_while_a_reader_that_still_reads_is_half_the_limit_behind() {
    let (mut w, sender, slow) = congested_world();
    let conn = w.peers[sender].conn;
    let acted = send_until_paused(&mut w, sender);
    // Paused once the reader is 2 KiB behind: about 20 messages, and well
    // before the 4 KiB that would drop it.
    assert!((18..=24).contains(&acted), "paused after {acted}");
    let behind = w.server.queued(w.peers[slow].conn);
    assert!((2000..=2048).contains(&behind), "{behind} behind");
    assert_eq!(w.peers[slow].closed, None);
    // The kept message is not lost: once the reader reads, it goes out, and
    // reading resumes with an event.
    w.events.clear();
    w.set_reading(slow, true);
    assert!(w.server.wants_read(conn));
    assert!(w.events.contains(&ServerEvent::Resume { conn }));
    assert_eq!(messages(&w.take(slow)).len(), acted + 1);
    assert_eq!(w.peers[slow].closed, None);
    w.check();
}

#[test]
fn a_reader_that_stopped_holds_nobody_back_after_the_grace_and_is_dropped_at_the_limit() {
    let (mut w, sender, slow) = congested_world();
    let conn = w.peers[sender].conn;
    send_until_paused(&mut w, sender);
    // `slow` has not taken a byte since its queue filled; after the stall
    // grace the sender's kept input runs, by itself (a timer).
    let grace = w.server.config().stall_grace;
    w.advance(grace - Duration::from_millis(1));
    assert!(!w.server.wants_read(conn), "still within the grace");
    w.advance(Duration::from_millis(1));
    assert!(
        w.server.wants_read(conn),
        "the stalled reader is no reason to wait"
    );
    for _ in 0..30 {
        w.send(sender, &say(&"m".repeat(90)));
        assert!(w.server.wants_read(conn), "never paused again");
        if w.peers[slow].closed.is_some() {
            break;
        }
    }
    assert_eq!(w.peers[slow].closed, Some(Reason::SlowConsumer));
    let left = ServerFrame::Left {
        name: name("slow"),
        reason: Reason::SlowConsumer,
    };
    assert_eq!(w.take(sender).iter().filter(|f| **f == left).count(), 1);
    w.check();
}

/// The congestion issue's first scenario in the core: a 64 KiB limit, one
/// read carrying 16 texts of 4,000 bytes (more than the limit once fanned
/// out), a reader that never reads and one that reads in small pieces.
#[test]
fn one_read_bigger_than_the_limit_never_drops_a_reader_that_keeps_reading() {
    let mut w = World::new(ServerConfig {
        max_outbound: 65536,
        ..immediate()
    });
    let sloth = w.join("sloth");
    let flood = w.join("flood");
    let third = w.join("third");
    w.set_reading(sloth, false);
    w.peers[third].write_chunk = 4096;
    for p in [flood, third] {
        w.take(p);
    }
    let text = |i: usize| format!("{i:05}{}", "x".repeat(3995));
    let mut sent = 0;
    for _ in 0..20 {
        let burst: Vec<u8> = (sent..sent + 16)
            .flat_map(|i| say(&text(i)).to_bytes())
            .collect();
        sent += 16;
        w.send_bytes(flood, &burst);
        assert_eq!(w.peers[third].closed, None, "third dropped");
    }
    // The sloth holds the flood back only for the stall grace.
    w.advance(w.server.config().stall_grace);
    assert_eq!(w.peers[sloth].closed, Some(Reason::SlowConsumer));
    assert_eq!(w.peers[third].closed, None);
    assert_eq!(w.peers[flood].closed, None);
    let expected: Vec<String> = (0..sent).map(text).collect();
    assert_eq!(messages(&w.take(third)), expected);
    assert_eq!(messages(&w.take(flood)), expected);
    w.check();
}

/// The second scenario: many readers that never read and two that do; the
/// readers get everything and the others are dropped after the grace.
#[test]
fn readers_are_not_starved_by_a_hundred_that_never_read() {
    let mut w = World::new(ServerConfig {
        max_outbound: 65536,
        ..immediate()
    });
    let stalled: Vec<usize> = (0..100).map(|i| w.join(&format!("idle{i}"))).collect();
    let sender = w.join("sender");
    let observer = w.join("observer");
    for &p in &stalled {
        w.set_reading(p, false);
    }
    w.peers[observer].write_chunk = 1500;
    let text = |i: usize| format!("{i:05}{}", "y".repeat(195));
    let burst: Vec<u8> = (0..2000).flat_map(|i| say(&text(i)).to_bytes()).collect();
    w.send_bytes(sender, &burst);
    // Within the grace the sender waits for the stalled readers (they might
    // still be reading); nobody is dropped yet.
    assert!(stalled.iter().all(|&p| w.peers[p].closed.is_none()));
    // Memory stays bounded by the limit, not by the number of stalled readers.
    let held = w.server.output_memory();
    assert!(held <= 65536 + 102 * 512, "{held} bytes held");
    w.advance(w.server.config().stall_grace);
    for &p in &stalled {
        assert_eq!(w.peers[p].closed, Some(Reason::SlowConsumer));
    }
    let expected: Vec<String> = (0..2000).map(text).collect();
    let got = w.take(observer);
    assert_eq!(messages(&got), expected);
    let lefts = got
        .iter()
        .filter(|f| {
            matches!(
                f,
                ServerFrame::Left {
                    reason: Reason::SlowConsumer,
                    ..
                }
            )
        })
        .count();
    assert_eq!(lefts, 100, "exactly one LEFT per stalled reader");
    assert!(w.server.output_memory() <= 65536);
    w.check();
}

#[test]
fn dropping_stalled_readers_copies_nothing_out_of_the_feed() {
    let max = 1 << 20;
    let mut w = World::new(ServerConfig {
        max_outbound: max,
        ..immediate()
    });
    let stalled: Vec<usize> = (0..100).map(|i| w.join(&format!("s{i}"))).collect();
    let sender = w.join("sender");
    for &p in &stalled {
        w.set_reading(p, false);
    }
    w.advance(Duration::from_secs(1));
    let burst: Vec<u8> = (0..600)
        .flat_map(|i| say(&format!("{i:04}{}", "z".repeat(3996))).to_bytes())
        .collect();
    let mut peak = 0;
    for chunk in burst.chunks(64 * 1024) {
        w.send_bytes(sender, chunk);
        peak = peak.max(w.server.output_memory());
        w.advance(Duration::from_millis(300));
        peak = peak.max(w.server.output_memory());
    }
    assert!(
        stalled
            .iter()
            .all(|&p| w.peers[p].closed == Some(Reason::SlowConsumer))
    );
    // The feed once, plus small own frames: never a copy per stalled reader.
    assert!(peak <= max + 100 * 64, "peak {peak}");
}

#[test]
fn whispers_to_a_reader_that_still_reads_are_paced_too() {
    let mut w = World::new(ServerConfig {
        max_outbound: 4096,
        ..immediate()
    });
    let a = w.join("a");
    let b = w.join("b");
    w.set_reading(b, false);
    let burst: Vec<u8> = (0..100)
        .flat_map(|i| whisper("b", &format!("{i:03}{}", "w".repeat(97))).to_bytes())
        .collect();
    w.send_bytes(a, &burst);
    assert!(!w.server.wants_read(w.peers[a].conn));
    assert_eq!(w.peers[b].closed, None);
    w.set_reading(b, true);
    let got: Vec<String> = w
        .take(b)
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Private { text, .. } => Some(text.as_str()[..3].to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(got, (0..100).map(|i| format!("{i:03}")).collect::<Vec<_>>());
}

#[test]
fn input_paused_before_the_stream_ended_is_still_acted_on() {
    let (mut w, sender, slow) = congested_world();
    let burst: Vec<u8> = (0..40)
        .flat_map(|i| say(&format!("{i:02}{}", "e".repeat(88))).to_bytes())
        .collect();
    w.send_bytes(sender, &burst);
    w.eof(sender);
    assert_eq!(
        w.peers[sender].closed, None,
        "its last messages are still to go"
    );
    w.set_reading(slow, true);
    assert_eq!(w.peers[sender].closed, Some(Reason::Disconnected));
    assert_eq!(messages(&w.take(slow)).len(), 40);
}

#[test]
fn reading_resumes_with_an_event_once_a_backed_up_queue_drains() {
    let mut server = Server::new(ServerConfig {
        max_outbound: 4096,
        ..immediate()
    });
    let now = Instant::now();
    let conn = server.handle_accept(now);
    // 200 PINGs unread: 200 PONGs (2,600 bytes) pass half the limit.
    let pings: Vec<u8> = (0..200u64)
        .flat_map(|t| ClientFrame::Ping { token: t }.to_bytes())
        .collect();
    server.handle_input(now, conn, &pings);
    assert!(!server.wants_read(conn));
    while server.poll_event().is_some() {}
    // A partial write that stays above half the limit: still paused, no event.
    server.handle_written(now, conn, 13);
    assert!(!server.wants_read(conn));
    assert_eq!(server.poll_event(), None);
    let n = server.queued(conn);
    server.handle_written(now, conn, n);
    // The kept input runs at the next timeout call, which is due at once
    // (after the runtime's other writes of this turn).
    assert_eq!(server.poll_timeout(), Some(now));
    server.handle_timeout(now);
    assert!(server.wants_read(conn));
    assert_eq!(server.poll_event(), Some(ServerEvent::Resume { conn }));
    // Every PING was answered, in order, none twice.
    let answered = (13 + n) / 13;
    assert_eq!(server.queued(conn), (200 - answered) * 13);
}

#[test]
fn a_client_pipelining_faster_than_it_reads_is_slowed_not_dropped() {
    let mut w = World::new(ServerConfig {
        max_outbound: 4096,
        ..immediate()
    });
    let p = w.join("p");
    w.take(p);
    w.set_reading(p, false);
    let pings: Vec<u8> = (0..2000)
        .flat_map(|t| ClientFrame::Ping { token: t }.to_bytes())
        .collect();
    w.send_bytes(p, &pings);
    let conn = w.peers[p].conn;
    assert!(!w.server.wants_read(conn), "backed up: stop reading it");
    assert!(w.server.outbound(conn).len() <= 4096);
    w.set_reading(p, true);
    let tokens: Vec<u64> = w
        .take(p)
        .iter()
        .map(|f| match f {
            ServerFrame::Pong { token } => *token,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(tokens, (0..2000).collect::<Vec<u64>>());
    assert!(w.server.wants_read(conn));
}

#[test]
fn a_closing_connection_that_never_reads_is_closed_after_linger() {
    let mut w = world();
    let p = w.join("p");
    w.set_reading(p, false);
    w.send(p, &ClientFrame::Bye);
    assert_eq!(w.peers[p].closed, None, "still flushing its BYE");
    w.advance(Duration::from_millis(999));
    assert_eq!(w.peers[p].closed, None);
    w.advance(Duration::from_millis(1));
    assert_eq!(w.peers[p].closed, Some(Reason::Quit));
}

#[test]
fn shutdown_says_bye_to_everyone_and_refuses_newcomers() {
    let mut w = world();
    let a = w.join("a");
    let b = w.join("b");
    let c = w.connect();
    w.set_reading(b, false);
    w.server.shutdown(w.now);
    w.drive();
    for p in [a, c] {
        let frames = w.take(p);
        assert!(
            matches!(
                frames.last(),
                Some(ServerFrame::Bye {
                    reason: Reason::Shutdown,
                    ..
                })
            ),
            "{frames:?}"
        );
        assert!(!frames.iter().any(|f| matches!(f, ServerFrame::Left { .. })));
        assert_eq!(w.peers[p].closed, Some(Reason::Shutdown));
    }
    let late = w.connect();
    assert_eq!(w.peers[late].bye, Some(Reason::Shutdown));
    assert!(!w.server.is_shut_down(), "b is still flushing");
    w.advance(Duration::from_secs(1));
    assert!(w.server.is_shut_down());
    assert_eq!(w.server.poll_timeout(), None);
}

#[test]
fn poll_transmit_names_each_connection_once_per_burst() {
    let mut server = Server::new(immediate());
    let now = Instant::now();
    let a = server.handle_accept(now);
    server.handle_input(now, a, &ClientFrame::Ping { token: 1 }.to_bytes());
    server.handle_input(now, a, &ClientFrame::Ping { token: 2 }.to_bytes());
    assert_eq!(server.poll_transmit(), Some(a));
    assert_eq!(server.poll_transmit(), None);
    assert_eq!(server.outbound(a).len(), 26);
    server.handle_written(now, a, 26);
    server.handle_input(now, a, &ClientFrame::Ping { token: 3 }.to_bytes());
    assert_eq!(server.poll_transmit(), Some(a));
}

#[test]
fn stale_ids_are_ignored() {
    let mut server = Server::new(immediate());
    let now = Instant::now();
    let a = server.handle_accept(now);
    server.handle_eof(now, a);
    assert_eq!(
        server.poll_event(),
        Some(ServerEvent::Close {
            conn: a,
            reason: Reason::Disconnected,
            graceful: true
        }),
        "nothing was queued: closed at once, gracefully"
    );
    let b = server.handle_accept(now);
    assert_eq!(a.index(), b.index(), "the slot is reused");
    assert_ne!(a, b);
    server.handle_input(now, a, &ClientFrame::Ping { token: 1 }.to_bytes());
    server.handle_eof(now, a);
    assert!(server.outbound(b).is_empty());
    assert_eq!(server.poll_event(), None);
    assert_eq!(server.connection_count(), 1);
}

#[test]
fn an_idle_connection_holds_no_buffers_once_drained() {
    let mut w = world();
    let a = w.join("a");
    let b = w.join("b");
    w.send_bytes(b, b"\x00\x00\x00\x09\x02hal"); // half a frame is held
    assert!(w.server.buffer_capacity(w.peers[b].conn) > 0);
    w.send_bytes(b, b"lo wo");
    for i in 0..50 {
        w.send(a, &say(&format!("chatter {i}")));
    }
    for p in [a, b] {
        assert_eq!(w.server.buffer_capacity(w.peers[p].conn), 0, "peer {p}");
    }
    // A stalled reader keeps its queue, of course: in the shared feed, until
    // something private for it must come after it.
    w.set_reading(b, false);
    w.send(a, &say("unread"));
    let conn = w.peers[b].conn;
    assert!(w.server.queued(conn) > 0);
    assert_eq!(w.server.buffer_capacity(conn), 0);
    w.send(b, &ClientFrame::Ping { token: 7 });
    assert!(w.server.buffer_capacity(conn) > 0);
}

#[test]
fn warm_buffers_are_freed_after_a_quiet_second() {
    let mut w = world();
    let a = w.join("a");
    w.join("b");
    w.send(a, &say("burst"));
    // Touching the clock notices the pool in use; it asks to look again in 1 s.
    w.advance(Duration::from_millis(10));
    let check = w.server.poll_timeout().unwrap();
    assert!(
        check <= w.now + Duration::from_secs(1),
        "a wake-up to trim the pool"
    );
    // A quiet second later the pool is gone: the next wake-up is a
    // connection timer (the handshake entry, re-armed for the ping), seconds away.
    w.advance(Duration::from_secs(1));
    w.advance(Duration::from_millis(10));
    let next = w.server.poll_timeout().unwrap();
    assert!(
        next > w.now + Duration::from_secs(5),
        "no pool check left: {:?}",
        next - w.now
    );
}

#[test]
fn buffers_returned_after_the_last_timeout_call_are_still_freed() {
    // The runtime's turn: timers first (the pool is empty: every buffer is
    // out, queued), then the writes, which return the buffers to the pool.
    // Nothing happens afterwards; the pool must still be freed a second later.
    let mut server = Server::new(immediate());
    let now = Instant::now();
    let conns: Vec<ConnId> = (0..3).map(|_| server.handle_accept(now)).collect();
    for (i, &conn) in conns.iter().enumerate() {
        server.handle_input(now, conn, &hello(&format!("u{i}")).to_bytes());
    }
    server.handle_timeout(now);
    assert!(server.pool.bytes() == 0, "every buffer is queued");
    while let Some(conn) = server.poll_transmit() {
        let n = server.outbound(conn).len();
        server.handle_written(now, conn, n);
    }
    assert!(server.pool.bytes() > 0, "drained buffers went to the pool");
    let check = server.poll_timeout().unwrap();
    assert!(check <= now + Duration::from_secs(1), "a pool check is due");
    server.handle_timeout(check);
    assert_eq!(server.pool.bytes(), 0, "freed after a quiet second");
}

#[test]
fn a_rejected_connection_gets_server_full_and_frees_its_place() {
    let mut w = World::new(ServerConfig {
        max_clients: 1,
        ..immediate()
    });
    let a = w.connect();
    let conn = w.peers[a].conn;
    w.server.reject(w.now, conn);
    w.drive();
    assert_eq!(w.peers[a].bye, Some(Reason::ServerFull));
    assert_eq!(w.peers[a].closed, Some(Reason::ServerFull));
    let b = w.join("b");
    assert_eq!(w.peers[b].closed, None, "the place was freed");
}

#[test]
fn timers_too_long_for_the_clock_mean_never_and_nothing_panics() {
    let mut w = World::new(ServerConfig {
        handshake_timeout: Duration::MAX,
        ping_interval: Duration::MAX,
        idle_timeout: Duration::MAX,
        linger: Duration::MAX,
        stall_grace: Duration::MAX,
        ..immediate()
    });
    let a = w.join("a");
    let b = w.connect();
    w.set_reading(a, false);
    for i in 0..50 {
        w.send(a, &say(&format!("{i}")));
    }
    w.advance(Duration::from_secs(1 << 40));
    assert_eq!(w.peers[a].closed, None, "no timer fired");
    assert_eq!(w.peers[b].closed, None);
    w.send(a, &ClientFrame::Bye);
    w.advance(Duration::from_secs(1 << 40));
    assert_eq!(w.peers[a].closed, None, "an endless linger never closes it");
    w.set_reading(a, true);
    assert_eq!(w.peers[a].closed, Some(Reason::Quit));
}

/// A reader that keeps taking a little, too slowly: returns the world with
/// `slow` within 8 bytes of half the limit, a sender `a` paused on it, and
/// `others` more registered users.
fn world_with_a_slow_reader(others: usize) -> (World, usize, usize) {
    let mut w = World::new(ServerConfig {
        max_outbound: 4096,
        handshake_timeout: Duration::from_secs(1),
        ping_interval: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(4),
        ..immediate()
    });
    let a = w.join("a");
    let slow = w.join("slow");
    for i in 0..others {
        w.join(&format!("s{i}"));
    }
    w.set_reading(slow, false);
    // One-byte texts (8-byte frames) until a is paused.
    for _ in 0..300 {
        if !w.server.wants_read(w.peers[a].conn) {
            break;
        }
        w.send(a, &say("s"));
    }
    assert!(!w.server.wants_read(w.peers[a].conn), "a waits for slow");
    (w, a, slow)
}

/// `slow` takes one byte, as a reader that is slow but alive does.
fn trickle(w: &mut World, slow: usize) {
    let conn = w.peers[slow].conn;
    w.server.handle_written(w.now, conn, 1);
    w.drive();
}

#[test]
fn connections_paused_for_a_slow_reader_are_not_timed_out_meanwhile() {
    let (mut w, a, slow) = world_with_a_slow_reader(0);
    // A newcomer's HELLO (its JOINED is longer than the room left) waits
    // for the slow reader too.
    let c = w.connect();
    w.send(c, &hello("newcomer-with-a-rather-long-name"));
    assert!(w.take(c).is_empty(), "the HELLO waits");
    // slow takes a byte every 250 ms and pings, so it stays alive; a and c
    // wait far past the handshake (1 s), ping (2 s) and idle (4 s) timers,
    // and are never timed out while they wait.
    let mut waited = Duration::ZERO;
    for _ in 0..40 {
        let paused: Vec<usize> = [a, c]
            .into_iter()
            .filter(|&p| w.peers[p].closed.is_none() && !w.server.wants_read(w.peers[p].conn))
            .collect();
        trickle(&mut w, slow);
        w.send(slow, &ClientFrame::Ping { token: 0 });
        w.advance(Duration::from_millis(250));
        for p in paused {
            assert_eq!(w.peers[p].closed, None, "peer {p} timed out while paused");
            if p == c {
                waited += Duration::from_millis(250);
            }
        }
    }
    assert!(
        waited >= Duration::from_secs(2),
        "c waited {waited:?}, twice its handshake timeout at least"
    );
    // c's HELLO went through once there was room: WELCOME first (any
    // timeout came later, from its silence after it was read).
    w.set_reading(slow, true);
    w.advance(Duration::from_secs(5));
    assert!(matches!(
        w.take(c).first(),
        Some(ServerFrame::Welcome { .. })
    ));
}

#[test]
fn a_sender_paused_again_and_again_is_listed_once() {
    let (mut w, _a, slow) = world_with_a_slow_reader(20);
    for s in 2..22 {
        w.send(s, &say("me too"));
    }
    // slow takes a byte every 400 ms, so it keeps counting as reading; each
    // sender's recheck (at the stall grace) finds it still reading, and
    // pauses the sender again, cycle after cycle.
    for cycle in 0..8 {
        trickle(&mut w, slow);
        w.advance(Duration::from_millis(400));
        let paused = w
            .peers
            .iter()
            .filter(|p| p.closed.is_none() && !w.server.wants_read(p.conn))
            .count();
        assert!(paused >= 20, "cycle {cycle}: {paused} paused");
        assert!(
            w.server.waiting.len() <= w.server.connection_count(),
            "cycle {cycle}: {} entries for {} connections",
            w.server.waiting.len(),
            w.server.connection_count()
        );
    }
}

#[test]
fn a_departure_with_a_full_backlog_is_announced_before_its_close() {
    // b holds 12 messages of 341 bytes (4,092 of a 4,096 limit) when it times
    // out: its own LEFT must not push it out before its BYE is queued.
    let mut w = World::new(ServerConfig {
        max_outbound: 4096,
        ping_interval: Duration::from_secs(120),
        idle_timeout: Duration::from_secs(60),
        ..immediate()
    });
    let a = w.join("a");
    let b = w.join("b");
    w.set_reading(b, false);
    for i in 0..12 {
        w.send(a, &say(&format!("{i:02}{}", "x".repeat(332))));
    }
    w.advance(Duration::from_secs(1)); // b stalls: a's messages all go
    assert_eq!(w.server.queued(w.peers[b].conn), 4092);
    w.events.clear();
    for _ in 0..7 {
        w.advance(Duration::from_secs(10));
        if w.peers[a].closed.is_none() {
            w.send(a, &ClientFrame::Ping { token: 1 }); // a stays
        }
    }
    let conn = w.peers[b].conn;
    let about_b: Vec<&ServerEvent> = w.events.iter().filter(|e| e.conn() == conn).collect();
    assert!(
        matches!(
            about_b.first(),
            Some(ServerEvent::Left {
                reason: Reason::Timeout,
                ..
            })
        ),
        "{about_b:?}"
    );
    assert!(
        matches!(
            about_b.last(),
            Some(ServerEvent::Close {
                reason: Reason::Timeout,
                ..
            })
        ),
        "{about_b:?}"
    );
}

// ----- presence in a storm (`presence_batch`) -----

fn joined(s: &str) -> ServerFrame {
    ServerFrame::Joined { name: name(s) }
}

/// The default batching, and a world in which `alice` has been alone for a
/// second (so the next join is not part of a storm).
fn batching_world() -> (World, usize, Duration) {
    let config = ServerConfig::default();
    let batch = config.presence_batch;
    assert!(batch > Duration::ZERO, "batching is on by default");
    let mut w = World::new(config);
    let alice = w.join("alice");
    w.advance(Duration::from_secs(1));
    (w, alice, batch)
}

#[test]
fn a_lone_join_is_written_at_once_and_the_next_within_the_batch_waits() {
    let (mut w, alice, batch) = batching_world();
    w.join("bob");
    assert_eq!(w.take(alice), [joined("bob")], "a lone join goes at once");

    w.join("carol");
    assert!(w.take(alice).is_empty(), "a join right after another waits");
    assert!(w.server.holds_presence(w.peers[alice].conn));
    let due = w.server.poll_timeout().unwrap();
    assert!(
        due > w.now && due <= w.now + batch,
        "a deadline ends the wait"
    );
    w.advance(due - w.now);
    assert_eq!(w.take(alice), [joined("carol")]);
    assert!(!w.server.holds_presence(w.peers[alice].conn));
}

#[test]
fn a_storm_reaches_each_reader_in_a_few_writes_and_in_order() {
    let (mut w, alice, batch) = batching_world();
    // A join every millisecond for three batch times.
    let joins = 3 * batch.as_millis() as usize;
    let mut writes = 0;
    let mut got = Vec::new();
    for i in 0..joins {
        w.join(&format!("u{i}"));
        let frames = w.take(alice);
        writes += usize::from(!frames.is_empty());
        got.extend(frames);
        w.advance(Duration::from_millis(1));
    }
    w.settle();
    let frames = w.take(alice);
    writes += usize::from(!frames.is_empty());
    got.extend(frames);
    let want: Vec<ServerFrame> = (0..joins).map(|i| joined(&format!("u{i}"))).collect();
    assert_eq!(got, want, "every join, in order");
    // The first join is written at once, then one write per batch time
    // (each starting when the previous ended), and the last after the storm.
    assert!(writes <= 5, "{joins} joins took {writes} writes");
    assert!(
        writes >= 3,
        "the batch time bounds the wait: {writes} writes"
    );
}

#[test]
fn anything_else_for_a_reader_takes_its_held_presence_along_in_order() {
    let (mut w, alice, _) = batching_world();
    let bob = w.join("bob");
    w.join("carol");
    w.settle();
    w.take(alice);
    w.take(bob);
    w.join("dave");
    assert!(w.take(alice).is_empty());
    // A message to everyone.
    w.send(bob, &say("hi"));
    assert_eq!(w.take(alice), [joined("dave"), message("bob", "hi")]);
    // A reply to the reader's own request.
    w.join("erin");
    assert!(w.take(alice).is_empty());
    w.send(alice, &ClientFrame::Ping { token: 7 });
    assert_eq!(
        w.take(alice),
        [joined("erin"), ServerFrame::Pong { token: 7 }]
    );
    // A whisper.
    w.join("fred");
    w.take(bob);
    w.send(bob, &whisper("alice", "psst"));
    assert_eq!(
        w.take(alice),
        [
            joined("fred"),
            ServerFrame::Private {
                from: name("bob"),
                text: text("psst")
            }
        ]
    );
}

#[test]
fn held_presence_stays_under_a_quarter_of_a_tiny_limit_and_drops_nobody() {
    // 40 bytes of output: a JOINED is 9 to 12 bytes here, so at most one
    // waits, and a reader still reading is never the slow one.
    let config = ServerConfig {
        max_outbound: 40,
        ..ServerConfig::default()
    };
    let mut w = World::new(config);
    let alice = w.join("alice");
    w.advance(Duration::from_secs(1));
    let mut got = Vec::new();
    for i in 0..50 {
        w.join(&format!("u{i}"));
        assert!(w.server.queued(w.peers[alice].conn) <= 40 / 4 + 12);
        got.extend(w.take(alice));
    }
    w.settle();
    got.extend(w.take(alice));
    assert_eq!(got.len(), 50);
    assert!(
        w.events
            .iter()
            .all(|e| !matches!(e, ServerEvent::Left { .. })),
        "nobody dropped"
    );
}

#[test]
fn a_held_reader_is_never_taken_for_a_stalled_one() {
    // A stall grace far shorter than the batch time, and a small limit: a
    // reader the server itself holds back has taken nothing for longer
    // than the grace, yet it is still reading and must not be dropped when
    // a message would take it past the limit.
    let config = ServerConfig {
        max_outbound: 600,
        stall_grace: Duration::from_millis(1),
        ..ServerConfig::default()
    };
    let mut w = World::new(config);
    let alice = w.join("alice");
    let bob = w.join("bob");
    w.advance(Duration::from_secs(1));
    w.join("carol");
    w.take(alice);
    w.take(bob);
    w.join("dave");
    w.advance(Duration::from_millis(5));
    w.join("erin");
    assert!(w.server.holds_presence(w.peers[alice].conn));
    w.advance(Duration::from_millis(5));
    w.join("fred");
    // Past the grace since fred's JOINED, within the quiet time: still held.
    w.advance(Duration::from_millis(2));
    assert!(w.server.holds_presence(w.peers[alice].conn));
    // 100 + 500 bytes over a 600-byte limit.
    let long = "x".repeat(500);
    w.send(bob, &say(&long));
    let frames = w.take(alice);
    assert_eq!(
        frames.last(),
        Some(&message("bob", &long)),
        "the message reached the held reader: {frames:?}"
    );
    assert!(
        w.events
            .iter()
            .all(|e| !matches!(e, ServerEvent::Left { .. })),
        "nobody dropped: {:?}",
        w.events
    );
}
