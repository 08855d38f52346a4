//! The embedded receipt store: the rules of the Redis store, in process, for a
//! first run with no servers. One mutex for all shards: it is not the production
//! path.

use super::{
    Claim, CreditResult, IncomingPayment, JournalRecord, Opened, StoreAnswer, StoreOp,
    JOURNAL_WALLETS_PER_OP_MAX,
};
use crate::limits::{CONNECTIONS_MAX, RECORDS_MAX};
use riptide_proto::connector::token_bucket::TokenBucket;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
pub struct MemoryStore {
    connection_ttl_s: u64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Total and the instant it expires.
    connections: HashMap<String, (u64, Instant)>,
    payments: HashMap<String, IncomingPayment>,
    /// Counts not settled yet, which may still be taken back: the journal, by
    /// credit id.
    credits: HashMap<u64, JournalRecord>,
    /// What each wallet has received in all.
    wallets: HashMap<String, u64>,
    /// Incoming payments whose completed or expired event is still to go out.
    watched: std::collections::BTreeSet<String>,
    /// Shared limit buckets, by key, with the limit they were made for.
    buckets: HashMap<String, (u64, TokenBucket)>,
    /// Quotes by id: the record and its expiry (ms).
    quotes: HashMap<String, (String, u64)>,
    outgoing: HashMap<String, Outgoing>,
    /// Open outgoing payments and the lease listed for each.
    open_outgoing: HashMap<String, u64>,
}

/// An outgoing payment, as the Redis store keeps it.
#[derive(Debug)]
struct Outgoing {
    record: String,
    owner: String,
    lease_until_ms: u64,
    open: bool,
}

/// Shared limit buckets kept at most: one or two per peer with shared limits.
const BUCKETS_MAX: usize = 65_536;

impl MemoryStore {
    pub fn new(connection_ttl_s: u64) -> MemoryStore {
        MemoryStore {
            connection_ttl_s,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn execute(&self, op: StoreOp) -> StoreAnswer {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match op {
            credit @ StoreOp::Credit { .. } => inner.count_op(credit, self.connection_ttl_s),
            StoreOp::Settle {
                connection,
                credit_id,
                ..
            } => {
                inner.take_credit(&connection, credit_id);
                StoreAnswer::Settled
            }
            StoreOp::Unsettled {
                wallets,
                before_ms,
                limit,
            } => StoreAnswer::Unsettled(inner.unsettled(&wallets, before_ms, limit)),
            StoreOp::Undo {
                connection,
                wallet,
                amount,
                payment,
                credit_id,
            } => StoreAnswer::Undone(inner.take_back(
                &connection,
                &wallet,
                amount,
                payment.as_deref(),
                credit_id,
            )),
            StoreOp::WalletTotals { wallets } => StoreAnswer::WalletTotals(
                wallets
                    .iter()
                    .map(|w| inner.wallets.get(w).copied().unwrap_or(0))
                    .collect(),
            ),
            StoreOp::GetPayment { id } => StoreAnswer::Payment(inner.payments.get(&id).cloned()),
            StoreOp::CreatePayment { payment, watch } => {
                if watch {
                    inner.watched.insert(payment.id.clone());
                }
                inner.payments.entry(payment.id.clone()).or_insert(payment);
                StoreAnswer::Created
            }
            StoreOp::WatchedPayments { limit } => {
                StoreAnswer::Watched(inner.watched.iter().take(limit).cloned().collect())
            }
            StoreOp::Unwatch { id } => StoreAnswer::Unwatched(inner.watched.remove(&id)),
            StoreOp::Lease {
                key,
                limit_per_second,
                tokens,
            } => StoreAnswer::Leased(inner.lease(key, limit_per_second, tokens)),
            outgoing => inner.outgoing_op(outgoing),
        }
    }
}

impl Inner {
    /// Quotes and outgoing payments, by the rules of the Redis scripts. Kept
    /// under [`RECORDS_MAX`] each: the oldest quote, or closed payment, goes.
    fn outgoing_op(&mut self, op: StoreOp) -> StoreAnswer {
        match op {
            StoreOp::PutQuote {
                id,
                record,
                expires_at_ms,
            } => {
                if self.quotes.len() >= RECORDS_MAX {
                    let oldest = self.quotes.iter().min_by_key(|(_, q)| q.1);
                    if let Some(key) = oldest.map(|(key, _)| key.clone()) {
                        self.quotes.remove(&key);
                    }
                }
                self.quotes.insert(id, (record, expires_at_ms));
                StoreAnswer::Created
            }
            StoreOp::GetQuote { id } => {
                StoreAnswer::Quote(self.quotes.get(&id).map(|(record, _)| record.clone()))
            }
            StoreOp::OpenOutgoing {
                id,
                record,
                owner,
                lease_until_ms,
                now_ms,
            } => self.open(id, record, owner, lease_until_ms, now_ms),
            StoreOp::GetOutgoing { id } => {
                StoreAnswer::Outgoing(self.outgoing.get(&id).map(|o| o.record.clone()))
            }
            StoreOp::RenewOutgoing {
                id,
                owner,
                lease_until_ms,
                now_ms: _,
                record,
                close,
            } => StoreAnswer::Renewed(self.renew(&id, &owner, lease_until_ms, record, close)),
            StoreOp::ClaimOutgoing {
                id,
                owner,
                now_ms,
                lease_until_ms,
            } => StoreAnswer::Claimed(self.claim(&id, owner, now_ms, lease_until_ms)),
            StoreOp::LapsedOutgoing { before_ms, limit } => {
                let mut lapsed: Vec<(u64, String)> = self
                    .open_outgoing
                    .iter()
                    .filter(|(_, until)| **until <= before_ms)
                    .map(|(id, until)| (*until, id.clone()))
                    .collect();
                lapsed.sort_unstable();
                StoreAnswer::Lapsed(lapsed.into_iter().take(limit).map(|(_, id)| id).collect())
            }
            StoreOp::ListOutgoing { id, until_ms } => {
                match until_ms {
                    Some(until) => self.open_outgoing.insert(id, until),
                    None => self.open_outgoing.remove(&id),
                };
                StoreAnswer::Listed
            }
            other => unreachable!("outgoing_op() is given {other:?}"),
        }
    }

    fn renew(
        &mut self,
        id: &str,
        owner: &str,
        lease_until_ms: u64,
        record: Option<String>,
        close: bool,
    ) -> bool {
        let Some(payment) = self.outgoing.get_mut(id).filter(|p| p.owner == owner) else {
            return false;
        };
        if let Some(record) = record {
            payment.record = record;
        }
        payment.open &= !close;
        payment.lease_until_ms = if close { 0 } else { lease_until_ms };
        true
    }

    fn claim(&mut self, id: &str, owner: String, now_ms: u64, lease_until_ms: u64) -> Claim {
        match self.outgoing.get_mut(id) {
            None => Claim::Gone,
            Some(payment) if !payment.open => Claim::Closed,
            Some(payment) if payment.lease_until_ms > now_ms => Claim::Held,
            Some(payment) => {
                payment.owner = owner;
                payment.lease_until_ms = lease_until_ms;
                Claim::Claimed(payment.record.clone())
            }
        }
    }

    fn open(
        &mut self,
        id: String,
        record: String,
        owner: String,
        lease_until_ms: u64,
        now_ms: u64,
    ) -> StoreAnswer {
        if let Some(payment) = self.outgoing.get(&id) {
            return StoreAnswer::Opened(Opened::Existing(payment.record.clone()));
        }
        match self.quotes.remove(&id) {
            Some((_, expires_at_ms)) if expires_at_ms > now_ms => {}
            _ => return StoreAnswer::Opened(Opened::QuoteGone),
        }
        if self.outgoing.len() >= RECORDS_MAX {
            let closed = self.outgoing.iter().find(|(_, p)| !p.open);
            if let Some(key) = closed.map(|(key, _)| key.clone()) {
                self.outgoing.remove(&key);
            }
        }
        self.open_outgoing.insert(id.clone(), lease_until_ms);
        let payment = Outgoing {
            record,
            owner,
            lease_until_ms,
            open: true,
        };
        self.outgoing.insert(id, payment);
        StoreAnswer::Opened(Opened::Fresh)
    }
}

impl Inner {
    /// A [`StoreOp::Credit`], counted and journaled.
    fn count_op(&mut self, op: StoreOp, ttl_s: u64) -> StoreAnswer {
        let StoreOp::Credit {
            connection,
            wallet,
            amount,
            payment,
            now_ms,
            credit_id,
            post_ids,
            settle_after_ms,
        } = op
        else {
            unreachable!("count_op() is given credits only");
        };
        let record = JournalRecord {
            connection,
            wallet,
            credit_id,
            amount,
            payment,
            post_ids,
            settle_after_ms,
        };
        StoreAnswer::Credit(self.count(record, now_ms, ttl_s))
    }

    /// Takes up to `tokens` from the bucket `key`, made full when missing.
    fn lease(&mut self, key: String, limit_per_second: u64, tokens: u64) -> u64 {
        if limit_per_second == 0 {
            return 0;
        }
        let now_ms = crate::clock::unix_now_ms();
        if self.buckets.len() >= BUCKETS_MAX && !self.buckets.contains_key(&key) {
            self.buckets.clear();
        }
        let (limit, bucket) = self.buckets.entry(key).or_insert_with(|| {
            (
                limit_per_second,
                TokenBucket::new(limit_per_second, limit_per_second),
            )
        });
        if *limit != limit_per_second {
            *limit = limit_per_second;
            *bucket = TokenBucket::new(limit_per_second, limit_per_second);
        }
        let granted = tokens.min(bucket.available(now_ms));
        let taken = bucket.try_take(now_ms, granted);
        debug_assert!(taken);
        granted
    }

    /// Takes a counted credit back; whether it was counted and not settled.
    fn take_back(
        &mut self,
        connection: &str,
        wallet: &str,
        amount: u64,
        payment: Option<&str>,
        credit_id: u64,
    ) -> bool {
        let counted = self.take_credit(connection, credit_id);
        if counted {
            self.undo(connection, amount, payment);
            if let Some(total) = self.wallets.get_mut(wallet) {
                *total = total.saturating_sub(amount);
            }
        }
        counted
    }

    /// Counts a credit on its connection (and payment), and journals it.
    fn count(&mut self, record: JournalRecord, now_ms: u64, ttl_s: u64) -> CreditResult {
        let result = self.credit(
            &record.connection,
            record.amount,
            record.payment.as_deref(),
            now_ms,
            ttl_s,
        );
        if !matches!(result, CreditResult::Credited { .. }) {
            return result;
        }
        if self.credits.len() >= CONNECTIONS_MAX {
            // In process the ledger lives and dies with this store, so an unsettled
            // count is one whose flow is still running; this many means settles
            // are being lost: keep the newest.
            tracing::error!("embedded journal full; forgetting unsettled counts");
            self.credits.clear();
        }
        match self.wallets.get_mut(&record.wallet) {
            Some(total) => *total += record.amount,
            None => {
                self.wallets.insert(record.wallet.clone(), record.amount);
            }
        }
        self.credits.insert(record.credit_id, record);
        result
    }

    /// Journal entries due for the sweep, oldest first.
    /// The due counts of `wallets`, as Redis keeps one journal per wallet.
    fn unsettled(&self, wallets: &[String], before_ms: u64, limit: usize) -> Vec<JournalRecord> {
        let wallets = &wallets[..wallets.len().min(JOURNAL_WALLETS_PER_OP_MAX)];
        let mut due: Vec<JournalRecord> = self
            .credits
            .values()
            .filter(|r| r.settle_after_ms <= before_ms && wallets.contains(&r.wallet))
            .cloned()
            .collect();
        due.sort_by_key(|r| r.settle_after_ms);
        due.truncate(limit);
        due
    }

    /// Removes a count from the journal; whether it was there.
    fn take_credit(&mut self, connection: &str, credit_id: u64) -> bool {
        // Credit ids are unique per shard; the connection tells apart the rare
        // equal ids of two shards.
        match self.credits.get(&credit_id) {
            Some(record) if record.connection == connection => {
                self.credits.remove(&credit_id);
                true
            }
            _ => false,
        }
    }

    fn connection_total(&mut self, connection: &str) -> u64 {
        match self.connections.get(connection) {
            Some((total, expires)) if *expires > Instant::now() => *total,
            _ => 0,
        }
    }

    fn credit(
        &mut self,
        connection: &str,
        amount: u64,
        payment: Option<&str>,
        now_ms: u64,
        ttl_s: u64,
    ) -> CreditResult {
        let connection_total = self.connection_total(connection);
        let mut remaining = None;
        if let Some(id) = payment {
            let Some(payment) = self.payments.get_mut(id) else {
                return CreditResult::UnknownPayment;
            };
            if now_ms >= payment.expires_at_ms {
                return CreditResult::Expired;
            }
            if let Some(cap) = payment.incoming_amount {
                let left = cap.saturating_sub(payment.received);
                if left == 0 {
                    return CreditResult::Completed;
                }
                if amount > left {
                    return CreditResult::Exceeds {
                        connection_total,
                        remaining: left,
                    };
                }
                remaining = Some(left - amount);
            }
            payment.received = payment.received.saturating_add(amount);
        }
        if self.connections.len() >= CONNECTIONS_MAX && !self.connections.contains_key(connection) {
            self.evict_one();
        }
        let total = connection_total.saturating_add(amount);
        let expires = Instant::now() + std::time::Duration::from_secs(ttl_s);
        self.connections
            .insert(connection.to_owned(), (total, expires));
        CreditResult::Credited {
            connection_total: total,
            remaining,
        }
    }

    fn undo(&mut self, connection: &str, amount: u64, payment: Option<&str>) {
        if let Some((total, _)) = self.connections.get_mut(connection) {
            *total = total.saturating_sub(amount);
        }
        if let Some(payment) = payment.and_then(|id| self.payments.get_mut(id)) {
            payment.received = payment.received.saturating_sub(amount);
        }
    }

    /// Makes room once the map is full: forgets every expired total, and if that
    /// frees too little, an eighth of the rest (arbitrary ones), so the O(n) sweep
    /// runs once per many inserts.
    fn evict_one(&mut self) {
        let now = Instant::now();
        self.connections.retain(|_, (_, expires)| *expires > now);
        if self.connections.len() + CONNECTIONS_MAX / 8 > CONNECTIONS_MAX {
            let victims: Vec<String> = self
                .connections
                .keys()
                .take(CONNECTIONS_MAX / 8)
                .cloned()
                .collect();
            for key in victims {
                self.connections.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(cap: Option<u64>) -> StoreOp {
        StoreOp::CreatePayment {
            payment: IncomingPayment {
                id: "p1".into(),
                wallet: "shop".into(),
                incoming_amount: cap,
                expires_at_ms: 1_000,
                received: 0,
            },
            watch: true,
        }
    }

    fn credit(store: &MemoryStore, connection: &str, amount: u64, now_ms: u64) -> CreditResult {
        let op = StoreOp::Credit {
            connection: connection.into(),
            wallet: "shop".into(),
            amount,
            payment: Some("p1".into()),
            now_ms,
            credit_id: amount,
            post_ids: vec![1],
            settle_after_ms: now_ms,
        };
        match store.execute(op) {
            StoreAnswer::Credit(result) => result,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn payment_never_goes_past_its_amount() {
        let store = MemoryStore::new(60);
        store.execute(payment(Some(100)));
        assert_eq!(
            credit(&store, "a", 60, 0),
            CreditResult::Credited {
                connection_total: 60,
                remaining: Some(40)
            }
        );
        assert_eq!(
            credit(&store, "b", 50, 0),
            CreditResult::Exceeds {
                connection_total: 0,
                remaining: 40
            }
        );
        assert_eq!(
            credit(&store, "b", 40, 0),
            CreditResult::Credited {
                connection_total: 40,
                remaining: Some(0)
            }
        );
        assert_eq!(credit(&store, "a", 1, 0), CreditResult::Completed);
    }

    #[test]
    fn undo_takes_back_both_totals_and_expiry_closes() {
        let store = MemoryStore::new(60);
        store.execute(payment(None));
        credit(&store, "a", 70, 0);
        let undo = StoreOp::Undo {
            connection: "a".into(),
            wallet: "shop".into(),
            amount: 70,
            payment: Some("p1".into()),
            credit_id: 70,
        };
        assert_eq!(store.execute(undo.clone()), StoreAnswer::Undone(true));
        assert_eq!(store.execute(undo), StoreAnswer::Undone(false), "only once");
        let StoreAnswer::Payment(Some(found)) =
            store.execute(StoreOp::GetPayment { id: "p1".into() })
        else {
            panic!("payment exists");
        };
        assert_eq!(found.received, 0);
        assert_eq!(credit(&store, "a", 1, 1_000), CreditResult::Expired);
        let unknown = StoreOp::Credit {
            connection: "a".into(),
            wallet: "shop".into(),
            amount: 1,
            payment: Some("nope".into()),
            now_ms: 0,
            credit_id: 1,
            post_ids: vec![1],
            settle_after_ms: 0,
        };
        assert_eq!(
            store.execute(unknown),
            StoreAnswer::Credit(CreditResult::UnknownPayment)
        );
    }

    #[test]
    fn a_watched_payment_is_taken_off_once() {
        let store = MemoryStore::new(60);
        store.execute(payment(Some(10)));
        assert_eq!(
            store.execute(StoreOp::WatchedPayments { limit: 10 }),
            StoreAnswer::Watched(vec!["p1".into()])
        );
        let unwatch = || StoreOp::Unwatch { id: "p1".into() };
        assert_eq!(store.execute(unwatch()), StoreAnswer::Unwatched(true));
        assert_eq!(store.execute(unwatch()), StoreAnswer::Unwatched(false));
        assert_eq!(
            store.execute(StoreOp::WatchedPayments { limit: 10 }),
            StoreAnswer::Watched(Vec::new())
        );
    }
}
