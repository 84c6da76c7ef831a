//! Arbitrary bytes into a TLS-wrapped server connection: the sans-IO TLS
//! layer of `runtime_common::tls` in front of a `chat_core::Server`, as the
//! runtimes compose them.
//!
//! The first byte picks a script. Even: the rest is raw socket input (a
//! hostile or broken ClientHello), fed in pieces whose sizes come from the
//! input. Odd: a real client completes the handshake, then the rest is its
//! plaintext (chat frames or garbage), sealed properly, with one byte of the
//! records flipped when the second byte says so. Either way: no panic, the
//! plaintext handed to the core is never more than the bytes fed plus one
//! record begun before, what waits to be written stays bounded, and after a
//! TLS error nothing more is accepted.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chat_core::{Server, ServerConfig};
use runtime_common::tls::{self, TlsSession};

/// A bound on sealed bytes waiting at once: one batch of plaintext plus
/// record overhead, or the handshake flight.
const SEALED_BOUND: usize = tls::PLAINTEXT_BATCH + 8 * 1024;

struct Setup {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("chat-fuzz-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        Setup {
            server: tls::server_config(&cert, &key).unwrap(),
            client: tls::client_config(Some(&cert)).unwrap(),
        }
    })
}

/// The server side: a core with one connection behind TLS.
struct Side {
    core: Server,
    conn: chat_core::ConnId,
    tls: TlsSession,
    plain: Vec<u8>,
    failed: bool,
    now: Instant,
}

impl Side {
    fn new() -> Self {
        let now = Instant::now();
        let mut core = Server::new(ServerConfig {
            max_outbound: 4096,
            ..ServerConfig::default()
        });
        let conn = core.handle_accept(now);
        let tls = TlsSession::server(Arc::clone(&setup().server)).unwrap();
        Self { core, conn, tls, plain: Vec::new(), failed: false, now }
    }

    /// Feeds socket bytes, checking the bounds.
    fn feed(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        self.now += Duration::from_millis(1);
        let result = tls::input(&mut self.core, Some(&mut self.tls), self.now, self.conn, bytes, &mut self.plain);
        // A read may complete a record begun in the last one: at most one
        // record's plaintext (16 KiB) more than the bytes of this read.
        assert!(self.plain.len() <= bytes.len() + 16 * 1024, "plaintext out of thin air");
        self.failed = result.is_err();
        self.core.handle_timeout(self.now);
        assert!(self.tls.transmit().len() <= SEALED_BOUND, "sealed backlog");
    }

    /// Everything the server would write now (taking the core's output).
    fn drain(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let pending = tls::outbound(&mut self.core, Some(&mut self.tls), self.now, self.conn);
            assert!(pending.len() <= SEALED_BOUND, "sealed backlog");
            if pending.is_empty() {
                return out;
            }
            out.extend_from_slice(pending);
            let n = pending.len();
            tls::written(&mut self.core, Some(&mut self.tls), self.now, self.conn, n);
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut server = Side::new();
    if mode % 2 == 0 {
        // Raw input in pieces of 1..=64 bytes, sizes drawn from the input.
        let mut rest = rest;
        while let Some((&size, tail)) = rest.split_first() {
            let n = usize::from(size % 64 + 1).min(tail.len());
            let (piece, tail) = tail.split_at(n);
            server.feed(piece);
            server.drain();
            rest = tail;
            if n == 0 {
                break;
            }
        }
        return;
    }
    let (flip, plaintext) = rest.split_first().map_or((0, &[][..]), |(f, p)| (*f, p));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut client = TlsSession::client(Arc::clone(&setup().client), name).unwrap();
    let mut scratch = Vec::new();
    // The handshake, in memory.
    for _ in 0..8 {
        let hello = client.transmit().to_vec();
        client.handle_written(hello.len());
        server.feed(&hello);
        let answer = server.drain();
        if client.handle_input(&answer, &mut scratch).is_err() {
            return;
        }
        if !client.is_handshaking() && client.transmit().is_empty() {
            break;
        }
    }
    let mut offset = 0;
    while offset < plaintext.len() {
        let taken = client.send(&plaintext[offset..]);
        offset += taken;
        let mut records = client.transmit().to_vec();
        client.handle_written(records.len());
        if flip != 0 {
            if let Some(byte) = records.get_mut(usize::from(flip)) {
                *byte ^= 0x5a;
            }
        }
        server.feed(&records);
        let answer = server.drain();
        let _ = client.handle_input(&answer, &mut scratch);
        if taken == 0 || server.failed {
            break;
        }
    }
});
