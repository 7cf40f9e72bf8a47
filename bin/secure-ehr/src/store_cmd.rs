//! The content-addressed store commands: `cid`, `add`, `cat`, `car export|import`.
//! Thin wrappers over `ehr-store`; the store is chosen with `--store` / `SECURE_EHR_STORE`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ehr_store::{BlobStore, FsStore, KuboStore, Profile, car, parse_cid};
use tokio::io::AsyncWriteExt;

/// Where blocks live.
#[derive(Args, Debug, Clone)]
pub struct StoreOpts {
    /// Block store: `fs` (blocks under DATA_DIR/blocks) or `kubo:http://127.0.0.1:5001`
    /// (an IPFS node's RPC API).
    #[arg(long, env = "SECURE_EHR_STORE", default_value = "fs")]
    pub store: String,
}

impl StoreOpts {
    fn open(&self, data_dir: &Path) -> anyhow::Result<Arc<dyn BlobStore>> {
        if self.store == "fs" {
            let dir = data_dir.join("blocks");
            let store = FsStore::open(&dir)
                .with_context(|| format!("opening block store {}", dir.display()))?;
            Ok(Arc::new(store))
        } else if let Some(url) = self.store.strip_prefix("kubo:") {
            Ok(Arc::new(KuboStore::new(url)?))
        } else {
            bail!(
                "unknown store {:?}: use `fs` or `kubo:http://HOST:PORT`",
                self.store
            )
        }
    }
}

/// The store subcommands, flattened into the binary's command list.
#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Print a file's IPFS CID, exactly as `ipfs add --only-hash -Q [--cid-version=1]`.
    Cid {
        /// The file.
        file: PathBuf,
        /// 1: `ipfs add --cid-version=1` (bafk…/bafy…); 0: the `ipfs add` default (Qm…).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
        cid_version: u8,
    },
    /// Add a file to the store as a UnixFS DAG (`ipfs add --cid-version=1`); prints its CID.
    Add {
        /// The file.
        file: PathBuf,
        /// CID version, as for `cid`.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
        cid_version: u8,
        #[command(flatten)]
        store: StoreOpts,
    },
    /// Write the file under CID to stdout (every block verified first).
    Cat {
        /// The file's CID.
        cid: String,
        #[command(flatten)]
        store: StoreOpts,
    },
    /// CAR v1 archives.
    #[command(subcommand)]
    Car(CarCommand),
}

/// `secure-ehr car …`
#[derive(Subcommand, Debug)]
pub enum CarCommand {
    /// Write the DAG under CID to stdout as a CAR v1 file.
    Export {
        /// The root CID.
        cid: String,
        #[command(flatten)]
        store: StoreOpts,
    },
    /// Verify every block of a CAR v1 file, then store them all; prints the roots.
    Import {
        /// The CAR file.
        file: PathBuf,
        #[command(flatten)]
        store: StoreOpts,
    },
}

fn profile(cid_version: u8) -> Profile {
    if cid_version == 0 {
        Profile::KuboV0
    } else {
        Profile::KuboV1
    }
}

/// Runs a store subcommand (on a current-thread runtime of its own).
pub fn run(cmd: StoreCommand, data_dir: &Path) -> anyhow::Result<()> {
    if let StoreCommand::Cid { file, cid_version } = &cmd {
        // No store, no runtime: just hash.
        let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        let cid = ehr_store::cid_of(std::io::BufReader::new(f), profile(*cid_version))
            .with_context(|| format!("reading {}", file.display()))?;
        println!("{cid}");
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(cmd, data_dir))
}

async fn run_async(cmd: StoreCommand, data_dir: &Path) -> anyhow::Result<()> {
    match cmd {
        StoreCommand::Cid { .. } => unreachable!("handled without a runtime"),
        StoreCommand::Add {
            file,
            cid_version,
            store,
        } => {
            let store = store.open(data_dir)?;
            let f = tokio::fs::File::open(&file)
                .await
                .with_context(|| format!("opening {}", file.display()))?;
            let cid = ehr_store::add(
                store.as_ref(),
                tokio::io::BufReader::new(f),
                profile(cid_version),
            )
            .await
            .with_context(|| format!("adding {}", file.display()))?;
            println!("{cid}");
        }
        StoreCommand::Cat { cid, store } => {
            let cid = parse_cid(&cid)?;
            let store = store.open(data_dir)?;
            // Collected first so that a bad block half-way leaves no partial output.
            let mut out = Vec::new();
            ehr_store::cat(store.as_ref(), &cid, &mut out).await?;
            write_stdout(&out).await?;
        }
        StoreCommand::Car(CarCommand::Export { cid, store }) => {
            let cid = parse_cid(&cid)?;
            let store = store.open(data_dir)?;
            let mut out = Vec::new();
            car::export(store.as_ref(), &cid, &mut out).await?;
            write_stdout(&out).await?;
        }
        StoreCommand::Car(CarCommand::Import { file, store }) => {
            let store = store.open(data_dir)?;
            let f = tokio::fs::File::open(&file)
                .await
                .with_context(|| format!("opening {}", file.display()))?;
            let roots = car::import(&mut tokio::io::BufReader::new(f), store.as_ref())
                .await
                .with_context(|| format!("importing {}", file.display()))?;
            for root in roots {
                println!("{root}");
            }
        }
    }
    Ok(())
}

async fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = tokio::io::stdout();
    stdout.write_all(bytes).await?;
    stdout.flush().await?;
    Ok(())
}
