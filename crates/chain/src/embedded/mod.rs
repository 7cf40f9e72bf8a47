//! The embedded chain: the real compiled contract on an in-process EVM (revm), as a
//! single-node chain persisted in the data directory — SecureEHR's default, like SQLite.
//!
//! Transactions are EIP-1559 or EIP-155 legacy transactions signed with the sender's
//! secp256k1 key; the chain checks signature, nonce and chain id before anything runs, and
//! refuses a bad one without mining anything. One producer thread takes every transaction waiting at that moment,
//! executes them in order and writes them as one block — header hash-linked to its parent,
//! committing to transactions, receipts and state — in one redb transaction: many
//! transactions, one fsync (group commit). Only then does the state move and do callers hear
//! back, so an acknowledged transaction survives a crash.
//!
//! The state (accounts, code, storage) and the indexes (transaction hash, block hash, logs
//! by topic) are stored beside the blocks, written in that same write transaction, together
//! with which block the state is "after": a crash leaves a block with its state and index
//! entries, or none of them (crash safety is redb's atomic commit). Opening therefore does not replay history: it checks that the
//! stored state is after the head block (and the head block's own roots), and revm reads the
//! state from redb as it needs it — open time and memory follow the state, not the history.
//! A chain file written before the state was stored is replayed once and migrated.
//!
//! [`EmbeddedChain::verify`] (`secure-ehr chain verify`) re-walks every block from genesis —
//! hash links, signatures, re-execution must give the same receipts and state hash — and
//! checks the stored state and indexes against the re-executed ones, naming the first
//! block that does not check out.

mod archive;
mod block;
mod exec;
mod index;
mod replay;
mod state;
mod store;
mod view;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::thread::JoinHandle;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use async_trait::async_trait;
use revm::DatabaseCommit;
use revm::context::result::ExecutionResult;
use revm::database::CacheDB;
use revm::database_interface::DatabaseRef;
use revm::state::EvmState;
use tokio::sync::oneshot;

pub use archive::{BodySource, RawBody};
pub use block::{Block, Header, Receipt};
pub use view::{AccountView, CallRequest, LogEntry, TxLocation};

use crate::contract;
use crate::error::{ContractError, Error, Result};
use crate::registry::{
    ChainInfo, ChainLog, LogQuery, Registry, SentTx, TxNote, TxReceipt, TxStatus,
};
use crate::signing::{Gas, sign_eip1559};
use archive::checked_body;
use exec::{CheckedTx, StateDb};
use replay::{check_after, check_head, replay};
use state::Snapshot;
use store::BlockStore;

/// Settings of an embedded chain.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// EIP-155 chain id that every transaction must carry.
    pub chain_id: u64,
    /// The most transactions one block takes.
    pub max_block_transactions: usize,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            // "SE" in ASCII: a private chain id that no public network uses.
            chain_id: 0x5345,
            max_block_transactions: 2048,
        }
    }
}

/// What a full re-walk of the chain found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Blocks checked (genesis included).
    pub blocks: u64,
    /// Transactions re-executed.
    pub transactions: u64,
    /// The head block's hash.
    pub head_hash: B256,
}

struct Head {
    number: u64,
    hash: B256,
    timestamp: u64,
    state_hash: B256,
}

impl Head {
    /// The head a block with this header makes.
    fn of(h: &Header) -> Self {
        Self {
            number: h.number,
            hash: h.hash(),
            timestamp: h.timestamp,
            state_hash: h.state_hash,
        }
    }

    /// A virtual block -1: block 0 is built as its child (number wraps to 0, zero parent).
    fn before_genesis() -> Self {
        Self {
            number: u64::MAX,
            hash: B256::ZERO,
            timestamp: 0,
            state_hash: B256::ZERO,
        }
    }
}

/// The contract the genesis block deployed: its first receipt, if that succeeded.
fn deployed_contract(receipts: &[Receipt]) -> Option<Address> {
    receipts
        .first()
        .filter(|r| r.success)
        .and_then(|r| r.contract_address)
}

struct Submission {
    raw: Bytes,
    /// Decoded, with its sender, by the submitter (off the producer thread).
    tx: CheckedTx,
    reply: oneshot::Sender<Result<Mined>>,
}

/// A mined transaction: its receipt, and its revert data if it reverted.
struct Mined {
    receipt: TxReceipt,
    revert: Option<Bytes>,
}

impl Mined {
    /// A reverted transaction as the contract's error.
    fn into_result(self) -> Result<TxReceipt> {
        match self.revert {
            Some(data) => Err(ContractError::decode(&data).into()),
            None => Ok(self.receipt),
        }
    }
}

struct Shared {
    config: ChainConfig,
    store: BlockStore,
    /// The state after the head, shared by every reader until the next block (`None`:
    /// make one on first use).
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    head: RwLock<Head>,
    contract: Address,
    /// Seconds added to the wall clock (tests move time forward; it never goes back).
    time_offset: AtomicU64,
    /// The bodies of pruned blocks (see [`EmbeddedChain::prune_below`]).
    bodies: RwLock<Option<Arc<dyn BodySource>>>,
}

impl Shared {
    /// The state after the head block.
    fn state(&self) -> Result<Arc<Snapshot>> {
        if let Some(s) = self.snapshot.read().expect("snapshot lock").as_ref() {
            return Ok(s.clone());
        }
        // Made under the lock: the producer replaces it after each block it writes, so a
        // snapshot made here is never left older than the head.
        let mut slot = self.snapshot.write().expect("snapshot lock");
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let s = Arc::new(Snapshot::new(self.store.state()?));
        *slot = Some(s.clone());
        Ok(s)
    }

    /// The time a block produced now would carry; never before the head.
    fn pending_timestamp(&self) -> u64 {
        let wall = ehr_primitives::unix_now();
        let head = self.head.read().expect("head lock").timestamp;
        (wall + self.time_offset.load(Ordering::Relaxed)).max(head)
    }
}

/// The embedded single-node chain running the EhrRegistry contract.
pub struct EmbeddedChain {
    shared: Arc<Shared>,
    submit: Option<mpsc::Sender<Submission>>,
    producer: Option<JoinHandle<()>>,
    /// The next nonce to hand out per sender (covers transactions not yet mined).
    nonces: Mutex<HashMap<Address, u64>>,
    /// Hashes of this process's transactions queued and not yet answered.
    in_flight: Mutex<std::collections::HashSet<B256>>,
}

/// The chain file inside the data directory.
const CHAIN_FILE: &str = "chain.redb";

/// Opens the block store of the chain in `dir` directly (tests of tamper detection).
#[cfg(any(test, feature = "test-utils"))]
pub(crate) fn open_store(dir: &Path) -> Result<BlockStore> {
    BlockStore::open(&dir.join(CHAIN_FILE))
}

impl EmbeddedChain {
    /// Opens the chain in `dir` (created if needed). A new chain deploys the contract in its
    /// genesis block, signed by `deployer`, who becomes the contract's admin. An existing
    /// chain is not replayed: its stored state must be the state after its head block, and
    /// the head block must match its roots ([`Error::Tampered`] naming the head block, or
    /// [`Error::Corrupt`]). A chain written before the state was stored is verified, replayed
    /// and migrated once. [`EmbeddedChain::verify`] checks every block.
    pub fn open(dir: &Path, config: ChainConfig, deployer: &PrivateKeySigner) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut store = BlockStore::open(&dir.join(CHAIN_FILE))?;
        store.ensure_event_index()?;
        store.compact_if_pruned()?;
        let (head, contract) = match store.last_number()? {
            None => genesis(&store, &config, deployer)?,
            Some(last) => match store.state_after()? {
                Some(after) => check_head(&store, last, after)?,
                None => {
                    let loaded = replay(&store, config.chain_id, None, None)?
                        .ok_or_else(|| Error::Corrupt("the chain has no blocks".into()))?;
                    store.migrate(&loaded.state, last)?;
                    (loaded.head, loaded.contract)
                }
            },
        };
        let shared = Arc::new(Shared {
            config,
            store,
            snapshot: RwLock::new(None),
            head: RwLock::new(head),
            contract,
            time_offset: AtomicU64::new(0),
            bodies: RwLock::new(None),
        });
        let (tx, rx) = mpsc::channel();
        let producer_shared = shared.clone();
        let producer = std::thread::Builder::new()
            .name("ehr-block-producer".into())
            .spawn(move || produce_blocks(&producer_shared, rx))?;
        let chain = Self {
            shared,
            submit: Some(tx),
            producer: Some(producer),
            nonces: Mutex::new(HashMap::new()),
            in_flight: Mutex::default(),
        };
        // A chain made by another version holds another contract: say so, not a revert later.
        let contract = chain.shared.contract;
        crate::contract::check_code(contract, &chain.account(contract)?.code)?;
        Ok(chain)
    }

    /// Re-walks the chain in `dir` without starting it: hash links, signatures, and
    /// re-execution of every block must give the stored receipts and state hash; the stored
    /// state must be the re-executed state after the head block, and the indexes must be
    /// those of the blocks. (A chain written before the state was stored has neither yet:
    /// its blocks are checked.)
    pub fn verify(dir: &Path, chain_id: u64) -> Result<VerifyReport> {
        Self::verify_with(dir, chain_id, None)
    }

    /// [`verify`](Self::verify) for a pruned chain: the pruned blocks' bodies come from
    /// `bodies` (the ledger archive), each checked against the header kept here, and are
    /// re-executed like the rest.
    pub fn verify_with(
        dir: &Path,
        chain_id: u64,
        bodies: Option<&dyn BodySource>,
    ) -> Result<VerifyReport> {
        let path = dir.join(CHAIN_FILE);
        if !path.exists() {
            return Err(Error::Store(format!("no chain at {}", path.display())));
        }
        let store = BlockStore::open(&path)?;
        let after = store.state_after()?;
        // One snapshot for blocks, state and indexes alike.
        let snapshot = store.read()?;
        let loaded = replay(
            &store,
            chain_id,
            after.is_some().then_some(&snapshot),
            bodies,
        )?
        .ok_or_else(|| Error::Corrupt("the chain has no blocks".into()))?;
        if let Some(after) = after {
            let head = loaded.head.number;
            check_after(head, loaded.head.hash, after)?;
            let view = store.state_in(&snapshot)?;
            if let Some(diff) = state::compare(&view, &loaded.state)? {
                return Err(Error::Tampered {
                    block: head,
                    reason: format!("stored state disagrees with block {head}: {diff}"),
                });
            }
        }
        Ok(loaded.report)
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.shared.config.chain_id
    }

    /// The head block number.
    pub fn head_number(&self) -> u64 {
        self.shared.head.read().expect("head lock").number
    }

    /// A block by number, as stored.
    pub fn block(&self, number: u64) -> Result<Option<Block>> {
        Ok(self.shared.load(number)?.map(|(b, _)| b))
    }

    /// Submits a signed EIP-2718 transaction (as `eth_sendRawTransaction` would) and waits
    /// until its block is durable. A transaction with a bad signature, nonce or chain id is
    /// [`Error::Rejected`] and nothing is mined; one that reverts is mined (it used its
    /// nonce) and comes back as [`Error::Contract`].
    pub async fn send_raw_transaction(&self, raw: Bytes) -> Result<TxReceipt> {
        self.send_raw(raw).await?.into_result()
    }

    /// Checks, queues and waits for a raw transaction, counting it in
    /// [`EmbeddedChain::pending_nonce`] and [`Registry::tx_status`] while it waits.
    async fn send_raw(&self, raw: Bytes) -> Result<Mined> {
        let tx = exec::check_tx(&raw, self.shared.config.chain_id)?;
        let (from, nonce, hash) = (tx.from, tx.nonce, tx.hash);
        let rx = {
            let mut nonces = self.nonces.lock().expect("nonce lock");
            let rx = self.enqueue(raw, tx)?;
            let next = nonces.entry(from).or_insert(0);
            *next = (*next).max(nonce.saturating_add(1));
            self.in_flight.lock().expect("in-flight lock").insert(hash);
            rx
        };
        let result = rx.await.map_err(|_| Error::Stopped);
        self.in_flight.lock().expect("in-flight lock").remove(&hash);
        let result = result.and_then(|r| r);
        if let Err(Error::Rejected(_)) = &result {
            // The nonce was not used: ask the state again next time.
            self.nonces.lock().expect("nonce lock").remove(&from);
        }
        result
    }

    fn enqueue(&self, raw: Bytes, tx: CheckedTx) -> Result<oneshot::Receiver<Result<Mined>>> {
        let (reply, rx) = oneshot::channel();
        self.submit
            .as_ref()
            .ok_or(Error::Stopped)?
            .send(Submission { raw, tx, reply })
            .map_err(|_| Error::Stopped)?;
        Ok(rx)
    }

    /// Signs a call of the contract with the next nonce of `from` and queues it. Nonces are
    /// handed out and queued under one lock, so the producer sees them in order.
    fn sign_and_enqueue(
        &self,
        from: &PrivateKeySigner,
        input: Bytes,
        note: &TxNote<'_>,
    ) -> Result<(B256, oneshot::Receiver<Result<Mined>>)> {
        let addr = from.address();
        let mut nonces = self.nonces.lock().expect("nonce lock");
        let committed = self.shared.state()?.basic_ref(addr)?.map_or(0, |a| a.nonce);
        let nonce = nonces.get(&addr).copied().unwrap_or(0).max(committed);
        let raw = sign_tx(
            from,
            self.shared.config.chain_id,
            nonce,
            Some(self.shared.contract),
            input,
        )?;
        let tx = exec::check_own_tx(&raw, self.shared.config.chain_id, addr)?;
        let hash = tx.hash;
        note(&SentTx {
            hash,
            from: addr,
            nonce,
        })?;
        self.in_flight.lock().expect("in-flight lock").insert(hash);
        let rx = match self.enqueue(raw, tx) {
            Ok(rx) => rx,
            Err(e) => {
                self.in_flight.lock().expect("in-flight lock").remove(&hash);
                return Err(e);
            }
        };
        nonces.insert(addr, nonce + 1);
        Ok((hash, rx))
    }

    /// Moves the chain's clock forward by `secs` (tests of expiry; time never goes back).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn advance_time(&self, secs: u64) {
        self.shared.time_offset.fetch_add(secs, Ordering::Relaxed);
    }

    fn call_at_pending(&self, from: Address, input: Bytes) -> Result<ExecutionResult> {
        let timestamp = self.shared.pending_timestamp();
        let number = self.head_number() + 1;
        let state = self.shared.state()?;
        exec::call(
            &state,
            self.shared.config.chain_id,
            number,
            timestamp,
            from,
            self.shared.contract,
            input,
        )
    }
}

impl Drop for EmbeddedChain {
    fn drop(&mut self) {
        // Closing the channel ends the producer after the block it is writing.
        self.submit.take();
        if let Some(p) = self.producer.take() {
            let _ = p.join();
        }
    }
}

#[async_trait]
impl Registry for EmbeddedChain {
    fn contract(&self) -> Address {
        self.shared.contract
    }

    async fn transact_noted(
        &self,
        from: &PrivateKeySigner,
        input: Bytes,
        note: &TxNote<'_>,
    ) -> Result<TxReceipt> {
        // Dry-run first, like eth_estimateGas: a call the contract refuses costs nothing and
        // uses no nonce. (If state changes in between, the mined revert is reported too.)
        match self.call_at_pending(from.address(), input.clone())? {
            ExecutionResult::Success { .. } => {}
            ExecutionResult::Revert { output, .. } => {
                return Err(ContractError::decode(&output).into());
            }
            ExecutionResult::Halt { reason, .. } => {
                return Err(Error::Evm(format!("call halted: {reason:?}")));
            }
        }
        let (hash, rx) = self.sign_and_enqueue(from, input, note)?;
        let result = rx.await.map_err(|_| Error::Stopped);
        self.in_flight.lock().expect("in-flight lock").remove(&hash);
        let result = result.and_then(|r| r);
        if let Err(Error::Rejected(_)) = &result {
            // The nonce was not used: forget what we handed out and ask the state again.
            self.nonces
                .lock()
                .expect("nonce lock")
                .remove(&from.address());
        }
        result?.into_result()
    }

    async fn call(&self, from: Address, input: Bytes) -> Result<Bytes> {
        match self.call_at_pending(from, input)? {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { output, .. } => Err(ContractError::decode(&output).into()),
            ExecutionResult::Halt { reason, .. } => {
                Err(Error::Evm(format!("call halted: {reason:?}")))
            }
        }
    }

    async fn tx_status(&self, tx: &SentTx) -> Result<TxStatus> {
        if let Some(e) = index::tx(&self.shared.store.read()?, tx.hash)? {
            return Ok(TxStatus::Mined {
                block_number: e.location.block,
                success: e.success,
            });
        }
        // Queued transactions live only in this process: one not queued now never lands.
        if self
            .in_flight
            .lock()
            .expect("in-flight lock")
            .contains(&tx.hash)
        {
            Ok(TxStatus::Pending)
        } else {
            Ok(TxStatus::Dropped)
        }
    }

    async fn logs(&self, query: &LogQuery) -> Result<Vec<ChainLog>> {
        let contract = self.shared.contract;
        let to = query.to_block.unwrap_or(u64::MAX).min(self.head_number());
        let mut out = Vec::new();
        if let Some(t1) = query.topics[0] {
            // The common path (a record's, a patient's logs): the index, cost ~ results.
            let r = self.shared.store.read()?;
            let keep = |e: &LogEntry| e.log.address == contract && query.matches(&e.log, e.block);
            for e in index::logs(&r, query.event, t1, query.from_block, to, usize::MAX, keep)? {
                out.push(ChainLog {
                    log: e.log,
                    block_number: e.block,
                    tx_hash: e.tx_hash,
                });
            }
            return Ok(out);
        }
        // Only the event is named (break-glass windows by patient, every record version):
        // the by-event index, cost ~ that event's logs, no block body read.
        let r = self.shared.store.read()?;
        let keep = |e: &LogEntry| e.log.address == contract && query.matches(&e.log, e.block);
        for e in index::logs_of_event(&r, query.event, query.from_block, to, keep)? {
            out.push(ChainLog {
                log: e.log,
                block_number: e.block,
                tx_hash: e.tx_hash,
            });
        }
        Ok(out)
    }

    async fn info(&self) -> Result<ChainInfo> {
        let head = self.shared.head.read().expect("head lock");
        Ok(ChainInfo {
            backend: "embedded".into(),
            chain_id: self.shared.config.chain_id,
            head_block: head.number,
            head_hash: head.hash,
            head_timestamp: head.timestamp,
            contract: self.shared.contract,
        })
    }
}

/// Signs a transaction for the embedded chain, where gas is free (base fee 0).
pub fn sign_tx(
    from: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    to: Option<Address>,
    input: Bytes,
) -> Result<Bytes> {
    let gas = Gas {
        limit: exec::TX_GAS_LIMIT,
        max_fee: 0,
        max_priority_fee: 0,
    };
    sign_eip1559(from, chain_id, nonce, to, U256::ZERO, input, gas)
}

/// A block executed but not yet stored.
struct Built {
    block: Block,
    receipts: Vec<Receipt>,
    states: Vec<EvmState>,
    /// Revert data of the included transactions that reverted, by position.
    reverts: Vec<Option<Bytes>>,
}

/// Executes checked transactions in order as block (`number`, `timestamp`) on top of
/// `state`. Transactions the state refuses (nonce) are handed back with their error.
fn build_block<D: DatabaseRef>(
    state: &D,
    chain_id: u64,
    parent: &Head,
    timestamp: u64,
    txs: Vec<(Bytes, CheckedTx)>,
) -> (Built, Vec<(usize, Error)>) {
    let number = parent.number.wrapping_add(1);
    let mut overlay = CacheDB::new(state);
    let mut included = Vec::new();
    let mut receipts = Vec::new();
    let mut states = Vec::new();
    let mut reverts = Vec::new();
    let mut refused = Vec::new();
    let mut state_hash = parent.state_hash;
    let mut gas_used = 0;
    let mut hashes = Vec::new();
    for (i, (raw, tx)) in txs.into_iter().enumerate() {
        match exec::execute(&mut overlay, chain_id, number, timestamp, tx.env) {
            Err(e) => refused.push((i, e)),
            Ok(out) => {
                state_hash =
                    exec::fold_state_hash(state_hash, exec::state_changes_hash(&out.state));
                overlay.commit(out.state.clone());
                states.push(out.state);
                gas_used += out.result.tx_gas_used();
                hashes.push(tx.hash);
                reverts.push(
                    (!out.result.is_success())
                        .then(|| out.result.output().cloned().unwrap_or_default()),
                );
                receipts.push(Receipt {
                    tx_hash: tx.hash,
                    from: tx.from,
                    success: out.result.is_success(),
                    gas_used: out.result.tx_gas_used(),
                    contract_address: out.result.created_address(),
                    logs: if out.result.is_success() {
                        out.result.into_logs()
                    } else {
                        Vec::new()
                    },
                });
                included.push(raw);
            }
        }
    }
    let header = Header {
        parent_hash: parent.hash,
        number,
        timestamp,
        transactions_root: block::transactions_root(&hashes),
        receipts_root: alloy::primitives::keccak256(block::encode_receipts(&receipts)),
        state_hash,
        gas_used,
    };
    (
        Built {
            block: Block {
                header,
                transactions: included,
            },
            receipts,
            states,
            reverts,
        },
        refused,
    )
}

/// The genesis block: the deployment of the contract by `deployer`.
fn genesis(
    store: &BlockStore,
    config: &ChainConfig,
    deployer: &PrivateKeySigner,
) -> Result<(Head, Address)> {
    let raw = sign_tx(
        deployer,
        config.chain_id,
        0,
        None,
        contract::creation_code(),
    )?;
    let tx = exec::check_tx(&raw, config.chain_id)?;
    // Block 0 has no parent: build it as the child of a virtual block -1, on empty state.
    let pre = Head::before_genesis();
    let (built, refused) = build_block(
        &StateDb::default(),
        config.chain_id,
        &pre,
        ehr_primitives::unix_now(),
        vec![(raw, tx)],
    );
    if let Some((_, e)) = refused.into_iter().next() {
        return Err(e);
    }
    let contract = deployed_contract(&built.receipts)
        .ok_or_else(|| Error::Evm("deploying the contract failed".into()))?;
    store.append(&built.block, &built.receipts, &built.states)?;
    Ok((Head::of(&built.block.header), contract))
}

/// The producer loop: one block per batch of waiting transactions.
fn produce_blocks(shared: &Shared, rx: mpsc::Receiver<Submission>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < shared.config.max_block_transactions {
            match rx.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        produce_one(shared, batch);
    }
}

fn produce_one(shared: &Shared, batch: Vec<Submission>) {
    let chain_id = shared.config.chain_id;
    // Signature, encoding and chain id were checked by the submitter.
    let (txs, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|s| ((s.raw, s.tx), s.reply)).unzip();
    if txs.is_empty() {
        return;
    }
    let timestamp = shared.pending_timestamp();
    // Only this thread writes: the newest snapshot is the state after the head.
    let state = match shared.state() {
        Ok(s) => s,
        Err(e) => {
            let msg = e.to_string();
            for r in replies {
                let _ = r.send(Err(Error::Store(msg.clone())));
            }
            return;
        }
    };
    let (built, refused) = {
        let head = shared.head.read().expect("head lock");
        build_block(&*state, chain_id, &head, timestamp, txs)
    };
    drop(state);
    // Answer the refused (nonce, funds) and keep the others' reply channels in order.
    let mut replies: Vec<_> = replies.into_iter().map(Some).collect();
    for (i, e) in refused {
        if let Some(r) = replies[i].take() {
            let _ = r.send(Err(e));
        }
    }
    let replies: Vec<_> = replies.into_iter().flatten().collect();
    if built.block.transactions.is_empty() {
        return;
    }
    // Durable first (one fsync for the whole block), then visible, then acknowledged.
    if let Err(e) = shared
        .store
        .append(&built.block, &built.receipts, &built.states)
    {
        let msg = e.to_string();
        for r in replies {
            let _ = r.send(Err(Error::Store(msg.clone())));
        }
        return;
    }
    // Readers move to the new state (a failure here leaves them to make one on first use).
    *shared.snapshot.write().expect("snapshot lock") = shared
        .store
        .state()
        .ok()
        .map(|v| Arc::new(Snapshot::new(v)));
    *shared.head.write().expect("head lock") = Head::of(&built.block.header);
    let number = built.block.header.number;
    for ((reply, receipt), revert) in replies.into_iter().zip(built.receipts).zip(built.reverts) {
        let _ = reply.send(Ok(Mined {
            receipt: TxReceipt {
                tx_hash: receipt.tx_hash,
                block_number: number,
                gas_used: receipt.gas_used,
                logs: receipt.logs,
            },
            revert,
        }));
    }
}
