//! The event loop the scenarios share: every client socket on one poller, frames cut in place.

#[allow(clippy::wildcard_imports)]
use super::*;

/// TLS settings for every client, when the run is over TLS.
static TLS: std::sync::OnceLock<(
    std::sync::Arc<rustls::ClientConfig>,
    rustls::pki_types::ServerName<'static>,
)> = std::sync::OnceLock::new();

/// Makes every client of this run speak TLS.
pub(crate) fn use_tls(
    config: std::sync::Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
) {
    let _ = TLS.set((config, name));
}

/// The IRC listener and the share of clients that use it, on a run with IRC.
static IRC: std::sync::OnceLock<(SocketAddr, f64)> = std::sync::OnceLock::new();

/// Makes a share of this run's clients speak IRC to `addr`.
pub(crate) fn use_irc(addr: SocketAddr, ratio: f64) {
    let _ = IRC.set((addr, ratio));
}

/// Whether client `id` speaks IRC: spread evenly, `ratio` of them.
pub(crate) fn is_irc(id: u64) -> bool {
    IRC.get().is_some_and(|&(_, ratio)| {
        let share = |i: u64| (i as f64 * ratio).floor();
        share(id + 1) > share(id)
    })
}

/// Set when every client speaks NATS (`--nats`).
static NATS: std::sync::OnceLock<()> = std::sync::OnceLock::new();

/// Makes every client of this run speak NATS.
pub(crate) fn use_nats() {
    let _ = NATS.set(());
}

/// The channel IRC clients talk in, when not the server's lobby.
static IRC_CHANNEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes this run's IRC clients talk in `channel` instead of `#lobby`.
pub(crate) fn use_irc_channel(channel: String) {
    let _ = IRC_CHANNEL.set(channel);
}

/// The channel IRC clients join and talk in.
pub(crate) fn irc_channel() -> &'static str {
    IRC_CHANNEL.get().map_or("#lobby", String::as_str)
}

/// A scenario that registers its clients with [`register_all`].
pub(crate) trait Registers {
    /// Clients WELCOMEd so far, and the first client closed, if any.
    fn registration(&self) -> (usize, Option<&String>);
}

/// A received frame as scenarios see it. A MESSAGE comes as its sender's
/// name and text, slices of the read buffer, so an IRC line needs no copy
/// into the shape of a native frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    Message { from: &'a [u8], text: &'a [u8] },
    Other { op: u8, payload: &'a [u8] },
}

/// What a scenario does with the frames its clients receive.
pub(crate) trait Handler {
    /// One frame for the client in `slot`; `now_ns` is the time of the read.
    fn on_frame(&mut self, net: &mut Net, slot: usize, frame: Frame<'_>, now_ns: u64);
    /// The client in `slot` is gone (`why` is `None` on a clean end of stream).
    fn on_closed(&mut self, slot: usize, id: u64, why: Option<String>);
}

pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    /// The number in the client's name, `b{id}`.
    pub(crate) id: u64,
    /// An unfinished frame left over from the last read.
    pub(crate) partial: Vec<u8>,
    pub(crate) out: Vec<u8>,
    pub(crate) out_pos: usize,
    /// TLS between the socket and the frames, on a TLS run.
    pub(crate) tls: Option<Box<TlsSession>>,
    /// Writable interest registered.
    pub(crate) writable: bool,
    /// It speaks IRC: lines are translated into the frames scenarios see.
    pub(crate) irc: bool,
    /// Listed in `Net::dirty`.
    pub(crate) dirty: bool,
}

/// Every client socket on one poller.
pub(crate) struct Net {
    pub(crate) poller: Poller,
    pub(crate) addr: SocketAddr,
    pub(crate) conns: Vec<Option<Conn>>,
    pub(crate) free: Vec<usize>,
    pub(crate) dirty: Vec<usize>,
    pub(crate) events: Events,
    pub(crate) ready: Vec<(usize, bool, bool)>,
    pub(crate) rbuf: Vec<u8>,
    /// Plaintext of a TLS read, after the partial frame kept from the last.
    pub(crate) plain: Vec<u8>,
    pub(crate) t0: Instant,
    pub(crate) open: usize,
}

impl Drop for Net {
    fn drop(&mut self) {
        for conn in self.conns.iter().flatten() {
            let _ = self.poller.delete(&conn.stream);
        }
    }
}

impl Net {
    pub(crate) fn new(addr: SocketAddr, t0: Instant) -> Result<Self, String> {
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
            plain: Vec::new(),
            t0,
            open: 0,
        })
    }

    pub(crate) fn now_ns(&self) -> u64 {
        u64::try_from(self.t0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Starts a non-blocking connect for client `b{id}` and queues its HELLO.
    pub(crate) fn connect(&mut self, id: u64) -> Result<usize, String> {
        let fail = |e: io::Error| {
            let hint = if e.raw_os_error() == Some(24) {
                " (out of file descriptors: raise `ulimit -n`)"
            } else {
                ""
            };
            format!("cannot connect to {}: {e}{hint}", self.addr)
        };
        let nats = NATS.get().is_some();
        // NATS is line-based too: its lines go through `scan_irc`.
        let irc = is_irc(id) || nats;
        let addr = match IRC.get() {
            Some(&(irc_addr, _)) if irc => irc_addr,
            _ => self.addr,
        };
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .map_err(fail)?;
        socket.set_nonblocking(true).map_err(fail)?;
        socket.set_tcp_nodelay(true).map_err(fail)?;
        match socket.connect(&addr.into()) {
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
        let tls = match TLS.get() {
            None => None,
            Some((config, name)) => Some(Box::new(
                TlsSession::client(std::sync::Arc::clone(config), name.clone())
                    .map_err(|e| format!("cannot start TLS: {e}"))?,
            )),
        };
        let name = format!("b{id}");
        let mut out = Vec::with_capacity(64);
        if nats {
            out.extend_from_slice(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n");
        } else if irc {
            let channel = irc_channel();
            let lines = format!("NICK {name}\r\nUSER {name} 0 * :{name}\r\nJOIN {channel}\r\n");
            out.extend_from_slice(lines.as_bytes());
        } else {
            put_header(&mut out, op::HELLO, 2 + name.len());
            out.push(chat_core::frame::PROTOCOL_VERSION);
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
        }
        self.conns[slot] = Some(Conn {
            stream,
            id,
            partial: Vec::new(),
            out,
            out_pos: 0,
            tls,
            writable: false,
            dirty: true,
            irc,
        });
        self.dirty.push(slot);
        self.open += 1;
        Ok(slot)
    }

    /// The output buffer of `slot`, to append frames to; written this turn.
    pub(crate) fn out(&mut self, slot: usize) -> Option<&mut Vec<u8>> {
        let conn = self.conns.get_mut(slot)?.as_mut()?;
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(slot);
        }
        Some(&mut conn.out)
    }

    /// Waits up to `timeout` for readiness and handles what is ready.
    pub(crate) fn turn<H: Handler>(&mut self, h: &mut H, timeout: Duration) -> Result<(), String> {
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

    pub(crate) fn read<H: Handler>(&mut self, h: &mut H, slot: usize) {
        let mut buf = std::mem::take(&mut self.rbuf);
        let mut plain = std::mem::take(&mut self.plain);
        let t0 = self.t0;
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
                    let now_ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    let mut tls_failed = None;
                    let is_tls = conn.tls.is_some();
                    if let Some(tls) = conn.tls.as_mut() {
                        plain.clear();
                        plain.extend_from_slice(&buf[..kept]);
                        if let Err(e) = tls.handle_input(&buf[kept..kept + n], &mut plain) {
                            tls_failed = Some(e.to_string());
                        }
                    }
                    // Over TLS a read may bring the handshake's next flight
                    // or room for queued output: write this turn.
                    let newly_dirty = is_tls && !std::mem::replace(&mut conn.dirty, true);
                    if let Some(why) = tls_failed {
                        self.close(h, slot, Some(why));
                        break;
                    }
                    if newly_dirty {
                        self.dirty.push(slot);
                    }
                    let data = if is_tls { &plain[..] } else { &buf[..kept + n] };
                    let scanned = if conn.irc {
                        scan_irc(data, |frame| h.on_frame(self, slot, frame, now_ns))
                    } else {
                        scan(data, |frame| h.on_frame(self, slot, frame, now_ns))
                    };
                    match scanned {
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
        self.plain = plain;
    }

    /// Writes `slot`'s queued output until done or the socket is full.
    pub(crate) fn flush<H: Handler>(&mut self, h: &mut H, slot: usize) {
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        conn.dirty = false;
        let mut failed = None;
        loop {
            let pending = match conn.tls.as_mut() {
                None => &conn.out[conn.out_pos..],
                Some(tls) => {
                    // The bench's own buffer moves on when TLS takes a
                    // batch; only the session's in-flight count needs
                    // clearing once its records are out.
                    tls.acknowledge();
                    conn.out_pos += tls.send(&conn.out[conn.out_pos..]);
                    tls.transmit()
                }
            };
            if pending.is_empty() {
                break;
            }
            match conn.stream.write(pending) {
                Ok(n) => match conn.tls.as_mut() {
                    None => conn.out_pos += n,
                    Some(tls) => tls.handle_written(n),
                },
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
        let queued = conn.out_pos < conn.out.len();
        if !queued {
            conn.out.clear();
            conn.out_pos = 0;
        }
        let pending = match &conn.tls {
            None => queued,
            Some(tls) => !tls.transmit().is_empty() || (queued && tls.wants_plaintext()),
        };
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
    pub(crate) fn flush_dirty<H: Handler>(&mut self, h: &mut H) {
        let dirty = std::mem::take(&mut self.dirty);
        for &slot in &dirty {
            self.flush(h, slot);
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    pub(crate) fn close<H: Handler>(&mut self, h: &mut H, slot: usize, why: Option<String>) {
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
pub(crate) fn scan<'a>(data: &'a [u8], mut f: impl FnMut(Frame<'a>)) -> Result<usize, String> {
    let mut pos = 0;
    while let Some(header) = data.get(pos..pos + HEADER_LEN) {
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if length == 0 || length > MAX_FRAME {
            return Err(format!("protocol error: frame length {length}"));
        }
        let Some(body) = data.get(pos + HEADER_LEN..pos + HEADER_LEN + length) else {
            break;
        };
        let (op, payload) = (body[0], &body[1..]);
        f(if op == op::MESSAGE {
            // A name longer than the payload leaves an empty text, which no
            // scenario takes for a message of its own.
            let (&name_len, rest) = payload.split_first().unwrap_or((&0, &[]));
            let (from, text) = rest.split_at(usize::from(name_len).min(rest.len()));
            Frame::Message { from, text }
        } else {
            Frame::Other { op, payload }
        });
        pos += HEADER_LEN + length;
    }
    Ok(pos)
}

/// [`scan`] for IRC: each whole line at the front of `data` is handed on as
/// the frame a native client would have got (`PRIVMSG` to the channel as MESSAGE,
/// the end of the JOIN's names as WELCOME, `PING` as PING, `ERROR` as BYE);
/// other lines are skipped. Returns the bytes used.
pub(crate) fn scan_irc<'a>(data: &'a [u8], mut f: impl FnMut(Frame<'a>)) -> Result<usize, String> {
    let mut pos = 0;
    // A nick, a command or a target is a few bytes: a plain scan beats
    // setting up a vector search for it.
    let find = |bytes: &[u8], b: u8| bytes.iter().position(|&c| c == b);
    let channel = irc_channel().as_bytes();
    while let Some(end) = memchr::memchr(b'\n', &data[pos..]) {
        let line = &data[pos..pos + end];
        pos += end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(rest) = line.strip_prefix(b":") else {
            let other = |op, payload| Frame::Other { op, payload };
            if let Some(token) = line.strip_prefix(b"PING ") {
                f(other(op::PING, token));
            } else if line.starts_with(b"ERROR") {
                f(other(op::SERVER_BYE, line));
            } else if line == b"PONG" {
                // NATS (IRC's PONG has a source): the answer to the PING
                // after CONNECT, which registers the client.
                f(other(op::WELCOME, &[]));
            } else if line.starts_with(b"-ERR") {
                f(other(op::ERROR, line));
            }
            continue;
        };
        // `source COMMAND rest`, the bench's hot loop. A source is 15-30
        // bytes, long enough for a vector search.
        let Some(space) = memchr::memchr(b' ', rest) else {
            continue;
        };
        let (source, after) = rest.split_at(space);
        // Most lines are the channel's PRIVMSGs: matched by their fixed
        // parts, with no search for the ends of command and target (a search
        // ending at a varying place costs a mispredicted branch per line).
        if let Some(text) = after
            .strip_prefix(b" PRIVMSG ")
            .and_then(|params| params.strip_prefix(channel))
            .and_then(|params| params.strip_prefix(b" :"))
        {
            f(message(source, text));
            continue;
        }
        let after = &after[1..];
        let command_end = find(after, b' ').unwrap_or(after.len());
        let (command, params) = after.split_at(command_end);
        let params = params.get(1..).unwrap_or_default();
        match command {
            b"PRIVMSG" => {
                // `target :text`: a target has no spaces.
                let text_at = find(params, b' ').map_or(params.len(), |at| {
                    at + 1 + usize::from(params.get(at + 1) == Some(&b':'))
                });
                f(message(source, &params[text_at.min(params.len())..]));
            }
            b"366" => f(Frame::Other {
                op: op::WELCOME,
                payload: &[],
            }),
            b"PING" => f(Frame::Other {
                op: op::PING,
                payload: params,
            }),
            b"432" | b"433" | b"451" | b"461" | b"421" | b"404" | b"403" => f(Frame::Other {
                op: op::ERROR,
                payload: line,
            }),
            _ => {}
        }
    }
    if data.len() - pos > 4096 {
        return Err("protocol error: an IRC line without its end".into());
    }
    Ok(pos)
}

/// The MESSAGE a native client would get for an IRC PRIVMSG from `source`
/// (`nick!user@host`).
fn message<'a>(source: &'a [u8], text: &'a [u8]) -> Frame<'a> {
    let nick_end = source
        .iter()
        .position(|&c| c == b'!')
        .unwrap_or(source.len());
    Frame::Message {
        from: &source[..nick_end],
        text,
    }
}

/// The sender's number and the text's sequence number and send time of a
/// MESSAGE.
pub(crate) fn parse_message(from: &[u8], text: &[u8]) -> Option<(u64, u64, u64)> {
    let (seq, ts) = parse_stamp(text)?;
    Some((parse_id(from)?, seq, ts))
}

/// The sequence number and send time a text starts with.
pub(crate) fn parse_stamp(text: &[u8]) -> Option<(u64, u64)> {
    let seq = parse_hex(text.get(..16)?)?;
    let ts = parse_hex(text.get(16..STAMP_LEN)?)?;
    Some((seq, ts))
}

/// The stamp `put_say` starts a text with: `seq` and `ts` in hex.
pub(crate) fn stamp(seq: u64, ts: u64) -> [u8; STAMP_LEN] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; STAMP_LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        let value = if i < 16 { seq } else { ts };
        let shift = (15 - i % 16) * 4;
        *byte = HEX[((value >> shift) & 0xf) as usize];
    }
    out
}

/// `b123` -> 123.
pub(crate) fn parse_id(name: &[u8]) -> Option<u64> {
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
pub(crate) fn parse_hex(hex: &[u8]) -> Option<u64> {
    let (hi, rest) = hex.split_first_chunk::<8>()?;
    let lo = rest.first_chunk::<8>()?;
    Some(
        u64::from(hex8(u64::from_be_bytes(*hi))?) << 32 | u64::from(hex8(u64::from_be_bytes(*lo))?),
    )
}

/// Eight ASCII hex digits (big-endian in `v`) to their value.
pub(crate) fn hex8(v: u64) -> Option<u32> {
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
pub(crate) fn put_say(out: &mut Vec<u8>, size: usize, seq: u64, ts: u64) {
    put_stamped_say(out, size, &stamp(seq, ts));
}

/// Appends the IRC form of a stamped SAY: a PRIVMSG to the channel.
pub(crate) fn put_irc_say(out: &mut Vec<u8>, size: usize, stamp: &[u8; STAMP_LEN]) {
    out.extend_from_slice(b"PRIVMSG ");
    out.extend_from_slice(irc_channel().as_bytes());
    out.extend_from_slice(b" :");
    out.extend_from_slice(stamp);
    out.resize(out.len() + size - STAMP_LEN, b'x');
    out.extend_from_slice(b"\r\n");
}

/// Appends a SAY whose text is `stamp` padded with `x` to `size`.
pub(crate) fn put_stamped_say(out: &mut Vec<u8>, size: usize, stamp: &[u8; STAMP_LEN]) {
    put_header(out, op::SAY, size);
    out.extend_from_slice(stamp);
    out.resize(out.len() + size - STAMP_LEN, b'x');
}

/// Connects and registers clients `b0..b{n}` with bounded concurrency; returns
/// when all are WELCOMEd (`welcomed` reads the handler's count).
pub(crate) fn register_all<H: Handler + Registers>(
    net: &mut Net,
    h: &mut H,
    n: usize,
    concurrency: usize,
    deadline: Instant,
) -> Result<(), String> {
    let mut opened = 0;
    while h.registration().0 < n {
        check_deadline(
            deadline,
            &format!(
                "registering clients ({} of {n} WELCOMEd)",
                h.registration().0
            ),
        )?;
        if let Some(why) = h.registration().1 {
            return Err(format!("a client was closed while registering: {why}"));
        }
        while opened < n && opened - h.registration().0.min(opened) < concurrency.max(1) {
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

/// The frames every scenario treats alike: answers a PING, and counts (and
/// reports the first few) ERROR and BYE frames. Other ops are ignored.
pub(crate) fn answer_or_count(net: &mut Net, slot: usize, frame: Frame<'_>, errors: &mut u64) {
    let Frame::Other { op, payload } = frame else {
        return;
    };
    match op {
        op::PING
            if net
                .conns
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.irc) =>
        {
            if let Some(out) = net.out(slot) {
                out.extend_from_slice(b"PONG ");
                out.extend_from_slice(payload);
                out.extend_from_slice(b"\r\n");
            }
        }
        op::PING => {
            if let (Some(out), Some(token)) = (net.out(slot), payload.first_chunk::<8>()) {
                chat_core::ClientFrame::Pong {
                    token: u64::from_be_bytes(*token),
                }
                .encode(out);
            }
        }
        op::ERROR | op::SERVER_BYE => {
            *errors += 1;
            if *errors <= 5 {
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

/// How a closed client is reported.
pub(crate) fn closed_line(id: u64, why: Option<String>) -> String {
    format!(
        "b{id}: {}",
        why.unwrap_or_else(|| "closed by the server".into())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_say_parses_back_as_a_message() {
        for (seq, ts) in [(0, 0), (1, 0xdead_beef), (u64::MAX, 123_456_789_012)] {
            let mut say = Vec::new();
            put_say(&mut say, 64, seq, ts);
            assert_eq!(say.len(), HEADER_LEN + 1 + 64, "length, op, text");
            let text = &say[HEADER_LEN + 1..];
            assert!(text.starts_with(&stamp(seq, ts)));
            assert!(text[STAMP_LEN..].iter().all(|&b| b == b'x'));
            // What the server relays: MESSAGE(name "b7", the same text).
            let mut frame = Vec::new();
            put_header(&mut frame, op::MESSAGE, 3 + text.len());
            frame.extend_from_slice(&[2, b'b', b'7']);
            frame.extend_from_slice(text);
            let mut seen = Vec::new();
            assert_eq!(scan(&frame, |f| seen.push(f)), Ok(frame.len()));
            let [Frame::Message { from, text }] = seen[..] else {
                panic!("one MESSAGE expected, got {seen:?}");
            };
            assert_eq!(parse_message(from, text), Some((7, seq, ts)));
        }
    }

    #[test]
    fn a_damaged_stamp_is_refused() {
        let mut text = stamp(42, 99).to_vec();
        text[3] = b'g';
        assert_eq!(parse_stamp(&text), None);
        assert_eq!(parse_stamp(&text[..20]), None);
        assert_eq!(
            parse_message(b"x7", &stamp(42, 99)),
            None,
            "names are b<number>"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod irc_tests {
    use super::*;

    #[test]
    fn irc_lines_reach_scenarios_as_the_frames_native_clients_get() {
        let text = stamp(5, 77);
        let mut data = b":b3!b3@irc PRIVMSG #lobby :".to_vec();
        data.extend_from_slice(&text);
        // A PRIVMSG to a nick misses the fast path for the channel's lines.
        data.extend_from_slice(b"xx\r\n:b4!b4@native PRIVMSG b1 :");
        data.extend_from_slice(&stamp(6, 78));
        data.extend_from_slice(
            b"\r\n:chat.local 366 b1 #lobby :End\r\nPING :chat.local\r\n:partial",
        );
        let mut seen = Vec::new();
        let used = scan_irc(&data, |frame| seen.push(frame)).unwrap();
        assert_eq!(&data[used..], b":partial");
        let messages: Vec<_> = seen
            .iter()
            .filter_map(|frame| match *frame {
                Frame::Message { from, text } => parse_message(from, text),
                Frame::Other { .. } => None,
            })
            .collect();
        assert_eq!(messages, [(3, 5, 77), (4, 6, 78)]);
        assert_eq!(
            seen[2..],
            [
                Frame::Other {
                    op: op::WELCOME,
                    payload: b""
                },
                Frame::Other {
                    op: op::PING,
                    payload: b":chat.local"
                }
            ]
        );
    }
}
