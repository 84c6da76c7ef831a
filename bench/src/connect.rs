//! The `connect` scenario.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Default)]
pub(crate) struct Connect {
    welcomed: usize,
    joined: u64,
    rosters: u64,
    errors: u64,
    closed: Vec<String>,
}

impl Registers for Connect {
    fn registration(&self) -> (usize, Option<&String>) {
        (self.welcomed, self.closed.first())
    }
}

impl Handler for Connect {
    fn on_frame(&mut self, net: &mut Net, slot: usize, frame: Frame<'_>, _now_ns: u64) {
        match frame {
            Frame::Other {
                op: op::WELCOME, ..
            } => self.welcomed += 1,
            Frame::Other { op: op::JOINED, .. } => self.joined += 1,
            Frame::Other { op: op::USERS, .. } => self.rosters += 1,
            _ => answer_or_count(net, slot, frame, &mut self.errors),
        }
    }

    fn on_closed(&mut self, _slot: usize, id: u64, why: Option<String>) {
        self.closed.push(closed_line(id, why));
    }
}

pub(crate) fn connect(args: &Args, addr: SocketAddr, deadline: Instant) -> Result<(), String> {
    let n = args.clients;
    // NATS has no presence to wait for.
    let expected_joined = if args.nats {
        0
    } else {
        (n as u64) * (n as u64 - 1) / 2
    };
    println!(
        "connect: {n} clients, at most {} handshakes in flight, server {addr}",
        args.concurrency
    );
    let rss_before = args.server_pid.and_then(|pid| status_kib(pid, "VmRSS"));
    let t0 = Instant::now();
    let mut net = Net::new(addr, t0)?;
    let mut h = Connect::default();
    register_all(&mut net, &mut h, n, args.concurrency, deadline)?;
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
