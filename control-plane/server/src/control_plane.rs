//! Start-up wiring shared by `keymanager serve` and `keymanager dev`: from a management partition
//! (any [`Hsm`]) to a ready [`App`] and its HTTP endpoint.
//!
//! Order matters, and every step fails the start with the step named, so an operator sees *which*
//! dependency is wrong (credentials, a damaged record, a missing key) instead of a half-started
//! replica:
//! 1. state store — creates or finds the HSM seal key (first HSM write: proves the credentials);
//! 2. installation record — this deployment's identity, create-if-absent;
//! 3. audit log — checkpoint key, end of the hash chain;
//! 4. identity (km-auth adapters) and first-run setup: while no administrator exists, a fresh
//!    one-time setup token is issued for this start;
//! 5. the application layer and the routes.
//!
//! Also owns the background work of a running replica — its [`Scheduler`]: of all replicas, the
//! one holding the scheduler lease runs the [`ControlPlane::jobs`] (purging dead sessions and
//! abandoned single-sign-on logins, the key service's due work) — and the graceful shutdown
//! sequence (stop accepting, finish requests, finish the scheduler's round and release its lease,
//! flush the audit outbox, sign a checkpoint over the events this replica wrote).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use km_auth::{BcryptConfig, HttpSso, HttpSsoConfig};
use km_core::app::{App, AppParts};
use km_core::audit::SinkError;
use km_core::identity::SetupStart;
use km_core::scheduler::{KeyDueWorkJob, SessionPurgeJob, SsoPendingPurgeJob};
use km_core::{
    AuditConfig, AuditLog, AuditSink, Clock, ExpiryNoticeJob, Hsm, Identity, IdentityConfig,
    Installation, InstallationRecord, KeyServiceConfig, NotificationConfig, Partitions, Readiness,
    ScheduledJob, Scheduler, SchedulerConfig, SecretText, SecretVault, SsoService, StateStore,
    StateStoreConfig, VaultSet,
};
use km_domain::audit::{AuditEvent, Checkpoint};
use km_hsm_tsb::TsbPartitionConnector;
use km_vault_hsm::HsmVault;
use km_web::ConsoleConfig;
use poem::listener::BoxAcceptor;

use crate::audit_cli::AwsLcVerifier;
use crate::http;
use crate::webhook::ReqwestWebhookSender;

/// How long a graceful shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Everything [`ControlPlane::start`] needs besides the management partition.
pub struct Options {
    /// State-store tunables (replica name, cache TTL, locks).
    pub store: StateStoreConfig,
    /// Audit tunables.
    pub audit: AuditConfig,
    /// Where the audit stream goes.
    pub audit_sink: Arc<dyn AuditSink>,
    /// Identity tunables (defaults of the runtime settings).
    pub identity: IdentityConfig,
    /// Password hashing.
    pub bcrypt: BcryptConfig,
    /// Credential vaults besides `hsm` (always present: sealed records on the management
    /// partition), by id.
    pub vaults: Vec<(String, Arc<dyn SecretVault>)>,
    /// The vault new partitions use unless the operator picks another (`hsm` when `None`).
    pub default_vault: Option<String>,
    /// The single-sign-on HTTP client's tuning.
    pub sso: HttpSsoConfig,
    /// Rules for tenants' expiry-notification webhooks.
    pub notifications: NotificationConfig,
    /// The key inventory cache's tunables.
    pub keys: KeyServiceConfig,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("store", &self.store)
            .field("audit", &self.audit)
            .field("identity", &self.identity)
            .field("bcrypt", &self.bcrypt)
            .finish_non_exhaustive()
    }
}

/// Id of the vault that keeps credentials as sealed records on the management partition.
pub const HSM_VAULT_ID: &str = "hsm";

/// Passes the audit stream through and remembers the last event and checkpoint this replica
/// streamed, so a graceful shutdown can sign the tail it wrote (a stream whose last events no
/// checkpoint covers cannot be authenticated by `keymanager audit verify`).
struct TailTracker {
    inner: Arc<dyn AuditSink>,
    last_event: AtomicU64,
    last_checkpoint: AtomicU64,
}

impl TailTracker {
    fn unsigned_tail(&self) -> bool {
        self.last_event.load(Ordering::Acquire) > self.last_checkpoint.load(Ordering::Acquire)
    }
}

impl AuditSink for TailTracker {
    fn event(&self, event: &AuditEvent) -> Result<(), SinkError> {
        self.last_event.fetch_max(event.seq, Ordering::AcqRel);
        self.inner.event(event)
    }

    fn checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), SinkError> {
        self.last_checkpoint
            .fetch_max(checkpoint.up_to_seq, Ordering::AcqRel);
        self.inner.checkpoint(checkpoint)
    }
}

/// A started control plane: every service is connected to the management partition and checked.
pub struct ControlPlane {
    /// This deployment's identity.
    pub installation: InstallationRecord,
    /// The use cases.
    pub app: App,
    /// Probes for `/readyz`.
    pub readiness: Readiness,
    /// What first-run setup said at this start.
    pub setup: SetupStart,
    tail: Arc<TailTracker>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("installation", &self.installation)
            .field("setup", &self.setup)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Runs the start-up sequence (module docs) against `management`.
    pub async fn start(
        management: Arc<dyn Hsm>,
        clock: Arc<dyn Clock>,
        options: Options,
    ) -> anyhow::Result<Self> {
        let replica = options.store.replica.clone();
        let store = StateStore::new(management.clone(), clock.clone(), options.store);
        store
            .prepare()
            .await
            .context("preparing the state store on the management partition (seal key)")?;
        let installation = Installation::new(management.clone(), clock.clone())
            .ensure()
            .await
            .context("establishing the installation record on the management partition")?;
        let tail = Arc::new(TailTracker {
            inner: options.audit_sink,
            last_event: AtomicU64::new(0),
            last_checkpoint: AtomicU64::new(0),
        });
        let audit = AuditLog::new(
            management.clone(),
            store.clone(),
            clock.clone(),
            tail.clone(),
            options.audit,
        );
        audit
            .prepare()
            .await
            .context("opening the audit log on the management partition")?;
        let identity = Identity::new(
            store.clone(),
            clock.clone(),
            km_auth::identity_ports(options.bcrypt),
            options.identity,
        );
        let setup = identity
            .setup
            .begin(&replica)
            .await
            .context("checking first-run setup on the management partition")?;
        let mut vaults = VaultSet::new().with(
            HSM_VAULT_ID,
            Arc::new(HsmVault::new(store.clone())) as Arc<dyn SecretVault>,
        );
        for (id, vault) in options.vaults {
            vaults = vaults.with(id, vault);
        }
        let vaults = vaults.with_default(options.default_vault.unwrap_or(HSM_VAULT_ID.to_owned()));
        let partitions = Partitions::new(
            store.clone(),
            vaults,
            Arc::new(TsbPartitionConnector::default()),
        );
        let sso = SsoService::new(
            store.clone(),
            clock.clone(),
            Arc::new(HttpSso::new(options.sso).context("building the single sign-on HTTP client")?),
        );
        let webhooks = ReqwestWebhookSender::new().context("building the webhook HTTP client")?;
        let app = App::new(AppParts {
            identity,
            audit,
            store,
            clock,
            verifier: Arc::new(AwsLcVerifier),
            partitions,
            sso,
        })
        .with_webhooks(Arc::new(webhooks), options.notifications)
        .with_key_config(options.keys);
        Ok(Self {
            installation,
            app,
            readiness: Readiness::new(management),
            setup,
            tail,
        })
    }

    /// The one-time setup token of this start, while no administrator exists.
    pub fn setup_token(&self) -> Option<&SecretText> {
        match &self.setup {
            SetupStart::TokenIssued(token) => Some(token),
            SetupStart::AlreadyComplete | SetupStart::InProgress => None,
        }
    }

    /// The periodic jobs of this control plane, in the order the scheduler's leader runs them.
    /// Every job must be idempotent and audit its own actions as `system:scheduler` (see
    /// `km_core::scheduler`).
    pub fn jobs(&self) -> Vec<Arc<dyn ScheduledJob>> {
        let app = &self.app;
        vec![
            Arc::new(SessionPurgeJob::new(
                app.identity().clone(),
                app.audit_log().clone(),
            )),
            Arc::new(SsoPendingPurgeJob::new(
                app.sso().clone(),
                app.audit_log().clone(),
            )),
            Arc::new(KeyDueWorkJob::new(
                app.partitions().clone(),
                app.keys().clone(),
            )),
            Arc::new(ExpiryNoticeJob::new(
                app.partitions().clone(),
                app.keys().clone(),
                app.notifications().clone(),
            )),
        ]
    }

    /// This replica's scheduler with [`ControlPlane::jobs`]; it competes for the lease under the
    /// state store's replica name.
    pub fn scheduler(&self, config: SchedulerConfig) -> Scheduler {
        let app = &self.app;
        let replica = app.store().config().replica.clone();
        self.jobs().into_iter().fold(
            Scheduler::new(
                app.store().clone(),
                app.audit_log().clone(),
                app.clock().clone(),
                replica,
                config,
            ),
            Scheduler::with_job,
        )
    }

    /// Serves the control plane (the console set up by `console`) on `acceptor` until `shutdown`
    /// completes, running the [`Scheduler`] in the background; then finishes requests in flight,
    /// lets the scheduler finish its round and release its lease, flushes the audit outbox and
    /// signs a checkpoint over the events this replica streamed.
    pub async fn serve(
        self,
        acceptor: BoxAcceptor,
        console: ConsoleConfig,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let scheduler = self.scheduler(SchedulerConfig::default());
        let (stop_scheduler, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut scheduling = tokio::spawn(async move {
            scheduler
                .run(async {
                    // A dropped sender (serve ended by an error) stops the scheduler too.
                    let _ = stopped.await;
                })
                .await;
        });
        let audit = self.app.audit_log().clone();
        let endpoint = http::routes(self.app, self.readiness, console);
        let served = poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(endpoint, shutdown, Some(SHUTDOWN_GRACE))
            .await
            .context("serving the control plane");
        let _ = stop_scheduler.send(());
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut scheduling).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "the scheduler ended abnormally"),
            Err(_) => {
                scheduling.abort();
                tracing::warn!(
                    "the scheduler's round did not finish in time; its lease runs out by itself"
                );
            }
        }
        if let Err(error) = audit.flush().await {
            tracing::error!(%error, "results of finished requests could not be written to the audit log");
        }
        if self.tail.unsigned_tail() {
            match audit.checkpoint().await {
                Ok(checkpoint) => {
                    tracing::info!(up_to_seq = checkpoint.up_to_seq, "audit log checkpointed")
                }
                Err(error) => tracing::warn!(%error, "no audit checkpoint at shutdown"),
            }
        }
        served
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM (what container runtimes send).
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; stop with Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
