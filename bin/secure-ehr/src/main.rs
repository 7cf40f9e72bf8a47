//! `secure-ehr`: the one binary — server, node, and admin/script CLI.

use clap::{Parser, Subcommand};

mod store_cmd;

#[derive(Parser)]
#[command(name = "secure-ehr", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Store(store_cmd::StoreCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Store(cmd) => store_cmd::run(cmd),
    }
}
