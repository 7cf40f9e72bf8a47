//! What the chain is asked about a transaction after it was handed over: [`SentTx`] and
//! its [`TxStatus`].

use alloy::primitives::{Address, B256};

/// A signed transaction handed to the chain: enough to ask later whether it landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SentTx {
    /// The transaction hash.
    pub hash: B256,
    /// The sender.
    pub from: Address,
    /// The sender's nonce it uses.
    pub nonce: u64,
}

/// What the chain says about a [`SentTx`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// Mined in `block_number`; `success` is false if it reverted.
    Mined {
        /// The block.
        block_number: u64,
        /// Whether it ran without reverting.
        success: bool,
    },
    /// Not mined, and it still may be.
    Pending,
    /// Provably never going to be mined: the sender's nonce moved past it (another
    /// transaction took it), or the chain cannot hold it any more (the embedded chain after
    /// a restart).
    Dropped,
}
