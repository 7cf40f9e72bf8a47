//! `secure-ehr`: the one binary — server, node, and admin/script CLI.

use clap::{Parser, Subcommand};

mod share;

#[derive(Parser)]
#[command(name = "secure-ehr", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Split a file into k-of-n verifiable shares, or rebuild it from them.
    Share {
        #[command(subcommand)]
        cmd: share::ShareCmd,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Share { cmd } => share::run(cmd),
    }
}
