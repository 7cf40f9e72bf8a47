//! `secure-ehr serve` (the web UI and JSON API) and `secure-ehr admin init`.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
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
    deployment: DeploymentArgs,
}

pub fn serve(args: ServeArgs, data_dir: &Path) -> anyhow::Result<()> {
    let options = args.listen_args.options()?;
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
