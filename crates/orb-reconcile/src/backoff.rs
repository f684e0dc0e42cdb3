//! The retry schedule as data: exponential backoff with a cap and bounded jitter, and
//! the attempt after which a booking is parked.

use jiff::SignedDuration;

/// Exponential backoff: attempt `n` (1-based) waits `base * 2^(n-1)`, capped at `max`,
/// plus jitter of up to half that delay. After `max_attempts` failed attempts the booking
/// is parked for an admin (R18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub base: SignedDuration,
    /// Largest delay before jitter.
    pub max: SignedDuration,
    /// Failed attempts after which the booking is parked.
    pub max_attempts: u32,
    /// Where the jitter comes from.
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    /// 30 s, doubling, capped at 1 h, parked after 8 attempts, deterministic jitter.
    fn default() -> Self {
        Self {
            base: SignedDuration::from_secs(30),
            max: SignedDuration::from_hours(1),
            max_attempts: 8,
            jitter: Jitter::Deterministic,
        }
    }
}

/// Source of the jitter added to a backoff delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// No jitter: the plain exponential schedule.
    None,
    /// Derived from the booking's match id and the attempt number, so replays plan the
    /// same instant while different bookings spread out.
    Deterministic,
    /// Supplied by the caller as a fraction of the delay in per mille (0–500).
    Fixed(u16),
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based). `seed` feeds
    /// [`Jitter::Deterministic`]; it is ignored by the other jitter kinds.
    pub fn delay(&self, attempt: u32, seed: u64) -> SignedDuration {
        let exponent = attempt.saturating_sub(1).min(30);
        let factor = 1_i32 << exponent;
        let plain = self
            .base
            .checked_mul(factor)
            .map_or(self.max, |d| d.min(self.max));
        let permille: i128 = match self.jitter {
            Jitter::None => 0,
            Jitter::Fixed(p) => i128::from(p.min(500)),
            Jitter::Deterministic => {
                let mixed = seed ^ u64::from(attempt).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                i128::from(mixed.rotate_left(17) % 501)
            }
        };
        // At most half of a delay capped at `max`, so it fits an i64 of milliseconds.
        let jitter_ms = i64::try_from(plain.as_millis() * permille / 1000).unwrap_or(0);
        plain + SignedDuration::from_millis(jitter_ms)
    }

    /// The whole schedule for one booking: the wait after each failed attempt before the
    /// booking is parked.
    pub fn schedule(&self, seed: u64) -> Vec<SignedDuration> {
        (1..self.max_attempts)
            .map(|attempt| self.delay(attempt, seed))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_schedule_doubles_and_caps() {
        let policy = RetryPolicy {
            base: SignedDuration::from_secs(30),
            max: SignedDuration::from_mins(5),
            max_attempts: 7,
            jitter: Jitter::None,
        };
        let secs: Vec<i64> = policy.schedule(0).iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 300, 300]);
    }

    #[test]
    fn jitter_is_bounded_and_deterministic() {
        let policy = RetryPolicy::default();
        for attempt in 1..20 {
            let a = policy.delay(attempt, 42);
            let plain = RetryPolicy {
                jitter: Jitter::None,
                ..policy
            }
            .delay(attempt, 42);
            assert_eq!(a, policy.delay(attempt, 42));
            assert!(a >= plain && a <= plain + plain / 2, "{a} vs {plain}");
        }
        let fixed = RetryPolicy {
            jitter: Jitter::Fixed(500),
            ..policy
        };
        assert_eq!(fixed.delay(1, 0), SignedDuration::from_secs(45));
    }
}
