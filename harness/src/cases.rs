//! The behaviour cases of the contract's sections 2 and 3.

use std::io::Write;
use std::time::Duration;

use chat_core::{ClientFrame, ErrorCode, Name, Reason, ServerConfig, ServerFrame, Text};

use crate::{Client, Received, Target};

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn text(s: &str) -> Text {
    Text::new(s).unwrap()
}

fn expect_error(client: &mut Client, code: ErrorCode) {
    match client.recv() {
        ServerFrame::Error { code: got, .. } => assert_eq!(got, code),
        other => panic!("expected ERROR {code:?}, got {other:?}"),
    }
}

fn expect_bye(client: &mut Client, reason: Reason) {
    match client.recv() {
        ServerFrame::Bye { reason: got, .. } => assert_eq!(got, reason),
        other => panic!("expected BYE {reason:?}, got {other:?}"),
    }
    client.expect_closed();
}

fn message(from: &str, s: &str) -> ServerFrame {
    ServerFrame::Message {
        from: name(from),
        text: text(s),
    }
}

fn left(who: &str, reason: Reason) -> ServerFrame {
    ServerFrame::Left {
        name: name(who),
        reason,
    }
}

/// A short quiet period for "nothing else arrives" checks.
const QUIET: Duration = Duration::from_millis(150);

pub fn registration_and_roster(target: &Target) {
    let server = target.start(ServerConfig::default());
    let (mut alice, roster) = Client::join(server.addr, "Alice");
    assert_eq!(roster, ["Alice"]);
    let (mut bob, roster) = Client::join(server.addr, "bob");
    assert_eq!(roster, ["Alice", "bob"]);
    assert_eq!(alice.recv(), ServerFrame::Joined { name: name("bob") });
    bob.expect_silence(QUIET);
    assert_eq!(server.stop(), 0);
}

pub fn names_taken_invalid_and_retry(target: &Target) {
    let server = target.start(ServerConfig::default());
    let (_alice, _) = Client::join(server.addr, "Alice");
    let mut other = Client::connect(server.addr);
    other.send(&ClientFrame::Hello {
        name: name("ALICE"),
    });
    expect_error(&mut other, ErrorCode::NameTaken);
    other.send_raw(b"\x00\x00\x00\x06\x01\x01\x03a b");
    expect_error(&mut other, ErrorCode::NameInvalid);
    assert_eq!(other.hello("alice2"), ["Alice", "alice2"]);
    other.send(&ClientFrame::Hello { name: name("zed") });
    expect_error(&mut other, ErrorCode::AlreadyRegistered);
}

pub fn requests_before_hello(target: &Target) {
    let server = target.start(ServerConfig::default());
    let mut c = Client::connect(server.addr);
    c.say("hi");
    expect_error(&mut c, ErrorCode::NotRegistered);
    c.send(&ClientFrame::Who);
    expect_error(&mut c, ErrorCode::NotRegistered);
    c.send(&ClientFrame::Whisper {
        to: name("x"),
        text: text("y"),
    });
    expect_error(&mut c, ErrorCode::NotRegistered);
}

pub fn public_and_private_messages(target: &Target) {
    let server = target.start(ServerConfig::default());
    let (mut a, _) = Client::join(server.addr, "a");
    let (mut b, _) = Client::join(server.addr, "b");
    let (mut c, _) = Client::join(server.addr, "c");
    a.recv();
    a.recv();
    b.recv();
    b.say("hello everyone");
    for client in [&mut a, &mut b, &mut c] {
        assert_eq!(client.recv(), message("b", "hello everyone"));
    }
    a.send(&ClientFrame::Whisper {
        to: name("C"),
        text: text("psst"),
    });
    assert_eq!(
        c.recv(),
        ServerFrame::Private {
            from: name("a"),
            text: text("psst")
        }
    );
    a.send(&ClientFrame::Whisper {
        to: name("nobody"),
        text: text("x"),
    });
    expect_error(&mut a, ErrorCode::NoSuchUser);
    b.expect_silence(QUIET);
}

pub fn who_and_ping(target: &Target) {
    let server = target.start(ServerConfig::default());
    let (mut a, _) = Client::join(server.addr, "a");
    let (_b, _) = Client::join(server.addr, "b");
    a.recv();
    a.send(&ClientFrame::Who);
    assert_eq!(a.roster(), ["a", "b"]);
    a.send(&ClientFrame::Ping {
        token: 0x0102_0304_0506_0708,
    });
    assert_eq!(
        a.recv(),
        ServerFrame::Pong {
            token: 0x0102_0304_0506_0708
        }
    );
}

pub fn bad_text_is_refused(target: &Target) {
    let server = target.start(ServerConfig::default());
    let (mut a, _) = Client::join(server.addr, "a");
    let (mut b, _) = Client::join(server.addr, "b");
    a.recv();
    b.send_raw(b"\x00\x00\x00\x04\x02a\x1bb");
    expect_error(&mut b, ErrorCode::BadText);
    b.send_raw(b"\x00\x00\x00\x03\x02\xff\xfe");
    expect_error(&mut b, ErrorCode::BadText);
    a.expect_silence(QUIET);
}

pub fn bytewise_and_pipelined(target: &Target) {
    let server = target.start(ServerConfig::default());
    let (mut watcher, _) = Client::join(server.addr, "w");
    let mut stream = ClientFrame::Hello {
        name: name("slowpoke"),
    }
    .to_bytes();
    stream.extend(ClientFrame::Say { text: text("one") }.to_bytes());
    stream.extend(ClientFrame::Say { text: text("two") }.to_bytes());
    let mut c = Client::connect(server.addr);
    for b in &stream {
        c.send_raw(std::slice::from_ref(b));
    }
    assert!(matches!(c.recv(), ServerFrame::Welcome { .. }));
    c.roster();
    assert_eq!(c.recv(), message("slowpoke", "one"));
    assert_eq!(c.recv(), message("slowpoke", "two"));
    assert_eq!(
        watcher.recv(),
        ServerFrame::Joined {
            name: name("slowpoke")
        }
    );
    assert_eq!(watcher.recv(), message("slowpoke", "one"));
    // Pipelined in one write: HELLO and SAY are processed in order.
    let mut d = Client::connect(server.addr);
    let mut both = ClientFrame::Hello {
        name: name("quick"),
    }
    .to_bytes();
    both.extend(ClientFrame::Say { text: text("fast") }.to_bytes());
    d.send_raw(&both);
    assert!(matches!(d.recv(), ServerFrame::Welcome { .. }));
    d.roster();
    assert_eq!(d.recv(), message("quick", "fast"));
}

pub fn protocol_errors_are_fatal(target: &Target) {
    let server = target.start(ServerConfig::default());
    let (mut watcher, _) = Client::join(server.addr, "w");
    let cases: &[&[u8]] = &[
        b"\x00\x00\x00\x00",
        b"\x00\x00\x40\x01",
        b"\x00\x00\x00\x01\x42",
        b"\x00\x00\x00\x01\x81",
        b"\x00\x00\x00\x02\x04\x00",
        b"\x00\x00\x00\x04\x01\x02\x01a",
        b"\x00\x00\x00\x04\x01\x01\x05a",
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let mut c = Client::connect(server.addr);
        let who = format!("victim{i}");
        c.hello(&who);
        assert_eq!(watcher.recv(), ServerFrame::Joined { name: name(&who) });
        c.send_raw(bytes);
        match c.recv() {
            ServerFrame::Bye {
                reason: Reason::ProtocolError,
                detail,
            } => {
                assert!(!detail.is_empty(), "case {i}: the detail explains")
            }
            other => panic!("case {i}: {other:?}"),
        }
        c.expect_closed();
        assert_eq!(
            watcher.recv(),
            left(&who, Reason::ProtocolError),
            "case {i}"
        );
    }
}

pub fn leaving_by_bye_eof_and_reset(target: &Target) {
    let server = target.start(ServerConfig::default());
    let (mut watcher, _) = Client::join(server.addr, "w");
    let (mut quitter, _) = Client::join(server.addr, "quitter");
    quitter.send(&ClientFrame::Bye);
    expect_bye(&mut quitter, Reason::Quit);
    let (mut half, _) = Client::join(server.addr, "half");
    half.send_raw(b"\x00\x00\x00\x09\x02hal"); // then end mid-frame
    half.stream.shutdown(std::net::Shutdown::Write).unwrap();
    half.expect_closed();
    let (reset, _) = Client::join(server.addr, "reset");
    reset.reset();
    let mut seen = Vec::new();
    while seen.len() < 6 {
        seen.push(watcher.recv());
    }
    assert_eq!(
        seen,
        [
            ServerFrame::Joined {
                name: name("quitter")
            },
            left("quitter", Reason::Quit),
            ServerFrame::Joined { name: name("half") },
            left("half", Reason::Disconnected),
            ServerFrame::Joined {
                name: name("reset")
            },
            left("reset", Reason::Disconnected),
        ]
    );
    watcher.expect_silence(QUIET);
    // Names are free again.
    Client::join(server.addr, "quitter");
}

/// `printf … | nc -N`: requests, then the end of the client's half of the
/// stream at once. The answers still come, then a clean end of stream.
pub fn a_half_closed_client_gets_its_answers(target: &Target) {
    let server = target.start(ServerConfig::default());
    let (mut watcher, _) = Client::join(server.addr, "w");
    let mut half = Client::connect(server.addr);
    let mut requests = ClientFrame::Hello { name: name("half") }.to_bytes();
    requests.extend(ClientFrame::Who.to_bytes());
    requests.extend(
        ClientFrame::Say {
            text: text("bye now"),
        }
        .to_bytes(),
    );
    half.send_raw(&requests);
    half.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut frames = Vec::new();
    while let Received::Frame(frame) = half.receive() {
        frames.push(frame);
    }
    assert!(!half.cut, "a clean end of stream, not a reset: {frames:?}");
    assert_eq!(
        frames.first(),
        Some(&ServerFrame::Welcome { name: name("half") })
    );
    assert_eq!(
        frames.last(),
        Some(&message("half", "bye now")),
        "{frames:?}"
    );
    let rosters = frames
        .iter()
        .filter(|f| matches!(f, ServerFrame::Users { last: true, .. }))
        .count();
    assert_eq!(rosters, 2, "WELCOME's roster and WHO's: {frames:?}");
    assert_eq!(
        [watcher.recv(), watcher.recv(), watcher.recv()],
        [
            ServerFrame::Joined { name: name("half") },
            message("half", "bye now"),
            left("half", Reason::Disconnected),
        ]
    );
}

pub fn handshake_timeout(target: &Target) {
    let server = target.start(ServerConfig {
        handshake_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    });
    let connected = std::time::Instant::now();
    let mut c = Client::connect(server.addr);
    c.send(&ClientFrame::Ping { token: 1 });
    assert_eq!(c.recv(), ServerFrame::Pong { token: 1 });
    expect_bye(&mut c, Reason::Timeout);
    // The configured 300 ms, not the default 10 s.
    let waited = connected.elapsed();
    assert!(
        (Duration::from_millis(250)..Duration::from_secs(3)).contains(&waited),
        "handshake timeout after {waited:?}"
    );
}

pub fn ping_then_idle_timeout(target: &Target) {
    let server = target.start(ServerConfig {
        ping_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(700),
        ..ServerConfig::default()
    });
    let (mut watcher, _) = Client::join(server.addr, "w");
    let (mut sleepy, _) = Client::join(server.addr, "sleepy");
    assert_eq!(
        watcher.recv(),
        ServerFrame::Joined {
            name: name("sleepy")
        }
    );
    // The watcher answers every PING on its own thread, so it stays.
    let watcher = std::thread::spawn(move || {
        loop {
            match watcher.recv() {
                ServerFrame::Ping { token } => watcher.send(&ClientFrame::Pong { token }),
                frame => return frame,
            }
        }
    });
    // Sleepy never answers: PINGs each interval of silence, then BYE(TIMEOUT).
    let mut sleepy_pings = 0;
    loop {
        match sleepy.receive() {
            Received::Frame(ServerFrame::Ping { .. }) => sleepy_pings += 1,
            Received::Frame(ServerFrame::Bye { reason, .. }) => {
                assert_eq!(reason, Reason::Timeout);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(sleepy_pings >= 2, "pings repeat each interval of silence");
    sleepy.expect_closed();
    assert_eq!(watcher.join().unwrap(), left("sleepy", Reason::Timeout));
}

pub fn max_clients(target: &Target) {
    let server = target.start(ServerConfig {
        max_clients: 2,
        ..ServerConfig::default()
    });
    let (a, _) = Client::join(server.addr, "a");
    let (mut watcher, _) = Client::join(server.addr, "watcher");
    let mut third = Client::connect(server.addr);
    expect_bye(&mut third, Reason::ServerFull);
    drop(a);
    // The server frees a's place in the same step in which it tells the
    // others a left: once the watcher has the LEFT, a newcomer must get in.
    assert_eq!(watcher.recv(), left("a", Reason::Disconnected));
    let mut c = Client::connect(server.addr);
    c.send(&ClientFrame::Hello { name: name("c") });
    assert!(
        matches!(c.recv(), ServerFrame::Welcome { .. }),
        "a freed place is given to the next client"
    );
}

/// Reads frames on its own thread until `count` MESSAGEs arrived; returns
/// their texts in order and every other frame seen.
fn read_messages(
    mut client: Client,
    count: usize,
) -> std::thread::JoinHandle<(Vec<String>, Vec<ServerFrame>)> {
    std::thread::spawn(move || {
        let mut texts = Vec::with_capacity(count);
        let mut others = Vec::new();
        while texts.len() < count {
            match client.recv() {
                ServerFrame::Message { text, .. } => texts.push(text.as_str().to_owned()),
                frame => others.push(frame),
            }
        }
        (texts, others)
    })
}

/// `count` texts of `len` bytes (at least 5), each starting with its number.
fn numbered_texts(count: usize, len: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{i:05}{}", "x".repeat(len.saturating_sub(5))))
        .collect()
}

/// Writes `texts` as SAYs through a second handle on `client`'s socket,
/// `per_write` frames to a write, as fast as the server takes them, on a
/// thread of its own (the caller reads).
fn say_at_full_speed(
    client: &Client,
    texts: &[String],
    per_write: usize,
) -> std::thread::JoinHandle<()> {
    let mut stream = client.writer();
    let writes: Vec<Vec<u8>> = texts
        .chunks(per_write.max(1))
        .map(|chunk| {
            chunk
                .iter()
                .flat_map(|t| ClientFrame::Say { text: text(t) }.to_bytes())
                .collect()
        })
        .collect();
    std::thread::spawn(move || {
        for bytes in writes {
            stream.write_all(&bytes).unwrap();
        }
    })
}

/// A reader that shrinks its receive buffer and never reads.
fn stall(client: &Client) {
    socket2::SockRef::from(&client.stream)
        .set_recv_buffer_size(4096)
        .unwrap();
}

/// The congestion issue's first scenario, end to end: a 64 KiB limit, a
/// sender writing 16 texts of 4,000 bytes per write at full speed (one read
/// fans out to more than the limit), one reader that never reads and one
/// that reads everything. Only the stalled one is dropped, exactly once.
pub fn one_burst_over_the_limit_drops_only_the_stalled_reader(target: &Target) {
    let server = target.start(ServerConfig {
        max_outbound: 64 * 1024,
        ..ServerConfig::default()
    });
    let (sloth, _) = Client::join(server.addr, "sloth");
    let (mut flood, _) = Client::join(server.addr, "flood");
    let (third, _) = Client::join(server.addr, "third");
    stall(&sloth);
    assert_eq!(
        flood.recv(),
        ServerFrame::Joined {
            name: name("third")
        }
    );
    let count = 150 * 16;
    let texts = numbered_texts(count, 4000);
    let writer = say_at_full_speed(&flood, &texts, 16);
    let echoes = read_messages(flood, count);
    let (got, others) = read_messages(third, count).join().unwrap();
    assert!(got == texts, "third received every message, in order");
    assert_eq!(
        others,
        [left("sloth", Reason::SlowConsumer)],
        "one LEFT, for the sloth only"
    );
    let (echoed, others) = echoes.join().unwrap();
    assert!(echoed == texts, "the flooder received every echo, in order");
    assert_eq!(others, [left("sloth", Reason::SlowConsumer)]);
    writer.join().unwrap();
}

/// Readers that read are not starved among many that never do (the
/// congestion issue's second scenario, scaled to the test machine): the
/// stalled are dropped after the grace, the readers get everything.
pub fn readers_among_many_stalled(target: &Target) {
    let server = target.start(ServerConfig {
        max_outbound: 64 * 1024,
        ..ServerConfig::default()
    });
    let stalled: Vec<Client> = (0..40)
        .map(|i| {
            let (c, _) = Client::join(server.addr, &format!("idle{i}"));
            stall(&c);
            c
        })
        .collect();
    let (mut sender, _) = Client::join(server.addr, "sender");
    let (observer, _) = Client::join(server.addr, "observer");
    assert_eq!(
        sender.recv(),
        ServerFrame::Joined {
            name: name("observer")
        }
    );
    let count = 20_000;
    let texts = numbered_texts(count, 200);
    let writer = say_at_full_speed(&sender, &texts, count);
    let echoes = read_messages(sender, count);
    let (got, others) = read_messages(observer, count).join().unwrap();
    assert!(
        got == texts,
        "the observer received every message, in order"
    );
    let (echoed, _) = echoes.join().unwrap();
    assert!(echoed == texts, "the sender received every echo, in order");
    writer.join().unwrap();
    let mut dropped: Vec<String> = others
        .iter()
        .map(|f| match f {
            ServerFrame::Left {
                name,
                reason: Reason::SlowConsumer,
            } => name.as_str().to_owned(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    dropped.sort();
    let mut expected: Vec<String> = (0..40).map(|i| format!("idle{i}")).collect();
    expected.sort();
    assert_eq!(
        dropped, expected,
        "every stalled reader dropped exactly once"
    );
    drop(stalled);
}

pub fn pipelining_client_is_slowed(target: &Target) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let server = target.start(ServerConfig {
        max_outbound: 16 * 1024,
        ..ServerConfig::default()
    });
    let (mut c, _) = Client::join(server.addr, "asker");
    // A small send buffer on our side, so that the kernel cannot hide much
    // (a tiny receive buffer would only add zero-window stalls).
    socket2::SockRef::from(&c.stream)
        .set_send_buffer_size(4096)
        .unwrap();
    // 800,000 PINGs (13.6 MB, more than every buffer on the way can hold)
    // written without reading a single answer.
    const PINGS: u64 = 800_000;
    let pings: Vec<u8> = (0..PINGS)
        .flat_map(|t| ClientFrame::Ping { token: t }.to_bytes())
        .collect();
    let total = pings.len();
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let mut stream = c.writer();
        let written = Arc::clone(&written);
        std::thread::spawn(move || {
            for chunk in pings.chunks(64 * 1024) {
                stream.write_all(chunk).unwrap();
                written.fetch_add(chunk.len(), Ordering::SeqCst);
            }
        })
    };
    // A server that kept reading would take all of it. Nothing signals "the
    // server has stopped reading", so give it a second and look.
    std::thread::sleep(Duration::from_secs(1));
    let stalled_at = written.load(Ordering::SeqCst);
    assert!(
        stalled_at < total,
        "the server read all {total} bytes while the client read nothing"
    );
    // Now read: every answer arrives, in order, and the client is not dropped.
    for expected in 0..PINGS {
        assert_eq!(c.recv(), ServerFrame::Pong { token: expected });
    }
    writer.join().unwrap();
}

pub fn shutdown_says_bye(target: &Target) {
    for signal in ["TERM", "INT"] {
        let server = target.start(ServerConfig::default());
        let (mut a, _) = Client::join(server.addr, "a");
        let mut b = Client::connect(server.addr);
        assert_eq!(server.stop_with(signal), 0, "exit status after SIG{signal}");
        expect_bye(&mut a, Reason::Shutdown);
        expect_bye(&mut b, Reason::Shutdown);
        if !target.is_binary() {
            break; // in-process there is no signal to vary
        }
    }
}

pub fn many_clients_receive_a_broadcast(target: &Target) {
    broadcast_to(target, 1000);
}

/// `count` registered clients all receive one broadcast.
pub fn broadcast_to(target: &Target, count: usize) {
    let _alone = crate::hardening::exclusive();
    crate::raise_fd_limit();
    // Both ends of every connection live in this process when the server
    // runs in-process; a binary server has its own descriptors.
    let per_client = if target.is_binary() { 1 } else { 2 };
    let count = crate::scaled_to_descriptors(count, per_client);
    let server = target.start(ServerConfig {
        max_clients: count + 16,
        ..ServerConfig::default()
    });
    let mut clients = Vec::with_capacity(count);
    for i in 0..count {
        let mut c = Client::connect(server.addr);
        c.send(&ClientFrame::Hello {
            name: name(&format!("u{i}")),
        });
        clients.push(c);
    }
    for c in &mut clients {
        assert!(matches!(c.recv(), ServerFrame::Welcome { .. }));
    }
    clients[0].say("to all");
    for (i, c) in clients.iter_mut().enumerate() {
        loop {
            match c.recv() {
                ServerFrame::Message { from, text } => {
                    assert_eq!(
                        (from.as_str(), text.as_str()),
                        ("u0", "to all"),
                        "client {i}"
                    );
                    break;
                }
                ServerFrame::Users { .. } | ServerFrame::Joined { .. } => {}
                other => panic!("client {i}: {other:?}"),
            }
        }
    }
}

/// The server's command line (binaries only): bad flags and settings that
/// cannot work exit 2 with a message, an address in use exits 1, and
/// `--version` names the program itself.
pub fn command_line(path: &str, program: &str) {
    let run = |args: &[&str]| crate::run_binary(path, args);
    for bad in [
        &["--bogus"][..],
        &["--max-clients", "0"],
        &["--max-outbound", "0"],
        &["--ping-interval", "1e-10"],
        &["--idle-timeout", "0.0001"],
        &["--handshake-timeout", "-1"],
        &["--max-clients", "many"],
        &["--listen", "nonsense"],
        &["--listen", "127.0.0.1"],
        &["--listen", ":0"],
        &["--listen", "127.0.0.1:70000"],
        &["--irc-listen", "127.0.0.1:port"],
    ] {
        let out = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(out.stdout.is_empty(), "{bad:?}: nothing on stdout");
        assert!(!out.stderr.is_empty(), "{bad:?}: the reason on stderr");
    }
    // An address in use (held by a running server): exit 1.
    let server = crate::spawn_binary(path, &ServerConfig::default());
    let addr = server.addr.to_string();
    let out = run(&["--listen", &addr]);
    assert_eq!(out.status.code(), Some(1), "binding {addr} twice");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot bind"));
    // Well formed, but nothing to bind: exit 1 too.
    let out = run(&["--listen", "no-such-host.invalid:7878"]);
    assert_eq!(out.status.code(), Some(1), "an unknown host");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot bind"));
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(version.starts_with(&format!("{program} ")), "{version}");
    server.stop();
}
