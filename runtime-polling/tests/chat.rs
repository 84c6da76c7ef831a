//! End-to-end tests of the `chat` terminal client against the real
//! `chat-server` and against scripted fake servers.
//!
//! Every wait is for a deterministic signal: a line read from a child's stdout
//! (through a reader thread and `recv_timeout`), the end of its stdout, or its
//! exit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::Duration;

use chat_core::{ClientFrame, ErrorCode, Name, ServerConfig, ServerFrame};

const WAIT: Duration = Duration::from_secs(10);

/// A line of stdout, or `None` at its end.
fn spawn_line_reader(out: impl Read + Send + 'static) -> Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(out);
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
                Ok(_) => {
                    if tx.send(Some(line)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chat-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .expect("listening line")
            .to_owned();
        Self { child, addr }
    }

    fn interrupt(&self) {
        signal(self.child.id(), "-INT");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

struct Chat {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Option<Vec<u8>>>,
    /// Every byte the client wrote to stdout so far.
    seen: Vec<u8>,
    ended: bool,
}

impl Chat {
    fn spawn(label: &str, addr: &str, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
            .args(["--connect", addr])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chat");
        let lines = spawn_line_reader(child.stdout.take().unwrap());
        let stdin = child.stdin.take();
        Self {
            label: label.to_owned(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
            ended: false,
        }
    }

    /// A client registered as `name` (via `--name`), its roster line read.
    fn join(addr: &str, name: &str, roster: &str) -> Self {
        let mut chat = Self::spawn(name, addr, &["--name", name]);
        chat.expect(&format!("* users: {roster}"));
        chat
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn next_line(&mut self) -> Option<String> {
        if self.ended {
            return None;
        }
        match self.lines.recv_timeout(WAIT) {
            Ok(Some(line)) => {
                self.seen.extend_from_slice(&line);
                Some(
                    String::from_utf8_lossy(&line)
                        .trim_end_matches('\n')
                        .to_owned(),
                )
            }
            Ok(None) => {
                self.ended = true;
                None
            }
            Err(_) => panic!(
                "{}: no output for {WAIT:?}; so far: {:?}",
                self.label,
                self.text()
            ),
        }
    }

    /// Reads lines until `want` arrives; panics on end of output.
    fn expect(&mut self, want: &str) {
        while let Some(line) = self.next_line() {
            if line == want {
                return;
            }
        }
        panic!(
            "{}: output ended without {want:?}; got {:?}",
            self.label,
            self.text()
        );
    }

    /// Reads lines until one starts with `prefix`; returns it.
    fn expect_prefix(&mut self, prefix: &str) -> String {
        while let Some(line) = self.next_line() {
            if line.starts_with(prefix) {
                return line;
            }
        }
        panic!(
            "{}: output ended without {prefix:?}…; got {:?}",
            self.label,
            self.text()
        );
    }

    /// Reads stdout to its end, then reaps the process.
    fn finish(&mut self) -> ExitStatus {
        while self.next_line().is_some() {}
        self.child.wait().unwrap()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn public_and_private_messages_roster_and_leaving() {
    let server = Server::start(&[]);
    let mut alice = Chat::join(&server.addr, "alice", "alice");
    // bob gives his name on stdin.
    let mut bob = Chat::spawn("bob", &server.addr, &[]);
    bob.send("bob");
    bob.expect("* users: alice, bob");
    alice.expect("* bob joined");

    alice.send("hello");
    alice.expect("<alice> hello");
    bob.expect("<alice> hello");

    bob.send("/msg alice hello");
    bob.expect("-> *alice* hello");
    alice.expect("*bob* hello");

    alice.send("/msg nobody hi");
    alice.expect("-> *nobody* hi");
    alice.expect("! no such user: nobody");

    alice.send("/who");
    alice.expect("* users: alice, bob");

    bob.send("/quit");
    alice.expect("* bob left (quit)");
    assert!(bob.finish().success());

    let mut carol = Chat::join(&server.addr, "carol", "alice, carol");
    alice.expect("* carol joined");
    carol.send("exit()");
    alice.expect("* carol left (quit)");
    assert!(carol.finish().success());

    let mut dave = Chat::join(&server.addr, "dave", "alice, dave");
    alice.expect("* dave joined");
    dave.send("bye for now");
    dave.close_stdin();
    alice.expect("<dave> bye for now");
    alice.expect("* dave left (quit)");
    assert!(dave.finish().success());
    assert!(
        dave.text().contains("<dave> bye for now\n"),
        "{}",
        dave.text()
    );

    alice.close_stdin();
    assert!(alice.finish().success());
}

#[test]
fn a_taken_name_is_asked_again() {
    let server = Server::start(&[]);
    let mut alice = Chat::join(&server.addr, "alice", "alice");

    // Line by line: the next stdin line after the error is the new name.
    let mut second = Chat::spawn("second", &server.addr, &[]);
    second.send("alice");
    second.expect("! name taken");
    second.send("bob");
    second.expect("* users: alice, bob");
    alice.expect("* bob joined");

    // All at once (piped): lines wait for the HELLO's answer.
    let mut third = Chat::spawn("third", &server.addr, &[]);
    third.send("ALICE\ncarol\nhi all");
    third.expect("! name taken");
    third.expect("* users: alice, bob, carol");
    alice.expect("<carol> hi all");

    // --name taken: the name is then read from stdin.
    let mut fourth = Chat::spawn("fourth", &server.addr, &["--name", "bob"]);
    fourth.expect("! name taken");
    fourth.send("not valid!");
    fourth.expect_prefix("! name invalid");
    fourth.send("dave");
    fourth.expect("* users: alice, bob, carol, dave");
}

#[test]
fn output_follows_input_order_and_commands_explain_themselves() {
    let server = Server::start(&[]);
    let mut alice = Chat::join(&server.addr, "alice", "alice");
    // Piped all at once: the server's answer to the first line comes before
    // the local error about the second, and every usage error says how.
    let mut bob = Chat::spawn("bob", &server.addr, &[]);
    bob.send("alice\nnot valid!\nbob\n/msg\n/msg alice\n/bogus\n/help\n/quit");
    assert!(bob.finish().success());
    let text = bob.text();
    let lines: Vec<&str> = text.lines().collect();
    let expected = [
        "! name taken",
        "! name invalid",
        "* users: alice, bob",
        "! usage: /msg NAME TEXT",
        "! usage: /msg NAME TEXT",
        "! unknown command: /bogus (try /help)",
        "* a plain line says it to everyone",
        "* /msg NAME TEXT  whispers to NAME",
        "* /who            lists who is here",
        "* /help           shows this",
        "* /quit or exit() leaves (so do end of input and Ctrl-C)",
    ];
    assert_eq!(lines.len(), expected.len(), "{text}");
    for (line, want) in lines.iter().zip(expected) {
        assert!(
            line.starts_with(want),
            "{line:?} should start with {want:?}; all: {text}"
        );
    }
    alice.expect("* bob joined");
    alice.expect("* bob left (quit)");
}

#[test]
fn sigint_says_bye_and_exits_zero() {
    let server = Server::start(&[]);
    let mut alice = Chat::join(&server.addr, "alice", "alice");
    let mut bob = Chat::join(&server.addr, "bob", "alice, bob");
    alice.expect("* bob joined");
    signal(bob.pid(), "-INT");
    alice.expect("* bob left (quit)");
    assert!(bob.finish().success());
}

#[test]
fn idle_exit_says_so_and_leaves() {
    let server = Server::start(&[]);
    let mut alice = Chat::spawn(
        "alice",
        &server.addr,
        &["--name", "alice", "--idle-exit", "0"],
    );
    alice.expect("* users: alice");
    let mut bob = Chat::spawn("bob", &server.addr, &["--name", "bob", "--idle-exit", "1"]);
    bob.expect("* users: alice, bob");
    alice.expect("* bob joined");
    let line = bob.expect_prefix("* idle");
    assert_eq!(line, "* idle for 1 s, leaving");
    alice.expect("* bob left (quit)");
    assert!(bob.finish().success());
}

#[test]
fn leave_reasons_and_server_shutdown() {
    let server = Server::start(&["--ping-interval", "0.2", "--idle-timeout", "0.6"]);
    let mut alice = Chat::join(&server.addr, "alice", "alice");

    // A raw client that registers and then never answers a PING: timeout.
    let mut mallory = TcpStream::connect(&server.addr).unwrap();
    let hello = ClientFrame::Hello {
        name: Name::new("mallory").unwrap(),
    };
    mallory.write_all(&hello.to_bytes()).unwrap();
    alice.expect("* mallory joined");
    alice.expect("* mallory left (timeout)");

    // One that just goes away: disconnected.
    let mut eve = TcpStream::connect(&server.addr).unwrap();
    eve.write_all(
        &ClientFrame::Hello {
            name: Name::new("eve").unwrap(),
        }
        .to_bytes(),
    )
    .unwrap();
    alice.expect("* eve joined");
    drop(eve);
    alice.expect("* eve left (disconnected)");
    drop(mallory);

    // The server shuts down: a clear line and exit 1.
    server.interrupt();
    let line = alice.expect_prefix("* server closed the connection (shutdown");
    assert!(line.ends_with(')'), "{line}");
    assert_eq!(alice.finish().code(), Some(1));
}

#[test]
fn unreachable_server_exits_one() {
    // Bind then drop: nothing listens on that port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut chat = Chat::spawn("lonely", &format!("127.0.0.1:{port}"), &["--name", "x"]);
    assert_eq!(chat.finish().code(), Some(1));
    assert!(chat.seen.is_empty());
}

#[test]
fn bad_flags_exit_two() {
    let status = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(["--bogus"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
    let status = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(["--idle-exit", "soon"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
}

// ----- scripted fake servers -----

fn raw_frame(op: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(payload.len() + 1)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    out.push(op);
    out.extend_from_slice(payload);
    out
}

fn with_name(name: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::try_from(name.len()).unwrap()];
    out.extend_from_slice(name);
    out.extend_from_slice(rest);
    out
}

/// A one-connection server that sends `script` after the greeting, then
/// reads until the client goes away.
fn fake_server(script: Vec<u8>) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let alice = Name::new("alice").unwrap();
        let mut out = Vec::new();
        ServerFrame::Welcome { name: alice }
            .encode(&mut out)
            .unwrap();
        ServerFrame::Users {
            last: true,
            names: vec![alice],
        }
        .encode(&mut out)
        .unwrap();
        out.extend_from_slice(&script);
        let _ = stream.write_all(&out);
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    });
    (addr, thread)
}

fn assert_no_raw_controls(output: &[u8]) {
    let text = String::from_utf8_lossy(output);
    for c in text.chars() {
        assert!(
            c == '\n' || !(c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
            "raw control {c:?} in output {text:?}"
        );
    }
}

fn run_against_fake(script: Vec<u8>) -> Chat {
    let (addr, thread) = fake_server(script);
    let mut chat = Chat::spawn("victim", &addr, &["--name", "alice"]);
    chat.expect("* users: alice");
    let status = chat.finish();
    assert!(
        !status.success(),
        "exit status {status:?}; output {:?}",
        chat.text()
    );
    assert_no_raw_controls(&chat.seen);
    thread.join().unwrap();
    chat
}

#[test]
fn escape_sequences_from_the_server_are_never_written_raw() {
    let evil = "\u{1b}[31mred\u{1b}[0m\u{7}\u{9b}2J\u{202e}\r\tend";
    let mut error = vec![ErrorCode::BadText as u8];
    error.extend_from_slice(evil.as_bytes());
    let mut script = raw_frame(0x82, &error);
    // A MESSAGE with a valid name and control bytes (and a C1 CSI) in its
    // text: shown with the characters escaped, and the client goes on.
    script.extend(raw_frame(
        0x83,
        &with_name(b"mallory", b"hi \x1b[2J \xc2\x9b\x07there"),
    ));
    script.extend(raw_frame(0x84, &with_name(b"mallory", b"\xff\x00")));
    script.extend(raw_frame(0x88, &[6]));
    let chat = run_against_fake(script);
    let text = chat.text();
    assert!(text.contains("! bad text: \\u{1b}[31mred"), "{text}");
    assert!(
        text.contains("<mallory> hi \\u{1b}[2J \\u{9b}\\u{7}there\n"),
        "{text}"
    );
    assert!(text.contains("*mallory* \u{fffd}\\u{0}\n"), "{text}");
    assert!(!text.contains("! protocol error"), "{text}");
    assert!(
        !text.bytes().any(|b| b == 0x1b || b == 0x07 || b == 0),
        "{text}"
    );
}

#[test]
fn control_bytes_in_a_name_are_a_protocol_error() {
    let script = raw_frame(0x85, &with_name(b"\x1b[31mbob", b""));
    let chat = run_against_fake(script);
    assert!(chat.text().contains("! protocol error"), "{}", chat.text());
}

#[test]
fn malformed_frames_end_the_client() {
    for script in [
        raw_frame(0x99, b"junk"),
        vec![0xff, 0xff, 0xff, 0xff, 0x83],
        raw_frame(0x86, &with_name(b"bob", b"\x42")),
        raw_frame(0x87, &[1, 0, 5, 3, b'b', b'o']),
    ] {
        let chat = run_against_fake(script);
        assert!(chat.text().contains("! protocol error"), "{}", chat.text());
    }
}

#[test]
fn server_bye_detail_is_escaped() {
    let mut bye = vec![6u8];
    bye.extend_from_slice(b"going down\x1b]0;pwned\x07");
    let chat = run_against_fake(raw_frame(0x88, &bye));
    assert!(
        chat.text()
            .contains("* server closed the connection (shutdown: going down\\u{1b}]0;pwned\\u{7})"),
        "{}",
        chat.text()
    );
}

/// A pseudo-terminal for `chat`: the child gets the terminal side as stdin,
/// stdout and stderr; the test types into, and reads everything written to,
/// the other side (escape sequences included) on a reader thread.
struct Pty {
    master: std::fs::File,
    /// The child's stdout when it is a pipe rather than the terminal.
    stdout: Option<std::process::ChildStdout>,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// Ends once the child has closed the terminal and all it wrote is in `output`.
    reader: Option<std::thread::JoinHandle<()>>,
    child: Child,
}

impl Pty {
    fn spawn(args: &[&str]) -> Self {
        Self::spawn_with(args, true)
    }

    /// With `stdout_on_terminal` false, stdout is a pipe ([`Pty::stdout`]).
    fn spawn_with(args: &[&str], stdout_on_terminal: bool) -> Self {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let size = rustix::termios::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&master, size).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let path = name.to_str().unwrap().to_owned();
        let terminal = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap()
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
            .args(args)
            .stdin(terminal())
            .stdout(if stdout_on_terminal {
                Stdio::from(terminal())
            } else {
                Stdio::piped()
            })
            .stderr(terminal())
            .spawn()
            .unwrap();
        let master = std::fs::File::from(master);
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = std::sync::Arc::clone(&output);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with an error (EIO) once the child closed the terminal:
            // the test holds no descriptor of the terminal's side.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self {
            master,
            stdout: child.stdout.take(),
            output,
            reader: Some(reader),
            child,
        }
    }

    /// Waits for the child to exit and for the last of its output to be
    /// read (what it wrote just before exiting may still be in the
    /// terminal when `wait` returns); returns its status.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        status
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until what the terminal shows contains `want` after byte `from`;
    /// returns where it ends. Polling the reader thread's buffer: a terminal
    /// has no message boundaries to wait on.
    fn wait_for(&self, want: &str, from: usize) -> usize {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let text = self.text();
            if let Some(at) = text.get(from..).and_then(|rest| rest.find(want)) {
                return from + at + want.len();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{want:?} never shown; the terminal got {text:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }
}

#[test]
fn on_a_terminal_typed_text_survives_incoming_lines_and_the_terminal_is_restored() {
    let server = Server::start(&[]);
    let mut term = Pty::spawn(&["--connect", &server.addr]);
    let at = term.wait_for("name: ", 0);
    term.type_keys("alice\r");
    let at = term.wait_for("* users: alice", at);
    // Half a line typed, then bob talks.
    term.type_keys("half typed");
    let at = term.wait_for("half typed", at);
    let mut bob = TcpStream::connect(&server.addr).unwrap();
    bob.write_all(
        &ClientFrame::Hello {
            name: Name::new("bob").unwrap(),
        }
        .to_bytes(),
    )
    .unwrap();
    bob.write_all(
        &ClientFrame::Say {
            text: chat_core::Text::new("hello from bob").unwrap(),
        }
        .to_bytes(),
    )
    .unwrap();
    let at = term.wait_for("<bob> hello from bob", at);
    // The half-typed line is drawn again below it, and is what Enter sends.
    let at = term.wait_for("half typed", at);
    term.type_keys(" and done\r");
    let at = term.wait_for("<alice> half typed and done", at);
    // Editing keys: Ctrl-U clears, Up brings the last line back, Ctrl-W
    // deletes a word.
    term.type_keys("garbage\x15first second\x17third\r");
    let at = term.wait_for("<alice> first third", at);
    term.type_keys("\x1b[A\r");
    let _ = term.wait_for("<alice> first third", at);
    // Ctrl-C leaves: exit 0, BYE sent, and no ^C or prompt left behind.
    term.type_keys("\x03");
    let status = term.wait_exit();
    assert!(status.success(), "{status:?}");
    let text = term.text();
    assert!(!text.contains("^C"), "{text:?}");
    assert!(
        text.ends_with("\r\x1b[K"),
        "the program ends on a cleared line: {text:?}"
    );
    let termios = rustix::termios::tcgetattr(&term.master).unwrap();
    assert!(
        termios
            .local_modes
            .contains(rustix::termios::LocalModes::ICANON),
        "the terminal is back in its normal (canonical) mode"
    );
}

#[test]
fn lines_answering_what_was_just_typed_stay_on_the_terminal() {
    let server = Server::start(&[]);
    let _alice = Chat::join(&server.addr, "alice", "alice");
    let mut term = Pty::spawn(&["--connect", &server.addr]);
    let at = term.wait_for("name: ", 0);
    // The answer comes back while the prompt is being asked for again: it
    // must end its line, or the prompt drawn next wipes it.
    term.type_keys("alice\r");
    let at = term.wait_for("! name taken\r\n", at);
    let at = term.wait_for("name: ", at);
    term.type_keys("zed\r");
    let mut at = term.wait_for("* users: alice, zed\r\n", at);
    for i in 0..10 {
        term.type_keys(&format!("/msg alice hi{i}\r"));
        at = term.wait_for(&format!("-> *alice* hi{i}\r\n"), at);
    }
    term.type_keys("/quit\r");
    assert!(term.wait_exit().success());
}

#[test]
fn typing_on_a_terminal_with_stdout_piped_writes_no_escape_sequences() {
    let server = Server::start(&[]);
    let mut alice = Chat::join(&server.addr, "alice", "alice");
    let mut term = Pty::spawn_with(&["--connect", &server.addr, "--name", "eve"], false);
    let mut stdout = term.stdout.take().unwrap();
    alice.expect("* eve joined");
    alice.send("hey");
    term.type_keys("hello\n");
    alice.expect("<eve> hello");
    term.type_keys("/quit\n");
    assert!(term.wait_exit().success());
    let mut output = Vec::new();
    stdout.read_to_end(&mut output).unwrap();
    let output = String::from_utf8(output).unwrap();
    assert!(output.starts_with("* users: alice, eve\n"), "{output:?}");
    assert!(!output.contains('\x1b'), "{output:?}");
}

// ----- TLS -----

#[test]
fn over_tls_two_users_talk_and_a_bad_certificate_is_a_clear_error() {
    let server =
        harness::tls::in_process::<runtime_polling::PollingServer>(ServerConfig::default());
    let addr = format!("localhost:{}", server.addr.port());
    let ca = harness::tls::pki().cert.display().to_string();
    let mut alice = Chat::spawn("alice", &addr, &["--name", "alice", "--ca", &ca]);
    alice.expect("* users: alice");
    let mut bob = Chat::spawn("bob", &addr, &["--tls", "--ca", &ca, "--name", "bob"]);
    bob.expect("* users: alice, bob");
    alice.expect("* bob joined");
    bob.send("hello over TLS");
    alice.expect("<bob> hello over TLS");
    bob.send("/quit");
    assert_eq!(bob.finish().code(), Some(0));
    alice.expect("* bob left (quit)");

    // The certificate is for `localhost`: verifying it as 127.0.0.1 fails.
    let by_ip = format!("127.0.0.1:{}", server.addr.port());
    let out = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(["--connect", &by_ip, "--name", "eve", "--ca", &ca])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
    // A CA file that holds no certificate: refused before connecting.
    let key = harness::tls::pki().key.display().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(["--connect", &addr, "--name", "eve", "--ca", &key])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no certificate"));
}
