//! The few DAG-CBOR items the record manifest is made of, written and read strictly.
//!
//! DAG-CBOR (multicodec 0x71) is CBOR with one encoding per value: integers and lengths in
//! their shortest form, definite lengths only, map keys text strings in length-then-bytewise
//! order, links as tag 42 around a byte string `0x00 ‖ CID`. The manifest's shape is fixed, so
//! instead of a general codec this module has a writer that only produces that form and a
//! reader that accepts nothing else: a non-shortest integer, an indefinite length, another
//! major type, a float or a simple value is refused where it stands.

use ehr_store::Cid;

/// CBOR major types used here.
pub(crate) const UINT: u8 = 0;
pub(crate) const BYTES: u8 = 2;
pub(crate) const TEXT: u8 = 3;
pub(crate) const ARRAY: u8 = 4;
pub(crate) const MAP: u8 = 5;
const TAG: u8 = 6;
/// The tag DAG-CBOR links carry.
const CID_TAG: u64 = 42;

/// A DAG-CBOR writer.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    /// A head: major type and argument, in the shortest form.
    pub(crate) fn head(&mut self, major: u8, n: u64) {
        let m = major << 5;
        match n {
            0..=23 => self.buf.push(m | n as u8),
            24..=0xff => self.buf.extend([m | 24, n as u8]),
            0x100..=0xffff => {
                self.buf.push(m | 25);
                self.buf.extend((n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.buf.push(m | 26);
                self.buf.extend((n as u32).to_be_bytes());
            }
            _ => {
                self.buf.push(m | 27);
                self.buf.extend(n.to_be_bytes());
            }
        }
    }

    pub(crate) fn uint(&mut self, n: u64) {
        self.head(UINT, n);
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.head(BYTES, b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn text(&mut self, s: &str) {
        self.head(TEXT, s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn link(&mut self, cid: &Cid) {
        let bytes = cid.to_bytes();
        self.head(TAG, CID_TAG);
        self.head(BYTES, bytes.len() as u64 + 1);
        self.buf.push(0); // the multibase "identity" prefix DAG-CBOR links carry
        self.buf.extend(bytes);
    }
}

/// Why a block is not what the reader expects (no input is echoed back).
pub(crate) type Refusal = String;

/// A strict DAG-CBOR reader over one block.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Nothing may follow the top-level item.
    pub(crate) fn finish(&self) -> Result<(), Refusal> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(format!("{} bytes after the manifest", self.buf.len()))
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Refusal> {
        if self.buf.len() < n {
            return Err("truncated".into());
        }
        let (a, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(a)
    }

    /// A head of major type `major`; its argument, which must be in the shortest form.
    pub(crate) fn head(&mut self, major: u8, what: &str) -> Result<u64, Refusal> {
        let b = self.take(1)?[0];
        let (got, info) = (b >> 5, b & 31);
        if got != major {
            return Err(format!("{what}: CBOR major type {got}, expected {major}"));
        }
        let (len, min) = match info {
            0..=23 => return Ok(u64::from(info)),
            24 => (1, 24),
            25 => (2, 0x100),
            26 => (4, 0x1_0000),
            27 => (8, 0x1_0000_0000),
            31 => return Err(format!("{what}: indefinite length (not DAG-CBOR)")),
            _ => return Err(format!("{what}: reserved CBOR head 0x{b:02x}")),
        };
        let n = self
            .take(len)?
            .iter()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
        if n < min {
            return Err(format!("{what}: integer not in its shortest form"));
        }
        Ok(n)
    }

    pub(crate) fn uint(&mut self, what: &str) -> Result<u64, Refusal> {
        self.head(UINT, what)
    }

    pub(crate) fn bytes(&mut self, what: &str) -> Result<&'a [u8], Refusal> {
        let n = self.head(BYTES, what)?;
        self.take(usize::try_from(n).map_err(|_| format!("{what}: too long"))?)
    }

    /// A byte string of exactly `N` bytes.
    pub(crate) fn array_of<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Refusal> {
        self.bytes(what)?
            .try_into()
            .map_err(|_| format!("{what}: not {N} bytes"))
    }

    pub(crate) fn text(&mut self, what: &str) -> Result<&'a str, Refusal> {
        let n = self.head(TEXT, what)?;
        let b = self.take(usize::try_from(n).map_err(|_| format!("{what}: too long"))?)?;
        std::str::from_utf8(b).map_err(|_| format!("{what}: not UTF-8"))
    }

    /// The next map key, which must be `key` (the caller asks for keys in DAG-CBOR order,
    /// so a missing, unknown, duplicate or misplaced key is refused here).
    pub(crate) fn key(&mut self, key: &str) -> Result<(), Refusal> {
        let got = self.text("map key")?;
        if got != key {
            return Err(format!("expected key {key:?}, found {got:?}"));
        }
        Ok(())
    }

    pub(crate) fn link(&mut self, what: &str) -> Result<Cid, Refusal> {
        if self.head(TAG, what)? != CID_TAG {
            return Err(format!("{what}: not a link (tag 42)"));
        }
        match self.bytes(what)?.split_first() {
            Some((0, cid)) => {
                let parsed = Cid::try_from(cid).map_err(|e| format!("{what}: {e}"))?;
                // `Cid::try_from` ignores bytes after the CID: a link is exactly one CID.
                if parsed.to_bytes() != cid {
                    return Err(format!("{what}: bytes after the CID"));
                }
                Ok(parsed)
            }
            _ => Err(format!("{what}: link without the 0x00 prefix")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_shortest_and_read_back() {
        for n in [
            0u64,
            23,
            24,
            255,
            256,
            65_535,
            65_536,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut w = Writer::default();
            w.uint(n);
            let mut r = Reader::new(&w.buf);
            assert_eq!(r.uint("n").unwrap(), n);
            r.finish().unwrap();
        }
        // 5 written in one extra byte is valid CBOR but not DAG-CBOR.
        assert!(
            Reader::new(&[0x18, 5])
                .uint("n")
                .unwrap_err()
                .contains("shortest")
        );
        assert!(
            Reader::new(&[0x19, 0, 200])
                .uint("n")
                .unwrap_err()
                .contains("shortest")
        );
        assert!(
            Reader::new(&[0x5f, 0x41, 0, 0xff])
                .bytes("b")
                .unwrap_err()
                .contains("indefinite")
        );
        assert!(
            Reader::new(&[0x41])
                .bytes("b")
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            Reader::new(&[0x61, 0xff])
                .text("t")
                .unwrap_err()
                .contains("UTF-8")
        );
        // A float where an integer belongs.
        assert!(
            Reader::new(&[0xf9, 0, 0])
                .uint("n")
                .unwrap_err()
                .contains("major")
        );
    }

    #[test]
    fn links_are_exact() {
        let cid = ehr_store::raw_cid(b"x");
        let mut w = Writer::default();
        w.link(&cid);
        assert_eq!(Reader::new(&w.buf).link("l").unwrap(), cid);
        // The same CID with a byte appended inside the link's byte string.
        let mut bad = Writer::default();
        let mut bytes = vec![0];
        bytes.extend(cid.to_bytes());
        bytes.push(7);
        bad.head(6, 42);
        bad.bytes(&bytes);
        assert!(
            Reader::new(&bad.buf)
                .link("l")
                .unwrap_err()
                .contains("after")
        );
        // Another tag.
        let mut other = Writer::default();
        other.head(6, 43);
        assert!(
            Reader::new(&other.buf)
                .link("l")
                .unwrap_err()
                .contains("tag 42")
        );
    }
}
