//! Timeouts turned into deadlines without overflow: a plan's `timeoutSeconds` is bounded when the plan
//! is loaded (`plan::MAX_TIMEOUT_SECONDS`), but `--step-timeout` and `--poll-interval` come from the
//! command line, and no value may panic the executor (a panic would leave the lock Lease to expire on
//! its own instead of being released).

use std::time::Duration;

use tokio::time::Instant;

/// About 30 years: "no deadline" for any practical purpose, and far from `Instant`'s limits.
const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// `now + timeout`, or as far ahead as the clock allows.
pub fn deadline(now: Instant, timeout: Duration) -> Instant {
    now.checked_add(timeout)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

/// How long a gate waits for hand work: `polls` poll intervals, never longer than `timeout`.
pub fn grace(poll_interval: Duration, polls: u32, timeout: Duration) -> Duration {
    poll_interval
        .checked_mul(polls)
        .unwrap_or(Duration::MAX)
        .min(timeout)
}

/// The timeout of one wait, gate or tool run: `--step-timeout` wins, then the plan's seconds, then the
/// default.
pub fn step_timeout(
    override_: Option<Duration>,
    planned_seconds: Option<u64>,
    default: Duration,
) -> Duration {
    override_.unwrap_or_else(|| planned_seconds.map(Duration::from_secs).unwrap_or(default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_timeouts_do_not_overflow() {
        let now = Instant::now();
        assert!(deadline(now, Duration::MAX) > now);
        assert!(deadline(now, Duration::from_secs(u64::MAX)) > now);
        assert_eq!(
            deadline(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert_eq!(
            grace(Duration::MAX, u32::MAX, Duration::from_secs(9)),
            Duration::from_secs(9)
        );
        assert_eq!(
            grace(Duration::from_secs(2), 15, Duration::from_secs(600)),
            Duration::from_secs(30)
        );
        assert_eq!(
            step_timeout(None, Some(u64::MAX), Duration::ZERO),
            Duration::from_secs(u64::MAX)
        );
    }
}
