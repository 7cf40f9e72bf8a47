//! Bindings for the EhrRegistry contract, generated from the committed solc artifact.

use std::sync::LazyLock;

use alloy::primitives::Bytes;

#[allow(missing_docs)]
mod bindings {
    alloy::sol!(
        #[derive(Debug, PartialEq, Eq)]
        EhrRegistry,
        "../../contracts/out/EhrRegistry.json"
    );
}

pub use bindings::EhrRegistry;
pub use bindings::EhrRegistry::EhrRegistryErrors;

/// The solc artifact (`{abi, bytecode, deployedBytecode}`), embedded at build time.
pub const ARTIFACT_JSON: &str = include_str!("../../../contracts/out/EhrRegistry.json");

static CREATION_CODE: LazyLock<Bytes> = LazyLock::new(|| {
    #[derive(serde::Deserialize)]
    struct Artifact {
        bytecode: Bytes,
    }
    serde_json::from_str::<Artifact>(ARTIFACT_JSON)
        .expect("the committed artifact has a bytecode field")
        .bytecode
});

/// The contract's creation code (constructor + runtime), as sent in a deployment transaction.
pub fn creation_code() -> Bytes {
    CREATION_CODE.clone()
}

/// The multicodec of a CIDv1 manifest block, as stored with each record version.
pub mod codec {
    /// `raw` (0x55): the block is opaque bytes.
    pub const RAW: u64 = 0x55;
    /// `dag-pb` (0x70): a UnixFS node.
    pub const DAG_PB: u64 = 0x70;
    /// `dag-cbor` (0x71).
    pub const DAG_CBOR: u64 = 0x71;
    /// `dag-json` (0x0129).
    pub const DAG_JSON: u64 = 0x0129;
}
