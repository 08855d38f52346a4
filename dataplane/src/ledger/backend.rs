//! The ledger behind the data plane, the embedded one or TigerBeetle, behind one
//! dispatch; shared by every shard.

use super::memory::MemoryLedger;
use super::{Account, CreateAccountResult, CreateTransferResult, Ledger, LedgerError, Transfer};

/// The ledger behind the data plane: the embedded one or TigerBeetle.
pub enum LedgerBackend {
    Memory(MemoryLedger),
    #[cfg(feature = "tigerbeetle")]
    TigerBeetle(super::tigerbeetle::TigerBeetleLedger),
}

impl LedgerBackend {
    /// The embedded ledger, which answers at once in process; `None` for a server.
    pub fn in_process(&self) -> Option<&MemoryLedger> {
        match self {
            LedgerBackend::Memory(ledger) => Some(ledger),
            #[cfg(feature = "tigerbeetle")]
            LedgerBackend::TigerBeetle(_) => None,
        }
    }

    pub async fn create_transfers(
        &self,
        transfers: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, LedgerError> {
        match self {
            LedgerBackend::Memory(ledger) => ledger.create_transfers(transfers).await,
            #[cfg(feature = "tigerbeetle")]
            LedgerBackend::TigerBeetle(ledger) => ledger.create_transfers(transfers).await,
        }
    }

    pub async fn create_accounts(
        &self,
        accounts: &[Account],
    ) -> Result<Vec<CreateAccountResult>, LedgerError> {
        match self {
            LedgerBackend::Memory(ledger) => ledger.create_accounts(accounts).await,
            #[cfg(feature = "tigerbeetle")]
            LedgerBackend::TigerBeetle(ledger) => ledger.create_accounts(accounts).await,
        }
    }

    pub async fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, LedgerError> {
        match self {
            LedgerBackend::Memory(ledger) => ledger.lookup_accounts(ids).await,
            #[cfg(feature = "tigerbeetle")]
            LedgerBackend::TigerBeetle(ledger) => ledger.lookup_accounts(ids).await,
        }
    }

    pub async fn transfers_with_code(
        &self,
        ledger: u32,
        code: u16,
    ) -> Result<Vec<Transfer>, LedgerError> {
        match self {
            LedgerBackend::Memory(memory) => memory.transfers_with_code(ledger, code).await,
            #[cfg(feature = "tigerbeetle")]
            LedgerBackend::TigerBeetle(tigerbeetle) => {
                tigerbeetle.transfers_with_code(ledger, code).await
            }
        }
    }

    pub async fn lookup_transfers(&self, ids: &[u128]) -> Result<Vec<Transfer>, LedgerError> {
        match self {
            LedgerBackend::Memory(ledger) => ledger.lookup_transfers(ids).await,
            #[cfg(feature = "tigerbeetle")]
            LedgerBackend::TigerBeetle(ledger) => ledger.lookup_transfers(ids).await,
        }
    }
}
