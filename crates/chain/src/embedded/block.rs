//! Blocks and receipts of the embedded chain, and their canonical byte encoding.
//!
//! The encoding is fixed-width where it can be and length-prefixed elsewhere, so a hash over
//! it is canonical and a truncated or altered record fails to decode instead of loading half.

use alloy::primitives::{Address, B256, Bytes, Log, LogData, keccak256};

use crate::error::{Error, Result};

/// A block header: hash-linked to its parent, committing to transactions, receipts and state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Hash of the parent header (zero for block 0).
    pub parent_hash: B256,
    /// Height, from 0.
    pub number: u64,
    /// Unix seconds; never decreases.
    pub timestamp: u64,
    /// keccak256 over the transaction hashes in order.
    pub transactions_root: B256,
    /// keccak256 over the encoded receipts in order.
    pub receipts_root: B256,
    /// keccak256(parent state hash ‖ hash of this block's state changes): commits to the
    /// whole state history, so re-execution must reproduce it exactly.
    pub state_hash: B256,
    /// Gas used by all transactions.
    pub gas_used: u64,
}

/// The encoded size of a header.
const HEADER_LEN: usize = 32 + 8 + 8 + 32 + 32 + 32 + 8;

impl Header {
    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(self.parent_hash.as_slice());
        out.extend_from_slice(&self.number.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(self.transactions_root.as_slice());
        out.extend_from_slice(self.receipts_root.as_slice());
        out.extend_from_slice(self.state_hash.as_slice());
        out.extend_from_slice(&self.gas_used.to_be_bytes());
        out
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            parent_hash: r.b256()?,
            number: r.u64()?,
            timestamp: r.u64()?,
            transactions_root: r.b256()?,
            receipts_root: r.b256()?,
            state_hash: r.b256()?,
            gas_used: r.u64()?,
        })
    }

    /// Decodes header bytes ([`encode`](Self::encode)), refusing truncated or trailing bytes.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader(bytes);
        let h = Self::decode(&mut r)?;
        r.finish()?;
        Ok(h)
    }

    /// The block hash: keccak256 of the canonical header bytes.
    pub fn hash(&self) -> B256 {
        keccak256(self.encode())
    }
}

/// A block: header plus EIP-2718 encoded signed transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// Signed transactions, as sent (`eth_sendRawTransaction` bytes).
    pub transactions: Vec<Bytes>,
}

impl Block {
    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.header.encode();
        put_u32(&mut out, self.transactions.len());
        for tx in &self.transactions {
            put_bytes(&mut out, tx);
        }
        out
    }

    /// Decodes a block, refusing truncated or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader(bytes);
        let header = Header::decode(&mut r)?;
        let n = r.u32()?;
        let mut transactions = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            transactions.push(Bytes::copy_from_slice(r.bytes()?));
        }
        r.finish()?;
        Ok(Self {
            header,
            transactions,
        })
    }
}

/// keccak256 over the transaction hashes, in order.
pub fn transactions_root(tx_hashes: &[B256]) -> B256 {
    let mut buf = Vec::with_capacity(32 * tx_hashes.len());
    for h in tx_hashes {
        buf.extend_from_slice(h.as_slice());
    }
    keccak256(buf)
}

/// What a mined transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction hash.
    pub tx_hash: B256,
    /// The sender, recovered from the signature.
    pub from: Address,
    /// Whether execution succeeded (a reverted transaction is mined with `false`).
    pub success: bool,
    /// Gas used, 21,000 base included.
    pub gas_used: u64,
    /// Logs emitted (none when reverted).
    pub logs: Vec<Log>,
    /// Address of a contract this transaction created.
    pub contract_address: Option<Address>,
}

impl Receipt {
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.tx_hash.as_slice());
        out.extend_from_slice(self.from.as_slice());
        out.push(self.success as u8);
        out.extend_from_slice(&self.gas_used.to_be_bytes());
        match self.contract_address {
            Some(a) => {
                out.push(1);
                out.extend_from_slice(a.as_slice());
            }
            None => out.push(0),
        }
        put_u32(out, self.logs.len());
        for log in &self.logs {
            out.extend_from_slice(log.address.as_slice());
            out.push(log.topics().len() as u8);
            for t in log.topics() {
                out.extend_from_slice(t.as_slice());
            }
            put_bytes(out, &log.data.data);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let tx_hash = r.b256()?;
        let from = Address::from_slice(r.take(20)?);
        let success = r.flag()?;
        let gas_used = r.u64()?;
        let contract_address = if r.flag()? {
            Some(Address::from_slice(r.take(20)?))
        } else {
            None
        };
        let n = r.u32()?;
        let mut logs = Vec::with_capacity(n.min(1 << 12));
        for _ in 0..n {
            let address = Address::from_slice(r.take(20)?);
            let nt = r.take(1)?[0];
            let mut topics = Vec::with_capacity(nt as usize);
            for _ in 0..nt {
                topics.push(r.b256()?);
            }
            let data = Bytes::copy_from_slice(r.bytes()?);
            let data = LogData::new(topics, data)
                .ok_or_else(|| corrupt("a log has more than 4 topics"))?;
            logs.push(Log { address, data });
        }
        Ok(Self {
            tx_hash,
            from,
            success,
            gas_used,
            logs,
            contract_address,
        })
    }
}

/// Canonical bytes of a block's receipts.
pub fn encode_receipts(receipts: &[Receipt]) -> Vec<u8> {
    let mut out = Vec::new();
    put_u32(&mut out, receipts.len());
    for r in receipts {
        r.encode_into(&mut out);
    }
    out
}

/// Decodes a block's receipts, refusing truncated or trailing bytes.
pub fn decode_receipts(bytes: &[u8]) -> Result<Vec<Receipt>> {
    let mut r = Reader(bytes);
    let n = r.u32()?;
    let mut out = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        out.push(Receipt::decode(&mut r)?);
    }
    r.finish()?;
    Ok(out)
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(
        &u32::try_from(n)
            .expect("fewer than 2^32 items")
            .to_be_bytes(),
    );
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len());
    out.extend_from_slice(b);
}

fn corrupt(what: &str) -> Error {
    Error::Corrupt(what.to_string())
}

/// A cursor that fails on truncation instead of panicking.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(corrupt("record is truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u32(&mut self) -> Result<usize> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize)
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn b256(&mut self) -> Result<B256> {
        Ok(B256::from_slice(self.take(32)?))
    }
    fn flag(&mut self) -> Result<bool> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt("a flag byte is neither 0 nor 1")),
        }
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()?;
        self.take(n)
    }
    fn finish(&self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(corrupt("record has trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Block, Vec<Receipt>) {
        let header = Header {
            parent_hash: B256::repeat_byte(1),
            number: 7,
            timestamp: 1_700_000_000,
            transactions_root: B256::repeat_byte(2),
            receipts_root: B256::repeat_byte(3),
            state_hash: B256::repeat_byte(4),
            gas_used: 54_321,
        };
        let block = Block {
            header,
            transactions: vec![Bytes::from_static(b"\x02abc"), Bytes::new()],
        };
        let log = Log {
            address: Address::repeat_byte(9),
            data: LogData::new(
                vec![B256::repeat_byte(5), B256::repeat_byte(6)],
                Bytes::from_static(b"data"),
            )
            .unwrap(),
        };
        let receipts = vec![Receipt {
            tx_hash: B256::repeat_byte(8),
            from: Address::repeat_byte(7),
            success: true,
            gas_used: 21_000,
            logs: vec![log],
            contract_address: Some(Address::repeat_byte(3)),
        }];
        (block, receipts)
    }

    #[test]
    fn round_trip() {
        let (block, receipts) = sample();
        assert_eq!(Block::decode(&block.encode()).unwrap(), block);
        assert_eq!(
            decode_receipts(&encode_receipts(&receipts)).unwrap(),
            receipts
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let (block, receipts) = sample();
        let b = block.encode();
        for n in 0..b.len() {
            assert!(
                matches!(Block::decode(&b[..n]), Err(Error::Corrupt(_))),
                "block cut at {n}"
            );
        }
        let r = encode_receipts(&receipts);
        for n in 0..r.len() {
            assert!(
                matches!(decode_receipts(&r[..n]), Err(Error::Corrupt(_))),
                "receipts cut at {n}"
            );
        }
        let mut long = b.clone();
        long.push(0);
        assert!(matches!(Block::decode(&long), Err(Error::Corrupt(_))));
    }

    #[test]
    fn hash_covers_every_field() {
        let (block, _) = sample();
        let h = block.header.hash();
        let mut bytes = block.header.encode();
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            assert_ne!(keccak256(&bytes), h, "byte {i}");
            bytes[i] ^= 1;
        }
    }
}
