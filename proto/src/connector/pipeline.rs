//! The packet pipeline, sans-IO: a Prepare and `now` in, a [`Decision`] out. The IO
//! layer carries out the decision (ledger hold, HTTP forward) and brings the peer's
//! reply back to [`judge_reply`].
//!
//! Order of checks (each with its code): ILDCP `peer.config` answered; other `peer.*`
//! F02; max packet amount F08; rate limit T05; throughput limit T04; expiry R02;
//! route F02; exchange rate T00 / R01; then the ledger hold (T04) in the IO layer.

use super::lease::SharedAllowance;
use super::reject::RejectReason;
use super::snapshot::{AssetIndex, PeerIndex, RouteTarget, Snapshot};
use super::token_bucket::TokenBucket;
use crate::packet::ildcp::{is_ildcp_request, IldcpResponse};
use crate::packet::{fulfillment_matches, Address, Fulfill, Packet, Prepare, Timestamp};
use crate::rates::RateError;

/// Timing rules for outgoing packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineOptions {
    /// Time kept back from the incoming expiry for the reply to travel back.
    pub expiry_window_ms_min: u64,
    /// Longest time a forwarded packet may be held downstream.
    pub hold_ms_max: u64,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            expiry_window_ms_min: 1_000,
            hold_ms_max: 30_000,
        }
    }
}

/// One ledger movement of a packet's hold. A same-asset packet has one leg; a
/// cross-asset packet has two (source peer to its asset's liquidity, destination
/// asset's liquidity to the destination peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Leg {
    pub debit_account_id: u128,
    pub credit_account_id: u128,
    pub amount: u64,
    pub ledger: u32,
}

/// What to do with a Prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer with this Fulfill at once (ILDCP).
    Fulfill(Vec<u8>),
    /// Answer with a Reject made by Riptide.
    Reject(RejectReason),
    /// Hold the legs, then send the rewritten Prepare to `to`.
    Forward(Forward),
    /// The destination is Riptide's own address space (the STREAM receiver).
    Local,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The ledger account of whoever sent the packet (a peer or a wallet): bursts
    /// to the next hop carry one sender's packets only, so that one sender's slow
    /// packet never holds back another's replies.
    pub sender_account: u128,
    pub to: PeerIndex,
    pub amount_outgoing: u64,
    pub expires_at_outgoing: Timestamp,
    /// The Prepare's own expiry and condition, read in the one parse of it, for
    /// the forward's reply deadline and the Fulfill's check.
    pub expires_at_incoming: Timestamp,
    pub execution_condition: [u8; 32],
    /// Ledger legs to hold as one linked chain; empty for a zero amount.
    pub legs: Vec<Leg>,
}

/// The rate and throughput buckets of every peer, owned by one shard.
#[derive(Debug, Default)]
pub struct PeerLimiters {
    version: Option<u64>,
    by_peer: Vec<PeerLimiter>,
}

/// What a limit is configured as: its value per second, and whether every data
/// plane shares it. A limiter whose settings did not change keeps its state.
type LimitSettings = (u64, bool);

#[derive(Debug, Default)]
struct PeerLimiter {
    id: String,
    rate_limit: Option<(LimitSettings, Limiter)>,
    throughput_limit: Option<(LimitSettings, Limiter)>,
}

/// One limit of a peer: a bucket on this data plane, or an allowance leased from
/// the bucket every data plane shares.
#[derive(Debug)]
enum Limiter {
    Local(TokenBucket),
    Shared(SharedAllowance),
}

impl Limiter {
    fn new((limit, shared): LimitSettings) -> Limiter {
        if shared {
            Limiter::Shared(SharedAllowance::new(limit))
        } else {
            // One second's worth of burst: the capacity equals the per-second refill.
            Limiter::Local(TokenBucket::new(limit, limit))
        }
    }

    fn can_take(&mut self, now_ms: u64, amount: u64) -> bool {
        match self {
            Limiter::Local(bucket) => bucket.available(now_ms) >= amount,
            Limiter::Shared(allowance) => allowance.can_take(now_ms, amount),
        }
    }

    fn take(&mut self, now_ms: u64, amount: u64) {
        match self {
            Limiter::Local(bucket) => {
                let taken = bucket.try_take(now_ms, amount);
                debug_assert!(taken, "take() after can_take()");
            }
            Limiter::Shared(allowance) => allowance.take(now_ms, amount),
        }
    }
}

/// Which of a peer's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Packets per second (T05).
    Rate,
    /// Amount per second (T04).
    Throughput,
}

/// Tokens to lease from a peer's shared bucket: the shard asks the store, then
/// reports with [`PeerLimiters::lease_answered`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest {
    pub peer: PeerIndex,
    pub peer_id: String,
    pub kind: LimitKind,
    /// The shared bucket's capacity and refill per second.
    pub limit_per_second: u64,
    pub tokens: u64,
}

impl PeerLimiters {
    /// Follows a new snapshot. A peer whose limits did not change keeps its buckets,
    /// so a state push does not hand every peer a fresh burst.
    pub fn sync(&mut self, snapshot: &Snapshot) {
        if self.version == Some(snapshot.version) && self.by_peer.len() == snapshot.peers.len() {
            return;
        }
        let mut old: Vec<PeerLimiter> = std::mem::take(&mut self.by_peer);
        self.by_peer = snapshot
            .peers
            .iter()
            .map(|peer| {
                let previous = old
                    .iter()
                    .position(|l| l.id == peer.id)
                    .map(|i| old.swap_remove(i));
                let previous = previous.unwrap_or_default();
                let settings = |limit: Option<u64>| limit.map(|l| (l, peer.limits_shared));
                PeerLimiter {
                    id: peer.id.clone(),
                    rate_limit: keep_or_new(
                        previous.rate_limit,
                        settings(peer.rate_limit_packets_per_second),
                    ),
                    throughput_limit: keep_or_new(
                        previous.throughput_limit,
                        settings(peer.throughput_limit_per_second),
                    ),
                }
            })
            .collect();
        self.version = Some(snapshot.version);
    }

    /// Spends one packet and `amount` from `from`'s limits, both or neither.
    fn check(&mut self, from: PeerIndex, amount: u64, now_ms: u64) -> Result<(), RejectReason> {
        let Some(limiter) = self.by_peer.get_mut(from as usize) else {
            return Ok(());
        };
        if let Some((_, rate)) = limiter.rate_limit.as_mut() {
            if !rate.can_take(now_ms, 1) {
                return Err(RejectReason::RateLimited);
            }
        }
        if let Some((_, throughput)) = limiter.throughput_limit.as_mut() {
            if amount > 0 && !throughput.can_take(now_ms, amount) {
                return Err(RejectReason::ThroughputLimited);
            }
        }
        if let Some((_, rate)) = limiter.rate_limit.as_mut() {
            rate.take(now_ms, 1);
        }
        if let Some((_, throughput)) = limiter.throughput_limit.as_mut() {
            if amount > 0 {
                throughput.take(now_ms, amount);
            }
        }
        Ok(())
    }

    /// The leases `from`'s shared limits want now (each marked as on its way).
    pub fn lease_requests(&mut self, from: PeerIndex, now_ms: u64) -> Vec<LeaseRequest> {
        let Some(limiter) = self.by_peer.get_mut(from as usize) else {
            return Vec::new();
        };
        let mut requests = Vec::new();
        let limits = [
            (LimitKind::Rate, limiter.rate_limit.as_mut()),
            (LimitKind::Throughput, limiter.throughput_limit.as_mut()),
        ];
        for (kind, limit) in limits {
            if let Some((_, Limiter::Shared(allowance))) = limit {
                if let Some(tokens) = allowance.wanted(now_ms) {
                    requests.push(LeaseRequest {
                        peer: from,
                        peer_id: limiter.id.clone(),
                        kind,
                        limit_per_second: allowance.limit_per_second(),
                        tokens,
                    });
                }
            }
        }
        requests
    }

    /// Whether one of `from`'s shared limits waits for a lease: a packet refused
    /// for want of tokens may wait for it rather than be refused.
    pub fn leasing(&self, from: PeerIndex) -> bool {
        let Some(limiter) = self.by_peer.get(from as usize) else {
            return false;
        };
        [&limiter.rate_limit, &limiter.throughput_limit]
            .into_iter()
            .flatten()
            .any(|(_, limit)| matches!(limit, Limiter::Shared(allowance) if allowance.leasing()))
    }

    /// What the store answered to `request`: the tokens it granted, or `None` when
    /// it could not be asked. A request for a peer that left, or whose limit
    /// changed, since, is dropped (a changed limit is a new allowance, with no
    /// lease on its way).
    pub fn lease_answered(&mut self, request: &LeaseRequest, granted: Option<u64>, now_ms: u64) {
        // By id: a state push may have moved the peer since the request; its
        // allowance must hear the answer wherever it now is.
        let Some(limiter) = self.by_peer.iter_mut().find(|l| l.id == request.peer_id) else {
            return;
        };
        let limit = match request.kind {
            LimitKind::Rate => limiter.rate_limit.as_mut(),
            LimitKind::Throughput => limiter.throughput_limit.as_mut(),
        };
        let Some((_, Limiter::Shared(allowance))) = limit else {
            return;
        };
        if allowance.limit_per_second() != request.limit_per_second {
            return;
        }
        match granted {
            Some(granted) => allowance.granted(now_ms, request.tokens, granted),
            None => allowance.failed(now_ms),
        }
    }
}

fn keep_or_new(
    previous: Option<(LimitSettings, Limiter)>,
    settings: Option<LimitSettings>,
) -> Option<(LimitSettings, Limiter)> {
    let settings = settings?;
    match previous {
        Some((old, limiter)) if old == settings => Some((old, limiter)),
        _ => Some((settings, Limiter::new(settings))),
    }
}

/// Decides what happens to `prepare`, which arrived from peer `from`.
pub fn decide(
    snapshot: &Snapshot,
    limiters: &mut PeerLimiters,
    options: &PipelineOptions,
    from: PeerIndex,
    prepare: &Prepare<'_>,
    now_ms: u64,
) -> Decision {
    match decide_inner(snapshot, limiters, options, from, prepare, now_ms) {
        Ok(decision) => decision,
        Err(reason) => Decision::Reject(reason),
    }
}

fn decide_inner(
    snapshot: &Snapshot,
    limiters: &mut PeerLimiters,
    options: &PipelineOptions,
    from: PeerIndex,
    prepare: &Prepare<'_>,
    now_ms: u64,
) -> Result<Decision, RejectReason> {
    let peer = snapshot
        .peers
        .get(from as usize)
        .ok_or(RejectReason::Internal("unknown peer".into()))?;
    if is_ildcp_request(prepare) {
        return answer_ildcp(snapshot, from);
    }
    if prepare.destination.scheme() == "peer" {
        return Err(RejectReason::PeerProtocolUnhandled);
    }
    if let Some(maximum) = peer.max_packet_amount {
        if prepare.amount > maximum {
            return Err(RejectReason::AmountTooLarge {
                received: prepare.amount,
                maximum,
            });
        }
    }
    limiters.check(from, prepare.amount, now_ms)?;
    let expires_at_outgoing = outgoing_expiry(options, prepare.expires_at, now_ms)?;
    let to = match route(snapshot, from, prepare)? {
        RouteTarget::Local => return Ok(Decision::Local),
        RouteTarget::Peer(to) => to,
    };
    let amount_outgoing = convert(snapshot, from, to, prepare.amount)?;
    let legs = hold_legs(snapshot, from, to, prepare.amount, amount_outgoing);
    Ok(forward_to(
        prepare,
        (peer.account_id, to),
        amount_outgoing,
        expires_at_outgoing,
        legs,
    ))
}

/// The forward of `prepare` to peer `to`, with what a later step reads of it.
fn forward_to(
    prepare: &Prepare<'_>,
    (sender_account, to): (u128, PeerIndex),
    amount_outgoing: u64,
    expires_at_outgoing: Timestamp,
    legs: Vec<Leg>,
) -> Decision {
    Decision::Forward(Forward {
        sender_account,
        to,
        amount_outgoing,
        expires_at_outgoing,
        expires_at_incoming: prepare.expires_at,
        execution_condition: *prepare.execution_condition,
        legs,
    })
}

/// Decides what happens to a Prepare made inside this process (a quote's probe or
/// an outgoing payment's packet) and paid from the account `source` (id, asset).
/// The same checks as for a peer's packet, less the peer's own limits; with
/// `hold` false (unfulfillable probes) nothing is held on this side, as Rafiki does.
pub fn decide_from_account(
    snapshot: &Snapshot,
    options: &PipelineOptions,
    source: (u128, AssetIndex),
    prepare: &Prepare<'_>,
    now_ms: u64,
    hold: bool,
) -> Decision {
    let decide = || -> Result<Decision, RejectReason> {
        if prepare.destination.scheme() == "peer" {
            return Err(RejectReason::PeerProtocolUnhandled);
        }
        let expires_at_outgoing = outgoing_expiry(options, prepare.expires_at, now_ms)?;
        let to =
            match snapshot
                .routes
                .lookup(prepare.destination.as_str(), pick_of(prepare), |_| false)
            {
                Some(RouteTarget::Peer(to)) => *to,
                Some(RouteTarget::Local) => return Ok(Decision::Local),
                None => return Err(RejectReason::NoRoute),
            };
        let peer = snapshot.peer(to);
        let amount_outgoing = convert_between(snapshot, source.1, peer.asset, prepare.amount)?;
        let legs = if hold {
            legs_between(
                snapshot,
                source,
                (peer.account_id, peer.asset),
                prepare.amount,
                amount_outgoing,
            )
        } else {
            Vec::new()
        };
        Ok(forward_to(
            prepare,
            (source.0, to),
            amount_outgoing,
            expires_at_outgoing,
            legs,
        ))
    };
    decide().unwrap_or_else(Decision::Reject)
}

fn answer_ildcp(snapshot: &Snapshot, from: PeerIndex) -> Result<Decision, RejectReason> {
    let peer = snapshot.peer(from);
    let asset = snapshot.asset(peer.asset);
    let client_address = Address::parse_str(&peer.ildcp_address)
        .map_err(|_| RejectReason::Internal("peer address invalid".into()))?;
    let response = IldcpResponse {
        client_address,
        asset_scale: asset.scale,
        asset_code: &asset.code,
    };
    Ok(Decision::Fulfill(response.to_fulfill()))
}

/// `min(incoming - window, now + hold)`, refused when less than the window remains.
pub fn outgoing_expiry(
    options: &PipelineOptions,
    expires_at_incoming: Timestamp,
    now_ms: u64,
) -> Result<Timestamp, RejectReason> {
    let incoming_ms = expires_at_incoming.unix_ms();
    let reduced_ms = incoming_ms.saturating_sub(options.expiry_window_ms_min);
    let outgoing_ms = reduced_ms.min(now_ms.saturating_add(options.hold_ms_max));
    if incoming_ms <= now_ms || outgoing_ms < now_ms.saturating_add(options.expiry_window_ms_min) {
        return Err(RejectReason::InsufficientTimeout);
    }
    Ok(Timestamp::from_unix_ms_saturating(outgoing_ms))
}

/// The next hop: never the sender, and among peers sharing a prefix the one the
/// packet's condition picks (random per payment, the same for a retried packet).
/// When the longest prefix leads back to the sender, a shorter one is tried, as in
/// Rafiki, but never our own address: a packet for a peer's address space that
/// came from that peer is not ours to receive.
fn route(
    snapshot: &Snapshot,
    from: PeerIndex,
    prepare: &Prepare<'_>,
) -> Result<RouteTarget, RejectReason> {
    let destination = prepare.destination.as_str();
    let pick = pick_of(prepare);
    match snapshot.routes.lookup(destination, pick, |_| false) {
        Some(RouteTarget::Peer(to)) if *to == from => {
            let to_sender = |target: &RouteTarget| *target == RouteTarget::Peer(from);
            match snapshot.routes.lookup(destination, pick, to_sender) {
                Some(RouteTarget::Peer(to)) => Ok(RouteTarget::Peer(*to)),
                _ => Err(RejectReason::NoRoute),
            }
        }
        Some(target) => Ok(*target),
        None => Err(RejectReason::NoRoute),
    }
}

/// Eight bytes of the execution condition: a hash, so random per payment.
fn pick_of(prepare: &Prepare<'_>) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&prepare.execution_condition[..8]);
    u64::from_be_bytes(bytes)
}

fn convert(
    snapshot: &Snapshot,
    from: PeerIndex,
    to: PeerIndex,
    amount: u64,
) -> Result<u64, RejectReason> {
    convert_between(
        snapshot,
        snapshot.peer(from).asset,
        snapshot.peer(to).asset,
        amount,
    )
}

/// Converts `amount` of `source` into `destination` (exact, rounded down); an
/// amount that converts to zero is refused (R01), as it would deliver nothing.
pub fn convert_between(
    snapshot: &Snapshot,
    source: AssetIndex,
    destination: AssetIndex,
    amount: u64,
) -> Result<u64, RejectReason> {
    if amount == 0 {
        return Ok(0);
    }
    let converted = snapshot
        .rates
        .convert(
            amount,
            snapshot.asset_ref(source),
            snapshot.asset_ref(destination),
        )
        .map_err(|e| match e {
            RateError::MissingRate(code) if snapshot.rates_awaited => {
                RejectReason::RateUnavailable(code)
            }
            RateError::MissingRate(code) => RejectReason::RateMissing(code),
            _ => RejectReason::ConversionOverflow,
        })?;
    if converted == 0 {
        return Err(RejectReason::AmountConvertsToZero);
    }
    Ok(converted)
}

fn hold_legs(
    snapshot: &Snapshot,
    from: PeerIndex,
    to: PeerIndex,
    amount_in: u64,
    amount_out: u64,
) -> Vec<Leg> {
    let (source, destination) = (snapshot.peer(from), snapshot.peer(to));
    legs_between(
        snapshot,
        (source.account_id, source.asset),
        (destination.account_id, destination.asset),
        amount_in,
        amount_out,
    )
}

/// The legs that move `amount_in` out of `debit` and `amount_out` into `credit`,
/// each given as (account id, asset): one leg within an asset, two through the
/// assets' liquidity accounts across assets; none for a zero amount.
pub fn legs_between(
    snapshot: &Snapshot,
    debit: (u128, AssetIndex),
    credit: (u128, AssetIndex),
    amount_in: u64,
    amount_out: u64,
) -> Vec<Leg> {
    if amount_in == 0 {
        return Vec::new();
    }
    let (source_asset, destination_asset) = (snapshot.asset(debit.1), snapshot.asset(credit.1));
    if debit.1 == credit.1 {
        debug_assert_eq!(amount_in, amount_out);
        return vec![Leg {
            debit_account_id: debit.0,
            credit_account_id: credit.0,
            amount: amount_in,
            ledger: source_asset.ledger,
        }];
    }
    vec![
        Leg {
            debit_account_id: debit.0,
            credit_account_id: source_asset.liquidity_account_id,
            amount: amount_in,
            ledger: source_asset.ledger,
        },
        Leg {
            debit_account_id: destination_asset.liquidity_account_id,
            credit_account_id: credit.0,
            amount: amount_out,
            ledger: destination_asset.ledger,
        },
    ]
}

/// What the next hop's answer means for the hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A Fulfill whose fulfillment matches: post the hold, relay the bytes unchanged.
    Fulfilled,
    /// A Reject: void the hold, relay the bytes unchanged.
    Rejected,
    /// Anything else: void the hold and answer with this reason instead.
    Refused(RejectReason),
}

/// Judges the bytes the next hop answered for a Prepare with `condition`.
pub fn judge_reply(condition: &[u8; 32], reply: &[u8]) -> Verdict {
    match Packet::parse(reply) {
        Ok(Packet::Fulfill(Fulfill { fulfillment, .. })) => {
            if fulfillment_matches(fulfillment, condition) {
                Verdict::Fulfilled
            } else {
                Verdict::Refused(RejectReason::WrongCondition)
            }
        }
        Ok(Packet::Reject(_)) => Verdict::Rejected,
        Ok(Packet::Prepare(_)) | Err(_) => Verdict::Refused(RejectReason::PeerUnreachable(
            "peer answered with no ILP reply".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::ErrorCode;
    use crate::state::{AssetConfig, RatesConfig, StateDocument};
    use std::collections::BTreeMap;

    fn snapshot(url: Option<&str>, rates: &[(&str, f64)]) -> Snapshot {
        let asset = |code: &str, ledger| AssetConfig {
            code: code.into(),
            scale: 2,
            ledger,
            initial_liquidity: 0,
            liquidity_threshold: None,
        };
        let state = StateDocument {
            assets: vec![asset("USD", 1), asset("EUR", 2)],
            rates: RatesConfig {
                base: Some("USD".into()),
                rates: rates
                    .iter()
                    .map(|(code, rate)| ((*code).to_owned(), *rate))
                    .collect::<BTreeMap<_, _>>(),
                url: url.map(str::to_owned),
                lifetime_ms: 15_000,
                stale_ms_max: 300_000,
            },
            ..StateDocument::default()
        };
        Snapshot::build("test.riptide", &state).expect("a snapshot")
    }

    #[test]
    fn a_missing_rate_is_f07_unless_the_feed_has_not_answered_yet() {
        let awaited = snapshot(Some("http://rates.test/"), &[]);
        let missing = convert_between(&awaited, 0, 1, 100).expect_err("no rate yet");
        assert_eq!(missing.code(), ErrorCode::T00);
        let fed = snapshot(Some("http://rates.test/"), &[("GBP", 0.8)]);
        let missing = convert_between(&fed, 0, 1, 100).expect_err("no EUR rate");
        assert_eq!(missing.code(), ErrorCode::F07);
        let priced = snapshot(None, &[("EUR", 0.5)]);
        assert_eq!(convert_between(&priced, 0, 1, 100), Ok(50));
    }

    fn limited_snapshot(scope: &str) -> Snapshot {
        limited_snapshot_after(scope, &[])
    }

    /// Alice, limited as `scope` says, after peers `before` (no limits).
    fn limited_snapshot_after(scope: &str, before: &[&str]) -> Snapshot {
        let mut state = StateDocument {
            assets: vec![AssetConfig {
                code: "USD".into(),
                scale: 2,
                ledger: 1,
                initial_liquidity: 0,
                liquidity_threshold: None,
            }],
            ..StateDocument::default()
        };
        let peer = serde_json::json!({
            "id": "alice",
            "asset": "USD",
            "rate_limit_packets_per_second": 100,
            "throughput_limit_per_second": 1000,
            "limit_scope": scope,
        });
        for id in before {
            let other = serde_json::json!({ "id": id, "asset": "USD" });
            state
                .peers
                .push(serde_json::from_value(other).expect("a peer"));
        }
        state
            .peers
            .push(serde_json::from_value(peer).expect("a peer"));
        Snapshot::build("test.riptide", &state).expect("a snapshot")
    }

    #[test]
    fn a_lease_answer_finds_its_peer_after_a_push_moved_it() {
        let mut limiters = PeerLimiters::default();
        limiters.sync(&limited_snapshot("shared"));
        let requests = limiters.lease_requests(0, 0);
        assert!(limiters.leasing(0));
        let moved = limited_snapshot_after("shared", &["aaron"]);
        limiters.sync(&moved);
        assert!(limiters.leasing(1), "alice, now second, still waits");
        for request in &requests {
            limiters.lease_answered(request, Some(request.tokens), 1);
        }
        assert!(!limiters.leasing(1), "the answers reached her");
        assert_eq!(limiters.check(1, 1, 1), Ok(()));
    }

    #[test]
    fn shared_limits_spend_what_they_lease() {
        let snapshot = limited_snapshot("shared");
        let mut limiters = PeerLimiters::default();
        limiters.sync(&snapshot);
        assert_eq!(
            limiters.check(0, 10, 0),
            Err(RejectReason::RateLimited),
            "nothing leased yet"
        );
        let requests = limiters.lease_requests(0, 0);
        let kinds: Vec<LimitKind> = requests.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, vec![LimitKind::Rate, LimitKind::Throughput]);
        assert_eq!((requests[0].tokens, requests[1].tokens), (2, 20));
        assert!(
            limiters.lease_requests(0, 0).is_empty(),
            "one lease at a time"
        );
        limiters.lease_answered(&requests[0], Some(2), 1);
        limiters.lease_answered(&requests[1], Some(20), 1);
        assert_eq!(limiters.check(0, 10, 1), Ok(()));
        assert_eq!(
            limiters.check(0, 11, 1),
            Err(RejectReason::ThroughputLimited),
            "10 of 20 left"
        );
        assert_eq!(
            limiters.check(0, 10, 1),
            Ok(()),
            "the rate token was not spent"
        );
        assert_eq!(limiters.check(0, 1, 1), Err(RejectReason::RateLimited));
    }

    #[test]
    fn dataplane_limits_need_no_lease() {
        let snapshot = limited_snapshot("dataplane");
        let mut limiters = PeerLimiters::default();
        limiters.sync(&snapshot);
        assert_eq!(limiters.check(0, 10, 0), Ok(()));
        assert!(limiters.lease_requests(0, 0).is_empty());
        assert_eq!(
            limiters.check(0, 991, 0),
            Err(RejectReason::ThroughputLimited)
        );
    }
}
