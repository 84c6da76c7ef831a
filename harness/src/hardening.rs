//! Abuse, exhaustion and fault cases, run against the server binaries (they
//! read the server's memory, descriptors and CPU time from `/proc`, and one
//! starts it under `prlimit`). Each case asserts what honest users still get,
//! not only that the server survives.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use chat_core::{ClientFrame, Reason, ServerConfig, ServerFrame, Text};

use crate::{Client, PATIENCE, Received, Running, proc, spawn_binary, spawn_binary_with};

fn say_bytes(text: &str) -> Vec<u8> {
    ClientFrame::Say {
        text: Text::new(text).unwrap(),
    }
    .to_bytes()
}

fn pid(server: &mut Running) -> u32 {
    server.process().expect("a server process").id()
}

/// Waits until `condition` holds, checking every 20 ms, for at most
/// [`PATIENCE`]. For facts only observable by polling (`/proc` counters).
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Reads everything `client` receives until `done` says so, on a thread.
fn collect(
    mut client: Client,
    mut done: impl FnMut(&ServerFrame) -> bool + Send + 'static,
) -> thread::JoinHandle<Vec<(Instant, ServerFrame)>> {
    thread::spawn(move || {
        let mut frames = Vec::new();
        loop {
            let frame = client.recv();
            let stop = done(&frame);
            frames.push((Instant::now(), frame));
            if stop {
                return frames;
            }
        }
    })
}

/// Latency bound for honest users while one client floods.
pub const FLOOD_LATENCY_BOUND: Duration = Duration::from_secs(1);

/// One client floods SAYs as fast as it can for two seconds while ten others
/// chat at a normal rate: every honest message reaches every honest user, in
/// order, within [`FLOOD_LATENCY_BOUND`].
pub fn flood_fairness(path: &'static str) {
    const HONEST: usize = 10;
    const EACH: usize = 20;
    let server = spawn_binary(path, &ServerConfig::default());
    let base = Instant::now();
    let (flooder, _) = Client::join(server.addr, "flooder");
    let honest: Vec<Client> = (0..HONEST)
        .map(|i| Client::join(server.addr, &format!("h{i}")).0)
        .collect();
    // The flooder reads everything it is sent (it is served), on its own thread.
    let flooding = Arc::new(AtomicBool::new(true));
    let flood_writer = {
        let mut stream = flooder.writer();
        let flooding = Arc::clone(&flooding);
        let batch: Vec<u8> = (0..500).flat_map(|_| say_bytes(&"f".repeat(100))).collect();
        thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(2) {
                if stream.write_all(&batch).is_err() {
                    break;
                }
            }
            flooding.store(false, Ordering::SeqCst);
        })
    };
    let flood_reader = {
        let mut flooder = flooder;
        let flooding = Arc::clone(&flooding);
        thread::spawn(move || {
            while flooding.load(Ordering::SeqCst)
                || flooder.next_within(Duration::from_millis(300)).is_some()
            {
                let _ = flooder.next_within(Duration::from_millis(50));
            }
        })
    };
    let chatters: Vec<_> = honest
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            thread::spawn(move || {
                // (sender, seq) -> latency, in arrival order per sender.
                let mut seen: BTreeMap<usize, Vec<(usize, Duration)>> = BTreeMap::new();
                let mut sent = 0;
                let mut next_send = Instant::now();
                let deadline = Instant::now() + PATIENCE * 2;
                while seen.values().map(Vec::len).sum::<usize>() < HONEST * EACH {
                    assert!(Instant::now() < deadline, "h{i} did not get every message");
                    if sent < EACH && Instant::now() >= next_send {
                        let micros = base.elapsed().as_micros();
                        client.say(&format!("h {i} {sent} {micros}"));
                        sent += 1;
                        next_send += Duration::from_millis(50);
                    }
                    let frame = match client.next_within(Duration::from_millis(5)) {
                        Some(Received::Frame(frame)) => frame,
                        Some(Received::Closed) => panic!("h{i} was disconnected"),
                        None => continue,
                    };
                    if let ServerFrame::Left { name, reason } = &frame {
                        panic!("h{i}: {name} left ({reason:?})");
                    }
                    if let ServerFrame::Message { text, .. } = frame {
                        let parts: Vec<&str> = text.as_str().split(' ').collect();
                        if let ["h", from, seq, micros] = parts[..] {
                            let sent_at = Duration::from_micros(micros.parse().unwrap());
                            let latency = base.elapsed().saturating_sub(sent_at);
                            seen.entry(from.parse().unwrap())
                                .or_default()
                                .push((seq.parse().unwrap(), latency));
                        }
                    }
                }
                seen
            })
        })
        .collect();
    for (i, chatter) in chatters.into_iter().enumerate() {
        let seen = chatter.join().unwrap();
        for (from, messages) in seen {
            let seqs: Vec<usize> = messages.iter().map(|(seq, _)| *seq).collect();
            assert_eq!(
                seqs,
                (0..EACH).collect::<Vec<_>>(),
                "h{i} from h{from}: in order, none lost"
            );
            let worst = messages.iter().map(|(_, l)| *l).max().unwrap();
            assert!(
                worst <= FLOOD_LATENCY_BOUND,
                "h{i} from h{from}: latency {worst:?}"
            );
        }
    }
    flood_writer.join().unwrap();
    flood_reader.join().unwrap();
}

/// The output limit of [`slow_consumers_at_scale`].
pub const SCALE_MAX_OUTBOUND: usize = 1 << 20;

/// Peak server RSS allowed above its idle size while 100 clients stall: the
/// shared feed (one limit), a few limits' worth of in-flight buffers, and a
/// small constant per connection, never one limit per stalled reader (which
/// alone would be 100 MiB).
pub const SLOW_CONSUMERS_RSS_BOUND_KIB: u64 =
    4 * (SCALE_MAX_OUTBOUND as u64 / 1024) + 102 * 64 + 8 * 1024;

/// 100 clients stop reading while a sender pipelines at full speed (no
/// pacing by the test) to a fast reader and three slow readers that still
/// read: all 100 are dropped with exactly one LEFT(SLOW_CONSUMER) each, every
/// reader gets every message in order and is never dropped, and the server's
/// peak memory stays under [`SLOW_CONSUMERS_RSS_BOUND_KIB`] above idle.
pub fn slow_consumers_at_scale(path: &'static str) {
    const STALLED: usize = 100;
    const MESSAGES: usize = 6000;
    let mut server = spawn_binary(
        path,
        &ServerConfig {
            max_outbound: SCALE_MAX_OUTBOUND,
            ..ServerConfig::default()
        },
    );
    let pid = pid(&mut server);
    let idle_rss = proc::peak_rss_kib(pid);
    let (sender, _) = Client::join(server.addr, "sender");
    let mut readers = Vec::new();
    for i in 0..4 {
        let (client, _) = Client::join(server.addr, &format!("reader{i}"));
        readers.push(client);
    }
    let mut stalled = Vec::new();
    for i in 0..STALLED {
        let (client, _) = Client::join(server.addr, &format!("stalled{i}"));
        socket2::SockRef::from(&client.stream)
            .set_recv_buffer_size(4096)
            .unwrap();
        stalled.push(client);
    }
    let texts: Vec<String> = (0..MESSAGES)
        .map(|i| format!("{i:05}{}", "x".repeat(995)))
        .collect();
    // Reader 0 reads at full speed; readers 1-3 take a pause after each
    // message, so they are slower than the sender but never stop.
    let handles: Vec<_> = readers
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            thread::spawn(move || {
                let (mut texts, mut dropped) = (Vec::new(), Vec::new());
                while texts.len() < MESSAGES {
                    match client.recv() {
                        ServerFrame::Message { text, .. } => texts.push(text.as_str().to_owned()),
                        ServerFrame::Left { name, reason } => {
                            dropped.push((name.as_str().to_owned(), reason))
                        }
                        ServerFrame::Joined { .. } => {}
                        other => panic!("reader got {other:?}"),
                    }
                    if i > 0 && texts.len() % 8 == 0 {
                        thread::sleep(Duration::from_micros(500 * i as u64));
                    }
                }
                (texts, dropped)
            })
        })
        .collect();
    let echoes = thread::spawn(move || {
        let mut sender = sender;
        let mut stream = sender.writer();
        let writer = thread::spawn(move || {
            let all: Vec<u8> = (0..MESSAGES)
                .flat_map(|i| say_bytes(&format!("{i:05}{}", "x".repeat(995))))
                .collect();
            stream.write_all(&all).unwrap();
        });
        let mut echoed = 0;
        while echoed < MESSAGES {
            if let ServerFrame::Message { .. } = sender.recv() {
                echoed += 1;
            }
        }
        writer.join().unwrap();
        echoed
    });
    for handle in handles {
        let (got, dropped) = handle.join().unwrap();
        assert!(got == texts, "a reader missed or reordered messages");
        let mut names: Vec<&str> = dropped
            .iter()
            .map(|(name, reason)| {
                assert_eq!(*reason, Reason::SlowConsumer, "{name}");
                name.as_str()
            })
            .collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a LEFT twice");
        assert!(names.iter().all(|n| n.starts_with("stalled")), "{names:?}");
    }
    assert_eq!(echoes.join().unwrap(), MESSAGES);
    let peak = proc::peak_rss_kib(pid).saturating_sub(idle_rss);
    assert!(
        peak < SLOW_CONSUMERS_RSS_BOUND_KIB,
        "peak RSS {peak} KiB above idle (bound {SLOW_CONSUMERS_RSS_BOUND_KIB} KiB)"
    );
    eprintln!("slow_consumers_at_scale: peak RSS {peak} KiB above idle");
    // Every stalled client is dropped (after its grace) and told nothing more.
    for client in &mut stalled {
        socket2::SockRef::from(&client.stream)
            .set_recv_buffer_size(1 << 20)
            .unwrap();
    }
    for mut client in stalled {
        loop {
            match client.receive() {
                Received::Closed => break,
                Received::Frame(_) => {}
            }
        }
    }
}

/// 1,000 connections (fewer under a low descriptor limit) that send half a
/// header fill every place: a newcomer is refused, a registered client chats
/// throughout, every staller is closed by the handshake timeout, and then
/// honest users get in at once.
pub fn slowloris(path: &'static str) {
    crate::raise_fd_limit();
    // The server holds one descriptor per staller, and so does this test.
    let stallers_wanted = crate::scaled_to_descriptors(1000, 1);
    let server = spawn_binary(
        path,
        &ServerConfig {
            handshake_timeout: Duration::from_secs(1),
            max_clients: stallers_wanted + 1,
            ..ServerConfig::default()
        },
    );
    let (mut normal, _) = Client::join(server.addr, "normal");
    let mut stallers: Vec<Client> = (0..stallers_wanted)
        .map(|_| {
            let mut c = Client::connect(server.addr);
            c.send_raw(&[0, 0]);
            c
        })
        .collect();
    // Every place is taken: a newcomer is refused, the registered user talks on.
    let mut late = Client::connect(server.addr);
    match late.recv() {
        ServerFrame::Bye {
            reason: Reason::ServerFull,
            ..
        } => late.expect_closed(),
        other => panic!("a newcomer to a full server got {other:?}"),
    }
    for i in 0..10 {
        normal.say(&format!("still talking {i}"));
        match normal.recv() {
            ServerFrame::Message { text, .. } => {
                assert_eq!(text.as_str(), format!("still talking {i}"))
            }
            other => panic!("{other:?}"),
        }
    }
    for (i, c) in stallers.iter_mut().enumerate() {
        match c.recv() {
            ServerFrame::Bye {
                reason: Reason::Timeout,
                ..
            } => c.expect_closed(),
            other => panic!("staller {i}: {other:?}"),
        }
    }
    // The server frees a place when the staller's BYE is flushed: once all
    // the BYEs have arrived, honest users get in at the first try.
    for i in 0..10 {
        Client::join(server.addr, &format!("honest{i}"));
    }
    // The normal client stays (its handshake succeeded).
    normal.send(&ClientFrame::Ping { token: 7 });
    loop {
        match normal.recv() {
            ServerFrame::Pong { token: 7 } => break,
            ServerFrame::Joined { .. } | ServerFrame::Left { .. } => {}
            other => panic!("{other:?}"),
        }
    }
}

/// CPU time the server may burn in two seconds while it cannot accept.
pub const EXHAUSTED_CPU_BOUND: Duration = Duration::from_millis(300);

/// Run with 64 descriptors and offered far more connections: registered
/// clients keep chatting, the server does not spin (under
/// [`EXHAUSTED_CPU_BOUND`] over two seconds), and it accepts again once
/// connections go away.
pub fn descriptor_exhaustion(path: &'static str) {
    let mut server = spawn_binary_with(
        &["prlimit", "--nofile=64:64", "--"],
        path,
        &ServerConfig::default(),
    );
    let pid = pid(&mut server);
    let (mut a, _) = Client::join(server.addr, "a");
    let (mut b, _) = Client::join(server.addr, "b");
    a.recv();
    // Far more connections than descriptors: the kernel completes them; the
    // server accepts what it can.
    let extra: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    eventually("the server runs out of descriptors", || {
        proc::fd_count(pid) >= 60
    });
    a.say("still here");
    assert!(matches!(b.recv(), ServerFrame::Message { .. }));
    assert!(matches!(a.recv(), ServerFrame::Message { .. }));
    let cpu_before = proc::cpu_time(pid);
    // The measurement window itself: what the server burns while exhausted.
    thread::sleep(Duration::from_secs(2));
    let burned = proc::cpu_time(pid).saturating_sub(cpu_before);
    assert!(
        burned < EXHAUSTED_CPU_BOUND,
        "server burned {burned:?} while out of descriptors"
    );
    b.say("and here");
    assert!(matches!(a.recv(), ServerFrame::Message { .. }));
    drop(extra);
    // Accepting again: a newcomer registers (the backlog drains first).
    let (mut c, roster) = Client::join(server.addr, "c");
    assert_eq!(roster, ["a", "b", "c"]);
    c.say("hello again");
    assert!(matches!(c.recv(), ServerFrame::Message { .. }));
    // And it stays accepting: a connection that arrives once the backlog is
    // drained is taken too (a listener re-armed for one event only would
    // let `c` in and nobody after it).
    let (_d, roster) = Client::join(server.addr, "d");
    assert_eq!(roster, ["a", "b", "c", "d"]);
}

/// Connections killed mid-frame, reset with SO_LINGER 0, or half-closed: each
/// produces exactly one LEFT(DISCONNECTED), and the server's descriptors come
/// back to where they were.
pub fn abrupt_endings(path: &'static str) {
    const EACH: usize = 10;
    let mut server = spawn_binary(path, &ServerConfig::default());
    let pid = pid(&mut server);
    // The watcher's WELCOME and roster mean its connection is set up: the
    // descriptor count is settled.
    let (watcher, _) = Client::join(server.addr, "watcher");
    let baseline = proc::fd_count(pid);
    let expected = 3 * EACH;
    let mut left = 0;
    let watcher = collect(watcher, move |frame| {
        if matches!(frame, ServerFrame::Left { .. }) {
            left += 1;
        }
        left == expected
    });
    for i in 0..EACH {
        let (mut killed, _) = Client::join(server.addr, &format!("killed{i}"));
        killed.send_raw(b"\x00\x00\x00\x20\x02half a fr");
        drop(killed); // like a killed process: the kernel sends FIN
        let (reset, _) = Client::join(server.addr, &format!("reset{i}"));
        reset.reset();
        let (half, _) = Client::join(server.addr, &format!("half{i}"));
        half.stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut half = half;
        // It may still hear about earlier departures before its own close.
        while let Received::Frame(frame) = half.receive() {
            assert!(matches!(frame, ServerFrame::Left { .. }), "{frame:?}");
        }
    }
    let frames = watcher.join().unwrap();
    let mut departures = BTreeMap::new();
    for (_, frame) in frames {
        if let ServerFrame::Left { name, reason } = frame {
            assert_eq!(reason, Reason::Disconnected, "{name}");
            *departures.entry(name.as_str().to_owned()).or_insert(0) += 1;
        }
    }
    assert_eq!(departures.len(), expected);
    assert!(departures.values().all(|&n| n == 1), "{departures:?}");
    eventually("descriptors back to the baseline", || {
        proc::fd_count(pid) <= baseline
    });
}

/// A small deterministic generator for garbage.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Thousands of connections sending seeded random bytes, and frames of every
/// malformed shape, while two honest users chat and see nothing wrong.
pub fn garbage(path: &'static str) {
    const CONNECTIONS: usize = 2000;
    let server = spawn_binary(
        path,
        &ServerConfig {
            handshake_timeout: Duration::from_secs(2),
            ..ServerConfig::default()
        },
    );
    let (mut a, _) = Client::join(server.addr, "honest-a");
    let (b, _) = Client::join(server.addr, "honest-b");
    a.recv();
    let talk = 200;
    let listener = collect(b, {
        let mut got = 0;
        move |frame| {
            match frame {
                ServerFrame::Message { from, text } => {
                    assert_eq!(from.as_str(), "honest-a");
                    assert_eq!(text.as_str(), format!("msg {got}"), "in order, none lost");
                    got += 1;
                }
                // Random bytes could, in theory, register someone.
                ServerFrame::Joined { .. } | ServerFrame::Left { .. } => {}
                other => panic!("honest user saw {other:?}"),
            }
            got == talk
        }
    });
    let addr = server.addr;
    let garbage = thread::spawn(move || {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let shapes: &[&[u8]] = &[
            b"\x00\x00\x00\x00",
            b"\xff\xff\xff\xff",
            b"\x00\x00\x00\x01\x42",
            b"\x00\x00\x00\x03\x81\x01\x00",
            b"\x00\x00\x00\x04\x01\x02\x01a",
            b"\x00\x00\x00\x02\x07\x00",
        ];
        for batch in 0..CONNECTIONS / 200 {
            let mut clients = Vec::new();
            for i in 0..200 {
                let mut c = Client::connect(addr);
                if i % 4 == 0 {
                    c.send_raw(shapes[(batch + i) % shapes.len()]);
                } else {
                    let bytes: Vec<u8> = (0..64).map(|_| rng.next() as u8).collect();
                    c.send_raw(&bytes);
                }
                clients.push(c);
            }
            for mut c in clients {
                // Each garbage connection is closed: at once, or by the
                // handshake timeout when its bytes look like a partial frame.
                loop {
                    match c.receive() {
                        Received::Closed => break,
                        Received::Frame(_) => {}
                    }
                }
            }
        }
    });
    for i in 0..talk {
        a.say(&format!("msg {i}"));
        if i % 20 == 0 {
            thread::sleep(Duration::from_millis(20)); // spread over the garbage
        }
    }
    listener.join().unwrap();
    garbage.join().unwrap();
}

/// How long the churn soak runs (`CHAT_SOAK_SECS`, default 5 s; the full
/// soak is a minute).
fn soak_duration() -> Duration {
    let secs = std::env::var("CHAT_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(secs)
}

/// Continuous connect/register/chat/leave churn: every departure is seen once
/// and after its join, every message arrives, and the server's descriptors and
/// memory end back near where they started.
pub fn soak(path: &'static str) {
    let mut server = spawn_binary(path, &ServerConfig::default());
    let pid = pid(&mut server);
    let (watcher, _) = Client::join(server.addr, "watcher");
    // The watcher reads everything and, at the end, says the closing marker
    // through a second handle on its socket (a separate client that never
    // read would itself be dropped as a slow consumer under the churn).
    let mut marker = watcher.writer();
    let fds_before = proc::fd_count(pid);
    let rss_before = proc::rss_kib(pid);
    // Done once the marker has spoken and every churn client that joined
    // has left (a vanished client's departure may trail the marker).
    let (mut marker_seen, mut inside) = (false, 0i64);
    let watcher = collect(watcher, move |frame| {
        match frame {
            ServerFrame::Message { from, text }
                if from.as_str() == "watcher" && text.as_str() == "end" =>
            {
                marker_seen = true;
            }
            ServerFrame::Joined { name } if name.as_str().starts_with('s') => inside += 1,
            ServerFrame::Left { name, .. } if name.as_str().starts_with('s') => inside -= 1,
            _ => {}
        }
        marker_seen && inside == 0
    });
    let deadline = Instant::now() + soak_duration();
    let mut generation = 0usize;
    let mut said = 0usize;
    while Instant::now() < deadline {
        let clients: Vec<Client> = (0..20)
            .map(|i| Client::join(server.addr, &format!("s{generation}-{i}")).0)
            .collect();
        for (i, mut c) in clients.into_iter().enumerate() {
            c.say("hi");
            said += 1;
            if i % 2 == 0 {
                c.send(&ClientFrame::Bye);
                loop {
                    if c.receive() == Received::Closed {
                        break;
                    }
                }
            } else {
                // Vanish without BYE, once the server has taken the message
                // (an abortive close may discard what it had not yet read).
                let name = format!("s{generation}-{i}");
                while !matches!(c.recv(), ServerFrame::Message { from, .. } if from.as_str() == name)
                {
                }
                drop(c);
            }
        }
        generation += 1;
    }
    marker.write_all(&say_bytes("end")).unwrap();
    let frames = watcher.join().unwrap();
    let mut present = BTreeSet::new();
    let mut joins = 0;
    let mut messages = 0;
    for (_, frame) in frames {
        match frame {
            ServerFrame::Joined { name } if name.as_str().starts_with('s') => {
                assert!(present.insert(name), "joined twice");
                joins += 1;
            }
            ServerFrame::Left { name, .. } if name.as_str().starts_with('s') => {
                assert!(
                    present.remove(&name),
                    "{name} left without joining, or twice"
                );
            }
            ServerFrame::Message { from, .. } if from.as_str().starts_with('s') => messages += 1,
            _ => {}
        }
    }
    assert!(present.is_empty(), "never left: {present:?}");
    assert_eq!(joins, generation * 20);
    assert_eq!(messages, said, "every message reached the watcher");
    eventually("descriptors back to the baseline", || {
        proc::fd_count(pid) <= fds_before
    });
    let rss_after = proc::rss_kib(pid);
    // The output-buffer pool may keep up to 8 MiB warm.
    assert!(
        rss_after <= rss_before + 16 * 1024,
        "RSS {rss_before} -> {rss_after} KiB"
    );
}

/// SIGTERM while hundreds of clients chat and read: every client that only
/// reads gets BYE(SHUTDOWN) (each reads what it is sent, so the one-second
/// flush is enough), and the server exits 0 within the bound.
pub fn shutdown_under_load(path: &'static str) {
    const CLIENTS: usize = 300;
    let mut server = spawn_binary(path, &ServerConfig::default());
    let pid = pid(&mut server);
    let clients: Vec<Client> = (0..CLIENTS)
        .map(|i| Client::join(server.addr, &format!("c{i}")).0)
        .collect();
    let readers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            thread::spawn(move || {
                let chatty = i % 10 == 0;
                let frame = say_bytes(&format!("chatter from c{i}"));
                let mut last_said = Instant::now();
                loop {
                    // Each chatty client says a line every millisecond (not
                    // one per frame received, which would feed on itself).
                    if chatty && last_said.elapsed() >= Duration::from_millis(1) {
                        last_said = Instant::now();
                        // Writes may fail once the server is gone.
                        let _ = c.stream.write_all(&frame);
                    }
                    match c.next_within(Duration::from_millis(if chatty { 1 } else { 100 })) {
                        Some(Received::Closed) => return (chatty, false),
                        Some(Received::Frame(ServerFrame::Bye { reason, .. })) => {
                            assert_eq!(reason, Reason::Shutdown, "c{i}");
                            return (chatty, true);
                        }
                        _ => {}
                    }
                }
            })
        })
        .collect();
    // Let the chatter get going before the signal.
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    crate::send_signal(pid, "TERM");
    let child = server.process().unwrap();
    let code = crate::wait_exit(child, Duration::from_secs(5)).expect("exit within 5 s");
    assert_eq!(code, 0);
    assert!(started.elapsed() < Duration::from_secs(5));
    let outcomes: Vec<(bool, bool)> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    // A client that is still writing when the server closes may get a reset
    // back, and TCP lets a reset discard the BYE waiting in its receive
    // buffer: only the quiet ones can be held to it.
    let quiet = outcomes.iter().filter(|(chatty, _)| !chatty).count();
    let quiet_byes = outcomes
        .iter()
        .filter(|&&(chatty, bye)| !chatty && bye)
        .count();
    assert_eq!(
        quiet_byes, quiet,
        "every client that only reads gets BYE(SHUTDOWN)"
    );
}

/// Expands to one `#[test]` per hardening case against a server binary.
#[macro_export]
macro_rules! hardening_cases {
    ($path:expr) => {
        $crate::hardening_cases!(@each $path;
            flood_fairness, slow_consumers_at_scale, slowloris, descriptor_exhaustion,
            abrupt_endings, garbage, soak, shutdown_under_load);
    };
    (@each $path:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let _alone = $crate::hardening::exclusive();
                $crate::hardening::$case($path);
            }
        )*
    };
}

/// Hardening cases measure a server under a load they create themselves (and
/// read its CPU time and memory), so they run one at a time.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ALONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
