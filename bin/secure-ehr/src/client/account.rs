//! Account commands: a forgotten password reset with the recovery code, a new code, the
//! admin's reset of a provider's password, and a provider's own directory entry. Secrets
//! come on standard input, never on the command line.

use anyhow::{Context, bail};
use std::path::PathBuf;

use ehr_api::types::{
    Account, BackupCodes, ErasureReceipt, Password, PasswordChange, Profile, ProfileUpdate,
    Recover, RecoveryCode, TotpCode, TotpDisable, TotpSetup,
};
use zeroize::{Zeroize, Zeroizing};

use super::{Client, TotpCmd, lines::wire, username_in_path};

/// The two lines standard input must hold (`what` names them for the error).
pub(super) fn two_lines_from_stdin(
    what: &str,
) -> anyhow::Result<(Zeroizing<String>, Zeroizing<String>)> {
    let mut buf = Zeroizing::new(String::new());
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)
        .context("reading standard input")?;
    let mut lines = buf.lines();
    match (lines.next(), lines.next()) {
        (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => {
            Ok((Zeroizing::new(a.to_owned()), Zeroizing::new(b.to_owned())))
        }
        _ => bail!("standard input needs two lines: {what}"),
    }
}

/// How a code is printed: the code, and that it is shown once.
pub(super) fn code_lines(code: &str) -> String {
    format!(
        "recovery code: {code}\n  (shown only this once: write it down; it resets your password and keeps your key)"
    )
}

fn print_code(c: &Client, code: &RecoveryCode, lead: &str) -> anyhow::Result<()> {
    c.print(code, |r| {
        format!("{lead}\n{}", code_lines(&r.recovery_code))
    })
}

pub(super) async fn recover(c: Client, username: &str, stdin: bool) -> anyhow::Result<()> {
    if !stdin {
        bail!(
            "pass the recovery code and the new password on standard input with --password-stdin"
        );
    }
    let (code, new) = two_lines_from_stdin("the recovery code, then the new password")?;
    let mut body = Recover {
        username: username.to_owned(),
        recovery_code: code.to_string(),
        new_password: new.to_string(),
    };
    let answer = c.post::<RecoveryCode>("/api/recover", &body, false).await;
    body.recovery_code.zeroize();
    body.new_password.zeroize();
    print_code(
        &c,
        &answer?,
        "password set; every session of the account was signed out; the code you used no longer works",
    )
}

pub(super) async fn new_code(c: Client, password: Zeroizing<String>) -> anyhow::Result<()> {
    let mut body = Password {
        password: password.to_string(),
    };
    let answer = c
        .post::<RecoveryCode>("/api/me/recovery", &body, true)
        .await;
    body.password.zeroize();
    print_code(
        &c,
        &answer?,
        "a new recovery code; the old one no longer works",
    )
}

pub(super) async fn reset_provider(
    c: Client,
    username: &str,
    password: Zeroizing<String>,
) -> anyhow::Result<()> {
    if !username_in_path(username) {
        bail!("invalid username {username:?}: only a-z, 0-9, '.', '_' and '-'");
    }
    let mut body = Password {
        password: password.to_string(),
    };
    let path = format!("/api/providers/{}/password", username.trim());
    let answer = c.post::<Account>(&path, &body, true).await;
    body.password.zeroize();
    let a = answer?;
    c.print(&a, |a| {
        format!(
            "password of provider {} reset: same key and grants ({}); its sessions were signed out",
            a.username,
            wire(&a.address)
        )
    })
}

/// Shows the provider's directory entry, or (with either field given) changes it.
pub(super) async fn profile(
    c: Client,
    display_name: Option<String>,
    specialty: Option<String>,
) -> anyhow::Result<()> {
    let p: Profile = if display_name.is_none() && specialty.is_none() {
        c.get("/api/me/profile", true).await?
    } else {
        // A field left out keeps its value.
        let now: Profile = c.get("/api/me/profile", true).await?;
        let body = ProfileUpdate {
            display_name: display_name.unwrap_or(now.display_name),
            specialty: specialty.unwrap_or(now.specialty),
        };
        let sent = serde_json::to_vec(&body)?;
        let answer = c
            .send(reqwest::Method::PUT, "/api/me/profile", Some(sent), true)
            .await?;
        serde_json::from_str(&answer).context("unexpected answer from /api/me/profile")?
    };
    c.print(&p, |p| {
        let specialty = if p.specialty.is_empty() {
            String::new()
        } else {
            format!(", {}", p.specialty)
        };
        format!(
            "{} ({}){specialty} — {}",
            p.display_name,
            p.username,
            wire(&p.address)
        )
    })
}

/// Saves the patient's export (one FHIR Bundle) to `out`, which must not exist (mode 0600:
/// it is the patient's whole record).
pub(super) async fn export(c: Client, out: &std::path::Path) -> anyhow::Result<()> {
    let text = c
        .send(reqwest::Method::GET, "/api/export", None, true)
        .await?;
    let bundle: serde_json::Value =
        serde_json::from_str(&text).context("unexpected answer from /api/export")?;
    crate::share::write_new(out, text.as_bytes())
        .with_context(|| format!("creating {} (it must not exist yet)", out.display()))?;
    let count = |t: &str| {
        bundle["entry"].as_array().map_or(0, |e| {
            e.iter()
                .filter(|e| e["resource"]["resourceType"] == t)
                .count()
        })
    };
    let entries = bundle["entry"].as_array().map_or(0, Vec::len);
    let saved = serde_json::json!({ "path": out, "entries": entries });
    c.print(&saved, |_| {
        format!(
            "exported {entries} resources to {} ({} grants as Consent, {} access log entries as AuditEvent)",
            out.display(),
            count("Consent"),
            count("AuditEvent")
        )
    })
}

/// Standard input's password (first line) and, when there is one, a two-factor code
/// (second line).
pub(super) fn password_and_code_from_stdin()
-> anyhow::Result<(Zeroizing<String>, Option<Zeroizing<String>>)> {
    let mut buf = Zeroizing::new(String::new());
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)
        .context("reading the password from standard input")?;
    let mut lines = buf.lines();
    let password = Zeroizing::new(lines.next().unwrap_or("").to_owned());
    if password.is_empty() {
        bail!("no password on standard input");
    }
    let code = lines
        .next()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| Zeroizing::new(c.to_owned()));
    Ok((password, code))
}

pub(super) async fn totp(cmd: TotpCmd) -> anyhow::Result<()> {
    match cmd {
        TotpCmd::Setup { qr, client } => {
            let c = Client::new(client)?;
            let s: TotpSetup = c
                .call(reqwest::Method::POST, "/api/me/totp", None, true)
                .await?;
            if let Some(path) = &qr {
                std::fs::write(path, &s.qr_svg)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            c.print(&s, |s| {
                format!(
                    "key: {}\nuri: {}\nthen: secure-ehr totp confirm CODE (the six digits your app shows)",
                    s.secret, s.otpauth_uri
                )
            })
        }
        TotpCmd::Confirm { code, client } => {
            let c = Client::new(client)?;
            let b: BackupCodes = c
                .post("/api/me/totp/confirm", &TotpCode { code }, true)
                .await?;
            c.print(&b, |b| {
                format!(
                    "two-factor sign-in is on. Backup codes (each signs in once; shown only now):\n{}",
                    b.backup_codes.join("\n")
                )
            })
        }
        TotpCmd::Off {
            password_stdin,
            client,
        } => {
            let c = Client::new(client)?;
            if !password_stdin {
                bail!("pass the password and a code on standard input with --password-stdin");
            }
            let (password, code) = two_lines_from_stdin("your password, then a code")?;
            let mut body = TotpDisable {
                password: password.to_string(),
                code: code.to_string(),
            };
            let sent = serde_json::to_vec(&body)?;
            body.password.zeroize();
            body.code.zeroize();
            c.send(reqwest::Method::DELETE, "/api/me/totp", Some(sent), true)
                .await?;
            c.print(&(), |_| "two-factor sign-in is off".into())
        }
    }
}

/// `password`: the current and the new password from standard input.
pub(super) async fn change_password(c: Client, password_stdin: bool) -> anyhow::Result<()> {
    if !password_stdin {
        bail!("pass the passwords on standard input with --password-stdin");
    }
    let (current, new) = two_lines_from_stdin("the current password, then the new one")?;
    let mut body = PasswordChange {
        current_password: current.to_string(),
        new_password: new.to_string(),
    };
    let sent = serde_json::to_vec(&body)?;
    body.current_password.zeroize();
    body.new_password.zeroize();
    let answer = c
        .send(reqwest::Method::POST, "/api/me/password", Some(sent), true)
        .await;
    answer?;
    c.print(&(), |_| {
        "password changed; your other sessions were signed out".into()
    })?;
    Ok(())
}

/// `keystore`: the patient's keystore v3 file, saved where `out` says (or geth's name).
pub(super) async fn keystore(c: Client, out: Option<PathBuf>) -> anyhow::Result<()> {
    let text = c
        .send(reqwest::Method::GET, "/api/me/keystore", None, true)
        .await?;
    let file: serde_json::Value =
        serde_json::from_str(&text).context("unexpected answer from /api/me/keystore")?;
    let address = file["address"].as_str().unwrap_or("key").to_owned();
    let path = out.unwrap_or_else(|| {
        PathBuf::from(format!(
            "UTC--{}--{address}.json",
            file["id"].as_str().unwrap_or("keystore")
        ))
    });
    crate::share::write_new(&path, text.as_bytes())
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    let saved = serde_json::json!({ "path": path, "address": address });
    c.print(&saved, |_| {
        format!("keystore of 0x{address} saved to {}", path.display())
    })?;
    Ok(())
}

/// `account delete`: the account deleted and its records erased; prints the receipt.
pub(super) async fn delete(c: &Client, password: Zeroizing<String>) -> anyhow::Result<()> {
    let mut body = Password {
        password: password.to_string(),
    };
    let sent = serde_json::to_vec(&body)?;
    body.password.zeroize();
    let answer = c
        .send(reqwest::Method::DELETE, "/api/account", Some(sent), true)
        .await?;
    let r: ErasureReceipt =
        serde_json::from_str(&answer).context("unexpected answer from /api/account")?;
    c.print(&r, receipt_lines)
}

/// The receipt, a line per record and per node.
fn receipt_lines(r: &ErasureReceipt) -> String {
    let mut out = vec![format!(
        "account deleted; {} record(s) erased",
        r.records.len()
    )];
    for rec in &r.records {
        let versions: Vec<String> = rec.versions.iter().map(u32::to_string).collect();
        out.push(format!(
            "  record {}: versions {}",
            rec.record_id,
            versions.join(", ")
        ));
    }
    for n in &r.nodes {
        out.push(match (n.confirmed, &n.error) {
            (true, _) => format!(
                "  {}: confirmed ({} blocks deleted)",
                n.node, n.blocks_deleted
            ),
            (false, e) => format!(
                "  {}: not yet ({}); it destroys its part when it is back, before it serves anything",
                n.node,
                e.as_deref().unwrap_or("no answer")
            ),
        });
    }
    if let (Some(tx), Some(block)) = (r.tx_hash, r.block_number) {
        out.push(format!("  erasure on chain: {} (block {block})", wire(&tx)));
    }
    out.join("\n")
}
