//! The key lifecycle (DESIGN §4.2): NIST SP 800-57 states and the one function that decides moves
//! between them.
//!
//! [`transition`] is the only place a key's state may change. It is pure: the caller passes the
//! current state, the event and a [`TransitionContext`] (the time, the key's `destroyable` attribute,
//! the tenant's waiting period, the stored destruction schedule) and gets back the new state plus the
//! [`TsbEffect`] to apply on the HSM, or an [`IllegalTransition`] with a stable code.
//!
//! Destruction is never immediate: a key is first scheduled (not sooner than the tenant's waiting
//! period from now), may be cancelled back to the state it was scheduled from, and is destroyed only
//! by the scheduler once due. Compromise is irreversible; destroyed is terminal.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One day in seconds; the shortest waiting period a tenant may configure.
pub const MIN_WAITING_PERIOD_SECS: u64 = 24 * 60 * 60;
/// Seven days in seconds; the waiting period when a tenant configures none.
pub const DEFAULT_WAITING_PERIOD_SECS: u64 = 7 * MIN_WAITING_PERIOD_SECS;

/// Where a key is in its life (SP 800-57). The serde form (`pre-active`, `destroy-scheduled`, ...)
/// is what the API shows and the metadata store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyState {
    /// Created, not yet usable (TSB: blocked).
    PreActive,
    /// Usable for everything its attributes allow (TSB: unblocked).
    Active,
    /// Temporarily unusable, reversible (TSB: blocked).
    Suspended,
    /// Past its crypto-period: may only process, not protect (TSB: blocked).
    Deactivated,
    /// Never to be trusted again; irreversible (TSB: blocked, unblock made impossible).
    Compromised,
    /// Waiting for destruction; cancellable until due (TSB: blocked).
    DestroyScheduled,
    /// Material deleted in the HSM; only the tombstone remains. Terminal.
    Destroyed,
}

impl KeyState {
    /// Every state, in lifecycle order.
    pub const ALL: [KeyState; 7] = [
        KeyState::PreActive,
        KeyState::Active,
        KeyState::Suspended,
        KeyState::Deactivated,
        KeyState::Compromised,
        KeyState::DestroyScheduled,
        KeyState::Destroyed,
    ];

    /// Stable kebab-case name, the same as the serde form.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyState::PreActive => "pre-active",
            KeyState::Active => "active",
            KeyState::Suspended => "suspended",
            KeyState::Deactivated => "deactivated",
            KeyState::Compromised => "compromised",
            KeyState::DestroyScheduled => "destroy-scheduled",
            KeyState::Destroyed => "destroyed",
        }
    }

    /// Whether no event can move the key any more.
    pub const fn is_terminal(self) -> bool {
        matches!(self, KeyState::Destroyed)
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The states destruction may be scheduled from, and so the states a cancel may return to. A
/// separate type so that a stored schedule can never restore a key to `active` or `suspended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduledFrom {
    /// Scheduled before it was ever activated.
    PreActive,
    /// Scheduled after deactivation (the usual end of life).
    Deactivated,
    /// Scheduled after compromise; a cancel keeps it compromised.
    Compromised,
}

impl ScheduledFrom {
    /// The state a cancel returns to.
    pub const fn state(self) -> KeyState {
        match self {
            ScheduledFrom::PreActive => KeyState::PreActive,
            ScheduledFrom::Deactivated => KeyState::Deactivated,
            ScheduledFrom::Compromised => KeyState::Compromised,
        }
    }

    /// The inverse of [`ScheduledFrom::state`]; `None` for states destruction cannot be scheduled from.
    pub const fn from_state(state: KeyState) -> Option<Self> {
        match state {
            KeyState::PreActive => Some(ScheduledFrom::PreActive),
            KeyState::Deactivated => Some(ScheduledFrom::Deactivated),
            KeyState::Compromised => Some(ScheduledFrom::Compromised),
            _ => None,
        }
    }
}

/// A pending destruction, stored beside a `destroy-scheduled` key: when it becomes due and where a
/// cancel returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DestructionSchedule {
    /// Unix seconds from which the scheduler may destroy the key.
    pub at: u64,
    /// The state the key was in when destruction was scheduled.
    pub restore_to: ScheduledFrom,
}

/// A tenant's waiting period before destruction; at least [`MIN_WAITING_PERIOD_SECS`], so a mistaken
/// or malicious destroy can always be noticed and cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct WaitingPeriod(u64);

impl WaitingPeriod {
    /// Validates a configured waiting period in seconds.
    pub const fn from_secs(secs: u64) -> Result<Self, InvalidWaitingPeriod> {
        if secs < MIN_WAITING_PERIOD_SECS {
            Err(InvalidWaitingPeriod { secs })
        } else {
            Ok(Self(secs))
        }
    }

    /// The period in seconds.
    pub const fn as_secs(self) -> u64 {
        self.0
    }
}

impl Default for WaitingPeriod {
    fn default() -> Self {
        Self(DEFAULT_WAITING_PERIOD_SECS)
    }
}

impl TryFrom<u64> for WaitingPeriod {
    type Error = InvalidWaitingPeriod;
    fn try_from(secs: u64) -> Result<Self, Self::Error> {
        Self::from_secs(secs)
    }
}

impl From<WaitingPeriod> for u64 {
    fn from(value: WaitingPeriod) -> Self {
        value.0
    }
}

/// A tenant tried to configure a waiting period below the minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the destruction waiting period must be at least {MIN_WAITING_PERIOD_SECS} seconds (1 day), got {secs}; choose 86400 or more (default 604800, 7 days)"
)]
pub struct InvalidWaitingPeriod {
    /// The rejected value, in seconds.
    pub secs: u64,
}

impl InvalidWaitingPeriod {
    /// Stable machine-readable code.
    pub const fn code(self) -> &'static str {
        "waiting_period_below_minimum"
    }
}

/// Something that asks a key to change state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum LifecycleEvent {
    /// Make a pre-active key usable.
    Activate,
    /// Make an active key temporarily unusable.
    Suspend,
    /// Return a suspended key to active (a.k.a. reactivate).
    Resume,
    /// End a key's protecting use (end of crypto-period, or a rotated-out version).
    Deactivate,
    /// Declare the key compromised; no way back.
    MarkCompromised,
    /// Schedule destruction at `at` (unix seconds), which must respect the waiting period.
    ScheduleDestruction {
        /// When the key becomes due for destruction.
        at: u64,
    },
    /// Withdraw a pending destruction; the key returns to the state it was scheduled from.
    CancelDestruction,
    /// Delete the material (the scheduler, once the schedule is due).
    Destroy,
}

impl LifecycleEvent {
    /// Stable kebab-case name, the same as the serde tag.
    pub const fn as_str(&self) -> &'static str {
        match self {
            LifecycleEvent::Activate => "activate",
            LifecycleEvent::Suspend => "suspend",
            LifecycleEvent::Resume => "resume",
            LifecycleEvent::Deactivate => "deactivate",
            LifecycleEvent::MarkCompromised => "mark-compromised",
            LifecycleEvent::ScheduleDestruction { .. } => "schedule-destruction",
            LifecycleEvent::CancelDestruction => "cancel-destruction",
            LifecycleEvent::Destroy => "destroy",
        }
    }
}

impl fmt::Display for LifecycleEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`transition`] needs besides the state and the event. Everything is passed in so the
/// decision stays pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitionContext {
    /// The current time, unix seconds.
    pub now: u64,
    /// The key's `destroyable` attribute; `false` keys can never be scheduled for destruction.
    pub destroyable: bool,
    /// The tenant's waiting period before destruction.
    pub waiting_period: WaitingPeriod,
    /// The stored schedule; required when the key is `destroy-scheduled`, ignored otherwise.
    pub schedule: Option<DestructionSchedule>,
}

impl TransitionContext {
    /// A context with the default waiting period and no stored schedule.
    pub fn new(now: u64, destroyable: bool) -> Self {
        Self {
            now,
            destroyable,
            waiting_period: WaitingPeriod::default(),
            schedule: None,
        }
    }

    /// The earliest destruction time a schedule made now may name.
    pub const fn earliest_destruction(&self) -> u64 {
        self.now.saturating_add(self.waiting_period.as_secs())
    }
}

/// What must happen on the HSM for the new state to hold (DESIGN §4.2 table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TsbEffect {
    /// Nothing: the HSM already matches (the key was blocked and stays blocked).
    None,
    /// Block the key.
    Block,
    /// Block the key and make unblocking impossible (compromise).
    BlockIrreversibly,
    /// Unblock the key.
    Unblock,
    /// Delete the key material.
    Delete,
}

/// An allowed move: the new state, what to do on the HSM, and the schedule to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state after the event.
    pub to: KeyState,
    /// What to apply on the HSM.
    pub tsb: TsbEffect,
    /// The destruction schedule to store: `Some` exactly when `to` is `destroy-scheduled`.
    pub schedule: Option<DestructionSchedule>,
}

/// Why [`transition`] refused. The codes ([`IllegalTransition::code`]) are stable API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IllegalTransition {
    /// SP 800-57 does not allow this event in this state.
    #[error("a key that is {from} cannot {event}")]
    NotAllowed {
        /// The current state.
        from: KeyState,
        /// The refused event.
        event: LifecycleEvent,
    },
    /// The key was created with `destroyable: false`.
    #[error("the key was created with destroyable=false and can never be destroyed")]
    NotDestroyable,
    /// The requested destruction time is inside the tenant's waiting period.
    #[error(
        "destruction may be scheduled no earlier than {earliest} (the tenant's waiting period from now), got {at}; choose a later time"
    )]
    WaitingPeriodTooShort {
        /// The requested time.
        at: u64,
        /// The earliest allowed time.
        earliest: u64,
    },
    /// The scheduler tried to destroy a key before its schedule is due.
    #[error("destruction is due at {due_at}, it is now {now}")]
    DestructionNotDue {
        /// When the schedule becomes due.
        due_at: u64,
        /// The time passed in.
        now: u64,
    },
    /// The key is `destroy-scheduled` but no schedule was passed in: the stored metadata is
    /// inconsistent, and guessing the state to restore would be unsafe.
    #[error("the key is destroy-scheduled but its destruction schedule is missing")]
    ScheduleMissing,
}

impl IllegalTransition {
    /// Stable machine-readable code.
    pub const fn code(&self) -> &'static str {
        match self {
            IllegalTransition::NotAllowed { .. } => "illegal_transition",
            IllegalTransition::NotDestroyable => "not_destroyable",
            IllegalTransition::WaitingPeriodTooShort { .. } => "waiting_period_too_short",
            IllegalTransition::DestructionNotDue { .. } => "destruction_not_due",
            IllegalTransition::ScheduleMissing => "destruction_schedule_missing",
        }
    }
}

/// Decides whether `event` may move a key from `from`, and if so to what, with which HSM effect.
///
/// Allowed (everything else is [`IllegalTransition::NotAllowed`]):
/// pre-active → active | compromised | destroy-scheduled; active → suspended | deactivated |
/// compromised; suspended → active | deactivated | compromised; deactivated → compromised |
/// destroy-scheduled; compromised → destroy-scheduled; destroy-scheduled → destroyed (when due) |
/// the state it was scheduled from (cancel). Destroyed is terminal.
pub fn transition(
    from: KeyState,
    event: &LifecycleEvent,
    ctx: &TransitionContext,
) -> Result<Transition, IllegalTransition> {
    use KeyState as S;
    use LifecycleEvent as E;

    let moved = |to: KeyState, tsb: TsbEffect| {
        Ok(Transition {
            to,
            tsb,
            schedule: None,
        })
    };

    match (from, *event) {
        (S::PreActive, E::Activate) | (S::Suspended, E::Resume) => {
            moved(S::Active, TsbEffect::Unblock)
        }
        (S::Active, E::Suspend) => moved(S::Suspended, TsbEffect::Block),
        (S::Active, E::Deactivate) => moved(S::Deactivated, TsbEffect::Block),
        (S::Suspended, E::Deactivate) => moved(S::Deactivated, TsbEffect::None),
        (S::PreActive | S::Active | S::Suspended | S::Deactivated, E::MarkCompromised) => {
            moved(S::Compromised, TsbEffect::BlockIrreversibly)
        }
        (S::PreActive | S::Deactivated | S::Compromised, E::ScheduleDestruction { at }) => {
            schedule(from, at, ctx)
        }
        (S::DestroyScheduled, E::CancelDestruction) => {
            let pending = ctx.schedule.ok_or(IllegalTransition::ScheduleMissing)?;
            moved(pending.restore_to.state(), TsbEffect::None)
        }
        (S::DestroyScheduled, E::Destroy) => {
            let pending = ctx.schedule.ok_or(IllegalTransition::ScheduleMissing)?;
            if ctx.now < pending.at {
                return Err(IllegalTransition::DestructionNotDue {
                    due_at: pending.at,
                    now: ctx.now,
                });
            }
            moved(S::Destroyed, TsbEffect::Delete)
        }
        (from, event) => Err(IllegalTransition::NotAllowed { from, event }),
    }
}

fn schedule(
    from: KeyState,
    at: u64,
    ctx: &TransitionContext,
) -> Result<Transition, IllegalTransition> {
    if !ctx.destroyable {
        return Err(IllegalTransition::NotDestroyable);
    }
    let earliest = ctx.earliest_destruction();
    if at < earliest {
        return Err(IllegalTransition::WaitingPeriodTooShort { at, earliest });
    }
    let restore_to = ScheduledFrom::from_state(from).ok_or(IllegalTransition::NotAllowed {
        from,
        event: LifecycleEvent::ScheduleDestruction { at },
    })?;
    Ok(Transition {
        to: KeyState::DestroyScheduled,
        tsb: TsbEffect::None,
        schedule: Some(DestructionSchedule { at, restore_to }),
    })
}

#[cfg(test)]
mod tests;
