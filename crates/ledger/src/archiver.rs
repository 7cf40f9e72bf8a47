//! The background [`Archiver`]: reads new blocks from its [`LedgerSource`], seals an epoch by
//! policy, disperses it over the nodes and keeps retrying the nodes that did not take it.
//!
//! It runs as one tokio task; the chain is read (and state parts asked) on the blocking
//! pool, through the source's own read path, so no lock of the chain's is held while
//! sealing or talking to nodes and no caller of the chain ever waits for the archive.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::B256;
use ehr_node::{ArchiveHead, Node};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::format::{PartEntry, Payload, block_digest};
use crate::progress::{PartCursor, PendingEpoch, Progress, read_pending, write_pending};
use crate::seal::{SealedEpoch, seal_epoch};
use crate::*;

/// How often the source's head is polled (besides [`ArchiverHandle::notify`]).
const POLL: Duration = Duration::from_millis(250);
/// How long after a failed delivery a node is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// The largest epoch (raw bytes) a policy may ask for; a sealed epoch must stay under
/// the dispersal's 64 MiB.
const MAX_EPOCH_BYTES: usize = 48 << 20;

/// The ledger archiver of one deployment (see the crate docs).
pub struct Archiver {
    config: ArchiveConfig,
    source: Arc<dyn LedgerSource>,
    parts: Vec<Arc<dyn StatePart>>,
    progress: Progress,
    status: Arc<Mutex<ArchiveStatus>>,
}

impl std::fmt::Debug for Archiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archiver")
            .field("chain_id", &self.config.chain_id)
            .field("next_epoch", &self.progress.next_epoch)
            .finish_non_exhaustive()
    }
}

enum Command {
    SealAndStop(oneshot::Sender<Result<ArchiveStatus>>),
}

/// A handle on a running [`Archiver`]. When every handle is dropped the task stops as a
/// crash would: the open epoch is not sealed (the next start seals it).
#[derive(Clone)]
pub struct ArchiverHandle {
    commands: mpsc::Sender<Command>,
    wake: Arc<Notify>,
    status: Arc<Mutex<ArchiveStatus>>,
}

impl std::fmt::Debug for ArchiverHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiverHandle").finish_non_exhaustive()
    }
}

impl Archiver {
    /// Opens the local progress in `config.dir` (creating it) and resumes after the last
    /// sealed epoch.
    pub fn open(
        mut config: ArchiveConfig,
        source: Arc<dyn LedgerSource>,
        parts: Vec<Arc<dyn StatePart>>,
    ) -> Result<Self> {
        let n = config.threshold.n();
        if config.nodes.len() != n || config.custodians.len() != n {
            return Err(Error::Config(format!(
                "{} nodes and {} custodian keys for n = {n}",
                config.nodes.len(),
                config.custodians.len()
            )));
        }
        let mut names = HashSet::new();
        for p in &parts {
            let name = p.name();
            if name.is_empty() || name.len() > 255 || !names.insert(name.to_owned()) {
                return Err(Error::Config(format!("bad or repeated part name {name:?}")));
            }
        }
        config.policy.max_bytes = config.policy.max_bytes.clamp(1, MAX_EPOCH_BYTES);
        let progress = Progress::load(&config.dir, config.chain_id, n)?;
        let archiver = Self {
            status: Arc::new(Mutex::new(ArchiveStatus::default())),
            config,
            source,
            parts,
            progress,
        };
        archiver.publish(None);
        Ok(archiver)
    }

    /// What is archived so far (before the task runs).
    pub fn status(&self) -> ArchiveStatus {
        lock(&self.status).clone()
    }

    /// Runs in the background (a tokio task, so it must be called within a tokio runtime):
    /// watches the source's head (polled every
    /// 250 ms, and at once after [`ArchiverHandle::notify`]), seals an epoch by policy,
    /// disperses it and retries the nodes that were down until they have their parts.
    pub fn spawn(self) -> ArchiverHandle {
        let (commands, rx) = mpsc::channel(4);
        let wake = Arc::new(Notify::new());
        let handle = ArchiverHandle {
            commands,
            wake: wake.clone(),
            status: self.status.clone(),
        };
        let worker = Worker {
            next_read: self.progress.next_block,
            archiver: self,
            open: Vec::new(),
            open_bytes: 0,
            open_since: None,
            last_seal: Instant::now(),
            retry_at: Some(Instant::now()),
        };
        tokio::spawn(worker.run(rx, wake));
        handle
    }

    /// Refreshes the shared status from the progress.
    fn publish(&self, last_error: Option<String>) {
        let p = &self.progress;
        let pending: Vec<String> = self
            .config
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| p.pending.iter().any(|e| !e.delivered[*i]))
            .map(|(_, node)| node.name().to_owned())
            .collect();
        let mut s = lock(&self.status);
        *s = ArchiveStatus {
            epochs: p.archived_epochs,
            archived_through: p.archived_through,
            sealed_epochs: p.next_epoch,
            pending_nodes: pending,
            bytes_per_node: p.bytes_per_node.clone(),
            ledger_bytes: p.ledger_bytes,
            state_bytes: p.state_bytes,
            last_error,
        };
    }

    /// How many nodes must hold an epoch for it to count as archived.
    fn need(&self) -> usize {
        (self.config.threshold.k() + 1).min(self.config.threshold.n())
    }
}

/// Makes `config.dir` continue the archive `fetched` read back (after a restore of a lost
/// server, whose archive directory went with it): the next epoch follows the fetched head,
/// linked to its header, from the block after its last; every state part gets a fresh
/// snapshot in that next epoch. Without this a new archive would start again at epoch 0,
/// and the nodes, which keep the newest head, would ignore its heads. The byte counters
/// start from the fetched archive's (as if every node held all of it). Refuses a directory
/// that already has progress.
pub fn adopt(config: &ArchiveConfig, fetched: &Fetched) -> Result<()> {
    let n = config.threshold.n();
    if config.nodes.len() != n || config.chain_id != fetched.head.chain_id {
        return Err(Error::Config(
            "the fetched archive is of another chain or node count".into(),
        ));
    }
    if Progress::exists(&config.dir) {
        return Err(Error::Progress(format!(
            "{} already holds an archive's progress",
            config.dir.display()
        )));
    }
    let last = fetched
        .headers
        .last()
        .ok_or_else(|| Error::Invalid("the fetched archive has no epoch".into()))?;
    if last.epoch != fetched.head.epoch || usize::from(last.n) != n {
        return Err(Error::Invalid(
            "the fetched headers do not end at its head".into(),
        ));
    }
    let mut p = Progress::load(&config.dir, config.chain_id, n)?;
    p.next_epoch = last.epoch + 1;
    p.archived_epochs = p.next_epoch;
    p.next_block = fetched.blocks.last().map_or(0, |b| b.number + 1);
    p.archived_through = fetched.blocks.last().map(|b| b.number);
    p.last_block_hash = last.last_block_hash;
    p.prev_header = B256::from(block_digest(&last.encode()));
    p.ledger_bytes = fetched
        .blocks
        .iter()
        .map(|b| (b.block.len() + b.receipts.len()) as u64)
        .sum();
    let per_node: u64 = fetched
        .headers
        .iter()
        .map(|h| h.encode().len() as u64 + h.fragment_len + SHARE_BLOCK_LEN)
        .sum();
    p.bytes_per_node = vec![per_node; n];
    p.save(&config.dir)
}

/// The bytes of a wrapped share block (`ehr_node::ledger::encode_wrapped`).
const SHARE_BLOCK_LEN: u64 = 80;

impl ArchiverHandle {
    /// A new block is there: look now rather than at the next poll.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Seals the open epoch (if anything is new) and disperses it, then stops the task.
    /// Returns what was archived. After the task has stopped, returns the last status.
    pub async fn seal_and_stop(&self) -> Result<ArchiveStatus> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::SealAndStop(tx)).await.is_err() {
            return Ok(self.status());
        }
        // A second caller whose command the stopping task dropped gets the final status.
        rx.await.unwrap_or_else(|_| Ok(self.status()))
    }

    /// What is archived so far.
    pub fn status(&self) -> ArchiveStatus {
        lock(&self.status).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The task's state: the archiver plus the open epoch.
struct Worker {
    archiver: Archiver,
    /// Blocks read and not sealed yet, from `progress.next_block`.
    open: Vec<RawBlock>,
    open_bytes: usize,
    /// When the first open block was read.
    open_since: Option<Instant>,
    /// When an epoch was last sealed (or the state parts last found unchanged).
    last_seal: Instant,
    /// The next block to read.
    next_read: u64,
    /// When to try the nodes that lack parts again.
    retry_at: Option<Instant>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Progress(format!("the archiver's worker thread failed: {e}")))?
}

impl Worker {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, wake: Arc<Notify>) {
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Command::SealAndStop(reply)) => {
                        let result = self.finish().await;
                        let error = result.as_ref().err().map(ToString::to_string);
                        self.archiver.publish(error);
                        let _ = reply.send(result.map(|()| self.archiver.status()));
                        return;
                    }
                    // Every handle is gone: stop where we are, as a crash would.
                    None => return,
                },
                _ = wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
            let result = self.step().await;
            if let Err(e) = &result {
                tracing::warn!(error = %e, "ledger archive: will retry");
            }
            self.archiver.publish(result.err().map(|e| e.to_string()));
        }
    }

    /// One round: read what is new, seal if the policy says so (as many full epochs as a
    /// backlog makes), retry nodes if due.
    async fn step(&mut self) -> Result<()> {
        let policy = self.archiver.config.policy.clone();
        // A bounded catch-up, so commands are heard between rounds.
        for _ in 0..16 {
            let caught_up = self.read_blocks().await?;
            let full = self.open_bytes >= policy.max_bytes;
            let old = self
                .open_since
                .is_some_and(|t| t.elapsed() >= policy.max_age);
            let parts_due = self.open.is_empty()
                && !self.archiver.parts.is_empty()
                && self.last_seal.elapsed() >= policy.max_age;
            if full || old || parts_due {
                self.seal().await?;
            }
            if caught_up || !full {
                break;
            }
        }
        if self.retry_at.is_some_and(|t| Instant::now() >= t) {
            self.deliver().await?;
        }
        Ok(())
    }

    /// Seals everything up to the source's head (in as many epochs as the policy's size
    /// makes), then tries every node that lacks parts once more.
    async fn finish(&mut self) -> Result<()> {
        loop {
            let caught_up = self.read_blocks().await?;
            if caught_up || self.open_bytes >= self.archiver.config.policy.max_bytes {
                self.seal().await?;
            }
            if caught_up {
                break;
            }
        }
        self.deliver().await
    }

    /// Reads blocks after the open ones, up to the head or the policy's size. True if the
    /// head was reached.
    async fn read_blocks(&mut self) -> Result<bool> {
        let budget = self
            .archiver
            .config
            .policy
            .max_bytes
            .saturating_sub(self.open_bytes);
        if budget == 0 {
            return Ok(false);
        }
        let source = self.archiver.source.clone();
        let from = self.next_read;
        let (blocks, caught_up) = blocking(move || {
            let Some(head) = source.head()? else {
                return Ok((Vec::new(), true));
            };
            let mut out = Vec::new();
            let mut size = 0;
            let mut n = from;
            while n <= head && size < budget {
                let b = source.block(n)?.ok_or_else(|| {
                    Error::Invalid(format!("block {n} (head {head}) is not in the source"))
                })?;
                if b.number != n {
                    return Err(Error::Invalid(format!(
                        "the source gave block {} for {n}",
                        b.number
                    )));
                }
                size += b.block.len() + b.receipts.len();
                out.push(b);
                n += 1;
            }
            Ok((out, n > head))
        })
        .await?;
        if !blocks.is_empty() && self.open_since.is_none() {
            self.open_since = Some(Instant::now());
        }
        for b in blocks {
            self.open_bytes += b.block.len() + b.receipts.len();
            self.next_read = b.number + 1;
            self.open.push(b);
        }
        Ok(caught_up)
    }

    /// Seals the open blocks and the state parts' news as the next epoch (nothing if there
    /// is nothing new), writes it to the pending file and the progress, and disperses it.
    async fn seal(&mut self) -> Result<()> {
        match self.try_seal().await {
            Ok(Some(sealed)) => self.deliver_with(Some(Arc::new(sealed))).await,
            Ok(None) => Ok(()),
            Err(e) => {
                // Nothing new was recorded: go back to the progress on disk and read the
                // open blocks again next time.
                let a = &mut self.archiver;
                if let Ok(saved) =
                    Progress::load(&a.config.dir, a.config.chain_id, a.config.nodes.len())
                {
                    a.progress = saved;
                }
                self.open.clear();
                self.next_read = self.archiver.progress.next_block;
                self.open_bytes = 0;
                self.open_since = None;
                Err(e)
            }
        }
    }

    async fn try_seal(&mut self) -> Result<Option<SealedEpoch>> {
        let a = &self.archiver;
        let epoch = a.progress.next_epoch;
        let parts = a.parts.clone();
        let cursors = a.progress.parts.clone();
        let entries = blocking(move || part_entries(&parts, &cursors, epoch)).await?;
        if self.open.is_empty() && entries.is_empty() {
            self.last_seal = Instant::now();
            return Ok(None);
        }
        let blocks = std::mem::take(&mut self.open);
        let raw_bytes: u64 = blocks
            .iter()
            .map(|b| (b.block.len() + b.receipts.len()) as u64)
            .sum();
        let state_bytes: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
        let last_block = blocks.last().map(|b| b.number);
        let last_block_hash = match blocks.last() {
            Some(b) => ehr_chain::embedded::Block::decode(&b.block)?.header.hash(),
            None => a.progress.last_block_hash,
        };
        let new_cursors: Vec<(String, u64, bool)> = entries
            .iter()
            .map(|e| (e.name.clone(), e.cursor, e.snapshot))
            .collect();
        let payload = Payload {
            chain_id: a.config.chain_id,
            epoch,
            first_block: a.progress.next_block,
            blocks,
            parts: entries,
        };
        let (threshold, custodians) = (a.config.threshold, a.config.custodians.clone());
        let prev = a.progress.prev_header.0;
        let dir = a.config.dir.clone();
        let sealed = blocking(move || {
            let sealed = seal_epoch(threshold, &custodians, &payload, last_block_hash, prev)?;
            write_pending(&dir, &sealed)?;
            Ok(sealed)
        })
        .await?;
        let a = &mut self.archiver;
        let head = ArchiveHead::sign(
            &a.config.admin,
            a.config.chain_id,
            epoch,
            last_block.or(a.progress.next_block.checked_sub(1)),
            sealed.header_cid(),
        )?;
        let p = &mut a.progress;
        p.next_epoch = epoch + 1;
        if let Some(last) = last_block {
            p.next_block = last + 1;
        }
        p.last_block_hash = last_block_hash;
        p.prev_header = B256::from(block_digest(&sealed.header_bytes));
        for (name, cursor, snapshot) in new_cursors {
            match p.parts.iter_mut().find(|c| c.name == name) {
                Some(c) => {
                    c.cursor = cursor;
                    if snapshot {
                        c.snapshot_epoch = epoch;
                    }
                }
                None => p.parts.push(PartCursor {
                    name,
                    cursor,
                    snapshot_epoch: epoch,
                }),
            }
        }
        p.ledger_bytes += raw_bytes;
        p.state_bytes += state_bytes;
        p.pending.push(PendingEpoch {
            epoch,
            last_block: head.last_block,
            head,
            delivered: vec![false; p.n],
        });
        p.save(&a.config.dir)?;
        self.open_bytes = 0;
        self.open_since = None;
        self.last_seal = Instant::now();
        Ok(Some(sealed))
    }

    async fn deliver(&mut self) -> Result<()> {
        self.deliver_with(None).await
    }

    /// Gives every node the parts of the sealed epochs it lacks (oldest first), then
    /// records who has what.
    async fn deliver_with(&mut self, fresh: Option<Arc<SealedEpoch>>) -> Result<()> {
        let a = &mut self.archiver;
        let n = a.config.nodes.len();
        let mut epochs: Vec<(u64, ArchiveHead, Vec<bool>)> = a
            .progress
            .pending
            .iter()
            .filter(|e| e.delivered.iter().any(|d| !d))
            .map(|e| (e.epoch, e.head.clone(), e.delivered.clone()))
            .collect();
        if epochs.is_empty() {
            self.retry_at = None;
            return Ok(());
        }
        epochs.sort_by_key(|e| e.0);
        let mut failed = vec![false; n];
        for (epoch, head, delivered) in epochs {
            let want: Vec<usize> = (0..n).filter(|&i| !delivered[i] && !failed[i]).collect();
            if want.is_empty() {
                continue;
            }
            let sealed = match &fresh {
                Some(s) if s.header.epoch == epoch => s.clone(),
                _ => {
                    let dir = a.config.dir.clone();
                    Arc::new(blocking(move || read_pending(&dir, epoch)).await?)
                }
            };
            let results = futures::future::join_all(want.iter().map(|&i| {
                let node = a.config.nodes[i].clone();
                let sealed = sealed.clone();
                let head = head.clone();
                async move { (i, deliver_one(node.as_ref(), &sealed, i, &head).await) }
            }))
            .await;
            let entry = a
                .progress
                .pending
                .iter_mut()
                .find(|e| e.epoch == epoch)
                .ok_or_else(|| Error::Progress(format!("epoch {epoch} vanished")))?;
            for (i, result) in results {
                match result {
                    Ok(bytes) => {
                        entry.delivered[i] = true;
                        a.progress.bytes_per_node[i] += bytes;
                    }
                    Err(e) => {
                        failed[i] = true;
                        tracing::warn!(node = a.config.nodes[i].name(), epoch, error = %e,
                            "ledger archive: node did not take its parts; will retry");
                    }
                }
            }
        }
        let need = a.need();
        a.progress.settle(&a.config.dir, need)?;
        a.progress.save(&a.config.dir)?;
        if a.progress.archived_epochs < a.progress.next_epoch {
            tracing::warn!(
                from_epoch = a.progress.archived_epochs,
                sealed = a.progress.next_epoch,
                need,
                "ledger archive: epochs not yet on enough nodes; retrying"
            );
        }
        let left = a
            .progress
            .pending
            .iter()
            .any(|e| e.delivered.iter().any(|d| !d));
        self.retry_at = left.then(|| Instant::now() + RETRY);
        Ok(())
    }
}

/// Node `i`'s parts of one epoch: the header, its fragment, its share, then the head.
/// Returns the bytes it now stores for them.
async fn deliver_one(
    node: &dyn Node,
    sealed: &SealedEpoch,
    i: usize,
    head: &ArchiveHead,
) -> Result<u64, ehr_node::NodeError> {
    let parts = &sealed.parts[i];
    node.put_block(&sealed.header_cid(), &sealed.header_bytes)
        .await?;
    node.put_block(&sealed.header.fragment_cid(i), &parts.fragment)
        .await?;
    node.put_block(&sealed.header.share_cid(i), &parts.share)
        .await?;
    node.put_archive_head(head).await?;
    Ok((sealed.header_bytes.len() + parts.fragment.len() + parts.share.len()) as u64)
}

/// What each state part contributes to epoch `epoch`: a snapshot when it has none yet or
/// its last is [`SNAPSHOT_EVERY`] epochs old, else its changes (if any).
fn part_entries(
    parts: &[Arc<dyn StatePart>],
    cursors: &[PartCursor],
    epoch: u64,
) -> Result<Vec<PartEntry>> {
    let mut out = Vec::new();
    for part in parts {
        let name = part.name().to_owned();
        let fail = |source| Error::Part {
            name: name.clone(),
            source,
        };
        let known = cursors.iter().find(|c| c.name == name);
        let due = known.is_none_or(|c| epoch >= c.snapshot_epoch + SNAPSHOT_EVERY);
        if due {
            let (cursor, data) = part.snapshot().map_err(fail)?;
            out.push(PartEntry {
                name,
                snapshot: true,
                cursor,
                data,
            });
        } else if let Some(c) = known
            && let Some((cursor, data)) = part.changes_since(c.cursor).map_err(fail)?
        {
            out.push(PartEntry {
                name,
                snapshot: false,
                cursor,
                data,
            });
        }
    }
    Ok(out)
}
