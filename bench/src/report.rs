//! Latency histograms, number formatting, and what `/proc` says about CPU and memory.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(crate) fn new_histogram() -> Histogram<u64> {
    // 1 ns .. 100 s, 3 significant digits; the bounds are valid constants.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).unwrap_or_else(|_| unreachable!())
}

pub(crate) struct Latency {
    pub(crate) p50: u64,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) max: u64,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        Self {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    pub(crate) fn human(&self) -> String {
        format!(
            "p50 {}  p99 {}  p99.9 {}  max {}",
            fmt_ns(self.p50),
            fmt_ns(self.p99),
            fmt_ns(self.p999),
            fmt_ns(self.max)
        )
    }

    pub(crate) fn json(&self) -> String {
        format!(
            "{{\"p50\":{},\"p99\":{},\"p999\":{},\"max\":{}}}",
            self.p50 / 1000,
            self.p99 / 1000,
            self.p999 / 1000,
            self.max / 1000
        )
    }
}

pub(crate) fn fmt_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// 1234567.8 -> "1,234,568".
pub(crate) fn fmt_rate(v: f64) -> String {
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

pub(crate) fn json_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| v.to_string())
}

/// Clock ticks per second for /proc/PID/stat times.
pub(crate) fn clock_ticks() -> f64 {
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
pub(crate) fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command start at field 3 (state); utime is 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `Vm...:` line of /proc/PID/status, in KiB.
pub(crate) fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU use of a process over an interval, as a percentage of one core.
pub(crate) struct CpuClock {
    pub(crate) pid: String,
    pub(crate) ticks: Option<u64>,
    pub(crate) at: Instant,
}

impl CpuClock {
    pub(crate) fn start(pid: String) -> Self {
        Self {
            ticks: cpu_ticks(&pid),
            pid,
            at: Instant::now(),
        }
    }

    pub(crate) fn percent(&self, clk: f64) -> Option<f64> {
        let used = cpu_ticks(&self.pid)?.checked_sub(self.ticks?)? as f64 / clk;
        let wall = self.at.elapsed().as_secs_f64();
        (wall > 0.0).then(|| 100.0 * used / wall)
    }
}

/// Raises this process's soft descriptor limit to its hard limit when `need`
/// exceeds it, with `prlimit` (no unsafe `setrlimit`).
pub(crate) fn raise_fd_limit(need: usize) -> Result<(), String> {
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
pub(crate) fn check_deadline(deadline: Instant, what: &str) -> Result<(), String> {
    if Instant::now() >= deadline {
        Err(format!("overall deadline passed while {what}"))
    } else {
        Ok(())
    }
}

pub(crate) fn server_cpu(args: &Args) -> Option<CpuClock> {
    args.server_pid.map(|pid| CpuClock::start(pid.to_string()))
}

pub(crate) fn warn_if_saturated(bench_cpu: Option<f64>) {
    if let Some(cpu) = bench_cpu.filter(|&c| c > 90.0) {
        println!(
            "  WARNING: the bench used {cpu:.0} % of its core: it may be the bottleneck; \
             these figures are a lower bound"
        );
    }
}

/// The CPU lines every scenario prints: the server's (with `--server-pid`)
/// and the bench's own, with a warning when the bench is saturated.
pub(crate) fn print_cpu(
    server_pid: Option<u32>,
    server_cpu: Option<f64>,
    server_hwm: Option<u64>,
    bench_cpu: Option<f64>,
) {
    if let Some(pid) = server_pid {
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
}
