//! One list of behaviour cases, run against every server runtime.
//!
//! A [`Target`] knows how to start a server with a [`ServerConfig`]: in-process
//! through a runtime's library API, or as a real binary. [`server_cases!`]
//! expands to one `#[test]` per case for a target, so the polling and std
//! runtimes run exactly the same cases.
//!
//! Waiting is always for a deterministic signal (a frame, an end of stream, a
//! process exit) with a generous upper bound that only fails a broken server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

pub mod cases;
pub mod hardening;
pub mod irc;
pub mod proc;
pub mod tls;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat_core::codec::Deframer;
use chat_core::{ClientFrame, Name, ServerConfig, ServerFrame, Text};

/// How long any single wait may take before the case fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A way to start a server.
#[derive(Clone, Copy)]
pub enum Target {
    /// A runtime's library API, on a thread of the test process.
    InProcess(fn(ServerConfig) -> Running),
    /// A server binary, by path.
    Binary(&'static str),
    /// A server binary, by path, with the cases' clients on its TLS listener.
    BinaryTls(&'static str),
    /// A server binary, by path, with an IRC listener beside the native one.
    BinaryIrc(&'static str),
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    /// The IRC listener, when the server has one (every server the harness
    /// starts in the clear has).
    pub irc: Option<SocketAddr>,
    /// Taken by `stop_with`; `Drop` kills a process still here.
    stop: Option<Stop>,
}

enum Stop {
    Thread {
        stop: Box<dyn FnOnce() + Send>,
        thread: JoinHandle<std::io::Result<()>>,
    },
    Process(Child),
}

impl Running {
    /// Wraps a server running on a thread, with the function that stops it.
    pub fn thread(
        addr: SocketAddr,
        stop: Box<dyn FnOnce() + Send>,
        thread: JoinHandle<std::io::Result<()>>,
    ) -> Self {
        Self {
            addr,
            irc: None,
            stop: Some(Stop::Thread { stop, thread }),
        }
    }

    /// The server process, for binaries.
    pub fn process(&mut self) -> Option<&mut Child> {
        match &mut self.stop {
            Some(Stop::Process(child)) => Some(child),
            _ => None,
        }
    }

    /// Stops the server gracefully (SIGTERM for a binary) and waits for it;
    /// returns the exit code (0 for a clean in-process stop).
    pub fn stop_with(mut self, signal: &str) -> i32 {
        match self.stop.take().expect("not yet stopped") {
            Stop::Thread { stop, thread } => {
                stop();
                thread
                    .join()
                    .expect("server thread panicked")
                    .expect("server run failed");
                0
            }
            Stop::Process(mut child) => {
                send_signal(child.id(), signal);
                wait_exit(&mut child, PATIENCE).expect("server did not exit after the signal")
            }
        }
    }

    pub fn stop(self) -> i32 {
        self.stop_with("TERM")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(Stop::Process(child)) = &mut self.stop {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends a signal by name (`TERM`, `INT`) to a process.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Waits for a child to exit, up to `limit`; its exit code.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status.code().unwrap_or(-1));
        }
        if start.elapsed() > limit {
            return None;
        }
        // Polling a child's exit status has no blocking-with-timeout API in std.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The command-line flags for a configuration.
pub fn flags(config: &ServerConfig) -> Vec<String> {
    vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--max-clients".into(),
        config.max_clients.to_string(),
        "--handshake-timeout".into(),
        config.handshake_timeout.as_secs_f64().to_string(),
        "--ping-interval".into(),
        config.ping_interval.as_secs_f64().to_string(),
        "--idle-timeout".into(),
        config.idle_timeout.as_secs_f64().to_string(),
        "--max-outbound".into(),
        config.max_outbound.to_string(),
    ]
}

/// Where a spawned server's log goes: nowhere, unless `CHAT_SERVER_STDERR`
/// is set (then to the test's stderr; add `RUST_LOG=debug` for every close).
fn server_stderr() -> Stdio {
    if std::env::var_os("CHAT_SERVER_STDERR").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

/// Runs a server binary to completion with `args` and no input: for the
/// command-line cases, which look at its exit code and output.
pub fn run_binary<I, S>(path: &str, args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {path}: {e}"))
}

/// Reads a start-up line `{prefix}listening on IP:PORT` and returns the
/// address; panics naming the line when it is something else.
pub fn read_listening_line(stdout: &mut impl BufRead, prefix: &str) -> SocketAddr {
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("reading the {prefix}listening line: {e}"));
    line.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix("listening on "))
        .and_then(|rest| rest.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("expected `{prefix}listening on IP:PORT`, got {line:?}"))
}

/// Starts a server binary and reads its `listening on IP:PORT` line.
pub fn spawn_binary(path: &str, config: &ServerConfig) -> Running {
    spawn_binary_with(&[], path, config)
}

/// Starts a server binary behind a wrapper command (e.g. `prlimit
/// --nofile=64`), which must `exec` it so the pid stays the server's.
pub fn spawn_binary_with(wrapper: &[&str], path: &str, config: &ServerConfig) -> Running {
    spawn_binary_args(wrapper, path, config, &[]).0
}

/// Starts a server binary with `extra` flags after the configuration's;
/// returns it and the rest of its stdout (the lines after `listening on`).
pub fn spawn_binary_args(
    wrapper: &[&str],
    path: &str,
    config: &ServerConfig,
    extra: &[String],
) -> (Running, BufReader<std::process::ChildStdout>) {
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(path);
            command
        }
        None => Command::new(path),
    };
    let mut child = command
        .args(flags(config))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(server_stderr())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {path}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let mut stdout = BufReader::new(stdout);
    let addr = read_listening_line(&mut stdout, "");
    let running = Running {
        addr,
        irc: None,
        stop: Some(Stop::Process(child)),
    };
    (running, stdout)
}

/// Starts any server runtime in-process on `127.0.0.1:0`, on its own thread.
/// As a function pointer (`in_process::<PollingServer>`) it is a
/// [`Target::InProcess`].
pub fn in_process<S: runtime_common::cli::ChatServer>(config: ServerConfig) -> Running {
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = S::bind(addr, config)
        .and_then(|server| server.listen_door(addr, runtime_common::Door::irc()))
        .expect("bind");
    let addr = server.local_addr();
    let irc = server.door_addr(chat_core::server::Protocol::Irc, false);
    let stop = server.stopper();
    let thread = std::thread::spawn(move || server.run());
    let mut running = Running::thread(addr, Box::new(stop), thread);
    running.irc = irc;
    running
}

/// Raises this process's soft descriptor limit to its hard limit, once: the
/// scale cases hold both ends of thousands of connections in one process.
/// Uses util-linux `prlimit` on our own pid (no `unsafe` setrlimit).
pub fn raise_fd_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let script = format!(
            "prlimit --pid {} --nofile=$(ulimit -Hn):",
            std::process::id()
        );
        let _ = Command::new("sh").args(["-c", &script]).status();
    });
}

/// This process's soft limit on open descriptors, from `/proc/self/limits`.
pub fn descriptor_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Descriptors left for the other cases that run beside a scale case in the
/// same test process.
pub const SPARE_DESCRIPTORS: usize = 256;

/// `wanted` clients, or as many as the descriptor limit allows when it is
/// lower (with `per_client` descriptors each and [`SPARE_DESCRIPTORS`] left
/// for the cases running alongside), saying so: a machine with a hard limit
/// of 1,024 still runs the case, smaller. Scale cases also hold
/// [`hardening::exclusive`] so that two of them never share the budget.
pub fn scaled_to_descriptors(wanted: usize, per_client: usize) -> usize {
    let Some(limit) = descriptor_limit() else {
        return wanted;
    };
    let fits = limit.saturating_sub(SPARE_DESCRIPTORS) / per_client.max(1);
    if fits >= wanted {
        return wanted;
    }
    eprintln!(
        "note: only {limit} descriptors (hard limit); running with {fits} clients instead of {wanted}"
    );
    fits.max(1)
}

impl Target {
    pub fn start(&self, config: ServerConfig) -> Running {
        raise_fd_limit();
        match self {
            Target::InProcess(start) => start(config),
            Target::Binary(path) => spawn_binary(path, &config),
            Target::BinaryTls(path) => tls::spawn_binary(path, &config),
            Target::BinaryIrc(path) => irc::spawn_binary(path, &config),
        }
    }

    pub fn is_binary(&self) -> bool {
        matches!(
            self,
            Target::Binary(_) | Target::BinaryTls(_) | Target::BinaryIrc(_)
        )
    }
}

/// A blocking test client speaking frames, over TLS when it connects to an
/// address the [`tls`] module registered as a TLS listener.
pub struct Client {
    /// The TCP socket (under TLS, if any): for shutdowns, resets and options.
    pub stream: TcpStream,
    tls: Option<Arc<tls::Shared>>,
    deframer: Deframer,
    pending: std::collections::VecDeque<ServerFrame>,
    /// The stream ended with a reset (or, over TLS, without close_notify)
    /// rather than a clean end.
    pub cut: bool,
}

/// Writes to a [`Client`]'s connection from another thread.
pub struct Writer {
    stream: TcpStream,
    tls: Option<Arc<tls::Shared>>,
}

impl Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match &self.tls {
            None => self.stream.write(bytes),
            Some(tls) => tls.write_all(&mut self.stream, bytes).map(|()| bytes.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// What a read attempt found.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Frame(ServerFrame),
    Closed,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut client = Self {
            stream,
            tls: tls::client_for(addr),
            deframer: Deframer::new(),
            pending: std::collections::VecDeque::new(),
            cut: false,
        };
        client
            .stream
            .set_read_timeout(Some(PATIENCE))
            .expect("timeout");
        if let Some(tls) = &client.tls {
            tls.handshake(&mut client.stream);
        }
        client
    }

    /// Connects and registers as `name`; returns the roster it was given.
    pub fn join(addr: SocketAddr, name: &str) -> (Self, Vec<String>) {
        let mut client = Self::connect(addr);
        let roster = client.hello(name);
        (client, roster)
    }

    /// Registers, asserting WELCOME and a roster; returns the roster names.
    pub fn hello(&mut self, name: &str) -> Vec<String> {
        self.send(&ClientFrame::Hello {
            name: Name::new(name).unwrap(),
        });
        match self.recv() {
            ServerFrame::Welcome { name: got } => assert_eq!(got.as_str(), name),
            other => panic!("{name}: expected WELCOME, got {other:?}"),
        }
        self.roster()
    }

    /// Reads USERS frames up to the one with `last = 1`.
    pub fn roster(&mut self) -> Vec<String> {
        let mut names = Vec::new();
        loop {
            match self.recv() {
                ServerFrame::Users { last, names: part } => {
                    names.extend(part.iter().map(|n| n.as_str().to_owned()));
                    if last {
                        names.sort();
                        return names;
                    }
                }
                other => panic!("expected USERS, got {other:?}"),
            }
        }
    }

    pub fn send(&mut self, frame: &ClientFrame) {
        self.send_raw(&frame.to_bytes());
    }

    pub fn say(&mut self, text: &str) {
        self.send(&ClientFrame::Say {
            text: Text::new(text).unwrap(),
        });
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer().write_all(bytes).expect("write");
    }

    /// A second handle that writes to this client's connection (through its
    /// TLS, if any), for a writer thread while this one reads.
    pub fn writer(&self) -> Writer {
        Writer {
            stream: self.stream.try_clone().expect("clone the socket"),
            tls: self.tls.clone(),
        }
    }

    /// Whether this client speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The next frame or the end of the stream, within [`PATIENCE`].
    pub fn receive(&mut self) -> Received {
        self.next_within(PATIENCE)
            .unwrap_or_else(|| panic!("nothing received within {PATIENCE:?}"))
    }

    /// The next frame or end of stream, or `None` if `limit` passed first.
    pub fn next_within(&mut self, limit: Duration) -> Option<Received> {
        if let Some(frame) = self.pending.pop_front() {
            return Some(Received::Frame(frame));
        }
        let deadline = Instant::now() + limit;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let read = match &self.tls {
                None => self.stream.read(&mut buf),
                Some(tls) => tls.read(&mut self.stream, &mut buf),
            };
            match read {
                Ok(0) => return Some(Received::Closed),
                Ok(n) => {
                    let mut input = &buf[..n];
                    while let Some(frame) = self
                        .deframer
                        .next_frame(&mut input)
                        .expect("server framing")
                    {
                        self.pending
                            .push_back(ServerFrame::decode(frame).expect("server frame"));
                    }
                    if let Some(frame) = self.pending.pop_front() {
                        return Some(Received::Frame(frame));
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A reset, or (over TLS) the stream cut without close_notify.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
                    ) =>
                {
                    self.cut = true;
                    return Some(Received::Closed);
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// The next frame; panics at the end of the stream.
    pub fn recv(&mut self) -> ServerFrame {
        match self.receive() {
            Received::Frame(frame) => frame,
            Received::Closed => panic!("connection closed while a frame was expected"),
        }
    }

    /// Asserts the server closes the stream next (after any frames matching
    /// `allowed`), within [`PATIENCE`].
    pub fn expect_closed(&mut self) {
        match self.receive() {
            Received::Closed => {}
            Received::Frame(frame) => panic!("expected the end of the stream, got {frame:?}"),
        }
    }

    /// Asserts nothing arrives within `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration) {
        if let Some(got) = self.next_within(quiet) {
            panic!("expected silence, got {got:?}");
        }
    }

    /// Makes the next close a reset (SO_LINGER 0) and drops the connection.
    pub fn reset(self) {
        let socket = socket2::SockRef::from(&self.stream);
        socket.set_linger(Some(Duration::ZERO)).expect("linger");
        drop(self);
    }
}

/// Expands to one `#[test]` per shared case, each run against `$target`.
#[macro_export]
macro_rules! server_cases {
    ($target:expr) => {
        $crate::server_cases!(@each $target;
            registration_and_roster, names_taken_invalid_and_retry, requests_before_hello,
            public_and_private_messages, who_and_ping, bad_text_is_refused, bytewise_and_pipelined,
            protocol_errors_are_fatal, leaving_by_bye_eof_and_reset,
            a_half_closed_client_gets_its_answers, handshake_timeout,
            ping_then_idle_timeout, max_clients, one_burst_over_the_limit_drops_only_the_stalled_reader,
            readers_among_many_stalled, pipelining_client_is_slowed,
            shutdown_says_bye, many_clients_receive_a_broadcast);
    };
    (@each $target:expr; $($case:ident),* $(,)?) => {
        $crate::server_cases!(@each_in cases; $target; $($case),*);
    };
    (@each_in $module:ident; $target:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::$module::$case(&$target);
            }
        )*
    };
}
