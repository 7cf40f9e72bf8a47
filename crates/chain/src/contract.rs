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

static RUNTIME_CODE: LazyLock<Bytes> = LazyLock::new(|| {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Artifact {
        deployed_bytecode: Bytes,
    }
    serde_json::from_str::<Artifact>(ARTIFACT_JSON)
        .expect("the committed artifact has a deployedBytecode field")
        .deployed_bytecode
});

/// The contract's creation code (constructor + runtime), as sent in a deployment transaction.
pub fn creation_code() -> Bytes {
    CREATION_CODE.clone()
}

/// The contract's runtime code: what a deployment of this version leaves at its address
/// (no immutables, no metadata hash, so it is the same on every chain).
pub fn runtime_code() -> &'static Bytes {
    &RUNTIME_CODE
}

/// [`Error::WrongContract`](crate::Error::WrongContract) unless `code` (what the chain
/// holds at `contract`) is this version's runtime code.
pub fn check_code(contract: alloy::primitives::Address, code: &[u8]) -> crate::Result<()> {
    if code == runtime_code().as_ref() {
        Ok(())
    } else {
        Err(crate::Error::WrongContract { contract })
    }
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
