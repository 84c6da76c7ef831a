//! [`LogThrottle`]: a warning that may repeat many times a second (running
//! out of descriptors) is logged once, then summarised at most every few
//! seconds.

use std::time::{Duration, Instant};

/// Logs the first occurrence of a condition, then at most one line per
/// interval saying how many more there were.
#[derive(Debug)]
pub struct LogThrottle {
    interval: Duration,
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl LogThrottle {
    /// A throttle that logs at most once per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_logged: None,
            suppressed: 0,
        }
    }

    /// The condition happened at `now`: returns `Some(n)` when a line should
    /// be logged (with `n` occurrences not logged since the last line), else
    /// `None`.
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        match self.last_logged {
            Some(at) if now.saturating_duration_since(at) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last_logged = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Whether an accept failed because the process or system ran out of
/// descriptors or socket memory: EMFILE, ENFILE, ENOBUFS, ENOMEM.
pub fn is_out_of_descriptors(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Logs an accept failure for lack of descriptors through `throttle`.
pub fn warn_out_of_descriptors(throttle: &mut LogThrottle, error: &std::io::Error) {
    match throttle.hit(Instant::now()) {
        Some(0) => log::warn!("out of file descriptors ({error}); pausing accepts"),
        Some(more) => log::warn!(
            "out of file descriptors ({error}); pausing accepts ({more} more times since the last warning)"
        ),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_hit_is_logged_then_one_summary_per_interval() {
        let mut throttle = LogThrottle::new(Duration::from_secs(5));
        let start = Instant::now();
        assert_eq!(throttle.hit(start), Some(0));
        for tenth in 1..50 {
            assert_eq!(
                throttle.hit(start + Duration::from_millis(100 * tenth)),
                None
            );
        }
        assert_eq!(throttle.hit(start + Duration::from_secs(5)), Some(49));
        assert_eq!(throttle.hit(start + Duration::from_secs(6)), None);
    }
}
