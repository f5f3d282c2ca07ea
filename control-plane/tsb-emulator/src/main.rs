//! `tsb-emulator`: a TSB-compatible REST server with software crypto for development, demos and
//! tests. Never a production HSM.

use clap::Parser;
use km_tsb_emulator::cli::{self, EmulatorArgs};

#[derive(Debug, Parser)]
#[command(
    name = "tsb-emulator",
    version,
    about = "Securosys TSB REST API emulator (software crypto; not an HSM)"
)]
struct Cli {
    #[command(flatten)]
    args: EmulatorArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli::run(cli.args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "tsb-emulator failed");
            std::process::ExitCode::FAILURE
        }
    }
}
