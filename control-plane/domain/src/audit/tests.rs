//! Tests for the audit chain. The golden hashes were computed by an independent implementation of the
//! documented encoding (a few lines of Python with hashlib), not by this code.

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::*;
use crate::ids::PrincipalId;
use crate::rbac::{Action, Principal, Role, RoleBinding, authorize};

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// The two events the golden vectors describe.
fn golden_chain() -> Vec<AuditEvent> {
    let mut chain = AuditChain::new();
    let first = chain.append(
        EventDraft::new("alice", "create_key", Outcome::Success, "req-0001")
            .with_tenant(acme())
            .with_target("payments-signing")
            .with_detail("curve", "secp256r1")
            .with_detail("algorithm", "EC"),
        1_767_225_600,
    );
    let second = chain.append(
        EventDraft::new(
            "system:scheduler",
            "rotate_key",
            Outcome::Failed,
            "req-0002",
        ),
        1_767_225_601,
    );
    vec![first, second]
}

/// A longer chain with every optional field both present and absent.
fn sample_chain(len: u64) -> Vec<AuditEvent> {
    let mut chain = AuditChain::new();
    (0..len)
        .map(|index| {
            let outcome =
                [Outcome::Success, Outcome::Denied, Outcome::Failed][(index % 3) as usize];
            let mut draft = EventDraft::new(
                format!("user-{}", index % 4),
                "use_key",
                outcome,
                format!("req-{index}"),
            );
            if index % 2 == 0 {
                draft = draft.with_tenant(acme());
            }
            if index % 3 != 1 {
                draft = draft.with_target(format!("key-{index}"));
            }
            if index % 4 == 0 {
                draft = draft
                    .with_detail("algorithm", "RSA")
                    .with_detail("size", "3072");
            }
            chain.append(draft, 1_767_225_600 + index)
        })
        .collect()
}

#[test]
fn the_encoding_and_hash_match_the_independent_implementation() {
    let events = golden_chain();
    assert_eq!(events[0].seq, 1);
    assert_eq!(events[0].prev_hash, GENESIS_PREV_HASH);
    assert_eq!(
        events[0].hash_hex(),
        "a33190e17f4ea36fc9c49aba4dffd9c41c95c8390b7c589b3aa8a173d5c9d109"
    );
    assert_eq!(events[1].seq, 2);
    assert_eq!(events[1].prev_hash, events[0].hash_hex());
    assert_eq!(
        events[1].hash_hex(),
        "a25db2d885c997f3e47a6ab0d36adf36b82c8dd03870b5a5bfae85440a73cb0f"
    );
    assert_eq!(hex::encode(events[1].hash()), events[1].hash_hex());
    assert_eq!(GENESIS_PREV_HASH.len(), 64);
    assert!(GENESIS_PREV_HASH.bytes().all(|b| b == b'0'));
}

#[test]
fn the_encoding_is_unambiguous() {
    let base = golden_chain().remove(0);
    let hash = base.hash();
    let variants: Vec<AuditEvent> = vec![
        // moving a character from one field to the next
        AuditEvent {
            actor: "alic".into(),
            action: "ecreate_key".into(),
            ..base.clone()
        },
        // absent vs empty
        AuditEvent {
            target: Some(String::new()),
            ..base.clone()
        },
        AuditEvent {
            target: None,
            ..base.clone()
        },
        AuditEvent {
            tenant: None,
            ..base.clone()
        },
        // a detail key/value boundary moved
        AuditEvent {
            details: [
                ("curv".to_owned(), "esecp256r1".to_owned()),
                ("algorithm".to_owned(), "EC".to_owned()),
            ]
            .into_iter()
            .collect(),
            ..base.clone()
        },
        AuditEvent {
            details: BTreeMap::new(),
            ..base.clone()
        },
    ];
    for variant in variants {
        assert_ne!(variant.hash(), hash, "{variant:?}");
    }
    // the same content always encodes the same way
    assert_eq!(base.clone().canonical_bytes(), base.canonical_bytes());
}

#[test]
fn json_round_trip_keeps_the_hash_and_the_field_names() {
    for event in sample_chain(6) {
        let json = serde_json::to_string(&event).unwrap();
        let back: AuditEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.hash(), event.hash());
    }
    let json = serde_json::to_value(&golden_chain()[0]).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "seq",
        "time",
        "actor",
        "tenant",
        "action",
        "target",
        "outcome",
        "request_id",
        "prev_hash",
        "details",
    ] {
        assert!(keys.contains(&key), "{key} missing from {json}");
    }
    assert_eq!(json["outcome"], "success");
    assert_eq!(json["tenant"], "acme");
}

#[test]
fn an_intact_chain_verifies_and_summarises() {
    let events = sample_chain(10);
    let summary = verify_chain(&events).unwrap();
    assert_eq!(summary.count, 10);
    assert_eq!(summary.first_seq, Some(1));
    assert_eq!(summary.last_seq, Some(10));
    assert_eq!(summary.head, ChainAnchor::after(&events[9]));
    assert_eq!(summary.head.next_seq, 11);

    let empty = verify_chain(&[]).unwrap();
    assert_eq!(
        empty,
        ChainSummary {
            count: 0,
            first_seq: None,
            last_seq: None,
            head: ChainAnchor::genesis()
        }
    );
}

/// One named way of altering an event.
type Alteration = (&'static str, fn(&mut AuditEvent));

/// Every way of altering one field of an event.
fn alterations() -> Vec<Alteration> {
    vec![
        ("seq", |e| e.seq += 100),
        ("time", |e| e.time += 1),
        ("actor", |e| e.actor.push('x')),
        ("tenant", |e| {
            e.tenant = if e.tenant.is_some() {
                None
            } else {
                Some(TenantId::parse("evil").unwrap())
            }
        }),
        ("action", |e| e.action = "destroy_key".into()),
        ("target", |e| {
            e.target = if e.target.is_some() {
                None
            } else {
                Some("other".into())
            }
        }),
        ("outcome", |e| {
            e.outcome = if e.outcome == Outcome::Success {
                Outcome::Failed
            } else {
                Outcome::Success
            }
        }),
        ("request_id", |e| e.request_id.push('0')),
        ("prev_hash", |e| {
            e.prev_hash.replace_range(
                0..1,
                if e.prev_hash.starts_with('f') {
                    "e"
                } else {
                    "f"
                },
            )
        }),
        ("details: add", |e| {
            e.details.insert("note".into(), "added".into());
        }),
        ("details: change", |e| {
            let value = e.details.entry("algorithm".into()).or_default();
            value.push('!');
        }),
    ]
}

#[test]
fn altering_any_field_of_any_event_is_detected_at_that_event_or_the_next() {
    let events = sample_chain(8);
    for k in 0..events.len() {
        for (field, alter) in alterations() {
            let mut tampered = events.clone();
            alter(&mut tampered[k]);
            assert_ne!(
                tampered[k],
                events[k],
                "{field} did not change event {}",
                k + 1
            );
            let seq = events[k].seq;
            let context = format!("{field} of event {seq}");
            if k + 1 == events.len() && !matches!(field, "seq" | "prev_hash") {
                // The last event has no successor to betray it; the checkpoint does.
                let checkpoint =
                    Checkpoint::unsigned(&verify_chain(&events).unwrap().head, 0, "audit");
                assert!(verify_chain(&tampered).is_ok(), "{context}");
                assert_eq!(
                    verify_checkpoint(&tampered, &checkpoint),
                    Err(CheckpointMismatch::HeadMismatch { seq }),
                    "{context}"
                );
                continue;
            }
            let broken = verify_chain(&tampered).unwrap_err();
            assert!(
                broken.detected_at() == seq || broken.detected_at() == seq + 1,
                "{context}: detected at {}",
                broken.detected_at()
            );
            let expected = match field {
                "seq" => ChainBreak::SeqMismatch {
                    expected: seq,
                    found: seq + 100,
                },
                "prev_hash" if k == 0 => ChainBreak::BadStart { seq },
                "prev_hash" => ChainBreak::LinkBroken { seq },
                _ => ChainBreak::LinkBroken { seq: seq + 1 },
            };
            assert_eq!(broken, expected, "{context}");
        }
    }
}

#[test]
fn the_messages_name_the_event() {
    let mut events = sample_chain(5);
    events[2].actor = "mallory".into();
    let broken = verify_chain(&events).unwrap_err();
    assert_eq!(broken.first_bad_seq(), 3);
    assert_eq!(
        broken.to_string(),
        "event 3 was altered or removed: event 4 does not chain to it"
    );

    let mut events = sample_chain(5);
    events.remove(1);
    let broken = verify_chain(&events).unwrap_err();
    assert_eq!(
        broken,
        ChainBreak::SeqMismatch {
            expected: 2,
            found: 3
        }
    );
    assert_eq!(broken.first_bad_seq(), 2);
    assert_eq!(
        broken.to_string(),
        "expected event 2 but found event 3: events were removed, reordered or duplicated"
    );
}

#[test]
fn removing_reordering_or_duplicating_events_is_detected() {
    let events = sample_chain(6);
    for k in 0..events.len() - 1 {
        let seq = events[k].seq;
        // removal
        let mut removed = events.clone();
        removed.remove(k);
        assert_eq!(
            verify_chain(&removed),
            Err(ChainBreak::SeqMismatch {
                expected: seq,
                found: seq + 1
            })
        );
        // removal, then renumbering everything after it to hide the gap
        let mut renumbered = removed.clone();
        for event in &mut renumbered[k..] {
            event.seq -= 1;
        }
        let expected = if k == 0 {
            ChainBreak::BadStart { seq }
        } else {
            ChainBreak::LinkBroken { seq }
        };
        assert_eq!(verify_chain(&renumbered), Err(expected));
        // swapping neighbours
        let mut swapped = events.clone();
        swapped.swap(k, k + 1);
        assert_eq!(
            verify_chain(&swapped),
            Err(ChainBreak::SeqMismatch {
                expected: seq,
                found: seq + 1
            })
        );
        // duplicating
        let mut duplicated = events.clone();
        duplicated.insert(k + 1, events[k].clone());
        assert_eq!(
            verify_chain(&duplicated),
            Err(ChainBreak::SeqMismatch {
                expected: seq + 1,
                found: seq
            })
        );
    }
}

#[test]
fn checkpoints_catch_truncation_and_a_rehashed_rewrite() {
    let events = sample_chain(6);
    let head = verify_chain(&events).unwrap().head;
    let checkpoint = Checkpoint::unsigned(&head, 1_767_300_000, "kms.audit.checkpoint");
    assert_eq!(checkpoint.up_to_seq, 6);
    assert_eq!(checkpoint.head_hash, events[5].hash_hex());
    assert_eq!(verify_checkpoint(&events, &checkpoint), Ok(()));

    // dropping the tail leaves a valid chain, but not the one that was signed
    let truncated = &events[..4];
    assert!(verify_chain(truncated).is_ok());
    assert_eq!(
        verify_checkpoint(truncated, &checkpoint),
        Err(CheckpointMismatch::Truncated {
            up_to_seq: 6,
            last_seq: 4
        })
    );
    assert_eq!(
        verify_checkpoint(&[], &checkpoint),
        Err(CheckpointMismatch::Truncated {
            up_to_seq: 6,
            last_seq: 0
        })
    );

    // rewriting event 2 and re-hashing everything after it: the chain verifies, the checkpoint does not
    let mut chain = AuditChain::resume(ChainAnchor::after(&events[0]));
    let mut forged = vec![events[0].clone()];
    for (index, event) in events[1..].iter().enumerate() {
        let mut draft = EventDraft::new(
            event.actor.clone(),
            event.action.clone(),
            event.outcome,
            event.request_id.clone(),
        );
        draft.tenant = event.tenant.clone();
        draft.target = event.target.clone();
        draft.details = event.details.clone();
        if index == 0 {
            draft.outcome = Outcome::Success;
            draft.actor = "someone-else".into();
        }
        forged.push(chain.append(draft, event.time));
    }
    assert!(verify_chain(&forged).is_ok());
    assert_eq!(
        verify_checkpoint(&forged, &checkpoint),
        Err(CheckpointMismatch::HeadMismatch { seq: 6 })
    );

    // an older checkpoint still matches the longer log
    let older = Checkpoint::unsigned(&ChainAnchor::after(&events[2]), 1, "kms.audit.checkpoint");
    assert_eq!(verify_checkpoint(&events, &older), Ok(()));
    // and the empty log matches the genesis checkpoint
    let genesis = Checkpoint::unsigned(&ChainAnchor::genesis(), 1, "kms.audit.checkpoint");
    assert_eq!(genesis.up_to_seq, 0);
    assert_eq!(verify_checkpoint(&[], &genesis), Ok(()));
    assert_eq!(verify_checkpoint(&events, &genesis), Ok(()));
}

#[test]
fn segments_continue_from_a_checkpoint() {
    let events = sample_chain(9);
    let checkpoint = Checkpoint::unsigned(&ChainAnchor::after(&events[3]), 1, "audit");
    let segment = &events[4..];
    let summary = verify_chain_from(ChainAnchor::after_checkpoint(&checkpoint), segment).unwrap();
    assert_eq!(
        (summary.first_seq, summary.last_seq, summary.count),
        (Some(5), Some(9), 5)
    );
    assert_eq!(verify_checkpoint(segment, &checkpoint), Ok(()));
    // the segment alone does not verify from the genesis
    assert_eq!(
        verify_chain(segment),
        Err(ChainBreak::SeqMismatch {
            expected: 1,
            found: 5
        })
    );
    // a segment whose first event was altered does not continue the checkpoint
    let mut altered = segment.to_vec();
    altered[0].prev_hash = GENESIS_PREV_HASH.to_owned();
    assert_eq!(
        verify_chain_from(ChainAnchor::after_checkpoint(&checkpoint), &altered),
        Err(ChainBreak::BadStart { seq: 5 })
    );
    // a checkpoint before the segment cannot be checked against it
    let early = Checkpoint::unsigned(&ChainAnchor::after(&events[1]), 1, "audit");
    assert_eq!(
        verify_checkpoint(segment, &early),
        Err(CheckpointMismatch::BeforeSegment {
            up_to_seq: 2,
            first_seq: 5
        })
    );
}

#[test]
fn checkpoint_signing_bytes_match_the_independent_implementation_and_exclude_the_signature() {
    let events = golden_chain();
    let mut checkpoint = Checkpoint::unsigned(
        &ChainAnchor::after(&events[1]),
        1_767_229_200,
        "kms.audit.checkpoint",
    );
    assert_eq!(checkpoint.up_to_seq, 2);
    let bytes = checkpoint.signing_bytes();
    assert_eq!(bytes.len(), 147);
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        "2a433f96fa1372fa2945c32bc42a04443069d7ea900c8accba778fdfd4286dd9"
    );

    checkpoint.signature = vec![0xde, 0xad, 0xbe, 0xef];
    assert_eq!(
        checkpoint.signing_bytes(),
        bytes,
        "the signature is not part of what is signed"
    );
    let json = serde_json::to_value(&checkpoint).unwrap();
    assert_eq!(json["signature"], "deadbeef");
    assert_eq!(
        serde_json::from_value::<Checkpoint>(json).unwrap(),
        checkpoint
    );

    let changes: Vec<fn(&mut Checkpoint)> = vec![
        |c| c.up_to_seq += 1,
        |c| c.head_hash.replace_range(0..1, "0"),
        |c| c.time += 1,
        |c| c.key_label.push('2'),
    ];
    for change in changes {
        let mut other = checkpoint.clone();
        change(&mut other);
        assert_ne!(other.signing_bytes(), bytes, "{other:?}");
    }
}

#[test]
fn prepare_does_not_advance_and_accept_follows_only_the_next_link() {
    let mut chain = AuditChain::new();
    let draft = EventDraft::new("alice", "create_key", Outcome::Success, "req-1");
    let prepared = chain.prepare(draft.clone(), 10);
    assert_eq!(
        chain.head(),
        &ChainAnchor::genesis(),
        "prepare must not advance"
    );
    // storing failed: nothing to undo; storing succeeded: accept it
    let mut stale = prepared.clone();
    stale.seq = 2;
    assert_eq!(
        chain.accept(&stale),
        Err(ChainBreak::SeqMismatch {
            expected: 1,
            found: 2
        })
    );
    assert_eq!(
        chain.head(),
        &ChainAnchor::genesis(),
        "a refused event must not advance"
    );
    chain.accept(&prepared).unwrap();
    assert_eq!(chain.head(), &ChainAnchor::after(&prepared));
    // append gives the same event prepare would
    let mut other = AuditChain::new();
    assert_eq!(other.append(draft, 10), prepared);
    assert_eq!(other, chain);
}

#[test]
fn drafts_from_grants_and_denials_name_what_was_decided() {
    let alice = Principal::user(
        PrincipalId::parse("alice").unwrap(),
        vec![RoleBinding::tenant(acme(), Role::Readonly)],
    );
    let grant = authorize(&alice, Some(&acme()), Action::ReadKey).unwrap();
    let draft = EventDraft::for_grant(&grant, Outcome::Success, "req-7").with_target("payments");
    assert_eq!(
        (
            draft.actor.as_str(),
            draft.tenant.as_ref(),
            draft.action.as_str(),
            draft.target.as_deref()
        ),
        ("alice", Some(&acme()), "read_key", Some("payments"))
    );

    let denied = authorize(&alice, Some(&acme()), Action::ScheduleKeyDestruction).unwrap_err();
    let draft = EventDraft::for_denial(&denied, "req-8");
    assert_eq!(draft.outcome, Outcome::Denied);
    assert_eq!(draft.action, "schedule_key_destruction");
    assert_eq!(draft.tenant, Some(acme()));
    assert_eq!(
        draft.details.get("reason").map(String::as_str),
        Some("role_too_low")
    );
}

proptest! {
    #[test]
    fn any_single_alteration_is_caught_by_the_chain_or_the_checkpoint(
        len in 1u64..20,
        position in any::<prop::sample::Index>(),
        which in any::<prop::sample::Index>(),
    ) {
        let events = sample_chain(len);
        let checkpoint = Checkpoint::unsigned(&verify_chain(&events).unwrap().head, 0, "audit");
        let k = position.index(events.len());
        let all = alterations();
        let (field, alter) = all[which.index(all.len())];
        let mut tampered = events.clone();
        alter(&mut tampered[k]);
        let seq = events[k].seq;
        match verify_chain(&tampered) {
            Err(broken) => prop_assert!(
                broken.detected_at() == seq || broken.detected_at() == seq + 1,
                "{} of event {}: {:?}", field, seq, broken
            ),
            Ok(_) => {
                prop_assert_eq!(k + 1, events.len(), "only the last event can slip past the chain");
                prop_assert!(verify_checkpoint(&tampered, &checkpoint).is_err());
            }
        }
    }

    #[test]
    fn removing_any_event_is_caught(len in 2u64..20, position in any::<prop::sample::Index>()) {
        let events = sample_chain(len);
        let checkpoint = Checkpoint::unsigned(&verify_chain(&events).unwrap().head, 0, "audit");
        let k = position.index(events.len());
        let mut removed = events.clone();
        removed.remove(k);
        let caught = verify_chain(&removed).is_err() || verify_checkpoint(&removed, &checkpoint).is_err();
        prop_assert!(caught);
    }
}
