//! Starting the real TSB emulator for a test, on 127.0.0.1 port 0.

use km_tsb_emulator::{Emulator, EmulatorConfig, RunningEmulator, Storage};

/// Installs aws-lc-rs as the process-wide rustls provider (idempotent). Tests that build rustls
/// configs call it first, exactly as the binaries do in `main`.
pub fn install_crypto_provider() {
    // Err only means another test already installed it.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A running emulator plus the temporary state directory it owns (if persistent).
#[derive(Debug)]
pub struct EmulatorFixture {
    /// The emulator; ask it for `base_url()` / `partition_url(..)`.
    pub emulator: RunningEmulator,
    state_dir: Option<tempfile::TempDir>,
}

impl EmulatorFixture {
    /// An in-memory emulator with one open partition (authentication off), like a fresh TSB.
    pub async fn ephemeral() -> anyhow::Result<Self> {
        Self::start(EmulatorConfig::default()).await
    }

    /// An emulator started with `config`; the listen address is forced to 127.0.0.1:0.
    pub async fn start(mut config: EmulatorConfig) -> anyhow::Result<Self> {
        install_crypto_provider();
        config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let emulator = Emulator::start(config).await?;
        Ok(Self {
            emulator,
            state_dir: None,
        })
    }

    /// An emulator persisting into a fresh temporary directory, removed when the fixture drops.
    pub async fn persistent(mut config: EmulatorConfig) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        config.storage = Storage::Directory(dir.path().to_path_buf());
        let mut fixture = Self::start(config).await?;
        fixture.state_dir = Some(dir);
        Ok(fixture)
    }

    /// Root URL of the emulator (partition chosen by API key, or the first one).
    pub fn base_url(&self) -> String {
        self.emulator.base_url()
    }

    /// Base URL of one partition.
    pub fn partition_url(&self, partition: &str) -> String {
        self.emulator.partition_url(partition)
    }
}
