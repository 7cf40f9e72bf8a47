//! `secure-ehr serve` (the web UI and JSON API) and `secure-ehr admin init`.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ehr_api::RpcOptions;
use ehr_chain::eth_api::{EthApi, Limits};
use ehr_records::accounts::AccountParams;
use ehr_records::deployment;
use zeroize::Zeroizing;

use crate::node_cmd::shutdown;
use crate::service::{self, DeploymentArgs};
use crate::transport::ListenArgs;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the bound address is printed).
    #[arg(long, env = "SECURE_EHR_LISTEN", default_value = "127.0.0.1:9999")]
    listen: SocketAddr,
    /// Mark session cookies `Secure` and send HSTS (behind a TLS-terminating proxy; on by
    /// itself with --tls-cert).
    #[arg(long)]
    secure_cookies: bool,
    /// The reverse proxy's IP address: requests whose TCP peer is that address are keyed
    /// (for login and sign-up throttling) on the right-most `X-Forwarded-For` entry that is
    /// not the proxy. Without it `X-Forwarded-For` is ignored.
    #[arg(long, env = "SECURE_EHR_TRUSTED_PROXY", value_name = "ADDR")]
    trusted_proxy: Option<std::net::IpAddr>,
    #[command(flatten)]
    listen_args: ListenArgs,
    #[command(flatten)]
    rpc: RpcArgs,
    #[command(flatten)]
    deployment: DeploymentArgs,
}

/// `POST /rpc`: the embedded chain as a standard Ethereum JSON-RPC endpoint.
#[derive(Args)]
pub struct RpcArgs {
    /// Answer Ethereum JSON-RPC at POST /rpc (embedded chain only). Off by default: the
    /// chain's access log links readers, records and patients' addresses.
    #[arg(long, env = "SECURE_EHR_RPC")]
    rpc: bool,
    /// Answer /rpc only to `Authorization: Bearer <token>` (compared in constant time).
    #[arg(
        long,
        env = "SECURE_EHR_RPC_TOKEN",
        hide_env_values = true,
        requires = "rpc"
    )]
    rpc_token: Option<String>,
    /// Offer eth_sendRawTransaction on /rpc (gas is free here: rate-limited per client).
    #[arg(long, env = "SECURE_EHR_RPC_SEND", requires = "rpc")]
    rpc_send: bool,
    /// The most requests in one /rpc batch.
    #[arg(long, env = "SECURE_EHR_RPC_MAX_BATCH", default_value_t = Limits::default().max_batch)]
    rpc_max_batch: usize,
    /// The most blocks one eth_getLogs may span when it cannot use the (event, first
    /// indexed topic) index.
    #[arg(long, env = "SECURE_EHR_RPC_MAX_LOG_RANGE", default_value_t = Limits::default().max_log_range)]
    rpc_max_log_range: u64,
    /// The most logs one eth_getLogs may return.
    #[arg(long, env = "SECURE_EHR_RPC_MAX_LOGS", default_value_t = Limits::default().max_logs)]
    rpc_max_logs: usize,
    /// eth_sendRawTransaction calls per client (IP, as login throttling keys it) per minute.
    #[arg(long, env = "SECURE_EHR_RPC_SEND_PER_MINUTE", default_value_t = RpcOptions::default().sends_per_minute)]
    rpc_send_per_minute: u32,
}

impl RpcArgs {
    /// Adds `/rpc` to `state` if asked for; an error if the chain is not the embedded one.
    fn apply(&self, state: ehr_api::AppState) -> anyhow::Result<ehr_api::AppState> {
        if !self.rpc {
            return Ok(state);
        }
        let chain = state.service().embedded_chain().context(
            "--rpc serves the embedded chain; with --chain-rpc, clients can use that node directly",
        )?;
        if self.rpc_token.as_deref() == Some("") {
            bail!("--rpc-token is empty");
        }
        let limits = Limits {
            max_batch: self.rpc_max_batch,
            max_log_range: self.rpc_max_log_range,
            max_logs: self.rpc_max_logs,
            allow_send: self.rpc_send,
        };
        let options = RpcOptions {
            token: self.rpc_token.clone().map(Zeroizing::new),
            sends_per_minute: self.rpc_send_per_minute,
            ..RpcOptions::default()
        };
        println!(
            "Ethereum JSON-RPC at POST /rpc (chain id {}){}{}",
            chain.chain_id(),
            if self.rpc_token.is_some() {
                ", bearer token required"
            } else {
                ""
            },
            if self.rpc_send {
                ", eth_sendRawTransaction offered"
            } else {
                ""
            },
        );
        Ok(state.with_rpc(Arc::new(EthApi::new(chain, limits)), options))
    }
}

pub fn serve(args: ServeArgs, data_dir: &Path) -> anyhow::Result<()> {
    let options = args.listen_args.options()?;
    if args.rpc.rpc && args.deployment.chain_rpc.is_some() {
        bail!(
            "--rpc serves the embedded chain; with --chain-rpc, clients can use that node directly"
        );
    }
    let _lock = service::lock_data_dir(data_dir)?;
    service::runtime()?.block_on(async {
        let svc = service::open(data_dir, &args.deployment, AccountParams::STANDARD).await?;
        let status = svc.status().await?;
        println!(
            "SecureEHR: {} chain {} (contract {}), {} of {} nodes needed",
            status.chain.backend, status.chain.chain_id, status.chain.contract, status.k, status.n
        );
        if !svc.accounts().has_admin() {
            println!("no admin yet: stop the server and run `secure-ehr admin init` to create one");
        }
        let svc = Arc::new(svc);
        tokio::spawn(settle_uploads(svc.clone()));
        let state = ehr_api::AppState::new(svc)
            .with_secure_cookies(args.secure_cookies || args.listen_args.tls())
            .with_trusted_proxy(args.trusted_proxy);
        let state = args.rpc.apply(state)?;
        let listener = args.listen_args.bind(args.listen, "SecureEHR").await?;
        ehr_api::serve_with(listener, state, options, shutdown()).await?;
        Ok(())
    })
}

/// Asks the chain every minute about uploads whose transaction was not mined in time (their
/// blocks stay until the chain decides; see the upload journal).
async fn settle_uploads(svc: Arc<ehr_records::Service>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every.tick().await;
        if let Err(e) = svc.settle_uploads().await {
            tracing::warn!(error = %e, "settling pending uploads");
        }
    }
}

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Create the first admin account (works once; the server must be stopped).
    Init {
        /// The admin's username.
        #[arg(long, default_value = "admin")]
        username: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Reads one password from standard input (the first line, or everything if one line).
pub fn password_from_stdin() -> anyhow::Result<Zeroizing<String>> {
    let mut buf = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut buf)
        .context("reading the password from standard input")?;
    let line = Zeroizing::new(buf.lines().next().unwrap_or("").to_owned());
    if line.is_empty() {
        bail!("no password on standard input");
    }
    Ok(line)
}

pub fn admin(cmd: AdminCmd, data_dir: &Path) -> anyhow::Result<()> {
    match cmd {
        AdminCmd::Init {
            username,
            password_stdin,
        } => {
            let _lock = service::lock_data_dir(data_dir)?;
            let (password, generated) = if password_stdin {
                (password_from_stdin()?, false)
            } else {
                let mut raw = [0u8; 18];
                getrandom::fill(&mut raw).context("reading the OS random source")?;
                let pw: String = raw
                    .iter()
                    .map(|b| {
                        const ALPHABET: &[u8] =
                            b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
                        ALPHABET[usize::from(*b) % ALPHABET.len()] as char
                    })
                    .collect();
                (Zeroizing::new(pw), true)
            };
            let accounts = deployment::accounts(data_dir, AccountParams::STANDARD)?;
            let info = accounts.create_admin(&username, &password)?;
            println!("admin {} created ({})", info.username, info.address);
            if generated {
                println!("password: {}", password.as_str());
                println!("(shown once; keep it somewhere safe)");
            }
            Ok(())
        }
    }
}
