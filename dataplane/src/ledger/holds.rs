//! The port through which packets' holds reach the ledger, shared by every shard:
//! transfer ids that never repeat (three per leg: pending, post, void), the timeouts
//! of a request and of a pending transfer, and lookups that settle an unknown
//! outcome. The chart of accounts it also serves is in [`super::chart`].

use super::backend::LedgerBackend;
use super::memory::MemoryLedger;
use super::{Account, CreateAccountResult, CreateTransferResult, Transfer};
use crate::limits::MEMORY_LEDGER_TIMEOUT;
use riptide_proto::flow::hold::IDS_PER_LEG;
use riptide_proto::limits::LEGS_MAX;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LedgerFailure {
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    #[error("{operation} refused: {result}")]
    Refused {
        operation: &'static str,
        result: String,
    },
}

/// Transfer ids a shard takes from the shared counter at once.
const ID_BLOCK_SIZE: u64 = 1 << 16;
const _: () = assert!(ID_BLOCK_SIZE as u128 >= LEGS_MAX as u128 * IDS_PER_LEG);

/// A shard's range of transfer ids, [`LedgerPort::reserve_ids`] hands them out.
#[derive(Debug, Default)]
pub struct IdBlock {
    next: std::cell::Cell<u64>,
    end: std::cell::Cell<u64>,
}

/// The ledger as the data plane uses it, shared by every shard.
pub struct LedgerPort {
    backend: Arc<LedgerBackend>,
    pending_timeout_s: u32,
    /// Longest wait for one ledger request before its outcome counts as unknown.
    request_timeout: Duration,
    /// Transfer ids: a random high half per process and a counter, so ids never
    /// repeat across shards or restarts.
    id_prefix: u64,
    id_counter: AtomicU64,
}

impl LedgerPort {
    pub fn memory(pending_timeout_s: u32) -> LedgerPort {
        LedgerPort::new(
            LedgerBackend::Memory(MemoryLedger::new()),
            pending_timeout_s,
            MEMORY_LEDGER_TIMEOUT,
        )
    }

    pub fn new(
        backend: LedgerBackend,
        pending_timeout_s: u32,
        request_timeout: Duration,
    ) -> LedgerPort {
        assert!(pending_timeout_s > 0);
        let mut prefix = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut prefix)
            .expect("the system random source works");
        LedgerPort {
            backend: Arc::new(backend),
            pending_timeout_s,
            request_timeout,
            id_prefix: u64::from_be_bytes(prefix),
            id_counter: AtomicU64::new(1),
        }
    }

    /// Whether the ledger answers in process, at once (the embedded one).
    pub fn answers_in_process(&self) -> bool {
        self.backend.in_process().is_some()
    }

    /// The backend, for a shard's [`TransferBatcher`].
    pub fn backend(&self) -> Arc<LedgerBackend> {
        Arc::clone(&self.backend)
    }

    pub fn pending_timeout_s(&self) -> u32 {
        self.pending_timeout_s
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Reserves the ids of a chain of `legs` legs (its holds, posts and voids) and
    /// returns the first. They come from `block`, the calling shard's own range,
    /// which takes a new range from the shared counter only when it runs out: a
    /// packet writes no cache line that the other shards' packets write too.
    pub fn reserve_ids(&self, block: &IdBlock, legs: usize) -> u128 {
        assert!(legs <= LEGS_MAX);
        let span = (legs as u64 * IDS_PER_LEG as u64).max(1);
        let (mut next, mut end) = (block.next.get(), block.end.get());
        if end - next < span {
            next = self.id_counter.fetch_add(ID_BLOCK_SIZE, Ordering::Relaxed);
            end = next + ID_BLOCK_SIZE;
        }
        block.next.set(next + span);
        block.end.set(end);
        (u128::from(self.id_prefix) << 64) | u128::from(next)
    }

    pub(super) async fn create_transfers(
        &self,
        transfers: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerFailure> {
        self.backend
            .create_transfers(transfers)
            .await
            .map_err(|e| LedgerFailure::Unavailable(e.to_string()))
    }

    pub(super) async fn create_accounts(
        &self,
        accounts: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerFailure> {
        self.backend
            .create_accounts(accounts)
            .await
            .map_err(|e| LedgerFailure::Unavailable(e.to_string()))
    }

    pub async fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, LedgerFailure> {
        self.backend
            .lookup_accounts(ids)
            .await
            .map_err(|e| LedgerFailure::Unavailable(e.to_string()))
    }

    pub async fn lookup_transfers(&self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerFailure> {
        self.backend
            .lookup_transfers(ids)
            .await
            .map_err(|e| LedgerFailure::Unavailable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn shards_take_ids_from_their_own_blocks_and_never_share_one() {
        let port = LedgerPort::memory(30);
        let blocks = [IdBlock::default(), IdBlock::default()];
        let mut taken = HashSet::new();
        let span = LEGS_MAX as u128 * IDS_PER_LEG;
        // Enough chains to make each block run out and take another.
        let chains = 2 * ID_BLOCK_SIZE as usize / span as usize + 3;
        for chain in 0..chains {
            let first = port.reserve_ids(&blocks[chain % 2], LEGS_MAX);
            for id in first..first + span {
                assert!(taken.insert(id), "id {id:#x} handed out twice");
            }
        }
        // One shard's chains follow each other within its block.
        let block = IdBlock::default();
        let first = port.reserve_ids(&block, 1);
        let second = port.reserve_ids(&block, 1);
        assert_eq!(second - first, IDS_PER_LEG);
    }
}
