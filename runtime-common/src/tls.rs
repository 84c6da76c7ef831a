//! TLS around a chat connection, composed the sans-IO way.
//!
//! rustls is itself a state machine fed bytes, like the chat core, so the two
//! stack without either knowing: [`TlsSession::handle_input`] turns bytes
//! read from the socket into the plaintext the chat core reads, and
//! [`TlsSession::send`] takes the core's queued plaintext and leaves the
//! records to write in [`TlsSession::transmit`]. Nothing here touches a
//! socket or a clock; a runtime adds TLS by routing its reads and writes
//! through a session, most simply with the functions at the end of this
//! module ([`input`], [`outbound`], [`written`], [`has_outbound`],
//! [`wants_read`], [`end_of_stream`] and their `client_` twins).
//!
//! Invariants:
//! - Memory stays bounded per connection. Plaintext is taken from the core
//!   only once everything encrypted before it has been written, and at most
//!   [`PLAINTEXT_BATCH`] at a time; so what waits encrypted is one batch (plus
//!   handshake messages), and the core's `max_outbound` bounds the rest.
//! - The core sees a batch as written only once its records have all been
//!   written to the socket ([`TlsSession::acknowledge`]): until then it
//!   still counts it as queued, so its congestion pacing and its output
//!   limit see what waits to be encrypted and what waits to be written, and
//!   a graceful close comes only after the last record left.
//! - Nothing is taken from the core before the handshake completes.
//! - Every error is fatal to the one connection: the runtime may write what
//!   [`TlsSession::transmit`] holds (often an alert) without blocking, and
//!   closes it.

use std::io::{IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chat_core::{Client, ConnId, Server};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Plaintext taken from the chat core at a time: one TLS record's worth.
pub const PLAINTEXT_BATCH: usize = 16 * 1024;
/// Runs of the core's queue sealed in one batch at most.
const VECTORED_RUNS: usize = 128;
/// Capacity of the sealed-bytes buffer an idle session may keep.
const IDLE_BUFFER: usize = 2 * 1024;

/// Why TLS could not be set up, or a connection's TLS failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or holds no usable PEM.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The system has no root certificates to verify servers with.
    #[error("no system root certificates found; trust a CA file instead (chat: --ca FILE)")]
    NoRoots,
    /// The name to verify the server's certificate against is not a valid
    /// DNS name or IP address.
    #[error("{0:?} is not a valid server name for TLS")]
    ServerName(String),
    /// rustls refused: a bad certificate, a handshake failure, a corrupt
    /// record, a certificate that does not match the name.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// rustls's crypto, chosen here once: `ring` builds with the C compiler every
/// Rust machine has, without cmake or other system packages.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_error(path: &Path, problem: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    }
}

/// Reads every certificate of a PEM file (a chain: the server's first).
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The TLS settings of a server: the certificate chain and key from PEM
/// files, TLS 1.2 and 1.3, no client certificates.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = load_certificates(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| file_error(key, format!("cannot be used with {}: {e}", cert.display())))?;
    Ok(Arc::new(config))
}

/// The TLS settings of a client: servers are verified against `ca` (a PEM
/// file of trusted certificates) or, without it, the system's roots.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in load_certificates(path)? {
                roots.add(cert).map_err(|e| file_error(path, e))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(TlsError::NoRoots);
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name a client verifies the server's certificate against: the host
/// part of `addr` (`localhost:7878` -> `localhost`, `[::1]:7878` -> `::1`).
pub fn server_name_of(addr: &str) -> Result<ServerName<'static>, TlsError> {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|_| TlsError::ServerName(host.to_owned()))
}

/// One connection's TLS: socket bytes in, plaintext out, and back.
#[derive(Debug)]
pub struct TlsSession {
    conn: rustls::Connection,
    /// Encrypted bytes for the socket; `sent` of them are written.
    sealed: Vec<u8>,
    sent: usize,
    /// Plaintext taken by `send` whose records are not all written yet.
    in_flight: usize,
    /// The peer sent close_notify: its plaintext stream has ended.
    peer_closed: bool,
}

impl TlsSession {
    /// The server side of a new connection.
    pub fn server(config: Arc<rustls::ServerConfig>) -> Result<Self, TlsError> {
        let conn = rustls::ServerConnection::new(config)?;
        Ok(Self::new(conn.into()))
    }

    /// The client side of a new connection to `name`; the ClientHello is
    /// ready in [`transmit`](Self::transmit) at once.
    pub fn client(
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Self, TlsError> {
        let conn = rustls::ClientConnection::new(config, name)?;
        let mut session = Self::new(conn.into());
        session.seal();
        Ok(session)
    }

    fn new(mut conn: rustls::Connection) -> Self {
        // rustls's own plaintext buffer: what `send` gives it at most.
        conn.set_buffer_limit(Some(PLAINTEXT_BATCH));
        Self {
            conn,
            sealed: Vec::new(),
            sent: 0,
            in_flight: 0,
            peer_closed: false,
        }
    }

    /// Feeds bytes read from the socket and appends the plaintext they
    /// complete to `plaintext` (at most one record's worth more than `bytes`
    /// holds: a read may complete a record begun before). An error is fatal
    /// for the connection; [`transmit`](Self::transmit) may hold an alert to
    /// write before closing.
    pub fn handle_input(
        &mut self,
        mut bytes: &[u8],
        plaintext: &mut Vec<u8>,
    ) -> Result<(), TlsError> {
        while !bytes.is_empty() {
            let read = self.conn.read_tls(&mut bytes);
            let state = self.conn.process_new_packets();
            self.seal();
            let state = state?;
            if read.is_err() {
                // rustls's input buffer is full although we drain it after
                // every record: a peer sending what cannot be a record.
                return Err(rustls::Error::General("TLS input buffer full".into()).into());
            }
            self.take_plaintext(state.plaintext_bytes_to_read(), plaintext);
            if state.peer_has_closed() {
                self.peer_closed = true;
                break;
            }
        }
        Ok(())
    }

    fn take_plaintext(&mut self, available: usize, plaintext: &mut Vec<u8>) {
        let start = plaintext.len();
        plaintext.resize(start + available, 0);
        let got = match plaintext.get_mut(start..) {
            Some(room) => self.conn.reader().read(room).unwrap_or(0),
            None => 0,
        };
        plaintext.truncate(start + got);
    }

    /// The peer ended its side with close_notify: treat it as end of stream.
    pub fn peer_has_closed(&self) -> bool {
        self.peer_closed
    }

    /// Whether the handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether [`send`](Self::send) would take plaintext now (after
    /// [`acknowledge`](Self::acknowledge)): the handshake is done and
    /// everything encrypted before has been written.
    pub fn wants_plaintext(&self) -> bool {
        !self.conn.is_handshaking() && self.transmit().is_empty() && !self.conn.wants_write()
    }

    /// Once every record of the last batch is written: how many plaintext
    /// bytes that batch held, to report to the core as written (0 before,
    /// and 0 again after).
    pub fn acknowledge(&mut self) -> usize {
        if !self.transmit().is_empty() {
            return 0;
        }
        std::mem::take(&mut self.in_flight)
    }

    /// Takes up to [`PLAINTEXT_BATCH`] bytes of `plaintext` (the chat core's
    /// queued output, the last batch already acknowledged) to encrypt and
    /// returns how many it took; report them to the core when
    /// [`acknowledge`](Self::acknowledge) returns them. Takes nothing while
    /// a batch is in flight or [`wants_plaintext`](Self::wants_plaintext) is
    /// false.
    pub fn send(&mut self, plaintext: &[u8]) -> usize {
        if self.in_flight > 0 || !self.wants_plaintext() {
            return 0;
        }
        let batch = plaintext.get(..PLAINTEXT_BATCH).unwrap_or(plaintext);
        let taken = self.conn.writer().write(batch).unwrap_or(0);
        self.in_flight = taken;
        self.seal();
        taken
    }

    /// [`send`](Self::send) for plaintext in several runs (a queue's
    /// vectored output), sealed together: small runs share records.
    pub fn send_vectored(&mut self, runs: &[IoSlice<'_>]) -> usize {
        if self.in_flight > 0 || !self.wants_plaintext() {
            return 0;
        }
        match runs {
            // One run, or a first one that fills the batch (a feed read in
            // one piece): a plain write, cheaper in rustls than a vectored one.
            [only] => return self.send(only),
            [first, ..] if first.len() >= PLAINTEXT_BATCH => return self.send(first),
            _ => {}
        }
        let mut room = PLAINTEXT_BATCH;
        let mut batch = [IoSlice::new(&[]); VECTORED_RUNS];
        let mut filled = 0;
        for (slot, run) in batch.iter_mut().zip(runs) {
            if room == 0 {
                break;
            }
            let run = run.get(..room).unwrap_or(run);
            *slot = IoSlice::new(run);
            room -= run.len();
            filled += 1;
        }
        let batch = batch.get(..filled).unwrap_or_default();
        let taken = self.conn.writer().write_vectored(batch).unwrap_or(0);
        self.in_flight = taken;
        self.seal();
        taken
    }

    /// Encrypted bytes waiting for the socket.
    pub fn transmit(&self) -> &[u8] {
        self.sealed.get(self.sent..).unwrap_or_default()
    }

    /// `n` bytes of [`transmit`](Self::transmit) were written.
    pub fn handle_written(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.sealed.len());
        self.seal();
    }

    /// Queues close_notify, so the peer can tell our end from a cut.
    pub fn close(&mut self) {
        self.conn.send_close_notify();
        self.seal();
    }

    /// Moves what rustls has encrypted into `sealed`, once `sealed` is written.
    fn seal(&mut self) {
        if self.sent < self.sealed.len() {
            return;
        }
        self.sealed.clear();
        self.sent = 0;
        if !self.conn.wants_write() {
            // Idle: an idle connection should not keep a record's worth of
            // buffer (16 KiB each across thousands of connections).
            if self.sealed.capacity() > IDLE_BUFFER {
                self.sealed = Vec::new();
            }
            return;
        }
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sealed) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

/// The next bytes to write on `conn`'s socket: the server core's queue
/// itself, or, through `tls`, the records it has sealed (taking more of the
/// core's queue first when it can). Pair with [`written`].
pub fn outbound<'a>(
    core: &'a mut Server,
    tls: Option<&'a mut TlsSession>,
    now: Instant,
    conn: ConnId,
) -> &'a [u8] {
    match tls {
        None => core.outbound(conn),
        Some(tls) => {
            let acknowledged = tls.acknowledge();
            if acknowledged > 0 {
                core.handle_written(now, conn, acknowledged);
            }
            let mut runs = [IoSlice::new(&[]); VECTORED_RUNS];
            let filled = core.outbound_vectored(conn, &mut runs);
            let taken = tls.send_vectored(runs.get(..filled).unwrap_or_default());
            if taken > 0 {
                // Reported written once its records are (`acknowledge`).
                core.handle_taken(conn, taken);
            }
            tls.transmit()
        }
    }
}

/// `n` bytes of what [`outbound`] returned were written to the socket.
pub fn written(
    core: &mut Server,
    tls: Option<&mut TlsSession>,
    now: Instant,
    conn: ConnId,
    n: usize,
) {
    match tls {
        None => core.handle_written(now, conn, n),
        Some(tls) => tls.handle_written(n),
    }
}

/// Feeds bytes read from `conn`'s socket to the server core, through `tls`
/// if any (`plain` is scratch space for the plaintext). A TLS error is fatal:
/// write [`TlsSession::transmit`] (an alert) if you can, and close.
pub fn input(
    core: &mut Server,
    tls: Option<&mut TlsSession>,
    now: Instant,
    conn: ConnId,
    bytes: &[u8],
    plain: &mut Vec<u8>,
) -> Result<(), TlsError> {
    let Some(tls) = tls else {
        core.handle_input(now, conn, bytes);
        return Ok(());
    };
    plain.clear();
    let decrypted = tls.handle_input(bytes, plain);
    if !plain.is_empty() {
        core.handle_input(now, conn, plain);
    }
    if decrypted.is_ok() && tls.peer_has_closed() {
        core.handle_eof(now, conn);
    }
    decrypted
}

/// The end of `conn`'s stream (a read of 0 bytes). A connection the core is
/// closing is only read for its TLS handshake: once its peer is gone there
/// is nothing to wait for, and it is released at once rather than read
/// again (which would spin) until its linger ends.
pub fn end_of_stream(core: &mut Server, tls: Option<&TlsSession>, now: Instant, conn: ConnId) {
    if tls.is_some() && core.is_closing(conn) {
        core.handle_io_error(now, conn);
    } else {
        core.handle_eof(now, conn);
    }
}

/// Whether `conn`'s socket should be read: when the core wants input, and
/// also while a TLS handshake is under way on a connection the core is
/// closing (refused, or shutting down), so that its farewell can be said.
pub fn wants_read(core: &Server, tls: Option<&TlsSession>, conn: ConnId) -> bool {
    core.wants_read(conn) || tls.is_some_and(|tls| tls.is_handshaking() && core.is_closing(conn))
}

/// Whether `conn`'s socket has something to write now (see [`outbound`]).
pub fn has_outbound(core: &Server, tls: Option<&TlsSession>, conn: ConnId) -> bool {
    let queued = !core.outbound(conn).is_empty();
    match tls {
        None => queued,
        Some(tls) => !tls.transmit().is_empty() || (queued && tls.wants_plaintext()),
    }
}

/// [`input`] for the client core.
pub fn client_input(
    client: &mut Client,
    tls: Option<&mut TlsSession>,
    now: Instant,
    bytes: &[u8],
    plain: &mut Vec<u8>,
) -> Result<(), TlsError> {
    let Some(tls) = tls else {
        client.handle_input(now, bytes);
        return Ok(());
    };
    plain.clear();
    let decrypted = tls.handle_input(bytes, plain);
    if !plain.is_empty() {
        client.handle_input(now, plain);
    }
    if decrypted.is_ok() && tls.peer_has_closed() {
        client.handle_eof(now);
    }
    decrypted
}

/// What one `read` of a client's socket means for the client core: bytes
/// (through `tls`, if any), the end of the stream (`Ok(0)`), nothing yet
/// (would block, timed out, interrupted) or a broken connection. A TLS
/// failure (a certificate that does not verify, a corrupt record) is
/// returned as an `InvalidData` error wrapping the [`TlsError`]: the
/// connection is over.
pub fn client_read(
    client: &mut Client,
    tls: Option<&mut TlsSession>,
    now: Instant,
    read: std::io::Result<&[u8]>,
    plain: &mut Vec<u8>,
) -> std::io::Result<()> {
    use std::io::ErrorKind;
    match read {
        Ok([]) => client.handle_eof(now),
        Ok(bytes) => {
            if let Err(error) = client_input(client, tls, now, bytes, plain) {
                client.handle_eof(now);
                return Err(std::io::Error::new(ErrorKind::InvalidData, error));
            }
        }
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
            ) => {}
        Err(e) => {
            log::debug!("read failed: {e}");
            client.handle_eof(now);
        }
    }
    Ok(())
}

/// [`outbound`] for the client core.
pub fn client_outbound<'a>(client: &'a mut Client, tls: Option<&'a mut TlsSession>) -> &'a [u8] {
    match tls {
        None => client.outbound(),
        Some(tls) => {
            let acknowledged = tls.acknowledge();
            if acknowledged > 0 {
                client.handle_written(acknowledged);
            }
            tls.send(client.outbound());
            tls.transmit()
        }
    }
}

/// [`written`] for the client core.
pub fn client_written(client: &mut Client, tls: Option<&mut TlsSession>, n: usize) {
    match tls {
        None => client.handle_written(n),
        Some(tls) => tls.handle_written(n),
    }
}

/// [`has_outbound`] for the client core.
pub fn client_has_outbound(client: &Client, tls: Option<&TlsSession>) -> bool {
    let queued = !client.outbound().is_empty();
    match tls {
        None => queued,
        Some(tls) => !tls.transmit().is_empty() || (queued && tls.wants_plaintext()),
    }
}

#[cfg(test)]
mod tests;
