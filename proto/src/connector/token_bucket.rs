//! Token buckets for per-peer limits: packets per second (T05) and amount per
//! second (T04). Tokens are kept in thousandths, so a refill of `r` per second is
//! exactly `r` thousandths per millisecond: nothing is lost between two takes, unlike
//! a bucket that floors its refill and resets its clock.

/// Thousandths per token.
const SCALE: u128 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    capacity_milli: u128,
    refill_milli_per_ms: u128,
    tokens_milli: u128,
    last_ms: Option<u64>,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens refilled at `refill_per_second`.
    pub fn new(capacity: u64, refill_per_second: u64) -> TokenBucket {
        assert!(
            capacity > 0 && refill_per_second > 0,
            "a limit of zero is no limit to configure"
        );
        let capacity_milli = u128::from(capacity) * SCALE;
        TokenBucket {
            capacity_milli,
            refill_milli_per_ms: u128::from(refill_per_second),
            tokens_milli: capacity_milli,
            last_ms: None,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let last_ms = *self.last_ms.get_or_insert(now_ms);
        // A clock that steps back refills nothing, and the bucket keeps its time.
        if now_ms > last_ms {
            let elapsed_ms = u128::from(now_ms - last_ms);
            let added = elapsed_ms.saturating_mul(self.refill_milli_per_ms);
            self.tokens_milli = self
                .tokens_milli
                .saturating_add(added)
                .min(self.capacity_milli);
            self.last_ms = Some(now_ms);
        }
    }

    /// Takes `amount` tokens if there are that many.
    pub fn try_take(&mut self, now_ms: u64, amount: u64) -> bool {
        self.refill(now_ms);
        let wanted = u128::from(amount) * SCALE;
        if wanted > self.tokens_milli {
            return false;
        }
        self.tokens_milli -= wanted;
        debug_assert!(self.tokens_milli <= self.capacity_milli);
        true
    }

    /// Whole tokens available at `now_ms`.
    pub fn available(&mut self, now_ms: u64) -> u64 {
        self.refill(now_ms);
        u64::try_from(self.tokens_milli / SCALE).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let mut bucket = TokenBucket::new(3, 3);
        assert!(bucket.try_take(1_000, 1));
        assert!(bucket.try_take(1_000, 1));
        assert!(bucket.try_take(1_000, 1));
        assert!(!bucket.try_take(1_000, 1));
        assert!(!bucket.try_take(1_300, 1), "0.9 of a token after 300 ms");
        assert!(bucket.try_take(1_334, 1), "1.002 tokens after 334 ms");
    }

    #[test]
    fn many_small_steps_equal_one_big_step() {
        let mut stepped = TokenBucket::new(1_000, 7);
        let mut jumped = stepped.clone();
        assert!(stepped.try_take(0, 1_000) && jumped.try_take(0, 1_000));
        for now in 1..=10_000u64 {
            stepped.refill(now);
        }
        jumped.refill(10_000);
        assert_eq!(stepped.available(10_000), 70);
        assert_eq!(stepped, jumped);
    }

    #[test]
    fn clock_going_back_is_ignored() {
        let mut bucket = TokenBucket::new(1, 1);
        assert!(bucket.try_take(5_000, 1));
        assert!(!bucket.try_take(4_000, 1));
        assert!(bucket.try_take(6_000, 1));
    }

    proptest::proptest! {
        #[test]
        fn never_more_than_capacity_plus_refill(capacity in 1u64..1_000, refill in 1u64..1_000, steps in proptest::collection::vec((0u64..200, 0u64..50), 1..100)) {
            let mut bucket = TokenBucket::new(capacity, refill);
            let (mut now, mut taken) = (0u64, 0u128);
            for (advance, amount) in steps {
                now += advance;
                if bucket.try_take(now, amount) {
                    taken += u128::from(amount);
                }
            }
            let allowed = u128::from(capacity) + u128::from(refill) * u128::from(now) / 1_000;
            proptest::prop_assert!(taken <= allowed, "took {} of at most {}", taken, allowed);
        }
    }
}
