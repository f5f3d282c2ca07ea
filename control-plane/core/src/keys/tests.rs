//! Unit tests of the pure parts of the key service (record rules, the inventory index, scheduled
//! work, public-key encodings); the service itself runs against the real emulator in
//! tests/e2e/keys.rs.

use std::collections::BTreeSet;
use std::sync::Arc;

use km_domain::{DestructionSchedule, KeyAttributes, KeyState, ScheduledFrom, TenantId};

use super::export::{spki_to_jwk, spki_to_pem};
use super::index::{InventoryIndex, KeyFilter, KeySort, SortKey};
use super::record::*;
use super::summary::{DueKind, KeySummary, pending_work};

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn row(
    label: &str,
    created: u64,
    expires: Option<u64>,
    tags: &[&str],
    algorithm: &str,
) -> KeySummary {
    KeySummary {
        label: label.to_owned(),
        managed: true,
        state: KeyState::Active,
        current_label: Some(label.to_owned()),
        current_version: Some(1),
        versions: 1,
        spec: StoredSpec {
            algorithm: algorithm.to_owned(),
            key_size: None,
            curve_oid: None,
        },
        attributes: KeyAttributes::default(),
        blocked: Some(false),
        has_policy: Some(true),
        owner: None,
        description: None,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        activation_at: None,
        expires_at: expires,
        created_at: Some(created),
        next_rotation_at: None,
        destruction_at: None,
        next_due_at: expires,
        pending_requests: 0,
        checked_at: None,
    }
}

fn index_of(n: u64) -> InventoryIndex {
    let mut index = InventoryIndex::default();
    for i in 0..n {
        let mut tags = Vec::new();
        if i % 3 == 0 {
            tags.push("team:a");
        }
        if i % 10 == 0 {
            tags.push("rare");
        }
        let algorithm = if i % 2 == 0 { "EC" } else { "AES" };
        let expires = (i % 4 != 0).then_some(1_000 + (i * 7919) % 500);
        index.upsert(
            Arc::new(row(
                &format!("key-{i:04}"),
                5_000 - i,
                expires,
                &tags,
                algorithm,
            )),
            Vec::new(),
        );
    }
    index
}

/// Pages through `index` and returns the labels in order.
fn walk(index: &InventoryIndex, filter: &KeyFilter, sort: KeySort, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<SortKey> = None;
    loop {
        let (items, next) = index.page(filter, sort, after.as_ref(), limit);
        assert!(items.len() <= limit);
        seen.extend(items.iter().map(|r| r.label.clone()));
        match next {
            Some(key) => after = Some(key),
            None => return seen,
        }
    }
}

#[test]
fn paging_returns_every_matching_key_exactly_once_in_every_order() {
    let index = index_of(250);
    let filters = [
        KeyFilter::default(),
        KeyFilter {
            prefix: Some("key-01".into()),
            ..KeyFilter::default()
        },
        KeyFilter {
            tag: Some("team:a".into()),
            ..KeyFilter::default()
        },
        KeyFilter {
            algorithm: Some("ec".into()),
            expiring_before: Some(1_200),
            ..KeyFilter::default()
        },
        // Selective: walked through the facet set rather than every row.
        KeyFilter {
            tag: Some("rare".into()),
            ..KeyFilter::default()
        },
        KeyFilter {
            tag: Some("rare".into()),
            algorithm: Some("Ec".into()),
            prefix: Some("key-01".into()),
            ..KeyFilter::default()
        },
        KeyFilter {
            tag: Some("rare".into()),
            expiring_before: Some(1_300),
            ..KeyFilter::default()
        },
    ];
    // A criterion no row has: an empty page at once, in every order.
    for sort in [KeySort::Label, KeySort::Created, KeySort::Expiry] {
        for filter in [
            KeyFilter {
                state: Some(KeyState::Suspended),
                ..KeyFilter::default()
            },
            KeyFilter {
                tag: Some("nobody".into()),
                ..KeyFilter::default()
            },
        ] {
            assert_eq!(index.page(&filter, sort, None, 10), (Vec::new(), None));
        }
    }
    for filter in &filters {
        let mut expected: Vec<String> = (0..250)
            .map(|i| index.get(&format!("key-{i:04}")).unwrap().clone())
            .filter(|r| filter.matches(r))
            .map(|r| r.label.clone())
            .collect();
        expected.sort();
        assert!(!expected.is_empty(), "{filter:?}");
        for sort in [KeySort::Label, KeySort::Created, KeySort::Expiry] {
            for limit in [1, 7, 50, 200] {
                let seen = walk(&index, filter, sort, limit);
                let unique: BTreeSet<&String> = seen.iter().collect();
                assert_eq!(
                    unique.len(),
                    seen.len(),
                    "duplicates: {filter:?} {sort:?} {limit}"
                );
                let mut sorted = seen.clone();
                sorted.sort();
                assert_eq!(sorted, expected, "{filter:?} {sort:?} {limit}");
                if sort == KeySort::Label {
                    assert_eq!(seen, expected);
                }
            }
        }
    }
}

#[test]
fn time_orders_sort_by_time_then_label_and_keys_without_expiry_last() {
    let index = index_of(20);
    let created = walk(&index, &KeyFilter::default(), KeySort::Created, 3);
    assert_eq!(created.first().unwrap(), "key-0019", "oldest first");
    let expiry = walk(&index, &KeyFilter::default(), KeySort::Expiry, 4);
    let times: Vec<u64> = expiry
        .iter()
        .map(|l| index.get(l).unwrap().expires_at.unwrap_or(u64::MAX))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(*times.last().unwrap(), u64::MAX);
}

#[test]
fn upserts_replace_rows_and_fold_version_labels() {
    let mut index = index_of(5);
    assert_eq!(index.len(), 5);
    // An unmanaged row "key-0001_v2" exists until the alias claims it as a version.
    index.upsert(Arc::new(row("key-0001_v2", 1, None, &[], "EC")), Vec::new());
    assert_eq!(index.len(), 6);
    index.upsert(
        Arc::new(row("key-0001", 9, Some(10), &["x"], "EC")),
        vec!["key-0001_v2".to_owned()],
    );
    assert_eq!(index.len(), 5);
    assert_eq!(index.alias_of("key-0001_v2"), Some("key-0001"));
    assert_eq!(index.get("key-0001").unwrap().tags, vec!["x".to_owned()]);
    let created = walk(&index, &KeyFilter::default(), KeySort::Created, 10);
    assert_eq!(created.len(), 5, "no stale secondary entries: {created:?}");
    assert_eq!(index.due(10), vec!["key-0001".to_owned()]);
    assert!(index.due(9).is_empty());
    index.remove("key-0001");
    assert_eq!(index.alias_of("key-0001_v2"), None);
    assert!(index.due(u64::MAX).iter().all(|l| l != "key-0001"));
}

#[test]
fn prefix_walks_start_at_the_prefix_and_stop_after_it() {
    let index = index_of(300);
    let filter = KeyFilter {
        prefix: Some("key-02".into()),
        ..KeyFilter::default()
    };
    let (items, next) = index.page(&filter, KeySort::Label, None, 200);
    assert_eq!(items.len(), 100);
    assert!(next.is_none());
    assert_eq!(items[0].label, "key-0200");
}

#[test]
fn sort_keys_round_trip_through_their_text_form() {
    for key in [
        SortKey {
            value: 0,
            label: "a:b:c".into(),
        },
        SortKey {
            value: u64::MAX,
            label: String::new(),
        },
    ] {
        assert_eq!(SortKey::decode(&key.encode()), Some(key));
    }
    assert_eq!(SortKey::decode("x:label"), None);
    assert_eq!(SortKey::decode("nocolon"), None);
}

#[test]
fn labels_and_record_ids() {
    let acme = tenant();
    assert_eq!(
        record_id(&acme, "payments.signing-1"),
        "acme.payments.signing-1"
    );
    let odd = record_id(&acme, "Schlüssel mit Leerzeichen");
    assert!(odd.starts_with("acme:") && odd.len() == 5 + 40, "{odd}");
    assert_eq!(odd, record_id(&acme, "Schlüssel mit Leerzeichen"));
    assert!(record_id(&acme, &"a".repeat(101)).starts_with("acme:"));
    assert!(is_record_of(&acme, "acme.x") && is_record_of(&acme, "acme:ab"));
    assert!(!is_record_of(&acme, "acme-2.x") && !is_record_of(&acme, "acmex"));

    for good in [
        "a",
        "payments.signing-1",
        "A_b.c-D",
        &"k".repeat(100),
        "v2",
        "x_v",
        "x_v0",
        "x_v01",
    ] {
        validate_new_label(good).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in [
        "",
        &"k".repeat(101),
        "kms.seal",
        "a b",
        "a/b",
        "ä",
        "pay_v2",
        "x_v10",
    ] {
        assert!(validate_new_label(bad).is_err(), "{bad}");
    }
    assert_eq!(split_version_label("pay_v2"), Some(("pay", 2)));
    assert_eq!(split_version_label("my_v_key_v13"), Some(("my_v_key", 13)));
    for no in ["pay", "pay_v1", "pay_v", "_v2", "pay_v02", "pay_vx"] {
        assert_eq!(split_version_label(no), None, "{no}");
    }
    assert_eq!(version_label("pay", 1), "pay");
    assert_eq!(version_label("pay", 3), "pay_v3");
}

#[test]
fn tags_and_texts_are_cleaned_and_bounded() {
    assert_eq!(
        clean_tags(vec!["b".into(), " a ".into(), "b".into()]).unwrap(),
        vec!["a".to_owned(), "b".to_owned()]
    );
    assert!(clean_tags(vec!["has space".into()]).is_err());
    assert!(clean_tags((0..33).map(|i| format!("t{i}")).collect()).is_err());
    assert_eq!(clean_text("owner", Some("  ".into()), 10).unwrap(), None);
    assert!(clean_text("owner", Some("a\nb".into()), 10).is_err());
    assert!(clean_text("owner", Some("x".repeat(11)), 10).is_err());
    validate_times(100, None, Some(101)).unwrap();
    assert!(validate_times(100, None, Some(100)).is_err());
    assert!(validate_times(100, Some(200), Some(150)).is_err());
}

fn record(versions: Vec<KeyVersion>) -> KeyRecord {
    KeyRecord {
        tenant: tenant(),
        label: "pay".into(),
        spec: StoredSpec {
            algorithm: "EC".into(),
            key_size: None,
            curve_oid: Some("1.2.840.10045.3.1.7".into()),
        },
        attributes: KeyAttributes::default(),
        owner: None,
        description: None,
        tags: Vec::new(),
        activation_at: None,
        expires_at: None,
        rotation: None,
        current_version: versions.last().map_or(1, |v| v.number),
        versions,
        created_at: 0,
        created_by: "alice".into(),
        adopted: false,
        history: Vec::new(),
        pending: Vec::new(),
    }
}

fn version(number: u32, state: KeyState) -> KeyVersion {
    KeyVersion {
        number,
        label: version_label("pay", number),
        state,
        created_at: 100 * u64::from(number),
        deactivate_after: None,
        schedule: None,
        destroyed_at: None,
    }
}

#[test]
fn pending_work_lists_what_the_scheduler_does_in_order() {
    let mut scheduled = version(1, KeyState::DestroyScheduled);
    scheduled.schedule = Some(DestructionSchedule {
        at: 500,
        restore_to: ScheduledFrom::Deactivated,
    });
    let mut old = version(2, KeyState::Active);
    old.deactivate_after = Some(400);
    let mut r = record(vec![scheduled, old, version(3, KeyState::Active)]);
    r.rotation = Some(RotationPolicy {
        interval_secs: 3_600,
        grace_secs: 60,
    });
    let kinds: Vec<(DueKind, u32, u64)> = pending_work(&r)
        .iter()
        .map(|w| (w.kind, w.version, w.at))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (DueKind::Destroy, 1, 500),
            (DueKind::Rotate, 3, 3_900),
            (DueKind::RetireOldVersion, 2, 400),
        ]
    );
    // An expiry before the next rotation: expire instead of rotating.
    r.expires_at = Some(1_000);
    let kinds: Vec<DueKind> = pending_work(&r).iter().map(|w| w.kind).collect();
    assert_eq!(
        kinds,
        vec![
            DueKind::Destroy,
            DueKind::Expire,
            DueKind::Expire,
            DueKind::RetireOldVersion
        ]
    );
    assert_eq!(KeySummary::managed(&r, None).next_due_at, Some(400));

    let mut pre = record(vec![version(1, KeyState::PreActive)]);
    assert!(
        pending_work(&pre).is_empty(),
        "no activation time, nothing to do"
    );
    pre.activation_at = Some(50);
    assert_eq!(pending_work(&pre)[0].kind, DueKind::Activate);
}

#[test]
fn history_keeps_the_last_entries() {
    let mut r = record(vec![version(1, KeyState::Active)]);
    for i in 0..(MAX_HISTORY as u64 + 10) {
        r.remember(HistoryEntry {
            at: i,
            actor: "a".into(),
            version: 1,
            event: "suspend".into(),
            from: None,
            to: KeyState::Suspended,
            reason: None,
        });
    }
    assert_eq!(r.history.len(), MAX_HISTORY);
    assert_eq!(r.history[0].at, 10);
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn ed25519_and_p256_public_keys_become_jwks_and_pem() {
    // RFC 8410 §10.1 example key.
    let ed = hex(
        "302a300506032b657003210019bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1",
    );
    let jwk = spki_to_jwk(&ed, "ed").unwrap();
    assert_eq!((jwk.kty, jwk.crv), ("OKP", Some("Ed25519")));
    assert_eq!(
        jwk.x.as_deref(),
        Some("Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE")
    );
    assert_eq!(jwk.kid, "ed");
    let pem = spki_to_pem(&ed).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    assert!(pem.contains("MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="));

    let mut p256 = hex("3059301306072a8648ce3d020106082a8648ce3d03010703420004");
    p256.extend((0u8..64).collect::<Vec<u8>>());
    let jwk = spki_to_jwk(&p256, "ec").unwrap();
    assert_eq!((jwk.kty, jwk.crv), ("EC", Some("P-256")));
    assert_eq!(jwk.x.unwrap().len(), 43);
    assert_eq!(jwk.y.unwrap().len(), 43);

    let jwk = spki_to_jwk(&rsa_spki(), "rsa").unwrap();
    assert_eq!(jwk.kty, "RSA");
    assert_eq!(jwk.n.as_deref(), Some("xQ"), "leading zero dropped");
    assert_eq!(jwk.e.as_deref(), Some("AQAB"));
}

/// A (toy) RSA SubjectPublicKeyInfo with n = 0x00c5 (a padded INTEGER) and e = 65537.
fn rsa_spki() -> Vec<u8> {
    let rsa_public_key = hex("3009020200c50203010001");
    let mut bit_string = vec![0x03, (rsa_public_key.len() + 1) as u8, 0x00];
    bit_string.extend(&rsa_public_key);
    let mut body = hex("300d06092a864886f70d0101010500");
    body.extend(bit_string);
    let mut spki = vec![0x30, body.len() as u8];
    spki.extend(body);
    spki
}

#[test]
fn unsupported_and_malformed_keys_are_explained() {
    // ML-DSA-65 (2.16.840.1.101.3.4.3.18) with a dummy key: PEM yes, JWK no.
    let mut mldsa = hex("3016300b0609608648016503040312030700");
    mldsa.extend([1, 2, 3, 4, 5, 6]);
    let error = spki_to_jwk(&mldsa, "k").unwrap_err();
    assert_eq!(error.code(), "jwk_unsupported");
    assert!(spki_to_pem(&mldsa).is_ok());
    // secp224r1 has no JWK curve name.
    let mut p224 = hex("304e301006072a8648ce3d020106052b81040021033a0004");
    p224.extend([7u8; 56]);
    assert_eq!(
        spki_to_jwk(&p224, "k").unwrap_err().code(),
        "jwk_unsupported"
    );
    assert_eq!(
        spki_to_jwk(b"garbage", "k").unwrap_err().code(),
        "malformed_public_key"
    );
    assert_eq!(spki_to_pem(b"").unwrap_err().code(), "malformed_public_key");
}
