//! The scheduler against the real TSB emulator: km-core's `Scheduler` → `StateStore` → km-hsm-tsb
//! → km-tsb → HTTP → km-tsb-emulator. Every replica is its own store (own TSB client, own cache)
//! and audit log instance; one `ManualClock` is everybody's "now", so lease expiry is reached by
//! advancing it, never by sleeping. Leadership, hand-over on expiry and on release, error
//! isolation between jobs, a restarted leader that must not repeat work, and replicas racing for
//! an expired lease over real HTTP.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use km_core::audit::{AuditConfig, AuditLog, NoSink};
use km_core::scheduler::{
    JobError, JobOutcome, JobReport, LEADERSHIP_ACTION, Leadership, SCHEDULER_ACTOR, ScheduledJob,
    Scheduler, SchedulerConfig, TickReport, async_trait,
};
use km_core::{ManualClock, Sealing, StateStore, StateStoreConfig, StoreError, Timestamp};
use km_domain::audit::{AuditEvent, Outcome};
use km_hsm_tsb::TsbHsm;
use km_testkit::EmulatorFixture;
use km_tsb::TsbClient;
use serde::{Deserialize, Serialize};

const START: Timestamp = 1_900_000_000;
/// The default lease TTL.
const TTL: u64 = 30;

struct World {
    fixture: EmulatorFixture,
    clock: Arc<ManualClock>,
}

impl World {
    async fn new() -> World {
        World {
            fixture: EmulatorFixture::ephemeral().await.unwrap(),
            clock: Arc::new(ManualClock::new(START)),
        }
    }

    /// One replica's store: its own TSB client and cache.
    fn store(&self, replica: &str) -> StateStore {
        let client = TsbClient::builder(self.fixture.base_url()).build().unwrap();
        StateStore::new(
            Arc::new(TsbHsm::new(client)),
            self.clock.clone(),
            StateStoreConfig {
                replica: replica.to_owned(),
                ..StateStoreConfig::default()
            },
        )
    }

    fn audit(&self, store: &StateStore) -> AuditLog {
        let client = TsbClient::builder(self.fixture.base_url()).build().unwrap();
        AuditLog::new(
            Arc::new(TsbHsm::new(client)),
            store.clone(),
            self.clock.clone(),
            Arc::new(NoSink),
            AuditConfig {
                checkpoint_every: 0,
                ..AuditConfig::default()
            },
        )
    }

    /// A scheduler of `replica` (a new process, as far as the lease can tell).
    fn scheduler(&self, replica: &str) -> Scheduler {
        let store = self.store(replica);
        let audit = self.audit(&store);
        Scheduler::new(
            store,
            audit,
            self.clock.clone(),
            replica,
            SchedulerConfig::default(),
        )
    }

    async fn leadership_events(&self) -> Vec<AuditEvent> {
        self.audit(&self.store("reader"))
            .read(1..=u64::MAX)
            .await
            .unwrap()
            .into_iter()
            .filter(|event| event.action == LEADERSHIP_ACTION)
            .collect()
    }
}

type Runs = Arc<Mutex<Vec<(String, Timestamp)>>>;

/// Notes which replica ran it, and when.
struct CountingJob {
    replica: String,
    runs: Runs,
}

fn counting(replica: &str, runs: &Runs) -> Arc<CountingJob> {
    Arc::new(CountingJob {
        replica: replica.to_owned(),
        runs: runs.clone(),
    })
}

#[async_trait]
impl ScheduledJob for CountingJob {
    fn name(&self) -> &'static str {
        "counting"
    }
    async fn run(&self, now: Timestamp) -> Result<JobReport, JobError> {
        self.runs.lock().unwrap().push((self.replica.clone(), now));
        Ok(JobReport::new(1, "counted"))
    }
}

/// Fails like a job whose partition's HSM is down.
struct FailingJob;

#[async_trait]
impl ScheduledJob for FailingJob {
    fn name(&self) -> &'static str {
        "failing"
    }
    async fn run(&self, _now: Timestamp) -> Result<JobReport, JobError> {
        Err(JobError::failed("partition acme: the HSM is unavailable"))
    }
}

/// A due item in the state store (like a key's scheduled destruction).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    due_at: Timestamp,
}

/// Who executed an item, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Done {
    by: String,
    at: Timestamp,
}

const ITEMS: (&str, &str) = ("schedtest", "items");
const DONE: (&str, &str) = ("schedtest", "done");

/// Executes the due items, each exactly once across leaders: the item's id is first claimed in
/// the `done` record with a read-modify-write under the store's lock (so two runs cannot both
/// claim it), then "executed" (counted in `executions`, the test's witness).
struct DueItemsJob {
    replica: String,
    store: StateStore,
    executions: Arc<Mutex<HashMap<String, u32>>>,
}

#[async_trait]
impl ScheduledJob for DueItemsJob {
    fn name(&self) -> &'static str {
        "due_items"
    }
    async fn run(&self, now: Timestamp) -> Result<JobReport, JobError> {
        let Some(items) = self
            .store
            .get_fresh::<BTreeMap<String, Item>>(ITEMS.0, ITEMS.1)
            .await?
        else {
            return Ok(JobReport::default());
        };
        let done = self
            .store
            .get_fresh::<BTreeMap<String, Done>>(DONE.0, DONE.1)
            .await?
            .map(|record| record.value)
            .unwrap_or_default();
        let mut executed = Vec::new();
        for (id, item) in items.value {
            if item.due_at > now || done.contains_key(&id) {
                continue;
            }
            let mut claimed = false;
            self.store
                .modify(
                    DONE.0,
                    DONE.1,
                    Sealing::Plain,
                    SCHEDULER_ACTOR,
                    |current: Option<km_core::Versioned<BTreeMap<String, Done>>>| {
                        let mut done = current.map(|record| record.value).unwrap_or_default();
                        claimed = !done.contains_key(&id);
                        done.entry(id.clone()).or_insert(Done {
                            by: self.replica.clone(),
                            at: now,
                        });
                        Ok::<_, StoreError>(done)
                    },
                )
                .await?;
            if claimed {
                *self
                    .executions
                    .lock()
                    .unwrap()
                    .entry(id.clone())
                    .or_default() += 1;
                executed.push(id);
            }
        }
        Ok(JobReport::new(
            executed.len() as u64,
            format!("executed {executed:?}"),
        ))
    }
}

/// The write-ahead phase of a leadership event (`None` for a single event such as `lost`).
fn phase(event: &AuditEvent) -> Option<&str> {
    event.details.get("phase").map(String::as_str)
}

fn term(report: &TickReport) -> Option<u64> {
    match &report.lease {
        Ok(Leadership::Leader { term }) => Some(*term),
        _ => None,
    }
}

fn follower_of(report: &TickReport) -> Option<(&str, Timestamp)> {
    match &report.lease {
        Ok(Leadership::Follower { holder, until }) => Some((holder.as_str(), *until)),
        _ => None,
    }
}

#[tokio::test]
async fn exactly_one_of_two_replicas_runs_the_jobs_in_every_round() {
    let world = World::new().await;
    let runs: Runs = Arc::default();
    let a = world.scheduler("a").with_job(counting("a", &runs));
    let b = world.scheduler("b").with_job(counting("b", &runs));

    for round in 0..8u64 {
        // Both orders: whoever asks first, the holder stays the holder.
        let (first, second) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let reports = [first.tick().await, second.tick().await];
        let acting: Vec<_> = reports.iter().filter(|r| r.acting).collect();
        assert_eq!(acting.len(), 1, "round {round}: {reports:?}");
        assert_eq!(term(acting[0]), Some(1));
        let follower = reports.iter().find(|r| !r.acting).unwrap();
        assert_eq!(follower_of(follower).map(|f| f.0), Some("a"));
        assert!(follower.jobs.is_empty());
        world.clock.advance(5);
    }
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 8, "one run per round");
    assert!(runs.iter().all(|(replica, _)| replica == "a"));

    // The lease as stored on the HSM.
    let record = a.lease().current().await.unwrap().unwrap();
    assert_eq!(record.value.holder, "a");
    assert_eq!(record.value.term, 1);
    assert_eq!(record.value.expires_at, START + 35 + TTL);
    assert_eq!(record.updated_by, SCHEDULER_ACTOR);
}

#[tokio::test]
async fn a_leader_that_stops_is_replaced_once_its_lease_expires() {
    let world = World::new().await;
    let runs: Runs = Arc::default();
    let a = world.scheduler("a").with_job(counting("a", &runs));
    let b = world.scheduler("b").with_job(counting("b", &runs));
    assert_eq!(term(&a.tick().await), Some(1));
    drop(a); // gone without a word (crash, partition from the HSM, ...)

    for _ in 0..3 {
        world.clock.advance(9);
        let waiting = b.tick().await;
        assert_eq!(follower_of(&waiting), Some(("a", START + TTL)));
        assert!(!waiting.acting);
    }
    world.clock.set(START + TTL);
    let took_over = b.tick().await;
    assert_eq!(term(&took_over), Some(2));
    assert!(took_over.done("counting").is_some());
    assert_eq!(
        *runs.lock().unwrap(),
        [("a".to_owned(), START), ("b".to_owned(), START + TTL)]
    );

    let events = world.leadership_events().await;
    let take_over = events
        .iter()
        .find(|e| e.details["change"] == "take_over" && phase(e) == Some("result"))
        .unwrap();
    assert_eq!(take_over.actor, "system:scheduler");
    assert_eq!(take_over.outcome, Outcome::Success);
    assert_eq!(take_over.details["replica"], "b");
    assert_eq!(take_over.details["term"], "2");
    assert_eq!(take_over.details["previous_holder"], "a");
}

#[tokio::test]
async fn a_released_lease_is_taken_over_at_once() {
    let world = World::new().await;
    let runs: Runs = Arc::default();
    let a = world.scheduler("a").with_job(counting("a", &runs));
    let b = world.scheduler("b").with_job(counting("b", &runs));
    assert!(a.tick().await.acting);
    assert!(!b.tick().await.acting);

    assert!(a.release().await, "graceful shutdown");
    let next = b.tick().await; // same second
    assert_eq!(term(&next), Some(2));
    assert!(next.done("counting").is_some());
    assert!(!a.tick().await.acting, "the old leader now follows");

    let changes: Vec<_> = world
        .leadership_events()
        .await
        .iter()
        .filter(|e| phase(e) == Some("result"))
        .map(|e| (e.details["change"].clone(), e.details["replica"].clone()))
        .collect();
    let expected = [("acquire", "a"), ("release", "a"), ("take_over", "b")];
    assert_eq!(
        changes,
        expected.map(|(change, replica)| (change.to_owned(), replica.to_owned()))
    );
}

#[tokio::test]
async fn a_failing_job_does_not_stop_the_next_job() {
    let world = World::new().await;
    let runs: Runs = Arc::default();
    let a = world
        .scheduler("a")
        .with_job(Arc::new(FailingJob))
        .with_job(counting("a", &runs));
    for _ in 0..3 {
        let report = a.tick().await;
        assert!(report.acting);
        assert!(matches!(report.jobs[0].outcome, JobOutcome::Failed(_)));
        assert!(
            report
                .failed("failing")
                .unwrap()
                .to_string()
                .contains("HSM is unavailable")
        );
        assert_eq!(report.done("counting"), Some(&JobReport::new(1, "counted")));
        world.clock.advance(15);
    }
    assert_eq!(runs.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_restarted_leader_resumes_without_repeating_due_items() {
    let world = World::new().await;
    let setup = world.store("setup");
    let items: BTreeMap<String, Item> = [("i1", START), ("i2", START + 10), ("i3", START + 100)]
        .into_iter()
        .map(|(id, due_at)| (id.to_owned(), Item { due_at }))
        .collect();
    setup
        .create(ITEMS.0, ITEMS.1, items, "test", Sealing::Plain)
        .await
        .unwrap();
    let executions: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let start_a = || {
        let store = world.store("a");
        let audit = world.audit(&store);
        Scheduler::new(
            store.clone(),
            audit,
            world.clock.clone(),
            "a",
            SchedulerConfig::default(),
        )
        .with_job(Arc::new(DueItemsJob {
            replica: "a".into(),
            store,
            executions: executions.clone(),
        }))
    };
    let actions = |report: &TickReport| report.done("due_items").map(|r| r.actions);

    let first = start_a();
    assert_eq!(actions(&first.tick().await), Some(1), "i1");
    world.clock.advance(10);
    assert_eq!(actions(&first.tick().await), Some(1), "i2");
    drop(first); // killed: no release

    // The restarted process has a new token: it waits for its predecessor's lease like anybody.
    let second = start_a();
    let waiting = second.tick().await;
    assert!(!waiting.acting);
    assert_eq!(follower_of(&waiting), Some(("a", START + 10 + TTL)));
    world.clock.set(START + 10 + TTL);
    let resumed = second.tick().await;
    assert_eq!(term(&resumed), Some(2));
    assert_eq!(
        actions(&resumed),
        Some(0),
        "i1 and i2 are done; i3 is not due"
    );
    world.clock.set(START + 100);
    assert_eq!(actions(&second.tick().await), Some(1), "i3");

    // A graceful restart: the next process leads at once, and finds nothing left to do.
    assert!(second.release().await);
    let third = start_a();
    let report = third.tick().await;
    assert_eq!(term(&report), Some(3));
    assert_eq!(actions(&report), Some(0));

    let executions = executions.lock().unwrap().clone();
    assert_eq!(executions.len(), 3);
    assert!(
        executions.values().all(|count| *count == 1),
        "{executions:?}"
    );
    let done: BTreeMap<String, Done> = setup.require(DONE.0, DONE.1).await.unwrap().value;
    assert_eq!(done["i1"].at, START);
    assert_eq!(done["i2"].at, START + 10);
    assert_eq!(done["i3"].at, START + 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_racing_for_an_expired_lease_have_exactly_one_winner() {
    let world = World::new().await;
    let runs: Runs = Arc::default();
    const ROUNDS: u64 = 15;
    for round in 0..ROUNDS {
        // New processes every round: the last winner is gone, its lease expired (or, in round 0,
        // there is none yet), and three replicas ask at the same instant.
        let contenders: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|name| Arc::new(world.scheduler(name).with_job(counting(name, &runs))))
            .collect();
        let tasks: Vec<_> = contenders
            .iter()
            .map(|scheduler| {
                let scheduler = scheduler.clone();
                tokio::spawn(async move { scheduler.tick().await })
            })
            .collect();
        let mut reports = Vec::new();
        for task in tasks {
            reports.push(task.await.unwrap());
        }
        let winners: Vec<_> = reports.iter().filter(|r| r.acting).collect();
        assert_eq!(winners.len(), 1, "round {round}: {reports:?}");
        assert_eq!(term(winners[0]), Some(round + 1));
        for loser in reports.iter().filter(|r| !r.acting) {
            assert!(loser.jobs.is_empty());
            assert!(follower_of(loser).is_some(), "{loser:?}");
        }
        world.clock.advance(TTL);
    }
    assert_eq!(runs.lock().unwrap().len() as u64, ROUNDS);

    // The audit log agrees: one successful acquisition per round, and every attempt that lost
    // after recording its request says so.
    let results: Vec<_> = world
        .leadership_events()
        .await
        .into_iter()
        .filter(|e| phase(e) == Some("result"))
        .collect();
    assert_eq!(
        results
            .iter()
            .filter(|e| e.outcome == Outcome::Success)
            .count() as u64,
        ROUNDS
    );
    assert!(
        results
            .iter()
            .filter(|e| e.outcome == Outcome::Failed)
            .all(|e| e.details["error"] == "lease_taken")
    );
}

/// Two `keymanager serve` replicas on one management partition: the scheduler is wired into
/// `serve`, exactly one replica holds the lease, and a graceful shutdown (SIGTERM) hands it to the
/// other at its next round (real time here: the binaries run on the system clock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_scheduler_and_hands_over_the_lease_on_sigterm() {
    use std::time::{Duration, Instant};

    use crate::support::Process;

    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = |replica: &str| {
        let path = dir.path().join(format!("{replica}.toml"));
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[management]\ntsb_url = \"{url}\"\n\n\
             [identity]\nbcrypt_cost = 10\n\n[state]\nreplica = \"{replica}\"\n",
            url = fixture.base_url(),
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let serve = |replica: &str| {
        let path = config(replica);
        let mut process =
            Process::start_capturing_all(&["serve", "--config", path.to_str().unwrap()], &[]);
        process.wait_for_line("keymanager is serving", Duration::from_secs(60));
        process
    };
    // The test's own view of the management partition (no cache: fresh reads).
    let view = StateStore::new(
        Arc::new(TsbHsm::new(
            TsbClient::builder(fixture.base_url()).build().unwrap(),
        )),
        Arc::new(km_core::SystemClock),
        StateStoreConfig::default(),
    );
    let lease = || async {
        view.get_fresh::<serde_json::Value>("scheduler", "leader")
            .await
            .unwrap()
            .map(|record| record.value)
    };
    /// Polls the lease record until `check` accepts it (or panics after `timeout`).
    async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut read: F) -> serde_json::Value
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<serde_json::Value>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(body) = read().await {
                return body;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let first = serve("r1");
    let held = wait_for("r1 to lead", Duration::from_secs(30), || async {
        lease()
            .await
            .filter(|body| body["holder"] == "r1" && body["released_at"].is_null())
    })
    .await;
    assert_eq!(held["term"], 1);
    let second = serve("r2");

    let (status, output) = first.terminate(Duration::from_secs(30));
    assert!(status.success(), "{output}");
    let released = lease().await.unwrap();
    assert_eq!(released["holder"], "r1");
    assert!(
        released["released_at"].is_u64(),
        "released on SIGTERM: {released}"
    );

    // r2 takes over at its next round (every 15 s), not after the 30 s lease.
    let taken = wait_for("r2 to take over", Duration::from_secs(25), || async {
        lease().await.filter(|body| body["holder"] == "r2")
    })
    .await;
    assert_eq!(taken["term"], 2);
    assert!(taken["released_at"].is_null());
    second.kill();
}
