//! The `churn` scenario.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Default, Clone)]
pub(crate) struct Member {
    id: u64,
    live: bool,
    registered: bool,
    leaving: bool,
    next_seq: u64,
    echo_expected: u64,
    next_say_ns: u64,
}

pub(crate) struct Churn {
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

impl Churn {
    fn on_message(&mut self, slot: usize, from: &[u8], text: &[u8], now_ns: u64) {
        let Some((from, seq, ts)) = parse_message(from, text) else {
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
}

impl Handler for Churn {
    fn on_frame(&mut self, net: &mut Net, slot: usize, frame: Frame<'_>, now_ns: u64) {
        let (op, payload) = match frame {
            Frame::Message { from, text } => {
                self.on_message(slot, from, text, now_ns);
                return;
            }
            Frame::Other { op, payload } => (op, payload),
        };
        match op {
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
                    chat_core::ClientFrame::Pong {
                        token: u64::from_be_bytes(*token),
                    }
                    .encode(out);
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
    pub(crate) fn join(
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
    pub(crate) fn leave_oldest(&mut self, net: &mut Net) {
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

    pub(crate) fn say(&mut self, net: &mut Net, now_ns: u64, every_ns: u64) {
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

pub(crate) fn churn(
    args: &Args,
    addr: SocketAddr,
    deadline: Instant,
    clk: f64,
) -> Result<(), String> {
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
    print_cpu(args.server_pid, server_cpu, server_hwm, bench_cpu);
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
