//! CAR v1 (Content Addressable aRchive): `export` walks a DAG into a CAR, `import` reads
//! one back, verifying every block before storing any — a truncated or corrupt CAR imports
//! nothing. The header is the tiny dag-cbor map `{roots: [CID…], version: 1}`, encoded and
//! parsed by hand; sections are varint(len) ‖ CID ‖ bytes.

use std::collections::HashSet;

use cid::Cid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::cids::{DAG_PB, check_supported, verify};
use crate::pb::{self, put_varint};
use crate::{BlobStore, Error, Result};

/// Largest section accepted (Kubo refuses blocks over 2 MiB; headroom for other writers).
pub const MAX_SECTION: u64 = 16 << 20;

/// dag-cbor tag for CIDs.
const CID_TAG: u8 = 42;

fn cbor_head(buf: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => buf.push(m | n as u8),
        24..=0xff => buf.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            buf.push(m | 25);
            buf.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            buf.push(m | 26);
            buf.extend((n as u32).to_be_bytes());
        }
        _ => {
            buf.push(m | 27);
            buf.extend(n.to_be_bytes());
        }
    }
}

/// The dag-cbor CAR v1 header for `roots` (keys in dag-cbor order: "roots" < "version").
pub fn encode_header(roots: &[Cid]) -> Vec<u8> {
    let mut h = Vec::new();
    cbor_head(&mut h, 5, 2);
    cbor_head(&mut h, 3, 5);
    h.extend(b"roots");
    cbor_head(&mut h, 4, roots.len() as u64);
    for r in roots {
        let bytes = r.to_bytes();
        h.extend([0xd8, CID_TAG]);
        cbor_head(&mut h, 2, bytes.len() as u64 + 1);
        h.push(0); // multibase identity prefix, as dag-cbor requires
        h.extend(bytes);
    }
    cbor_head(&mut h, 3, 7);
    h.extend(b"version");
    cbor_head(&mut h, 0, 1);
    h
}

/// Reads one CBOR head: (major type, argument).
fn take_head(buf: &mut &[u8]) -> Result<(u8, u64)> {
    let short = || Error::Car("truncated header".into());
    let (&b, rest) = buf.split_first().ok_or_else(short)?;
    *buf = rest;
    let (major, info) = (b >> 5, b & 31);
    let len = match info {
        0..=23 => return Ok((major, u64::from(info))),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => {
            return Err(Error::Car(format!(
                "unsupported CBOR item 0x{b:02x} in header"
            )));
        }
    };
    if buf.len() < len {
        return Err(short());
    }
    let (n, rest) = buf.split_at(len);
    *buf = rest;
    Ok((
        major,
        n.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
    ))
}

fn take_text<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8]> {
    match take_head(buf)? {
        (3 | 2, n) if (n as usize) <= buf.len() => {
            let (s, rest) = buf.split_at(n as usize);
            *buf = rest;
            Ok(s)
        }
        _ => Err(Error::Car("malformed header".into())),
    }
}

/// Parses a CAR v1 header, returning its roots.
pub fn decode_header(mut buf: &[u8]) -> Result<Vec<Cid>> {
    let bad = |m: &str| Error::Car(m.to_string());
    let (major, entries) = take_head(&mut buf)?;
    if major != 5 {
        return Err(bad("header is not a map"));
    }
    let (mut roots, mut version) = (None, None);
    for _ in 0..entries {
        match take_text(&mut buf)? {
            b"version" => match take_head(&mut buf)? {
                (0, v) => version = Some(v),
                _ => return Err(bad("version is not an integer")),
            },
            b"roots" => {
                let (major, n) = take_head(&mut buf)?;
                if major != 4 {
                    return Err(bad("roots is not an array"));
                }
                let mut list = Vec::new();
                for _ in 0..n {
                    if take_head(&mut buf)? != (6, u64::from(CID_TAG)) {
                        return Err(bad("root is not a CID (tag 42)"));
                    }
                    let bytes = take_text(&mut buf)?;
                    let cid = match bytes.split_first() {
                        Some((0, cid)) => {
                            Cid::try_from(cid).map_err(|e| Error::Car(format!("root CID: {e}")))?
                        }
                        _ => return Err(bad("root CID lacks the 0x00 prefix")),
                    };
                    list.push(cid);
                }
                roots = Some(list);
            }
            k => {
                return Err(Error::Car(format!(
                    "unexpected header key {:?}",
                    String::from_utf8_lossy(k)
                )));
            }
        }
    }
    match version {
        Some(1) => {}
        Some(v) => {
            return Err(Error::Car(format!(
                "CAR version {v} is not supported (only 1)"
            )));
        }
        None => return Err(bad("header has no version")),
    }
    if !buf.is_empty() {
        return Err(bad("trailing bytes in header"));
    }
    roots.ok_or_else(|| bad("header has no roots"))
}

async fn write_section<W: AsyncWrite + Unpin>(out: &mut W, parts: &[&[u8]]) -> Result<()> {
    let mut len = Vec::with_capacity(10);
    put_varint(&mut len, parts.iter().map(|p| p.len() as u64).sum());
    out.write_all(&len).await?;
    for p in parts {
        out.write_all(p).await?;
    }
    Ok(())
}

/// Writes the DAG under `root` as a CAR v1 with that one root: blocks in depth-first
/// pre-order (as `ipfs dag export`), each once. dag-pb links are followed; raw and other
/// blocks are leaves. Returns the number of blocks written.
pub async fn export<W: AsyncWrite + Unpin>(
    store: &dyn BlobStore,
    root: &Cid,
    out: &mut W,
) -> Result<u64> {
    write_section(out, &[&encode_header(&[*root])]).await?;
    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    let mut count = 0;
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let block = store.get(&cid).await?;
        if cid.codec() == DAG_PB {
            let node = pb::decode_node(&block).map_err(|reason| Error::Malformed {
                cid: Box::new(cid),
                what: "dag-pb",
                reason,
            })?;
            stack.extend(node.links.iter().rev());
        }
        write_section(out, &[&cid.to_bytes(), &block]).await?;
        count += 1;
    }
    out.flush().await?;
    Ok(count)
}

/// Reads a varint; `Ok(None)` at a clean end of input.
async fn read_varint<R: AsyncRead + Unpin>(input: &mut R) -> Result<Option<u64>> {
    let mut v = 0u64;
    for i in 0..10 {
        let mut b = [0u8];
        if input.read(&mut b).await? == 0 {
            return if i == 0 {
                Ok(None)
            } else {
                Err(Error::Car("truncated section length".into()))
            };
        }
        v |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok(Some(v));
        }
    }
    Err(Error::Car("section length varint too long".into()))
}

async fn read_exact_car<R: AsyncRead + Unpin>(input: &mut R, len: u64) -> Result<Vec<u8>> {
    if len > MAX_SECTION {
        return Err(Error::Car(format!(
            "section of {len} bytes exceeds the {MAX_SECTION}-byte limit"
        )));
    }
    let mut buf = vec![0u8; len as usize];
    input
        .read_exact(&mut buf)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Error::Car("truncated section".into()),
            _ => Error::Stream(e),
        })?;
    Ok(buf)
}

/// Reads a whole CAR v1 and verifies every block against its CID; returns the roots and
/// the blocks, in file order. Nothing is stored.
pub async fn read<R: AsyncRead + Unpin>(input: &mut R) -> Result<(Vec<Cid>, Vec<(Cid, Vec<u8>)>)> {
    let header_len = read_varint(input)
        .await?
        .ok_or_else(|| Error::Car("empty input".into()))?;
    let roots = decode_header(&read_exact_car(input, header_len).await?)?;
    let mut blocks = Vec::new();
    while let Some(len) = read_varint(input).await? {
        let section = read_exact_car(input, len).await?;
        let mut cursor = std::io::Cursor::new(&section[..]);
        let cid = Cid::read_bytes(&mut cursor)
            .map_err(|e| Error::Car(format!("section {}: bad CID: {e}", blocks.len())))?;
        let data = section[cursor.position() as usize..].to_vec();
        check_supported(&cid)?;
        verify(&cid, &data, Some(&"CAR section"))?;
        blocks.push((cid, data));
    }
    Ok((roots, blocks))
}

/// Imports a CAR v1 into `store`: all blocks are read and verified first, then stored, so a
/// truncated or corrupt CAR leaves the store untouched. Returns the header's roots.
pub async fn import<R: AsyncRead + Unpin>(
    input: &mut R,
    store: &dyn BlobStore,
) -> Result<Vec<Cid>> {
    let (roots, blocks) = read(input).await?;
    for (cid, data) in &blocks {
        store.put_block(cid, data).await?;
    }
    Ok(roots)
}
