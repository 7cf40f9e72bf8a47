//! The small part of protobuf that dag-pb and UnixFS need, written by hand: encoding file
//! nodes exactly as `ipfs add` does (field order, empty link names, non-packed blocksizes)
//! and decoding any dag-pb node to walk a DAG.

use cid::Cid;

/// UnixFS `Data.Type` of a file node.
pub const UNIXFS_FILE: u64 = 2;
/// UnixFS `Data.Type` of a raw node (old leaves).
pub const UNIXFS_RAW: u64 = 0;

/// Appends `v` as a protobuf varint (LEB128).
pub fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads a varint from the front of `buf`, advancing it. `None` if truncated or too long.
pub fn take_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn put_bytes_field(buf: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(buf, (field << 3) | 2);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

fn put_varint_field(buf: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(buf, field << 3);
    put_varint(buf, v);
}

/// A link of a file node: the child, its cumulative DAG size, and the file bytes under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLink {
    /// The child block.
    pub cid: Cid,
    /// `Tsize`: the child block plus everything below it, in bytes.
    pub tsize: u64,
    /// File bytes under the child (the parent's `blocksizes` entry).
    pub filesize: u64,
}

/// UnixFS `Data` of a file node without inline data: `Type=File`, `filesize`, `blocksizes`.
/// (Leaves with data are framed by [`leaf_frame`].)
fn unixfs_file(filesize: u64, blocksizes: &[u64]) -> Vec<u8> {
    let mut u = Vec::with_capacity(16 + 4 * blocksizes.len());
    put_varint_field(&mut u, 1, UNIXFS_FILE);
    put_varint_field(&mut u, 3, filesize);
    for &b in blocksizes {
        put_varint_field(&mut u, 4, b);
    }
    u
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// The bytes around the data of a dag-pb leaf of `len` file bytes: the leaf is
/// `prefix ‖ data ‖ suffix`. Lets the hash-only path hash a leaf without building it.
pub fn leaf_frame(len: usize) -> (Vec<u8>, Vec<u8>) {
    let len = len as u64;
    // UnixFS: Type=File, Data=<len bytes>, filesize=len.
    let unixfs_len = 2 + 1 + varint_len(len) as u64 + len + 1 + varint_len(len) as u64;
    let mut prefix = Vec::with_capacity(16);
    put_varint(&mut prefix, (1 << 3) | 2);
    put_varint(&mut prefix, unixfs_len);
    put_varint_field(&mut prefix, 1, UNIXFS_FILE);
    put_varint(&mut prefix, (2 << 3) | 2);
    put_varint(&mut prefix, len);
    let mut suffix = Vec::with_capacity(8);
    put_varint_field(&mut suffix, 3, len);
    (prefix, suffix)
}

/// A dag-pb leaf holding `data` (CIDv0 profile); `None` gives the empty file node.
pub fn encode_leaf(data: Option<&[u8]>) -> Vec<u8> {
    match data {
        Some(d) => {
            let (prefix, suffix) = leaf_frame(d.len());
            [&prefix[..], d, &suffix[..]].concat()
        }
        None => {
            let u = unixfs_file(0, &[]);
            let mut node = Vec::with_capacity(u.len() + 2);
            put_bytes_field(&mut node, 1, &u);
            node
        }
    }
}

/// An internal file node over `links` (dag-pb: links first, then data).
pub fn encode_file_node(links: &[FileLink]) -> Vec<u8> {
    let mut node = Vec::with_capacity(links.len() * 48 + 16);
    let mut link = Vec::with_capacity(48);
    for l in links {
        link.clear();
        put_bytes_field(&mut link, 1, &l.cid.to_bytes());
        put_bytes_field(&mut link, 2, b"");
        put_varint_field(&mut link, 3, l.tsize);
        put_bytes_field(&mut node, 2, &link);
    }
    let sizes: Vec<u64> = links.iter().map(|l| l.filesize).collect();
    let u = unixfs_file(sizes.iter().sum(), &sizes);
    put_bytes_field(&mut node, 1, &u);
    node
}

/// A decoded dag-pb node: its links (in order) and its `Data`.
#[derive(Debug, Default)]
pub struct PbNode<'a> {
    /// Child CIDs in link order.
    pub links: Vec<Cid>,
    /// The `Data` field, if present.
    pub data: Option<&'a [u8]>,
}

/// One protobuf field: number and value (varint or length-delimited bytes).
enum Field<'a> {
    Varint(u64, u64),
    Bytes(u64, &'a [u8]),
}

fn take_field<'a>(buf: &mut &'a [u8]) -> Result<Field<'a>, String> {
    let key = take_varint(buf).ok_or("truncated field key")?;
    let (field, wire) = (key >> 3, key & 7);
    match wire {
        0 => Ok(Field::Varint(
            field,
            take_varint(buf).ok_or("truncated varint")?,
        )),
        2 => {
            let len = take_varint(buf).ok_or("truncated length")?;
            let len = usize::try_from(len).map_err(|_| "length overflow")?;
            if len > buf.len() {
                return Err(format!("field {field}: length {len} past end"));
            }
            let (v, rest) = buf.split_at(len);
            *buf = rest;
            Ok(Field::Bytes(field, v))
        }
        1 if buf.len() >= 8 => {
            *buf = &buf[8..];
            Ok(Field::Varint(field, 0))
        }
        5 if buf.len() >= 4 => {
            *buf = &buf[4..];
            Ok(Field::Varint(field, 0))
        }
        _ => Err(format!(
            "field {field}: unsupported or truncated wire type {wire}"
        )),
    }
}

/// Decodes a dag-pb node.
pub fn decode_node(mut buf: &[u8]) -> Result<PbNode<'_>, String> {
    let mut node = PbNode::default();
    while !buf.is_empty() {
        match take_field(&mut buf)? {
            Field::Bytes(1, d) => node.data = Some(d),
            Field::Bytes(2, mut link) => {
                let mut hash = None;
                while !link.is_empty() {
                    if let Field::Bytes(1, h) = take_field(&mut link)? {
                        hash = Some(h);
                    }
                }
                let hash = hash.ok_or("link without Hash")?;
                let cid = Cid::try_from(hash).map_err(|e| format!("link Hash: {e}"))?;
                node.links.push(cid);
            }
            _ => return Err("unexpected field in PBNode".into()),
        }
    }
    Ok(node)
}

/// The parts of UnixFS `Data` that reading a file needs.
#[derive(Debug, Default)]
pub struct UnixFsData<'a> {
    /// `Type` (2 = file, 0 = raw, 1 = directory, …).
    pub kind: u64,
    /// Inline file bytes.
    pub data: Option<&'a [u8]>,
}

/// Decodes UnixFS `Data`, ignoring fields a file reader does not need.
pub fn decode_unixfs(mut buf: &[u8]) -> Result<UnixFsData<'_>, String> {
    let mut out = UnixFsData {
        kind: u64::MAX,
        data: None,
    };
    while !buf.is_empty() {
        match take_field(&mut buf)? {
            Field::Varint(1, t) => out.kind = t,
            Field::Bytes(2, d) => out.data = Some(d),
            _ => {}
        }
    }
    if out.kind == u64::MAX {
        return Err("missing Type".into());
    }
    Ok(out)
}
