//! A peer's limit shared by every data plane: one token bucket in the shared store
//! (Redis), from which the shard that owns the peer leases a few milliseconds'
//! worth of tokens at a time, so that a packet costs no round trip. What one lease
//! grants is spent by that shard alone, and dropped if unspent after
//! [`LEASE_LIFE_MS`], so that the data planes together never pass more than the
//! store's bucket gave out. Sans-IO: the shard asks [`SharedAllowance::wanted`]
//! what to lease, carries the request out, and reports the answer.
//!
//! When the store cannot be reached, the allowance falls back to a bucket of the
//! whole limit on this data plane alone, as the data-plane scope does: a limit is
//! a safeguard, and forwarding must not stop because the receipt store did.

use super::token_bucket::TokenBucket;

/// A lease is this many milliseconds of the limit.
pub const LEASE_SHARE_MS: u64 = 20;
/// Leased tokens unspent this long after their lease are dropped.
pub const LEASE_LIFE_MS: u64 = 200;
/// After a failed lease, the local fallback holds this long before the store is
/// asked again.
pub const STORE_RETRY_MS: u64 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedAllowance {
    limit_per_second: u64,
    tokens: u64,
    /// When the tokens of the last lease lapse.
    lapse_at_ms: u64,
    /// A lease is on its way: no second one until it is answered.
    leasing: bool,
    /// The store's bucket was short at the last lease: no new lease before this.
    dry_until_ms: u64,
    /// The store failed: the local fallback decides until this.
    fallback_until_ms: u64,
    fallback: TokenBucket,
    /// The largest packet refused for want of tokens since the last lease, so that
    /// the next lease is big enough for it.
    largest_refused: u64,
    /// Tokens spent since the last grant, and when that was: the demand the next
    /// lease is sized to, so that little lapses unspent.
    spent: u64,
    granted_at_ms: Option<u64>,
    /// Tokens the demand spends in [`LEASE_LIFE_MS`], as last measured.
    demand: Option<u64>,
}

impl SharedAllowance {
    pub fn new(limit_per_second: u64) -> SharedAllowance {
        assert!(
            limit_per_second > 0,
            "a limit of zero is no limit to configure"
        );
        SharedAllowance {
            limit_per_second,
            tokens: 0,
            lapse_at_ms: 0,
            leasing: false,
            dry_until_ms: 0,
            fallback_until_ms: 0,
            fallback: TokenBucket::new(limit_per_second, limit_per_second),
            largest_refused: 0,
            spent: 0,
            granted_at_ms: None,
            demand: None,
        }
    }

    pub fn limit_per_second(&self) -> u64 {
        self.limit_per_second
    }

    /// Tokens a lease asks for: what the demand spends in a lease's life, at
    /// most `LEASE_SHARE_MS` of the limit (all of it before the demand is known),
    /// at least one, and at least the largest packet refused since the last lease.
    pub fn lease_size(&self) -> u64 {
        let share = (self.limit_per_second.saturating_mul(LEASE_SHARE_MS) / 1_000).max(1);
        let sized = self.demand.map_or(share, |demand| demand.clamp(1, share));
        sized.max(self.largest_refused)
    }

    /// Whether a lease is on its way.
    pub fn leasing(&self) -> bool {
        self.leasing
    }

    fn spendable(&self, now_ms: u64) -> u64 {
        if now_ms < self.lapse_at_ms {
            self.tokens
        } else {
            0
        }
    }

    fn on_fallback(&self, now_ms: u64) -> bool {
        now_ms < self.fallback_until_ms
    }

    /// Whether `amount` tokens can be spent now.
    pub fn can_take(&mut self, now_ms: u64, amount: u64) -> bool {
        if self.on_fallback(now_ms) {
            return self.fallback.available(now_ms) >= amount;
        }
        let enough = self.spendable(now_ms) >= amount;
        if !enough {
            // A packet larger than the limit never passes (as with a bucket of one
            // second): it must not make leases take the whole bucket.
            let possible = amount.min(self.limit_per_second);
            self.largest_refused = self.largest_refused.max(possible);
        }
        enough
    }

    /// Spends `amount` tokens; the caller checked [`Self::can_take`] first.
    pub fn take(&mut self, now_ms: u64, amount: u64) {
        if self.on_fallback(now_ms) {
            let taken = self.fallback.try_take(now_ms, amount);
            debug_assert!(taken, "take() after can_take()");
            return;
        }
        debug_assert!(self.spendable(now_ms) >= amount, "take() after can_take()");
        self.tokens = self.spendable(now_ms).saturating_sub(amount);
        self.spent = self.spent.saturating_add(amount);
    }

    /// The tokens to lease now, if any: when what is left falls below half a
    /// lease, no lease is on its way, and the store was neither short nor failing
    /// a moment ago. Marks the lease as on its way.
    pub fn wanted(&mut self, now_ms: u64) -> Option<u64> {
        let size = self.lease_size();
        let low = self.spendable(now_ms) < size / 2 + 1;
        let quiet = now_ms >= self.dry_until_ms && !self.on_fallback(now_ms);
        if !low || !quiet || self.leasing {
            return None;
        }
        self.leasing = true;
        Some(size)
    }

    /// The store granted `granted` of the `asked` tokens.
    pub fn granted(&mut self, now_ms: u64, asked: u64, granted: u64) {
        self.leasing = false;
        if let Some(at) = self.granted_at_ms {
            let elapsed_ms = now_ms.saturating_sub(at).max(1);
            self.demand = Some(self.spent.saturating_mul(LEASE_LIFE_MS) / elapsed_ms);
        }
        self.spent = 0;
        self.granted_at_ms = Some(now_ms);
        self.tokens = self.spendable(now_ms).saturating_add(granted);
        self.lapse_at_ms = now_ms.saturating_add(LEASE_LIFE_MS);
        if granted >= self.largest_refused {
            self.largest_refused = 0;
        }
        if granted < asked {
            // The bucket is about empty: it refills a lease's worth in about this.
            self.dry_until_ms = now_ms.saturating_add(LEASE_SHARE_MS);
        }
    }

    /// The store did not answer: the local fallback decides for a while.
    pub fn failed(&mut self, now_ms: u64) {
        self.leasing = false;
        self.fallback_until_ms = now_ms.saturating_add(STORE_RETRY_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spends_what_was_leased_and_no_more() {
        let mut allowance = SharedAllowance::new(1_000);
        assert_eq!(allowance.lease_size(), 20);
        assert!(!allowance.can_take(0, 1), "nothing leased yet");
        assert_eq!(allowance.wanted(0), Some(20));
        assert_eq!(allowance.wanted(0), None, "one lease at a time");
        allowance.granted(1, 20, 20);
        for _ in 0..20 {
            assert!(allowance.can_take(2, 1));
            allowance.take(2, 1);
        }
        assert!(!allowance.can_take(2, 1), "the lease is spent");
    }

    #[test]
    fn asks_ahead_at_half_a_lease() {
        let mut allowance = SharedAllowance::new(1_000);
        assert_eq!(allowance.wanted(0), Some(20));
        allowance.granted(0, 20, 20);
        allowance.take(1, 9);
        assert_eq!(allowance.wanted(1), None, "11 left of 20");
        allowance.take(1, 1);
        assert_eq!(allowance.wanted(1), Some(20), "10 left: half a lease");
        allowance.granted(2, 20, 20);
        assert!(allowance.can_take(2, 30));
    }

    #[test]
    fn unspent_tokens_lapse() {
        let mut allowance = SharedAllowance::new(1_000);
        allowance.wanted(0);
        allowance.granted(0, 20, 20);
        assert!(allowance.can_take(LEASE_LIFE_MS - 1, 20));
        assert!(!allowance.can_take(LEASE_LIFE_MS, 1));
    }

    #[test]
    fn a_short_store_is_left_alone_for_a_lease_time() {
        let mut allowance = SharedAllowance::new(1_000);
        allowance.wanted(0);
        allowance.granted(0, 20, 3);
        allowance.take(0, 3);
        assert_eq!(allowance.wanted(1), None);
        assert_eq!(allowance.wanted(LEASE_SHARE_MS), Some(20));
    }

    #[test]
    fn a_big_packet_gets_a_lease_its_size() {
        let mut allowance = SharedAllowance::new(1_000);
        assert!(!allowance.can_take(0, 500));
        assert_eq!(allowance.wanted(0), Some(500));
        allowance.granted(0, 500, 500);
        assert!(allowance.can_take(0, 500));
        allowance.take(0, 500);
        assert_eq!(allowance.lease_size(), 20, "back to the usual size");
    }

    #[test]
    fn leases_follow_the_demand() {
        let mut allowance = SharedAllowance::new(1_000_000);
        assert_eq!(
            allowance.lease_size(),
            20_000,
            "the demand is not known yet"
        );
        allowance.wanted(0);
        allowance.granted(0, 20_000, 20_000);
        allowance.take(50, 500);
        assert_eq!(allowance.wanted(50), None, "19,500 left");
        allowance.take(100, 500);
        allowance.wanted(100);
        allowance.granted(100, 20_000, 20_000);
        // 1,000 spent in 100 ms: 2,000 in a lease's life.
        assert_eq!(allowance.lease_size(), 2_000);
    }

    #[test]
    fn a_packet_over_the_limit_leases_no_more_than_the_limit() {
        let mut allowance = SharedAllowance::new(1_000);
        assert!(!allowance.can_take(0, u64::MAX));
        assert_eq!(allowance.wanted(0), Some(1_000));
    }

    #[test]
    fn a_failed_store_falls_back_to_the_local_bucket() {
        let mut allowance = SharedAllowance::new(10);
        allowance.wanted(0);
        allowance.failed(0);
        assert_eq!(allowance.wanted(1), None, "not asked again at once");
        for _ in 0..10 {
            assert!(allowance.can_take(1, 1));
            allowance.take(1, 1);
        }
        assert!(
            !allowance.can_take(1, 1),
            "the local bucket holds the whole limit"
        );
        assert!(!allowance.can_take(STORE_RETRY_MS, 1), "back to leases");
        assert_eq!(allowance.wanted(STORE_RETRY_MS), Some(1));
    }
}
