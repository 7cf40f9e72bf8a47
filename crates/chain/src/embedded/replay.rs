//! Checking a stored chain: what opening checks instead of a replay (the stored state is
//! after the head block), and the full re-walk from genesis that `verify` and a migration run.

use super::*;

/// The stored state must be after the head block `last`: its number and hash.
pub(super) fn check_after(last: u64, head_hash: B256, (number, hash): (u64, B256)) -> Result<()> {
    if (number, hash) != (last, head_hash) {
        return Err(Error::Tampered {
            block: last,
            reason: format!(
                "the stored state is the state after block {number} ({hash}), not after the \
                 head block {last} ({head_hash})"
            ),
        });
    }
    Ok(())
}

/// What opening checks instead of a replay: the stored state is after the head block, the
/// head block's transactions and receipts match its header, and genesis deployed the
/// contract. Returns the head and the contract.
pub(super) fn check_head(
    store: &BlockStore,
    last: u64,
    after: (u64, B256),
) -> Result<(Head, Address)> {
    let bad = |block: u64, reason: String| Error::Tampered { block, reason };
    let load = |n: u64| match store.load(n) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(bad(n, "the block is missing".into())),
        Err(Error::Corrupt(why)) => Err(bad(n, format!("undecodable: {why}"))),
        Err(e) => Err(e),
    };
    let (block, receipts) = load(last)?;
    let h = &block.header;
    if h.number != last {
        return Err(bad(last, format!("header says number {}", h.number)));
    }
    check_after(last, h.hash(), after)?;
    let hashes: Vec<B256> = block
        .transactions
        .iter()
        .map(alloy::primitives::keccak256)
        .collect();
    if block::transactions_root(&hashes) != h.transactions_root {
        return Err(bad(
            last,
            "transactions root does not match the transactions".into(),
        ));
    }
    if alloy::primitives::keccak256(block::encode_receipts(&receipts)) != h.receipts_root {
        return Err(bad(
            last,
            "stored receipts differ from those the header commits to".into(),
        ));
    }
    let genesis = if last == 0 { receipts } else { load(0)?.1 };
    let contract = deployed_contract(&genesis)
        .ok_or_else(|| bad(0, "genesis does not deploy the contract".into()))?;
    Ok((Head::of(h), contract))
}

pub(super) struct Loaded {
    pub(super) state: StateDb,
    pub(super) head: Head,
    pub(super) contract: Address,
    pub(super) report: VerifyReport,
}

/// Re-walks every stored block, re-executing it on an in-memory state; `None` for an empty
/// store. With `indexes`, every block's index entries are checked in that snapshot too.
pub(super) fn replay(
    store: &BlockStore,
    chain_id: u64,
    indexes: Option<&redb::ReadTransaction>,
    bodies: Option<&dyn BodySource>,
) -> Result<Option<Loaded>> {
    let Some(last) = store.last_number()? else {
        return Ok(None);
    };
    let mut state = StateDb::default();
    let mut log_entries = 0u64;
    let mut parent = Head::before_genesis();
    let mut contract = Address::ZERO;
    let mut transactions = 0u64;
    for n in 0..=last {
        let bad = |reason: String| Error::Tampered { block: n, reason };
        let loaded = match indexes {
            Some(r) => store::load_in(r, n),
            None => store.load(n),
        };
        let loaded = match (loaded, bodies) {
            (Err(Error::Pruned { .. }), Some(source)) => {
                let (b, r) = checked_body(store, source, n)?;
                Block::decode(&b).and_then(|b| Ok(Some((b, block::decode_receipts(&r)?))))
            }
            (other, _) => other,
        };
        let (block, stored_receipts) = match loaded {
            Ok(Some(b)) => b,
            Ok(None) => return Err(bad("the block is missing".into())),
            Err(Error::Corrupt(why)) => return Err(bad(format!("undecodable: {why}"))),
            Err(e) => return Err(e),
        };
        let h = &block.header;
        if h.number != n {
            return Err(bad(format!("header says number {}", h.number)));
        }
        if h.parent_hash != parent.hash {
            return Err(bad(format!(
                "parent hash {} does not match block {}'s hash {}",
                h.parent_hash,
                n.wrapping_sub(1),
                parent.hash
            )));
        }
        if n > 0 && h.timestamp < parent.timestamp {
            return Err(bad("timestamp goes back in time".into()));
        }
        let mut txs = Vec::with_capacity(block.transactions.len());
        for (i, raw) in block.transactions.iter().enumerate() {
            let tx =
                exec::check_tx(raw, chain_id).map_err(|e| bad(format!("transaction {i}: {e}")))?;
            txs.push((raw.clone(), tx));
        }
        let count = txs.len();
        let (built, refused) = build_block(&state, chain_id, &parent, h.timestamp, txs);
        if let Some((i, e)) = refused.into_iter().next() {
            return Err(bad(format!("transaction {i} does not execute: {e}")));
        }
        if built.block.header.transactions_root != h.transactions_root {
            return Err(bad(
                "transactions root does not match the transactions".into()
            ));
        }
        if built.block.header.receipts_root != h.receipts_root {
            return Err(bad(
                "re-execution gives different receipts than the header commits to".into(),
            ));
        }
        if built.block.header.state_hash != h.state_hash {
            return Err(bad(
                "re-execution gives a different state than the header commits to".into(),
            ));
        }
        if built.block.header.gas_used != h.gas_used {
            return Err(bad("re-execution uses a different amount of gas".into()));
        }
        if stored_receipts != built.receipts {
            return Err(bad("stored receipts differ from re-execution".into()));
        }
        if n == 0 {
            contract = deployed_contract(&built.receipts)
                .ok_or_else(|| bad("genesis does not deploy the contract".into()))?;
        }
        for s in built.states {
            state.commit(s);
        }
        if let Some(r) = indexes {
            if let Some(diff) = index::check_block(r, &block, &built.receipts)? {
                return Err(bad(diff));
            }
            log_entries += index::log_count(&block, &built.receipts);
        }
        transactions += count as u64;
        parent = Head::of(h);
    }
    if let Some(r) = indexes {
        let counts = index::counts(r)?;
        if counts != (last + 1, transactions, log_entries, log_entries) {
            return Err(Error::Tampered {
                block: last,
                reason: format!(
                    "the indexes hold {} blocks, {} transactions, {} logs ({} by event); the \
                     blocks have {}, {}, {}",
                    counts.0,
                    counts.1,
                    counts.2,
                    counts.3,
                    last + 1,
                    transactions,
                    log_entries
                ),
            });
        }
    }
    let report = VerifyReport {
        blocks: last + 1,
        transactions,
        head_hash: parent.hash,
    };
    Ok(Some(Loaded {
        state,
        head: parent,
        contract,
        report,
    }))
}
