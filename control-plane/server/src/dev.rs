//! `keymanager dev`: the whole product on one machine with no other service.
//!
//! Starts the TSB emulator in-process with a persistent state directory, provisions a management
//! partition, two demo tenant partitions registered in the partition registry (their API keys in
//! the `hsm` vault) and a spare partition `initech` to try onboarding on (each with its own API
//! key), establishes the installation record on the management partition, and serves the whole control plane (console,
//! REST API, probes) on 127.0.0.1 with the same wiring as `keymanager serve`. Prints the console
//! URL and, while no administrator exists, the setup token. The audit stream goes to
//! `<state-dir>/audit.jsonl` because stdout carries the banner.
//! Restarting with the same state directory keeps every key, data object and credential.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use km_auth::{BcryptConfig, HttpSsoConfig};
use km_core::{
    ApiKeyCredentials, AuditConfig, IdentityConfig, JsonLinesSink, KeyServiceConfig, NewPartition,
    NotificationConfig, PartitionCredentials, PartitionError, PartitionTarget, Sealing, SecretText,
    StateStoreConfig, SystemClock,
};
use km_domain::{AuthMode, DisplayName, TenantId, TsbEndpoint};
use km_hsm_tsb::TsbHsm;
use km_tsb::{ApiKeys, TsbClient};
use km_tsb_emulator::{
    ApiKeyGroups, Emulator, EmulatorConfig, PartitionConfig, RunningEmulator, Storage,
};
use km_web::ConsoleConfig;
use poem::listener::{Acceptor, AcceptorExt as _, Listener, TcpListener};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::control_plane::{self, ControlPlane, Options};

/// The partition holding keymanager's own state.
const MANAGEMENT_PARTITION: &str = "management";
/// Demo tenant partitions, so the console has something to switch between.
const DEMO_PARTITIONS: [&str; 2] = ["acme", "globex"];
/// How the console names the demo partitions.
const DEMO_DISPLAY_NAMES: [&str; 2] = ["Acme Corp", "Globex"];
/// Emulator partitions that exist but are not registered, so an operator can try onboarding.
const SPARE_PARTITIONS: [&str; 1] = ["initech"];
/// Actor recorded for the demo partitions' registrations.
const DEV_ACTOR: &str = "system:dev";
/// The audit stream's file in the state directory.
const AUDIT_FILE: &str = "audit.jsonl";

/// Options of `keymanager dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// State directory: emulator data (encrypted at rest) and the dev partitions' API keys.
    #[arg(
        long,
        env = "KEYMANAGER_DEV_STATE_DIR",
        default_value = ".keymanager-dev"
    )]
    state_dir: PathBuf,
    /// Address the control plane listens on.
    #[arg(long, env = "KEYMANAGER_DEV_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address the embedded TSB emulator listens on (so other TSB clients can use it too).
    #[arg(
        long,
        env = "KEYMANAGER_DEV_EMULATOR_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    emulator_listen: SocketAddr,
    /// bcrypt cost for passwords. Lower than production's 12 so that sign-in in a debug build
    /// stays quick; `keymanager serve` refuses anything below 10.
    #[arg(long, env = "KEYMANAGER_DEV_BCRYPT_COST", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(4..=31))]
    bcrypt_cost: u32,
}

/// API keys of the dev partitions, generated on first start and kept in the state directory.
/// Written only through [`ExposedCredentials`], so a key can never be serialised by accident.
#[derive(Deserialize)]
struct DevCredentials {
    partitions: Vec<DevPartition>,
}

#[derive(Deserialize)]
struct DevPartition {
    name: String,
    api_key: SecretString,
}

impl DevCredentials {
    const FILE: &'static str = "dev-credentials.json";

    /// Every emulator partition of `keymanager dev`.
    fn partition_names() -> impl Iterator<Item = &'static str> {
        std::iter::once(MANAGEMENT_PARTITION)
            .chain(DEMO_PARTITIONS)
            .chain(SPARE_PARTITIONS)
    }

    /// Loads the credentials, or creates them (mode 0600) on first start; partitions added to
    /// `keymanager dev` since the state directory was made get keys too.
    fn load_or_create(state_dir: &Path) -> anyhow::Result<Self> {
        let path = state_dir.join(Self::FILE);
        let mut credentials = if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is damaged; delete the state directory to start afresh",
                    path.display()
                )
            })?
        } else {
            Self {
                partitions: Vec::new(),
            }
        };
        let known = credentials.partitions.len();
        for name in Self::partition_names() {
            if !credentials.partitions.iter().any(|p| p.name == name) {
                credentials.partitions.push(DevPartition {
                    name: name.to_owned(),
                    api_key: random_api_key()?,
                });
            }
        }
        if credentials.partitions.len() != known || !path.exists() {
            let text = serde_json::to_string_pretty(&ExposedCredentials(&credentials))?;
            let fresh = path.with_extension("json.new");
            let _ = std::fs::remove_file(&fresh);
            write_private_file(&fresh, text.as_bytes())?;
            std::fs::rename(&fresh, &path)
                .with_context(|| format!("replacing {}", path.display()))?;
        }
        Ok(credentials)
    }

    fn api_key(&self, partition: &str) -> anyhow::Result<&SecretString> {
        self.partitions
            .iter()
            .find(|p| p.name == partition)
            .map(|p| &p.api_key)
            .with_context(|| format!("{} has no API key for partition {partition}", Self::FILE))
    }
}

/// Serialises the credentials with the keys in clear — only ever into the 0600 state file.
struct ExposedCredentials<'a>(&'a DevCredentials);

impl Serialize for ExposedCredentials<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let partitions: Vec<_> = self
            .0
            .partitions
            .iter()
            .map(|p| serde_json::json!({ "name": p.name, "api_key": p.api_key.expose_secret() }))
            .collect();
        serde_json::json!({ "partitions": partitions }).serialize(serializer)
    }
}

fn random_api_key() -> anyhow::Result<SecretString> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    Ok(SecretString::from(format!("km-dev-{}", hex::encode(bytes))))
}

fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

fn partition_config(name: &str, credentials: &DevCredentials) -> anyhow::Result<PartitionConfig> {
    let key = credentials.api_key(name)?.expose_secret().to_owned();
    let api_keys = ApiKeyGroups {
        key_management: vec![key.clone()],
        key_operation: vec![key.clone()],
        approver: vec![key.clone()],
        service: vec![key.clone()],
        approver_key_management: vec![key],
    };
    Ok(PartitionConfig {
        name: name.to_owned(),
        api_keys,
        jwt: None,
    })
}

fn client_for(url: String, api_key: &SecretString) -> anyhow::Result<TsbClient> {
    Ok(TsbClient::builder(&url)
        .api_keys(ApiKeys::all(vec![api_key.clone()]))
        .build()?)
}

/// Runs `keymanager dev` until Ctrl-C.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("creating state directory {}", args.state_dir.display()))?;
    let credentials = DevCredentials::load_or_create(&args.state_dir)?;

    let partitions = DevCredentials::partition_names()
        .map(|name| partition_config(name, &credentials))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let emulator = Emulator::start(EmulatorConfig {
        listen: args.emulator_listen,
        storage: Storage::Directory(args.state_dir.join("tsb")),
        partitions,
        tls: None,
        admin_api: false,
    })
    .await
    .context("starting the embedded TSB emulator")?;

    let management = Arc::new(TsbHsm::new(client_for(
        emulator.partition_url(MANAGEMENT_PARTITION),
        credentials.api_key(MANAGEMENT_PARTITION)?,
    )?));
    // The banner owns stdout, so the audit stream goes to a file next to the emulator's state.
    let audit_file = args.state_dir.join(AUDIT_FILE);
    let sink = JsonLinesSink::append_to_file(&audit_file)
        .with_context(|| format!("opening the audit stream {}", audit_file.display()))?;
    let options = Options {
        store: StateStoreConfig {
            replica: "dev".to_owned(),
            ..StateStoreConfig::default()
        },
        audit: AuditConfig::default(),
        audit_sink: Arc::new(sink),
        identity: IdentityConfig::default(),
        bcrypt: BcryptConfig {
            cost: args.bcrypt_cost,
            ..BcryptConfig::default()
        },
        vaults: Vec::new(),
        default_vault: None,
        sso: HttpSsoConfig::default(),
        // Local receivers (http://127.0.0.1:…) are fine on a developer's machine.
        notifications: NotificationConfig {
            allow_insecure_webhooks: true,
        },
        keys: KeyServiceConfig::default(),
    };
    let control_plane = ControlPlane::start(management, Arc::new(SystemClock), options).await?;
    register_demo_partitions(&control_plane, &emulator, &credentials).await?;

    let acceptor = TcpListener::bind(args.listen)
        .into_acceptor()
        .await
        .with_context(|| format!("binding the control plane to {}", args.listen))?;
    let address = acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
        .context("the control plane listener has no address")?;

    print_banner(&Banner {
        control_plane: address,
        emulator: &emulator.base_url(),
        state_dir: &args.state_dir,
        audit_file: &audit_file,
        installation: &control_plane.installation.installation_id,
        setup_token: control_plane.setup_token(),
    });

    let served = control_plane
        .serve(
            acceptor.boxed(),
            console_config()?,
            control_plane::shutdown_signal(),
        )
        .await;
    emulator.shutdown().await;
    served
}

/// The console's configuration (its partitions come from the registry the demo partitions are
/// registered in).
fn console_config() -> anyhow::Result<ConsoleConfig> {
    Ok(ConsoleConfig {
        password_min_chars: IdentityConfig::default().password_min_chars,
        public_url: None,
    })
}

/// Registers the demo partitions (credentials in the `hsm` vault) unless they are registered
/// already — an operator may have renamed, recoloured or offboarded them, which sticks.
async fn register_demo_partitions(
    control_plane: &ControlPlane,
    emulator: &RunningEmulator,
    credentials: &DevCredentials,
) -> anyhow::Result<()> {
    let partitions = control_plane.app.partitions();
    let marker = control_plane.app.store();
    for (name, display_name) in DEMO_PARTITIONS.iter().zip(DEMO_DISPLAY_NAMES) {
        // Registered once per state directory: an offboarded demo partition stays offboarded.
        let seeded_id = format!("demo-{name}");
        if marker
            .get::<serde_json::Value>(DEV_SEED_KIND, &seeded_id)
            .await?
            .is_some()
        {
            continue;
        }
        let id = TenantId::parse(name).with_context(|| format!("demo partition id {name}"))?;
        let new = NewPartition {
            display_name: DisplayName::parse(display_name)?,
            colour: None,
            target: PartitionTarget {
                endpoint: TsbEndpoint::parse(&emulator.partition_url(name))?,
                auth: AuthMode::ApiKeys,
                ca_pem: None,
            },
            vault: None,
            credentials: PartitionCredentials {
                api_keys: ApiKeyCredentials::single(SecretText::from(
                    credentials.api_key(name)?.expose_secret(),
                )),
                ..PartitionCredentials::default()
            },
            id,
        };
        match partitions.onboard(new, DEV_ACTOR).await {
            Ok(_) | Err(PartitionError::Exists(_)) => {}
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context(format!("registering the demo partition {name}")));
            }
        }
        marker
            .create(
                DEV_SEED_KIND,
                &seeded_id,
                serde_json::json!({ "registered": name }),
                DEV_ACTOR,
                Sealing::Plain,
            )
            .await?;
    }
    Ok(())
}

/// State-store kind of `keymanager dev`'s "demo partition registered" markers.
const DEV_SEED_KIND: &str = "dev-seed";

/// What the banner shows.
struct Banner<'a> {
    control_plane: SocketAddr,
    emulator: &'a str,
    state_dir: &'a Path,
    audit_file: &'a Path,
    installation: &'a str,
    setup_token: Option<&'a SecretText>,
}

/// The banner is parsed by tests and quoted in the README: keep its labels.
#[allow(clippy::print_stdout)] // the banner is the command's output
fn print_banner(banner: &Banner<'_>) {
    let Banner {
        control_plane,
        emulator,
        state_dir,
        audit_file,
        installation,
        setup_token,
    } = banner;
    println!("keymanager dev is ready");
    println!("  console         http://{control_plane}/");
    if let Some(token) = setup_token {
        println!("  setup token: {}", token.expose_secret());
        println!(
            "    (no administrator yet: open the console and create one with this token; \
             it stays valid until setup is complete)"
        );
    }
    println!(
        "  control plane   http://{control_plane}   (GET /healthz, /readyz; REST API under /api)"
    );
    println!(
        "  TSB emulator    {emulator}   partitions: {MANAGEMENT_PARTITION} (keymanager state), {} (registered), {} (not registered: try onboarding it)",
        DEMO_PARTITIONS.join(", "),
        SPARE_PARTITIONS.join(", ")
    );
    for name in DevCredentials::partition_names() {
        println!("    {name:<12}  {emulator}/partitions/{name}");
    }
    println!(
        "  state           {}   (API keys in {})",
        state_dir.display(),
        state_dir.join(DevCredentials::FILE).display()
    );
    println!(
        "  audit stream    {}   (JSON lines; check with `keymanager audit verify`)",
        audit_file.display()
    );
    println!("  installation    {installation}");
    println!("Press Ctrl-C to stop.");
}
