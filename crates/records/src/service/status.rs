//! Chain and node health.

use std::time::{Duration, Instant};

use futures::future::join_all;

use super::*;
use crate::Result;
use crate::views::*;

/// How long [`Service::status_cached`] answers from the last status taken.
pub const STATUS_TTL: Duration = Duration::from_secs(5);

/// The last status and when it was taken. The lock is held while a new one is taken, so
/// concurrent callers wait for that one instead of each asking every node and the chain.
pub(super) type Cache = tokio::sync::Mutex<Option<(Instant, Status)>>;

impl Service {
    /// Chain and node health, asked of the chain and every node now.
    pub async fn status(&self) -> Result<Status> {
        let mut cache = self.status_cache.lock().await;
        self.refresh(&mut cache).await
    }

    /// Chain and node health as of at most [`STATUS_TTL`] ago: however often it is called
    /// (it answers unauthenticated requests), the chain and the nodes are asked at most once
    /// per [`STATUS_TTL`].
    pub async fn status_cached(&self) -> Result<Status> {
        let mut cache = self.status_cache.lock().await;
        if let Some((at, status)) = cache.as_ref()
            && at.elapsed() < STATUS_TTL
        {
            return Ok(status.clone());
        }
        self.refresh(&mut cache).await
    }

    /// Takes a new status into the (locked) cache.
    async fn refresh(&self, cache: &mut Option<(Instant, Status)>) -> Result<Status> {
        let status = self.take_status().await?;
        *cache = Some((Instant::now(), status.clone()));
        Ok(status)
    }

    async fn take_status(&self) -> Result<Status> {
        let chain = self.registry.info().await?;
        let infos = join_all(self.nodes.iter().map(|n| timed(n.info()))).await;
        let nodes = self
            .nodes
            .iter()
            .zip(infos)
            .enumerate()
            .map(|(i, (node, info))| NodeStatus {
                index: i,
                name: node.name().to_owned(),
                address: info.as_ref().map(|x| x.address).unwrap_or_default(),
                public_key: self.custodians[i],
                reachable: info.is_ok_and(|x| x.public_key == self.custodians[i]),
            })
            .collect();
        Ok(Status {
            chain,
            k: self.threshold.k() as u8,
            n: self.threshold.n() as u8,
            nodes,
        })
    }
}
