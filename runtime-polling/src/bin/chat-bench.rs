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
//! - `churn`: a population of N clients talks (each says one text every
//!   `--say-every` seconds) while `--rate` clients per second join and as many
//!   of the oldest leave with BYE; one line per second.
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
#[command(version, about)]
struct Args {
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
    /// Seconds measured (fanout, churn).
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
    /// Seconds between two texts of one client (churn).
    #[arg(long, value_name = "SECS", default_value_t = 0.1)]
    say_every: f64,
    /// Seconds the server gets to settle before RSS is read (connect).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    settle: f64,
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
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    raise_fd_limit(args.clients + 64)?;
    let clk = clock_ticks();
    match args.scenario {
        Scenario::Fanout => fanout(args, addr, deadline, clk),
        Scenario::Connect => connect(args, addr, deadline),
        Scenario::Churn => churn(args, addr, deadline, clk),
    }
}

// ---------------------------------------------------------------------------
// The event loop shared by the scenarios.

/// What a scenario does with the frames its clients receive.
trait Handler {
    /// One frame for the client in `slot`; `now_ns` is the time of the read.
    fn on_frame(&mut self, net: &mut Net, slot: usize, op: u8, payload: &[u8], now_ns: u64);
    /// The client in `slot` is gone (`why` is `None` on a clean end of stream).
    fn on_closed(&mut self, slot: usize, id: u64, why: Option<String>);
}

struct Conn {
    stream: TcpStream,
    /// The number in the client's name, `b{id}`.
    id: u64,
    /// An unfinished frame left over from the last read.
    partial: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    /// Writable interest registered.
    writable: bool,
    /// Listed in `Net::dirty`.
    dirty: bool,
}

/// Every client socket on one poller.
struct Net {
    poller: Poller,
    addr: SocketAddr,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    dirty: Vec<usize>,
    events: Events,
    ready: Vec<(usize, bool, bool)>,
    rbuf: Vec<u8>,
    t0: Instant,
    open: usize,
}

impl Drop for Net {
    fn drop(&mut self) {
        for conn in self.conns.iter().flatten() {
            let _ = self.poller.delete(&conn.stream);
        }
    }
}

impl Net {
    fn new(addr: SocketAddr, t0: Instant) -> Result<Self, String> {
        let capacity = NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            poller: Poller::new().map_err(|e| format!("cannot create a poller: {e}"))?,
            addr,
            conns: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            events: Events::with_capacity(capacity),
            ready: Vec::new(),
            rbuf: vec![0; READ_CHUNK + HEADER_LEN + MAX_FRAME],
            t0,
            open: 0,
        })
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.t0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Starts a non-blocking connect for client `b{id}` and queues its HELLO.
    fn connect(&mut self, id: u64) -> Result<usize, String> {
        let fail = |e: io::Error| {
            let hint = if e.raw_os_error() == Some(24) {
                " (out of file descriptors: raise `ulimit -n`)"
            } else {
                ""
            };
            format!("cannot connect to {}: {e}{hint}", self.addr)
        };
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(self.addr),
            socket2::Type::STREAM,
            None,
        )
        .map_err(fail)?;
        socket.set_nonblocking(true).map_err(fail)?;
        socket.set_tcp_nodelay(true).map_err(fail)?;
        match socket.connect(&self.addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(115) || e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(fail(e)),
        }
        let stream = TcpStream::from(socket);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        // SAFETY: the stream is stored in `self.conns` and deleted from the
        // poller (in `close` or in `Drop`) before it is dropped.
        let added = unsafe {
            self.poller
                .add_with_mode(&stream, Interest::readable(slot), PollMode::Level)
        };
        if let Err(e) = added {
            self.free.push(slot);
            return Err(fail(e));
        }
        let name = format!("b{id}");
        let mut out = Vec::with_capacity(64);
        put_header(&mut out, op::HELLO, 2 + name.len());
        out.push(chat_core::frame::PROTOCOL_VERSION);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        self.conns[slot] = Some(Conn {
            stream,
            id,
            partial: Vec::new(),
            out,
            out_pos: 0,
            writable: false,
            dirty: true,
        });
        self.dirty.push(slot);
        self.open += 1;
        Ok(slot)
    }

    /// The output buffer of `slot`, to append frames to; written this turn.
    fn out(&mut self, slot: usize) -> Option<&mut Vec<u8>> {
        let conn = self.conns.get_mut(slot)?.as_mut()?;
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(slot);
        }
        Some(&mut conn.out)
    }

    /// Waits up to `timeout` for readiness and handles what is ready.
    fn turn<H: Handler>(&mut self, h: &mut H, timeout: Duration) -> Result<(), String> {
        self.events.clear();
        match self.poller.wait(&mut self.events, Some(timeout)) {
            Err(e) if e.kind() != ErrorKind::Interrupted => {
                return Err(format!("poll failed: {e}"));
            }
            _ => {}
        }
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        ready.extend(self.events.iter().map(|e| (e.key, e.readable, e.writable)));
        for &(slot, readable, writable) in &ready {
            if readable {
                self.read(h, slot);
            }
            if writable {
                self.flush(h, slot);
            }
        }
        self.ready = ready;
        Ok(())
    }

    fn read<H: Handler>(&mut self, h: &mut H, slot: usize) {
        let mut buf = std::mem::take(&mut self.rbuf);
        for _ in 0..READS_PER_EVENT {
            let Some(Some(conn)) = self.conns.get_mut(slot) else {
                break;
            };
            let kept = conn.partial.len();
            buf[..kept].copy_from_slice(&conn.partial);
            conn.partial.clear();
            let room = buf.len() - kept;
            match conn.stream.read(&mut buf[kept..]) {
                Ok(0) => {
                    self.close(h, slot, None);
                    break;
                }
                Ok(n) => {
                    let now_ns = self.now_ns();
                    let data = &buf[..kept + n];
                    match scan(data, |op, payload| {
                        h.on_frame(self, slot, op, payload, now_ns);
                    }) {
                        Ok(used) => {
                            if let Some(Some(conn)) = self.conns.get_mut(slot) {
                                conn.partial.extend_from_slice(&data[used..]);
                            }
                        }
                        Err(why) => {
                            self.close(h, slot, Some(why));
                            break;
                        }
                    }
                    if n < room {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    conn.partial.extend_from_slice(&buf[..kept]);
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {
                    conn.partial.extend_from_slice(&buf[..kept]);
                }
                Err(e) => {
                    self.close(h, slot, Some(format!("read failed: {e}")));
                    break;
                }
            }
        }
        self.rbuf = buf;
    }

    /// Writes `slot`'s queued output until done or the socket is full.
    fn flush<H: Handler>(&mut self, h: &mut H, slot: usize) {
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        conn.dirty = false;
        let mut failed = None;
        while conn.out_pos < conn.out.len() {
            match conn.stream.write(&conn.out[conn.out_pos..]) {
                Ok(n) => conn.out_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    failed = Some(format!("write failed: {e}"));
                    break;
                }
            }
        }
        if failed.is_some() {
            self.close(h, slot, failed);
            return;
        }
        let pending = conn.out_pos < conn.out.len();
        if !pending {
            conn.out.clear();
            conn.out_pos = 0;
        }
        if pending != conn.writable {
            let interest = Interest::new(slot, true, pending);
            match self
                .poller
                .modify_with_mode(&conn.stream, interest, PollMode::Level)
            {
                Ok(()) => conn.writable = pending,
                Err(e) => self.close(h, slot, Some(format!("cannot update interest: {e}"))),
            }
        }
    }

    /// Writes every output queued this turn.
    fn flush_dirty<H: Handler>(&mut self, h: &mut H) {
        let dirty = std::mem::take(&mut self.dirty);
        for &slot in &dirty {
            self.flush(h, slot);
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    fn close<H: Handler>(&mut self, h: &mut H, slot: usize, why: Option<String>) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let _ = self.poller.delete(&conn.stream);
        self.open -= 1;
        self.free.push(slot);
        h.on_closed(slot, conn.id, why);
    }
}

/// Calls `f` for each whole frame at the front of `data`; returns the bytes used.
fn scan(data: &[u8], mut f: impl FnMut(u8, &[u8])) -> Result<usize, String> {
    let mut pos = 0;
    while let Some(header) = data.get(pos..pos + HEADER_LEN) {
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if length == 0 || length > MAX_FRAME {
            return Err(format!("protocol error: frame length {length}"));
        }
        let Some(body) = data.get(pos + HEADER_LEN..pos + HEADER_LEN + length) else {
            break;
        };
        f(body[0], &body[1..]);
        pos += HEADER_LEN + length;
    }
    Ok(pos)
}

/// Splits a MESSAGE payload into the sender's number and the text's sequence
/// number and send time.
fn parse_message(payload: &[u8]) -> Option<(u64, u64, u64)> {
    let (&name_len, rest) = payload.split_first()?;
    let name = rest.get(..usize::from(name_len))?;
    let text = rest.get(usize::from(name_len)..)?;
    let from = parse_id(name)?;
    let seq = parse_hex(text.get(..16)?)?;
    let ts = parse_hex(text.get(16..STAMP_LEN)?)?;
    Some((from, seq, ts))
}

/// `b123` -> 123.
fn parse_id(name: &[u8]) -> Option<u64> {
    let (&b'b', digits) = name.split_first()? else {
        return None;
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |v, &c| {
        c.is_ascii_digit().then(|| v * 10 + u64::from(c - b'0'))
    })
}

/// Parses 16 lowercase hex digits, eight at a time (SWAR).
fn parse_hex(hex: &[u8]) -> Option<u64> {
    let (hi, rest) = hex.split_first_chunk::<8>()?;
    let lo = rest.first_chunk::<8>()?;
    Some(
        u64::from(hex8(u64::from_be_bytes(*hi))?) << 32 | u64::from(hex8(u64::from_be_bytes(*lo))?),
    )
}

/// Eight ASCII hex digits (big-endian in `v`) to their value.
fn hex8(v: u64) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Every byte must be 0x30..=0x39 or 0x61..=0x66; a cheap check that
    // catches anything that is not what `put_say` wrote.
    let letters = (v >> 6) & ONES;
    let digits = (v & (0x0f * ONES)) + 9 * letters;
    let high = v & (0xf0 * ONES);
    if (high ^ (0x30 * ONES) ^ (letters * 0x50)) != 0 || (digits & (0xf0 * ONES)) != 0 {
        return None;
    }
    let pairs = (digits | (digits >> 4)) & 0x00ff_00ff_00ff_00ff;
    let quads = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    Some(((quads | (quads >> 16)) & 0xffff_ffff) as u32)
}

/// Appends a SAY whose text is `seq` and `ts` in hex, padded with `x` to `size`.
fn put_say(out: &mut Vec<u8>, size: usize, seq: u64, ts: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    put_header(out, op::SAY, size);
    for value in [seq, ts] {
        for shift in (0..16).rev() {
            out.push(HEX[((value >> (shift * 4)) & 0xf) as usize]);
        }
    }
    out.resize(out.len() + size - STAMP_LEN, b'x');
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns .. 100 s, 3 significant digits; the bounds are valid constants.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).unwrap_or_else(|_| unreachable!())
}

struct Latency {
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        Self {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    fn human(&self) -> String {
        format!(
            "p50 {}  p99 {}  p99.9 {}  max {}",
            fmt_ns(self.p50),
            fmt_ns(self.p99),
            fmt_ns(self.p999),
            fmt_ns(self.max)
        )
    }

    fn json(&self) -> String {
        format!(
            "{{\"p50\":{},\"p99\":{},\"p999\":{},\"max\":{}}}",
            self.p50 / 1000,
            self.p99 / 1000,
            self.p999 / 1000,
            self.max / 1000
        )
    }
}

fn fmt_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// 1234567.8 -> "1,234,568".
fn fmt_rate(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn json_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| v.to_string())
}

// ---------------------------------------------------------------------------
// /proc readings.

/// Clock ticks per second for /proc/PID/stat times.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of a process, in ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command start at field 3 (state); utime is 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `Vm...:` line of /proc/PID/status, in KiB.
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU use of a process over an interval, as a percentage of one core.
struct CpuClock {
    pid: String,
    ticks: Option<u64>,
    at: Instant,
}

impl CpuClock {
    fn start(pid: String) -> Self {
        Self {
            ticks: cpu_ticks(&pid),
            pid,
            at: Instant::now(),
        }
    }

    fn percent(&self, clk: f64) -> Option<f64> {
        let used = cpu_ticks(&self.pid)?.checked_sub(self.ticks?)? as f64 / clk;
        let wall = self.at.elapsed().as_secs_f64();
        (wall > 0.0).then(|| 100.0 * used / wall)
    }
}

/// Raises this process's soft descriptor limit to its hard limit when `need`
/// exceeds it, with `prlimit` (no unsafe `setrlimit`).
fn raise_fd_limit(need: usize) -> Result<(), String> {
    let read = || -> Option<(u64, String)> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        let mut words = line.split_whitespace().skip(3);
        let soft = words.next()?.parse().ok()?;
        Some((soft, words.next()?.to_owned()))
    };
    let Some((soft, hard)) = read() else {
        return Ok(());
    };
    if soft >= need as u64 {
        return Ok(());
    }
    let script = format!("prlimit --pid {} --nofile={hard}:", std::process::id());
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .status();
    match read() {
        Some((soft, _)) if soft >= need as u64 => Ok(()),
        _ => Err(format!(
            "{need} file descriptors needed but the limit is {soft} (hard {hard}); \
             run `ulimit -Sn $(ulimit -Hn)` or raise the hard limit"
        )),
    }
}

/// Fails with a message once the overall deadline has passed.
fn check_deadline(deadline: Instant, what: &str) -> Result<(), String> {
    if Instant::now() >= deadline {
        Err(format!("overall deadline passed while {what}"))
    } else {
        Ok(())
    }
}

fn server_cpu(args: &Args) -> Option<CpuClock> {
    args.server_pid.map(|pid| CpuClock::start(pid.to_string()))
}

fn warn_if_saturated(bench_cpu: Option<f64>) {
    if let Some(cpu) = bench_cpu.filter(|&c| c > 90.0) {
        println!(
            "  WARNING: the bench used {cpu:.0} % of its core: it may be the bottleneck; \
             these figures are a lower bound"
        );
    }
}

// ---------------------------------------------------------------------------
// fanout

struct Fanout {
    n: usize,
    s: usize,
    w: u64,
    size: usize,
    pacing: Pacing,
    /// Next sequence expected, per (receiver slot, sender).
    expected: Vec<u64>,
    /// Receivers still missing a message, per (sender, seq & mask); pacing all.
    remaining: Vec<u32>,
    /// Window ring size per sender (w rounded up to a power of two) and its mask.
    ring: usize,
    mask: u64,
    /// Per sender: texts sent, and texts whose window slot is free again.
    next_seq: Vec<u64>,
    done: Vec<u64>,
    welcomed: usize,
    sending: bool,
    measuring: bool,
    received_total: u64,
    deliveries: u64,
    sent: u64,
    out_of_order: u64,
    bad_frames: u64,
    errors: u64,
    closed: Vec<String>,
    hist: Histogram<u64>,
}

impl Handler for Fanout {
    fn on_frame(&mut self, net: &mut Net, slot: usize, op: u8, payload: &[u8], now_ns: u64) {
        match op {
            op::MESSAGE => {
                let Some((from, seq, ts)) = parse_message(payload) else {
                    self.bad_frames += 1;
                    return;
                };
                let sender = from as usize;
                if sender >= self.s || slot >= self.n {
                    self.bad_frames += 1;
                    return;
                }
                self.received_total += 1;
                let expected = &mut self.expected[slot * self.s + sender];
                if seq != *expected {
                    self.out_of_order += 1;
                }
                *expected = (*expected).max(seq + 1);
                if self.measuring {
                    self.deliveries += 1;
                    self.hist
                        .saturating_record(now_ns.saturating_sub(ts).max(1));
                }
                match self.pacing {
                    Pacing::Echo => {
                        if slot == sender {
                            self.done[sender] = self.done[sender].max(seq + 1);
                        }
                    }
                    Pacing::All => {
                        let base = sender * self.ring;
                        let left = &mut self.remaining[base + (seq & self.mask) as usize];
                        *left = left.saturating_sub(1);
                        let done = &mut self.done[sender];
                        while *done < self.next_seq[sender]
                            && self.remaining[base + (*done & self.mask) as usize] == 0
                        {
                            *done += 1;
                        }
                    }
                }
            }
            op::WELCOME => self.welcomed += 1,
            op::PING => {
                if let (Some(out), Some(token)) = (net.out(slot), payload.first_chunk::<8>()) {
                    chat_core::frame::encode_pong(out, u64::from_be_bytes(*token));
                }
            }
            op::ERROR | op::SERVER_BYE => {
                self.errors += 1;
                if self.errors <= 5 {
                    eprintln!(
                        "chat-bench: b{slot} got {} {:?}",
                        chat_core::frame::op_name(op),
                        String::from_utf8_lossy(payload)
                    );
                }
            }
            _ => {}
        }
    }

    fn on_closed(&mut self, _slot: usize, id: u64, why: Option<String>) {
        self.closed.push(format!(
            "b{id}: {}",
            why.unwrap_or_else(|| "closed by the server".into())
        ));
    }
}

impl Fanout {
    /// Fills every sender's window.
    fn send(&mut self, net: &mut Net) {
        if !self.sending {
            return;
        }
        let now_ns = net.now_ns();
        for sender in 0..self.s {
            let free = self.w - (self.next_seq[sender] - self.done[sender]);
            if free == 0 {
                continue;
            }
            let Some(out) = net.out(sender) else {
                continue;
            };
            for _ in 0..free {
                let seq = self.next_seq[sender];
                put_say(out, self.size, seq, now_ns);
                self.remaining[sender * self.ring + (seq & self.mask) as usize] = self.n as u32;
                self.next_seq[sender] += 1;
            }
            if self.measuring {
                self.sent += free;
            }
        }
    }

    fn missing(&self) -> u64 {
        let mut missing = 0;
        for r in 0..self.n {
            for s in 0..self.s {
                missing += self.next_seq[s].saturating_sub(self.expected[r * self.s + s]);
            }
        }
        missing
    }
}

/// Connects and registers clients `b0..b{n}` with bounded concurrency; returns
/// when all are WELCOMEd (`welcomed` reads the handler's count).
fn register_all<H: Handler>(
    net: &mut Net,
    h: &mut H,
    n: usize,
    concurrency: usize,
    deadline: Instant,
    welcomed: impl Fn(&H) -> usize,
    closed: impl Fn(&H) -> Option<String>,
) -> Result<(), String> {
    let mut opened = 0;
    while welcomed(h) < n {
        check_deadline(
            deadline,
            &format!("registering clients ({} of {n} WELCOMEd)", welcomed(h)),
        )?;
        if let Some(why) = closed(h) {
            return Err(format!("a client was closed while registering: {why}"));
        }
        while opened < n && opened - welcomed(h).min(opened) < concurrency.max(1) {
            let slot = net.connect(opened as u64)?;
            if slot != opened {
                return Err("internal error: slot does not match client".into());
            }
            opened += 1;
        }
        net.flush_dirty(h);
        net.turn(h, Duration::from_millis(10))?;
    }
    Ok(())
}

fn fanout(args: &Args, addr: SocketAddr, deadline: Instant, clk: f64) -> Result<(), String> {
    let (n, s, w) = (args.clients, args.senders.min(args.clients), args.window);
    if s == 0 || w == 0 || w > 1 << 20 {
        return Err("--senders and --window must be at least 1 (window at most 2^20)".into());
    }
    let t0 = Instant::now();
    let mut net = Net::new(addr, t0)?;
    let mut h = Fanout {
        n,
        s,
        w,
        size: args.size,
        pacing: args.pacing,
        expected: vec![0; n * s],
        ring: w.next_power_of_two() as usize,
        mask: w.next_power_of_two() - 1,
        remaining: vec![0; s * w.next_power_of_two() as usize],
        next_seq: vec![0; s],
        done: vec![0; s],
        welcomed: 0,
        sending: false,
        measuring: false,
        received_total: 0,
        deliveries: 0,
        sent: 0,
        out_of_order: 0,
        bad_frames: 0,
        errors: 0,
        closed: Vec::new(),
        hist: new_histogram(),
    };
    let pacing = match args.pacing {
        Pacing::Echo => "echo",
        Pacing::All => "all",
    };
    println!(
        "fanout: {n} clients, {s} senders, {}-byte texts, window {w}, pacing {pacing}, \
         {} s warm-up, {} s measured, server {addr}",
        args.size, args.warmup, args.duration
    );
    register_all(
        &mut net,
        &mut h,
        n,
        args.concurrency,
        deadline,
        |h| h.welcomed,
        |h| h.closed.first().cloned(),
    )?;
    let register_s = t0.elapsed().as_secs_f64();
    println!("  registered {n} clients in {register_s:.3} s");

    h.sending = true;
    let warm_end = Instant::now() + Duration::from_secs_f64(args.warmup);
    let measure_end = warm_end + Duration::from_secs_f64(args.duration);
    let mut clocks = None;
    loop {
        let now = Instant::now();
        if clocks.is_none() && now >= warm_end {
            h.measuring = true;
            clocks = Some((CpuClock::start("self".into()), server_cpu(args), now));
        }
        if now >= measure_end {
            break;
        }
        check_deadline(deadline, "measuring")?;
        if let Some(why) = h.closed.first() {
            return Err(format!("a client was closed during the run: {why}"));
        }
        h.send(&mut net);
        net.flush_dirty(&mut h);
        let next = if clocks.is_none() {
            warm_end
        } else {
            measure_end
        };
        let wait = next
            .saturating_duration_since(now)
            .min(Duration::from_millis(5));
        net.turn(&mut h, wait)?;
    }
    h.measuring = false;
    h.sending = false;
    let (self_clock, server_clock, start) =
        clocks.ok_or("internal error: the measurement never started")?;
    let wall = start.elapsed().as_secs_f64();
    let bench_cpu = self_clock.percent(clk);
    let server_cpu = server_clock.and_then(|c| c.percent(clk));
    let server_hwm = args.server_pid.and_then(|pid| status_kib(pid, "VmHWM"));

    // Drain: everything sent must reach everyone, in order.
    let drain_end = (Instant::now() + DRAIN_TIMEOUT).min(deadline);
    let sent_total: u64 = h.next_seq.iter().sum();
    while h.received_total < sent_total * n as u64 && Instant::now() < drain_end {
        if !h.closed.is_empty() {
            break;
        }
        net.flush_dirty(&mut h);
        net.turn(&mut h, Duration::from_millis(10))?;
    }
    let lost = h.missing();
    let lat = Latency::of(&h.hist);
    let deliveries_per_s = h.deliveries as f64 / wall;
    let sent_per_s = h.sent as f64 / wall;
    println!(
        "  deliveries/s {}   sent/s {}   ({} deliveries in {wall:.2} s)",
        fmt_rate(deliveries_per_s),
        fmt_rate(sent_per_s),
        h.deliveries
    );
    println!("  latency {}", lat.human());
    println!(
        "  lost {lost}, out of order {}, errors {}, unparsable {}, clients closed {}",
        h.out_of_order,
        h.errors,
        h.bad_frames,
        h.closed.len()
    );
    if let Some(why) = h.closed.first() {
        println!("  first close: {why}");
    }
    if let Some(pid) = args.server_pid {
        println!(
            "  server {pid}: CPU {} of one core, peak RSS (VmHWM) {} KiB",
            server_cpu.map_or("?".into(), |c| format!("{c:.0} %")),
            json_opt(server_hwm)
        );
    }
    println!(
        "  bench CPU {} of one core",
        bench_cpu.map_or("?".into(), |c| format!("{c:.0} %"))
    );
    warn_if_saturated(bench_cpu);
    println!(
        "{{\"scenario\":\"fanout\",\"clients\":{n},\"senders\":{s},\"size\":{},\"window\":{w},\
         \"pacing\":\"{pacing}\",\"warmup_s\":{},\"duration_s\":{wall:.3},\"register_s\":{register_s:.3},\
         \"deliveries\":{},\"deliveries_per_s\":{deliveries_per_s:.0},\"sent_per_s\":{sent_per_s:.0},\
         \"latency_us\":{},\"lost\":{lost},\"out_of_order\":{},\"errors\":{},\"closed\":{},\
         \"bench_cpu_pct\":{},\"server_cpu_pct\":{},\"server_peak_rss_kib\":{}}}",
        args.size,
        args.warmup,
        h.deliveries,
        lat.json(),
        h.out_of_order,
        h.errors + h.bad_frames,
        h.closed.len(),
        json_opt(bench_cpu.map(|c| format!("{c:.1}"))),
        json_opt(server_cpu.map(|c| format!("{c:.1}"))),
        json_opt(server_hwm),
    );
    if lost > 0 || h.out_of_order > 0 || !h.closed.is_empty() {
        return Err("messages were lost, reordered or clients dropped".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// connect

#[derive(Default)]
struct Connect {
    welcomed: usize,
    joined: u64,
    rosters: u64,
    errors: u64,
    closed: Vec<String>,
}

impl Handler for Connect {
    fn on_frame(&mut self, net: &mut Net, slot: usize, op: u8, payload: &[u8], _now_ns: u64) {
        match op {
            op::WELCOME => self.welcomed += 1,
            op::JOINED => self.joined += 1,
            op::USERS => self.rosters += 1,
            op::PING => {
                if let (Some(out), Some(token)) = (net.out(slot), payload.first_chunk::<8>()) {
                    chat_core::frame::encode_pong(out, u64::from_be_bytes(*token));
                }
            }
            op::ERROR | op::SERVER_BYE => {
                self.errors += 1;
                if self.errors <= 5 {
                    eprintln!(
                        "chat-bench: b{slot} got {} {:?}",
                        chat_core::frame::op_name(op),
                        String::from_utf8_lossy(payload)
                    );
                }
            }
            _ => {}
        }
    }

    fn on_closed(&mut self, _slot: usize, id: u64, why: Option<String>) {
        self.closed.push(format!(
            "b{id}: {}",
            why.unwrap_or_else(|| "closed by the server".into())
        ));
    }
}

fn connect(args: &Args, addr: SocketAddr, deadline: Instant) -> Result<(), String> {
    let n = args.clients;
    let expected_joined = (n as u64) * (n as u64 - 1) / 2;
    println!(
        "connect: {n} clients, at most {} handshakes in flight, server {addr}",
        args.concurrency
    );
    let rss_before = args.server_pid.and_then(|pid| status_kib(pid, "VmRSS"));
    let t0 = Instant::now();
    let mut net = Net::new(addr, t0)?;
    let mut h = Connect::default();
    register_all(
        &mut net,
        &mut h,
        n,
        args.concurrency,
        deadline,
        |h| h.welcomed,
        |h| h.closed.first().cloned(),
    )?;
    let welcomed_s = t0.elapsed().as_secs_f64();
    while h.joined < expected_joined {
        check_deadline(
            deadline,
            &format!(
                "waiting for JOINED notices ({} of {expected_joined})",
                h.joined
            ),
        )?;
        if let Some(why) = h.closed.first() {
            return Err(format!("a client was closed: {why}"));
        }
        net.flush_dirty(&mut h);
        net.turn(&mut h, Duration::from_millis(10))?;
    }
    let all_s = t0.elapsed().as_secs_f64();
    // Let the server settle (its queues drain), still answering any PING.
    let settle_end = Instant::now() + Duration::from_secs_f64(args.settle);
    while Instant::now() < settle_end {
        net.flush_dirty(&mut h);
        net.turn(&mut h, settle_end.saturating_duration_since(Instant::now()))?;
    }
    let rss_after = args.server_pid.and_then(|pid| status_kib(pid, "VmRSS"));
    let per_conn = match (rss_before, rss_after) {
        (Some(before), Some(after)) => {
            Some(after.saturating_sub(before) as f64 * 1024.0 / n as f64)
        }
        _ => None,
    };
    println!("  all {n} WELCOMEd after {welcomed_s:.3} s");
    println!(
        "  all {expected_joined} JOINED notices (N*(N-1)/2) after {all_s:.3} s; \
         {} USERS frames; errors {}",
        h.rosters, h.errors
    );
    if let (Some(before), Some(after), Some(per)) = (rss_before, rss_after, per_conn) {
        println!(
            "  server RSS {before} KiB before, {after} KiB after {} s settling: {per:.0} bytes per connection",
            args.settle
        );
    }
    println!(
        "{{\"scenario\":\"connect\",\"clients\":{n},\"concurrency\":{},\"welcomed_s\":{welcomed_s:.3},\
         \"all_joined_s\":{all_s:.3},\"joined\":{},\"errors\":{},\"server_rss_before_kib\":{},\
         \"server_rss_after_kib\":{},\"server_rss_per_conn_bytes\":{}}}",
        args.concurrency,
        h.joined,
        h.errors,
        json_opt(rss_before),
        json_opt(rss_after),
        json_opt(per_conn.map(|p| format!("{p:.0}"))),
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// churn

#[derive(Default, Clone)]
struct Member {
    id: u64,
    live: bool,
    registered: bool,
    leaving: bool,
    next_seq: u64,
    echo_expected: u64,
    next_say_ns: u64,
}

struct Churn {
    size: usize,
    members: Vec<Member>,
    /// Slots (with their ids) in the order they registered.
    order: VecDeque<(usize, u64)>,
    active: usize,
    welcomed: u64,
    left_clean: u64,
    dropped: Vec<String>,
    sent: u64,
    deliveries: u64,
    out_of_order: u64,
    errors: u64,
    hist: Histogram<u64>,
    second: Histogram<u64>,
}

impl Handler for Churn {
    fn on_frame(&mut self, net: &mut Net, slot: usize, op: u8, payload: &[u8], now_ns: u64) {
        match op {
            op::MESSAGE => {
                let Some((from, seq, ts)) = parse_message(payload) else {
                    self.errors += 1;
                    return;
                };
                self.deliveries += 1;
                let latency = now_ns.saturating_sub(ts).max(1);
                self.hist.saturating_record(latency);
                self.second.saturating_record(latency);
                if let Some(m) = self.members.get_mut(slot).filter(|m| m.id == from) {
                    if seq != m.echo_expected {
                        self.out_of_order += 1;
                    }
                    m.echo_expected = seq + 1;
                }
            }
            op::WELCOME => {
                self.welcomed += 1;
                if let Some(m) = self.members.get_mut(slot) {
                    m.registered = true;
                    self.order.push_back((slot, m.id));
                    self.active += 1;
                }
            }
            op::PING => {
                if let (Some(out), Some(token)) = (net.out(slot), payload.first_chunk::<8>()) {
                    chat_core::frame::encode_pong(out, u64::from_be_bytes(*token));
                }
            }
            op::ERROR => self.errors += 1,
            op::SERVER_BYE if payload.first() != Some(&(chat_core::Reason::Quit as u8)) => {
                self.errors += 1;
            }
            _ => {}
        }
    }

    fn on_closed(&mut self, slot: usize, id: u64, why: Option<String>) {
        let Some(m) = self.members.get_mut(slot) else {
            return;
        };
        if m.leaving && why.is_none() {
            self.left_clean += 1;
        } else {
            if m.registered && !m.leaving {
                self.active -= 1;
            }
            self.dropped.push(format!(
                "b{id}: {}",
                why.unwrap_or_else(|| "closed by the server".into())
            ));
        }
        *m = Member::default();
    }
}

impl Churn {
    fn join(
        &mut self,
        net: &mut Net,
        id: u64,
        now_ns: u64,
        say_every_ns: u64,
    ) -> Result<(), String> {
        let slot = net.connect(id)?;
        if self.members.len() <= slot {
            self.members.resize(slot + 1, Member::default());
        }
        self.members[slot] = Member {
            id,
            live: true,
            // Stagger the first text over one interval.
            next_say_ns: now_ns + id.wrapping_mul(7919) % say_every_ns.max(1),
            ..Member::default()
        };
        Ok(())
    }

    /// The oldest registered member says BYE.
    fn leave_oldest(&mut self, net: &mut Net) {
        while let Some((slot, id)) = self.order.pop_front() {
            let Some(m) = self.members.get_mut(slot) else {
                continue;
            };
            if m.id != id || !m.live || !m.registered || m.leaving {
                continue;
            }
            m.leaving = true;
            self.active -= 1;
            if let Some(out) = net.out(slot) {
                put_header(out, op::BYE, 0);
            }
            return;
        }
    }

    fn say(&mut self, net: &mut Net, now_ns: u64, every_ns: u64) {
        for (slot, m) in self.members.iter_mut().enumerate() {
            if !m.registered || m.leaving || m.next_say_ns > now_ns {
                continue;
            }
            m.next_say_ns = m.next_say_ns.max(now_ns.saturating_sub(every_ns)) + every_ns;
            if let Some(out) = net.out(slot) {
                put_say(out, self.size, m.next_seq, now_ns);
                m.next_seq += 1;
                self.sent += 1;
            }
        }
    }
}

fn churn(args: &Args, addr: SocketAddr, deadline: Instant, clk: f64) -> Result<(), String> {
    let n = args.clients;
    if !(args.rate.is_finite() && args.rate >= 0.0 && args.rate <= 1e6) {
        return Err("--rate must be between 0 and 1e6".into());
    }
    if !(args.say_every.is_finite() && args.say_every >= 1e-4 && args.say_every <= 1e6) {
        return Err("--say-every must be between 0.0001 and 1e6 seconds".into());
    }
    let every_ns = (args.say_every * 1e9) as u64;
    println!(
        "churn: population {n}, {} joins and leaves per second, each client says {} bytes every {} s, \
         {} s, server {addr}",
        args.rate, args.size, args.say_every, args.duration
    );
    let t0 = Instant::now();
    let mut net = Net::new(addr, t0)?;
    let mut h = Churn {
        size: args.size,
        members: Vec::new(),
        order: VecDeque::new(),
        active: 0,
        welcomed: 0,
        left_clean: 0,
        dropped: Vec::new(),
        sent: 0,
        deliveries: 0,
        out_of_order: 0,
        errors: 0,
        hist: new_histogram(),
        second: new_histogram(),
    };
    // Initial population, bounded handshakes.
    let mut next_id = 0u64;
    while h.welcomed < n as u64 {
        check_deadline(deadline, "registering the initial population")?;
        if let Some(why) = h.dropped.first() {
            return Err(format!("a client was closed while registering: {why}"));
        }
        while next_id < n as u64
            && next_id - h.welcomed.min(next_id) < args.concurrency.max(1) as u64
        {
            let now_ns = net.now_ns();
            h.join(&mut net, next_id, now_ns, every_ns)?;
            next_id += 1;
        }
        net.flush_dirty(&mut h);
        net.turn(&mut h, Duration::from_millis(10))?;
    }
    println!(
        "  initial {n} clients registered in {:.3} s",
        t0.elapsed().as_secs_f64()
    );
    println!(
        "  {:>4}  {:>7} {:>6} {:>6} {:>8} {:>11} {:>10} {:>10} {:>10} {:>12}",
        "sec",
        "clients",
        "joins",
        "leaves",
        "sent",
        "deliveries",
        "p50",
        "p99",
        "max",
        "server RSS"
    );
    let self_clock = CpuClock::start("self".into());
    let server_clock = server_cpu(args);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.duration);
    let mut joins = 0u64;
    let mut next_tick = start + Duration::from_secs(1);
    let mut last = (0u64, 0u64, 0u64, 0u64); // joins, leaves, sent, deliveries
    let mut rss_series = Vec::new();
    let mut second = 0;
    loop {
        let now = Instant::now();
        check_deadline(deadline, "churning")?;
        if now >= next_tick || now >= end {
            second += 1;
            let rss = args.server_pid.and_then(|pid| status_kib(pid, "VmRSS"));
            rss_series.push(rss);
            let lat = Latency::of(&h.second);
            println!(
                "  {second:>4}  {:>7} {:>6} {:>6} {:>8} {:>11} {:>10} {:>10} {:>10} {:>12}",
                h.active,
                joins - last.0,
                h.left_clean - last.1,
                h.sent - last.2,
                h.deliveries - last.3,
                fmt_ns(lat.p50),
                fmt_ns(lat.p99),
                fmt_ns(lat.max),
                rss.map_or("-".into(), |r| format!("{r} KiB")),
            );
            last = (joins, h.left_clean, h.sent, h.deliveries);
            h.second.reset();
            next_tick += Duration::from_secs(1);
        }
        if now >= end {
            break;
        }
        let elapsed = now.duration_since(start).as_secs_f64();
        let due = (elapsed * args.rate) as u64;
        while joins < due {
            let now_ns = net.now_ns();
            h.join(&mut net, next_id, now_ns, every_ns)?;
            next_id += 1;
            joins += 1;
            if h.active >= n {
                h.leave_oldest(&mut net);
            }
        }
        let now_ns = net.now_ns();
        h.say(&mut net, now_ns, every_ns);
        net.flush_dirty(&mut h);
        net.turn(&mut h, Duration::from_millis(1))?;
    }
    let wall = start.elapsed().as_secs_f64();
    let bench_cpu = self_clock.percent(clk);
    let server_cpu = server_clock.and_then(|c| c.percent(clk));
    let server_hwm = args.server_pid.and_then(|pid| status_kib(pid, "VmHWM"));
    let lat = Latency::of(&h.hist);
    println!(
        "  {joins} joins, {} clean leaves, {} sent, {} deliveries in {wall:.2} s; latency {}",
        h.left_clean,
        h.sent,
        h.deliveries,
        lat.human()
    );
    println!(
        "  own echoes out of order {}, errors {}, clients dropped {}",
        h.out_of_order,
        h.errors,
        h.dropped.len()
    );
    if let Some(why) = h.dropped.first() {
        println!("  first drop: {why}");
    }
    if let Some(pid) = args.server_pid {
        println!(
            "  server {pid}: CPU {} of one core, peak RSS (VmHWM) {} KiB",
            server_cpu.map_or("?".into(), |c| format!("{c:.0} %")),
            json_opt(server_hwm)
        );
    }
    println!(
        "  bench CPU {} of one core",
        bench_cpu.map_or("?".into(), |c| format!("{c:.0} %"))
    );
    warn_if_saturated(bench_cpu);
    let series: Vec<String> = rss_series.iter().map(|r| json_opt(*r)).collect();
    println!(
        "{{\"scenario\":\"churn\",\"clients\":{n},\"rate\":{},\"say_every_s\":{},\"size\":{},\
         \"duration_s\":{wall:.3},\"joins\":{joins},\"leaves\":{},\"sent\":{},\"deliveries\":{},\
         \"latency_us\":{},\"out_of_order\":{},\"errors\":{},\"dropped\":{},\"bench_cpu_pct\":{},\
         \"server_cpu_pct\":{},\"server_peak_rss_kib\":{},\"server_rss_kib_per_s\":[{}]}}",
        args.rate,
        args.say_every,
        args.size,
        h.left_clean,
        h.sent,
        h.deliveries,
        lat.json(),
        h.out_of_order,
        h.errors,
        h.dropped.len(),
        json_opt(bench_cpu.map(|c| format!("{c:.1}"))),
        json_opt(server_cpu.map(|c| format!("{c:.1}"))),
        json_opt(server_hwm),
        series.join(","),
    );
    if h.out_of_order > 0 || !h.dropped.is_empty() {
        return Err("echoes were reordered or clients dropped".into());
    }
    Ok(())
}
