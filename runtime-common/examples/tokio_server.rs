//! The chat server on tokio, in one file: `cargo run -p sansio-chat-runtime-common
//! --example tokio_server -- --listen 127.0.0.1:7878` (same flags and output
//! as `chat-server`). One task owns `chat_core::Server` and does what it
//! asks; a task per connection only reads. How it differs from the two
//! runtimes: a read is handed to the core task through a channel and the
//! reader then waits for the core's go-ahead, which is how `wants_read`
//! pauses it; writes are `try_write` calls from the core task, with a small
//! task waiting for writability when a socket is full.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{ConnId, Server, ServerEvent};
use clap::Parser;
use runtime_common::cli::ServerArgs;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

/// A read from a connection's task (empty: end of stream; `None`: it
/// failed), and the go-ahead for its next one.
type Read = (ConnId, Option<Vec<u8>>, oneshot::Sender<()>);

struct Conn {
    stream: Arc<TcpStream>,
    peer: SocketAddr,
    /// The go-ahead of a reader whose connection is paused.
    paused: Option<oneshot::Sender<()>>,
    /// A task waits for the socket to become writable.
    waiting: bool,
}

type Conns = HashMap<ConnId, Conn>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = ServerArgs::parse();
    runtime_common::cli::init_logger(args.verbose);
    if let Err(error) = args.config().validate() {
        eprintln!("tokio_server: {error}");
        return ExitCode::from(2);
    }
    let bound = runtime_common::listen(&args.listen).and_then(|listener| {
        listener.set_nonblocking(true)?;
        TcpListener::from_std(listener)
    });
    let Ok(listener) = bound.inspect_err(|e| eprintln!("tokio_server: cannot bind: {e}")) else {
        return ExitCode::from(1);
    };
    if let Ok(addr) = listener.local_addr() {
        println!("listening on {addr}");
    }
    let mut stop = std::pin::pin!(async {
        let (mut term, mut int) = (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        );
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        std::io::Result::Ok(())
    });
    let (mut core, mut conns) = (Server::new(args.config()), Conns::new());
    let (tx, mut rx) = mpsc::channel::<Read>(1024);
    // Connections whose full socket can take more output.
    let (writable_tx, mut writable_rx) = mpsc::unbounded_channel::<ConnId>();
    let mut stopping = false;
    while !(stopping && core.is_shut_down()) {
        let wake = core
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            Ok((stream, peer)) = listener.accept(), if !stopping => {
                accept(&mut core, &mut conns, &tx, stream, peer);
            }
            Some((conn, read, go_on)) = rx.recv() => {
                match read.as_deref() {
                    Some([]) => core.handle_eof(Instant::now(), conn),
                    Some(bytes) => core.handle_input(Instant::now(), conn, bytes),
                    None => core.handle_io_error(Instant::now(), conn),
                }
                match conns.get_mut(&conn) {
                    Some(c) if !core.wants_read(conn) => c.paused = Some(go_on),
                    _ => drop(go_on.send(())),
                }
            }
            Some(conn) = writable_rx.recv() => {
                conns.entry(conn).and_modify(|c| c.waiting = false);
                flush(&mut core, &mut conns, &writable_tx, conn);
            }
            () = tokio::time::sleep_until(wake.into()) => {}
            _ = &mut stop, if !stopping => {
                stopping = true;
                core.shutdown(Instant::now());
                // Connections still in the backlog get their BYE too.
                while let Some(Ok((stream, peer))) = tokio::select! {
                    biased;
                    accepted = listener.accept() => Some(accepted),
                    () = std::future::ready(()) => None,
                } {
                    accept(&mut core, &mut conns, &tx, stream, peer);
                }
            }
        }
        core.handle_timeout(Instant::now());
        drain(&mut core, &mut conns, &writable_tx);
    }
    ExitCode::SUCCESS
}

/// A new connection: the core decides (it may refuse it with a BYE), a task reads it.
fn accept(
    core: &mut Server,
    conns: &mut Conns,
    tx: &mpsc::Sender<Read>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let _ = runtime_common::tune_accepted(&stream);
    let conn = core.handle_accept(Instant::now());
    let stream = Arc::new(stream);
    tokio::spawn(read_loop(conn, Arc::clone(&stream), tx.clone()));
    conns.insert(
        conn,
        Conn {
            stream,
            peer,
            paused: None,
            waiting: false,
        },
    );
}

/// Reads one connection, one read at a time, each after the core's go-ahead.
async fn read_loop(conn: ConnId, stream: Arc<TcpStream>, tx: mpsc::Sender<Read>) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let read = match stream
            .readable()
            .await
            .and_then(|()| stream.try_read(&mut buf))
        {
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Ok(n) => Some(buf.get(..n).unwrap_or_default().to_vec()),
            Err(_) => None,
        };
        let last = read.as_ref().is_none_or(Vec::is_empty);
        let (go_on, wait) = oneshot::channel();
        if tx.send((conn, read, go_on)).await.is_err() || last || wait.await.is_err() {
            return;
        }
    }
}

/// Everything the core has to say, until it has nothing more.
fn drain(core: &mut Server, conns: &mut Conns, tx: &mpsc::UnboundedSender<ConnId>) {
    loop {
        let mut progress = false;
        while let Some(conn) = core.poll_transmit() {
            progress = true;
            flush(core, conns, tx, conn);
        }
        while let Some(event) = core.poll_event() {
            progress = true;
            runtime_common::log_event(&event, conns.get(&event.conn()).map(|c| c.peer));
            match event {
                ServerEvent::Close { conn, graceful, .. } => {
                    if let Some(c) = conns.remove(&conn) {
                        let socket = socket2::SockRef::from(&*c.stream);
                        if !graceful {
                            let _ = socket.set_linger(Some(Duration::ZERO));
                        }
                        let _ = socket.shutdown(Shutdown::Both); // ends its reader
                    }
                }
                ServerEvent::Resume { conn } => {
                    if let Some(go_on) = conns.get_mut(&conn).and_then(|c| c.paused.take()) {
                        let _ = go_on.send(());
                    }
                }
                ServerEvent::Joined { .. } | ServerEvent::Left { .. } => {}
            }
        }
        if !progress {
            return;
        }
    }
}

/// Writes `conn`'s output until it is empty or the socket is full.
fn flush(core: &mut Server, conns: &mut Conns, tx: &mpsc::UnboundedSender<ConnId>, conn: ConnId) {
    let Some(c) = conns.get_mut(&conn).filter(|c| !c.waiting) else {
        return;
    };
    loop {
        let bytes = core.outbound(conn);
        if bytes.is_empty() {
            return;
        }
        match c.stream.try_write(bytes) {
            Ok(n) => core.handle_written(Instant::now(), conn, n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                c.waiting = true;
                let (stream, tx) = (Arc::clone(&c.stream), tx.clone());
                tokio::spawn(async move {
                    let _ = stream.writable().await;
                    let _ = tx.send(conn);
                });
                return;
            }
            Err(_) => return core.handle_io_error(Instant::now(), conn),
        }
    }
}
