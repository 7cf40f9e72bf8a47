//! Chain and node health.

use futures::future::join_all;

use super::*;
use crate::Result;
use crate::views::*;

impl Service {
    /// Chain and node health.
    pub async fn status(&self) -> Result<Status> {
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
