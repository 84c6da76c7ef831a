use super::*;
use crate::frame::encode_roster;
use crate::name::MAX_NAME;
use proptest::prelude::*;

fn n(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn t(s: &str) -> Text {
    Text::new(s).unwrap()
}

/// Server frames, encoded back to back.
fn wire(frames: &[ServerFrame]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        frame.encode(&mut out).unwrap();
    }
    out
}

fn users(last: bool, names: &[&str]) -> ServerFrame {
    ServerFrame::Users {
        last,
        names: names.iter().map(|s| n(s)).collect(),
    }
}

fn drain(client: &mut Client) -> Vec<ClientEvent> {
    std::iter::from_fn(|| client.poll_event()).collect()
}

/// Takes everything the client wants to send, as a program writing it all.
fn sent(client: &mut Client) -> Vec<u8> {
    let out = client.outbound().to_vec();
    client.handle_written(out.len());
    out
}

fn names(list: &[&str]) -> Vec<Name> {
    list.iter().map(|s| n(s)).collect()
}

fn roster(client: &Client) -> Vec<String> {
    client.roster().map(|n| n.as_str().to_owned()).collect()
}

struct Clock(Instant);

impl Clock {
    fn new() -> Self {
        Self(Instant::now())
    }

    fn at(&self, secs: f64) -> Instant {
        self.0 + Duration::from_secs_f64(secs)
    }
}

fn no_idle() -> ClientConfig {
    ClientConfig::without_idle_exit()
}

/// A client registered as alice with roster alice, bob; events drained.
fn registered(clock: &Clock) -> Client {
    let mut c = Client::new(no_idle(), clock.at(0.0));
    c.hello(clock.at(0.0), n("alice")).unwrap();
    sent(&mut c);
    c.handle_input(
        clock.at(0.1),
        &wire(&[
            ServerFrame::Welcome { name: n("alice") },
            users(true, &["alice", "bob"]),
        ]),
    );
    drain(&mut c);
    c
}

#[test]
fn control_characters_from_the_server_are_shown_escaped_not_fatal() {
    let clock = Clock::new();
    let mut c = registered(&clock);
    // A hostile server's frames, built by hand: our own encoders refuse
    // such text (a debug assertion on their precondition).
    let mut bytes = Vec::new();
    for (op, text) in [
        (crate::frame::op::MESSAGE, &b"\x1b[2Jgotcha\x07"[..]),
        (crate::frame::op::PRIVATE, b"\xff\xc2\x9b"),
    ] {
        crate::codec::put_header(&mut bytes, op, 1 + 3 + text.len());
        bytes.push(3);
        bytes.extend_from_slice(b"bob");
        bytes.extend_from_slice(text);
    }
    c.handle_input(clock.at(1.0), &bytes);
    assert_eq!(
        drain(&mut c),
        [
            ClientEvent::Message {
                from: n("bob"),
                text: t("\\u{1b}[2Jgotcha\\u{7}")
            },
            ClientEvent::Private {
                from: n("bob"),
                text: t("\u{fffd}\\u{9b}")
            },
        ]
    );
    assert!(!c.is_closed());
}

#[test]
fn a_roster_that_never_ends_is_refused_at_the_bound() {
    let clock = Clock::new();
    let mut c = registered(&clock);
    let mut name_index = 0usize;
    let mut frames = 0;
    while !c.is_closed() {
        let batch: Vec<String> = (0..400)
            .map(|_| {
                name_index += 1;
                format!("u{name_index}")
            })
            .collect();
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        c.handle_input(clock.at(1.0), &wire(&[users(false, &refs)]));
        frames += 1;
        assert!(frames <= MAX_ROSTER / 400 + 1, "never refused");
    }
    assert!(drain(&mut c).contains(&ClientEvent::Closed {
        reason: CloseReason::ProtocolError(ProtocolError::RosterTooLarge)
    }));
}

#[test]
fn handshake_sends_exact_hello_and_registers_on_welcome() {
    let clock = Clock::new();
    let mut c = Client::new(ClientConfig::default(), clock.at(0.0));
    assert!(c.outbound().is_empty(), "nothing is sent before hello");
    assert_eq!(c.name(), None);
    c.hello(clock.at(1.0), n("alice")).unwrap();
    assert!(c.is_hello_pending());
    assert_eq!(sent(&mut c), b"\x00\x00\x00\x08\x01\x01\x05alice");
    c.handle_input(
        clock.at(1.1),
        &wire(&[
            ServerFrame::Welcome { name: n("alice") },
            users(true, &["bob", "alice"]),
        ]),
    );
    assert_eq!(
        drain(&mut c),
        [
            ClientEvent::Welcome { name: n("alice") },
            ClientEvent::Roster {
                names: names(&["alice", "bob"])
            },
        ]
    );
    assert_eq!(c.name(), Some(n("alice")));
    assert!(!c.is_hello_pending());
    assert_eq!(roster(&c), ["alice", "bob"]);
    assert_eq!(
        c.hello(clock.at(2.0), n("other")),
        Err(UsageError::AlreadyRegistered)
    );
    assert!(c.outbound().is_empty());
}

#[test]
fn name_taken_and_name_invalid_allow_another_hello() {
    let clock = Clock::new();
    let mut c = Client::new(no_idle(), clock.at(0.0));
    c.hello(clock.at(0.0), n("alice")).unwrap();
    assert_eq!(
        c.hello(clock.at(0.0), n("alice2")),
        Err(UsageError::HelloPending)
    );
    assert_eq!(
        sent(&mut c),
        ClientFrame::Hello { name: n("alice") }.to_bytes()
    );
    let taken = ServerFrame::Error {
        code: ErrorCode::NameTaken,
        detail: "name taken".into(),
    };
    c.handle_input(clock.at(0.1), &wire(&[taken]));
    assert_eq!(
        drain(&mut c),
        [ClientEvent::Error {
            code: ErrorCode::NameTaken,
            detail: "name taken".into()
        }]
    );
    assert_eq!(c.name(), None);

    c.hello(clock.at(1.0), n("Alice_2")).unwrap();
    assert_eq!(sent(&mut c), b"\x00\x00\x00\x0a\x01\x01\x07Alice_2");
    let invalid = ServerFrame::Error {
        code: ErrorCode::NameInvalid,
        detail: String::new(),
    };
    c.handle_input(clock.at(1.1), &wire(&[invalid]));
    assert!(matches!(
        drain(&mut c).as_slice(),
        [ClientEvent::Error {
            code: ErrorCode::NameInvalid,
            ..
        }]
    ));

    c.hello(clock.at(2.0), n("alice3")).unwrap();
    assert_eq!(
        sent(&mut c),
        ClientFrame::Hello { name: n("alice3") }.to_bytes()
    );
    c.handle_input(
        clock.at(2.1),
        &wire(&[
            ServerFrame::Welcome { name: n("alice3") },
            users(true, &["alice3"]),
        ]),
    );
    assert_eq!(drain(&mut c).len(), 2);
    assert_eq!(c.name(), Some(n("alice3")));
}

#[test]
fn other_errors_do_not_reset_a_pending_hello() {
    let clock = Clock::new();
    let mut c = Client::new(no_idle(), clock.at(0.0));
    c.hello(clock.at(0.0), n("alice")).unwrap();
    let not_registered = ServerFrame::Error {
        code: ErrorCode::NotRegistered,
        detail: "send HELLO first".into(),
    };
    c.handle_input(clock.at(0.1), &wire(&[not_registered]));
    assert_eq!(drain(&mut c).len(), 1);
    assert!(c.is_hello_pending());
}

#[test]
fn a_roster_in_several_users_frames_is_one_event_at_the_last() {
    let clock = Clock::new();
    let mut c = Client::new(no_idle(), clock.at(0.0));
    c.hello(clock.at(0.0), n("alice")).unwrap();
    c.handle_input(
        clock.at(0.1),
        &wire(&[
            ServerFrame::Welcome { name: n("alice") },
            users(false, &["dave", "alice"]),
        ]),
    );
    assert_eq!(drain(&mut c), [ClientEvent::Welcome { name: n("alice") }]);
    assert_eq!(roster(&c), Vec::<String>::new(), "no roster until last = 1");
    c.handle_input(clock.at(0.2), &wire(&[users(false, &[])]));
    assert_eq!(drain(&mut c), []);
    c.handle_input(clock.at(0.3), &wire(&[users(true, &["Carol", "bob"])]));
    assert_eq!(
        drain(&mut c),
        [ClientEvent::Roster {
            names: names(&["alice", "bob", "Carol", "dave"])
        }]
    );
    assert_eq!(roster(&c), ["alice", "bob", "Carol", "dave"]);
}

#[test]
fn a_roster_too_big_for_one_frame_arrives_whole() {
    let clock = Clock::new();
    let mut c = registered(&clock);
    let big: Vec<Name> = (0..1500)
        .map(|i| n(&format!("{i:0>width$}", width = MAX_NAME)))
        .collect();
    let mut bytes = Vec::new();
    encode_roster(&mut bytes, &big);
    assert!(bytes.len() > 3 * crate::MAX_FRAME, "several USERS frames");
    c.who(clock.at(1.0)).unwrap();
    assert_eq!(sent(&mut c), b"\x00\x00\x00\x01\x04");
    c.handle_input(clock.at(1.1), &bytes);
    let events = drain(&mut c);
    assert_eq!(events.len(), 1);
    let ClientEvent::Roster { names } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(names.len(), 1500);
    assert_eq!(c.roster().count(), 1500);
}

#[test]
fn a_whisper_sent_names_its_recipient_as_the_roster_spells_it() {
    let clock = Clock::new();
    let mut c = registered(&clock);
    c.handle_input(clock.at(0.5), &wire(&[users(true, &["alice", "Bob"])]));
    drain(&mut c);
    for (typed, shown) in [("BOB", "Bob"), ("nobody", "nobody")] {
        c.whisper(clock.at(1.0), n(typed), t("psst")).unwrap();
        let events = drain(&mut c);
        let [ClientEvent::PrivateSent { to, .. }] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(
            to.as_str(),
            shown,
            "names compare in any case: the spelling is the point"
        );
    }
}

#[test]
fn every_display_event_and_the_bytes_of_each_intent() {
    let clock = Clock::new();
    let mut c = registered(&clock);
    c.say(clock.at(1.0), t("hello all")).unwrap();
    assert_eq!(sent(&mut c), b"\x00\x00\x00\x0a\x02hello all");
    c.whisper(clock.at(1.0), n("bob"), t("psst")).unwrap();
    assert_eq!(sent(&mut c), b"\x00\x00\x00\x09\x03\x03bobpsst");
    c.who(clock.at(1.0)).unwrap();
    assert_eq!(sent(&mut c), b"\x00\x00\x00\x01\x04");
    assert_eq!(
        drain(&mut c),
        [ClientEvent::PrivateSent {
            to: n("bob"),
            text: t("psst")
        }]
    );

    let script = [
        ServerFrame::Message {
            from: n("alice"),
            text: t("hello all"),
        },
        ServerFrame::Private {
            from: n("bob"),
            text: t("hi there"),
        },
        ServerFrame::Joined { name: n("carol") },
        ServerFrame::Left {
            name: n("bob"),
            reason: Reason::Timeout,
        },
        ServerFrame::Error {
            code: ErrorCode::NoSuchUser,
            detail: "no such user".into(),
        },
        users(true, &["alice", "carol"]),
    ];
    c.handle_input(clock.at(2.0), &wire(&script));
    assert_eq!(
        drain(&mut c),
        [
            ClientEvent::Message {
                from: n("alice"),
                text: t("hello all")
            },
            ClientEvent::Private {
                from: n("bob"),
                text: t("hi there")
            },
            ClientEvent::Joined { name: n("carol") },
            ClientEvent::Left {
                name: n("bob"),
                reason: Reason::Timeout
            },
            ClientEvent::Error {
                code: ErrorCode::NoSuchUser,
                detail: "no such user".into()
            },
            ClientEvent::Roster {
                names: names(&["alice", "carol"])
            },
        ]
    );
    assert!(c.outbound().is_empty(), "display frames need no answer");
}

#[test]
fn joined_and_left_update_the_roster_and_who_replaces_it() {
    let clock = Clock::new();
    let mut c = registered(&clock);
    c.handle_input(
        clock.at(1.0),
        &wire(&[
            ServerFrame::Joined { name: n("Zed") },
            ServerFrame::Joined { name: n("carol") },
            ServerFrame::Left {
                name: n("BOB"),
                reason: Reason::Quit,
            },
        ]),
    );
    assert_eq!(roster(&c), ["alice", "carol", "Zed"]);
    // Leaving under another case is the same user; unknown names are harmless.
    c.handle_input(
        clock.at(1.1),
        &wire(&[ServerFrame::Left {
            name: n("nobody"),
            reason: Reason::Disconnected,
        }]),
    );
    assert_eq!(roster(&c), ["alice", "carol", "Zed"]);
    c.handle_input(clock.at(2.0), &wire(&[users(true, &["alice", "eve"])]));
    assert_eq!(roster(&c), ["alice", "eve"]);
    assert_eq!(drain(&mut c).len(), 5);
}

#[test]
fn ping_is_answered_with_the_same_token_and_no_event() {
    let clock = Clock::new();
    let mut c = Client::new(no_idle(), clock.at(0.0));
    c.handle_input(
        clock.at(30.0),
        &wire(&[ServerFrame::Ping {
            token: 0x0102_0304_0506_0708,
        }]),
    );
    assert_eq!(
        sent(&mut c),
        b"\x00\x00\x00\x09\x06\x01\x02\x03\x04\x05\x06\x07\x08"
    );
    assert_eq!(drain(&mut c), []);
    // A PONG from the server answers nothing we sent: ignored.
    c.handle_input(clock.at(31.0), &wire(&[ServerFrame::Pong { token: 9 }]));
    assert_eq!(drain(&mut c), []);
    assert!(c.outbound().is_empty());
}

#[test]
fn a_ping_flood_the_program_cannot_write_stays_bounded() {
    let clock = Clock::new();
    let mut c = Client::new(no_idle(), clock.at(0.0));
    let pings = wire(&vec![ServerFrame::Ping { token: 1 }; 20_000]);
    c.handle_input(clock.at(1.0), &pings);
    assert!(c.outbound().len() <= PONG_BACKLOG_LIMIT + 13);
    assert!(c.outbound().len() >= PONG_BACKLOG_LIMIT);
    // Once written, PINGs are answered again.
    sent(&mut c);
    c.handle_input(clock.at(2.0), &wire(&[ServerFrame::Ping { token: 2 }]));
    assert_eq!(sent(&mut c), ClientFrame::Pong { token: 2 }.to_bytes());
}

#[test]
fn partial_writes_keep_order_and_drained_output_frees_memory() {
    let clock = Clock::new();
    let mut c = Client::new(no_idle(), clock.at(0.0));
    c.hello(clock.at(0.0), n("alice")).unwrap();
    c.who(clock.at(0.0)).unwrap();
    let mut expected = ClientFrame::Hello { name: n("alice") }.to_bytes();
    expected.extend(ClientFrame::Who.to_bytes());
    let mut written = Vec::new();
    while !c.outbound().is_empty() {
        written.push(c.outbound()[0]);
        c.handle_written(1);
    }
    assert_eq!(written, expected);
    assert_eq!(c.outbox.capacity(), 0);
    c.handle_written(100); // over-reporting is clamped, not a panic
    assert!(c.outbound().is_empty());
}

#[test]
fn idle_exit_fires_at_the_deadline_and_user_input_postpones_it() {
    let clock = Clock::new();
    let config = ClientConfig::default();
    assert_eq!(config.idle_exit, Some(Duration::from_secs(60)));
    let mut c = Client::new(config, clock.at(0.0));
    assert_eq!(c.poll_timeout(), Some(clock.at(60.0)));
    c.handle_timeout(clock.at(59.999));
    assert_eq!(drain(&mut c), []);

    c.hello(clock.at(10.0), n("alice")).unwrap();
    sent(&mut c);
    assert_eq!(c.poll_timeout(), Some(clock.at(70.0)));
    c.handle_timeout(clock.at(60.0));
    assert_eq!(drain(&mut c), [], "hello was user activity");

    // Server traffic is not user activity.
    c.handle_input(
        clock.at(65.0),
        &wire(&[
            ServerFrame::Welcome { name: n("alice") },
            users(true, &["alice"]),
            ServerFrame::Ping { token: 1 },
        ]),
    );
    drain(&mut c);
    sent(&mut c);
    assert_eq!(c.poll_timeout(), Some(clock.at(70.0)));

    // A refused intent is still the user at the keyboard.
    assert_eq!(
        c.hello(clock.at(69.0), n("alice")),
        Err(UsageError::AlreadyRegistered)
    );
    assert_eq!(c.poll_timeout(), Some(clock.at(129.0)));
    c.handle_timeout(clock.at(128.9));
    assert_eq!(drain(&mut c), []);
    assert!(c.outbound().is_empty());

    c.handle_timeout(clock.at(129.0));
    assert_eq!(drain(&mut c), [ClientEvent::IdleExit]);
    assert_eq!(sent(&mut c), b"\x00\x00\x00\x01\x07");
    assert!(c.is_quitting());
    // Now only the quit linger is pending.
    assert_eq!(c.poll_timeout(), Some(clock.at(130.0)));
    c.handle_timeout(clock.at(129.5));
    assert_eq!(drain(&mut c), [], "idle exit fires once");
    assert_eq!(c.say(clock.at(129.5), t("late")), Err(UsageError::Closing));

    c.handle_input(
        clock.at(129.8),
        &wire(&[ServerFrame::Bye {
            reason: Reason::Quit,
            detail: String::new(),
        }]),
    );
    assert_eq!(
        drain(&mut c),
        [ClientEvent::Closed {
            reason: CloseReason::Quit
        }]
    );
}

#[test]
fn idle_exit_can_be_disabled_and_huge_values_do_not_overflow() {
    let clock = Clock::new();
    let mut c = Client::new(no_idle(), clock.at(0.0));
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(clock.at(1e6));
    assert_eq!(drain(&mut c), []);
    let huge = ClientConfig {
        idle_exit: Some(Duration::MAX),
        quit_linger: Duration::MAX,
    };
    let mut c = Client::new(huge, clock.at(0.0));
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(clock.at(1e6));
    assert_eq!(drain(&mut c), []);
}

#[test]
fn a_quit_the_server_never_answers_closes_after_the_linger() {
    let clock = Clock::new();
    let mut c = registered(&clock);
    c.quit(clock.at(1.0));
    sent(&mut c);
    assert_eq!(
        c.poll_timeout(),
        Some(clock.at(2.0)),
        "one second of linger"
    );
    c.handle_timeout(clock.at(1.999));
    assert!(!c.is_closed());
    c.handle_timeout(clock.at(2.0));
    assert_eq!(
        drain(&mut c),
        [ClientEvent::Closed {
            reason: CloseReason::Quit
        }]
    );
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn quit_sends_bye_and_closes_after_the_servers_bye() {
    let clock = Clock::new();
    let mut c = registered(&clock);
    c.quit(clock.at(1.0));
    c.quit(clock.at(1.0)); // harmless twice
    assert_eq!(sent(&mut c), b"\x00\x00\x00\x01\x07");
    assert!(c.is_quitting());
    assert_eq!(c.say(clock.at(1.1), t("x")), Err(UsageError::Closing));
    assert_eq!(c.who(clock.at(1.1)), Err(UsageError::Closing));
    assert!(c.outbound().is_empty());

    // Frames already on their way are still shown; PINGs no longer answered.
    let mut bytes = wire(&[
        ServerFrame::Message {
            from: n("bob"),
            text: t("bye alice"),
        },
        ServerFrame::Ping { token: 3 },
        ServerFrame::Bye {
            reason: Reason::Quit,
            detail: String::new(),
        },
    ]);
    bytes.extend(b"ignored after BYE");
    c.handle_input(clock.at(1.2), &bytes);
    assert_eq!(
        drain(&mut c),
        [
            ClientEvent::Message {
                from: n("bob"),
                text: t("bye alice")
            },
            ClientEvent::Closed {
                reason: CloseReason::Quit
            },
        ]
    );
    assert!(c.outbound().is_empty());
    assert!(c.is_closed());
    assert_eq!(c.poll_timeout(), None);
    c.handle_input(
        clock.at(2.0),
        &wire(&[ServerFrame::Joined { name: n("x") }]),
    );
    c.handle_eof(clock.at(2.0));
    c.quit(clock.at(2.0));
    assert_eq!(c.say(clock.at(2.0), t("x")), Err(UsageError::Closed));
    assert_eq!(drain(&mut c), []);
    assert!(c.outbound().is_empty());
}

#[test]
fn quit_then_end_of_stream_is_a_quit_and_a_crossing_shutdown_is_reported() {
    let clock = Clock::new();
    let mut c = registered(&clock);
    c.quit(clock.at(1.0));
    c.handle_eof(clock.at(1.1));
    assert_eq!(
        drain(&mut c),
        [ClientEvent::Closed {
            reason: CloseReason::Quit
        }]
    );

    let mut c = registered(&clock);
    c.quit(clock.at(1.0));
    let shutdown = ServerFrame::Bye {
        reason: Reason::Shutdown,
        detail: "server shutting down".into(),
    };
    c.handle_input(clock.at(1.1), &wire(&[shutdown]));
    assert_eq!(
        drain(&mut c),
        [ClientEvent::Closed {
            reason: CloseReason::ServerBye {
                reason: Reason::Shutdown,
                detail: "server shutting down".into()
            }
        }]
    );
}

#[test]
fn server_bye_closes_with_its_reason_and_drops_unsent_output() {
    let clock = Clock::new();
    let mut c = Client::new(ClientConfig::default(), clock.at(0.0));
    c.hello(clock.at(0.0), n("alice")).unwrap();
    let full = ServerFrame::Bye {
        reason: Reason::ServerFull,
        detail: "server full".into(),
    };
    c.handle_input(clock.at(0.1), &wire(&[full]));
    assert_eq!(
        drain(&mut c),
        [ClientEvent::Closed {
            reason: CloseReason::ServerBye {
                reason: Reason::ServerFull,
                detail: "server full".into()
            }
        }]
    );
    assert!(c.outbound().is_empty());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn end_of_stream_without_bye_is_disconnected_and_inside_a_frame_a_protocol_error() {
    let clock = Clock::new();
    let mut c = registered(&clock);
    c.handle_eof(clock.at(1.0));
    assert_eq!(
        drain(&mut c),
        [ClientEvent::Closed {
            reason: CloseReason::Disconnected
        }]
    );
    assert!(c.is_closed());
    c.handle_eof(clock.at(1.0));
    assert_eq!(drain(&mut c), [], "Closed once");

    let mut c = registered(&clock);
    let bytes = wire(&[ServerFrame::Joined { name: n("bob") }]);
    c.handle_input(clock.at(1.0), &bytes[..5]);
    c.handle_eof(clock.at(1.1));
    assert_eq!(
        drain(&mut c),
        [ClientEvent::Closed {
            reason: CloseReason::ProtocolError(ProtocolError::Frame(FrameError::Truncated {
                buffered: 5
            }))
        }]
    );
}

#[test]
fn garbage_closes_with_a_typed_protocol_error() {
    use crate::frame::Malformed;
    use crate::name::NameError;
    let clock = Clock::new();
    let cases: Vec<(Vec<u8>, ProtocolError)> = vec![
        (
            vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
            ProtocolError::Frame(FrameError::TooLong(u32::MAX)),
        ),
        (
            vec![0, 0, 0, 0],
            ProtocolError::Frame(FrameError::ZeroLength),
        ),
        (
            b"\x00\x00\x00\x01\x99".to_vec(),
            ProtocolError::Decode(Malformed::UnknownOp(0x99).into()),
        ),
        // A frame only clients send.
        (
            ClientFrame::Hello { name: n("alice") }.to_bytes(),
            ProtocolError::Decode(Malformed::WrongDirection(0x01).into()),
        ),
        (
            b"\x00\x00\x00\x05\x85\x03a b".to_vec(),
            ProtocolError::Decode(NameError::BadByte(b' ').into()),
        ),
        (
            b"\x00\x00\x00\x03\x81\x02\x01".to_vec(),
            ProtocolError::Decode(Malformed::UnsupportedVersion(2).into()),
        ),
        (
            b"\x00\x00\x00\x02\x05\x01".to_vec(),
            ProtocolError::Decode(
                Malformed::Truncated {
                    op: "PING",
                    field: "token",
                }
                .into(),
            ),
        ),
    ];
    for (bytes, error) in cases {
        let mut c = registered(&clock);
        c.say(clock.at(1.0), t("unsent")).unwrap();
        // A good frame before the garbage still counts.
        let mut stream = wire(&[ServerFrame::Joined { name: n("carol") }]);
        stream.extend(&bytes);
        c.handle_input(clock.at(1.0), &stream);
        assert_eq!(
            drain(&mut c),
            [
                ClientEvent::Joined { name: n("carol") },
                ClientEvent::Closed {
                    reason: CloseReason::ProtocolError(error)
                }
            ],
            "{bytes:?}"
        );
        assert!(c.is_closed());
        assert!(c.outbound().is_empty());
        c.handle_input(
            clock.at(2.0),
            &wire(&[ServerFrame::Joined { name: n("x") }]),
        );
        c.handle_eof(clock.at(2.0));
        assert_eq!(drain(&mut c), []);
    }
}

#[test]
fn odd_but_well_formed_frames_are_tolerated() {
    let clock = Clock::new();
    let mut c = Client::new(no_idle(), clock.at(0.0));
    // Before any HELLO: shown as they come.
    let early = [
        ServerFrame::Message {
            from: n("bob"),
            text: t("early"),
        },
        ServerFrame::Joined { name: n("bob") },
    ];
    c.handle_input(clock.at(0.1), &wire(&early));
    assert_eq!(drain(&mut c).len(), 2);
    assert_eq!(roster(&c), ["bob"]);
    c.hello(clock.at(1.0), n("alice")).unwrap();
    c.handle_input(
        clock.at(1.1),
        &wire(&[
            ServerFrame::Welcome { name: n("alice") },
            ServerFrame::Welcome { name: n("mallory") },
        ]),
    );
    assert_eq!(drain(&mut c), [ClientEvent::Welcome { name: n("alice") }]);
    assert_eq!(c.name(), Some(n("alice")));
    assert!(!c.is_closed());
}

/// A long session script: every server frame kind but BYE, PINGs among them.
fn session() -> Vec<u8> {
    wire(&[
        ServerFrame::Error {
            code: ErrorCode::NameTaken,
            detail: "name taken".into(),
        },
        ServerFrame::Welcome { name: n("alice") },
        users(false, &["alice", "bob"]),
        users(true, &["carol"]),
        ServerFrame::Ping { token: u64::MAX },
        ServerFrame::Message {
            from: n("bob"),
            text: t("héllo ✓\tworld\nline two"),
        },
        ServerFrame::Private {
            from: n("carol"),
            text: t("secret"),
        },
        ServerFrame::Joined { name: n("dave") },
        ServerFrame::Left {
            name: n("bob"),
            reason: Reason::SlowConsumer,
        },
        ServerFrame::Pong { token: 7 },
        ServerFrame::Ping { token: 42 },
        users(true, &[]),
    ])
}

/// Feeds `chunks` to a client that sent HELLO, writing its output after
/// each, then ends the stream. Returns the events and everything written.
/// (Output still queued when the client closes is dropped, so only runs
/// that close at the end of stream write the same whatever the cuts.)
fn run(chunks: &[&[u8]]) -> (Vec<ClientEvent>, Vec<u8>) {
    let clock = Clock::new();
    let mut c = Client::new(no_idle(), clock.at(0.0));
    c.hello(clock.at(0.0), n("alice")).unwrap();
    sent(&mut c);
    let mut out = Vec::new();
    for chunk in chunks {
        c.handle_input(clock.at(1.0), chunk);
        out.extend(sent(&mut c));
    }
    c.handle_eof(clock.at(2.0));
    (drain(&mut c), out)
}

#[test]
fn byte_by_byte_gives_the_same_events_and_output() {
    let stream = session();
    let whole = run(&[stream.as_slice()]);
    assert_eq!(whole.0.len(), 9);
    assert_eq!(
        whole.0.last(),
        Some(&ClientEvent::Closed {
            reason: CloseReason::Disconnected
        })
    );
    let mut pongs = ClientFrame::Pong { token: u64::MAX }.to_bytes();
    pongs.extend(ClientFrame::Pong { token: 42 }.to_bytes());
    assert_eq!(whole.1, pongs);
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(run(&bytes), whole);
    let threes: Vec<&[u8]> = stream.chunks(3).collect();
    assert_eq!(run(&threes), whole);

    // Ended by the server's BYE instead: the same events, however cut.
    let mut stream = stream;
    let bye = ServerFrame::Bye {
        reason: Reason::Shutdown,
        detail: "bye ✓".into(),
    };
    bye.encode(&mut stream).unwrap();
    let whole = run(&[stream.as_slice()]).0;
    assert_eq!(
        whole.last(),
        Some(&ClientEvent::Closed {
            reason: CloseReason::ServerBye {
                reason: Reason::Shutdown,
                detail: "bye ✓".into()
            }
        })
    );
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(run(&bytes).0, whole);
}

#[test]
fn the_fuzz_driver_runs_clean_on_a_session() {
    let mut script = Vec::new();
    // Hello, then the whole session in 32-byte input steps.
    script.push(6); // intent 0: hello
    for chunk in session().chunks(32) {
        script.push(((chunk.len() - 1) as u8) << 3);
        script.extend(chunk);
    }
    fuzzing::drive(Instant::now(), &script);
}

fn arb_name() -> impl Strategy<Value = Name> {
    "[A-Za-z0-9_-]{1,32}".prop_map(|s| n(&s))
}

fn arb_text() -> impl Strategy<Value = Text> {
    "[a-zA-Z0-9 \t\né✓]{1,40}".prop_map(|s| t(&s))
}

fn arb_reason() -> impl Strategy<Value = Reason> {
    (0u8..7).prop_map(|r| Reason::from_u8(r).unwrap())
}

fn arb_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        any::<u64>().prop_map(|token| ServerFrame::Ping { token }),
        any::<u64>().prop_map(|token| ServerFrame::Pong { token }),
        arb_name().prop_map(|name| ServerFrame::Welcome { name }),
        (1u8..7, "[a-z ]{0,10}").prop_map(|(code, detail)| ServerFrame::Error {
            code: ErrorCode::from_u8(code).unwrap(),
            detail
        }),
        (arb_name(), arb_text()).prop_map(|(from, text)| ServerFrame::Message { from, text }),
        (arb_name(), arb_text()).prop_map(|(from, text)| ServerFrame::Private { from, text }),
        arb_name().prop_map(|name| ServerFrame::Joined { name }),
        (arb_name(), arb_reason()).prop_map(|(name, reason)| ServerFrame::Left { name, reason }),
        (any::<bool>(), prop::collection::vec(arb_name(), 0..5))
            .prop_map(|(last, names)| ServerFrame::Users { last, names }),
        (arb_reason(), "[a-z ]{0,10}")
            .prop_map(|(reason, detail)| ServerFrame::Bye { reason, detail }),
    ]
}

/// Cuts `bytes` at the given points (taken modulo its length).
fn cut<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for p in points {
        chunks.push(&bytes[start..p]);
        start = p;
    }
    chunks.push(&bytes[start..]);
    chunks
}

/// Checks the event stream: exactly one Closed (EOF ends every run), last.
fn assert_closed_once_and_last(events: &[ClientEvent]) {
    let closed = events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Closed { .. }))
        .count();
    assert_eq!(closed, 1, "{events:?}");
    assert!(matches!(events.last(), Some(ClientEvent::Closed { .. })));
}

proptest! {
    #[test]
    fn arbitrary_bytes_in_arbitrary_chunks_never_panic_and_close_once(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let chunks = cut(&bytes, &cuts);
        let (events, _) = run(&chunks);
        assert_closed_once_and_last(&events);
        // Cut differently, the same bytes mean the same thing.
        prop_assert_eq!(run(&[bytes.as_slice()]).0, events);
    }

    #[test]
    fn valid_streams_mean_the_same_however_cut_even_with_a_corrupt_byte(
        frames in prop::collection::vec(arb_frame(), 0..25),
        cuts in prop::collection::vec(any::<usize>(), 0..30),
        corrupt in prop::option::of((any::<usize>(), any::<u8>())),
    ) {
        let mut bytes = wire(&frames);
        if let Some((at, value)) = corrupt {
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] = value;
            }
        }
        let whole = run(&[bytes.as_slice()]).0;
        assert_closed_once_and_last(&whole);
        prop_assert_eq!(run(&cut(&bytes, &cuts)).0, whole);
    }

    #[test]
    fn fuzz_driver_holds_its_invariants(
        script in prop::collection::vec(any::<u8>(), 0..800),
    ) {
        fuzzing::drive(Instant::now(), &script);
    }
}
