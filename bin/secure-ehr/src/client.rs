//! The CLI client: drives a running server through its JSON API (`--server` or
//! `SECURE_EHR_URL`, default http://127.0.0.1:9999). Each command prints a short line, or
//! the server's JSON with `--json`. `login` keeps the session token in a file (mode 0600).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::serve::password_from_stdin;

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
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Log in to the server and keep the session token.
    Login {
        username: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
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
    /// Providers: register one (admin), or list them.
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
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a grant.
    Revoke {
        provider: String,
        #[arg(long)]
        record: Option<u64>,
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
pub enum PatientCmd {
    /// Sign up as a patient.
    Register {
        username: String,
        #[arg(long)]
        password_stdin: bool,
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
    /// Register a provider (admin session).
    Add {
        username: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List providers.
    List {
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

impl Client {
    fn new(args: ClientArgs) -> anyhow::Result<Self> {
        Ok(Self {
            args,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(120))
                .build()?,
        })
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

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Body>,
        auth: bool,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.args.server.trim_end_matches('/'));
        let mut req = self.http.request(method, &url);
        if auth {
            req = req.bearer_auth(self.token()?.as_str());
        }
        req = match body {
            Some(Body::Json(v)) => req.json(&v),
            Some(Body::Raw(b)) => req.header("content-type", "application/json").body(b),
            None => req,
        };
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.args.server))?;
        let status = resp.status();
        let text = resp.text().await?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let code = value["error"].as_str().unwrap_or("error");
            let msg = value["message"].as_str().unwrap_or("request failed");
            let field = value["field"]
                .as_str()
                .map(|f| format!(" [{f}]"))
                .unwrap_or_default();
            let mut details = String::new();
            if let Some(errors) = value["errors"].as_array() {
                for e in errors {
                    details.push_str(&format!(
                        "\n  {}: {}",
                        e["path"].as_str().unwrap_or("?"),
                        e["message"].as_str().unwrap_or("?")
                    ));
                }
            }
            bail!("{msg}{field} ({code}, HTTP {}){details}", status.as_u16());
        }
        Ok(value)
    }

    /// POSTs a JSON body.
    async fn post(&self, path: &str, body: Value, auth: bool) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(Body::Json(body)), auth)
            .await
    }

    /// POSTs `{username, password}` (sign-up, login, provider registration).
    async fn credentials(
        &self,
        path: &str,
        username: &str,
        password: &str,
        auth: bool,
    ) -> anyhow::Result<Value> {
        let body = json!({ "username": username, "password": password });
        self.post(path, body, auth).await
    }

    fn print(&self, value: &Value, line: impl FnOnce(&Value) -> String) {
        if self.args.json {
            println!("{value}");
        } else {
            println!("{}", line(value));
        }
    }
}

enum Body {
    Json(Value),
    Raw(Vec<u8>),
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// One line per element of a JSON array.
fn each(v: &Value, line: impl Fn(&Value) -> String) -> String {
    v.as_array()
        .map(|a| a.iter().map(line).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn read_record_line(r: &Value) -> String {
    let form = &r["form"];
    let who = if form.is_object() {
        format!(
            "{}, born {}; {}",
            s(&form["patient_name"]),
            s(&form["birth_date"]),
            s(&form["health_condition"])
        )
    } else {
        "FHIR bundle (use --json)".into()
    };
    format!(
        "record {} v{} of patient {}: {who}{} (logged in tx {})",
        s(&r["record_id"]),
        s(&r["version"]),
        s(&r["patient_id"]),
        if r["emergency"] == Value::Bool(true) {
            " [EMERGENCY]"
        } else {
            ""
        },
        s(&r["access_tx"])
    )
}

fn stored_line(v: &Value) -> String {
    format!(
        "Record stored in IPFS and in Blockchain with ID: {} (version {}, hash code {}, tx {})",
        s(&v["record_id"]),
        s(&v["version"]),
        s(&v["manifest_cid"]),
        s(&v["tx_hash"])
    )
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
            let pw = password(password_stdin)?;
            let v = c.credentials("/api/session", &username, &pw, false).await?;
            let token = Zeroizing::new(
                v["token"]
                    .as_str()
                    .context("no token in the answer")?
                    .to_owned(),
            );
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
            let mut shown = v.clone();
            shown["token"] = Value::String("<saved>".into());
            c.print(&shown, |v| {
                format!("logged in as {} ({})", s(&v["username"]), s(&v["role"]))
            });
        }
        ClientCommand::Logout { client } => {
            let c = Client::new(client)?;
            c.call(M::DELETE, "/api/session", None, true).await?;
            let _ = std::fs::remove_file(token_path(&c.args));
            c.print(&Value::Null, |_| "logged out".into());
        }
        ClientCommand::Patient { cmd } => match cmd {
            PatientCmd::Register {
                username,
                password_stdin,
                client,
            } => {
                let c = Client::new(client)?;
                let pw = password(password_stdin)?;
                let v = c
                    .credentials("/api/patients", &username, &pw, false)
                    .await?;
                c.print(&v, |v| {
                    format!(
                        "patient {} registered with patient ID {}",
                        s(&v["username"]),
                        s(&v["patient_id"])
                    )
                });
            }
            PatientCmd::Records { patient_id, client } => {
                let c = Client::new(client)?;
                let v = c
                    .call(
                        M::GET,
                        &format!("/api/patients/{patient_id}/records"),
                        None,
                        true,
                    )
                    .await?;
                c.print(&v, |v| each(v, read_record_line));
            }
        },
        ClientCommand::Provider { cmd } => match cmd {
            ProviderCmd::Add {
                username,
                password_stdin,
                client,
            } => {
                let c = Client::new(client)?;
                let pw = password(password_stdin)?;
                let v = c
                    .credentials("/api/providers", &username, &pw, true)
                    .await?;
                c.print(&v, |v| {
                    format!(
                        "provider {} registered ({})",
                        s(&v["username"]),
                        s(&v["address"])
                    )
                });
            }
            ProviderCmd::List { client } => {
                let c = Client::new(client)?;
                let v = c.call(M::GET, "/api/providers", None, true).await?;
                c.print(&v, |v| {
                    v.as_array()
                        .map(|a| {
                            a.iter()
                                .map(|p| format!("{} {}", s(&p["username"]), s(&p["address"])))
                                .collect::<Vec<_>>()
                                .join("\n")
                        })
                        .unwrap_or_default()
                });
            }
        },
        ClientCommand::Record { cmd } => match cmd {
            RecordCmd::Put { file, client } => {
                let c = Client::new(client)?;
                let v = c
                    .call(
                        M::POST,
                        "/api/records",
                        Some(Body::Raw(read_body(&file)?)),
                        true,
                    )
                    .await?;
                c.print(&v, stored_line);
            }
            RecordCmd::Update { id, file, client } => {
                let c = Client::new(client)?;
                let v = c
                    .call(
                        M::PUT,
                        &format!("/api/records/{id}"),
                        Some(Body::Raw(read_body(&file)?)),
                        true,
                    )
                    .await?;
                c.print(&v, stored_line);
            }
            RecordCmd::Get {
                id,
                version,
                client,
            } => {
                let c = Client::new(client)?;
                let q = version.map(|v| format!("?version={v}")).unwrap_or_default();
                let v = c
                    .call(M::GET, &format!("/api/records/{id}{q}"), None, true)
                    .await?;
                c.print(&v, read_record_line);
            }
            RecordCmd::List { client } => {
                let c = Client::new(client)?;
                let v = c.call(M::GET, "/api/records", None, true).await?;
                c.print(&v, |v| {
                    v.as_array()
                        .map(|a| {
                            a.iter()
                                .map(|r| {
                                    format!(
                                        "record {} version {} ({} versions)",
                                        s(&r["record_id"]),
                                        s(&r["version"]),
                                        r["versions"].as_array().map_or(0, |x| x.len())
                                    )
                                })
                                .collect::<Vec<_>>()
                                .join("\n")
                        })
                        .unwrap_or_default()
                });
            }
        },
        ClientCommand::Grant {
            provider,
            record,
            days,
            client,
        } => {
            let c = Client::new(client)?;
            if days == 0 || days > 3650 {
                bail!("--days must be 1 to 3650");
            }
            let expires_at = unix_now() + days * 86_400;
            let v = c
                .post(
                    "/api/grants",
                    json!({ "provider": provider, "record_id": record, "expires_at": expires_at }),
                    true,
                )
                .await?;
            c.print(&v, |v| {
                format!(
                    "granted {provider} {} for {days} days (tx {})",
                    record.map_or("all your records".into(), |r| format!("record {r}")),
                    s(&v["tx_hash"])
                )
            });
        }
        ClientCommand::Revoke {
            provider,
            record,
            client,
        } => {
            let c = Client::new(client)?;
            let v = c
                .post(
                    "/api/grants/revoke",
                    json!({ "provider": provider, "record_id": record }),
                    true,
                )
                .await?;
            c.print(&v, |v| {
                format!("revoked {provider} (tx {})", s(&v["tx_hash"]))
            });
        }
        ClientCommand::Emergency {
            patient_id,
            reason,
            client,
        } => {
            let c = Client::new(client)?;
            let v = c
                .post(
                    "/api/emergency",
                    json!({ "patient_id": patient_id, "reason": reason }),
                    true,
                )
                .await?;
            c.print(&v, |v| each(v, read_record_line));
        }
        ClientCommand::Log { client } => {
            let c = Client::new(client)?;
            let v = c.call(M::GET, "/api/access-log", None, true).await?;
            c.print(&v, |v| {
                let lines: Vec<String> = v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|e| {
                                format!(
                                    "{}record {} v{} read by {} at {}{}",
                                    if e["emergency"] == Value::Bool(true) {
                                        "EMERGENCY "
                                    } else {
                                        ""
                                    },
                                    s(&e["record_id"]),
                                    s(&e["version"]),
                                    e["reader_username"]
                                        .as_str()
                                        .map_or_else(|| s(&e["reader"]), str::to_owned),
                                    s(&e["timestamp"]),
                                    e["reason"]
                                        .as_str()
                                        .map(|r| format!(" — reason: {r}"))
                                        .unwrap_or_default()
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if lines.is_empty() {
                    "no reads yet".into()
                } else {
                    lines.join("\n")
                }
            });
        }
        ClientCommand::Status { client } => {
            let c = Client::new(client)?;
            let v = c.call(M::GET, "/api/status", None, false).await?;
            c.print(&v, |v| {
                let up = v["nodes"].as_array().map_or(0, |n| {
                    n.iter()
                        .filter(|x| x["reachable"] == Value::Bool(true))
                        .count()
                });
                format!(
                    "{} chain at block {}, contract {}; {} of {} nodes reachable, {} needed",
                    s(&v["chain"]["backend"]),
                    s(&v["chain"]["head_block"]),
                    s(&v["chain"]["contract"]),
                    up,
                    s(&v["n"]),
                    s(&v["k"])
                )
            });
        }
    }
    Ok(())
}
