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
    /// Seconds to wait at start for remote nodes that do not answer yet (a new deployment
    /// needs every one; `/rpc` answers meanwhile).
    #[arg(long, default_value_t = 120)]
    nodes_wait: u64,
    /// Keep only the newest N blocks' bodies (transactions, receipts) here, once the ledger
    /// archive holds the older ones on the nodes: headers, the state and the indexes stay,
    /// every query answers the same, and old bodies are read back from the archive when
    /// needed. Embedded chain only; without, every block is kept.
    #[arg(long, env = "SECURE_EHR_KEEP_BLOCKS", value_name = "N")]
    keep_blocks: Option<u64>,
    #[command(flatten)]
    rpc: RpcArgs,
    #[command(flatten)]
    attachments: AttachmentArgs,
    #[command(flatten)]
    deployment: DeploymentArgs,
}

/// What patients may attach to records.
#[derive(Args)]
pub struct AttachmentArgs {
    /// The file types patients may attach (of pdf, dicom, jpeg, png, heic).
    #[arg(
        long,
        env = "SECURE_EHR_ATTACHMENT_TYPES",
        value_delimiter = ',',
        default_value = "pdf,dicom,jpeg,png,heic",
        value_parser = attachment_type
    )]
    attachment_types: Vec<ehr_records::attachments::Known>,
    /// The largest attachment, in bytes (binary units allowed: 500M, 2G).
    #[arg(long, env = "SECURE_EHR_ATTACHMENT_MAX", default_value = "2G", value_parser = crate::bench::parse_size)]
    attachment_max: u64,
}

impl AttachmentArgs {
    fn policy(&self) -> ehr_records::attachments::AttachmentPolicy {
        ehr_records::attachments::AttachmentPolicy {
            allowed: self.attachment_types.clone(),
            max_bytes: self.attachment_max,
        }
    }
}

fn attachment_type(s: &str) -> Result<ehr_records::attachments::Known, String> {
    use ehr_records::attachments::Known;
    Known::ALL
        .into_iter()
        .find(|k| {
            let short = k.media_type().rsplit('/').next().unwrap_or_default();
            s.eq_ignore_ascii_case(short) || s.eq_ignore_ascii_case(k.media_type())
        })
        .ok_or_else(|| format!("{s:?}: one of pdf, dicom, jpeg, png, heic"))
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
    /// The `/rpc` API over `chain` with its options, if asked for; an error if the chain is
    /// not the embedded one.
    fn api(
        &self,
        chain: &deployment::OpenedChain,
    ) -> anyhow::Result<Option<(Arc<EthApi>, RpcOptions)>> {
        if !self.rpc {
            return Ok(None);
        }
        let chain = chain.embedded.clone().context(
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
        say(&format!(
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
        ));
        Ok(Some((Arc::new(EthApi::new(chain, limits)), options)))
    }
}

/// A line on standard output that never panics (whoever started us may have stopped reading).
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

pub fn serve(args: ServeArgs, data_dir: &Path) -> anyhow::Result<()> {
    let options = args.listen_args.options()?;
    if args.keep_blocks.is_some() && args.deployment.chain_rpc.is_some() {
        bail!(
            "--keep-blocks prunes the embedded chain; a JSON-RPC chain is pruned by its own node"
        );
    }
    if args.rpc.rpc && args.deployment.chain_rpc.is_some() {
        bail!(
            "--rpc serves the embedded chain; with --chain-rpc, clients can use that node directly"
        );
    }
    let _lock = service::lock_data_dir(data_dir)?;
    service::runtime()?.block_on(async {
        // Signals from now on stop the server cleanly (its databases closed).
        let mut stop = Some(shutdown());
        let deployment = args.deployment.deployment(AccountParams::STANDARD)?;
        let chain = deployment::open_deployment_chain(data_dir, &deployment.chain)
            .await
            .context("opening the chain")?;
        let info = chain.registry.info().await?;
        say(&format!(
            "SecureEHR: {} chain {} (contract {})",
            info.backend, info.chain_id, info.contract
        ));
        let rpc = args.rpc.api(&chain)?;
        let secure_cookies = args.secure_cookies || args.listen_args.tls();
        // With remote nodes the service may have to wait for them (a new deployment needs
        // every one), and they may need this server's /rpc to start: listen first, answering
        // /rpc at once and 503 `starting` for the rest until the service is up.
        let starting = (!args.deployment.nodes.is_empty())
            .then(|| ehr_api::Starting::new(rpc.clone(), args.trusted_proxy, secure_cookies));
        let mut early_addr = None;
        let early = match &starting {
            Some(starting) => {
                let listener = args.listen_args.bind(args.listen, "SecureEHR").await?;
                early_addr = Some(listener.local_addr()?);
                let app = starting.router();
                let options = options.clone();
                let stop = stop.take().expect("one shutdown");
                Some(tokio::spawn(async move {
                    ehr_serve::serve(listener, app, options, stop).await
                }))
            }
            None => None,
        };
        let svc = open_service(data_dir, &deployment, &chain, args.nodes_wait).await?;
        let status = svc.status().await?;
        say(&format!(
            "SecureEHR: {} of {} nodes needed",
            status.k, status.n
        ));
        let svc = Arc::new(svc.with_attachment_policy(args.attachments.policy()));
        tokio::spawn(settle_journals(svc.clone()));
        if let Some(keep) = args.keep_blocks {
            svc.start_pruning(keep).context("--keep-blocks")?;
        }
        let mut state = ehr_api::AppState::new(svc.clone())
            .with_secure_cookies(secure_cookies)
            .with_trusted_proxy(args.trusted_proxy);
        if let Some((api, options)) = rpc {
            state = state.with_rpc(api, options);
        }
        match (starting, early) {
            (Some(starting), Some(server)) => {
                if let Some(addr) = early_addr {
                    say_setup_link(&state, addr, args.listen_args.tls());
                }
                starting.ready(state);
                say("SecureEHR ready");
                server.await.context("the server task")??;
            }
            _ => {
                let listener = args.listen_args.bind(args.listen, "SecureEHR").await?;
                say_setup_link(&state, listener.local_addr()?, args.listen_args.tls());
                let stop = stop.take().expect("one shutdown");
                ehr_api::serve_with(listener, state, options, stop).await?;
            }
        }
        seal_archive(&svc).await
    })
}

/// Without an admin: the one-time link whose page creates it (a wildcard address is
/// shown as loopback).
fn say_setup_link(state: &ehr_api::AppState, addr: std::net::SocketAddr, tls: bool) {
    let Some(token) = state.setup_token() else {
        return;
    };
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let scheme = if tls { "https" } else { "http" };
    say(&format!(
        "no admin yet: open {scheme}://{addr}/setup?token={token} to create one (the link \
         works once, until the server restarts; scripts: `secure-ehr admin init` with the \
         server stopped)"
    ));
}

/// The clean stop: the open epoch of the ledger archive is sealed and dispersed.
async fn seal_archive(svc: &ehr_records::Service) -> anyhow::Result<()> {
    if let Some(status) = svc
        .seal_archive()
        .await
        .context("sealing the ledger archive")?
    {
        say(&format!(
            "SecureEHR: ledger archived through block {} in {} epochs{}",
            status
                .archived_through
                .map_or_else(|| "-".to_owned(), |b| b.to_string()),
            status.epochs,
            if status.pending_nodes.is_empty() {
                String::new()
            } else {
                format!("; still owed to {}", status.pending_nodes.join(", "))
            }
        ));
    }
    Ok(())
}

/// Opens the service on `chain`; while a node does not answer (a new deployment needs them
/// all), tries again each second for `wait_secs`.
async fn open_service(
    data_dir: &Path,
    deployment: &deployment::Deployment,
    chain: &deployment::OpenedChain,
    wait_secs: u64,
) -> anyhow::Result<ehr_records::Service> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait_secs);
    let mut waiting_for = None;
    loop {
        match deployment::open_on(data_dir, deployment, chain).await {
            Ok(svc) => return Ok(svc),
            Err(ehr_records::Error::Node { node, source })
                if std::time::Instant::now() < deadline =>
            {
                if waiting_for.as_ref() != Some(&node) {
                    eprintln!("waiting for {node} (up to {wait_secs} s): {source}");
                    waiting_for = Some(node);
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(anyhow::Error::new(e).context("starting the records service")),
        }
    }
}

/// Every minute, asks the chain about uploads whose transaction was not mined in time
/// (their blocks stay until the chain decides; see the upload journal). Every 5 s, sends
/// again the erasure orders a node has not confirmed (see the erasure journal): a node
/// that came back without them serves nothing until it has them, so it is not kept waiting.
async fn settle_journals(svc: Arc<ehr_records::Service>) {
    const TICK: std::time::Duration = std::time::Duration::from_secs(5);
    const UPLOADS_EVERY: u32 = 12;
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u32;
    let mut open_before = 0;
    loop {
        every.tick().await;
        if ticks.is_multiple_of(UPLOADS_EVERY)
            && let Err(e) = svc.settle_uploads().await
        {
            tracing::warn!(error = %e, "settling pending uploads");
        }
        ticks = ticks.wrapping_add(1);
        match svc.settle_erasures().await {
            Ok(open) => {
                if open != open_before && open > 0 {
                    tracing::info!(open, "erasures some node has not confirmed yet");
                }
                open_before = open;
            }
            Err(e) => tracing::warn!(error = %e, "settling pending erasures"),
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

#[cfg(test)]
mod attachment_args {
    use ehr_records::attachments::Known;

    #[test]
    fn types_by_short_name_or_media_type() {
        assert_eq!(super::attachment_type("pdf"), Ok(Known::Pdf));
        assert_eq!(super::attachment_type("image/HEIC"), Ok(Known::Heic));
        assert!(super::attachment_type("svg+xml").is_err());
    }
}
