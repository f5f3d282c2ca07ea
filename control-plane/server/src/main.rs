//! keymanager — the binary: command line, configuration, wiring of adapters to km-core, and the
//! HTTP server.
//!
//! Owns: which adapters exist and how they are built from configuration (`config`, `serve`), the
//! start-up sequence shared by `serve` and `dev` (`control_plane`), and the route table (`http`:
//! probes, the REST API from km-api, the console from km-web). Nothing below this crate knows
//! that the TSB emulator can run in-process; only `keymanager dev` wires it so.

mod audit_cli;
mod config;
mod control_plane;
mod dev;
mod http;
mod serve;
mod webhook;

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
    /// Run keymanager in production against a TSB: `keymanager serve --config keymanager.toml`
    /// (see deploy/keymanager.example.toml; KM_<SECTION>__<KEY> variables override the file).
    Serve(serve::ServeArgs),
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

fn main() -> std::process::ExitCode {
    // One TLS crypto provider for the whole process (aws-lc-rs); see stack-notes on dual providers.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    init_logging();
    let cli = Cli::parse();
    let outcome = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(cli)));
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // The cause chain, one line each — what an operator needs; no backtrace noise.
            eprintln!("Error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Dev(args) => dev::run(args).await,
        Command::TsbEmulator(args) => Ok(km_tsb_emulator::cli::run(args).await?),
        Command::Audit(args) => audit_cli::run(args),
    }
}
