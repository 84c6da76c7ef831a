//! `chat-bench`: the project's load generator.
//!
//! One epoll loop (the `polling` crate, level-triggered) drives every client
//! socket. Frames are cut straight out of one shared receive buffer (only the
//! tail of a read, an unfinished frame, is copied per connection), and only
//! MESSAGE payloads are looked at: their text starts with the sender's sequence
//! number and send time as 16 + 16 lowercase hex digits, padded with `x` to the
//! requested size. Each client's output is queued and written once per loop
//! turn, so a sender with several free window slots writes them in one call.
//!
//! Scenarios:
//!
//! - `fanout`: N clients register, S of them send texts with at most W in
//!   flight each; every receiver checks that each sender's sequence increases
//!   by exactly one and records the latency (receive time minus the embedded
//!   send time). `--pacing echo` frees a window slot when the sender's own echo
//!   returns, `--pacing all` when every client has the message.
//! - `connect`: opens and registers N clients with at most `--concurrency`
//!   handshakes in flight, and waits until every JOINED has arrived: whatever
//!   the server's order, each pair of clients yields exactly one JOINED (to the
//!   one that registered first), so the total is exactly N*(N-1)/2. With
//!   `--server-pid`, reports the server's RSS growth per connection.
//! - `flood`: one client floods SAYs as fast as the server takes them (and
//!   reads everything) while an honest client says a line every
//!   `--say-every` seconds; reports the honest line's echo latency.
//! - `churn`: a population of N clients talks (each says one text every
//!   `--say-every` seconds) while `--rate` clients per second join and as many
//!   of the oldest leave with BYE; one line per second.
//!
//! With `--irc-connect ADDR`, a share of the fanout clients (`--irc-ratio`,
//! all by default) speak IRC to that address instead: `NICK`/`USER`, `JOIN
//! #lobby` (or `--irc-channel`), texts as `PRIVMSG` to it, registered once
//! the JOIN's names end (366). Their lines are handed to the scenario as the frames a native
//! client would have got, and since IRC senders hear no echo of their own
//! messages, their texts are expected by everyone else. Pointed at an IRC
//! server such as ngIRCd, this measures that server the same way.
//!
//! Each run ends with one JSON line starting with `{"scenario":`.
//!
//! Latency is measured with one clock read per `read` call, so it includes the
//! time the bench spends on the frames before it in the same read (microseconds).

#![allow(unsafe_code)]
// polling::Poller::add is unsafe; see the SAFETY comment there.
// Hot-path indices are bounded by construction (slots, senders, window slots);
// a bench that panics on its own bug is acceptable.
#![allow(clippy::indexing_slicing)]

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chat_core::codec::{HEADER_LEN, MAX_FRAME, put_header};
use chat_core::frame::op;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use polling::{Event as Interest, Events, PollMode, Poller};
use runtime_common::tls::TlsSession;

mod churn;
mod connect;
mod fanout;
mod flood;
mod net;
mod report;

use churn::*;
use connect::*;
use fanout::*;
use flood::*;
use net::*;
use report::*;

/// Bytes read per `read` call (plus room for one unfinished frame in front).
const READ_CHUNK: usize = 256 * 1024;
/// Reads per readiness event before moving on to the next socket.
const READS_PER_EVENT: usize = 4;
/// Bytes of a text taken by the sequence number and the send time.
const STAMP_LEN: usize = 32;
/// How long the end of a fanout waits for messages still in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// N clients, S senders, windowed texts; throughput and latency.
    Fanout,
    /// Register N clients as fast as the server allows.
    Connect,
    /// Clients join, talk and leave continuously.
    Churn,
    /// One client floods while an honest one talks: the honest echo latency.
    Flood,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Pacing {
    /// A window slot is freed when the sender's own echo returns.
    Echo,
    /// A window slot is freed when every client has the message.
    All,
}

/// Load generator for the chat server (one epoll loop for every client).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chat-bench",
    version,
    about = "Load generator for the chat servers: fan-out, connect storms, churn and honest latency under a flood"
)]
pub(crate) struct Args {
    /// Which benchmark to run.
    #[arg(value_enum)]
    scenario: Scenario,
    /// Server address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    connect: String,
    /// Clients (fanout, connect) or steady population (churn).
    #[arg(long, value_name = "N", default_value_t = 100)]
    clients: usize,
    /// Clients that send (fanout): the first S.
    #[arg(long, value_name = "S", default_value_t = 10)]
    senders: usize,
    /// Bytes per text (at least 32: sequence and send time in hex).
    #[arg(long, value_name = "B", default_value_t = 64)]
    size: usize,
    /// Texts in flight per sender (fanout).
    #[arg(long, value_name = "W", default_value_t = 16)]
    window: u64,
    /// When a window slot is freed (fanout).
    #[arg(long, value_enum, default_value_t = Pacing::All)]
    pacing: Pacing,
    /// Seconds of load before measuring (fanout).
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured (fanout, churn, flood).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    duration: f64,
    /// Server process to watch: CPU from /proc/PID/stat, memory from /proc/PID/status.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Handshakes (connected, not yet WELCOMEd) in flight at once.
    #[arg(long, value_name = "C", default_value_t = 256)]
    concurrency: usize,
    /// Joins (and leaves) per second (churn).
    #[arg(long, value_name = "PER_SEC", default_value_t = 50.0)]
    rate: f64,
    /// Seconds between two texts of one client (churn, flood).
    #[arg(long, value_name = "SECS", default_value_t = 0.1)]
    say_every: f64,
    /// Seconds the server gets to settle before RSS is read (connect).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    settle: f64,
    /// Connect over TLS, verifying the server with this CA (PEM) against the
    /// host of --connect.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// IRC listener of the server (or an IRC server such as ngIRCd) for the
    /// clients that speak IRC (fanout): NICK/USER, JOIN, PRIVMSG.
    #[arg(long, value_name = "ADDR")]
    irc_connect: Option<String>,
    /// Share of the clients that speak IRC, spread evenly (0 to 1; with
    /// --irc-connect, default 1: all of them).
    #[arg(long, value_name = "R")]
    irc_ratio: Option<f64>,
    /// Channel the IRC clients join and talk in (another than the lobby
    /// needs --irc-ratio 1: native users cannot join it).
    #[arg(long, value_name = "CHANNEL", default_value = "#lobby")]
    irc_channel: String,
    /// Speak NATS to --connect instead (connect only, for comparison with
    /// nats-server): a client is registered when its `CONNECT` and `PING`
    /// are answered with `PONG`; there is no presence to wait for.
    #[arg(long)]
    nats: bool,
    /// Overall deadline in seconds (default: warm-up + duration + 60).
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-bench: {error}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let secs_ok = |v: f64| v.is_finite() && (0.0..1e6).contains(&v);
    if !secs_ok(args.warmup) || !secs_ok(args.duration) || !secs_ok(args.settle) {
        return Err("durations must be between 0 and 1e6 seconds".into());
    }
    if args.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    if args.size < STAMP_LEN || args.size > chat_core::MAX_TEXT {
        return Err(format!(
            "--size must be between {STAMP_LEN} and {}",
            chat_core::MAX_TEXT
        ));
    }
    let addr = args
        .connect
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("{} is not a valid address", args.connect))?;
    let timeout = args
        .timeout
        .unwrap_or(args.warmup + args.duration + args.settle + 60.0);
    if !secs_ok(timeout) || timeout == 0.0 {
        return Err("--timeout must be a positive number of seconds".into());
    }
    if let Some(ca) = &args.tls_ca {
        let config = runtime_common::tls::client_config(Some(ca)).map_err(|e| e.to_string())?;
        let name = runtime_common::tls::server_name_of(&args.connect).map_err(|e| e.to_string())?;
        net::use_tls(config, name);
        println!("over TLS (CA {})", ca.display());
    }
    let resolve = |addr: &str| {
        addr.to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("{addr} is not a valid address"))
    };
    match (&args.irc_connect, args.irc_ratio) {
        (None, None) => {}
        (None, Some(_)) => return Err("--irc-ratio needs --irc-connect".into()),
        (Some(irc), ratio) => {
            let ratio = ratio.unwrap_or(1.0);
            if !(0.0..=1.0).contains(&ratio) {
                return Err("--irc-ratio must be between 0 and 1".into());
            }
            if args.scenario != Scenario::Fanout || args.pacing != Pacing::All {
                return Err("IRC clients take part in fanout with --pacing all only".into());
            }
            if args.size > 400 {
                return Err(
                    "--size must be at most 400 with IRC clients (a line is 512 bytes)".into(),
                );
            }
            let lobby = args.irc_channel.eq_ignore_ascii_case("#lobby");
            if !lobby && ratio < 1.0 {
                return Err(
                    "native clients talk in #lobby only: --irc-ratio 1 with --irc-channel".into(),
                );
            }
            let valid = args.irc_channel.starts_with('#')
                && args.irc_channel.len() <= 50
                && !args.irc_channel.contains([' ', ',', '\r', '\n', '\x07']);
            if !valid {
                return Err(format!("{} is not a channel name", args.irc_channel));
            }
            net::use_irc_channel(args.irc_channel.clone());
            net::use_irc(resolve(irc)?, ratio);
            println!("IRC clients: {:.0} % of them, on {irc}", ratio * 100.0);
        }
    }
    if args.nats {
        if args.scenario != Scenario::Connect || args.irc_connect.is_some() || args.tls_ca.is_some()
        {
            return Err("--nats goes with connect, without --irc-connect or --tls-ca".into());
        }
        net::use_nats();
        println!("speaking NATS");
    }
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    raise_fd_limit(args.clients + 64)?;
    let clk = clock_ticks();
    match args.scenario {
        Scenario::Fanout => fanout(args, addr, deadline, clk),
        Scenario::Connect => connect(args, addr, deadline),
        Scenario::Churn => churn(args, addr, deadline, clk),
        Scenario::Flood => flood(args, addr, clk),
    }
}
