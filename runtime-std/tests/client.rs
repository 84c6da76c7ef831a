#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]
//! The blocking client against a real in-process server.

use std::time::Duration;

use chat_core::client::{ClientConfig, ClientEvent, CloseReason, UsageError};
use chat_core::{ErrorCode, Name, Reason, ServerConfig, Text};
use harness::Running;
use runtime_std::StdServer;
use runtime_std::client::{BlockingClient, ConnectError, SendError};

/// Long enough never to pass on a healthy run; every wait ends on an event.
const WAIT: Duration = Duration::from_secs(10);

fn server(config: ServerConfig) -> Running {
    harness::in_process::<StdServer>(config)
}

fn no_idle() -> ClientConfig {
    ClientConfig::without_idle_exit()
}

fn connect(server: &Running, name: &str) -> BlockingClient {
    BlockingClient::connect(server.addr, name, no_idle()).expect("connect")
}

fn n(name: &str) -> Name {
    Name::new(name).unwrap()
}

fn t(text: &str) -> Text {
    Text::new(text).unwrap()
}

/// The next event, which must come within `WAIT`.
fn next(client: &mut BlockingClient) -> ClientEvent {
    client
        .next_event(Some(WAIT))
        .expect("next_event")
        .expect("an event before the timeout")
}

#[test]
fn connect_registers_and_holds_the_roster() {
    let server = server(ServerConfig::default());
    let mut alice = connect(&server, "Alice");
    assert_eq!(alice.name().as_str(), "Alice");
    assert_eq!(alice.roster(), [n("alice")]);
    assert!(!alice.is_closed());

    let bob = connect(&server, "bob");
    assert_eq!(bob.roster(), [n("alice"), n("bob")]);
    assert_eq!(next(&mut alice), ClientEvent::Joined { name: n("bob") });
    assert_eq!(alice.roster(), [n("alice"), n("bob")]);
}

#[test]
fn a_taken_or_invalid_name_is_a_typed_error() {
    let server = server(ServerConfig::default());
    let _alice = connect(&server, "alice");
    match BlockingClient::connect(server.addr, "ALICE", no_idle()) {
        Err(ConnectError::NameTaken { .. }) => {}
        other => panic!("expected NameTaken, got {other:?}"),
    }
    match BlockingClient::connect(server.addr, "not valid", no_idle()) {
        Err(ConnectError::InvalidName(_)) => {}
        other => panic!("expected InvalidName, got {other:?}"),
    }
    // The name is free again once its owner left.
    _alice.quit().unwrap();
    connect(&server, "ALICE");
}

#[test]
fn an_unreachable_or_full_server_is_a_typed_error() {
    let server = server(ServerConfig {
        max_clients: 1,
        ..ServerConfig::default()
    });
    let _alice = connect(&server, "alice");
    match BlockingClient::connect(server.addr, "bob", no_idle()) {
        Err(ConnectError::Closed(CloseReason::ServerBye {
            reason: Reason::ServerFull,
            ..
        })) => {}
        other => panic!("expected server full, got {other:?}"),
    }

    // A port nobody listens on: bind one, then free it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    match BlockingClient::connect(addr, "bob", no_idle()) {
        Err(ConnectError::Io(_)) => {}
        other => panic!("expected an io error, got {other:?}"),
    }
}

#[test]
fn say_and_whisper_reach_the_others() {
    let server = server(ServerConfig::default());
    let mut alice = connect(&server, "alice");
    let mut bob = connect(&server, "bob");
    assert_eq!(next(&mut alice), ClientEvent::Joined { name: n("bob") });

    alice.say("hello ✓").unwrap();
    let message = ClientEvent::Message {
        from: n("alice"),
        text: t("hello ✓"),
    };
    assert_eq!(next(&mut alice), message, "the sender gets its own SAY");
    assert_eq!(next(&mut bob), message);

    bob.whisper("Alice", "psst").unwrap();
    assert_eq!(
        next(&mut bob),
        ClientEvent::PrivateSent {
            to: n("alice"),
            text: t("psst")
        }
    );
    assert_eq!(
        next(&mut alice),
        ClientEvent::Private {
            from: n("bob"),
            text: t("psst")
        }
    );

    // A whisper to nobody: the server says so, the connection stays.
    bob.whisper("carol", "anyone?").unwrap();
    assert!(matches!(next(&mut bob), ClientEvent::PrivateSent { .. }));
    assert!(matches!(
        next(&mut bob),
        ClientEvent::Error {
            code: ErrorCode::NoSuchUser,
            ..
        }
    ));

    // Bad input is refused locally and sends nothing.
    assert!(matches!(bob.say(""), Err(SendError::InvalidText(_))));
    assert!(matches!(
        bob.say("\x1b[31m"),
        Err(SendError::InvalidText(_))
    ));
    assert!(matches!(
        bob.whisper("no one", "hi"),
        Err(SendError::InvalidName(_))
    ));
    bob.say("still here").unwrap();
    assert_eq!(
        next(&mut alice),
        ClientEvent::Message {
            from: n("bob"),
            text: t("still here")
        }
    );
}

#[test]
fn who_answers_with_the_roster() {
    let server = server(ServerConfig::default());
    let mut alice = connect(&server, "alice");
    let _bob = connect(&server, "bob");
    assert_eq!(next(&mut alice), ClientEvent::Joined { name: n("bob") });
    alice.who().unwrap();
    assert_eq!(
        next(&mut alice),
        ClientEvent::Roster {
            names: vec![n("alice"), n("bob")]
        }
    );
}

#[test]
fn next_event_times_out_without_traffic() {
    let server = server(ServerConfig::default());
    let mut alice = connect(&server, "alice");
    assert_eq!(alice.next_event(Some(Duration::ZERO)).unwrap(), None);
    assert_eq!(
        alice.next_event(Some(Duration::from_millis(50))).unwrap(),
        None
    );
    assert!(!alice.is_closed());
}

#[test]
fn quit_is_seen_by_the_others_as_quit_and_a_drop_as_disconnected() {
    let server = server(ServerConfig::default());
    let mut alice = connect(&server, "alice");
    let bob = connect(&server, "bob");
    let carol = connect(&server, "carol");
    assert_eq!(next(&mut alice), ClientEvent::Joined { name: n("bob") });
    assert_eq!(next(&mut alice), ClientEvent::Joined { name: n("carol") });

    assert_eq!(bob.quit().unwrap(), Some(CloseReason::Quit));
    assert_eq!(
        next(&mut alice),
        ClientEvent::Left {
            name: n("bob"),
            reason: Reason::Quit
        }
    );
    drop(carol);
    assert_eq!(
        next(&mut alice),
        ClientEvent::Left {
            name: n("carol"),
            reason: Reason::Disconnected
        }
    );
    assert_eq!(alice.roster(), [n("alice")]);
}

#[test]
fn pings_are_answered_while_waiting() {
    // Without PONGs this server would drop an idle client after 300 ms.
    let server = server(ServerConfig {
        ping_interval: Duration::from_millis(50),
        idle_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    });
    let mut alice = connect(&server, "alice");
    assert_eq!(
        alice.next_event(Some(Duration::from_millis(1000))).unwrap(),
        None,
        "no BYE(TIMEOUT): every PING got its PONG"
    );
    alice.say("alive").unwrap();
    assert!(matches!(next(&mut alice), ClientEvent::Message { .. }));
}

#[test]
fn the_idle_exit_leaves_on_its_own() {
    let server = server(ServerConfig::default());
    let mut watcher = connect(&server, "watcher");
    let config = ClientConfig {
        idle_exit: Some(Duration::from_millis(100)),
        ..ClientConfig::default()
    };
    let mut sleepy = BlockingClient::connect(server.addr, "sleepy", config).unwrap();
    assert_eq!(next(&mut sleepy), ClientEvent::IdleExit);
    assert_eq!(
        next(&mut sleepy),
        ClientEvent::Closed {
            reason: CloseReason::Quit
        }
    );
    assert!(sleepy.is_closed());
    assert_eq!(
        sleepy.next_event(None).unwrap(),
        None,
        "nothing after Closed"
    );
    assert!(matches!(
        sleepy.say("too late"),
        Err(SendError::Usage(UsageError::Closed))
    ));
    assert_eq!(sleepy.quit().unwrap(), None);

    assert_eq!(
        next(&mut watcher),
        ClientEvent::Joined { name: n("sleepy") }
    );
    assert_eq!(
        next(&mut watcher),
        ClientEvent::Left {
            name: n("sleepy"),
            reason: Reason::Quit
        }
    );
}

#[test]
fn a_server_shutdown_ends_with_closed() {
    let server = server(ServerConfig::default());
    let mut alice = connect(&server, "alice");
    assert_eq!(server.stop(), 0);
    match next(&mut alice) {
        ClientEvent::Closed {
            reason:
                CloseReason::ServerBye {
                    reason: Reason::Shutdown,
                    ..
                },
        } => {}
        other => panic!("expected a shutdown, got {other:?}"),
    }
    assert_eq!(alice.next_event(None).unwrap(), None);
}

#[test]
fn over_tls_the_blocking_client_talks_and_refuses_a_certificate_for_another_name() {
    let server = harness::tls::in_process::<StdServer>(ServerConfig::default());
    let tls = runtime_common::tls::client_config(Some(&harness::tls::pki().cert)).unwrap();
    let addr = format!("localhost:{}", server.addr.port());
    let mut alice =
        BlockingClient::connect_tls(&addr, "alice", no_idle(), std::sync::Arc::clone(&tls))
            .expect("connect over TLS");
    alice.say("sealed").unwrap();
    assert_eq!(
        next(&mut alice),
        ClientEvent::Message {
            from: n("alice"),
            text: t("sealed")
        }
    );
    assert_eq!(alice.quit().unwrap(), Some(CloseReason::Quit));

    let by_ip = format!("127.0.0.1:{}", server.addr.port());
    match BlockingClient::connect_tls(&by_ip, "eve", no_idle(), tls) {
        Err(ConnectError::Tls(error)) => assert!(error.to_string().contains("certificate")),
        other => panic!("expected a TLS error, got {other:?}"),
    }
}
