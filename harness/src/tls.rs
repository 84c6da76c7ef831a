//! The harness over TLS: one self-signed certificate for `localhost` per
//! test process, servers started with a TLS listener, and a registry of TLS
//! addresses so that [`Client::connect`](crate::Client::connect) speaks TLS to
//! them and every shared case runs unchanged.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use chat_core::ServerConfig;
use runtime_common::cli::ChatServer;

use crate::Running;

/// The certificate and key files, written once per test process.
pub struct Pki {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// This process's certificate for `localhost`.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("chat-harness-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the certificate directory");
        // `localhost` only: a client that verifies `127.0.0.1` sees a
        // certificate for another name.
        let names = vec!["localhost".to_owned()];
        let certified = rcgen::generate_simple_self_signed(names).expect("generate a certificate");
        let pki = Pki {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&pki.cert, certified.cert.pem()).expect("write the certificate");
        std::fs::write(&pki.key, certified.signing_key.serialize_pem()).expect("write the key");
        pki
    })
}

/// The client settings that trust [`pki`].
pub fn client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        runtime_common::tls::client_config(Some(&pki().cert)).expect("client TLS settings")
    }))
}

fn registry() -> &'static Mutex<Vec<SocketAddr>> {
    static TLS_ADDRS: Mutex<Vec<SocketAddr>> = Mutex::new(Vec::new());
    &TLS_ADDRS
}

/// Marks `addr` as a TLS listener for the harness's clients.
pub fn register(addr: SocketAddr) {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(addr);
}

/// A TLS client connection when `addr` is a registered TLS listener.
pub fn client_for(addr: SocketAddr) -> Option<Arc<Shared>> {
    let known = registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&addr);
    known.then(|| {
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("a valid name");
        let conn = rustls::ClientConnection::new(client_config(), name).expect("a TLS client");
        Arc::new(Shared {
            conn: Mutex::new((conn, Vec::new())),
            write_order: Mutex::new(()),
        })
    })
}

/// A client's TLS, shared by a reading thread and writing threads. The
/// socket is never used under `conn`'s lock, so a writer blocked on a full
/// socket never keeps the reader from taking what the server sends (which
/// would deadlock against a server that paces its input); `write_order`
/// keeps records on the wire in the order they were sealed.
pub struct Shared {
    /// The connection, and sealed bytes read but not yet taken by it.
    conn: Mutex<(rustls::ClientConnection, Vec<u8>)>,
    write_order: Mutex<()>,
}

impl Shared {
    fn conn(&self) -> std::sync::MutexGuard<'_, (rustls::ClientConnection, Vec<u8>)> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Completes the handshake; a failure shows later as a closed stream.
    pub fn handshake(&self, socket: &mut TcpStream) {
        let _ = self.conn().0.complete_io(socket);
    }

    /// Reads from the socket until some plaintext, or the end, is there.
    pub fn read(&self, socket: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        let mut sealed = vec![0u8; buf.len().max(4096)];
        loop {
            {
                let mut guard = self.conn();
                let (conn, inbox) = &mut *guard;
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if !inbox.is_empty() {
                    // rustls takes what fits beside the plaintext it holds.
                    let mut input = inbox.as_slice();
                    conn.read_tls(&mut input)?;
                    let consumed = inbox.len() - input.len();
                    inbox.drain(..consumed);
                    conn.process_new_packets().map_err(io::Error::other)?;
                    continue;
                }
            }
            let n = socket.read(&mut sealed)?;
            if n == 0 {
                return Ok(0);
            }
            self.conn()
                .1
                .extend_from_slice(sealed.get(..n).unwrap_or_default());
        }
    }

    /// Seals `bytes` and writes the records.
    pub fn write_all(&self, socket: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
        let _order = self.write_order.lock().unwrap_or_else(|e| e.into_inner());
        let mut sealed = Vec::new();
        {
            let mut guard = self.conn();
            let conn = &mut guard.0;
            // rustls buffers a bounded amount of plaintext: seal as we go.
            for chunk in bytes.chunks(16 * 1024) {
                conn.writer().write_all(chunk)?;
                while conn.wants_write() {
                    conn.write_tls(&mut sealed)?;
                }
            }
        }
        socket.write_all(&sealed)
    }
}

/// Starts a server runtime in-process with a TLS listener beside the plain
/// one; the returned address is the TLS listener's.
pub fn in_process<S: ChatServer>(config: ServerConfig) -> Running {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let pki = pki();
    let server_config =
        runtime_common::tls::server_config(&pki.cert, &pki.key).expect("server TLS settings");
    let server = S::bind(any, config)
        .and_then(|server| server.listen_door(any, runtime_common::Door::native_tls(server_config)))
        .expect("bind");
    let addr = server
        .door_addr(chat_core::server::Protocol::Native, true)
        .expect("a TLS listener");
    register(addr);
    let stop = server.stopper();
    let thread = std::thread::spawn(move || server.run());
    Running::thread(addr, Box::new(stop), thread)
}

/// The flags that add a TLS listener with [`pki`]'s certificate.
pub fn flags() -> Vec<String> {
    let pki = pki();
    vec![
        "--tls-listen".into(),
        "127.0.0.1:0".into(),
        "--tls-cert".into(),
        pki.cert.display().to_string(),
        "--tls-key".into(),
        pki.key.display().to_string(),
    ]
}

/// Starts a server binary with a TLS listener; the returned address is the
/// TLS listener's, read from its `tls listening on IP:PORT` line.
pub fn spawn_binary(path: &str, config: &ServerConfig) -> Running {
    let (mut running, mut stdout) = crate::spawn_binary_args(&[], path, config, &flags());
    let addr = crate::read_listening_line(&mut stdout, "tls ");
    register(addr);
    running.addr = addr;
    running
}

/// Expands to one `#[test]` per TLS-only case, each run against `$target`
/// (a target whose clients are on its TLS listener).
#[macro_export]
macro_rules! tls_cases {
    ($target:expr) => {
        $crate::server_cases!(@each_in tls; $target;
            stalled_handshake_is_closed_at_the_handshake_timeout,
            garbage_instead_of_a_client_hello_is_closed_alone);
    };
}

/// A refused TLS client (the server is full) that hangs up in the middle of
/// its handshake is released at once, not read again and again until the
/// refusal's linger ends (which spun a core for that long). In-process
/// only: the linger is set far above the bound.
pub fn refused_handshake_that_hangs_up_is_released_at_once(target: &crate::Target) {
    use std::time::{Duration, Instant};
    let server = target.start(ServerConfig {
        max_clients: 1,
        linger: Duration::from_secs(20),
        ..ServerConfig::default()
    });
    let (_alice, _) = crate::Client::join(server.addr, "alice");
    let mut refused = TcpStream::connect(server.addr).expect("connect");
    refused.write_all(&partial_client_hello()).expect("write");
    refused
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    let started = Instant::now();
    assert!(closed_within(&mut refused, crate::PATIENCE), "closed");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "released after {:?}, not at the end of the 20 s linger",
        started.elapsed()
    );
}

/// The first bytes of a real ClientHello: a handshake that starts and stalls.
fn partial_client_hello() -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a valid name");
    let mut conn = rustls::ClientConnection::new(client_config(), name).expect("a TLS client");
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).expect("a ClientHello");
    hello.truncate(20);
    hello
}

/// Reads until the server closes the stream (bytes before it, an alert,
/// are dropped); true if it did within `limit`.
fn closed_within(stream: &mut TcpStream, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    let mut sink = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).expect("timeout");
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// A TLS handshake that starts and stalls, and a connection that never
/// starts one, are closed at the configured handshake timeout (not the
/// default 10 s); a registered user meanwhile is undisturbed.
pub fn stalled_handshake_is_closed_at_the_handshake_timeout(target: &crate::Target) {
    use std::time::{Duration, Instant};
    let timeout = Duration::from_millis(400);
    let server = target.start(ServerConfig {
        handshake_timeout: timeout,
        ..ServerConfig::default()
    });
    let (mut alice, _) = crate::Client::join(server.addr, "alice");
    let started = Instant::now();
    let mut stalled = TcpStream::connect(server.addr).expect("connect");
    stalled.write_all(&partial_client_hello()).expect("write");
    let mut silent = TcpStream::connect(server.addr).expect("connect");
    for stream in [&mut stalled, &mut silent] {
        assert!(
            closed_within(stream, crate::PATIENCE),
            "closed at the handshake timeout"
        );
    }
    let waited = started.elapsed();
    assert!(
        (timeout - Duration::from_millis(50)..Duration::from_secs(3)).contains(&waited),
        "closed after {waited:?}"
    );
    alice.say("still here");
    assert!(matches!(
        alice.recv(),
        chat_core::ServerFrame::Message { .. }
    ));
}

/// Native frames sent to the TLS listener (a client that forgot `--tls`)
/// close that connection, with nobody else affected: no LEFT, since it
/// never registered, and the registered user carries on.
pub fn garbage_instead_of_a_client_hello_is_closed_alone(target: &crate::Target) {
    let server = target.start(ServerConfig::default());
    let (mut alice, _) = crate::Client::join(server.addr, "alice");
    let mut plain = TcpStream::connect(server.addr).expect("connect");
    let hello = chat_core::ClientFrame::Hello {
        name: chat_core::Name::new("mallory").expect("a valid name"),
    };
    plain.write_all(&hello.to_bytes()).expect("write");
    assert!(closed_within(&mut plain, crate::PATIENCE), "closed");
    alice.say("still here");
    match alice.recv() {
        chat_core::ServerFrame::Message { from, .. } => assert_eq!(from.as_str(), "alice"),
        other => panic!("expected alice's own message, got {other:?}"),
    }
    let (_bob, roster) = crate::Client::join(server.addr, "bob");
    assert_eq!(roster, ["alice", "bob"], "mallory never registered");
}

/// The TLS flags of a server binary: a certificate or key that cannot be
/// used is exit 1 before anything listens (nothing on stdout), half the TLS
/// flags is a usage error (exit 2), and both listeners are announced.
pub fn command_line(path: &str) {
    let run = |args: &[String]| {
        let listen = ["--listen", "127.0.0.1:0"].map(String::from);
        crate::run_binary(path, listen.iter().chain(args))
    };
    let pki = pki();
    let cert = pki.cert.display().to_string();
    let key = pki.key.display().to_string();
    let missing = pki.cert.with_file_name("missing.pem").display().to_string();
    let tls = |cert: &str, key: &str| -> Vec<String> {
        [
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ]
        .map(String::from)
        .to_vec()
    };
    for (args, named) in [
        (tls(&missing, &key), missing.as_str()),
        (tls(&key, &key), key.as_str()),
        (tls(&cert, &cert), cert.as_str()),
    ] {
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing listens");
        assert!(
            stderr.contains(named),
            "{args:?}: the file is named: {stderr}"
        );
    }
    for half in [
        vec!["--tls-listen".to_owned(), "127.0.0.1:0".to_owned()],
        vec!["--tls-cert".to_owned(), cert.clone()],
    ] {
        let out = run(&half);
        assert_eq!(out.status.code(), Some(2), "{half:?}");
    }
    let (server, _) = crate::spawn_binary_args(&[], path, &ServerConfig::default(), &flags());
    drop(server);
}
