//! [`BlockingClient`]: a chat user on one blocking [`TcpStream`], for bots and
//! scripts, driving the same sans-IO [`Client`] as the `chat` terminal program.
//!
//! Every protocol decision stays in [`chat_core::client`]: what HELLO, SAY or
//! BYE look like on the wire, what the server's bytes mean, when a PING gets
//! its PONG, what the roster is. This module only moves bytes and reads the
//! clock.
//!
//! # Invariants
//!
//! - Every call that feeds the state machine (an intent, or bytes read in
//!   [`next_event`](BlockingClient::next_event)) writes everything it queued
//!   before returning, so PONGs go out as soon as their PING is read. A write
//!   that fails leaves the unwritten bytes queued; the next call tries again.
//! - The only blocking points are `connect`, `write` (bounded by
//!   [`WRITE_TIMEOUT`]) and `read` (bounded by the caller's timeout, the
//!   state machine's deadline ([`ClientConfig::idle_exit`], then its quit
//!   linger while quitting) and [`HANDSHAKE_TIMEOUT`] while connecting).
//!   Nothing sleeps.
//! - A failed read is the end of the stream for the state machine, which
//!   decides what it means: the caller sees it as the last event,
//!   [`ClientEvent::Closed`], not as an error. The one exception is TLS
//!   failing ([`connect_tls`](BlockingClient::connect_tls): a corrupt record,
//!   a certificate that does not verify): that read is returned once as an
//!   `InvalidData` error wrapping the `TlsError`, and `Closed` follows.
//! - Events come out in the order the state machine emits them, each once;
//!   after `Closed`, [`next_event`](BlockingClient::next_event) returns
//!   `Ok(None)` at once.
//!
//! A program that needs to wait on more than the chat (stdin, other sockets)
//! should drive [`Client`] from its own event loop instead, as the `chat`
//! program does.
//!
//! # Example
//!
//! A bot that greets everyone who joins, until the server goes away:
//!
//! ```no_run
//! use chat_core::client::{ClientConfig, ClientEvent};
//! use runtime_std::client::BlockingClient;
//!
//! // A bot is never idle: turn the idle exit off.
//! let config = ClientConfig::without_idle_exit();
//! let mut bot = BlockingClient::connect("127.0.0.1:7878", "greeter", config)?;
//! println!("online: {:?}", bot.roster());
//! while let Some(event) = bot.next_event(None)? {
//!     if let ClientEvent::Joined { name } = event {
//!         bot.say(&format!("welcome, {name}!"))?;
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::client::{Client, ClientConfig, ClientEvent, CloseReason, UsageError};
use chat_core::{ErrorCode, Name, NameError, Text, TextError};
use runtime_common::tls::{self, TlsError, TlsSession};

/// How long [`BlockingClient::connect`] waits for the TCP connection, and then
/// again for the server's answer to HELLO (the server's own handshake timeout
/// defaults to the same 10 s).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one blocking `write` may stall before the call reports
/// [`ErrorKind::TimedOut`] (the server is not reading).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read per `read` call.
const READ_CHUNK: usize = 16 * 1024;

/// Why [`BlockingClient::connect`] did not get a registered user.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The name is not valid; nothing was sent.
    #[error("invalid name: {0}")]
    InvalidName(#[source] NameError),
    /// The server could not be reached, or the socket failed.
    #[error("cannot connect: {0}")]
    Io(#[from] io::Error),
    /// Another user has this name (any case): `ERROR(NAME_TAKEN)`.
    #[error("name taken")]
    NameTaken {
        /// The server's detail, may be empty.
        detail: String,
    },
    /// The server refused the name: `ERROR(NAME_INVALID)`.
    #[error("the server refused the name")]
    NameInvalid {
        /// The server's detail, may be empty.
        detail: String,
    },
    /// The connection ended before registration, e.g. the server is full
    /// ([`CloseReason::ServerBye`] with [`chat_core::Reason::ServerFull`]) or
    /// shutting down.
    #[error("connection closed: {}", describe_close(.0))]
    Closed(CloseReason),
    /// No answer to HELLO within [`HANDSHAKE_TIMEOUT`].
    #[error("no answer from the server")]
    TimedOut,
    /// TLS failed: the server's certificate does not verify (unknown CA,
    /// another name, expired), or the handshake broke.
    #[error("{0}")]
    Tls(#[from] TlsError),
}

/// Why a [`say`](BlockingClient::say), [`whisper`](BlockingClient::whisper) or
/// [`who`](BlockingClient::who) failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The text is not valid; nothing was sent.
    #[error("invalid text: {0}")]
    InvalidText(#[source] TextError),
    /// The recipient's name is not valid; nothing was sent.
    #[error("invalid name: {0}")]
    InvalidName(#[source] NameError),
    /// The connection is closing or closed; nothing was sent.
    #[error("{0}")]
    Usage(#[from] UsageError),
    /// Writing failed. The request is queued and its unwritten bytes go out
    /// with the next call.
    #[error("write failed: {0}")]
    Io(#[from] io::Error),
}

/// One registered chat user on a blocking socket. See the [module
/// docs](self).
///
/// Dropping it without [`quit`](Self::quit) closes the socket: the others see
/// the user leave as `DISCONNECTED` rather than `QUIT`.
#[derive(Debug)]
pub struct BlockingClient {
    stream: TcpStream,
    /// TLS between the socket and the state machine, from [`connect_tls`](Self::connect_tls).
    tls: Option<Box<TlsSession>>,
    /// Plaintext of the last TLS read.
    plain_buf: Vec<u8>,
    client: Client,
    name: Name,
    read_buf: Vec<u8>,
}

impl BlockingClient {
    /// Connects to `addr`, registers as `name` and returns once the server
    /// answered with WELCOME and the roster ([`roster`](Self::roster)). The
    /// `Welcome` and `Roster` events are consumed here, not returned by
    /// [`next_event`](Self::next_event).
    pub fn connect(
        addr: impl ToSocketAddrs,
        name: &str,
        config: ClientConfig,
    ) -> Result<Self, ConnectError> {
        Self::connect_with(addr, name, config, None)
    }

    /// [`connect`](Self::connect) over TLS: the server's certificate is
    /// verified with `tls` (see `runtime_common::tls::client_config`: the
    /// system's roots or a private CA) against the host part of `addr`. A
    /// certificate that does not verify is a [`ConnectError::Tls`].
    pub fn connect_tls(
        addr: &str,
        name: &str,
        config: ClientConfig,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Self, ConnectError> {
        let session = TlsSession::client(tls, tls::server_name_of(addr)?)?;
        Self::connect_with(addr, name, config, Some(Box::new(session)))
    }

    fn connect_with(
        addr: impl ToSocketAddrs,
        name: &str,
        config: ClientConfig,
        tls: Option<Box<TlsSession>>,
    ) -> Result<Self, ConnectError> {
        let name = Name::new(name).map_err(ConnectError::InvalidName)?;
        let stream = runtime_common::connect(addr, HANDSHAKE_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let now = Instant::now();
        let mut this = Self {
            stream,
            tls,
            plain_buf: Vec::new(),
            client: Client::new(config, now),
            name,
            read_buf: vec![0; READ_CHUNK],
        };
        // A fresh client accepts HELLO; should it refuse, the handshake below
        // would simply time out.
        let _ = this.client.hello(now, name);
        this.flush()?;
        let deadline = now + HANDSHAKE_TIMEOUT;
        loop {
            match this.client.poll_event() {
                Some(ClientEvent::Welcome { name }) => this.name = name,
                // Sent right after WELCOME: registration is complete.
                Some(ClientEvent::Roster { .. }) if this.client.name().is_some() => {
                    return Ok(this);
                }
                Some(ClientEvent::Error { code, detail }) => match code {
                    ErrorCode::NameTaken => return Err(ConnectError::NameTaken { detail }),
                    ErrorCode::NameInvalid => return Err(ConnectError::NameInvalid { detail }),
                    _ => log::debug!("ignored during the handshake: {code:?} {detail}"),
                },
                Some(ClientEvent::Closed { reason }) => return Err(ConnectError::Closed(reason)),
                // The server sends nothing else before the roster.
                Some(other) => log::debug!("ignored during the handshake: {other:?}"),
                None => match this.read_until(Some(deadline)) {
                    Ok(true) => {}
                    Ok(false) => return Err(ConnectError::TimedOut),
                    Err(error) => {
                        // A TLS failure keeps its own variant.
                        return Err(match error.downcast::<TlsError>() {
                            Ok(tls) => ConnectError::Tls(tls),
                            Err(io) => ConnectError::Io(io),
                        });
                    }
                },
            }
        }
    }

    /// Our name as the server registered it.
    pub fn name(&self) -> Name {
        self.name
    }

    /// The registered users, us included, sorted ignoring ASCII case: the
    /// roster received at registration with every `Joined`, `Left` and
    /// `Roster` event returned since applied.
    pub fn roster(&self) -> Vec<Name> {
        self.client.roster().copied().collect()
    }

    /// Whether the connection is over (the `Closed` event is queued or was
    /// returned).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The state machine, for anything this wrapper does not expose.
    pub fn state(&self) -> &Client {
        &self.client
    }

    /// Says `text` to everyone; it comes back as a [`ClientEvent::Message`]
    /// from us, like everyone else's.
    pub fn say(&mut self, text: &str) -> Result<(), SendError> {
        let text = Text::new(text).map_err(SendError::InvalidText)?;
        self.client.say(Instant::now(), text)?;
        Ok(self.flush()?)
    }

    /// Says `text` to `to` only. Emits [`ClientEvent::PrivateSent`] at once; a
    /// [`ClientEvent::Error`] with [`ErrorCode::NoSuchUser`] follows if nobody
    /// has that name.
    pub fn whisper(&mut self, to: &str, text: &str) -> Result<(), SendError> {
        let to = Name::new(to).map_err(SendError::InvalidName)?;
        let text = Text::new(text).map_err(SendError::InvalidText)?;
        self.client.whisper(Instant::now(), to, text)?;
        Ok(self.flush()?)
    }

    /// Asks for the roster; the answer arrives as [`ClientEvent::Roster`].
    pub fn who(&mut self) -> Result<(), SendError> {
        self.client.who(Instant::now())?;
        Ok(self.flush()?)
    }

    /// The next event, waiting at most `timeout` for one (`None`: as long as
    /// it takes). `Ok(None)` when the timeout passed without an event, and at
    /// once after [`ClientEvent::Closed`] was returned.
    ///
    /// While waiting it answers the server's PINGs and, when
    /// [`ClientConfig::idle_exit`] is set, leaves once no intent came for that
    /// long ([`ClientEvent::IdleExit`], then `Closed` once the server answered
    /// the BYE or the quit linger ([`ClientConfig::quit_linger`]) passed). An `Err` means writing (or setting
    /// the socket's read timeout) failed, the unwritten bytes staying queued,
    /// or TLS failed (see the module docs).
    pub fn next_event(&mut self, timeout: Option<Duration>) -> io::Result<Option<ClientEvent>> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            // Bytes a failed write left behind go first.
            self.flush()?;
            if let Some(event) = self.client.poll_event() {
                return Ok(Some(event));
            }
            if self.client.is_closed() || !self.read_until(deadline)? {
                return Ok(None);
            }
        }
    }

    /// Leaves: sends BYE and waits at most the quit linger for the server's
    /// answer, dropping the events that arrive meanwhile, then closes the
    /// socket. Returns how the connection ended ([`CloseReason::Quit`] unless
    /// something crossed our BYE), or `None` if it had ended before.
    pub fn quit(mut self) -> io::Result<Option<CloseReason>> {
        self.client.quit(Instant::now());
        let mut ended = None;
        while let Some(event) = self.next_event(None)? {
            if let ClientEvent::Closed { reason } = event {
                ended = Some(reason);
                break;
            }
        }
        if let Some(tls) = self.tls.as_deref_mut() {
            // close_notify, best effort: our end, not a cut.
            tls.close();
            let _ = self.stream.write(tls.transmit());
        }
        Ok(ended)
    }

    /// Waits for the server once: one read, bounded by `deadline` and the
    /// state machine's own deadline (idle exit, quit linger), fed to the
    /// state machine, whose output is then written. `Ok(false)` once
    /// `deadline` has passed.
    fn read_until(&mut self, deadline: Option<Instant>) -> io::Result<bool> {
        let now = Instant::now();
        if self.client.poll_timeout().is_some_and(|t| now >= t) {
            // The idle exit (an event, BYE queued) or the end of the quit
            // linger (Closed).
            self.client.handle_timeout(now);
            self.flush()?;
            return Ok(true);
        }
        if deadline.is_some_and(|d| now >= d) {
            return Ok(false);
        }
        let wake = [deadline, self.client.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        // A zero read timeout is refused, hence the floor of 1 ms.
        let wait = wake.map(|t| {
            t.saturating_duration_since(now)
                .max(Duration::from_millis(1))
        });
        self.stream.set_read_timeout(wait)?;
        let read = self.stream.read(&mut self.read_buf);
        let bytes = read.map(|n| self.read_buf.get(..n).unwrap_or_default());
        let tls = self.tls.as_deref_mut();
        tls::client_read(
            &mut self.client,
            tls,
            Instant::now(),
            bytes,
            &mut self.plain_buf,
        )?;
        self.flush()?;
        Ok(true)
    }

    /// Writes everything the state machine queued.
    fn flush(&mut self) -> io::Result<()> {
        loop {
            let pending = tls::client_outbound(&mut self.client, self.tls.as_deref_mut());
            if pending.is_empty() {
                break;
            }
            match self.stream.write(pending) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => tls::client_written(&mut self.client, self.tls.as_deref_mut(), n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        ErrorKind::TimedOut,
                        "the server is not reading",
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn describe_close(reason: &CloseReason) -> String {
    match reason {
        CloseReason::Quit => "quit".into(),
        CloseReason::ServerBye { reason, detail } if detail.is_empty() => {
            format!("server said bye ({})", reason.describe())
        }
        CloseReason::ServerBye { reason, detail } => {
            format!("server said bye ({}: {detail})", reason.describe())
        }
        CloseReason::Disconnected => "the server closed the connection".into(),
        CloseReason::ProtocolError(error) => format!("protocol error from the server: {error}"),
    }
}
