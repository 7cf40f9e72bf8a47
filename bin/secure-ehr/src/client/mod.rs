//! The CLI client: drives a running server through its JSON API (`--server` or
//! `SECURE_EHR_URL`, default http://127.0.0.1:9999). Each command prints a short line, or
//! the server's JSON with `--json`. `login` keeps the session token in a file (mode 0600).
//! Requests and answers are the API's own wire types (`ehr_api::types`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ehr_api::types::{
    AccessLogEntry, Account, EmergencyRequest, ErrorBody, GrantRequest, Login, NewProvider,
    PatientAccount, Provider, ReadRecord, RecordSummary, RevokeRequest, Session, Shared, SignUp,
    Status, Stored, Tx,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::{Zeroize, Zeroizing};

use crate::serve::password_from_stdin;

mod account;
mod attach;
pub(crate) use attach::file_body;
mod lines;
use ehr_primitives::unix_now;
use lines::*;

/// Where the server is and how to print.
#[derive(Args, Clone)]
pub struct ClientArgs {
    /// The SecureEHR server.
    #[arg(long, env = "SECURE_EHR_URL", default_value = "http://127.0.0.1:9999")]
    server: String,
    /// Where `login` keeps the session token (default: ~/.secure-ehr/token).
    #[arg(long, env = "SECURE_EHR_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Print the server's JSON answer.
    #[arg(long)]
    json: bool,
    /// CA certificates (PEM) to trust for an https:// server, besides the system's.
    #[arg(long, env = "SECURE_EHR_CA_FILE")]
    ca_file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Log in to the server and keep the session token. With two-factor on, standard
    /// input's second line is the code from your authenticator app (or a backup code).
    Login {
        username: String,
        /// Read the password (and, on a second line, a two-factor code) from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change your password (any role): standard input holds the current password on its
    /// first line and the new one on its second. Your key stays the same; your other
    /// sessions end, this one stays.
    Password {
        /// Read both passwords from standard input (required: never on the command line).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Forgot your password: your recovery code sets a new one, keeping your key (and so
    /// every record and grant). Standard input holds the code on its first line and the new
    /// password on its second. Prints the next code (the one used is used up).
    Recover {
        username: String,
        /// Read the code and the password from standard input (required).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Two-factor sign-in: `setup` (prints the key and its otpauth:// URI for an
    /// authenticator app), `confirm CODE` (turns it on; prints the backup codes), `off`.
    Totp {
        #[command(subcommand)]
        cmd: TotpCmd,
    },
    /// Make a new recovery code (any role; the old one stops working): standard input holds
    /// your password. Prints the code, this once.
    RecoveryCode {
        /// Read the password from standard input (required).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Your directory entry (providers): how patients of every organisation find you.
    /// With --display-name or --specialty, change it (the other field stays).
    Profile {
        /// How patients see you ("Dr Carol Smith"); empty: your username.
        #[arg(long)]
        display_name: Option<String>,
        /// Your specialty; empty: none.
        #[arg(long)]
        specialty: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Everything held about you (patients): every record at every version, your grants
    /// (`Consent`) and your access log (`AuditEvent`), as one FHIR R4 Bundle file.
    Export {
        /// Where to write it (must not exist yet).
        #[arg(short, long)]
        out: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Your account: `delete` (patients) erases every record and deletes the account.
    Account {
        #[command(subcommand)]
        cmd: AccountCmd,
    },
    /// Save your keystore v3 file (patients) — your key encrypted under your password —
    /// to import into any Ethereum wallet.
    Keystore {
        /// Where to write it (default: the name geth gives it, in the current directory).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// End the session.
    Logout {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Patients: sign up, or (as a provider) read a patient's granted records.
    Patient {
        #[command(subcommand)]
        cmd: PatientCmd,
    },
    /// Providers: register, disable or enable one (admin), or list them.
    Provider {
        #[command(subcommand)]
        cmd: ProviderCmd,
    },
    /// Records: store from a FHIR JSON file, update, read, list.
    Record {
        #[command(subcommand)]
        cmd: RecordCmd,
    },
    /// Grant a provider access to all your records or one, until an expiry.
    Grant {
        /// The provider's username.
        provider: String,
        /// One record only.
        #[arg(long)]
        record: Option<u64>,
        /// Days from now until the grant expires.
        #[arg(long, default_value_t = 30)]
        days: u64,
        /// Let the provider also write until then: add results, notes and prescriptions
        /// to the record (to any record and new ones of yours, without --record).
        #[arg(long)]
        write: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke: with --record, that record's grant and emergency access; without, everything
    /// the provider holds on your records (every grant, every write grant and every
    /// emergency access). With --write, only the write grant on that scope.
    Revoke {
        provider: String,
        #[arg(long)]
        record: Option<u64>,
        /// End only writing (reading stays).
        #[arg(long)]
        write: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Break-glass: read a patient's records without a grant, giving a reason.
    Emergency {
        patient_id: u64,
        /// Why (required; the patient sees it).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// As a provider: the grants you hold now (patients of any organisation).
    Shared {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Who read your records, and every emergency access.
    Log {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Chain and node status.
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
pub enum AccountCmd {
    /// Leave (patients): erase every record of yours — each node destroys its blocks and
    /// key shares, the chain refuses every read from then on, the access log stays — and
    /// delete the account. Standard input holds your password. Prints the receipt. This
    /// cannot be undone: `export` first.
    Delete {
        /// Read the password from standard input (required).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
pub enum TotpCmd {
    /// Start: a fresh key for your authenticator app (type it in, or open the URI). With
    /// --qr FILE the QR code is also saved as SVG.
    Setup {
        #[arg(long)]
        qr: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Turn it on with the six digits the app shows; prints your backup codes, once.
    Confirm {
        code: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Turn it off: standard input holds your password, then a code (or a backup code).
    Off {
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
pub enum PatientCmd {
    /// Sign up as a patient.
    Register {
        username: String,
        #[arg(long)]
        password_stdin: bool,
        /// Bring your own key: a keystore v3 file from any Ethereum wallet, which the
        /// password decrypts.
        #[arg(long)]
        keystore: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Read every record of a patient you were granted (providers).
    Records {
        patient_id: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
pub enum ProviderCmd {
    /// Register a provider (admin session): its account on this server, its entry in the
    /// network's directory, its registration in this server's organisation on chain.
    Add {
        username: String,
        #[arg(long)]
        password_stdin: bool,
        /// How patients of every organisation see it in the directory (default: the
        /// username).
        #[arg(long, default_value = "")]
        display_name: String,
        /// Its specialty, shown in the directory.
        #[arg(long, default_value = "")]
        specialty: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The network's provider directory: every organisation's providers (an admin also
    /// sees this server's disabled ones).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Disable a provider (admin session): deregistered on chain, so every grant and
    /// emergency access it holds stops working; its sessions end; its logins are refused.
    Disable {
        username: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Enable a disabled provider again (admin session): registered on chain, logins allowed.
    Enable {
        username: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Reset a provider's forgotten password (admin session): standard input holds the new
    /// one. The provider keeps its key, address and grants; its sessions end.
    ResetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
pub enum RecordCmd {
    /// Store a new record from a FHIR R4 Bundle (JSON file, `-` for stdin).
    Put {
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Store a new version of a record.
    Update {
        id: u64,
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Read a record (logged on chain).
    Get {
        id: u64,
        #[arg(long)]
        version: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Your records and their versions.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Attach a file (PDF, JPEG, PNG, HEIC or DICOM) to one of your records: the next
    /// version lists it. Streamed; a progress bar on a terminal.
    Attach {
        record: u64,
        file: PathBuf,
        /// A title to show (default: the file's name).
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A record's attachments.
    Attachment {
        #[command(subcommand)]
        cmd: AttachmentCmd,
    },
}

#[derive(Subcommand)]
pub enum AttachmentCmd {
    /// Save attachment N (from 1, as `record get` lists them) to a file (logged on chain).
    Get {
        record: u64,
        number: u32,
        /// Where to write it (it appears once whole and checked).
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        #[arg(long)]
        version: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

struct Client {
    args: ClientArgs,
    http: reqwest::Client,
}

fn token_path(args: &ClientArgs) -> PathBuf {
    args.token_file.clone().unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".secure-ehr")
            .join("token")
    })
}

fn read_body(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        return Ok(buf);
    }
    std::fs::read(file).with_context(|| format!("reading {}", file.display()))
}

/// A failed request's answer as one message: `message [field] (code, HTTP status)`, then
/// each invalid-record field on its own line.
fn error_text(answer: &str, status: u16) -> String {
    let Ok(e) = serde_json::from_str::<ErrorBody>(answer) else {
        return format!("request failed (error, HTTP {status})");
    };
    let field = e.field.map(|f| format!(" [{f}]")).unwrap_or_default();
    let details: String = e
        .errors
        .unwrap_or_default()
        .iter()
        .map(|f| format!("\n  {}: {}", f.path, f.message))
        .collect();
    format!("{}{field} ({}, HTTP {status}){details}", e.message, e.error)
}

impl Client {
    fn new(args: ClientArgs) -> anyhow::Result<Self> {
        let http = crate::transport::client_builder(args.ca_file.as_deref())?
            .timeout(std::time::Duration::from_secs(120))
            .build()?;
        Ok(Self { args, http })
    }

    fn token(&self) -> anyhow::Result<Zeroizing<String>> {
        if let Ok(t) = std::env::var("SECURE_EHR_TOKEN") {
            return Ok(Zeroizing::new(t));
        }
        let path = token_path(&self.args);
        let t = std::fs::read_to_string(&path)
            .map(Zeroizing::new)
            .with_context(|| {
                format!(
                    "not logged in (no token in {}); run `secure-ehr login`",
                    path.display()
                )
            })?;
        Ok(Zeroizing::new(t.trim().to_owned()))
    }

    /// Sends `body` (JSON) and returns the answer's body; a failure is the server's error.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        auth: bool,
    ) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.args.server.trim_end_matches('/'));
        let mut req = self.http.request(method, &url);
        if auth {
            req = req.bearer_auth(self.token()?.as_str());
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.args.server))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{}", error_text(&text, status.as_u16()));
        }
        Ok(text)
    }

    /// [`send`](Self::send), the answer parsed as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        auth: bool,
    ) -> anyhow::Result<T> {
        let text = self.send(method, path, body, auth).await?;
        serde_json::from_str(&text).with_context(|| format!("unexpected answer from {path}"))
    }

    /// GETs `path`.
    async fn get<T: DeserializeOwned>(&self, path: &str, auth: bool) -> anyhow::Result<T> {
        self.call(reqwest::Method::GET, path, None, auth).await
    }

    /// POSTs a JSON body.
    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        auth: bool,
    ) -> anyhow::Result<T> {
        let body = serde_json::to_vec(body)?;
        self.call(reqwest::Method::POST, path, Some(body), auth)
            .await
    }

    /// Prints `value` as JSON with `--json`, else its line.
    fn print<T: Serialize>(
        &self,
        value: &T,
        line: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<()> {
        if self.args.json {
            println!("{}", serde_json::to_value(value)?);
        } else {
            println!("{}", line(value));
        }
        Ok(())
    }
}

async fn provider_switch(c: Client, username: &str, disable: bool) -> anyhow::Result<()> {
    if !username_in_path(username) {
        bail!("invalid username {username:?}: only a-z, 0-9, '.', '_' and '-'");
    }
    let verb = if disable { "disable" } else { "enable" };
    let path = format!("/api/providers/{}/{verb}", username.trim());
    let a: Account = c.call(reqwest::Method::POST, &path, None, true).await?;
    c.print(&a, |a| {
        if a.disabled {
            format!(
                "provider {} disabled: deregistered on chain, signed out, logins refused",
                a.username
            )
        } else {
            format!("provider {} enabled: registered on chain", a.username)
        }
    })
}

/// Whether a username can go into a URL path as it is (the server's own rule is stricter).
fn username_in_path(username: &str) -> bool {
    let u = username.trim();
    !u.is_empty()
        && u.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && u != "."
        && u != ".."
}

pub fn run(cmd: ClientCommand, _data_dir: &Path) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(cmd))
}

async fn run_async(cmd: ClientCommand) -> anyhow::Result<()> {
    use reqwest::Method as M;
    let password = |stdin: bool| -> anyhow::Result<Zeroizing<String>> {
        if !stdin {
            bail!("pass the password on standard input with --password-stdin");
        }
        password_from_stdin()
    };
    match cmd {
        ClientCommand::Login {
            username,
            password_stdin,
            client,
        } => {
            let c = Client::new(client)?;
            if !password_stdin {
                bail!("pass the password on standard input with --password-stdin");
            }
            let (pw, code) = account::password_and_code_from_stdin()?;
            let mut body = Login {
                username: username.clone(),
                password: pw.to_string(),
                code: code.map(|c| c.to_string()),
            };
            let answer = c.post::<Session>("/api/session", &body, false).await;
            body.password.zeroize();
            if let Some(c) = body.code.as_mut() {
                c.zeroize();
            }
            let mut session = answer?;
            let token = Zeroizing::new(std::mem::replace(&mut session.token, "<saved>".into()));
            let path = token_path(&c.args);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            std::io::Write::write_all(&mut opts.open(&path)?, token.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            c.print(&session, |s| {
                format!("logged in as {} ({})", s.username, s.role)
            })?;
        }
        ClientCommand::Password {
            password_stdin,
            client,
        } => account::change_password(Client::new(client)?, password_stdin).await?,
        ClientCommand::Totp { cmd } => account::totp(cmd).await?,
        ClientCommand::Recover {
            username,
            password_stdin,
            client,
        } => account::recover(Client::new(client)?, &username, password_stdin).await?,
        ClientCommand::RecoveryCode {
            password_stdin,
            client,
        } => account::new_code(Client::new(client)?, password(password_stdin)?).await?,
        ClientCommand::Profile {
            display_name,
            specialty,
            client,
        } => account::profile(Client::new(client)?, display_name, specialty).await?,
        ClientCommand::Export { out, client } => {
            account::export(Client::new(client)?, &out).await?
        }
        ClientCommand::Account {
            cmd:
                AccountCmd::Delete {
                    password_stdin,
                    client,
                },
        } => {
            let c = Client::new(client)?;
            account::delete(&c, password(password_stdin)?).await?;
            let _ = std::fs::remove_file(token_path(&c.args));
        }
        ClientCommand::Keystore { out, client } => {
            account::keystore(Client::new(client)?, out).await?
        }
        ClientCommand::Logout { client } => {
            let c = Client::new(client)?;
            c.send(M::DELETE, "/api/session", None, true).await?;
            let _ = std::fs::remove_file(token_path(&c.args));
            c.print(&(), |_| "logged out".into())?;
        }
        ClientCommand::Patient { cmd } => match cmd {
            PatientCmd::Register {
                username,
                password_stdin,
                keystore,
                client,
            } => {
                let c = Client::new(client)?;
                let pw = password(password_stdin)?;
                let keystore = match &keystore {
                    None => None,
                    Some(path) => {
                        let text = std::fs::read_to_string(path)
                            .with_context(|| format!("reading {}", path.display()))?;
                        Some(
                            serde_json::from_str::<serde_json::Value>(&text).with_context(
                                || format!("{}: not a keystore (JSON) file", path.display()),
                            )?,
                        )
                    }
                };
                let mut body = SignUp {
                    username: username.clone(),
                    password: pw.to_string(),
                    keystore,
                };
                let answer = c.post("/api/patients", &body, false).await;
                body.password.zeroize();
                let p: PatientAccount = answer?;
                c.print(&p, |p| {
                    format!(
                        "patient {} registered with patient ID {} (address {})\n{}",
                        p.username,
                        p.patient_id,
                        p.address,
                        account::code_lines(&p.recovery_code)
                    )
                })?;
            }
            PatientCmd::Records { patient_id, client } => {
                let c = Client::new(client)?;
                let v: Vec<ReadRecord> = c
                    .get(&format!("/api/patients/{patient_id}/records"), true)
                    .await?;
                c.print(&v, |v| each(v, read_record_line))?;
            }
        },
        ClientCommand::Provider { cmd } => match cmd {
            ProviderCmd::Add {
                username,
                password_stdin,
                display_name,
                specialty,
                client,
            } => {
                let c = Client::new(client)?;
                let mut body = NewProvider {
                    username,
                    password: password(password_stdin)?.to_string(),
                    display_name,
                    specialty,
                };
                let answer = c.post::<Account>("/api/providers", &body, true).await;
                body.password.zeroize();
                let a = answer?;
                c.print(&a, |a| {
                    format!("provider {} registered ({})", a.username, wire(&a.address))
                })?;
            }
            ProviderCmd::List { client } => {
                let c = Client::new(client)?;
                let v: Vec<Provider> = c.get("/api/providers", true).await?;
                c.print(&v, |v| each(v, provider_line))?;
            }
            ProviderCmd::Disable { username, client } => {
                provider_switch(Client::new(client)?, &username, true).await?;
            }
            ProviderCmd::Enable { username, client } => {
                provider_switch(Client::new(client)?, &username, false).await?;
            }
            ProviderCmd::ResetPassword {
                username,
                password_stdin,
                client,
            } => {
                let c = Client::new(client)?;
                account::reset_provider(c, &username, password(password_stdin)?).await?;
            }
        },
        ClientCommand::Record { cmd } => match cmd {
            RecordCmd::Put { file, client } => {
                let c = Client::new(client)?;
                let v: Stored = c
                    .call(M::POST, "/api/records", Some(read_body(&file)?), true)
                    .await?;
                c.print(&v, stored_line)?;
            }
            RecordCmd::Update { id, file, client } => {
                let c = Client::new(client)?;
                let v: Stored = c
                    .call(
                        M::PUT,
                        &format!("/api/records/{id}"),
                        Some(read_body(&file)?),
                        true,
                    )
                    .await?;
                c.print(&v, stored_line)?;
            }
            RecordCmd::Get {
                id,
                version,
                client,
            } => {
                let c = Client::new(client)?;
                let q = version.map(|v| format!("?version={v}")).unwrap_or_default();
                let v: ReadRecord = c.get(&format!("/api/records/{id}{q}"), true).await?;
                c.print(&v, read_record_line)?;
            }
            RecordCmd::List { client } => {
                let c = Client::new(client)?;
                let v: Vec<RecordSummary> = c.get("/api/records", true).await?;
                c.print(&v, |v| each(v, summary_line))?;
            }
            RecordCmd::Attach {
                record,
                file,
                title,
                client,
            } => attach::attach(&Client::new(client)?, record, &file, title).await?,
            RecordCmd::Attachment {
                cmd:
                    AttachmentCmd::Get {
                        record,
                        number,
                        output,
                        version,
                        client,
                    },
            } => attach::get(&Client::new(client)?, record, number, version, &output).await?,
        },
        ClientCommand::Grant {
            provider,
            record,
            days,
            write,
            client,
        } => {
            let c = Client::new(client)?;
            if days == 0 || days > 3650 {
                bail!("--days must be 1 to 3650");
            }
            let request = GrantRequest {
                provider: provider.clone(),
                record_id: record,
                expires_at: unix_now() + days * 86_400,
                write,
            };
            let v: Tx = c.post("/api/grants", &request, true).await?;
            c.print(&v, |v| {
                let writes = match v.write_tx_hash {
                    Some(w) => format!(", writing too (tx {w})"),
                    None => String::new(),
                };
                format!(
                    "granted {provider} {} for {days} days (tx {}){writes}",
                    record.map_or("all your records".into(), |r| format!("record {r}")),
                    v.tx_hash
                )
            })?;
        }
        ClientCommand::Revoke {
            provider,
            record,
            write,
            client,
        } => {
            let c = Client::new(client)?;
            let request = RevokeRequest {
                provider: provider.clone(),
                record_id: record,
                write,
            };
            let v: Tx = c.post("/api/grants/revoke", &request, true).await?;
            let what = if write { "writing of " } else { "" };
            c.print(&v, |v| {
                format!("revoked {what}{provider} (tx {})", v.tx_hash)
            })?;
        }
        ClientCommand::Emergency {
            patient_id,
            reason,
            client,
        } => {
            let c = Client::new(client)?;
            let request = EmergencyRequest { patient_id, reason };
            let v: Vec<ReadRecord> = c.post("/api/emergency", &request, true).await?;
            c.print(&v, |v| each(v, read_record_line))?;
        }
        ClientCommand::Shared { client } => {
            let c = Client::new(client)?;
            let v: Vec<Shared> = c.get("/api/shared", true).await?;
            c.print(&v, |v| each(v, shared_line))?;
        }
        ClientCommand::Log { client } => {
            let c = Client::new(client)?;
            let v: Vec<AccessLogEntry> = c.get("/api/access-log", true).await?;
            c.print(&v, |v| {
                if v.is_empty() {
                    "no reads yet".into()
                } else {
                    each(v, log_line)
                }
            })?;
        }
        ClientCommand::Status { client } => {
            let c = Client::new(client)?;
            let v: Status = c.get("/api/status", false).await?;
            c.print(&v, status_line)?;
        }
    }
    Ok(())
}
