//! Command line of the `tsb-emulator` binary, also flattened into `keymanager tsb-emulator`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{ClientAuth, EmulatorConfig, FileConfig, Storage, TlsConfig};
use crate::error::EmulatorError;
use crate::server::Emulator;

/// Options of the emulator command.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Persistent, encrypted state directory.
    #[arg(long, value_name = "DIR", conflicts_with = "ephemeral")]
    pub state_dir: Option<PathBuf>,
    /// Keep everything in memory (the default when no state directory is configured).
    #[arg(long)]
    pub ephemeral: bool,
    /// TOML configuration (partitions with API keys, TLS, listen, state_dir); unknown keys are errors.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Enable the /_emulator admin API (fault injection, clock).
    #[arg(long)]
    pub faults: bool,
    /// Server certificate chain (PEM); enables TLS.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates for client certificates (mTLS).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// Client certificate requirement (default: need when --client-ca is given).
    #[arg(long, value_enum, requires = "client_ca")]
    pub client_auth: Option<ClientAuth>,
}

impl EmulatorArgs {
    /// The effective configuration: the file (if any) overridden by flags. The CLI listens on
    /// 127.0.0.1:8080 unless told otherwise.
    pub fn to_config(&self) -> Result<EmulatorConfig, EmulatorError> {
        let mut cfg = match &self.config {
            Some(path) => {
                let file = FileConfig::read(path)?;
                let file_has_listen = file.listen.is_some();
                let mut cfg = file.into_config()?;
                if !file_has_listen {
                    cfg.listen = SocketAddr::from(([127, 0, 0, 1], 8080));
                }
                cfg
            }
            None => EmulatorConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                ..EmulatorConfig::default()
            },
        };
        if let Some(l) = self.listen {
            cfg.listen = l;
        }
        if let Some(d) = &self.state_dir {
            cfg.storage = Storage::Directory(d.clone());
        }
        if self.ephemeral {
            cfg.storage = Storage::Ephemeral;
        }
        if self.faults {
            cfg.admin_api = true;
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            cfg.tls = Some(TlsConfig::from_files(
                cert,
                key,
                self.client_ca.as_deref(),
                self.client_auth,
            )?);
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Runs the emulator until Ctrl-C / SIGTERM. Prints
/// `tsb-emulator listening on <url> (partitions: a, b)` on stdout once ready.
pub async fn run(args: EmulatorArgs) -> Result<(), EmulatorError> {
    let cfg = args.to_config()?;
    let running = Emulator::start(cfg).await?;
    let line = format!(
        "tsb-emulator listening on {} (partitions: {})\n",
        running.base_url(),
        running.partitions().join(", ")
    );
    {
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())?;
        out.flush()?;
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    #[test]
    fn flags_override_defaults() {
        let t = T::try_parse_from(["x"]).unwrap();
        let cfg = t.args.to_config().unwrap();
        assert_eq!(cfg.listen.port(), 8080);
        assert!(matches!(cfg.storage, Storage::Ephemeral));
        assert!(!cfg.admin_api);
        let t = T::try_parse_from([
            "x",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            "/tmp/x",
            "--faults",
        ])
        .unwrap();
        let cfg = t.args.to_config().unwrap();
        assert_eq!(cfg.listen.port(), 0);
        assert!(matches!(cfg.storage, Storage::Directory(_)));
        assert!(cfg.admin_api);
        assert!(T::try_parse_from(["x", "--state-dir", "/tmp/x", "--ephemeral"]).is_err());
        assert!(T::try_parse_from(["x", "--tls-cert", "a.pem"]).is_err());
    }

    #[test]
    fn config_file_with_unknown_key_fails() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "faults = true\nlistn = \"127.0.0.1:1\"\n").unwrap();
        let t = T::try_parse_from(["x", "--config", p.to_str().unwrap()]).unwrap();
        assert!(t.args.to_config().is_err());
        std::fs::write(&p, "faults = true\n[[partitions]]\nname = \"mgmt\"\n").unwrap();
        let t = T::try_parse_from(["x", "--config", p.to_str().unwrap()]).unwrap();
        let cfg = t.args.to_config().unwrap();
        assert_eq!(cfg.listen.port(), 8080);
        assert_eq!(cfg.partitions[0].name, "mgmt");
        assert!(cfg.admin_api);
    }
}
