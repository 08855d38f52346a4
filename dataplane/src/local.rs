//! Local delivery: the IO side of the STREAM receiver, for Prepares addressed under
//! Riptide's own address. It finds the connection (cached per shard, keyed by the
//! connection id), resolves its payment tag to a wallet or an incoming payment,
//! converts the amount into the receiving asset, lets [`riptide_proto::stream::receiver`]
//! decide, and carries out a credit in this order:
//!
//! 1. hold the amount in the ledger (the payer's account to the wallet's receiving
//!    account; T04 when the payer's balance does not cover it). The payer is the
//!    incoming peer, or, for a payment between two wallets of this data plane, the
//!    paying wallet: a plain transfer between two accounts of the one ledger;
//! 2. count it in the receipt store (atomically capped for an incoming payment);
//! 3. post the hold.
//!
//! A store failure voids the hold (T00); a refusal by the store (past the payment's
//! amount, completed, expired) voids it and declines with F99; a failed post takes
//! the count back (T00). So a total never counts money that the ledger did not move.

use crate::drivers::{
    count_answer, credit_step, finish_credit, mark_settled, report_credit, CreditRecord, Ports,
};
use crate::limits::CONNECTIONS_CACHED_MAX;
use crate::limits::RANDOM_POOL_SIZE;
use crate::store::{is_payment_id, CreditResult, StoreAnswer, StoreOp};
use ring::rand::{SecureRandom, SystemRandom};
use riptide_proto::connector::pipeline::{convert_between, legs_between, Leg};
use riptide_proto::connector::reject::RejectReason;
use riptide_proto::connector::snapshot::{AssetIndex, PeerIndex, Snapshot};
use riptide_proto::flow::credit::{CreditCommand, CreditFlow, LocalReply};
use riptide_proto::flow::hold::{reply_deadline, Chain, HoldStep};
use riptide_proto::packet::{ErrorCode, Fulfill, Prepare, Reject};
use riptide_proto::stream::receiver::{
    self, Arrival, ConnectionContext, Credit, CreditOutcome, Known, ReceiptSigner, Reply, Step,
    TargetState,
};
use riptide_proto::stream::{connection_id_hex, token_segment, ServerSecret, StreamKeys, IV_SIZE};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// What a connection pays into.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Wallet,
    IncomingPayment { id: String, expires_at_ms: u64 },
}

/// A connection this shard has seen.
struct Connection {
    context: ConnectionContext,
    /// `stream_received:<this>` in the store.
    id_hex: String,
    wallet: String,
    target: Target,
    /// What the store last reported, for replies that move no money.
    known: Cell<Known>,
    /// The store said the target takes no more.
    closed: Cell<bool>,
}

/// Why a packet never reached the receiver: answered without any STREAM data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unknown {
    /// Not a connection of ours (F02).
    Address,
    /// A token that does not open under our secret (F06).
    Token,
    /// The store could not say whether the payment exists (T00).
    StoreUnavailable,
}

/// The account a local packet is paid from, in its asset: the incoming peer's, or
/// the paying wallet's for a payment between two wallets of this data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payer {
    pub account_id: u128,
    pub asset: AssetIndex,
}

impl Payer {
    pub fn peer(snapshot: &Snapshot, from: PeerIndex) -> Payer {
        let peer = snapshot.peer(from);
        Payer {
            account_id: peer.account_id,
            asset: peer.asset,
        }
    }
}

/// One shard's receiver.
pub struct LocalReceiver {
    server_secret: ServerSecret,
    /// By token segment.
    connections: RefCell<HashMap<String, Rc<Connection>>>,
    scratch: RefCell<Vec<u8>>,
    random: SystemRandom,
    /// The replies' IVs, taken from the OS generator a pool at a time.
    ivs: RefCell<RandomPool>,
    /// The next credit id: a random start, then counting, so that a credit costs
    /// no call to the OS generator.
    next_credit_id: Cell<u64>,
}

impl LocalReceiver {
    pub fn new(stream_secret: &[u8; 32]) -> LocalReceiver {
        let random = SystemRandom::new();
        LocalReceiver {
            server_secret: ServerSecret::new(stream_secret),
            connections: RefCell::new(HashMap::new()),
            scratch: RefCell::new(Vec::with_capacity(1024)),
            next_credit_id: Cell::new(u64::from_le_bytes(random_bytes(&random))),
            ivs: RefCell::new(RandomPool::default()),
            random,
        }
    }

    /// The token segment of a local destination: what decides the owner shard.
    pub fn segment<'a>(snapshot: &Snapshot, destination: &'a str) -> Option<&'a str> {
        token_segment(&snapshot.own_address, destination).ok()
    }

    /// Receives `prepare` from peer `from` and answers the reply bytes.
    pub async fn deliver(
        &self,
        ports: &Ports,
        snapshot: &Snapshot,
        payer: Payer,
        prepare: &Prepare<'_>,
        now_ms: u64,
    ) -> Vec<u8> {
        let own_address = snapshot.own_address.as_str();
        let connection = match self.connection(ports, snapshot, prepare).await {
            Ok(connection) => connection,
            Err(Unknown::Address) => return bare_reject(ErrorCode::F02, own_address),
            Err(Unknown::Token) => return bare_reject(ErrorCode::F06, own_address),
            Err(Unknown::StoreUnavailable) => return bare_reject(ErrorCode::T00, own_address),
        };
        let Some(wallet) = snapshot.wallet(&connection.wallet) else {
            return bare_reject(ErrorCode::F02, own_address);
        };
        // A wallet paying itself would move nothing (and the ledger refuses a
        // transfer from an account to itself).
        if payer.account_id == wallet.account_id {
            return bare_reject(ErrorCode::F02, own_address);
        }
        let amount = match convert_between(snapshot, payer.asset, wallet.asset, prepare.amount) {
            Ok(amount) => amount,
            Err(reason) => return reason.to_reject_bytes(own_address),
        };
        let step = receiver::receive(
            &connection.context,
            Arrival {
                amount,
                execution_condition: prepare.execution_condition,
                data: prepare.data,
            },
            target_state(&connection, now_ms),
            connection.known.get(),
            self.iv(),
            &mut self.scratch.borrow_mut(),
        );
        match step {
            Step::Reply(reply) => reply_bytes(&reply, own_address),
            Step::Credit(credit) => {
                let legs = legs_between(
                    snapshot,
                    (payer.account_id, payer.asset),
                    (wallet.account_id, wallet.asset),
                    prepare.amount,
                    amount,
                );
                let times = (now_ms, prepare.expires_at.unix_ms());
                self.credit(ports, &connection, &credit, &legs, times, own_address)
                    .await
            }
        }
    }

    async fn credit(
        &self,
        ports: &Ports,
        connection: &Connection,
        credit: &Credit,
        legs: &[Leg],
        (now_ms, expires_at_ms): (u64, u64),
        own_address: &str,
    ) -> Vec<u8> {
        let ledger = &ports.shared.ledger;
        let pending_timeout_ms = u64::from(ledger.pending_timeout_s()) * 1_000;
        let reply_by_ms = reply_deadline(now_ms, expires_at_ms);
        let chain = Chain::new(
            legs,
            ledger.reserve_ids(&ports.ids, legs.len()),
            ledger.pending_timeout_s(),
        );
        let hold = HoldStep::new(chain, reply_by_ms, pending_timeout_ms);
        let mut flow = CreditFlow::new(hold, expires_at_ms, reply_by_ms);
        let record = CreditRecord {
            connection: connection.id_hex.clone(),
            wallet: connection.wallet.clone(),
            amount: credit.amount,
            payment: match &connection.target {
                Target::Wallet => None,
                Target::IncomingPayment { id, .. } => Some(id.clone()),
            },
            credit_id: self.credit_id(),
            chain,
        };
        let mut counted = None;
        // Every step has a deadline and the flow replies by the reply's deadline
        // at the latest, so this loop ends. The clock is read once after each wait.
        let mut now = now_ms;
        loop {
            match flow.poll(now) {
                CreditCommand::Count => {
                    let wait = ports.wait_for(flow.wake_at_ms(), now);
                    let op = record.count(now, flow.hold().finish_give_up_at_ms());
                    let answer = ports.store.execute_within(op, wait).await;
                    let (answer, result) = count_answer(&answer);
                    counted = result;
                    now = crate::clock::unix_now_ms();
                    flow.on_count(answer, now);
                }
                CreditCommand::Reply(reply) => {
                    let bytes = self.local_reply(connection, credit, reply, counted, own_address);
                    flow.on_replied();
                    let mut next = flow.poll(now);
                    // A posted count's settle needs no wait: done here, it spares
                    // the usual received packet a task of its own.
                    if next == CreditCommand::MarkSettled {
                        mark_settled(ports, &mut flow, &record);
                        next = flow.poll(now);
                    }
                    match next {
                        CreditCommand::Done(report) => report_credit(ports, &report, &chain),
                        _ => {
                            let task = finish_credit(ports.clone(), flow, record, ports.enter());
                            glommio::spawn_local(task).detach();
                        }
                    }
                    return bytes;
                }
                CreditCommand::Done(report) => {
                    unreachable!("a credit replies before it is done: {report:?}")
                }
                command => {
                    now = credit_step(ports, &mut flow, &record, command, now)
                        .await
                        .expect("a credit step carries out every other command");
                }
            }
        }
    }

    /// The bytes of a local reply: the receiver's Fulfill or decline, or a Reject.
    fn local_reply(
        &self,
        connection: &Connection,
        credit: &Credit,
        reply: LocalReply,
        counted: Option<CreditResult>,
        own_address: &str,
    ) -> Vec<u8> {
        let outcome = match (reply, counted) {
            (LocalReply::Reject(reason), _) => return reason.to_reject_bytes(own_address),
            (_, Some(result)) => credit_outcome(connection, result),
            (_, None) => {
                return RejectReason::Internal("receipt store".into()).to_reject_bytes(own_address)
            }
        };
        if let CreditOutcome::Credited {
            connection_total,
            remaining,
        } = outcome
        {
            connection.known.set(Known {
                connection_total,
                remaining,
            });
        }
        reply_bytes(
            &receiver::settle(&connection.context, credit, outcome, self.iv()),
            own_address,
        )
    }

    /// A fresh id for one credit attempt, so that its take-back is exact.
    fn credit_id(&self) -> u64 {
        let id = self.next_credit_id.get();
        self.next_credit_id.set(id.wrapping_add(1));
        id
    }

    /// The cached connection, or a new one from the token.
    async fn connection(
        &self,
        ports: &Ports,
        snapshot: &Snapshot,
        prepare: &Prepare<'_>,
    ) -> Result<Rc<Connection>, Unknown> {
        let destination = prepare.destination.as_str();
        let segment =
            token_segment(&snapshot.own_address, destination).map_err(|_| Unknown::Address)?;
        // Cached by token segment: a hit costs one lookup, no hashing or allocation.
        if let Some(connection) = self.connections.borrow().get(segment) {
            return Ok(Rc::clone(connection));
        }
        let token = self
            .server_secret
            .decode_sealed_segment(segment)
            .map_err(|_| Unknown::Token)?;
        let tag = token
            .details
            .payment_tag
            .as_deref()
            .ok_or(Unknown::Address)?;
        let (wallet, target) = resolve_tag(ports, snapshot, tag).await?;
        let asset = snapshot
            .wallet(&wallet)
            .map(|w| snapshot.asset(w.asset))
            .ok_or(Unknown::Address)?;
        // The connection id covers the address up to the token, so that extra
        // segments after it (as `@interledger/pay` adds) stay one connection.
        let base_length = snapshot.own_address.len() + 1 + segment.len();
        let id_hex = connection_id_hex(&destination[..base_length]);
        let connection = Rc::new(Connection {
            context: ConnectionContext {
                keys: StreamKeys::new(&token.shared_secret),
                asset_code: asset.code.clone(),
                asset_scale: asset.scale,
                receipts: token.details.receipt.as_ref().map(ReceiptSigner::new),
            },
            id_hex,
            wallet,
            target,
            known: Cell::new(Known::default()),
            closed: Cell::new(false),
        });
        let mut connections = self.connections.borrow_mut();
        if connections.len() >= CONNECTIONS_CACHED_MAX {
            if let Some(key) = connections.keys().next().cloned() {
                connections.remove(&key);
            }
        }
        connections.insert(segment.to_owned(), Rc::clone(&connection));
        Ok(connection)
    }

    fn iv(&self) -> [u8; IV_SIZE] {
        self.ivs.borrow_mut().take(&self.random)
    }
}

/// Random bytes from the OS generator, fetched [`RANDOM_POOL_SIZE`] at a time: a
/// fresh IV for each reply would otherwise cost a system call per packet (it was
/// the most frequent one on the receive path). Each byte is handed out once. An
/// IV travels in the clear beside its ciphertext and AES-GCM asks only that it
/// never repeat under a key, so holding the next ones in memory reveals nothing.
struct RandomPool {
    bytes: [u8; RANDOM_POOL_SIZE],
    used: usize,
}

impl Default for RandomPool {
    /// An empty pool: the first take fills it.
    fn default() -> RandomPool {
        RandomPool {
            bytes: [0; RANDOM_POOL_SIZE],
            used: RANDOM_POOL_SIZE,
        }
    }
}

impl RandomPool {
    fn take<const N: usize>(&mut self, random: &SystemRandom) -> [u8; N] {
        const { assert!(N <= RANDOM_POOL_SIZE) };
        if RANDOM_POOL_SIZE - self.used < N {
            self.bytes = random_bytes(random);
            self.used = 0;
        }
        let mut taken = [0u8; N];
        taken.copy_from_slice(&self.bytes[self.used..self.used + N]);
        self.used += N;
        taken
    }
}

/// Bytes from the OS generator. It fails only on a broken system, where a fixed
/// IV would repeat under one key: stopping is safer than going on.
fn random_bytes<const N: usize>(random: &SystemRandom) -> [u8; N] {
    let mut bytes = [0u8; N];
    if random.fill(&mut bytes).is_err() {
        tracing::error!("system random generator failed");
        std::process::abort();
    }
    bytes
}

/// A wallet of the state, else an incoming payment in the store.
async fn resolve_tag(
    ports: &Ports,
    snapshot: &Snapshot,
    tag: &str,
) -> Result<(String, Target), Unknown> {
    if snapshot.wallet(tag).is_some() {
        return Ok((tag.to_owned(), Target::Wallet));
    }
    if !is_payment_id(tag) {
        return Err(Unknown::Address);
    }
    let op = StoreOp::GetPayment { id: tag.to_owned() };
    match ports.store.execute(op).await {
        Ok(StoreAnswer::Payment(Some(payment))) => Ok((
            payment.wallet,
            Target::IncomingPayment {
                id: payment.id,
                expires_at_ms: payment.expires_at_ms,
            },
        )),
        Ok(_) => Err(Unknown::Address),
        Err(error) => {
            tracing::warn!(%error, "incoming payment lookup failed");
            Err(Unknown::StoreUnavailable)
        }
    }
}

/// What the receiver is told about a count the store answered.
fn credit_outcome(connection: &Connection, result: CreditResult) -> CreditOutcome {
    match result {
        CreditResult::Credited {
            connection_total,
            remaining,
        } => CreditOutcome::Credited {
            connection_total,
            remaining,
        },
        CreditResult::Exceeds {
            connection_total,
            remaining,
        } => CreditOutcome::Exceeds {
            connection_total,
            remaining,
        },
        CreditResult::Completed | CreditResult::Expired | CreditResult::UnknownPayment => {
            connection.closed.set(true);
            CreditOutcome::Closed
        }
    }
}

fn target_state(connection: &Connection, now_ms: u64) -> TargetState {
    let expired = match &connection.target {
        Target::IncomingPayment { expires_at_ms, .. } => now_ms >= *expires_at_ms,
        Target::Wallet => false,
    };
    if expired || connection.closed.get() {
        TargetState::Closed
    } else {
        TargetState::Open
    }
}

fn bare_reject(code: ErrorCode, own_address: &str) -> Vec<u8> {
    Reject {
        code,
        triggered_by: own_address,
        message: b"",
        data: b"",
    }
    .to_bytes()
}

fn reply_bytes(reply: &Reply, own_address: &str) -> Vec<u8> {
    match reply {
        Reply::Fulfill { fulfillment, data } => Fulfill { fulfillment, data }.to_bytes(),
        Reply::Reject { code, data } => Reject {
            code: *code,
            triggered_by: own_address,
            message: b"",
            data,
        }
        .to_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_hands_out_each_byte_once_and_refills() {
        let random = SystemRandom::new();
        let mut pool = RandomPool::default();
        let takes = 3 * RANDOM_POOL_SIZE / IV_SIZE + 1;
        let ivs: std::collections::HashSet<[u8; IV_SIZE]> =
            (0..takes).map(|_| pool.take(&random)).collect();
        assert_eq!(ivs.len(), takes, "no IV repeats, across refills too");
        assert!(pool.used <= RANDOM_POOL_SIZE);
        let before = pool.used;
        let _: [u8; IV_SIZE] = pool.take(&random);
        assert!(pool.used == before + IV_SIZE || pool.used == IV_SIZE);
    }
}
