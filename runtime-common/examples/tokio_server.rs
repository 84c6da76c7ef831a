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
use std::net::Shutdown;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{ConnId, Server, ServerEvent};
use runtime_common::cli;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};

/// What the core task hears about a connection.
enum Input {
    /// A read (empty: end of stream; `None`: it failed), and the go-ahead
    /// for the next one.
    Read(ConnId, Option<Vec<u8>>, oneshot::Sender<()>),
    /// Its full socket can take more output.
    Writable(ConnId),
}

struct Conn {
    stream: Arc<TcpStream>,
    /// The go-ahead of a reader whose connection is paused.
    paused: Option<oneshot::Sender<()>>,
    /// A task waits for the socket to become writable.
    waiting: bool,
}

type Conns = HashMap<ConnId, Conn>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (args, listener) = match cli::start("tokio_server") {
        Ok((args, listener)) => (args, TcpListener::from_std(listener)),
        Err(code) => return code,
    };
    let Ok(listener) = listener else {
        return ExitCode::from(1);
    };
    let stop = Arc::new(Notify::new());
    let on_signal = Arc::clone(&stop);
    let _ = cli::on_termination(Box::new(move || on_signal.notify_one()));
    let (mut core, mut conns) = (Server::new(args.config()), Conns::new());
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let mut stopping = false;
    while !(stopping && core.is_shut_down()) {
        let wake =
            core.poll_timeout().unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            Ok((stream, _)) = listener.accept(), if !stopping => accept(&mut core, &mut conns, &tx, stream),
            Some(input) = rx.recv() => match input {
                Input::Read(conn, read, go_on) => {
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
                Input::Writable(conn) => {
                    conns.entry(conn).and_modify(|c| c.waiting = false);
                    flush(&mut core, &mut conns, &tx, conn);
                }
            },
            () = tokio::time::sleep_until(wake.into()) => {}
            () = stop.notified(), if !stopping => {
                stopping = true;
                core.shutdown(Instant::now());
                // Connections still in the backlog get their BYE too.
                let pending = || tokio::time::timeout(Duration::ZERO, listener.accept());
                while let Ok(Ok((stream, _))) = pending().await {
                    accept(&mut core, &mut conns, &tx, stream);
                }
            }
        }
        core.handle_timeout(Instant::now());
        drain(&mut core, &mut conns, &tx);
    }
    ExitCode::SUCCESS
}

/// A new connection: the core decides (it may refuse it with a BYE), a task reads it.
fn accept(core: &mut Server, conns: &mut Conns, tx: &Sender, stream: TcpStream) {
    let _ = runtime_common::tune_accepted(&stream);
    let conn = core.handle_accept(Instant::now());
    let stream = Arc::new(stream);
    tokio::spawn(read_loop(conn, Arc::clone(&stream), tx.clone()));
    conns.insert(conn, Conn { stream, paused: None, waiting: false });
}

type Sender = mpsc::UnboundedSender<Input>;

/// Reads one connection, one read at a time, each after the core's go-ahead.
async fn read_loop(conn: ConnId, stream: Arc<TcpStream>, tx: Sender) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let read = match stream.readable().await.and_then(|()| stream.try_read(&mut buf)) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Ok(n) => Some(buf.get(..n).unwrap_or_default().to_vec()),
            Err(_) => None,
        };
        let last = read.as_ref().is_none_or(Vec::is_empty);
        let (go_on, wait) = oneshot::channel();
        if tx.send(Input::Read(conn, read, go_on)).is_err() || last || wait.await.is_err() {
            return;
        }
    }
}

/// Everything the core has to say, until it has nothing more.
fn drain(core: &mut Server, conns: &mut Conns, tx: &Sender) {
    loop {
        let mut progress = false;
        while let Some(conn) = core.poll_transmit() {
            progress = true;
            flush(core, conns, tx, conn);
        }
        while let Some(event) = core.poll_event() {
            progress = true;
            runtime_common::log_event(&event, None);
            match event {
                ServerEvent::Close { conn, graceful, .. } => {
                    if let Some(c) = conns.remove(&conn) {
                        runtime_common::close_connection(&*c.stream, graceful);
                        let _ = socket2::SockRef::from(&*c.stream).shutdown(Shutdown::Both);
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
fn flush(core: &mut Server, conns: &mut Conns, tx: &Sender, conn: ConnId) {
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
                    let _ = tx.send(Input::Writable(conn));
                });
                return;
            }
            Err(_) => return core.handle_io_error(Instant::now(), conn),
        }
    }
}
