//! keymanager — the binary: command line, configuration, wiring of adapters to km-core, and the
//! HTTP server.
//!
//! Owns: which adapters exist and how they are built from configuration. Nothing below this crate
//! knows that the TSB emulator can run in-process; only `keymanager dev` wires it so.

mod audit_cli;
mod dev;
mod http;

use clap::{Parser, Subcommand};

/// Multi-tenant control plane for keys that live in Hardware Security Modules.
#[derive(Debug, Parser)]
#[command(name = "keymanager", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run keymanager with an embedded TSB emulator: a persistent state directory, a management
    /// partition and two demo tenant partitions. Needs no other service. Not for production.
    Dev(dev::DevArgs),
    /// Run only the TSB emulator (the same server `keymanager dev` embeds).
    TsbEmulator(km_tsb_emulator::cli::EmulatorArgs),
    /// Audit log tools that work offline (`keymanager audit verify FILE`).
    Audit(audit_cli::AuditArgs),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // One TLS crypto provider for the whole process (aws-lc-rs); see stack-notes on dual providers.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    init_logging();
    match Cli::parse().command {
        Command::Dev(args) => dev::run(args).await,
        Command::TsbEmulator(args) => Ok(km_tsb_emulator::cli::run(args).await?),
        Command::Audit(args) => audit_cli::run(args),
    }
}
