//! Attachment commands: `record attach RECORD FILE [--title T]` streams a file into a
//! record's next version; `record attachment get RECORD N -o FILE` streams attachment `N`
//! back (checked against its SHA-256) into a file that appears only once it is whole. Both
//! show a progress bar on a terminal and are quiet otherwise.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ehr_api::types::AttachmentStored;
use ehr_records::attachments::{Known, SNIFF_LEN};
use futures::StreamExt;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Client, error_text};

/// A progress bar on standard error when it is a terminal; hidden otherwise.
fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// The file's type, from its first bytes (the server checks them again).
fn sniff(head: &[u8], file: &Path) -> anyhow::Result<Known> {
    Known::ALL
        .into_iter()
        .find(|k| k.matches(head))
        .with_context(|| {
            format!(
                "{}: not a file type SecureEHR stores (PDF, JPEG, PNG, HEIC or DICOM)",
                file.display()
            )
        })
}

/// `record attach`: the file streamed as the request body.
pub(super) async fn attach(
    c: &Client,
    record: u64,
    file: &Path,
    title: Option<String>,
) -> anyhow::Result<()> {
    let mut f = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("opening {}", file.display()))?;
    let len = f.metadata().await?.len();
    let mut head = vec![0u8; SNIFF_LEN.min(len as usize)];
    f.read_exact(&mut head).await?;
    let known = sniff(&head, file)?;
    let title = title.or_else(|| file.file_name().map(|n| n.to_string_lossy().into_owned()));
    let bar = progress(len, "uploading");
    let reader = bar.clone();
    // The head again, then the rest, 256 KiB at a time.
    let rest = file_body(f, move |n| reader.inc(n));
    bar.inc(head.len() as u64);
    let body = futures::stream::once(async move { Ok(head) }).chain(rest);
    let mut url = reqwest::Url::parse(&format!(
        "{}/api/records/{record}/attachments",
        c.args.server.trim_end_matches('/')
    ))?;
    if let Some(t) = &title {
        url.query_pairs_mut().append_pair("title", t);
    }
    let resp = c
        .http
        .post(url)
        .bearer_auth(c.token()?.as_str())
        .header("content-type", known.media_type())
        .header("content-length", len)
        .timeout(std::time::Duration::from_secs(24 * 3600))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {}", c.args.server))?;
    bar.finish_and_clear();
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("{}", error_text(&text, status.as_u16()));
    }
    let stored: AttachmentStored =
        serde_json::from_str(&text).context("unexpected answer from the server")?;
    c.print(&stored, |s| {
        format!(
            "Attached as attachment {} of record {} (version {}): {}, {} bytes, SHA-256 {} (tx {})",
            s.attachment, s.record_id, s.version, s.content_type, s.size, s.sha256, s.tx_hash
        )
    })
}

/// `record attachment get`: the bytes into `out` (via `out.part`, renamed once whole and
/// checked; nothing is left at `out` if the transfer fails).
pub(super) async fn get(
    c: &Client,
    record: u64,
    number: u32,
    version: Option<u32>,
    out: &Path,
) -> anyhow::Result<()> {
    let q = version.map(|v| format!("?version={v}")).unwrap_or_default();
    let url = format!(
        "{}/api/records/{record}/attachments/{number}{q}",
        c.args.server.trim_end_matches('/')
    );
    let resp = c
        .http
        .get(&url)
        .bearer_auth(c.token()?.as_str())
        .timeout(std::time::Duration::from_secs(24 * 3600))
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {}", c.args.server))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await?;
        bail!("{}", error_text(&text, status.as_u16()));
    }
    let len = resp.content_length();
    let digest = resp
        .headers()
        .get("repr-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let part = part_path(out);
    let written = async {
        let mut file = tokio::fs::File::create(&part)
            .await
            .with_context(|| format!("creating {}", part.display()))?;
        let bar = progress(len.unwrap_or(0), "downloading");
        let mut hash = sha2::Sha256::new();
        let mut total = 0u64;
        let mut body = resp.bytes_stream();
        while let Some(piece) = body.next().await {
            let piece = piece.context("the download broke off")?;
            hash.update(&piece);
            file.write_all(&piece).await?;
            total += piece.len() as u64;
            bar.inc(piece.len() as u64);
        }
        bar.finish_and_clear();
        if let Some(len) = len
            && len != total
        {
            bail!("the download broke off: {total} of {len} bytes");
        }
        if let Some(d) = &digest {
            use base64::Engine;
            let ours = format!(
                "sha-256=:{}:",
                base64::engine::general_purpose::STANDARD.encode(hash.finalize())
            );
            if !d.split(',').any(|x| x.trim() == ours) {
                bail!("the file does not match its SHA-256 (Repr-Digest {d})");
            }
        }
        file.sync_all().await?;
        anyhow::Ok(total)
    }
    .await;
    let total = match written {
        Ok(total) => total,
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
    };
    tokio::fs::rename(&part, out)
        .await
        .with_context(|| format!("renaming {} to {}", part.display(), out.display()))?;
    if !c.args.json {
        println!("{total} bytes written to {}", out.display());
    } else {
        println!("{}", serde_json::json!({ "bytes": total, "file": out }));
    }
    Ok(())
}

/// A file's bytes as a request body, 256 KiB at a time (`read` told each piece's length).
pub(crate) fn file_body(
    f: tokio::fs::File,
    read: impl Fn(u64) + Send + 'static,
) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    futures::stream::unfold((f, read), |(mut f, read)| async move {
        let mut buf = vec![0u8; 256 << 10];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                read(n as u64);
                Some((Ok(buf), (f, read)))
            }
            Err(e) => Some((Err(e), (f, read))),
        }
    })
}

fn part_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    out.with_file_name(name)
}
