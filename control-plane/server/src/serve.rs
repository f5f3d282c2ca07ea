//! `keymanager serve --config FILE`: the production entry point. Reads the configuration (file +
//! `KM_*` environment, see [`crate::config`]), connects to the management partition on a real
//! TSB, runs the start-up sequence of [`ControlPlane`] and serves until SIGTERM/Ctrl-C.
//!
//! Output: logs (tracing) and the start-up summary go to stderr; stdout carries only the audit
//! stream when `audit.stream = "stdout"`, so it can be shipped as-is. The setup token is printed
//! to stderr, and only while no administrator exists.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use futures_util::FutureExt as _;
use km_auth::{BcryptConfig, HttpSsoConfig};
use km_core::{AuditSink, JsonLinesSink, NoSink, SecretVault, SystemClock};
use km_hsm_tsb::TsbHsm;
use km_tsb::TsbClient;
use km_web::ConsoleConfig;
use poem::listener::{Acceptor as _, AcceptorExt as _, BoxAcceptor, Listener as _, TcpListener};
use poem::listener::{RustlsCertificate, RustlsConfig};

use crate::config::{AuditStream, Config, ENV_PREFIX, ManagementConfig, ServerConfig, VaultSpec};
use crate::control_plane::{self, ControlPlane, Options};

/// Options of `keymanager serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration file (TOML; see deploy/keymanager.example.toml). Variables
    /// KM_<SECTION>__<KEY> override its values.
    #[arg(long, env = "KEYMANAGER_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// Only check the configuration (reading every secret and certificate file), print the
    /// effective values with secrets redacted, and exit.
    #[arg(long)]
    check_config: bool,
}

/// Runs `keymanager serve` until SIGTERM or Ctrl-C.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config, &environment()?)?;
    if args.check_config {
        print_out(&format!(
            "configuration {} is valid; effective values:\n{}",
            args.config.display(),
            config.summary()
        ));
        return Ok(());
    }
    tracing::info!(
        "configuration {}:\n{}",
        args.config.display(),
        config.summary()
    );

    let url = config.management.tsb_url.clone();
    let client = management_client(&config.management)?;
    let sink: Arc<dyn AuditSink> = match &config.audit.stream {
        AuditStream::Stdout => Arc::new(JsonLinesSink::stdout()),
        AuditStream::Off => Arc::new(NoSink),
        AuditStream::File(path) => {
            Arc::new(JsonLinesSink::append_to_file(path).with_context(|| {
                format!(
                    "opening the audit stream file {} (audit.file)",
                    path.display()
                )
            })?)
        }
    };
    let console_config = ConsoleConfig {
        password_min_chars: config.identity_config().password_min_chars,
        public_url: config.server.public_url.as_ref().map(ToString::to_string),
    };
    let options = Options {
        store: config.store_config(),
        audit: config.audit_config(),
        audit_sink: sink,
        identity: config.identity_config(),
        bcrypt: BcryptConfig {
            cost: config.identity.bcrypt_cost,
            ..BcryptConfig::default()
        },
        vaults: connect_vaults(&config).await?,
        default_vault: config.default_vault.clone(),
        sso: HttpSsoConfig::default(),
        notifications: config.notification_config(),
        keys: config.keys.clone(),
    };
    let control_plane = ControlPlane::start(
        Arc::new(TsbHsm::new(client)),
        Arc::new(SystemClock),
        options,
    )
    .await
    .with_context(|| format!("starting against the management partition {url}"))?;

    let (acceptor, address) = bind(&config.server).await?;
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let console_url = config
        .server
        .public_url
        .as_ref()
        .map_or_else(|| format!("{scheme}://{address}/"), ToString::to_string);
    let mut summary = format!(
        "  control plane   {scheme}://{address}   (GET /healthz, /readyz; REST API under /api)\n  console         {console_url}\n  installation    {}\n  replica         {}\n",
        control_plane.installation.installation_id, config.state.replica,
    );
    if let Some(token) = control_plane.setup_token() {
        summary.push_str(&format!(
            "  setup token: {}\n    No administrator exists yet: open the console and create one with this token. \
             It is valid until setup is complete; every start prints a new one.\n",
            token.expose_secret()
        ));
    }
    // The last line: whoever waits for the start can wait for it.
    summary.push_str("keymanager is serving (SIGTERM or Ctrl-C stops it)\n");
    eprint!("{summary}");
    control_plane
        .serve(acceptor, console_config, control_plane::shutdown_signal())
        .await
}

/// The process environment as text. A `KM_*` variable that is not valid UTF-8 is an error
/// (silently ignoring a setting would be worse); other variables are not our business.
fn environment() -> anyhow::Result<Vec<(String, String)>> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Ok(name) = name.into_string() else {
            continue;
        };
        match value.into_string() {
            Ok(value) => vars.push((name, value)),
            Err(_) if name.starts_with(ENV_PREFIX) => {
                anyhow::bail!("environment variable {name}: the value is not valid UTF-8")
            }
            Err(_) => {}
        }
    }
    Ok(vars)
}

/// The TSB client for the management partition, with every configured credential.
pub fn management_client(config: &ManagementConfig) -> anyhow::Result<TsbClient> {
    let mut builder = TsbClient::builder(config.tsb_url.as_str())
        .api_keys(config.api_keys.clone())
        .timeout(config.timeout)
        .user_agent(concat!("keymanager/", env!("CARGO_PKG_VERSION")));
    if let Some(token) = &config.bearer_token {
        builder = builder.bearer_token(token.clone());
    }
    if let Some(ca) = &config.ca {
        builder = builder.root_ca_pem(&ca.pem);
    }
    if let Some(identity) = &config.client_identity {
        builder = builder.client_identity_pem(&identity.cert_pem, &identity.key_pem);
    }
    builder.build().with_context(|| {
        format!(
            "configuring the TSB client for the management partition {}",
            config.tsb_url
        )
    })
}

/// Binds the listener (with TLS when configured) and returns it with the bound address.
async fn bind(server: &ServerConfig) -> anyhow::Result<(BoxAcceptor, SocketAddr)> {
    let listener = TcpListener::bind(server.listen);
    let acceptor: BoxAcceptor = match &server.tls {
        None => listener
            .into_acceptor()
            .await
            .with_context(|| format!("listening on {} (server.listen)", server.listen))?
            .boxed(),
        Some(tls) => {
            let certificate = RustlsCertificate::new()
                .cert(tls.cert_pem.clone())
                .key(tls.key_pem.to_vec());
            let mut acceptor = listener
                .rustls(RustlsConfig::new().fallback(certificate))
                .into_acceptor()
                .await
                .with_context(|| {
                    format!(
                        "listening with TLS on {} (server.listen, server.tls: {} / {})",
                        server.listen,
                        tls.cert_file.display(),
                        tls.key_file.display()
                    )
                })?;
            // poem installs the TLS configuration inside the first `accept()`, racing it against
            // the first connection (which is reset if it wins). Poll once now, before the address
            // is announced, so the configuration is in place when clients arrive.
            let _ = acceptor.accept().now_or_never();
            acceptor.boxed()
        }
    };
    let address = acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
        .context("the listener has no address")?;
    Ok((acceptor, address))
}

#[allow(clippy::print_stdout)] // `--check-config` output is the command's output
fn print_out(text: &str) {
    print!("{text}");
}

/// Builds the configured cloud vaults. Connecting does not contact them (a vault that is briefly
/// down must not stop a replica starting); their reachability is checked when a partition's
/// credentials are first used, and reported with the vault's own error.
async fn connect_vaults(config: &Config) -> anyhow::Result<Vec<(String, Arc<dyn SecretVault>)>> {
    let mut vaults = Vec::with_capacity(config.vaults.len());
    for (id, spec) in &config.vaults {
        let vault: Arc<dyn SecretVault> = match spec {
            VaultSpec::Azure(azure) => Arc::new(
                km_vault_azure::connect(azure)
                    .await
                    .with_context(|| format!("setting up vault {id} (vaults.{id})"))?,
            ),
            VaultSpec::Gcp(gcp) => Arc::new(
                km_vault_gcp::connect(gcp)
                    .await
                    .with_context(|| format!("setting up vault {id} (vaults.{id})"))?,
            ),
        };
        vaults.push((id.clone(), vault));
    }
    Ok(vaults)
}
