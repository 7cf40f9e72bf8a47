//! A UnixFS file importer that reproduces `ipfs add` byte for byte (fixed-size chunks,
//! balanced DAG) and a reader that walks a file DAG back to its bytes.
//!
//! The importer streams: it holds one chunk plus, per tree level, at most `max_links`
//! pending links, so a 50 MiB file never sits in memory. Blocks are handed to a sink as
//! soon as they are final; the root comes last.

use std::io::Read;

use cid::Cid;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::cids::{DAG_PB, RAW, SHA2_256, sha256_multihash};
use crate::pb::{self, FileLink};
use crate::{BlobStore, Error, Result};

/// How a file is cut into blocks and which CIDs they get: the `ipfs add` settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Profile {
    /// `ipfs add --cid-version=1`: CIDv1, raw leaves, 256 KiB chunks, 174 links per node.
    #[default]
    KuboV1,
    /// `ipfs add` (Kubo's `unixfs-v0-2015`): CIDv0 (`Qm…`), dag-pb leaves, 256 KiB, 174 links.
    KuboV0,
    /// IPIP-499 `unixfs-v1-2025` (Helia / ipfs-car default): CIDv1, raw leaves, 1 MiB, 1024 links.
    V1_2025,
}

impl Profile {
    /// Bytes per leaf chunk.
    pub fn chunk_size(self) -> usize {
        match self {
            Profile::KuboV1 | Profile::KuboV0 => 256 * 1024,
            Profile::V1_2025 => 1024 * 1024,
        }
    }

    /// Most links in one internal node.
    pub fn max_links(self) -> usize {
        match self {
            Profile::KuboV1 | Profile::KuboV0 => 174,
            Profile::V1_2025 => 1024,
        }
    }

    /// Whether leaves are raw blocks (else dag-pb UnixFS leaves).
    pub fn raw_leaves(self) -> bool {
        !matches!(self, Profile::KuboV0)
    }

    /// The CID version of every block.
    pub fn cid_version(self) -> u8 {
        if matches!(self, Profile::KuboV0) {
            0
        } else {
            1
        }
    }

    fn dag_pb_cid(self, block: &[u8]) -> Cid {
        self.dag_pb_cid_of(sha256_multihash(block))
    }

    fn dag_pb_cid_of(self, mh: cid::multihash::Multihash<64>) -> Cid {
        if self.cid_version() == 0 {
            Cid::new_v0(mh).expect("sha2-256 multihash is a valid CIDv0")
        } else {
            Cid::new_v1(DAG_PB, mh)
        }
    }
}

/// Streaming UnixFS builder: feed chunks with [`Importer::push_chunk`], then
/// [`Importer::finish`]. Use [`import`] or [`add`] unless you cut chunks yourself.
#[derive(Debug)]
pub struct Importer {
    profile: Profile,
    /// `levels[0]` holds leaf links, `levels[i]` links to nodes of depth `i`.
    levels: Vec<Vec<FileLink>>,
    chunks: u64,
    /// Whether leaf blocks are built and passed to the sink (false: only hashed).
    emit_leaves: bool,
}

impl Importer {
    /// A builder for `profile`.
    pub fn new(profile: Profile) -> Self {
        Importer {
            profile,
            levels: vec![Vec::new()],
            chunks: 0,
            emit_leaves: true,
        }
    }

    /// A builder that only computes CIDs (`ipfs add --only-hash`): leaves are hashed in
    /// place and never built or passed to the sink; internal nodes and the root still are.
    pub fn hash_only(profile: Profile) -> Self {
        Importer {
            emit_leaves: false,
            ..Importer::new(profile)
        }
    }

    /// Adds one chunk (exactly `chunk_size` bytes, except the last one). Every block that
    /// becomes final is passed to `sink`.
    pub fn push_chunk(
        &mut self,
        chunk: &[u8],
        sink: &mut dyn FnMut(&Cid, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let link = if self.profile.raw_leaves() {
            let digest = Sha256::digest(chunk);
            let mh =
                cid::multihash::Multihash::wrap(SHA2_256, &digest).expect("32-byte digest fits");
            let cid = Cid::new_v1(RAW, mh);
            if self.emit_leaves {
                sink(&cid, chunk)?;
            }
            FileLink {
                cid,
                tsize: chunk.len() as u64,
                filesize: chunk.len() as u64,
            }
        } else if self.emit_leaves {
            let block = pb::encode_leaf(Some(chunk));
            let cid = self.profile.dag_pb_cid(&block);
            sink(&cid, &block)?;
            FileLink {
                cid,
                tsize: block.len() as u64,
                filesize: chunk.len() as u64,
            }
        } else {
            // Hash prefix ‖ chunk ‖ suffix without copying the chunk into a block.
            let (prefix, suffix) = pb::leaf_frame(chunk.len());
            let mut h = Sha256::new();
            h.update(&prefix);
            h.update(chunk);
            h.update(&suffix);
            let mh = cid::multihash::Multihash::wrap(SHA2_256, &h.finalize())
                .expect("32-byte digest fits");
            FileLink {
                cid: self.profile.dag_pb_cid_of(mh),
                tsize: (prefix.len() + chunk.len() + suffix.len()) as u64,
                filesize: chunk.len() as u64,
            }
        };
        self.push_link(link, sink)
    }

    /// Adds a raw leaf the caller has already hashed and stores itself: its SHA-256 and
    /// length (a raw-leaves profile only). The nodes above it still go to `sink`.
    pub fn push_raw_leaf(
        &mut self,
        sha256: &[u8; 32],
        len: usize,
        sink: &mut dyn FnMut(&Cid, &[u8]) -> Result<()>,
    ) -> Result<()> {
        assert!(self.profile.raw_leaves(), "push_raw_leaf needs raw leaves");
        let link = FileLink {
            cid: crate::cids::cid_from_sha256(RAW, sha256),
            tsize: len as u64,
            filesize: len as u64,
        };
        self.push_link(link, sink)
    }

    fn push_link(
        &mut self,
        link: FileLink,
        sink: &mut dyn FnMut(&Cid, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.chunks += 1;
        self.levels[0].push(link);
        // A full node never gets more children (balanced layout), so close it right away.
        let mut level = 0;
        while self.levels[level].len() == self.profile.max_links() {
            let link = self.close_node(level, sink)?;
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(link);
            level += 1;
        }
        Ok(())
    }

    /// Writes the node over `levels[level]` and empties that level.
    fn close_node(
        &mut self,
        level: usize,
        sink: &mut dyn FnMut(&Cid, &[u8]) -> Result<()>,
    ) -> Result<FileLink> {
        let links = std::mem::take(&mut self.levels[level]);
        let block = pb::encode_file_node(&links);
        let cid = self.profile.dag_pb_cid(&block);
        sink(&cid, &block)?;
        Ok(FileLink {
            cid,
            tsize: block.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>(),
            filesize: links.iter().map(|l| l.filesize).sum(),
        })
    }

    /// Closes the partial nodes bottom-up and returns the root CID.
    pub fn finish(mut self, sink: &mut dyn FnMut(&Cid, &[u8]) -> Result<()>) -> Result<Cid> {
        if self.chunks == 0 {
            // `ipfs add` of an empty file: an empty leaf.
            return if self.profile.raw_leaves() {
                let cid = crate::cids::raw_cid(&[]);
                sink(&cid, &[])?;
                Ok(cid)
            } else {
                let block = pb::encode_leaf(None);
                let cid = self.profile.dag_pb_cid(&block);
                sink(&cid, &block)?;
                Ok(cid)
            };
        }
        let mut level = 0;
        loop {
            let higher = self.levels[level + 1..].iter().any(|l| !l.is_empty());
            match self.levels[level].len() {
                0 => {}
                1 if !higher => return Ok(self.levels[level][0].cid),
                _ => {
                    let link = self.close_node(level, sink)?;
                    if self.levels.len() == level + 1 {
                        self.levels.push(Vec::new());
                    }
                    self.levels[level + 1].push(link);
                }
            }
            level += 1;
        }
    }
}

/// Fills `buf` from `reader` as far as possible; returns the number of bytes read
/// (short only at end of input).
fn read_full<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Imports everything `reader` yields as a UnixFS file, passing each block to `sink`;
/// returns the root CID (the one `ipfs add` prints).
pub fn import<R: Read>(
    reader: R,
    profile: Profile,
    sink: impl FnMut(&Cid, &[u8]) -> Result<()>,
) -> Result<Cid> {
    import_with(Importer::new(profile), reader, sink)
}

fn import_with<R: Read>(
    mut importer: Importer,
    mut reader: R,
    mut sink: impl FnMut(&Cid, &[u8]) -> Result<()>,
) -> Result<Cid> {
    let profile = importer.profile;
    let mut buf = vec![0u8; profile.chunk_size()];
    loop {
        let n = read_full(&mut reader, &mut buf)?;
        if n == 0 {
            break;
        }
        importer.push_chunk(&buf[..n], &mut sink)?;
        if n < buf.len() {
            break;
        }
    }
    importer.finish(&mut sink)
}

/// The CID `ipfs add --only-hash` prints for the bytes of `reader`.
pub fn cid_of<R: Read>(reader: R, profile: Profile) -> Result<Cid> {
    import_with(Importer::hash_only(profile), reader, |_, _| Ok(()))
}

/// The CID `ipfs add --only-hash` prints for `data`, hashing the chunks in place (no copy).
pub fn cid_of_bytes(data: &[u8], profile: Profile) -> Cid {
    fn ignore(_: &Cid, _: &[u8]) -> Result<()> {
        Ok(())
    }
    let mut importer = Importer::hash_only(profile);
    for chunk in data.chunks(profile.chunk_size()) {
        // The sink never fails, so neither can the importer.
        if let Err(e) = importer.push_chunk(chunk, &mut ignore) {
            unreachable!("hashing cannot fail: {e}");
        }
    }
    match importer.finish(&mut ignore) {
        Ok(cid) => cid,
        Err(e) => unreachable!("hashing cannot fail: {e}"),
    }
}

/// Imports a file into `store` and returns its root CID.
pub async fn add<R: AsyncRead + Unpin>(
    store: &dyn BlobStore,
    mut reader: R,
    profile: Profile,
) -> Result<Cid> {
    let mut importer = Importer::new(profile);
    let mut buf = vec![0u8; profile.chunk_size()];
    let mut pending: Vec<(Cid, Vec<u8>)> = Vec::new();
    loop {
        let mut n = 0;
        while n < buf.len() {
            let k = reader.read(&mut buf[n..]).await?;
            if k == 0 {
                break;
            }
            n += k;
        }
        if n == 0 {
            break;
        }
        importer.push_chunk(&buf[..n], &mut |cid, data| {
            pending.push((*cid, data.to_vec()));
            Ok(())
        })?;
        for (cid, data) in pending.drain(..) {
            store.put_block(&cid, &data).await?;
        }
        if n < buf.len() {
            break;
        }
    }
    let root = importer.finish(&mut |cid, data| {
        pending.push((*cid, data.to_vec()));
        Ok(())
    })?;
    for (cid, data) in pending.drain(..) {
        store.put_block(&cid, &data).await?;
    }
    Ok(root)
}

/// Writes the bytes of the UnixFS file (or raw block) `root` to `out`, fetching blocks from
/// `store` (each verified against its CID by the store). Returns the number of bytes written.
pub async fn cat<W: AsyncWrite + Unpin>(
    store: &dyn BlobStore,
    root: &Cid,
    out: &mut W,
) -> Result<u64> {
    let mut stack = vec![*root];
    let mut written = 0u64;
    while let Some(cid) = stack.pop() {
        let block = store.get(&cid).await?;
        match cid.codec() {
            RAW => {
                out.write_all(&block).await?;
                written += block.len() as u64;
            }
            DAG_PB => {
                let malformed = |what, reason| Error::Malformed {
                    cid: Box::new(cid),
                    what,
                    reason,
                };
                let node = pb::decode_node(&block).map_err(|r| malformed("dag-pb", r))?;
                let data = node
                    .data
                    .ok_or_else(|| malformed("UnixFS", "no Data".into()))?;
                let fs = pb::decode_unixfs(data).map_err(|r| malformed("UnixFS", r))?;
                if fs.kind != pb::UNIXFS_FILE && fs.kind != pb::UNIXFS_RAW {
                    return Err(malformed(
                        "UnixFS",
                        format!("type {} is not a file", fs.kind),
                    ));
                }
                if let Some(d) = fs.data {
                    out.write_all(d).await?;
                    written += d.len() as u64;
                }
                stack.extend(node.links.iter().rev());
            }
            code => {
                return Err(Error::UnsupportedCodec {
                    cid: Box::new(cid),
                    code,
                });
            }
        }
    }
    out.flush().await?;
    Ok(written)
}

/// A UnixFS file's blocks, as [`file_blocks`] finds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileBlocks {
    /// Its dag-pb nodes, the root first (none for a one-leaf file).
    pub nodes: Vec<Cid>,
    /// Its raw leaves, in file order.
    pub leaves: Vec<Cid>,
}

/// The blocks of the UnixFS file `root` (raw leaves, as this crate imports), each dag-pb
/// node fetched with `get` and checked against its CID; the leaves are not fetched. More
/// than `max_leaves` leaves is refused, so a hostile tree cannot make it run long.
pub async fn file_blocks<F, Fut>(root: &Cid, max_leaves: usize, mut get: F) -> Result<FileBlocks>
where
    F: FnMut(Cid) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>>>,
{
    let mut out = FileBlocks::default();
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        match cid.codec() {
            RAW => {
                out.leaves.push(cid);
                if out.leaves.len() > max_leaves {
                    return Err(Error::Malformed {
                        cid: Box::new(*root),
                        what: "UnixFS",
                        reason: format!("more than {max_leaves} leaves"),
                    });
                }
            }
            DAG_PB => {
                let block = get(cid).await?;
                crate::verify(&cid, &block, None)?;
                let malformed = |what, reason| Error::Malformed {
                    cid: Box::new(cid),
                    what,
                    reason,
                };
                let node = pb::decode_node(&block).map_err(|r| malformed("dag-pb", r))?;
                out.nodes.push(cid);
                if out.nodes.len() > max_leaves {
                    return Err(malformed("UnixFS", "more nodes than leaves".into()));
                }
                stack.extend(node.links.iter().rev());
            }
            code => {
                return Err(Error::UnsupportedCodec {
                    cid: Box::new(cid),
                    code,
                });
            }
        }
    }
    Ok(out)
}
