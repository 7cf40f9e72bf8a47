//! Opening the records service the way `serve` and `bench` need it: the embedded chain or
//! a JSON-RPC one, local nodes or remote ones.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use ehr_chain::{Address, FundingPolicy, U256};
use ehr_records::accounts::AccountParams;
use ehr_records::deployment::{self, ChainChoice, Deployment, NodesChoice};

/// Where the chain and the nodes are.
#[derive(Args, Clone, Debug)]
pub struct DeploymentArgs {
    /// Remote nodes (`secure-ehr node`), comma-separated URLs in node-set order; without,
    /// the nodes run in this process under the data directory.
    #[arg(long, value_delimiter = ',', env = "SECURE_EHR_NODES")]
    pub nodes: Vec<String>,
    /// The remote nodes' shared token for storing and deleting blocks.
    #[arg(long, env = "SECURE_EHR_NODE_TOKEN", hide_env_values = true)]
    pub node_token: Option<String>,
    /// CA certificates (PEM) to trust, besides the system's, for https:// remote nodes and
    /// an https:// --chain-rpc.
    #[arg(long, env = "SECURE_EHR_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// A JSON-RPC Ethereum node instead of the embedded chain.
    #[arg(long, env = "SECURE_EHR_CHAIN_RPC", requires_all = ["contract", "admin_key_file"])]
    pub chain_rpc: Option<String>,
    /// The registry contract's address there.
    #[arg(long, env = "SECURE_EHR_CONTRACT")]
    pub contract: Option<Address>,
    /// The contract admin's hex key file (a funded account) for the JSON-RPC chain.
    #[arg(long, env = "SECURE_EHR_ADMIN_KEY_FILE")]
    pub admin_key_file: Option<PathBuf>,
    /// Wei per funding top-up of an account's gas on a JSON-RPC chain; without, sized for its
    /// next operations from the gas targets × the current max fee; 0 funds nobody (a
    /// free-gas consortium chain).
    #[arg(long, env = "SECURE_EHR_FUND_WEI")]
    pub fund_wei: Option<U256>,
    /// Wei all funding top-ups together may spend per hour; sign-ups are refused (503
    /// `funding_budget_spent`) while it is spent.
    #[arg(long, env = "SECURE_EHR_FUND_BUDGET_PER_HOUR", default_value_t = U256::from(ehr_chain::funding::DEFAULT_BUDGET_PER_HOUR))]
    pub fund_budget_per_hour: U256,
    /// The most blocks one `eth_getLogs` request may span (nodes cap it; longer queries are
    /// split).
    #[arg(long, env = "SECURE_EHR_MAX_LOG_RANGE", default_value_t = ehr_chain::rpc::MAX_LOG_RANGE)]
    pub max_log_range: u64,
    /// Shares (and fragments) needed to read, for a new deployment.
    #[arg(short, default_value_t = 3)]
    pub k: u8,
    /// Local nodes, for a new embedded deployment.
    #[arg(short, default_value_t = 5)]
    pub n: usize,
}

impl DeploymentArgs {
    /// The deployment these flags describe.
    pub fn deployment(&self, params: AccountParams) -> anyhow::Result<Deployment> {
        let chain = match &self.chain_rpc {
            None => ChainChoice::Embedded,
            Some(url) => ChainChoice::Rpc {
                url: url.clone(),
                contract: self
                    .contract
                    .context("--contract is required with --chain-rpc")?,
                admin_key_file: self
                    .admin_key_file
                    .clone()
                    .context("--admin-key-file is required with --chain-rpc")?,
                ca_file: self.ca_file.clone(),
                funding: FundingPolicy {
                    top_up_wei: self.fund_wei,
                    budget_per_hour: self.fund_budget_per_hour,
                },
                max_log_range: self.max_log_range,
            },
        };
        let nodes = if self.nodes.is_empty() {
            NodesChoice::Local { n: self.n }
        } else {
            NodesChoice::Remote {
                urls: self.nodes.clone(),
                token: self.node_token.clone(),
                ca_file: self.ca_file.clone(),
            }
        };
        Ok(Deployment {
            chain,
            nodes,
            k: self.k,
            params,
            archive: true,
        })
    }
}

/// Holds `<data-dir>/serve.lock` while a server runs, so offline admin commands cannot
/// write the accounts file under it.
pub fn lock_data_dir(data_dir: &Path) -> anyhow::Result<std::fs::File> {
    deployment::try_lock(data_dir)?.with_context(|| {
        format!(
            "a SecureEHR server is running on {}; stop it first",
            data_dir.display()
        )
    })
}

/// A multi-threaded runtime for servers and the benchmark.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
