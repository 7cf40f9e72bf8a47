//! `secure-ehr node`: one storage + custodian node as its own process.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use ehr_chain::{Address, Registry, RpcRegistry};
use ehr_node::{LocalNode, Node, NodeKey};
use ehr_store::BlobStore;

use crate::service;

#[derive(Args)]
pub struct NodeArgs {
    /// Address to listen on (port 0: any free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:7001")]
    listen: SocketAddr,
    /// The chain's JSON-RPC URL: the node checks grants and the access log there.
    #[arg(long, env = "SECURE_EHR_CHAIN_RPC")]
    chain_rpc: String,
    /// The registry contract's address.
    #[arg(long, env = "SECURE_EHR_CONTRACT")]
    contract: Address,
    /// Token the server must present to store or delete blocks.
    #[arg(long, env = "SECURE_EHR_NODE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

pub fn run(args: NodeArgs, data_dir: &Path) -> anyhow::Result<()> {
    service::runtime()?.block_on(async {
        let key = NodeKey::load_or_create(&data_dir.join("node.key"))?;
        let store: Arc<dyn BlobStore> =
            Arc::new(ehr_records::deployment::node_store(data_dir).await?);
        let registry: Arc<dyn Registry> = Arc::new(
            RpcRegistry::connect(&args.chain_rpc, args.contract)
                .await
                .with_context(|| format!("connecting to the chain at {}", args.chain_rpc))?,
        );
        let node = LocalNode::new(data_dir.display().to_string(), key, registry, store).await?;
        let info = Node::info(&node).await?;
        println!("node {} custodian key {}", info.address, info.public_key);
        let listener = service::bind(args.listen, "node").await?;
        axum::serve(listener, ehr_node::router(Arc::new(node), args.token))
            .with_graceful_shutdown(shutdown())
            .await?;
        Ok(())
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
