//! When to try a transiently failed send again, and when to give up.
//!
//! Owns: the backoff schedule. Exponential from `[retry] first_delay_seconds` (default 60),
//! doubling up to `max_delay_seconds` (default 3600), with "equal jitter": each delay is
//! between half and all of the exponential step, the random part derived from the delivery's
//! idempotency key and the attempt number, so deliveries that failed together (a provider
//! outage) spread out, and the schedule of one delivery is reproducible in tests. After
//! `give_up_hours` (default 96: RFC 5321 4.5.4.1 asks for a configurable give-up time of at
//! least 4 to 5 days for mail) the send is given up and dead-lettered.
//! Must not: sleep or read the clock (the daemon passes how long ago the first try was).

use crate::config::Config;
use std::time::Duration;

/// The retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub give_up_after: Duration,
}

/// What to do after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again after this delay.
    After(Duration),
    /// The give-up time is reached (or would be before the next try): dead-letter it.
    GiveUp,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_delay: Duration::from_secs(60),
            max_delay: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(96 * 3600),
        }
    }
}

impl RetryPolicy {
    /// `[retry]` of `flowc.toml`, with the defaults above.
    pub fn from_config(config: &Config) -> RetryPolicy {
        let d = RetryPolicy::default();
        let r = &config.retry;
        let first_delay = r
            .first_delay_seconds
            .map_or(d.first_delay, Duration::from_secs)
            .max(Duration::from_secs(1));
        RetryPolicy {
            first_delay,
            max_delay: r
                .max_delay_seconds
                .map_or(d.max_delay, Duration::from_secs)
                .max(first_delay),
            give_up_after: r.give_up_hours.map_or(d.give_up_after, |h| {
                Duration::from_secs(h.saturating_mul(3600))
            }),
        }
    }

    /// The delay before try number `attempt + 1`, after `attempt` failed tries (`attempt` >= 1):
    /// the step `first_delay * 2^(attempt-1)` capped at `max_delay`, then a value in
    /// `[step/2, step]` chosen by `key` and `attempt`.
    pub fn delay(&self, attempt: u32, key: &str) -> Duration {
        let shift = attempt.saturating_sub(1).min(30);
        let step = self
            .first_delay
            .saturating_mul(1u32 << shift)
            .min(self.max_delay);
        let half = step / 2;
        let digest = super::sha256(format!("{key}\u{0}{attempt}").as_bytes());
        let mut eight = [0u8; 8];
        eight.copy_from_slice(&digest[..8]);
        let fraction = u64::from_le_bytes(eight) as f64 / u64::MAX as f64;
        half + (step - half).mul_f64(fraction)
    }

    /// After `attempt` failed tries, the first of them `since_first_try` ago: retry when, or
    /// give up.
    pub fn next(&self, attempt: u32, since_first_try: Duration, key: &str) -> Retry {
        let delay = self.delay(attempt, key);
        if since_first_try.saturating_add(delay) > self.give_up_after {
            Retry::GiveUp
        } else {
            Retry::After(delay)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_jitter_bounds_and_cap() {
        let policy = RetryPolicy::default();
        for attempt in 1..20 {
            let step = (60u64 << (attempt - 1).min(30)).min(3600);
            let d = policy.delay(attempt, "k").as_secs_f64();
            assert!(
                d >= step as f64 / 2.0 && d <= step as f64,
                "attempt {attempt}: {d}"
            );
        }
    }

    #[test]
    fn jitter_depends_on_the_key_and_is_reproducible() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(3, "a"), policy.delay(3, "a"));
        let distinct: std::collections::BTreeSet<_> =
            (0..20).map(|i| policy.delay(3, &format!("k{i}"))).collect();
        assert!(distinct.len() > 15, "{distinct:?}");
    }

    #[test]
    fn gives_up_after_the_configured_time() {
        let config = Config::parse(
            "[retry]\nfirst_delay_seconds = 10\nmax_delay_seconds = 20\ngive_up_hours = 1\n",
        )
        .unwrap();
        let policy = RetryPolicy::from_config(&config);
        assert_eq!(policy.give_up_after, Duration::from_secs(3600));
        assert!(
            matches!(policy.next(1, Duration::ZERO, "k"), Retry::After(d) if d <= Duration::from_secs(10))
        );
        assert_eq!(
            policy.next(50, Duration::from_secs(3599), "k"),
            Retry::GiveUp
        );
        // Tries until the give-up time, then stops.
        let mut elapsed = Duration::ZERO;
        let mut attempts = 0;
        while let Retry::After(d) = policy.next(attempts + 1, elapsed, "k") {
            elapsed += d;
            attempts += 1;
        }
        assert!(elapsed <= Duration::from_secs(3600));
        assert!(attempts >= 3600 / 20, "{attempts}");
    }
}
