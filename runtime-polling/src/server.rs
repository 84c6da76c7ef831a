//! The server event loop: sockets in, [`chat_core::Server`] decides.
//!
//! Invariants:
//! - Exactly one `read` per readiness event per connection, into one reusable
//!   buffer: a flooding client cannot starve the others.
//! - A turn is: wait, read, write. Long write phases look for input every
//!   256 sockets during their first pass over the connections (a bounded
//!   number of times, so a turn always ends and timers and the stop flag are
//!   never starved).
//! - Output is written until `WouldBlock`; writable interest is registered only
//!   while a connection has output pending. Readable interest is dropped while
//!   the core does not want input from that connection (its output is backed
//!   up), so a paused connection never spins the loop.
//! - The wait timeout is the core's next deadline; sockets are closed exactly
//!   when the core emits [`ServerEvent::Close`].
//! - Running out of descriptors pauses accepting (logged once) until a
//!   connection closes or a short back-off passes; it never spins.

#![allow(unsafe_code)] // polling::Poller::add is unsafe; see the SAFETY comment there.

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chat_core::server::{ConnId, Protocol, Server, ServerConfig, ServerEvent};
use polling::{Event as Interest, Events, PollMode, Poller};

use runtime_common::tls::{self, TlsSession};
use runtime_common::{
    Door, LogThrottle, close_connection, is_out_of_descriptors, listen, log_event, tune_accepted,
    warn_out_of_descriptors,
};

/// Poller key of the listening socket; connections use their `ConnId` index.
const LISTENER: usize = usize::MAX - 1;
/// Poller key of the first extra listener (`Door`); the next ones count down.
const DOOR_KEYS: usize = usize::MAX - 2;
/// Bytes read per readiness event.
const READ_CHUNK: usize = 64 * 1024;
/// Connections accepted per loop turn, so a connect storm cannot starve reads.
const ACCEPTS_PER_TURN: usize = 256;
/// Extra non-blocking polls per turn before output is written (see the loop).
const COALESCE_PASSES: usize = 2;
/// Runs of a connection's queue handed to one vectored write.
const WRITE_RUNS: usize = 128;
/// Sockets written between looks for new input during a long write phase.
const WRITE_SLICE: usize = 256;
/// Least time between two warnings about running out of descriptors.
const DESCRIPTOR_WARNING_INTERVAL: Duration = Duration::from_secs(5);
/// How long accepting pauses after the process ran out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Stops a running [`PollingServer`] from any thread.
#[derive(Debug, Clone)]
pub struct StopHandle {
    poller: Arc<Poller>,
    stop: Arc<AtomicBool>,
}

impl StopHandle {
    /// Starts the graceful shutdown: every client gets `BYE(SHUTDOWN)`, output
    /// is flushed for at most the configured linger (1 s), then `run` returns.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Err(error) = self.poller.notify() {
            log::error!("cannot wake the event loop: {error}");
        }
    }
}

struct Socket {
    stream: TcpStream,
    conn: ConnId,
    peer: SocketAddr,
    /// TLS between the socket and the core, on connections of the TLS listener.
    tls: Option<Box<TlsSession>>,
    readable: bool,
    writable: bool,
}

/// An extra listener (TLS, IRC) and what its connections speak.
struct DoorListener {
    listener: TcpListener,
    local_addr: SocketAddr,
    door: Door,
}

/// The reference chat server on one epoll loop.
pub struct PollingServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    doors: Vec<DoorListener>,
    poller: Arc<Poller>,
    stop: Arc<AtomicBool>,
    core: Server,
    /// Indexed by `ConnId::index()`.
    sockets: Vec<Option<Socket>>,
    read_buf: Vec<u8>,
    /// Plaintext of the last TLS read.
    plain_buf: Vec<u8>,
    /// Small runs of one write gathered (see `runtime_common::coalesce`).
    write_buf: Vec<u8>,
    /// Connections whose interest may need updating after this turn.
    touched: Vec<ConnId>,
    /// Readiness taken in the middle of a write phase (see `drain_core`).
    slice_events: Option<Events>,
    accept_paused_until: Option<Instant>,
    descriptor_warning: LogThrottle,
}

impl std::fmt::Debug for PollingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollingServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl PollingServer {
    /// Binds the listening socket. Nothing is accepted until [`run`](Self::run).
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<Self> {
        let listener = listen(addr)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let poller = Arc::new(Poller::new()?);
        // SAFETY: the listener is owned by `self` and deleted from the poller
        // in `run` before it is dropped.
        unsafe { poller.add_with_mode(&listener, Interest::readable(LISTENER), PollMode::Level)? };
        Ok(Self {
            listener,
            local_addr,
            doors: Vec::new(),
            poller,
            stop: Arc::new(AtomicBool::new(false)),
            core: runtime_common::core_with_wall_clock(config),
            sockets: Vec::new(),
            read_buf: vec![0; READ_CHUNK],
            plain_buf: Vec::new(),
            write_buf: Vec::new(),
            touched: Vec::new(),
            slice_events: Some(Events::new()),
            accept_paused_until: None,
            descriptor_warning: LogThrottle::new(DESCRIPTOR_WARNING_INTERVAL),
        })
    }

    /// Also serves the protocol over TLS on `addr`, with `config`'s
    /// certificate (see `runtime_common::tls::server_config`).
    pub fn listen_tls(
        self,
        addr: impl ToSocketAddrs,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<Self> {
        self.listen_door(addr, Door::native_tls(config))
    }

    /// Also serves IRC (`IRC.md`) on `addr`.
    pub fn listen_irc(self, addr: impl ToSocketAddrs) -> io::Result<Self> {
        self.listen_door(addr, Door::irc())
    }

    /// Also accepts connections on `addr`, speaking what `door` says.
    pub fn listen_door(mut self, addr: impl ToSocketAddrs, door: Door) -> io::Result<Self> {
        let listener = listen(addr)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let key = DOOR_KEYS - self.doors.len();
        // SAFETY: the listener is owned by `self` and deleted from the poller
        // in `run` before it is dropped.
        unsafe {
            self.poller
                .add_with_mode(&listener, Interest::readable(key), PollMode::Level)?
        };
        self.doors.push(DoorListener {
            listener,
            local_addr,
            door,
        });
        Ok(self)
    }

    /// The address of the first extra listener that speaks `protocol`,
    /// over TLS or not.
    pub fn door_addr(&self, protocol: Protocol, tls: bool) -> Option<SocketAddr> {
        self.doors
            .iter()
            .find(|d| d.door.protocol == protocol && d.door.tls.is_some() == tls)
            .map(|d| d.local_addr)
    }

    /// The address the server listens on (with the real port when bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the TLS listener, if there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.door_addr(Protocol::Native, true)
    }

    /// The address of the IRC listener, if there is one.
    pub fn irc_addr(&self) -> Option<SocketAddr> {
        self.door_addr(Protocol::Irc, false)
    }

    /// A handle that stops the server from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            poller: Arc::clone(&self.poller),
            stop: Arc::clone(&self.stop),
        }
    }

    /// Serves until stopped, then shuts down gracefully and returns.
    pub fn run(mut self) -> io::Result<()> {
        let result = self.event_loop();
        for socket in self.sockets.iter().flatten() {
            let _ = self.poller.delete(&socket.stream);
        }
        let _ = self.poller.delete(&self.listener);
        for door in &self.doors {
            let _ = self.poller.delete(&door.listener);
        }
        result
    }

    fn event_loop(&mut self) -> io::Result<()> {
        let mut events = Events::new();
        let mut shutting_down = false;
        loop {
            let timeout = if !shutting_down && self.stop.load(Ordering::SeqCst) {
                // A wait during the last turn may have taken the stop
                // handle's wake-up: do not block.
                Some(Duration::ZERO)
            } else {
                self.next_wakeup()
                    .map(|t| t.saturating_duration_since(Instant::now()))
            };
            wait(&self.poller, &mut events, timeout)?;
            let now = Instant::now();
            self.on_events(now, &events, shutting_down);
            // Under load, take in what arrived meanwhile before writing, so
            // each write carries a bigger batch. Each pass still reads every
            // ready connection at most once.
            for _ in 0..COALESCE_PASSES {
                if events.len() < 2 {
                    break;
                }
                wait(&self.poller, &mut events, Some(Duration::ZERO))?;
                self.on_events(now, &events, shutting_down);
            }
            // Checked after the turn's last wait: any of them may have taken
            // the stop handle's wake-up.
            if !shutting_down && self.stop.load(Ordering::SeqCst) {
                shutting_down = true;
                log::info!(
                    "shutting down: saying BYE to {} connections",
                    self.core.connection_count()
                );
                self.core.shutdown(now);
                // Connections still in the backlog get their BYE too.
                self.accept(now, None);
                for door in 0..self.doors.len() {
                    self.accept(now, Some(door));
                }
                self.poller.delete(&self.listener)?;
                for door in &self.doors {
                    self.poller.delete(&door.listener)?;
                }
                // The listener is gone from the poller: nothing to resume.
                self.accept_paused_until = None;
            }
            if self
                .accept_paused_until
                .is_some_and(|until| now >= until && !shutting_down)
            {
                self.resume_accepting();
            }
            runtime_common::handle_timeout_then_trim(&mut self.core, now);
            self.drain_core(now, shutting_down);
            if shutting_down && self.core.is_shut_down() {
                log::info!("shutdown complete");
                return Ok(());
            }
        }
    }

    fn on_events(&mut self, now: Instant, events: &Events, shutting_down: bool) {
        for event in events.iter() {
            let door = DOOR_KEYS
                .checked_sub(event.key)
                .filter(|&door| door < self.doors.len());
            if event.key == LISTENER || door.is_some() {
                if !shutting_down {
                    self.accept(now, door);
                }
            } else {
                self.on_socket_event(now, event);
            }
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        match (self.core.poll_timeout(), self.accept_paused_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Accepts from the plain listener or, with `Some(door)`, that extra one.
    fn accept(&mut self, now: Instant, door: Option<usize>) {
        for _ in 0..ACCEPTS_PER_TURN {
            let (accepted, door) = match door.map(|d| self.doors.get(d)) {
                None => (self.listener.accept(), Door::native()),
                Some(Some(d)) => (d.listener.accept(), d.door.clone()),
                Some(None) => return,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let session = match door.tls.map(TlsSession::server) {
                        None => None,
                        Some(Ok(session)) => Some(Box::new(session)),
                        Some(Err(error)) => {
                            log::warn!("cannot start TLS for {peer}: {error}");
                            continue;
                        }
                    };
                    let protocol = door.protocol;
                    if let Err(error) = self.add_connection(now, stream, peer, protocol, session) {
                        log::warn!("cannot set up connection from {peer}: {error}");
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if is_out_of_descriptors(&e) => {
                    warn_out_of_descriptors(&mut self.descriptor_warning, &e);
                    self.pause_accepting(now);
                    return;
                }
                // ECONNABORTED, EINTR and friends concern one connection attempt.
                Err(e) => log::debug!("accept failed: {e}"),
            }
        }
    }

    fn pause_accepting(&mut self, now: Instant) {
        self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
        self.set_listening(false);
    }

    fn resume_accepting(&mut self) {
        self.accept_paused_until = None;
        self.set_listening(true);
    }

    fn set_listening(&self, on: bool) {
        let doors = self
            .doors
            .iter()
            .enumerate()
            .map(|(i, door)| (&door.listener, DOOR_KEYS - i));
        for (listener, key) in std::iter::once((&self.listener, LISTENER)).chain(doors) {
            let interest = if on {
                Interest::readable(key)
            } else {
                Interest::none(key)
            };
            // Level, as registered: `modify` alone would make the listener
            // one-shot, and it would stop accepting after its next event.
            if let Err(error) = self
                .poller
                .modify_with_mode(listener, interest, PollMode::Level)
            {
                log::error!("cannot pause or resume a listener: {error}");
            }
        }
    }

    /// The address of `conn`'s peer, while its socket is open.
    fn peer_of(&self, conn: ConnId) -> Option<SocketAddr> {
        match self.sockets.get(conn.index()) {
            Some(Some(socket)) if socket.conn == conn => Some(socket.peer),
            _ => None,
        }
    }

    fn add_connection(
        &mut self,
        now: Instant,
        stream: TcpStream,
        peer: SocketAddr,
        protocol: Protocol,
        tls: Option<Box<TlsSession>>,
    ) -> io::Result<()> {
        stream.set_nonblocking(true)?;
        tune_accepted(&stream)?;
        let label = runtime_common::door_label(protocol, tls.is_some());
        let conn = match protocol {
            Protocol::Native => self.core.handle_accept(now),
            Protocol::Irc => self.core.handle_accept_irc(now),
        };
        let key = conn.index();
        // SAFETY: the stream is stored in `self.sockets` and deleted from the
        // poller (in `close` or at the end of `run`) before it is dropped.
        let added = unsafe {
            self.poller
                .add_with_mode(&stream, Interest::readable(key), PollMode::Level)
        };
        if let Err(error) = added {
            self.core.handle_io_error(now, conn);
            return Err(error);
        }
        if self.sockets.len() <= key {
            self.sockets.resize_with(key + 1, || None);
        }
        if let Some(slot) = self.sockets.get_mut(key) {
            *slot = Some(Socket {
                stream,
                conn,
                peer,
                tls,
                readable: true,
                writable: false,
            });
        }
        log::debug!("accepted {conn} [{peer}] ({label})");
        self.touched.push(conn);
        Ok(())
    }

    fn on_socket_event(&mut self, now: Instant, event: Interest) {
        let Some(Some(socket)) = self.sockets.get_mut(event.key) else {
            return;
        };
        let conn = socket.conn;
        if event.readable && tls::wants_read(&self.core, socket.tls.as_deref(), conn) {
            match socket.stream.read(&mut self.read_buf) {
                Ok(0) => tls::end_of_stream(&mut self.core, socket.tls.as_deref(), now, conn),
                Ok(n) => {
                    let bytes = self.read_buf.get(..n).unwrap_or_default();
                    let tls = socket.tls.as_deref_mut();
                    let fed =
                        tls::input(&mut self.core, tls, now, conn, bytes, &mut self.plain_buf);
                    if let Err(error) = fed {
                        log::debug!("TLS of {conn} failed: {error}");
                        // Its alert, best effort, then closed.
                        if let Some(tls) = &socket.tls {
                            let _ = socket.stream.write(tls.transmit());
                        }
                        self.core.handle_io_error(now, conn);
                    } else if socket.tls.is_some() {
                        // Handshake messages need writing whether or not
                        // the core has anything to say.
                        self.flush(now, conn);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => {
                    log::debug!("read from {conn} failed: {e}");
                    self.core.handle_io_error(now, conn);
                }
            }
        }
        if event.writable {
            self.flush(now, conn);
        }
        self.touched.push(conn);
    }

    /// Writes `conn`'s queued output until it is empty or the socket is full.
    fn flush(&mut self, now: Instant, conn: ConnId) {
        let Some(Some(socket)) = self.sockets.get_mut(conn.index()) else {
            return;
        };
        loop {
            let written = if socket.tls.is_none() {
                // Own frames and feed bytes alternate in a queue: one
                // system call for several runs.
                let mut runs = [IoSlice::new(&[]); WRITE_RUNS];
                let filled = self.core.outbound_vectored(conn, &mut runs);
                let Some(runs) = runs.get_mut(..filled).filter(|runs| !runs.is_empty()) else {
                    break;
                };
                let filled = runtime_common::coalesce(runs, &mut self.write_buf);
                socket
                    .stream
                    .write_vectored(runs.get(..filled).unwrap_or_default())
            } else {
                let pending = tls::outbound(&mut self.core, socket.tls.as_deref_mut(), now, conn);
                if pending.is_empty() {
                    break;
                }
                socket.stream.write(pending)
            };
            match written {
                Ok(n) => tls::written(&mut self.core, socket.tls.as_deref_mut(), now, conn, n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("write to {conn} failed: {e}");
                    self.core.handle_io_error(now, conn);
                    break;
                }
            }
        }
        self.touched.push(conn);
    }

    /// Drains the core's outputs until it has nothing more to say, then brings
    /// every touched socket's interest up to date.
    ///
    /// Writing to thousands of sockets takes milliseconds: every
    /// [`WRITE_SLICE`] sockets of the first pass it looks for new input, so
    /// that a message arriving meanwhile goes out to the sockets not yet
    /// written in this pass instead of waiting for the whole next turn.
    fn drain_core(&mut self, mut now: Instant, shutting_down: bool) {
        let mut written = 0usize;
        loop {
            let mut progress = false;
            while let Some(conn) = self.core.poll_transmit() {
                progress = true;
                self.flush(now, conn);
                written += 1;
                // Only during about one pass over the connections: under
                // steady input the drain must end, or timers, accepts and the
                // stop flag would wait forever.
                if written.is_multiple_of(WRITE_SLICE) && written <= self.core.connection_count() {
                    now = self.take_input(shutting_down).unwrap_or(now);
                }
            }
            while let Some(event) = self.core.poll_event() {
                progress = true;
                let peer = self.peer_of(event.conn());
                log_event(&event, peer);
                match event {
                    ServerEvent::Close { conn, graceful, .. } => self.close(conn, graceful),
                    ServerEvent::Resume { conn } => self.touched.push(conn),
                    ServerEvent::Joined { .. } | ServerEvent::Left { .. } => {}
                }
            }
            if !progress {
                break;
            }
        }
        let touched = std::mem::take(&mut self.touched);
        for conn in touched.iter().copied() {
            self.update_interest(conn);
        }
        self.touched = touched;
        self.touched.clear();
    }

    /// One non-blocking look for readiness, handled like a turn's; returns the
    /// time it was taken (`None` if the poll failed; the next turn retries).
    fn take_input(&mut self, shutting_down: bool) -> Option<Instant> {
        let mut events = self.slice_events.take()?;
        let polled = wait(&self.poller, &mut events, Some(Duration::ZERO));
        let now = Instant::now();
        if polled.is_ok() {
            self.on_events(now, &events, shutting_down);
        }
        self.slice_events = Some(events);
        polled.ok().map(|()| now)
    }

    fn update_interest(&mut self, conn: ConnId) {
        let Some(Some(socket)) = self.sockets.get_mut(conn.index()) else {
            return;
        };
        if socket.conn != conn {
            return;
        }
        let readable = tls::wants_read(&self.core, socket.tls.as_deref(), conn);
        let writable = tls::has_outbound(&self.core, socket.tls.as_deref(), conn);
        if (readable, writable) == (socket.readable, socket.writable) {
            return;
        }
        let interest = Interest::new(conn.index(), readable, writable);
        match self
            .poller
            .modify_with_mode(&socket.stream, interest, PollMode::Level)
        {
            Ok(()) => {
                socket.readable = readable;
                socket.writable = writable;
            }
            Err(error) => log::error!("cannot update interest of {conn}: {error}"),
        }
    }

    fn close(&mut self, conn: ConnId, graceful: bool) {
        let Some(slot) = self.sockets.get_mut(conn.index()) else {
            return;
        };
        if slot.as_ref().is_none_or(|s| s.conn != conn) {
            return;
        }
        let Some(mut socket) = slot.take() else {
            return;
        };
        let _ = self.poller.delete(&socket.stream);
        if let Some(tls) = socket.tls.as_mut().filter(|_| graceful) {
            // close_notify after what is still encrypted, best effort.
            tls.close();
            let _ = socket.stream.write(tls.transmit());
        }
        close_connection(&socket.stream, graceful);
        if self.accept_paused_until.is_some() {
            // A descriptor was freed: try accepting again now.
            self.resume_accepting();
        }
    }
}

/// Waits for readiness, treating an interrupted wait (a signal) as a wake-up
/// with no events.
pub(crate) fn wait(
    poller: &Poller,
    events: &mut Events,
    timeout: Option<Duration>,
) -> io::Result<()> {
    events.clear();
    match poller.wait(events, timeout) {
        Err(e) if e.kind() != ErrorKind::Interrupted => Err(e),
        _ => Ok(()),
    }
}
