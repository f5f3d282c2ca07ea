//! Unit tests of the lease and the scheduler with the real `StateStore` and `AuditLog` over the
//! in-memory HSM fake of `state::test_hsm`. Several stores over one fake = several replicas (each
//! with its own cache); one `ManualClock` is everybody's "now". The same scenarios run against the
//! real emulator in tests/e2e/scheduler.rs.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use km_domain::PrincipalId;
use km_domain::audit::{AuditEvent, Outcome};

use super::*;
use crate::audit::{AuditConfig, NoSink};
use crate::state::test_hsm::FakeHsm;
use crate::{LockRetry, ManualClock, StateStoreConfig};

const START: Timestamp = 1_000_000;

struct Rig {
    hsm: Arc<FakeHsm>,
    clock: Arc<ManualClock>,
}

/// One replica: its own store (cache) and audit log instance.
struct Replica {
    store: StateStore,
    audit: AuditLog,
}

impl Rig {
    fn new() -> Self {
        Self {
            hsm: Arc::new(FakeHsm::default()),
            clock: Arc::new(ManualClock::new(START)),
        }
    }

    fn replica(&self, name: &str) -> Replica {
        let store = StateStore::new(
            self.hsm.clone(),
            self.clock.clone(),
            StateStoreConfig {
                replica: name.to_owned(),
                lock_retry: LockRetry {
                    attempts: 200,
                    base_delay: Duration::from_millis(1),
                    max_delay: Duration::from_millis(4),
                },
                ..StateStoreConfig::default()
            },
        );
        let audit = AuditLog::new(
            self.hsm.clone(),
            store.clone(),
            self.clock.clone(),
            Arc::new(NoSink),
            AuditConfig {
                checkpoint_every: 0,
                ..AuditConfig::default()
            },
        );
        Replica { store, audit }
    }

    fn scheduler(&self, name: &str) -> Scheduler {
        let replica = self.replica(name);
        Scheduler::new(
            replica.store,
            replica.audit,
            self.clock.clone(),
            name,
            SchedulerConfig::default(),
        )
    }

    fn lease(&self, name: &str) -> LeaderLease {
        let replica = self.replica(name);
        LeaderLease::new(
            replica.store,
            replica.audit,
            name.to_owned(),
            LeaseConfig::default(),
        )
    }

    async fn events(&self) -> Vec<AuditEvent> {
        self.replica("reader")
            .audit
            .read(1..=u64::MAX)
            .await
            .unwrap()
    }

    async fn leadership_events(&self) -> Vec<AuditEvent> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e.action == LEADERSHIP_ACTION)
            .collect()
    }
}

/// Records which replica ran it, and when.
struct CountingJob {
    name: &'static str,
    replica: String,
    runs: Arc<Mutex<Vec<(String, Timestamp)>>>,
    every: u64,
}

impl CountingJob {
    fn new(replica: &str, runs: &Arc<Mutex<Vec<(String, Timestamp)>>>) -> Arc<Self> {
        Arc::new(Self {
            name: "counting",
            replica: replica.to_owned(),
            runs: runs.clone(),
            every: 0,
        })
    }
}

#[async_trait]
impl ScheduledJob for CountingJob {
    fn name(&self) -> &'static str {
        self.name
    }
    fn every_secs(&self) -> u64 {
        self.every
    }
    async fn run(&self, now: Timestamp) -> Result<JobReport, JobError> {
        self.runs.lock().unwrap().push((self.replica.clone(), now));
        Ok(JobReport::new(1, "counted"))
    }
}

struct FailingJob;

#[async_trait]
impl ScheduledJob for FailingJob {
    fn name(&self) -> &'static str {
        "failing"
    }
    async fn run(&self, _now: Timestamp) -> Result<JobReport, JobError> {
        Err(JobError::failed("partition acme: HSM unavailable"))
    }
}

struct PanickingJob;

#[async_trait]
impl ScheduledJob for PanickingJob {
    fn name(&self) -> &'static str {
        "panicking"
    }
    #[allow(clippy::panic)]
    async fn run(&self, _now: Timestamp) -> Result<JobReport, JobError> {
        panic!("a bug in a job");
    }
}

/// Takes `seconds` of (manual) time, like a long run.
struct SlowJob {
    name: &'static str,
    clock: Arc<ManualClock>,
    seconds: u64,
}

#[async_trait]
impl ScheduledJob for SlowJob {
    fn name(&self) -> &'static str {
        self.name
    }
    async fn run(&self, _now: Timestamp) -> Result<JobReport, JobError> {
        self.clock.advance(self.seconds);
        Ok(JobReport::default())
    }
}

fn runs() -> Arc<Mutex<Vec<(String, Timestamp)>>> {
    Arc::new(Mutex::new(Vec::new()))
}

fn leader(report: &TickReport) -> Option<u64> {
    match &report.lease {
        Ok(Leadership::Leader { term }) => Some(*term),
        _ => None,
    }
}

#[test]
fn the_actor_is_the_system_scheduler_principal() {
    assert_eq!(
        PrincipalId::system("scheduler").unwrap().as_str(),
        SCHEDULER_ACTOR
    );
}

#[test]
fn configuration_is_made_consistent() {
    let lease = LeaseConfig {
        ttl_secs: 0,
        renew_every_secs: 0,
        guard_secs: 100,
    }
    .normalised();
    assert_eq!(
        (lease.ttl_secs, lease.guard_secs, lease.renew_every_secs),
        (2, 1, 1)
    );
    let config = SchedulerConfig {
        lease: LeaseConfig::default(),
        interval: Duration::from_secs(3_600),
    }
    .normalised();
    assert_eq!(
        config.interval,
        Duration::from_secs(20),
        "TTL 30 - guard 10"
    );
    assert_eq!(
        SchedulerConfig::default().normalised(),
        SchedulerConfig::default()
    );
}

#[tokio::test]
async fn exactly_one_of_two_replicas_leads_and_runs_the_jobs() {
    let rig = Rig::new();
    let runs = runs();
    let a = rig.scheduler("a").with_job(CountingJob::new("a", &runs));
    let b = rig.scheduler("b").with_job(CountingJob::new("b", &runs));

    for round in 0..10u64 {
        let first = a.tick().await;
        let second = b.tick().await;
        assert_eq!(leader(&first), Some(1), "round {round}");
        assert!(first.acting && !second.acting);
        assert!(first.done("counting").is_some());
        assert!(second.jobs.is_empty());
        match &second.lease {
            Ok(Leadership::Follower { holder, until }) => {
                assert_eq!(holder, "a");
                assert_eq!(*until, rig.clock.now() + 30, "renewed at every round");
            }
            other => panic!("{other:?}"),
        }
        rig.clock.advance(5);
    }
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 10);
    assert!(runs.iter().all(|(replica, _)| replica == "a"));

    let record = a.lease().current().await.unwrap().unwrap();
    assert_eq!(record.value.holder, "a");
    assert_eq!(record.value.term, 1);
    assert_eq!(record.value.acquired_at, START);
    assert_eq!(record.value.renewed_at, START + 45);
    assert_eq!(record.value.expires_at, START + 75);
    assert_eq!(record.updated_by, SCHEDULER_ACTOR);
}

#[tokio::test]
async fn a_leader_that_stops_renewing_is_replaced_once_its_lease_expires() {
    let rig = Rig::new();
    let runs = runs();
    let a = rig.scheduler("a").with_job(CountingJob::new("a", &runs));
    let b = rig.scheduler("b").with_job(CountingJob::new("b", &runs));
    assert_eq!(leader(&a.tick().await), Some(1));

    // `a` freezes (no more ticks). Up to the last second of its lease `b` follows.
    rig.clock.advance(29);
    assert!(!b.tick().await.acting);
    rig.clock.advance(1);
    let took_over = b.tick().await;
    assert_eq!(leader(&took_over), Some(2));
    assert!(took_over.done("counting").is_some());

    // `a` wakes up: it has lost the lease, and runs nothing.
    let woke = a.tick().await;
    assert!(!woke.acting, "{woke:?}");
    assert!(matches!(&woke.lease, Ok(Leadership::Follower { holder, .. }) if holder == "b"));
    assert!(!a.lease().still_leader(rig.clock.now()));
    let runs = runs.lock().unwrap();
    assert_eq!(
        *runs,
        vec![("a".to_owned(), START), ("b".to_owned(), START + 30)]
    );
}

#[tokio::test]
async fn a_holder_acts_only_while_more_than_the_guard_is_left() {
    let rig = Rig::new();
    let lease = rig.lease("a");
    assert!(!lease.still_leader(START));
    assert_eq!(
        lease.try_acquire_or_renew(START).await.unwrap(),
        Leadership::Leader { term: 1 }
    );
    assert!(lease.still_leader(START + 19));
    assert!(!lease.still_leader(START + 20), "TTL 30, guard 10");
    assert!(!lease.renewal_due(START + 9));
    assert!(lease.renewal_due(START + 10));
    // A renewal of a lease that ran out but that nobody took keeps the term.
    assert_eq!(
        lease.try_acquire_or_renew(START + 45).await.unwrap(),
        Leadership::Leader { term: 1 }
    );
    assert!(lease.still_leader(START + 64));
}

#[tokio::test]
async fn a_leader_that_cannot_renew_keeps_acting_only_until_the_guard() {
    let rig = Rig::new();
    let runs = runs();
    let a = rig.scheduler("a").with_job(CountingJob::new("a", &runs));
    assert!(a.tick().await.acting);

    // From now on, record writes are answered but not stored: renewals fail their read-back.
    rig.hsm.lose_writes.store(usize::MAX, Ordering::SeqCst);
    rig.clock.advance(15);
    let flaky = a.tick().await;
    assert!(matches!(
        flaky.lease,
        Err(LeaseError::Store(StoreError::NotDurable { .. }))
    ));
    assert!(flaky.acting, "15 s left on the lease, more than the guard");
    rig.clock.advance(5);
    let late = a.tick().await;
    assert!(late.lease.is_err());
    assert!(!late.acting, "only the guard left: stop");
    assert!(late.jobs.is_empty());
    assert_eq!(runs.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_graceful_release_hands_over_at_once_and_terms_keep_counting() {
    let rig = Rig::new();
    let a = rig.scheduler("a");
    let b = rig.scheduler("b");
    assert_eq!(leader(&a.tick().await), Some(1));
    assert!(!b.tick().await.acting);

    assert!(a.release().await);
    assert!(!a.lease().still_leader(rig.clock.now()));
    assert!(!a.release().await, "nothing left to release");
    let record = a.lease().current().await.unwrap().unwrap();
    assert_eq!(record.value.released_at, Some(START));

    // Same second: `b` takes over at once.
    assert_eq!(leader(&b.tick().await), Some(2));
    // And `a`, back again, follows.
    assert!(!a.tick().await.acting);
    // A release by a replica that does not hold it changes nothing.
    assert!(!a.release().await);
    assert_eq!(
        b.lease().current().await.unwrap().unwrap().value.holder,
        "b"
    );
}

#[tokio::test]
async fn a_restarted_replica_of_the_same_name_waits_unless_its_predecessor_released() {
    let rig = Rig::new();
    let first = rig.scheduler("a");
    assert_eq!(leader(&first.tick().await), Some(1));
    drop(first); // crash: no release

    let restarted = rig.scheduler("a");
    let report = restarted.tick().await;
    assert!(!report.acting, "the name is not the holder: the token is");
    assert!(
        matches!(&report.lease, Ok(Leadership::Follower { holder, until })
        if holder == "a" && *until == START + 30)
    );
    rig.clock.advance(30);
    assert_eq!(leader(&restarted.tick().await), Some(2));

    assert!(restarted.release().await);
    let again = rig.scheduler("a");
    assert_eq!(leader(&again.tick().await), Some(3));
}

#[tokio::test]
async fn a_failing_or_panicking_job_does_not_stop_the_next() {
    let rig = Rig::new();
    let runs = runs();
    let a = rig
        .scheduler("a")
        .with_job(Arc::new(FailingJob))
        .with_job(Arc::new(PanickingJob))
        .with_job(CountingJob::new("a", &runs));
    assert_eq!(a.job_names(), ["failing", "panicking", "counting"]);
    for _ in 0..2 {
        let report = a.tick().await;
        assert!(report.acting);
        let names: Vec<_> = report.jobs.iter().map(|run| run.name).collect();
        assert_eq!(names, ["failing", "panicking", "counting"]);
        assert!(
            matches!(report.failed("failing"), Some(JobError::Failed { reason })
            if reason.contains("HSM unavailable"))
        );
        assert!(matches!(
            report.failed("panicking"),
            Some(JobError::Panicked)
        ));
        assert_eq!(report.done("counting"), Some(&JobReport::new(1, "counted")));
        rig.clock.advance(15);
    }
    assert_eq!(runs.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn jobs_run_on_their_own_cadence() {
    let rig = Rig::new();
    let every_round = runs();
    let every_minute = runs();
    let a = rig
        .scheduler("a")
        .with_job(CountingJob::new("a", &every_round))
        .with_job(Arc::new(CountingJob {
            name: "minutely",
            replica: "a".into(),
            runs: every_minute.clone(),
            every: 60,
        }));
    let mut not_due = 0;
    for _ in 0..9 {
        let report = a.tick().await;
        not_due += report
            .jobs
            .iter()
            .filter(|run| matches!(run.outcome, JobOutcome::NotDue))
            .count();
        rig.clock.advance(15);
    }
    assert_eq!(every_round.lock().unwrap().len(), 9);
    let minutely: Vec<_> = every_minute.lock().unwrap().iter().map(|r| r.1).collect();
    assert_eq!(minutely, [START, START + 60, START + 120]);
    assert_eq!(not_due, 6);
}

#[tokio::test]
async fn a_long_round_renews_between_jobs_and_stops_when_it_cannot() {
    let rig = Rig::new();
    let runs = runs();
    let slow = |name| {
        Arc::new(SlowJob {
            name,
            clock: rig.clock.clone(),
            seconds: 15,
        })
    };
    let a = rig
        .scheduler("a")
        .with_job(slow("one"))
        .with_job(slow("two"))
        .with_job(slow("three"))
        .with_job(CountingJob::new("a", &runs));
    let report = a.tick().await;
    assert!(
        report
            .jobs
            .iter()
            .all(|run| matches!(run.outcome, JobOutcome::Done(_))),
        "{report:?}"
    );
    let record = a.lease().current().await.unwrap().unwrap();
    assert_eq!(
        record.value.renewed_at,
        START + 45,
        "renewed before each late job"
    );

    // If the renewals fail, the round stops at the guard.
    rig.clock.advance(30);
    let a2 = a.tick().await; // renews at START + 75
    assert!(a2.acting);
    rig.hsm.lose_writes.store(usize::MAX, Ordering::SeqCst);
    rig.clock.advance(1);
    let report = a.tick().await;
    let outcomes: Vec<_> = report
        .jobs
        .iter()
        .map(|run| matches!(run.outcome, JobOutcome::NotLeader))
        .collect();
    // "one" starts with 29 s left, "two" at +15 (renewal fails, 14 s left), "three" at +30 (no).
    assert_eq!(outcomes, [false, false, true, true]);
}

#[tokio::test]
async fn leadership_changes_are_audited_as_the_scheduler() {
    let rig = Rig::new();
    let a = rig.scheduler("a");
    let b = rig.scheduler("b");
    assert!(a.tick().await.acting);
    rig.clock.advance(30);
    assert!(b.tick().await.acting);
    assert!(!a.tick().await.acting); // a learns it lost
    assert!(b.release().await);

    let events = rig.leadership_events().await;
    let summary: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.details["change"].as_str(),
                e.details.get("phase").map(String::as_str),
                e.details["replica"].as_str(),
                e.details["term"].as_str(),
                e.outcome,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("acquire", Some("request"), "a", "1", Outcome::Success),
            ("acquire", Some("result"), "a", "1", Outcome::Success),
            ("take_over", Some("request"), "b", "2", Outcome::Success),
            ("take_over", Some("result"), "b", "2", Outcome::Success),
            ("lost", None, "a", "1", Outcome::Failed),
            ("release", Some("request"), "b", "2", Outcome::Success),
            ("release", Some("result"), "b", "2", Outcome::Success),
        ]
    );
    for event in &events {
        assert_eq!(event.actor, SCHEDULER_ACTOR);
        assert_eq!(event.target.as_deref(), Some("kms.scheduler.leader"));
    }
    assert_eq!(events[2].details["previous_holder"], "a");
    assert_eq!(events[2].details["previous_term"], "1");
    assert_eq!(events[4].details["holder"], "b");
}

#[tokio::test]
async fn without_an_audit_log_nobody_leads() {
    let rig = Rig::new();
    let runs = runs();
    let a = rig.scheduler("a").with_job(CountingJob::new("a", &runs));
    rig.hsm.lose_writes.store(usize::MAX, Ordering::SeqCst);
    let report = a.tick().await;
    assert!(
        matches!(report.lease, Err(LeaseError::Audit(_))),
        "{report:?}"
    );
    assert!(!report.acting);
    assert!(rig.hsm.raw("kms.scheduler.leader").is_none());
    assert!(runs.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_racing_for_a_free_lease_never_both_win() {
    let rig = Rig::new();
    for round in 0..25u64 {
        // Fresh instances every round: the previous winner is gone (crashed), so both race to
        // create (round 0) or take over (later rounds) the same lease.
        let contenders: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|name| Arc::new(rig.lease(name)))
            .collect();
        let now = rig.clock.now();
        let tasks: Vec<_> = contenders
            .iter()
            .map(|lease| {
                let lease = lease.clone();
                tokio::spawn(async move { lease.try_acquire_or_renew(now).await.unwrap() })
            })
            .collect();
        let mut leaders = Vec::new();
        for task in tasks {
            if let Leadership::Leader { term } = task.await.unwrap() {
                leaders.push(term);
            }
        }
        assert_eq!(leaders, [round + 1], "round {round}: exactly one winner");
        let holders: Vec<_> = contenders
            .iter()
            .filter(|lease| lease.still_leader(now))
            .map(|lease| lease.replica().to_owned())
            .collect();
        let record = contenders[0].current().await.unwrap().unwrap();
        assert_eq!(record.value.term, round + 1);
        assert_eq!(holders, [record.value.holder]);
        rig.clock.advance(30);
    }
    // The audit log agrees: one successful acquisition per round; every attempt that lost the
    // race after recording its request says so.
    let results: Vec<_> = rig
        .leadership_events()
        .await
        .into_iter()
        .filter(|e| e.details.get("phase").map(String::as_str) == Some("result"))
        .collect();
    let won = results
        .iter()
        .filter(|e| e.outcome == Outcome::Success)
        .count();
    assert_eq!(won, 25);
    assert!(
        results
            .iter()
            .filter(|e| e.outcome == Outcome::Failed)
            .all(|e| e.details["error"] == "lease_taken")
    );
}
