//! `secure-ehr bench --attachments`: documents end to end on the embedded default, over
//! HTTP on 127.0.0.1 — a file streamed up (`POST /api/records/{id}/attachments`: sealed,
//! dispersed over the five nodes' disks, a new record version on chain) and back
//! (`GET …/attachments/1`: logged, rebuilt, opened, written to a file) — beside `cp` of the
//! same file in the same run, and the process's peak resident memory above its idle level
//! during each transfer (this process is the server; the client streams 256 KiB at a time).
//! Dirty pages are written back (`sync`) before each timed transfer.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use ehr_records::Service;
use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::PW;

/// One size's figures.
struct Row {
    size: u64,
    cp: Duration,
    up: Duration,
    down: Duration,
    up_rss: u64,
    down_rss: u64,
}

fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Resident set size now, bytes (Linux `/proc/self/statm`).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Samples the resident set every 5 ms while `f` runs; returns its result and the peak
/// above the level before it started.
async fn peak_during<T>(f: impl std::future::Future<Output = T>) -> (T, u64) {
    let idle = rss();
    let peak = Arc::new(AtomicU64::new(idle));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let out = f.await;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    (out, peak.load(Ordering::Relaxed).saturating_sub(idle))
}

/// Writes back every dirty page first (`sync`), so each transfer is timed on its own and
/// not while the kernel still writes the one before.
fn flush_disks() {
    let _ = std::process::Command::new("sync").status();
}

/// A `size`-byte PDF-headed file of bytes that do not repeat (so nothing compresses them).
fn write_file(path: &Path, size: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut written = 0u64;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = vec![0u8; 1 << 20];
    buf[..9].copy_from_slice(b"%PDF-1.7\n");
    let mut first = true;
    while written < size {
        for w in buf.chunks_exact_mut(8).skip(if first { 2 } else { 0 }) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        first = false;
        let take = (size - written).min(buf.len() as u64) as usize;
        f.write_all(&buf[..take])?;
        written += take as u64;
    }
    f.flush()?;
    f.get_ref().sync_all()?;
    Ok(())
}

/// Parses `16M`, `256M`, `2G` (binary units) or a byte count.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a size"))?;
    let mul = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KIB" => 1 << 10,
        "M" | "MIB" => 1 << 20,
        "G" | "GIB" => 1 << 30,
        _ => return Err(format!("{s:?}: the unit is K, M or G")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("{s:?} is too large"))
}

pub(super) async fn run(
    svc: Arc<Service>,
    sizes: &[u64],
    dir: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(ehr_api::serve(
        listener,
        ehr_api::AppState::new(svc.clone()),
    ));
    let http = reqwest::Client::builder().no_proxy().build()?;
    svc.register_patient("bench-documents", PW).await?;
    let (token, session) = svc.login("bench-documents", PW, "bench").await?;
    let token = token.expose().to_owned();
    let session = session.patient()?;
    let files = dir.join("bench-files");
    std::fs::create_dir_all(&files)?;
    let mut rows = Vec::new();
    // A first, untimed 4 MiB file: the threads and allocator arenas any upload needs are
    // then part of the idle level the peaks are measured from.
    let runs = std::iter::once((4 << 20, true)).chain(sizes.iter().map(|&s| (s, false)));
    for (size, warm_up) in runs {
        let record = svc
            .put_form(
                &session,
                &ehr_records::fhir::RecordForm {
                    patient_name: "Bench Documents".into(),
                    birth_date: "1970-01-01".into(),
                    address: String::new(),
                    phone: String::new(),
                    health_condition: "Fracture".into(),
                },
            )
            .await?
            .record_id;
        let src = files.join(format!("in-{size}.pdf"));
        let copy = files.join(format!("cp-{size}.pdf"));
        let back = files.join(format!("out-{size}.pdf"));
        write_file(&src, size).context("writing the test file")?;

        flush_disks();
        let t = Instant::now();
        let status = std::process::Command::new("cp")
            .arg(&src)
            .arg(&copy)
            .status()
            .context("running cp")?;
        anyhow::ensure!(status.success(), "cp failed");
        std::fs::File::open(&copy)?.sync_all()?;
        let cp = t.elapsed();
        std::fs::remove_file(&copy)?;

        flush_disks();
        let (up, up_rss) = peak_during(async {
            let t = Instant::now();
            let f = tokio::fs::File::open(&src).await?;
            let body = crate::client::file_body(f, |_| {});
            let r = http
                .post(format!(
                    "{base}/api/records/{record}/attachments?title=bench.pdf"
                ))
                .bearer_auth(&token)
                .header("content-type", "application/pdf")
                .header("content-length", size)
                .body(reqwest::Body::wrap_stream(body))
                .send()
                .await?;
            anyhow::ensure!(r.status() == 201, "upload: {}", r.text().await?);
            anyhow::Ok(t.elapsed())
        })
        .await;
        let up = up?;

        flush_disks();
        let (down, down_rss) = peak_during(async {
            let t = Instant::now();
            let r = http
                .get(format!("{base}/api/records/{record}/attachments/1"))
                .bearer_auth(&token)
                .send()
                .await?;
            anyhow::ensure!(r.status() == 200, "download: {}", r.text().await?);
            let mut out = tokio::fs::File::create(&back).await?;
            let mut body = r.bytes_stream();
            let mut got = 0u64;
            while let Some(piece) = body.next().await {
                let piece = piece?;
                got += piece.len() as u64;
                out.write_all(&piece).await?;
            }
            out.sync_all().await?;
            anyhow::ensure!(got == size, "download: {got} of {size} bytes");
            anyhow::Ok(t.elapsed())
        })
        .await;
        let down = down?;
        same_bytes(&src, &back).await?;
        std::fs::remove_file(&src)?;
        std::fs::remove_file(&back)?;
        if warm_up {
            continue;
        }
        rows.push(Row {
            size,
            cp,
            up,
            down,
            up_rss,
            down_rss,
        });
    }
    let mib = |n: u64| n as f64 / (1 << 20) as f64;
    if json {
        let out: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|r| {
                (
                    format!("{} MiB", mib(r.size)),
                    json!({
                        "cp_mb_s": mb_s(r.size, r.cp),
                        "upload_mb_s": mb_s(r.size, r.up),
                        "download_mb_s": mb_s(r.size, r.down),
                        "upload_vs_cp": r.cp.as_secs_f64() / r.up.as_secs_f64(),
                        "download_vs_cp": r.cp.as_secs_f64() / r.down.as_secs_f64(),
                        "upload_peak_rss_mib": mib(r.up_rss),
                        "download_peak_rss_mib": mib(r.down_rss),
                    }),
                )
            })
            .collect();
        println!("{}", serde_json::Value::Object(out));
    } else {
        println!(
            "embedded default: real chain + 5 local nodes on disk (k = 3), attachments over HTTP on 127.0.0.1"
        );
        println!(
            "{:>9} {:>9} {:>10} {:>8} {:>12} {:>8} {:>12} {:>12}",
            "size",
            "cp MB/s",
            "up MB/s",
            "up/cp",
            "down MB/s",
            "down/cp",
            "up RSS MiB",
            "down RSS MiB"
        );
        for r in &rows {
            println!(
                "{:>5} MiB {:>9.0} {:>10.0} {:>8.2} {:>12.0} {:>8.2} {:>12.1} {:>12.1}",
                mib(r.size),
                mb_s(r.size, r.cp),
                mb_s(r.size, r.up),
                r.cp.as_secs_f64() / r.up.as_secs_f64(),
                mb_s(r.size, r.down),
                r.cp.as_secs_f64() / r.down.as_secs_f64(),
                mib(r.up_rss),
                mib(r.down_rss)
            );
        }
        println!(
            "(RSS: this process's peak resident memory above its level before the transfer, after an untimed 4 MiB warm-up)"
        );
    }
    Ok(())
}

/// The download is the upload, byte for byte.
async fn same_bytes(a: &Path, b: &Path) -> anyhow::Result<()> {
    let (mut fa, mut fb) = (
        tokio::fs::File::open(a).await?,
        tokio::fs::File::open(b).await?,
    );
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = fa.read(&mut ba).await?;
        let mut nb = 0;
        while nb < na {
            let n = fb.read(&mut bb[nb..na]).await?;
            anyhow::ensure!(n > 0, "the download is shorter than the file");
            nb += n;
        }
        anyhow::ensure!(ba[..na] == bb[..na], "the download differs from the file");
        if na == 0 {
            anyhow::ensure!(fb.read(&mut bb).await? == 0, "the download is longer");
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(super::parse_size("16M"), Ok(16 << 20));
        assert_eq!(super::parse_size("2G"), Ok(2 << 30));
        assert_eq!(super::parse_size("1000"), Ok(1000));
        assert!(super::parse_size("2T").is_err());
        assert!(super::parse_size("M").is_err());
    }
}
