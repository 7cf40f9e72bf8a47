//! `secure-ehr`: the one binary — server, node, and admin/script CLI.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "secure-ehr", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {}
}
