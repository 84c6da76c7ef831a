//! The thread-per-client server. See the crate docs for the locking rule.

use std::collections::HashMap;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use chat_core::server::{ConnId, Protocol, Server, ServerConfig, ServerEvent};
use runtime_common::Door;
use runtime_common::tls::{self, TlsSession};

/// Bytes read per `read` call, into a buffer on the reader's stack: with 2 KiB
/// it fits in pages the thread touches anyway (an idle connection measured
/// 12.5 KB of RSS, against 15.6 KB with 4 KiB).
const READ_CHUNK: usize = 2048;
/// Most bytes handed to one blocking `write`.
const WRITE_CHUNK: usize = 64 * 1024;
/// Runs of a connection's queue handed to one vectored send.
const WRITE_RUNS: usize = 128;
/// Stack size of the per-connection threads; they need little.
const THREAD_STACK: usize = 128 * 1024;
/// How long the flusher at most lets queued input go first (see `flusher_loop`).
const FLUSH_DEFERRAL: Duration = Duration::from_millis(2);
/// Connections the flusher writes between checks for waiting input.
const FLUSH_SLICE: usize = 64;
/// How long accepting pauses after running out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Per-connection state shared by its threads.
///
/// Threads sleep with `park` and are woken with `unpark`, not with condition
/// variables: an `unpark` of a thread that is busy costs one atomic swap,
/// whereas a condition variable's `notify` is a system call every time, and
/// a broadcast to 1,000 writers would make 1,000 of them under the lock.
struct Link {
    /// Shared with the reader and writer: one descriptor per connection.
    stream: Arc<TcpStream>,
    /// The peer's address, for the logs.
    peer: Option<SocketAddr>,
    /// The reader thread, once it has registered itself (under the lock, in
    /// the same critical section where it first checks for work, so no wake-up
    /// is lost before it registers).
    reader: Option<Thread>,
    /// The writer thread, registered the same way.
    writer: Option<Thread>,
    /// The socket's send buffer was full: this connection's output belongs to
    /// its writer thread (blocking writes) until its queue is empty again.
    /// Otherwise the flusher writes it without blocking.
    blocked: bool,
    /// TLS between the socket and the core, on connections of the TLS
    /// listener: its state is shared by the reader and the writers, so it
    /// lives under the lock, like the core.
    tls: Option<Box<TlsSession>>,
}

/// Threads to unpark once the lock is released, so that a woken thread does
/// not at once block on the lock its waker still holds.
type Wakes = Vec<Thread>;

fn unpark_all(wakes: &mut Wakes) {
    for thread in wakes.drain(..) {
        thread.unpark();
    }
}

struct State {
    core: Server,
    links: HashMap<ConnId, Link>,
    /// Connections with output for the flusher.
    ready: Vec<ConnId>,
    /// The flusher thread, once registered.
    flusher: Option<Thread>,
    /// The deadline the timer thread sleeps towards.
    timer_target: Option<Instant>,
    /// Small runs of one write gathered (see `runtime_common::coalesce`).
    write_buf: Vec<u8>,
}

struct Shared {
    state: Mutex<State>,
    timer_wake: Condvar,
    /// Signalled whenever a connection closes (for shutdown).
    closed: Condvar,
    stop: AtomicBool,
    local_addr: SocketAddr,
    /// The extra listeners' addresses, with what they serve.
    door_addrs: Mutex<Vec<(Protocol, bool, SocketAddr)>>,
    /// Threads waiting for the lock with input in hand (a read, a new connection).
    input_waiting: AtomicUsize,
}

/// Stops a running [`StdServer`] from any thread.
#[derive(Clone)]
pub struct StopHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle").finish_non_exhaustive()
    }
}

impl StopHandle {
    /// Starts the graceful shutdown: `BYE(SHUTDOWN)` to everyone, flush for at
    /// most the linger time (1 s), then `run` returns.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept()s with connections of our own.
        let doors: Vec<SocketAddr> = self
            .shared
            .door_addrs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|&(_, _, addr)| addr)
            .collect();
        for addr in std::iter::once(self.shared.local_addr).chain(doors) {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
    }
}

/// The chat server with one reader and one writer thread per client.
pub struct StdServer {
    listener: TcpListener,
    doors: Vec<(TcpListener, Door)>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StdServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdServer")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic in another thread must not take the whole server down with it.
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Locks on behalf of input (a read, an accepted connection), which the
/// flusher lets go first.
fn lock_with_input(shared: &Shared) -> MutexGuard<'_, State> {
    shared.input_waiting.fetch_add(1, Ordering::Relaxed);
    let state = lock(shared);
    shared.input_waiting.fetch_sub(1, Ordering::Relaxed);
    state
}

impl StdServer {
    /// Binds the listening socket.
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<Self> {
        let listener = runtime_common::listen(addr)?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                core: runtime_common::core_with_wall_clock(config),
                links: HashMap::new(),
                ready: Vec::new(),
                flusher: None,
                timer_target: None,
                write_buf: Vec::new(),
            }),
            timer_wake: Condvar::new(),
            closed: Condvar::new(),
            stop: AtomicBool::new(false),
            local_addr,
            door_addrs: Mutex::new(Vec::new()),
            input_waiting: AtomicUsize::new(0),
        });
        Ok(Self {
            listener,
            doors: Vec::new(),
            shared,
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
        let listener = runtime_common::listen(addr)?;
        let local_addr = listener.local_addr()?;
        self.shared
            .door_addrs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((door.protocol, door.tls.is_some(), local_addr));
        self.doors.push((listener, door));
        Ok(self)
    }

    /// The address of the first extra listener that speaks `protocol`,
    /// over TLS or not.
    pub fn door_addr(&self, protocol: Protocol, tls: bool) -> Option<SocketAddr> {
        self.shared
            .door_addrs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|&&(p, t, _)| p == protocol && t == tls)
            .map(|&(_, _, addr)| addr)
    }

    /// The address of the TLS listener, if there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.door_addr(Protocol::Native, true)
    }

    /// The address of the IRC listener, if there is one.
    pub fn irc_addr(&self) -> Option<SocketAddr> {
        self.door_addr(Protocol::Irc, false)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// A handle that stops the server from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Serves until stopped, then shuts down gracefully and returns.
    pub fn run(self) -> io::Result<()> {
        let shared = &self.shared;
        let timer = {
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name("timer".into())
                .spawn(move || timer_loop(&shared))?
        };
        let flusher = {
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name("flush".into())
                .spawn(move || flusher_loop(&shared))?
        };
        let mut door_acceptors = Vec::new();
        for (listener, door) in self.doors {
            let shared = Arc::clone(shared);
            let name = format!(
                "accept {}",
                runtime_common::door_label(door.protocol, door.tls.is_some())
            );
            door_acceptors.push(
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || accept_door(&shared, &listener, &door))?,
            );
        }
        let mut threads: Vec<JoinHandle<()>> = Vec::new();
        let mut late = None;
        let mut descriptor_warning = runtime_common::LogThrottle::new(Duration::from_secs(5));
        while !shared.stop.load(Ordering::SeqCst) {
            match self.listener.accept() {
                // Accepted as the stop came: it gets its BYE below.
                Ok((stream, _)) if shared.stop.load(Ordering::SeqCst) => late = Some(stream),
                Ok((stream, peer)) => {
                    if let Err(error) = accept(shared, stream, &mut threads, Protocol::Native, None)
                    {
                        log::warn!("cannot serve {peer}: {error}");
                    }
                    threads.retain(|t| !t.is_finished());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if runtime_common::is_out_of_descriptors(&e) => {
                    runtime_common::warn_out_of_descriptors(&mut descriptor_warning, &e);
                    let state = lock(shared);
                    // Resume when a connection closes or the back-off passes.
                    let _ = shared.closed.wait_timeout(state, ACCEPT_BACKOFF);
                }
                Err(e) => log::debug!("accept failed: {e}"),
            }
        }
        // Graceful shutdown: the core says BYE to everyone; wait until every
        // connection is closed (the core's linger bounds this).
        {
            let mut state = lock(shared);
            log::info!(
                "shutting down: saying BYE to {} connections",
                state.core.connection_count()
            );
            let now = Instant::now();
            state.core.shutdown(now);
            let mut wakes = Wakes::new();
            dispatch(shared, &mut state, &mut wakes);
            drop(state);
            unpark_all(&mut wakes);
        }
        // Connections still in the backlog get their BYE too (written inline:
        // the core refuses them).
        if let Some(stream) = late {
            let _ = accept(shared, stream, &mut threads, Protocol::Native, None);
        }
        if self.listener.set_nonblocking(true).is_ok() {
            while let Ok((stream, _)) = self.listener.accept() {
                let _ = stream.set_nonblocking(false);
                let _ = accept(shared, stream, &mut threads, Protocol::Native, None);
            }
        }
        for acceptor in door_acceptors {
            // It has seen the stop; the connections it started end below.
            if let Ok(door_threads) = acceptor.join() {
                threads.extend(door_threads);
            }
        }
        {
            let mut state = lock(shared);
            while !state.core.is_shut_down() {
                state = shared
                    .closed
                    .wait_timeout(state, Duration::from_millis(100))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            shared.timer_wake.notify_all();
            if let Some(flusher) = &state.flusher {
                flusher.unpark();
            }
        }
        for thread in threads {
            let _ = thread.join();
        }
        let _ = timer.join();
        let _ = flusher.join();
        log::info!("shutdown complete");
        Ok(())
    }
}

/// An extra listener's accept loop, on its own thread until the stop;
/// returns the threads of the connections it started.
fn accept_door(shared: &Arc<Shared>, listener: &TcpListener, door: &Door) -> Vec<JoinHandle<()>> {
    let mut threads = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok(_) if shared.stop.load(Ordering::SeqCst) => break,
            Ok((stream, peer)) => {
                let session = match door.tls.clone().map(TlsSession::server) {
                    None => None,
                    Some(Ok(session)) => Some(Box::new(session)),
                    Some(Err(error)) => {
                        log::warn!("cannot start TLS for {peer}: {error}");
                        continue;
                    }
                };
                if let Err(error) = accept(shared, stream, &mut threads, door.protocol, session) {
                    log::warn!("cannot serve {peer}: {error}");
                }
                threads.retain(|t| !t.is_finished());
            }
            Err(e) if runtime_common::is_out_of_descriptors(&e) => {
                let state = lock(shared);
                let _ = shared.closed.wait_timeout(state, ACCEPT_BACKOFF);
            }
            Err(e) => log::debug!("accept failed: {e}"),
        }
    }
    threads
}

/// Registers a new connection with the core and starts its threads, unless
/// the core refused it.
fn accept(
    shared: &Arc<Shared>,
    stream: TcpStream,
    threads: &mut Vec<JoinHandle<()>>,
    protocol: Protocol,
    tls: Option<Box<TlsSession>>,
) -> io::Result<()> {
    let _ = runtime_common::tune_accepted(&stream);
    let mut wakes = Wakes::new();
    let mut state = lock_with_input(shared);
    let now = Instant::now();
    let conn = match protocol {
        Protocol::Native => state.core.handle_accept(now),
        Protocol::Irc => state.core.handle_accept_irc(now),
    };
    // Refused (server full or shutting down): write the BYE inline, no
    // threads. Over TLS the BYE needs the handshake first: a reader thread.
    if state.core.is_closing(conn) && tls.is_none() {
        let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
        let written = (&stream).write(state.core.outbound(conn)).unwrap_or(0);
        state.core.handle_written(now, conn, written);
        state.core.handle_io_error(now, conn);
        let _ = stream.shutdown(Shutdown::Both);
        dispatch(shared, &mut state, &mut wakes);
        drop(state);
        unpark_all(&mut wakes);
        return Ok(());
    }
    let stream = Arc::new(stream);
    let label = runtime_common::door_label(protocol, tls.is_some());
    let link = Link {
        peer: stream.peer_addr().ok(),
        stream: Arc::clone(&stream),
        reader: None,
        writer: None,
        blocked: false,
        tls,
    };
    if let Some(peer) = link.peer {
        log::debug!("accepted {conn} [{peer}] ({label})");
    }
    state.links.insert(conn, link);
    dispatch(shared, &mut state, &mut wakes);
    drop(state);
    unpark_all(&mut wakes);
    // Only the reader now: a writer thread is started when the socket's send
    // buffer fills (see `flush`), so an idle connection costs one thread.
    let reader = {
        let shared = Arc::clone(shared);
        spawn_thread(
            format!("read {conn}"),
            Box::new(move || reader_loop(&shared, conn, &stream)),
        )
    };
    match reader {
        Ok(reader) => {
            threads.push(reader);
            Ok(())
        }
        Err(error) => {
            // No thread for it: refuse it with BYE(SERVER_FULL), which the
            // flusher writes, and go on.
            let mut state = lock(shared);
            state.core.reject(Instant::now(), conn);
            dispatch(shared, &mut state, &mut wakes);
            drop(state);
            unpark_all(&mut wakes);
            Err(error)
        }
    }
}

/// Starts a connection thread with a small stack.
fn spawn_thread(name: String, f: Box<dyn FnOnce() + Send>) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name)
        .stack_size(THREAD_STACK)
        .spawn(f)
}

/// Starts writer threads for connections whose send buffer filled. A
/// connection that cannot get one is closed: its output could never be
/// written without blocking everyone.
fn spawn_writers(shared: &Arc<Shared>, spawns: &mut Vec<(ConnId, Arc<TcpStream>)>) {
    for (conn, stream) in spawns.drain(..) {
        let thread = {
            let shared = Arc::clone(shared);
            spawn_thread(
                format!("write {conn}"),
                Box::new(move || writer_loop(&shared, conn, &stream)),
            )
        };
        if let Err(error) = thread {
            log::warn!("cannot start a writer for {conn}: {error}; closing it");
            let mut wakes = Wakes::new();
            let mut state = lock(shared);
            state.core.handle_io_error(Instant::now(), conn);
            dispatch(shared, &mut state, &mut wakes);
            drop(state);
            unpark_all(&mut wakes);
        }
    }
}

/// Acts on everything the core has to say: hands output to the flusher (or
/// to a blocked connection's writer), closes sockets, logs, and tells the
/// timer thread about an earlier deadline. The caller unparks `wakes` once it
/// has released the lock.
fn dispatch(shared: &Shared, state: &mut State, wakes: &mut Wakes) {
    let mut flush = false;
    while let Some(conn) = state.core.poll_transmit() {
        match state.links.get(&conn) {
            Some(link) if link.blocked => wakes.extend(link.writer.clone()),
            Some(_) => {
                state.ready.push(conn);
                flush = true;
            }
            None => {}
        }
    }
    if flush {
        wakes.extend(state.flusher.clone());
    }
    while let Some(event) = state.core.poll_event() {
        let peer = state.links.get(&event.conn()).and_then(|l| l.peer);
        runtime_common::log_event(&event, peer);
        if let ServerEvent::Resume { conn } = event {
            wakes.extend(state.links.get(&conn).and_then(|l| l.reader.clone()));
        }
        if let ServerEvent::Close { conn, graceful, .. } = event {
            if let Some(mut link) = state.links.remove(&conn) {
                if let Some(tls) = link.tls.as_mut().filter(|_| graceful) {
                    // close_notify after what is still encrypted, best effort.
                    tls.close();
                    let _ = socket2::SockRef::from(&*link.stream)
                        .send_with_flags(tls.transmit(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
                }
                runtime_common::close_connection(&*link.stream, graceful);
                // Unblocks this connection's reader and writer; they see the
                // link gone and exit.
                let _ = link.stream.shutdown(Shutdown::Both);
                wakes.extend(link.reader);
                wakes.extend(link.writer);
            }
            shared.closed.notify_all();
        }
    }
    let deadline = state.core.poll_timeout();
    if deadline.is_some() && (state.timer_target.is_none() || deadline < state.timer_target) {
        shared.timer_wake.notify_all();
    }
}

/// What a connection's thread does once it has released the lock.
enum Next {
    /// Its connection is closed.
    Exit,
    /// Nothing to do until woken.
    Sleep,
    /// One blocking socket call.
    Io,
}

fn reader_loop(shared: &Shared, conn: ConnId, stream: &TcpStream) {
    let mut buf = [0u8; READ_CHUNK];
    // Plaintext of a TLS read (never allocated on plain connections).
    let mut plain = Vec::new();
    let mut wakes = Wakes::new();
    let mut last_read: Option<io::Result<usize>> = None;
    loop {
        let next = {
            let mut state = if last_read.is_some() {
                lock_with_input(shared)
            } else {
                lock(shared)
            };
            let now = Instant::now();
            // One critical section per read: report the last read, then decide.
            match last_read.take() {
                Some(Ok(0)) => {
                    let State { core, links, .. } = &mut *state;
                    let tls = links.get(&conn).and_then(|link| link.tls.as_deref());
                    tls::end_of_stream(core, tls, now, conn);
                }
                Some(Ok(n)) => {
                    let input = buf.get(..n).unwrap_or_default();
                    let State {
                        core,
                        links,
                        ready,
                        flusher,
                        ..
                    } = &mut *state;
                    let blocked = links.get(&conn).is_some_and(|link| link.blocked);
                    let mut tls = links
                        .get_mut(&conn)
                        .and_then(|link| link.tls.as_deref_mut());
                    match tls::input(core, tls.as_deref_mut(), now, conn, input, &mut plain) {
                        Err(error) => {
                            log::debug!("TLS of {conn} failed: {error}");
                            // Its alert, best effort and never blocking
                            // (the lock is held), and only while no writer
                            // thread owns the socket; then closed.
                            if let Some(tls) = tls.filter(|_| !blocked) {
                                let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
                                let _ = socket2::SockRef::from(stream)
                                    .send_with_flags(tls.transmit(), flags);
                            }
                            core.handle_io_error(now, conn);
                        }
                        // Handshake messages, or output the handshake's end
                        // lets out: the flusher writes them.
                        Ok(())
                            if tls.is_some_and(|tls| tls::has_outbound(core, Some(tls), conn)) =>
                        {
                            ready.push(conn);
                            wakes.extend(flusher.clone());
                        }
                        Ok(()) => {}
                    }
                }
                Some(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
                Some(Err(_)) => state.core.handle_io_error(now, conn),
                None => {}
            }
            dispatch(shared, &mut state, &mut wakes);
            let state = &mut *state;
            match state.links.get_mut(&conn) {
                None => Next::Exit,
                Some(link) => {
                    link.reader.get_or_insert_with(std::thread::current);
                    if tls::wants_read(&state.core, link.tls.as_deref(), conn) {
                        Next::Io
                    } else {
                        Next::Sleep
                    }
                }
            }
        };
        unpark_all(&mut wakes);
        match next {
            Next::Exit => return,
            Next::Sleep => std::thread::park(),
            Next::Io => last_read = Some((&*stream).read(&mut buf)),
        }
    }
}

fn writer_loop(shared: &Shared, conn: ConnId, stream: &TcpStream) {
    let mut chunk = Vec::new();
    let mut wakes = Wakes::new();
    let mut last_write: Option<io::Result<usize>> = None;
    loop {
        let next = {
            let mut state = lock(shared);
            // One critical section per write: report the last write, then
            // take the next chunk.
            if let Some(result) = last_write.take() {
                let now = Instant::now();
                match result {
                    Ok(n) => {
                        let State { core, links, .. } = &mut *state;
                        let tls = links.get_mut(&conn).and_then(|l| l.tls.as_deref_mut());
                        tls::written(core, tls, now, conn, n);
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => state.core.handle_io_error(now, conn),
                }
            }
            let State { core, links, .. } = &mut *state;
            let next = match links.get_mut(&conn) {
                None => Next::Exit,
                Some(link) => {
                    link.writer.get_or_insert_with(std::thread::current);
                    let pending =
                        tls::outbound(core, link.tls.as_deref_mut(), Instant::now(), conn);
                    if !link.blocked || pending.is_empty() {
                        // Drained: the flusher takes this connection back,
                        // and the thread ends (a new one starts if the socket
                        // fills again).
                        link.blocked = false;
                        link.writer = None;
                        Next::Exit
                    } else {
                        // A bounded chunk, so progress is reported to the core
                        // often: what a blocked write holds still counts as queued.
                        let take = pending.len().min(WRITE_CHUNK);
                        chunk.clear();
                        chunk.extend_from_slice(pending.get(..take).unwrap_or_default());
                        if link.tls.is_none() {
                            // Plaintext from the core's queue, written
                            // outside the lock (over TLS the session did this).
                            core.handle_taken(conn, take);
                        }
                        Next::Io
                    }
                }
            };
            // After the write's report and after taking the next chunk: over
            // TLS, taking it acknowledges the batch just written, which may
            // let the core act (resume a paused sender, close a connection).
            dispatch(shared, &mut state, &mut wakes);
            next
        };
        unpark_all(&mut wakes);
        match next {
            Next::Exit => return,
            Next::Sleep => std::thread::park(),
            Next::Io => last_write = Some((&*stream).write(&chunk)),
        }
    }
}

/// Writes every ready connection's output without blocking, holding the lock:
/// one thread takes the whole batch that accumulated while it was busy, as an
/// event loop would, instead of waking one writer thread per connection.
fn flusher_loop(shared: &Arc<Shared>) {
    let mut wakes = Wakes::new();
    let mut spawns = Vec::new();
    let mut batch = Vec::new();
    loop {
        defer_to_input(shared);
        let mut state = lock(shared);
        state.flusher.get_or_insert_with(std::thread::current);
        std::mem::swap(&mut batch, &mut state.ready);
        let idle = batch.is_empty();
        let mut now = Instant::now();
        for (i, conn) in batch.drain(..).enumerate() {
            flush(&mut state, now, conn, &mut wakes, &mut spawns);
            // A round over thousands of sockets takes milliseconds: let
            // waiting input (new connections, reads) in between slices.
            if (i + 1) % FLUSH_SLICE == 0 && shared.input_waiting.load(Ordering::Relaxed) > 0 {
                dispatch(shared, &mut state, &mut wakes);
                drop(state);
                unpark_all(&mut wakes);
                spawn_writers(shared, &mut spawns);
                defer_to_input(shared);
                state = lock(shared);
                now = Instant::now();
            }
        }
        dispatch(shared, &mut state, &mut wakes);
        let done = shared.stop.load(Ordering::SeqCst) && state.core.is_shut_down();
        drop(state);
        unpark_all(&mut wakes);
        spawn_writers(shared, &mut spawns);
        if done {
            return;
        }
        if idle {
            std::thread::park();
        }
    }
}

/// Input first, as an event loop reads before it writes: threads queued for
/// the lock with input add their output to the flusher's batch, so a burst of
/// input (a connect storm, pipelined messages) costs one write per
/// connection, not one per input. Bounded, so output is never starved.
fn defer_to_input(shared: &Shared) {
    let deferred_at = Instant::now();
    while shared.input_waiting.load(Ordering::Relaxed) > 0 && deferred_at.elapsed() < FLUSH_DEFERRAL
    {
        std::thread::yield_now();
    }
}

/// Writes `conn`'s queued output until it is empty or the socket would block;
/// then the connection's writer thread takes over (listed in `spawns` to be
/// started once the lock is released).
fn flush(
    state: &mut State,
    now: Instant,
    conn: ConnId,
    wakes: &mut Wakes,
    spawns: &mut Vec<(ConnId, Arc<TcpStream>)>,
) {
    let State {
        core,
        links,
        write_buf,
        ..
    } = state;
    let Some(link) = links.get_mut(&conn) else {
        return;
    };
    if link.blocked {
        return;
    }
    let socket = socket2::SockRef::from(&*link.stream);
    // MSG_DONTWAIT: the socket stays blocking for its reader thread.
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    loop {
        let sent = if link.tls.is_none() {
            // Own frames and feed bytes alternate in a queue: one system
            // call for several runs.
            let mut runs = [IoSlice::new(&[]); WRITE_RUNS];
            let filled = core.outbound_vectored(conn, &mut runs);
            let Some(runs) = runs.get_mut(..filled).filter(|runs| !runs.is_empty()) else {
                return;
            };
            let filled = runtime_common::coalesce(runs, write_buf);
            socket.send_vectored_with_flags(runs.get(..filled).unwrap_or_default(), flags)
        } else {
            let pending = tls::outbound(core, link.tls.as_deref_mut(), now, conn);
            if pending.is_empty() {
                return;
            }
            socket.send_with_flags(pending, flags)
        };
        match sent {
            Ok(n) if n > 0 => tls::written(core, link.tls.as_deref_mut(), now, conn, n),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() != ErrorKind::WouldBlock => {
                core.handle_io_error(now, conn);
                return;
            }
            // The send buffer is full: hand over to the writer thread.
            _ => {
                link.blocked = true;
                match &link.writer {
                    Some(writer) => wakes.push(writer.clone()),
                    None => spawns.push((conn, Arc::clone(&link.stream))),
                }
                return;
            }
        }
    }
}

fn timer_loop(shared: &Shared) {
    let mut wakes = Wakes::new();
    let mut state = lock(shared);
    loop {
        if shared.stop.load(Ordering::SeqCst) && state.core.is_shut_down() {
            return;
        }
        let now = Instant::now();
        runtime_common::handle_timeout_then_trim(&mut state.core, now);
        dispatch(shared, &mut state, &mut wakes);
        // Timeouts are rare: waking under the lock keeps this loop simple.
        unpark_all(&mut wakes);
        let deadline = state.core.poll_timeout();
        state.timer_target = deadline;
        state = match deadline {
            Some(deadline) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                shared
                    .timer_wake
                    .wait_timeout(state, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => shared
                .timer_wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner),
        };
    }
}

impl runtime_common::cli::ChatServer for StdServer {
    fn bind(addr: SocketAddr, config: ServerConfig) -> io::Result<Self> {
        Self::bind(addr, config)
    }
    fn local_addr(&self) -> SocketAddr {
        self.local_addr()
    }
    fn stopper(&self) -> Box<dyn Fn() + Send + 'static> {
        let handle = self.stop_handle();
        Box::new(move || handle.stop())
    }
    fn run(self) -> io::Result<()> {
        self.run()
    }
    fn listen_door(self, addr: SocketAddr, door: Door) -> io::Result<Self> {
        self.listen_door(addr, door)
    }
    fn door_addr(&self, protocol: Protocol, tls: bool) -> Option<SocketAddr> {
        self.door_addr(protocol, tls)
    }
}
