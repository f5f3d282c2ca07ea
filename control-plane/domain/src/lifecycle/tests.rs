use super::*;

use proptest::prelude::*;

const DAY: u64 = MIN_WAITING_PERIOD_SECS;
const NOW: u64 = 1_000_000;

fn events() -> Vec<LifecycleEvent> {
    vec![
        LifecycleEvent::Activate,
        LifecycleEvent::Suspend,
        LifecycleEvent::Resume,
        LifecycleEvent::Deactivate,
        LifecycleEvent::MarkCompromised,
        LifecycleEvent::ScheduleDestruction { at: NOW + 7 * DAY },
        LifecycleEvent::CancelDestruction,
        LifecycleEvent::Destroy,
    ]
}

/// The expectation, written independently of `transition` as the list of allowed
/// (state, event name) pairs with their outcome; every other pair must be `illegal_transition`.
fn expected(from: KeyState, event: &str) -> Option<(KeyState, TsbEffect)> {
    use KeyState::*;
    const ALLOWED: &[(KeyState, &str, KeyState, TsbEffect)] = &[
        (PreActive, "activate", Active, TsbEffect::Unblock),
        (
            PreActive,
            "mark-compromised",
            Compromised,
            TsbEffect::BlockIrreversibly,
        ),
        (
            PreActive,
            "schedule-destruction",
            DestroyScheduled,
            TsbEffect::None,
        ),
        (Active, "suspend", Suspended, TsbEffect::Block),
        (Active, "deactivate", Deactivated, TsbEffect::Block),
        (
            Active,
            "mark-compromised",
            Compromised,
            TsbEffect::BlockIrreversibly,
        ),
        (Suspended, "resume", Active, TsbEffect::Unblock),
        (Suspended, "deactivate", Deactivated, TsbEffect::None),
        (
            Suspended,
            "mark-compromised",
            Compromised,
            TsbEffect::BlockIrreversibly,
        ),
        (
            Deactivated,
            "mark-compromised",
            Compromised,
            TsbEffect::BlockIrreversibly,
        ),
        (
            Deactivated,
            "schedule-destruction",
            DestroyScheduled,
            TsbEffect::None,
        ),
        (
            Compromised,
            "schedule-destruction",
            DestroyScheduled,
            TsbEffect::None,
        ),
        // The context below stores a schedule made from `deactivated`, due now.
        (
            DestroyScheduled,
            "cancel-destruction",
            Deactivated,
            TsbEffect::None,
        ),
        (DestroyScheduled, "destroy", Destroyed, TsbEffect::Delete),
    ];
    ALLOWED
        .iter()
        .find(|(state, name, _, _)| *state == from && *name == event)
        .map(|(_, _, to, tsb)| (*to, *tsb))
}

fn ctx() -> TransitionContext {
    TransitionContext {
        now: NOW,
        destroyable: true,
        waiting_period: WaitingPeriod::default(),
        schedule: Some(DestructionSchedule {
            at: NOW,
            restore_to: ScheduledFrom::Deactivated,
        }),
    }
}

#[test]
fn every_state_event_pair_matches_the_table() {
    let mut allowed = 0;
    for from in KeyState::ALL {
        for event in events() {
            let got = transition(from, &event, &ctx());
            match expected(from, event.as_str()) {
                Some((to, tsb)) => {
                    allowed += 1;
                    let t = got.unwrap_or_else(|e| panic!("{from} {event}: {e}"));
                    assert_eq!((t.to, t.tsb), (to, tsb), "{from} {event}");
                    assert_eq!(
                        t.schedule.is_some(),
                        to == KeyState::DestroyScheduled,
                        "{from} {event}"
                    );
                }
                None => {
                    let err = got.expect_err("must be refused");
                    assert_eq!(err.code(), "illegal_transition", "{from} {event}");
                    assert_eq!(
                        err,
                        IllegalTransition::NotAllowed { from, event },
                        "{from} {event}"
                    );
                }
            }
        }
    }
    assert_eq!(allowed, 14);
}

#[test]
fn schedule_records_time_and_origin() {
    let at = NOW + 7 * DAY;
    let t = transition(
        KeyState::Compromised,
        &LifecycleEvent::ScheduleDestruction { at },
        &TransitionContext::new(NOW, true),
    )
    .unwrap();
    assert_eq!(
        t.schedule,
        Some(DestructionSchedule {
            at,
            restore_to: ScheduledFrom::Compromised
        })
    );
}

#[test]
fn non_destroyable_keys_cannot_be_scheduled() {
    let err = transition(
        KeyState::Deactivated,
        &LifecycleEvent::ScheduleDestruction { at: NOW + 30 * DAY },
        &TransitionContext::new(NOW, false),
    )
    .unwrap_err();
    assert_eq!(err, IllegalTransition::NotDestroyable);
    assert_eq!(err.code(), "not_destroyable");
}

#[test]
fn schedule_inside_waiting_period_is_refused() {
    let mut c = TransitionContext::new(NOW, true);
    c.waiting_period = WaitingPeriod::from_secs(2 * DAY).unwrap();
    let err = transition(
        KeyState::Deactivated,
        &LifecycleEvent::ScheduleDestruction {
            at: NOW + 2 * DAY - 1,
        },
        &c,
    )
    .unwrap_err();
    assert_eq!(
        err,
        IllegalTransition::WaitingPeriodTooShort {
            at: NOW + 2 * DAY - 1,
            earliest: NOW + 2 * DAY
        }
    );
    assert_eq!(err.code(), "waiting_period_too_short");
    assert!(
        transition(
            KeyState::Deactivated,
            &LifecycleEvent::ScheduleDestruction { at: NOW + 2 * DAY },
            &c
        )
        .is_ok()
    );
}

#[test]
fn destroy_before_due_is_refused() {
    let mut c = ctx();
    c.schedule = Some(DestructionSchedule {
        at: NOW + 1,
        restore_to: ScheduledFrom::PreActive,
    });
    let err = transition(KeyState::DestroyScheduled, &LifecycleEvent::Destroy, &c).unwrap_err();
    assert_eq!(err.code(), "destruction_not_due");
}

#[test]
fn destroy_scheduled_without_schedule_is_refused() {
    let c = TransitionContext::new(NOW, true);
    for event in [LifecycleEvent::Destroy, LifecycleEvent::CancelDestruction] {
        let err = transition(KeyState::DestroyScheduled, &event, &c).unwrap_err();
        assert_eq!(err.code(), "destruction_schedule_missing");
    }
}

#[test]
fn waiting_period_is_validated() {
    assert_eq!(WaitingPeriod::default().as_secs(), 7 * DAY);
    assert_eq!(WaitingPeriod::from_secs(DAY).unwrap().as_secs(), DAY);
    let err = WaitingPeriod::from_secs(DAY - 1).unwrap_err();
    assert_eq!(err.code(), "waiting_period_below_minimum");
    assert!(serde_json::from_str::<WaitingPeriod>("3600").is_err());
    assert_eq!(
        serde_json::from_str::<WaitingPeriod>("86400").unwrap(),
        WaitingPeriod::from_secs(DAY).unwrap()
    );
}

#[test]
fn serde_forms_are_kebab_case() {
    for state in KeyState::ALL {
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            format!("\"{}\"", state.as_str())
        );
    }
    assert_eq!(
        serde_json::to_string(&LifecycleEvent::ScheduleDestruction { at: 5 }).unwrap(),
        r#"{"event":"schedule-destruction","at":5}"#
    );
    for event in events() {
        let json = serde_json::to_value(event).unwrap();
        assert_eq!(json["event"], event.as_str());
    }
}

// --- state-machine property test ---

#[derive(Debug, Clone)]
enum Step {
    Event(LifecycleEvent),
    /// Advance the clock.
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Event(LifecycleEvent::Activate)),
        Just(Step::Event(LifecycleEvent::Suspend)),
        Just(Step::Event(LifecycleEvent::Resume)),
        Just(Step::Event(LifecycleEvent::Deactivate)),
        Just(Step::Event(LifecycleEvent::MarkCompromised)),
        // Offsets from "now" are mapped to absolute times when the step runs.
        (0..20 * DAY)
            .prop_map(|offset| Step::Event(LifecycleEvent::ScheduleDestruction { at: offset })),
        Just(Step::Event(LifecycleEvent::CancelDestruction)),
        Just(Step::Event(LifecycleEvent::Destroy)),
        (0..10 * DAY).prop_map(Step::Wait),
    ]
}

proptest! {
    #[test]
    fn lifecycle_invariants_hold(
        destroyable in any::<bool>(),
        period_days in 1u64..10,
        steps in proptest::collection::vec(step(), 0..60),
    ) {
        let waiting_period = WaitingPeriod::from_secs(period_days * DAY).unwrap();
        let mut now = NOW;
        let mut state = KeyState::PreActive;
        let mut schedule: Option<DestructionSchedule> = None;
        let mut scheduled_on: Option<u64> = None;
        let mut ever_compromised = false;

        for step in steps {
            let event = match step {
                Step::Wait(secs) => { now += secs; continue; }
                Step::Event(LifecycleEvent::ScheduleDestruction { at }) => {
                    LifecycleEvent::ScheduleDestruction { at: now + at }
                }
                Step::Event(event) => event,
            };
            let ctx = TransitionContext { now, destroyable, waiting_period, schedule };
            let result = transition(state, &event, &ctx);

            if state == KeyState::Destroyed {
                prop_assert!(result.is_err(), "destroyed must be absorbing");
                continue;
            }
            let Ok(t) = result else { continue };

            // The schedule is stored exactly while destroy-scheduled.
            prop_assert_eq!(t.schedule.is_some(), t.to == KeyState::DestroyScheduled);
            if ever_compromised {
                prop_assert!(!matches!(t.to, KeyState::Active | KeyState::Suspended | KeyState::PreActive | KeyState::Deactivated));
            }
            match event {
                LifecycleEvent::ScheduleDestruction { at } => {
                    prop_assert!(destroyable);
                    prop_assert!(at >= now + waiting_period.as_secs());
                    prop_assert_eq!(t.schedule.map(|s| s.restore_to.state()), Some(state));
                    scheduled_on = Some(now);
                }
                LifecycleEvent::CancelDestruction => {
                    let pending = schedule.unwrap();
                    prop_assert_eq!(t.to, pending.restore_to.state());
                }
                _ => {}
            }
            if t.to == KeyState::Destroyed {
                prop_assert!(destroyable);
                let pending = schedule.unwrap();
                prop_assert!(now >= pending.at);
                prop_assert!(now >= scheduled_on.unwrap() + waiting_period.as_secs());
                prop_assert_eq!(t.tsb, TsbEffect::Delete);
            }
            if t.to == KeyState::Compromised {
                ever_compromised = true;
            }
            state = t.to;
            schedule = t.schedule;
        }
    }
}

#[test]
fn full_life_ends_in_destruction_only_when_due() {
    let mut c = TransitionContext::new(NOW, true);
    let mut state = KeyState::PreActive;
    for event in [LifecycleEvent::Activate, LifecycleEvent::Deactivate] {
        state = transition(state, &event, &c).unwrap().to;
    }
    let at = c.earliest_destruction();
    let t = transition(state, &LifecycleEvent::ScheduleDestruction { at }, &c).unwrap();
    assert_eq!(t.to, KeyState::DestroyScheduled);
    c.schedule = t.schedule;
    c.now = at - 1;
    assert_eq!(
        transition(t.to, &LifecycleEvent::Destroy, &c)
            .unwrap_err()
            .code(),
        "destruction_not_due"
    );
    c.now = at;
    let done = transition(t.to, &LifecycleEvent::Destroy, &c).unwrap();
    assert_eq!(
        (done.to, done.tsb),
        (KeyState::Destroyed, TsbEffect::Delete)
    );
    assert_eq!(done.schedule, None);
    assert!(done.to.is_terminal());
}
