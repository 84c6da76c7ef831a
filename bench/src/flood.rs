//! The `flood` scenario: honest latency while one client floods.
//!
//! One client writes SAYs as fast as the server takes them (16 per write)
//! and reads everything it gets on a second thread; an honest client says a
//! line every `--say-every` seconds and reads everything too. The figure is
//! the time from the honest client's write to its echo: how long an honest
//! user waits behind a flood the server must pace. Blocking sockets on
//! threads: two clients need no event loop.

#[allow(clippy::wildcard_imports)]
use super::*;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chat_core::codec::Deframer;
use chat_core::{ClientFrame, Name, ServerFrame, Text};

/// Registers `name` on a blocking socket and reads up to its roster's end.
fn join(addr: SocketAddr, name: &str) -> Result<(TcpStream, Deframer), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let name = Name::new(name).map_err(|e| e.to_string())?;
    stream
        .write_all(&ClientFrame::Hello { name }.to_bytes())
        .map_err(|e| format!("hello: {e}"))?;
    let mut deframer = Deframer::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed during registration".into());
        }
        let mut input = &buf[..n];
        while let Some(frame) = deframer.next_frame(&mut input).map_err(|e| e.to_string())? {
            if let Ok(ServerFrame::Users { last: true, .. }) = ServerFrame::decode(frame) {
                return Ok((stream, deframer));
            }
        }
    }
}

/// Reads `stream` until `stop`, calling `on_message` with each MESSAGE's
/// sender and text, and answering PINGs.
fn read_all(
    mut stream: TcpStream,
    mut deframer: Deframer,
    stop: &AtomicBool,
    mut on_message: impl FnMut(&[u8], &[u8]),
) -> Result<(), String> {
    let mut buf = vec![0u8; 256 * 1024];
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    while !stop.load(Ordering::Relaxed) {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Err("the server closed the connection".into()),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => return Err(format!("read: {e}")),
        };
        let mut input = &buf[..n];
        while let Some(frame) = deframer.next_frame(&mut input).map_err(|e| e.to_string())? {
            match frame.op {
                op::MESSAGE => {
                    if let Some((&len, rest)) = frame.payload.split_first() {
                        let (from, text) = rest.split_at(usize::from(len).min(rest.len()));
                        on_message(from, text);
                    }
                }
                op::LEFT | op::BYE => {
                    return Err(format!("unexpected frame {:#x}", frame.op));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

pub(crate) fn flood(args: &Args, addr: SocketAddr, clk: f64) -> Result<(), String> {
    println!(
        "flood: one flooder ({} B texts, 16 per write), one honest client saying a line every {} s, for {} s, server {addr}",
        args.size, args.say_every, args.duration
    );
    let (flooder, flooder_in) = join(addr, "flooder")?;
    let (honest, honest_in) = join(addr, "honest")?;
    let stop = Arc::new(AtomicBool::new(false));
    let flood_echoes = Arc::new(AtomicU64::new(0));
    let cpu = server_cpu(args);
    // The flooder's writer: as fast as the server reads.
    let writer = {
        let mut stream = flooder.try_clone().map_err(|e| e.to_string())?;
        let stop = Arc::clone(&stop);
        let text = Text::new("f".repeat(args.size)).map_err(|e| e.to_string())?;
        let burst: Vec<u8> = (0..16)
            .flat_map(|_| ClientFrame::Say { text: text.clone() }.to_bytes())
            .collect();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if stream.write_all(&burst).is_err() {
                    break;
                }
            }
        })
    };
    let flood_reader = {
        let stop = Arc::clone(&stop);
        let echoes = Arc::clone(&flood_echoes);
        std::thread::spawn(move || {
            read_all(flooder, flooder_in, &stop, |from, _| {
                if from == b"flooder" {
                    echoes.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
    };
    // The honest client: lines stamped with their sequence number.
    let sent_at: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let histogram = Arc::new(Mutex::new(new_histogram()));
    let honest_reader = {
        let stop = Arc::clone(&stop);
        let sent_at = Arc::clone(&sent_at);
        let histogram = Arc::clone(&histogram);
        let stream = honest.try_clone().map_err(|e| e.to_string())?;
        std::thread::spawn(move || {
            read_all(stream, honest_in, &stop, |from, text| {
                if from != b"honest" {
                    return;
                }
                let now = Instant::now();
                let seq = std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| t.strip_prefix("honest "))
                    .and_then(|n| n.parse::<usize>().ok());
                let sent = seq.and_then(|seq| {
                    sent_at
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(seq)
                        .copied()
                });
                if let Some(sent) = sent {
                    let ns = u64::try_from(now.duration_since(sent).as_nanos()).unwrap_or(u64::MAX);
                    let _ = histogram
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .record(ns.max(1));
                }
            })
        })
    };
    let mut honest = honest;
    let start = Instant::now();
    let every = Duration::from_secs_f64(args.say_every.max(0.001));
    let end = start + Duration::from_secs_f64(args.duration);
    let mut next = start;
    let mut seq = 0usize;
    while Instant::now() < end {
        let line = ClientFrame::Say {
            text: Text::new(format!("honest {seq}")).map_err(|e| e.to_string())?,
        }
        .to_bytes();
        sent_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Instant::now());
        honest
            .write_all(&line)
            .map_err(|e| format!("honest write: {e}"))?;
        seq += 1;
        next += every;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    // Let the last echo arrive, then stop everyone.
    std::thread::sleep(Duration::from_millis(200));
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    let flood_result = flood_reader.join().map_err(|_| "flood reader panicked")?;
    let honest_result = honest_reader.join().map_err(|_| "honest reader panicked")?;
    flood_result?;
    honest_result?;
    let histogram = histogram.lock().unwrap_or_else(PoisonError::into_inner);
    let echoed = histogram.len();
    let latency = Latency::of(&histogram);
    let rate = flood_echoes.load(Ordering::Relaxed) as f64 / elapsed;
    println!("  honest lines: {seq} sent, {echoed} echoed");
    println!("  honest echo latency: {}", latency.human());
    println!(
        "  flood: {} messages/s echoed to the flooder",
        fmt_rate(rate)
    );
    let server_cpu = cpu.and_then(|c| c.percent(clk));
    println!(
        "{{\"scenario\":\"flood\",\"honest_sent\":{seq},\"honest_echoed\":{echoed},\"latency_us\":{},\"flood_per_s\":{rate:.0},\"server_cpu_percent\":{}}}",
        latency.json(),
        json_opt(server_cpu.map(|c| format!("{c:.0}")))
    );
    if echoed < seq as u64 {
        return Err(format!("only {echoed} of {seq} honest lines were echoed"));
    }
    Ok(())
}
