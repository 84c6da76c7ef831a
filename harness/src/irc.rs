//! IRC cases (`IRC.md`), run against every server runtime like the native
//! ones: real IRC connections on the server's IRC listener beside native
//! clients, checking what each side sees.
//!
//! Every wait is for a line (or the end of the stream) with [`PATIENCE`] as
//! the bound that only fails a broken server.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use chat_core::{Name, Reason, ServerConfig, ServerFrame, Text};

use crate::{Client, PATIENCE, Target};

/// A blocking IRC client that reads line by line.
pub struct IrcClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// The stream ended with a reset rather than a clean end.
    pub cut: bool,
}

impl IrcClient {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let writer = stream.try_clone().expect("clone");
        Self {
            reader: BufReader::new(stream),
            writer,
            cut: false,
        }
    }

    /// Connects and registers as `nick`; returns once the welcome burst
    /// has ended (376 or 422).
    pub fn register(addr: SocketAddr, nick: &str) -> Self {
        let mut client = Self::connect(addr);
        client.send(&format!("NICK {nick}"));
        client.send(&format!("USER {nick} 0 * :{nick} tester"));
        client.expect(|l| numeric(l) == Some("422") || numeric(l) == Some("376"));
        client
    }

    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// The next line without its CRLF; `None` at the end of the stream.
    pub fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                self.cut = true;
                None
            }
            Err(e) => panic!("no line within {PATIENCE:?}: {e}"),
        }
    }

    /// Reads until a line matches, answering the server's PINGs; returns it.
    pub fn expect(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        loop {
            let line = self.line().expect("the stream ended first");
            if wanted(&line) {
                return line;
            }
            if let Some(token) = line.strip_prefix("PING ") {
                self.send(&format!("PONG {token}"));
            }
        }
    }

    /// Reads until the end of the stream; returns what came before it.
    pub fn expect_closed(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(line) = self.line() {
            lines.push(line);
        }
        lines
    }
}

/// The command or numeric of a line with a source.
pub fn numeric(line: &str) -> Option<&str> {
    line.strip_prefix(':')?.split(' ').nth(1)
}

/// Starts a server binary with `--irc-listen 127.0.0.1:0` and reads its
/// `irc listening on IP:PORT` line, which comes right after the native one.
pub fn spawn_binary(path: &str, config: &ServerConfig) -> crate::Running {
    let irc = ["--irc-listen".to_owned(), "127.0.0.1:0".to_owned()];
    let (mut running, mut stdout) = crate::spawn_binary_args(&[], path, config, &irc);
    let addr = crate::read_listening_line(&mut stdout, "irc ");
    running.irc = Some(addr);
    running
}

fn irc_addr(server: &crate::Running) -> SocketAddr {
    server.irc.expect("the server has an IRC listener")
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

/// Expands to one `#[test]` per IRC case, each run against `$target`.
#[macro_export]
macro_rules! irc_cases {
    ($target:expr) => {
        $crate::server_cases!(@each_in irc; $target;
            irc_and_native_users_share_the_lobby, irc_bad_input_gets_numerics,
            irc_half_closed_client_gets_its_answers,
            irc_registration_times_out, irc_stalled_reader_is_dropped,
            irc_flood_is_served_in_order, irc_channel_flood_reaches_every_member,
            irc_shutdown_says_error);
    };
}

/// A native user and an IRC user in one lobby: joins, messages both ways,
/// a private message each way, the departure.
pub fn irc_and_native_users_share_the_lobby(target: &Target) {
    let server = target.start(ServerConfig::default());
    let (mut alice, _) = Client::join(server.addr, "alice");
    let mut bob = IrcClient::register(irc_addr(&server), "bob");
    bob.send("JOIN #lobby");
    let names = bob.expect(|l| numeric(l) == Some("353"));
    assert!(names.ends_with(":alice bob"), "{names}");
    assert_eq!(alice.recv(), ServerFrame::Joined { name: name("bob") });
    bob.send("PRIVMSG #lobby :hello \x02natives\x02");
    assert_eq!(
        alice.recv(),
        ServerFrame::Message {
            from: name("bob"),
            text: Text::new("hello natives").unwrap()
        }
    );
    alice.say("hello irc");
    assert_eq!(
        bob.expect(|l| l.contains("PRIVMSG")),
        ":alice!alice@native PRIVMSG #lobby :hello irc"
    );
    bob.send("PRIVMSG alice :psst");
    assert_eq!(
        alice.recv(),
        ServerFrame::Message {
            from: name("alice"),
            text: Text::new("hello irc").unwrap()
        }
    );
    assert_eq!(
        alice.recv(),
        ServerFrame::Private {
            from: name("bob"),
            text: Text::new("psst").unwrap()
        }
    );
    bob.send("QUIT :bye");
    assert_eq!(
        alice.recv(),
        ServerFrame::Left {
            name: name("bob"),
            reason: Reason::Quit
        }
    );
    let last = bob.expect_closed();
    assert_eq!(
        last.last().map(String::as_str),
        Some("ERROR :Closing link (Quit: bye)")
    );
    server.stop();
}

/// A line too long, an unknown command, too few parameters: each gets its
/// numeric and the connection goes on.
pub fn irc_bad_input_gets_numerics(target: &Target) {
    let server = target.start(ServerConfig::default());
    let mut bob = IrcClient::register(irc_addr(&server), "bob");
    let mut flood = format!("PRIVMSG bob :{}\r\n", "x".repeat(1000)).into_bytes();
    flood.extend_from_slice(b"FROBNICATE\r\nJOIN\r\nPING :alive\r\n");
    bob.send_raw(&flood);
    let mut codes = Vec::new();
    loop {
        let line = bob.expect(|_| true);
        codes.push(numeric(&line).unwrap_or_default().to_owned());
        if line.ends_with(":alive") {
            break;
        }
    }
    assert_eq!(codes, ["417", "421", "461", "PONG"]);
    server.stop();
}

/// `printf 'NICK …' | nc -N`: the whole session in one write, then the end
/// of the client's half of the stream. Every answer still comes, then a
/// clean end of stream; the channel sees it all.
pub fn irc_half_closed_client_gets_its_answers(target: &Target) {
    let server = target.start(ServerConfig::default());
    let mut watcher = IrcClient::register(irc_addr(&server), "watcher");
    watcher.send("JOIN #t");
    watcher.expect(|l| numeric(l) == Some("366"));
    let mut half = IrcClient::connect(irc_addr(&server));
    half.send_raw(b"NICK half\r\nUSER half 0 * :h\r\nJOIN #t\r\nPRIVMSG #t :hi\r\nPING :last\r\n");
    half.writer.shutdown(std::net::Shutdown::Write).unwrap();
    let lines = half.expect_closed();
    assert!(!half.cut, "a clean end of stream, not a reset: {lines:?}");
    assert_eq!(numeric(&lines[0]), Some("001"), "{lines:?}");
    assert!(lines.iter().any(|l| numeric(l) == Some("366")), "{lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some(":chat.local PONG chat.local :last"),
        "the last answer, then the end"
    );
    watcher.expect(|l| l.starts_with(":half!") && l.ends_with(" JOIN #t"));
    watcher.expect(|l| l.starts_with(":half!") && l.ends_with(" PRIVMSG #t :hi"));
    watcher.expect(|l| l.starts_with(":half!") && l.contains(" QUIT "));
    server.stop();
}

/// Registration must finish within the handshake timeout.
pub fn irc_registration_times_out(target: &Target) {
    let server = target.start(ServerConfig {
        handshake_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    });
    let mut lurker = IrcClient::connect(irc_addr(&server));
    lurker.send("NICK lurker");
    let last = lurker.expect_closed();
    assert_eq!(
        last.last().map(String::as_str),
        Some("ERROR :Closing link (handshake timeout)")
    );
    server.stop();
}

/// An IRC client that stops reading is dropped at the output limit; the
/// native users go on and hear it left as a slow consumer.
pub fn irc_stalled_reader_is_dropped(target: &Target) {
    let server = target.start(ServerConfig {
        max_outbound: 8 * 1024,
        ..ServerConfig::default()
    });
    let (mut alice, _) = Client::join(server.addr, "alice");
    let mut stalled = IrcClient::register(irc_addr(&server), "stalled");
    stalled.send("JOIN #lobby");
    stalled.expect(|l| numeric(l) == Some("366"));
    assert_eq!(
        alice.recv(),
        ServerFrame::Joined {
            name: name("stalled")
        }
    );
    // Far more than the socket buffers and the limit hold together.
    let text = "z".repeat(1000);
    let mut sent = 0;
    loop {
        alice.say(&text);
        sent += 1;
        match alice.recv() {
            ServerFrame::Message { .. } => {}
            ServerFrame::Left { name: who, reason } => {
                assert_eq!((who.as_str(), reason), ("stalled", Reason::SlowConsumer));
                break;
            }
            other => panic!("{other:?}"),
        }
        assert!(sent < 20_000, "the stalled reader was never dropped");
    }
    alice.say("still here");
    assert!(matches!(alice.recv(), ServerFrame::Message { .. }));
    // Reading at last, it finds whole lines, then its ERROR on a line of
    // its own (not glued to a line cut short, nor eaten by bytes a writer
    // thread or the kernel held).
    let lines = stalled.expect_closed();
    let (last, before) = lines.split_last().expect("at least the ERROR");
    assert_eq!(last, "ERROR :Closing link (slow consumer)");
    // A 1,000-byte text takes several lines of at most 512 bytes: every
    // line is its part of a text, whole, in turn (the last text may stop
    // after any of its lines: the server finishes lines, not texts, before
    // the ERROR).
    let prefix = ":alice!alice@native PRIVMSG #lobby :";
    let bodies: Vec<&str> = before
        .iter()
        .map(|line| line.strip_prefix(prefix).unwrap_or_default())
        .collect();
    let mut parts = Vec::new();
    for body in &bodies {
        if parts.iter().sum::<usize>() == text.len() {
            break;
        }
        parts.push(body.len());
    }
    assert_eq!(parts.iter().sum::<usize>(), text.len(), "{parts:?}");
    for (i, body) in bodies.iter().enumerate() {
        assert!(
            body.bytes().all(|b| b == b'z') && Some(&body.len()) == parts.get(i % parts.len()),
            "line {i}: {} bytes, parts {parts:?}",
            body.len(),
        );
    }
    server.stop();
}

/// A flood of PRIVMSGs in one write reaches a native reader whole and in
/// order, while another native user's messages still get through.
pub fn irc_flood_is_served_in_order(target: &Target) {
    let server = target.start(ServerConfig {
        max_outbound: 16 * 1024,
        ..ServerConfig::default()
    });
    let (mut reader, _) = Client::join(server.addr, "reader");
    let mut flooder = IrcClient::register(irc_addr(&server), "flooder");
    flooder.send("JOIN #lobby");
    flooder.expect(|l| numeric(l) == Some("366"));
    assert_eq!(
        reader.recv(),
        ServerFrame::Joined {
            name: name("flooder")
        }
    );
    let count = 3000;
    let burst: String = (0..count)
        .map(|i| format!("PRIVMSG #lobby :flood {i:05}\r\n"))
        .collect();
    let mut writer = flooder.writer.try_clone().expect("clone");
    let sender = std::thread::spawn(move || writer.write_all(burst.as_bytes()));
    for i in 0..count {
        match reader.recv() {
            ServerFrame::Message { from, text } => {
                assert_eq!(from.as_str(), "flooder");
                assert_eq!(text.as_str(), format!("flood {i:05}"));
            }
            other => panic!("{other:?}"),
        }
    }
    sender.join().expect("writer").expect("write");
    server.stop();
}

/// A channel other than the lobby (its lines are shared by the members'
/// queues): a flood in one write, bigger than the output limit, reaches
/// two members that read, whole and in order, interleaved with their own
/// replies; a member that never reads is dropped and the readers see it
/// quit; the sender hears no echo.
pub fn irc_channel_flood_reaches_every_member(target: &Target) {
    let server = target.start(ServerConfig {
        max_outbound: 16 * 1024,
        ..ServerConfig::default()
    });
    let addr = irc_addr(&server);
    let mut flooder = IrcClient::register(addr, "flooder");
    let mut readers = vec![
        IrcClient::register(addr, "r1"),
        IrcClient::register(addr, "r2"),
    ];
    let mut stalled = IrcClient::register(addr, "stalled");
    for client in std::iter::once(&mut flooder)
        .chain(readers.iter_mut())
        .chain(std::iter::once(&mut stalled))
    {
        client.send("JOIN #side");
        client.expect(|l| numeric(l) == Some("366"));
    }
    for reader in &mut readers {
        reader.expect(|l| l.starts_with(":stalled!") && l.ends_with("JOIN #side"));
    }
    // 1.3 MB: far more than the limit and every socket buffer together.
    let count = 3000;
    let pad = "x".repeat(400);
    let burst: String = (0..count)
        .map(|i| format!("PRIVMSG #side :flood {i:05} {pad}\r\n"))
        .chain(std::iter::once("PING :done\r\n".to_owned()))
        .collect();
    let mut writer = flooder.writer.try_clone().expect("clone");
    let sender = std::thread::spawn(move || writer.write_all(burst.as_bytes()));
    // Both readers read at once, each on its own thread, as real clients do.
    let reading: Vec<_> = readers
        .into_iter()
        .enumerate()
        .map(|(r, mut reader)| {
            let pad = pad.clone();
            std::thread::spawn(move || {
                reader.send("PING :mid-flood");
                let (mut next, mut pong, mut saw_quit) = (0, false, false);
                while next < count || !pong {
                    let line = reader.expect(|_| true);
                    if line.ends_with(" :mid-flood") {
                        pong = true;
                    } else if line.starts_with(":stalled!") && line.contains(" QUIT ") {
                        assert!(!saw_quit, "r{} heard the quit twice", r + 1);
                        saw_quit = true;
                    } else {
                        let want =
                            format!(":flooder!flooder@irc PRIVMSG #side :flood {next:05} {pad}");
                        assert!(line == want, "r{} got {line:.60} for message {next}", r + 1);
                        next += 1;
                    }
                }
                (reader, saw_quit)
            })
        })
        .collect();
    let readers: Vec<(IrcClient, bool)> = reading
        .into_iter()
        .map(|t| t.join().expect("reader"))
        .collect();
    sender.join().expect("writer").expect("write");
    // The flooder's PONG comes after its whole burst: nothing echoed.
    let line = flooder.expect(|l| !l.contains(" JOIN ") && !l.contains(" QUIT "));
    assert!(line.ends_with(" :done"), "{line:.80}");
    let last = stalled.expect_closed();
    assert!(
        last.last().is_some_and(|l| l.starts_with("ERROR")),
        "{:.80?}",
        last.last()
    );
    for (r, (mut reader, saw_quit)) in readers.into_iter().enumerate() {
        if !saw_quit {
            reader.send("PING :after");
            let line = reader.expect(|l| l.contains(" QUIT ") || l.ends_with(" :after"));
            assert!(
                line.starts_with(":stalled!"),
                "r{} never heard it quit",
                r + 1
            );
        }
    }
    server.stop();
}

/// SIGTERM (or the stop handle): every IRC connection gets its ERROR.
pub fn irc_shutdown_says_error(target: &Target) {
    let server = target.start(ServerConfig::default());
    let mut bob = IrcClient::register(irc_addr(&server), "bob");
    let mut carol = IrcClient::register(irc_addr(&server), "carol");
    carol.send("JOIN #lobby");
    carol.expect(|l| numeric(l) == Some("366"));
    assert_eq!(server.stop(), 0);
    for client in [&mut bob, &mut carol] {
        let last = client.expect_closed();
        assert_eq!(
            last.last().map(String::as_str),
            Some("ERROR :Server shutting down")
        );
    }
}

/// The IRC flags of the command line: bad values are exit 2, an unreadable
/// MOTD exit 1, and with everything on, the start-up lines come in order
/// (`listening`, `irc listening`, `tls listening`, `irc tls listening`) and
/// an IRC client over TLS registers and gets the MOTD.
pub fn command_line(path: &str) {
    let run =
        |args: &[&str]| crate::run_binary(path, ["--listen", "127.0.0.1:0"].iter().chain(args));
    for bad in [
        &["--lobby", "lobby"][..],
        &["--lobby", "#a b"],
        &["--server-name", "nodot"],
        &["--server-name", "a b.c"],
        &["--oper", "nopassword"],
        &["--oper", ":x"],
        &["--irc-tls-listen", "127.0.0.1:0"],
    ] {
        let out = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(out.stdout.is_empty(), "{bad:?}: nothing listens");
    }
    let out = run(&["--irc-listen", "127.0.0.1:0", "--motd", "/nonexistent/motd"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/motd"));

    let pki = crate::tls::pki();
    let motd = pki.cert.with_file_name("motd.txt");
    std::fs::write(&motd, "hello from the MOTD\n").expect("write the MOTD");
    let mut flags = crate::tls::flags();
    flags.extend(
        [
            "--irc-listen",
            "127.0.0.1:0",
            "--irc-tls-listen",
            "127.0.0.1:0",
            "--server-name",
            "irc.example.org",
            "--motd",
        ]
        .map(String::from),
    );
    flags.push(motd.display().to_string());
    let (server, mut stdout) =
        crate::spawn_binary_args(&[], path, &ServerConfig::default(), &flags);
    crate::read_listening_line(&mut stdout, "irc ");
    crate::read_listening_line(&mut stdout, "tls ");
    let irc_tls = crate::read_listening_line(&mut stdout, "irc tls ");
    let socket = TcpStream::connect(irc_tls).expect("connect");
    socket.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a valid name");
    let conn = rustls::ClientConnection::new(crate::tls::client_config(), name).expect("TLS");
    let mut tls = rustls::StreamOwned::new(conn, socket);
    tls.write_all(b"NICK secure\r\nUSER secure 0 * :Secure\r\n")
        .expect("write over TLS");
    let mut reader = BufReader::new(tls);
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => panic!("the stream ended after {seen:?}"),
            Ok(_) => {}
        }
        let line = line.trim_end().to_owned();
        let done = numeric(&line) == Some("376");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(
        seen[0].starts_with(":irc.example.org 001 secure "),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|l| l.ends_with(":- hello from the MOTD")),
        "{seen:?}"
    );
    drop(server);
}
