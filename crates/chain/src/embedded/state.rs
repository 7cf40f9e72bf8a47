//! The chain's state (accounts, code, storage) stored in redb, and read by revm from a redb
//! read transaction — so opening a chain does not replay its history, and memory does not
//! grow with it.
//!
//! Only the block producer writes, inside the write transaction that also stores the block
//! and its receipts ([`super::store::BlockStore::append`]); a read transaction is a
//! consistent snapshot of the state after some block. Contract code is kept analysed in a
//! small in-memory cache (the registry's is ~20 KB and every call runs it).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use alloy::primitives::{Address, B256, U256};
use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use revm::database::{AccountState, CacheDB, EmptyDB};
use revm::database_interface::{DBErrorMarker, DatabaseRef};
use revm::primitives::KECCAK_EMPTY;
use revm::state::{AccountInfo, Bytecode, EvmState};

use crate::error::{Error, Result};

/// Address → nonce (8 bytes) ‖ balance (32) ‖ code hash (32).
pub(super) const ACCOUNTS: TableDefinition<'_, [u8; 20], [u8; 72]> =
    TableDefinition::new("state_accounts");
/// Address ‖ slot → value; zero values are not stored.
pub(super) const STORAGE: TableDefinition<'_, [u8; 52], [u8; 32]> =
    TableDefinition::new("state_storage");
/// Code hash → the code as deployed.
pub(super) const CODE: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("state_code");

/// How many analysed contracts stay cached (the registry is one; others come by raw
/// transaction). Past it the cache starts over.
const CODE_CACHE_MAX: usize = 64;

fn store_err(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

/// A state read that failed in redb, as revm's database error.
#[derive(Debug, thiserror::Error)]
#[error("reading the state: {0}")]
pub struct StateError(String);

impl DBErrorMarker for StateError {}

impl From<StateError> for Error {
    fn from(e: StateError) -> Self {
        Error::Store(e.0)
    }
}

fn read_err(e: impl std::fmt::Display) -> StateError {
    StateError(e.to_string())
}

fn encode_account(info: &AccountInfo) -> [u8; 72] {
    let mut out = [0u8; 72];
    out[..8].copy_from_slice(&info.nonce.to_be_bytes());
    out[8..40].copy_from_slice(&info.balance.to_be_bytes::<32>());
    out[40..].copy_from_slice(info.code_hash.as_slice());
    out
}

fn decode_account(b: &[u8; 72]) -> AccountInfo {
    AccountInfo {
        nonce: u64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
        balance: U256::from_be_slice(&b[8..40]),
        code_hash: B256::from_slice(&b[40..]),
        code: None,
        ..Default::default()
    }
}

/// The storage key of `slot` of `addr`: sorted by account, then slot.
pub(super) fn slot_key(addr: Address, slot: U256) -> [u8; 52] {
    let mut k = [0u8; 52];
    k[..20].copy_from_slice(addr.as_slice());
    k[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    k
}

/// Analysed bytecode by code hash, shared by every reader.
#[derive(Default)]
pub struct CodeCache(RwLock<HashMap<B256, Bytecode>>);

impl CodeCache {
    fn get(&self, hash: &B256) -> Option<Bytecode> {
        self.0.read().expect("code cache lock").get(hash).cloned()
    }

    fn put(&self, hash: B256, code: Bytecode) {
        let mut map = self.0.write().expect("code cache lock");
        if map.len() >= CODE_CACHE_MAX {
            map.clear();
        }
        map.insert(hash, code);
    }
}

/// The state after one block, as revm reads it: a redb read transaction.
pub struct StateView {
    accounts: ReadOnlyTable<[u8; 20], [u8; 72]>,
    storage: ReadOnlyTable<[u8; 52], [u8; 32]>,
    code: ReadOnlyTable<[u8; 32], &'static [u8]>,
    cache: Arc<CodeCache>,
}

impl StateView {
    /// The state as of the read transaction `r`.
    pub fn new(r: &ReadTransaction, cache: Arc<CodeCache>) -> Result<Self> {
        Ok(Self {
            accounts: r.open_table(ACCOUNTS).map_err(store_err)?,
            storage: r.open_table(STORAGE).map_err(store_err)?,
            code: r.open_table(CODE).map_err(store_err)?,
            cache,
        })
    }

    fn load_code(&self, hash: B256) -> Result<Bytecode, StateError> {
        if hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        if let Some(code) = self.cache.get(&hash) {
            return Ok(code);
        }
        let bytes = self
            .code
            .get(hash.0)
            .map_err(read_err)?
            .ok_or_else(|| StateError(format!("code {hash} is missing")))?;
        let code = Bytecode::new_raw_checked(bytes.value().to_vec().into())
            .map_err(|e| StateError(format!("code {hash} does not decode: {e:?}")))?;
        self.cache.put(hash, code.clone());
        Ok(code)
    }
}

impl DatabaseRef for StateView {
    type Error = StateError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        let Some(v) = self.accounts.get(address.0.0).map_err(read_err)? else {
            return Ok(None);
        };
        let mut info = decode_account(&v.value());
        // Handing the code over with the account spares revm a second lookup.
        info.code = Some(self.load_code(info.code_hash)?);
        Ok(Some(info))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, StateError> {
        self.load_code(code_hash)
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, StateError> {
        Ok(self
            .storage
            .get(slot_key(address, index))
            .map_err(read_err)?
            .map_or(U256::ZERO, |v| U256::from_be_bytes(v.value())))
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, StateError> {
        // What the chain has always answered (revm's EmptyDB): re-execution of old blocks
        // must give the same results.
        Ok(EmptyDB::default()
            .block_hash_ref(number)
            .unwrap_or_else(|e| match e {}))
    }
}

/// The state tables of a write transaction, opened once for a whole block.
pub struct StateTables<'t> {
    accounts: redb::Table<'t, [u8; 20], [u8; 72]>,
    storage: redb::Table<'t, [u8; 52], [u8; 32]>,
    code: redb::Table<'t, [u8; 32], &'static [u8]>,
}

impl<'t> StateTables<'t> {
    /// Opens (creating them if needed) the state tables in `w`.
    pub fn open(w: &'t WriteTransaction) -> Result<Self> {
        Ok(Self {
            accounts: w.open_table(ACCOUNTS).map_err(store_err)?,
            storage: w.open_table(STORAGE).map_err(store_err)?,
            code: w.open_table(CODE).map_err(store_err)?,
        })
    }

    /// Writes one transaction's state changes (in order, like revm's `CacheDB::commit`).
    pub fn write_changes(&mut self, changes: &EvmState) -> Result<()> {
        for (addr, acc) in changes {
            if !acc.is_touched() {
                continue;
            }
            if acc.is_selfdestructed() || acc.is_created() {
                clear_storage(&mut self.storage, *addr)?;
            }
            if acc.is_selfdestructed() {
                self.accounts.remove(addr.0.0).map_err(store_err)?;
                continue;
            }
            if let Some(c) = &acc.info.code
                && acc.info.code_hash != KECCAK_EMPTY
                && self
                    .code
                    .get(acc.info.code_hash.0)
                    .map_err(store_err)?
                    .is_none()
            {
                self.code
                    .insert(acc.info.code_hash.0, c.original_byte_slice())
                    .map_err(store_err)?;
            }
            self.accounts
                .insert(addr.0.0, encode_account(&acc.info))
                .map_err(store_err)?;
            for (slot, value) in acc.storage.iter().filter(|(_, s)| s.is_changed()) {
                put_slot(&mut self.storage, *addr, *slot, value.present_value)?;
            }
        }
        Ok(())
    }
}

fn put_slot(
    storage: &mut redb::Table<'_, [u8; 52], [u8; 32]>,
    addr: Address,
    slot: U256,
    value: U256,
) -> Result<()> {
    let k = slot_key(addr, slot);
    if value.is_zero() {
        storage.remove(k).map_err(store_err)?;
    } else {
        storage
            .insert(k, value.to_be_bytes::<32>())
            .map_err(store_err)?;
    }
    Ok(())
}

fn clear_storage(storage: &mut redb::Table<'_, [u8; 52], [u8; 32]>, addr: Address) -> Result<()> {
    let lo = slot_key(addr, U256::ZERO);
    let hi = slot_key(addr, U256::MAX);
    storage.retain_in(lo..=hi, |_, _| false).map_err(store_err)
}

/// How many accounts and slots one [`Snapshot`] keeps in memory (past it, reads go to redb).
const HOT_MAX: usize = 1 << 16;

/// The state after one block as calls and the block producer read it: a redb snapshot,
/// with the accounts and slots read so far kept in memory — a snapshot never changes, so
/// its cache never goes stale; the next block gets a new snapshot with an empty cache.
pub struct Snapshot {
    view: StateView,
    accounts: RwLock<HashMap<Address, Option<AccountInfo>>>,
    slots: RwLock<HashMap<(Address, U256), U256>>,
}

impl Snapshot {
    /// A cached snapshot over `view`.
    pub fn new(view: StateView) -> Self {
        Self {
            view,
            accounts: RwLock::default(),
            slots: RwLock::default(),
        }
    }
}

impl DatabaseRef for Snapshot {
    type Error = StateError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        if let Some(a) = self.accounts.read().expect("hot lock").get(&address) {
            return Ok(a.clone());
        }
        let a = self.view.basic_ref(address)?;
        let mut map = self.accounts.write().expect("hot lock");
        if map.len() < HOT_MAX {
            map.insert(address, a.clone());
        }
        Ok(a)
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, StateError> {
        self.view.code_by_hash_ref(code_hash)
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, StateError> {
        if let Some(v) = self.slots.read().expect("hot lock").get(&(address, index)) {
            return Ok(*v);
        }
        let v = self.view.storage_ref(address, index)?;
        let mut map = self.slots.write().expect("hot lock");
        if map.len() < HOT_MAX {
            map.insert((address, index), v);
        }
        Ok(v)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, StateError> {
        self.view.block_hash_ref(number)
    }
}

/// Writes a whole in-memory state (migrating a chain stored before the state was).
pub fn write_all(w: &WriteTransaction, state: &CacheDB<EmptyDB>) -> Result<()> {
    let StateTables {
        mut accounts,
        mut storage,
        mut code,
    } = StateTables::open(w)?;
    for (hash, c) in &state.cache.contracts {
        if *hash != KECCAK_EMPTY {
            code.insert(hash.0, c.original_byte_slice())
                .map_err(store_err)?;
        }
    }
    for (addr, acc) in &state.cache.accounts {
        if matches!(acc.account_state, AccountState::NotExisting) {
            continue;
        }
        accounts
            .insert(addr.0.0, encode_account(&acc.info))
            .map_err(store_err)?;
        for (slot, value) in &acc.storage {
            put_slot(&mut storage, *addr, *slot, *value)?;
        }
    }
    Ok(())
}

/// Compares the stored state with a re-executed one, both ways; the first difference, said
/// plainly.
pub fn compare(view: &StateView, expected: &CacheDB<EmptyDB>) -> Result<Option<String>> {
    let mut live = 0u64;
    for (addr, acc) in &expected.cache.accounts {
        let exists = !matches!(acc.account_state, AccountState::NotExisting);
        let stored = view.basic_ref(*addr)?;
        match (exists, stored) {
            (false, None) => continue,
            (false, Some(_)) => {
                return Ok(Some(format!(
                    "account {addr} is stored, re-execution has none"
                )));
            }
            (true, None) => {
                return Ok(Some(format!(
                    "account {addr} is missing, re-execution has it"
                )));
            }
            (true, Some(s)) => {
                let e = &acc.info;
                if (s.nonce, s.balance, s.code_hash) != (e.nonce, e.balance, e.code_hash) {
                    return Ok(Some(format!(
                        "account {addr} has nonce {}, balance {}, code {}; re-execution \
                         gives nonce {}, balance {}, code {}",
                        s.nonce, s.balance, s.code_hash, e.nonce, e.balance, e.code_hash
                    )));
                }
            }
        }
        live += 1;
        for (slot, value) in &acc.storage {
            let stored = view.storage_ref(*addr, *slot)?;
            if stored != *value {
                return Ok(Some(format!(
                    "storage slot {slot:#x} of {addr} is {stored:#x}, re-execution gives \
                     {value:#x}"
                )));
            }
        }
    }
    // And nothing stored that re-execution does not have.
    let stored_accounts = view.accounts.len().map_err(store_err)?;
    if stored_accounts != live {
        for entry in view.accounts.iter().map_err(store_err)? {
            let (k, _) = entry.map_err(store_err)?;
            let addr = Address::from(k.value());
            if !expected
                .cache
                .accounts
                .get(&addr)
                .is_some_and(|a| !matches!(a.account_state, AccountState::NotExisting))
            {
                return Ok(Some(format!(
                    "account {addr} is stored, re-execution has none"
                )));
            }
        }
    }
    for entry in view.storage.iter().map_err(store_err)? {
        let (k, v) = entry.map_err(store_err)?;
        let k = k.value();
        let addr = Address::from_slice(&k[..20]);
        let slot = U256::from_be_slice(&k[20..]);
        let value = U256::from_be_bytes(v.value());
        let want = expected
            .cache
            .accounts
            .get(&addr)
            .and_then(|a| a.storage.get(&slot))
            .copied()
            .unwrap_or_default();
        if want != value {
            return Ok(Some(format!(
                "storage slot {slot:#x} of {addr} is {value:#x}, re-execution gives {want:#x}"
            )));
        }
    }
    Ok(None)
}

/// Whether the state tables exist in the store (a chain written before they did has none).
pub fn present(r: &ReadTransaction) -> Result<bool> {
    match r.open_table(ACCOUNTS) {
        Ok(_) => Ok(true),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
        Err(e) => Err(store_err(e)),
    }
}

/// Drops the state tables (before a migration writes them whole, and in tests).
pub fn drop_tables(w: &WriteTransaction) -> Result<()> {
    w.delete_table(ACCOUNTS).map_err(store_err)?;
    w.delete_table(STORAGE).map_err(store_err)?;
    w.delete_table(CODE).map_err(store_err)?;
    Ok(())
}
