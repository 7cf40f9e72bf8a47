//! `secure-ehr`: the one binary — server, node, and admin/script CLI.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod chain_cmd;
mod client;
mod node_cmd;
mod org_cmd;
mod restore_cmd;
mod serve;
mod service;
mod share;
mod store_cmd;
mod transport;

/// mimalloc: reads and uploads allocate many small buffers from many threads; glibc's
/// allocator took ~8% of a read's CPU in `secure-ehr bench`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "secure-ehr",
    version,
    about = "Patient-controlled, audited electronic health records"
)]
struct Cli {
    /// Data directory of the embedded default (chain, blocks, keys).
    #[arg(
        long,
        env = "SECURE_EHR_DATA_DIR",
        default_value = ".data",
        global = true
    )]
    data_dir: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The EhrRegistry contract and the chain it runs on.
    Chain {
        #[command(subcommand)]
        cmd: chain_cmd::ChainCmd,
    },
    /// The network's organisations (the consortium admin adds and removes them).
    Org {
        #[command(subcommand)]
        cmd: org_cmd::OrgCmd,
    },
    /// Deploy a fresh contract and print the gas each operation uses.
    Gas(chain_cmd::GasArgs),
    /// Split a file into k-of-n verifiable shares, or rebuild it from them.
    Share {
        #[command(subcommand)]
        cmd: share::ShareCmd,
    },
    #[command(flatten)]
    Store(store_cmd::StoreCommand),
    /// Run SecureEHR: the web UI and JSON API (embedded chain and nodes by default).
    Serve(Box<serve::ServeArgs>),
    /// Offline administration of the data directory.
    Admin {
        #[command(subcommand)]
        cmd: serve::AdminCmd,
    },
    #[command(flatten)]
    Client(client::ClientCommand),
    /// Run one storage + custodian node as its own process (or `node replace N`: replace a
    /// lost in-process node).
    Node(node_cmd::NodeCommand),
    /// Upload and read latency and throughput on a fresh embedded deployment.
    Bench(bench::BenchArgs),
    /// Rebuild a lost server (chain, accounts, break-glass reasons) from any k nodes and
    /// the admin key file.
    Restore(restore_cmd::FromNodesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Warnings (a node down, a corrupt fragment and which node served it) go to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Chain { cmd } => chain_cmd::run(cmd, &cli.data_dir),
        Command::Org { cmd } => org_cmd::run(cmd, &cli.data_dir),
        Command::Gas(args) => chain_cmd::gas(args),
        Command::Share { cmd } => share::run(cmd),
        Command::Store(cmd) => store_cmd::run(cmd, &cli.data_dir),
        Command::Node(args) => node_cmd::run(args, &cli.data_dir),
        Command::Serve(args) => serve::serve(*args, &cli.data_dir),
        Command::Admin { cmd } => serve::admin(cmd, &cli.data_dir),
        Command::Client(cmd) => client::run(cmd, &cli.data_dir),
        Command::Bench(args) => bench::run(args),
        Command::Restore(args) => restore_cmd::restore(args, &cli.data_dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line with the whole cause chain; no backtrace for a user's mistake.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
