//! The `fanout` scenario.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(crate) struct Fanout {
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
    /// Per (sender, seq & mask): the stamp sent with that text and its send
    /// time. A receiver whose text starts with the stamp it expects next
    /// skips parsing it: the bytes are the ones that encode that sequence
    /// number and send time.
    stamps: Vec<[u8; STAMP_LEN]>,
    sent_ns: Vec<u64>,
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
    /// A run of equal latencies not yet recorded: the texts of one sender's
    /// burst share a send time and usually arrive in one read, so most
    /// deliveries extend the run instead of touching the histogram.
    run: (u64, u64),
}

impl Registers for Fanout {
    fn registration(&self) -> (usize, Option<&String>) {
        (self.welcomed, self.closed.first())
    }
}

impl Handler for Fanout {
    fn on_frame(&mut self, net: &mut Net, slot: usize, frame: Frame<'_>, now_ns: u64) {
        match frame {
            Frame::Message { from, text } => {
                let Some(sender) = parse_id(from) else {
                    self.bad_frames += 1;
                    return;
                };
                let sender = sender as usize;
                if sender >= self.s || slot >= self.n {
                    self.bad_frames += 1;
                    return;
                }
                let next = self.expected[slot * self.s + sender];
                let at = sender * self.ring + (next & self.mask) as usize;
                let (seq, ts) = match self.stamps.get(at) {
                    Some(stamp) if next < self.next_seq[sender] && text.starts_with(stamp) => {
                        (next, self.sent_ns[at])
                    }
                    _ => match parse_stamp(text) {
                        Some(parsed) => parsed,
                        None => {
                            self.bad_frames += 1;
                            return;
                        }
                    },
                };
                self.received_total += 1;
                let expected = &mut self.expected[slot * self.s + sender];
                if seq != *expected {
                    self.out_of_order += 1;
                }
                *expected = (*expected).max(seq + 1);
                if self.measuring {
                    self.deliveries += 1;
                    let latency = now_ns.saturating_sub(ts).max(1);
                    if self.run.0 == latency {
                        self.run.1 += 1;
                    } else {
                        self.record_run();
                        self.run = (latency, 1);
                    }
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
            Frame::Other {
                op: op::WELCOME, ..
            } => self.welcomed += 1,
            Frame::Other { .. } => answer_or_count(net, slot, frame, &mut self.errors),
        }
    }

    fn on_closed(&mut self, _slot: usize, id: u64, why: Option<String>) {
        self.closed.push(closed_line(id, why));
    }
}

impl Fanout {
    fn record_run(&mut self) {
        let (latency, count) = std::mem::take(&mut self.run);
        if count > 0 {
            self.hist.saturating_record_n(latency, count);
        }
    }

    /// Fills every sender's window.
    pub(crate) fn send(&mut self, net: &mut Net) {
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
                let at = sender * self.ring + (seq & self.mask) as usize;
                let stamp = stamp(seq, now_ns);
                // IRC senders hear no echo of their own messages.
                let irc = is_irc(sender as u64);
                if irc {
                    put_irc_say(out, self.size, &stamp);
                } else {
                    put_stamped_say(out, self.size, &stamp);
                }
                self.stamps[at] = stamp;
                self.sent_ns[at] = now_ns;
                self.remaining[at] = self.n as u32 - u32::from(irc);
                self.next_seq[sender] += 1;
            }
            if self.measuring {
                self.sent += free;
            }
        }
    }

    pub(crate) fn missing(&self) -> u64 {
        let mut missing = 0;
        for r in 0..self.n {
            for s in 0..self.s {
                if r == s && is_irc(s as u64) {
                    continue;
                }
                missing += self.next_seq[s].saturating_sub(self.expected[r * self.s + s]);
            }
        }
        missing
    }
}

pub(crate) fn fanout(
    args: &Args,
    addr: SocketAddr,
    deadline: Instant,
    clk: f64,
) -> Result<(), String> {
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
        stamps: vec![[0; STAMP_LEN]; s * w.next_power_of_two() as usize],
        sent_ns: vec![0; s * w.next_power_of_two() as usize],
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
        run: (0, 0),
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
    register_all(&mut net, &mut h, n, args.concurrency, deadline)?;
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
    h.record_run();
    h.sending = false;
    let (self_clock, server_clock, start) =
        clocks.ok_or("internal error: the measurement never started")?;
    let wall = start.elapsed().as_secs_f64();
    let bench_cpu = self_clock.percent(clk);
    let server_cpu = server_clock.and_then(|c| c.percent(clk));
    let server_hwm = args.server_pid.and_then(|pid| status_kib(pid, "VmHWM"));

    // Drain: everything sent must reach everyone, in order.
    let drain_end = (Instant::now() + DRAIN_TIMEOUT).min(deadline);
    let expected_total: u64 = (0..s)
        .map(|sender| h.next_seq[sender] * (n as u64 - u64::from(is_irc(sender as u64))))
        .sum();
    while h.received_total < expected_total && Instant::now() < drain_end {
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
    print_cpu(args.server_pid, server_cpu, server_hwm, bench_cpu);
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
