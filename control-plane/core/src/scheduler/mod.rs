//! The scheduler (DESIGN §4.2): of all replicas, one leader runs the periodic work — key
//! activations, rotations, expiries and scheduled destructions, and housekeeping such as purging
//! expired sessions — and everything it does is audited as `system:scheduler`.
//!
//! - **One leader**: a [`LeaderLease`] record on the management partition (see `lease` for the
//!   algorithm). Every [`Scheduler::tick`] acquires or renews it; only the holder runs jobs.
//! - **Jobs** ([`ScheduledJob`]) run in the order they were added, each on its own cadence
//!   ([`ScheduledJob::every_secs`]). An error (or a panic) in one job is reported in the
//!   [`TickReport`] and logged; the next job runs all the same. Before each job the leader renews
//!   the lease when a renewal is due and checks [`LeaderLease::still_leader`]; a leader that could
//!   not renew in time stops acting `guard_secs` before anybody else may take over.
//! - **Restarts**: the lease is released on graceful shutdown ([`Scheduler::run`] does it), so
//!   another replica (or the restarted one) takes over at once; after a crash, after `ttl_secs`.
//!   Nothing about *work* is kept in the scheduler: jobs find what is due in the state store and
//!   must be **idempotent** (re-decide every item on freshly read state, and mark it done with a
//!   revision-checked write, so a second run — by a new leader, after a crash half-way — does
//!   nothing for items already done).
//!
//! # Guarantee and residual race
//!
//! At most one replica *starts* a job at any instant, provided that the clocks of the replicas
//! differ by less than the lease's `guard_secs` and that the state store's record locks hold
//! (their own residual races need a crashed writer; see `state`). What remains:
//! - **A frozen leader**: a leader checks `still_leader` before each job, with at least
//!   `guard_secs` (default 10 s) left on its lease. A job that then runs — or a process that
//!   stalls (VM pause, SIGSTOP, swap storm) — for longer than the rest of the lease overlaps with
//!   the next leader, which may take over once the lease has expired. The old leader notices only
//!   at its next check. Jobs bound that window by being idempotent and writing each item with a
//!   revision check, so the overlapping leader's writes fail with a conflict instead of being
//!   applied twice; keep each job's run well under the guard, or check progress per item.
//! - **Two replicas breaking the same stale record lock** of the lease record (a replica crashed
//!   while writing the lease) within one round trip may both believe they won one term; the next
//!   renewal of the one whose token is not stored fails, so the overlap lasts at most
//!   `renew_every_secs`.

mod jobs;
mod lease;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

/// The attribute to implement [`ScheduledJob`] with (`#[async_trait]`), re-exported so that a
/// crate implementing a job needs no dependency of its own for it.
pub use async_trait::async_trait;
pub use jobs::{KeyDueWorkJob, SessionPurgeJob, SsoPendingPurgeJob};
pub use lease::{
    LEADERSHIP_ACTION, LEASE_ID, LEASE_KIND, LeaderLease, Leadership, LeaseConfig, LeaseError,
    LeaseRecord, SCHEDULER_ACTOR,
};

use crate::audit::{AuditError, AuditLog};
use crate::{Clock, StateStore, StoreError, Timestamp};

/// Tunables of a [`Scheduler`]. Every replica should use the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// The leader lease's timing.
    pub lease: LeaseConfig,
    /// Time between two rounds of [`Scheduler::run`]: how late a due item may be acted on, and
    /// how often followers check whether the leader is gone. At most the lease's TTL minus its
    /// guard (otherwise the lease would lapse between rounds).
    pub interval: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            lease: LeaseConfig::default(),
            interval: Duration::from_secs(15),
        }
    }
}

impl SchedulerConfig {
    /// Makes the values consistent (see [`LeaseConfig::normalised`]; the interval between 10 ms
    /// and the lease's TTL minus its guard).
    pub fn normalised(self) -> Self {
        let lease = self.lease.normalised();
        let longest = Duration::from_secs(lease.ttl_secs - lease.guard_secs);
        Self {
            lease,
            interval: self.interval.clamp(
                Duration::from_millis(10),
                longest.max(Duration::from_millis(10)),
            ),
        }
    }
}

/// What a job did in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobReport {
    /// Actions taken (items acted on); 0 when nothing was due.
    pub actions: u64,
    /// A short summary for logs (ids and counts, never secrets).
    pub detail: String,
}

impl JobReport {
    /// A report of `actions` actions, summarised by `detail`.
    pub fn new(actions: u64, detail: impl Into<String>) -> Self {
        Self {
            actions,
            detail: detail.into(),
        }
    }
}

/// Why a job's run failed. The scheduler logs it and runs the next job; the job is tried again at
/// its next turn.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log could not record the job's action, so it was not taken.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// Anything else (a service error, a partition's HSM being down), as text.
    #[error("{reason}")]
    Failed {
        /// What went wrong (never a secret).
        reason: String,
    },
    /// The job panicked; the scheduler caught it.
    #[error("the job panicked")]
    Panicked,
}

impl JobError {
    /// A failure described by `reason` (e.g. a service's error).
    pub fn failed(reason: impl std::fmt::Display) -> Self {
        Self::Failed {
            reason: reason.to_string(),
        }
    }
}

/// Periodic work run by the leader.
///
/// Implementations must be idempotent: a run may be repeated (by a new leader after a crash, or
/// overlapping with a frozen old leader for at most the lease's guard, see the module docs), so
/// every item is re-decided on freshly read state and marked done with a revision-checked write.
/// Every action is audited by the job itself, as `system:scheduler`.
#[async_trait]
pub trait ScheduledJob: Send + Sync {
    /// A stable name for logs and reports (`snake_case`).
    fn name(&self) -> &'static str;

    /// Least time between two runs on the same leader (0 = every round). A new leader runs every
    /// job at its first round.
    fn every_secs(&self) -> u64 {
        0
    }

    /// Does what is due at `now`.
    async fn run(&self, now: Timestamp) -> Result<JobReport, JobError>;
}

/// How one job fared in a round.
#[derive(Debug)]
pub enum JobOutcome {
    /// It ran.
    Done(JobReport),
    /// It ran and failed.
    Failed(JobError),
    /// Its cadence ([`ScheduledJob::every_secs`]) says not yet.
    NotDue,
    /// The lease could not be kept long enough to start it.
    NotLeader,
}

/// One job in a [`TickReport`].
#[derive(Debug)]
pub struct JobRun {
    /// [`ScheduledJob::name`].
    pub name: &'static str,
    /// What happened.
    pub outcome: JobOutcome,
}

/// What one [`Scheduler::tick`] did.
#[derive(Debug)]
pub struct TickReport {
    /// The round's time (start).
    pub at: Timestamp,
    /// The lease round at the start: leader, follower, or why the lease could not be read or
    /// written (a leader may still act until its lease's guard then).
    pub lease: Result<Leadership, LeaseError>,
    /// Whether this replica acted as leader in this round.
    pub acting: bool,
    /// Every job, in order, when acting; empty otherwise.
    pub jobs: Vec<JobRun>,
}

impl TickReport {
    /// The report of the job `name`, if it ran successfully in this round.
    pub fn done(&self, name: &str) -> Option<&JobReport> {
        self.jobs.iter().find_map(|run| match &run.outcome {
            JobOutcome::Done(report) if run.name == name => Some(report),
            _ => None,
        })
    }

    /// The error of the job `name`, if it failed in this round.
    pub fn failed(&self, name: &str) -> Option<&JobError> {
        self.jobs.iter().find_map(|run| match &run.outcome {
            JobOutcome::Failed(error) if run.name == name => Some(error),
            _ => None,
        })
    }
}

/// A job and when this instance last started it.
struct Entry {
    job: Arc<dyn ScheduledJob>,
    last_started: Mutex<Option<Timestamp>>,
}

impl Entry {
    fn last_started(&self) -> std::sync::MutexGuard<'_, Option<Timestamp>> {
        self.last_started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One replica's scheduler: a [`LeaderLease`] and the jobs it runs while leading.
pub struct Scheduler {
    lease: LeaderLease,
    clock: Arc<dyn Clock>,
    config: SchedulerConfig,
    jobs: Vec<Entry>,
    /// Serialises rounds (and the release) of this instance.
    round: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("replica", &self.lease.replica())
            .field("config", &self.config)
            .field(
                "jobs",
                &self.jobs.iter().map(|e| e.job.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// The scheduler of `replica` (its name in the lease and the audit log), keeping the lease in
    /// `store` and recording leadership changes in `audit`. Add jobs with
    /// [`Scheduler::with_job`].
    pub fn new(
        store: StateStore,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
        replica: impl Into<String>,
        config: SchedulerConfig,
    ) -> Self {
        let config = config.normalised();
        Self {
            lease: LeaderLease::new(store, audit, replica.into(), config.lease),
            clock,
            config,
            jobs: Vec::new(),
            round: tokio::sync::Mutex::new(()),
        }
    }

    /// Adds a job; jobs run in the order they were added.
    pub fn with_job(mut self, job: Arc<dyn ScheduledJob>) -> Self {
        self.jobs.push(Entry {
            job,
            last_started: Mutex::new(None),
        });
        self
    }

    /// The lease (to ask who leads, or whether this replica does).
    pub fn lease(&self) -> &LeaderLease {
        &self.lease
    }

    /// The configuration in use (normalised).
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Names of the jobs, in the order they run.
    pub fn job_names(&self) -> Vec<&'static str> {
        self.jobs.iter().map(|entry| entry.job.name()).collect()
    }

    /// One round: acquire or renew the lease; if this replica leads, run every due job in order
    /// (renewing between jobs when due, and stopping when the lease cannot be kept).
    pub async fn tick(&self) -> TickReport {
        let _round = self.round.lock().await;
        let at = self.clock.now();
        let lease = self.lease.try_acquire_or_renew(at).await;
        if let Err(error) = &lease {
            tracing::warn!(%error, replica = %self.lease.replica(), "scheduler lease round failed");
        }
        let acting = self.lease.still_leader(at);
        let mut report = TickReport {
            at,
            lease,
            acting,
            jobs: Vec::new(),
        };
        if !acting {
            return report;
        }
        for entry in &self.jobs {
            let name = entry.job.name();
            let now = self.clock.now();
            if self.lease.renewal_due(now)
                && let Err(error) = self.lease.try_acquire_or_renew(now).await
            {
                tracing::warn!(%error, replica = %self.lease.replica(),
                    "renewing the scheduler lease failed");
            }
            let outcome = if !self.lease.still_leader(now) {
                tracing::warn!(job = name, replica = %self.lease.replica(),
                    "job not started: this replica no longer holds the scheduler lease");
                JobOutcome::NotLeader
            } else if !self.due(entry, now) {
                JobOutcome::NotDue
            } else {
                *entry.last_started() = Some(now);
                self.run_job(entry.job.as_ref(), now).await
            };
            report.jobs.push(JobRun { name, outcome });
        }
        report
    }

    /// Runs [`Scheduler::tick`] every [`SchedulerConfig::interval`] (the first at once) until
    /// `shutdown` completes, then releases the lease so that another replica takes over at once.
    /// A round in progress when `shutdown` completes is finished first.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut ticks = tokio::time::interval(self.config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = ticks.tick() => {
                    self.tick().await;
                }
            }
        }
        self.release().await;
    }

    /// Gives up the lease if this instance holds it (graceful shutdown). Returns whether it did;
    /// failures are logged (the lease then runs out by itself).
    pub async fn release(&self) -> bool {
        let _round = self.round.lock().await;
        match self.lease.release(self.clock.now()).await {
            Ok(released) => released,
            Err(error) => {
                tracing::warn!(%error, replica = %self.lease.replica(),
                    "could not release the scheduler lease; it runs out by itself");
                false
            }
        }
    }

    fn due(&self, entry: &Entry, now: Timestamp) -> bool {
        match *entry.last_started() {
            None => true,
            Some(last) => now < last || now >= last.saturating_add(entry.job.every_secs()),
        }
    }

    async fn run_job(&self, job: &dyn ScheduledJob, now: Timestamp) -> JobOutcome {
        let name = job.name();
        let result = CatchPanic(job.run(now))
            .await
            .unwrap_or(Err(JobError::Panicked));
        match result {
            Ok(report) => {
                if report.actions > 0 {
                    tracing::info!(job = name, actions = report.actions, detail = %report.detail,
                        "scheduled job ran");
                } else {
                    tracing::debug!(job = name, detail = %report.detail, "scheduled job ran");
                }
                JobOutcome::Done(report)
            }
            Err(error) => {
                tracing::warn!(job = name, %error, "scheduled job failed; it is tried again at its next turn");
                JobOutcome::Failed(error)
            }
        }
    }
}

/// Turns a panic while polling the boxed future into `Err(())`, so that one faulty job cannot end
/// the scheduler (the panic message still reaches the panic hook, i.e. the log).
struct CatchPanic<'a, T>(Pin<Box<dyn Future<Output = T> + Send + 'a>>);

impl<T> Future for CatchPanic<'_, T> {
    type Output = Result<T, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}
