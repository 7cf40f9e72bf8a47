//! `secure-ehr share`: split a file into k-of-n self-checking share files, and
//! rebuild it from any k good ones. The format lives in `ehr_crypto::share_file`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use ehr_crypto::share_file;
use ehr_crypto::{Error, Threshold};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

/// `secure-ehr share ...`
#[derive(Debug, Subcommand)]
pub enum ShareCmd {
    /// Split FILE into N share files in DIR; any K of them rebuild it.
    Split {
        /// Shares needed to rebuild (2 <= K <= N).
        #[arg(short = 'k', long = "threshold")]
        k: usize,
        /// Shares to make (N <= 255).
        #[arg(short = 'n', long = "shares")]
        n: usize,
        /// The file to split.
        file: PathBuf,
        /// Directory for the share files (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Rebuild a file from share files; corrupt ones are named and skipped.
    Combine {
        /// Share files; any K good ones of the same split suffice.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output file, written only once the result is verified.
        #[arg(short = 'o', long)]
        out: PathBuf,
    },
}

/// Runs a `share` subcommand.
pub fn run(cmd: ShareCmd) -> anyhow::Result<()> {
    match cmd {
        ShareCmd::Split { k, n, file, out } => split(k, n, &file, &out),
        ShareCmd::Combine { files, out } => combine(&files, &out),
    }
}

fn os_rng() -> anyhow::Result<ChaCha20Rng> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("OS random source failed: {e}"))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

fn split(k: usize, n: usize, file: &Path, dir: &Path) -> anyhow::Result<()> {
    let t = Threshold::new(k, n).context("invalid threshold")?;
    let secret = fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let shares = share_file::split(t, &secret, &mut os_rng()?)?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = file
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secret".into());
    for (i, bytes) in shares.iter().enumerate() {
        let path = dir.join(format!("{name}.share-{}-of-{n}", i + 1));
        write_new(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    eprintln!(
        "split {} into {n} shares; any {k} rebuild it",
        file.display()
    );
    Ok(())
}

/// Creates `path` (refusing to overwrite), owner-only, and syncs it.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn combine(files: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    // Unreadable files count as bad shares, like corrupt ones.
    let mut readable: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut bad = 0usize;
    for (i, path) in files.iter().enumerate() {
        match fs::read(path) {
            Ok(b) => readable.push((i, b)),
            Err(e) => {
                bad += 1;
                eprintln!("bad share: {}: unreadable ({e})", path.display());
            }
        }
    }
    let inputs: Vec<&[u8]> = readable.iter().map(|(_, b)| b.as_slice()).collect();
    let name = |pos: usize| files[readable[pos].0].display();
    match share_file::combine(&inputs) {
        Ok(done) => {
            for (pos, why) in &done.rejected {
                eprintln!("bad share: {}: {why}", name(*pos));
            }
            write_atomic(out, &done.secret)
                .with_context(|| format!("writing {}", out.display()))?;
            let skipped = bad + done.rejected.len();
            eprintln!(
                "rebuilt {} from {} shares ({skipped} bad share(s) skipped)",
                out.display(),
                files.len() - skipped
            );
            Ok(())
        }
        Err(Error::NotEnoughGoodShares {
            good,
            needed,
            rejected,
        }) => {
            for (pos, why) in &rejected {
                eprintln!("bad share: {}: {why}", name(*pos));
            }
            if needed == 0 {
                bail!(
                    "no valid share among {} file(s); nothing written",
                    files.len()
                );
            }
            bail!("not enough good shares: {good} good, {needed} needed; nothing written");
        }
        Err(e) => Err(e).context("combining shares; nothing written"),
    }
}

/// Writes `bytes` to a temporary file beside `out`, syncs it, then renames it over
/// `out`: readers see the old file or the whole new one, never a partial or
/// unverified one.
fn write_atomic(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = out
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{base}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    if let Err(e) = write_new(&tmp, bytes) {
        let _ = fs::remove_file(&tmp);
        return Err(e.into());
    }
    if let Err(e) = fs::rename(&tmp, out) {
        let _ = fs::remove_file(&tmp);
        return Err(e.into());
    }
    // Persist the rename; not every platform can open a directory, so best effort.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
