//! Keys over the REST API against the real TSB emulator: creation of every algorithm family the
//! emulator implements (each then used through km-tsb with the tenant's own API key), the
//! inventory (filters, cursor pagination, unmanaged keys, keymanager's own keys hidden), the
//! lifecycle applied to the HSM, scheduled destruction and rotation driven by the world's
//! `ManualClock` and `KeyService::run_due`, public-key export checked with aws-lc-rs, and a walk of
//! random lifecycle sequences checking that HSM and record always agree.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ED25519, ML_DSA_65, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
    UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use km_core::keys::{DueKind, DueReport};
use km_core::{Clock, Hsm, HsmKeyInfo};
use km_domain::{
    Algorithm, KeyState, LifecycleEvent, TenantId, TransitionContext, WaitingPeriod, transition,
};
use km_hsm_tsb::TsbHsm;
use km_tsb::{
    ApiKeys, CreateKeyRequest, DecryptRequest, EncryptRequest, HmacRequest, KeyAttributes, Policy,
    SecretString, SignRequest, TsbClient, VerifyHmacRequest, VerifyRequest,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{Answer, ApiWorld, Auth, PASSWORD, ROOT_PASSWORD, START, tenant_api_key};

const DAY: u64 = 24 * 60 * 60;
const P256: &str = "1.2.840.10045.3.1.7";

async fn world() -> (ApiWorld, Auth) {
    let world = ApiWorld::start().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    (world, root)
}

fn acme() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// A km-tsb client on the tenant's own emulator partition with the tenant's own API key.
fn tsb(world: &ApiWorld, tenant: &str) -> TsbClient {
    TsbClient::builder(world.emulator.partition_url(tenant))
        .api_keys(ApiKeys::all(vec![SecretString::from(
            tenant_api_key(tenant).to_owned(),
        )]))
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// What the HSM says about `label` (through the Hsm port over the same client).
async fn hsm_info(world: &ApiWorld, label: &str) -> Option<HsmKeyInfo> {
    TsbHsm::new(tsb(world, "acme"))
        .key_info(label)
        .await
        .unwrap()
}

fn keys_path(label: &str) -> String {
    format!("/api/v1/tenants/acme/keys/{label}")
}

async fn create(world: &ApiWorld, auth: &Auth, body: Value) -> Answer {
    world
        .call(Method::POST, "/api/v1/tenants/acme/keys", auth, Some(body))
        .await
}

async fn create_ok(world: &ApiWorld, auth: &Auth, body: Value) -> Value {
    let answer = create(world, auth, body).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    answer.body
}

fn ec_key(label: &str) -> Value {
    json!({"label": label, "algorithm": "EC", "curve": "P-256",
           "attributes": {"sign": true, "verify": true}})
}

async fn event(world: &ApiWorld, auth: &Auth, label: &str, body: Value) -> Answer {
    world
        .call(
            Method::POST,
            &format!("{}/lifecycle", keys_path(label)),
            auth,
            Some(body),
        )
        .await
}

async fn event_ok(world: &ApiWorld, auth: &Auth, label: &str, name: &str) -> Value {
    let answer = event(world, auth, label, json!({"event": name, "reason": "test"})).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{name} {label}: {}",
        answer.text
    );
    answer.body
}

async fn get_key(world: &ApiWorld, auth: &Auth, label: &str) -> Value {
    let answer = world.call(Method::GET, &keys_path(label), auth, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.body
}

/// Moves the clock on; sessions expire with it, so root signs in again.
async fn advance(world: &ApiWorld, secs: u64) -> Auth {
    world.clock.advance(secs);
    world.login("root", ROOT_PASSWORD).await
}

async fn run_due(world: &ApiWorld) -> DueReport {
    world
        .app
        .keys()
        .run_due(&acme(), world.clock.now())
        .await
        .unwrap()
}

/// Every page of the inventory for `query` (e.g. `algorithm=EC&limit=3`), following cursors.
async fn list_all(world: &ApiWorld, auth: &Auth, query: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/tenants/acme/keys?{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let answer = world.call(Method::GET, &path, auth, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text);
        items.extend(answer.body["items"].as_array().unwrap().iter().cloned());
        match answer.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

fn labels(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["label"].as_str().unwrap().to_owned())
        .collect()
}

// ----- (a) every algorithm family -----

/// How a created key is used through km-tsb.
#[derive(Debug, Clone, Copy)]
enum Use {
    /// Sign and verify with this signature algorithm.
    Sign(&'static str),
    /// Encrypt and decrypt with this cipher.
    Cipher(&'static str),
    /// MAC and verify.
    Hmac,
    /// ML-KEM: the exported public key is a working encapsulation key of this size.
    Kem(usize),
    /// Created only (slow SLH-DSA "small" parameter sets are used through their fast siblings).
    CreateOnly,
}

struct Family {
    label: &'static str,
    algorithm: &'static str,
    key_size: Option<u32>,
    curve: Option<&'static str>,
    attributes: Value,
    usage: Use,
}

fn sign_attributes() -> Value {
    json!({"sign": true, "verify": true})
}

fn cipher_attributes() -> Value {
    json!({"decrypt": true, "encrypt": true})
}

fn family(
    label: &'static str,
    algorithm: &'static str,
    key_size: Option<u32>,
    curve: Option<&'static str>,
    usage: Use,
) -> Family {
    let attributes = match usage {
        Use::Sign(_) | Use::Hmac | Use::CreateOnly => sign_attributes(),
        Use::Cipher(_) => cipher_attributes(),
        Use::Kem(_) => json!({"unwrap": true}),
    };
    Family {
        label,
        algorithm,
        key_size,
        curve,
        attributes,
        usage,
    }
}

fn families() -> Vec<Family> {
    let mut all = vec![
        family(
            "rsa-2048",
            "RSA",
            Some(2048),
            None,
            Use::Sign("SHA256_WITH_RSA"),
        ),
        family(
            "dsa-2048",
            "DSA",
            Some(2048),
            None,
            Use::Sign("SHA256_WITH_DSA"),
        ),
        family(
            "ec-p256",
            "EC",
            None,
            Some("P-256"),
            Use::Sign("SHA256_WITH_ECDSA"),
        ),
        family(
            "ec-p384",
            "EC",
            None,
            Some("P-384"),
            Use::Sign("SHA384_WITH_ECDSA"),
        ),
        family(
            "ec-p521",
            "EC",
            None,
            Some("P-521"),
            Use::Sign("SHA512_WITH_ECDSA"),
        ),
        family(
            "ec-p224",
            "EC",
            None,
            Some("secp224r1"),
            Use::Sign("SHA224_WITH_ECDSA"),
        ),
        family(
            "ec-k256",
            "EC",
            None,
            Some("secp256k1"),
            Use::Sign("SHA256_WITH_ECDSA"),
        ),
        family(
            "ec-bp256",
            "EC",
            None,
            Some("brainpoolP256r1"),
            Use::Sign("SHA256_WITH_ECDSA"),
        ),
        family(
            "ec-bp384",
            "EC",
            None,
            Some("brainpoolP384r1"),
            Use::Sign("SHA384_WITH_ECDSA"),
        ),
        family("ed25519", "ED", None, Some("Ed25519"), Use::Sign("EDDSA")),
        family("bls", "BLS", None, None, Use::Sign("BLS")),
        family("aes-256", "AES", Some(256), None, Use::Cipher("AES_GCM")),
        family("aes-128", "AES", Some(128), None, Use::Cipher("AES_CTR")),
        family(
            "camellia-192",
            "Camellia",
            Some(192),
            None,
            Use::Cipher("CAMELLIA"),
        ),
        family(
            "chacha20",
            "ChaCha20",
            Some(256),
            None,
            Use::Cipher("CHACHA20_AEAD"),
        ),
        family("tdea", "TDEA", None, None, Use::Cipher("TDEA_CBC")),
        family("hmac", "HMACSHA256", None, None, Use::Hmac),
        family("ml-dsa-44", "ML-DSA-44", None, None, Use::Sign("ML_DSA")),
        family("ml-dsa-65", "ML-DSA-65", None, None, Use::Sign("ML_DSA")),
        family("ml-dsa-87", "ML-DSA-87", None, None, Use::Sign("ML_DSA")),
        family("ml-kem-512", "ML-KEM-512", None, None, Use::Kem(800)),
        family("ml-kem-768", "ML-KEM-768", None, None, Use::Kem(1184)),
        family("ml-kem-1024", "ML-KEM-1024", None, None, Use::Kem(1568)),
    ];
    for hash in ["SHA2", "SHAKE"] {
        for level in ["128", "192", "256"] {
            for set in ["s", "f"] {
                let name: &'static str =
                    Box::leak(format!("SLH-DSA-{hash}-{level}{set}").into_boxed_str());
                let label: &'static str = Box::leak(name.to_lowercase().into_boxed_str());
                let usage = if level == "128" && set == "f" {
                    Use::Sign("SLH_DSA")
                } else {
                    Use::CreateOnly
                };
                all.push(family(label, name, None, None, usage));
            }
        }
    }
    all
}

/// Algorithms of `Algorithm::all()` the emulator refuses (no well-kept library implements
/// them): creating them is a 409 with the TSB's reason, never a 5xx.
const REFUSED_BY_EMULATOR: [&str; 4] = ["ISS", "LMS", "XMSS-SHA256_10_256", "XMSS-SHAKE256_10_256"];

async fn use_key(world: &ApiWorld, root: &Auth, client: &TsbClient, f: &Family) {
    let payload = format!("payload for {}", f.label).into_bytes();
    match f.usage {
        Use::Sign(algorithm) => {
            let signature = client
                .sign(&SignRequest::new(f.label, algorithm, payload.clone()))
                .await
                .unwrap_or_else(|e| panic!("{} sign: {e:?}", f.label));
            let verify = |payload: &[u8]| VerifyRequest {
                sign_key_name: f.label.to_owned(),
                master_key_password: None,
                signature_algorithm: algorithm.to_owned(),
                payload: payload.to_vec(),
                signature: signature.clone(),
            };
            assert!(
                client.verify(&verify(&payload)).await.unwrap(),
                "{}",
                f.label
            );
            assert!(
                !client.verify(&verify(b"tampered")).await.unwrap(),
                "{}",
                f.label
            );
        }
        Use::Cipher(cipher) => {
            let mut request = EncryptRequest::new(f.label, cipher, payload.clone());
            let aead = cipher.ends_with("GCM") || cipher.ends_with("AEAD");
            if aead {
                request.additional_authentication_data = Some(b"aad".to_vec());
            }
            let encrypted = client
                .encrypt(&request)
                .await
                .unwrap_or_else(|e| panic!("{} encrypt: {e:?}", f.label));
            assert_ne!(encrypted.encrypted_payload, payload);
            let mut decrypt =
                DecryptRequest::new(f.label, cipher, encrypted.encrypted_payload.clone());
            decrypt.initialization_vector = encrypted.initialization_vector.clone();
            if aead {
                decrypt.additional_authentication_data = Some(b"aad".to_vec());
            }
            if encrypted.message_authentication_code.is_some() {
                decrypt.tag_length = Some(128);
            }
            let plain = client
                .decrypt(&decrypt)
                .await
                .unwrap_or_else(|e| panic!("{} decrypt: {e:?}", f.label));
            assert_eq!(plain.as_slice(), payload.as_slice(), "{}", f.label);
        }
        Use::Hmac => {
            let mac = client
                .hmac(&HmacRequest {
                    key_name: f.label.into(),
                    payload: payload.clone(),
                })
                .await
                .unwrap();
            assert_eq!(mac.len(), 32);
            let ok = client
                .verify_hmac(&VerifyHmacRequest {
                    key_name: f.label.into(),
                    payload,
                    signature: mac,
                })
                .await
                .unwrap();
            assert!(ok);
        }
        Use::Kem(size) => {
            use aws_lc_rs::kem::{EncapsulationKey, ML_KEM_512, ML_KEM_768, ML_KEM_1024};
            let spki = spki_of(&export(world, root, f.label, "pem").await);
            let algorithm = match size {
                800 => &ML_KEM_512,
                1184 => &ML_KEM_768,
                _ => &ML_KEM_1024,
            };
            let key = EncapsulationKey::new(algorithm, &spki[spki.len() - size..])
                .unwrap_or_else(|e| panic!("{}: {e:?}", f.label));
            let (ciphertext, secret) = key.encapsulate().unwrap();
            assert!(!ciphertext.as_ref().is_empty() && secret.as_ref().len() == 32);
        }
        Use::CreateOnly => {}
    }
}

#[tokio::test]
async fn every_algorithm_family_is_created_used_and_listed() {
    let (world, root) = world().await;
    let client = tsb(&world, "acme");
    let families = families();
    // Every algorithm keymanager knows is either created here or refused by the emulator.
    for algorithm in Algorithm::all() {
        let name = algorithm.as_tsb_str();
        assert!(
            families.iter().any(|f| f.algorithm == name) || REFUSED_BY_EMULATOR.contains(&name),
            "{name} is not covered"
        );
    }
    for f in &families {
        let mut body = json!({"label": f.label, "algorithm": f.algorithm,
            "attributes": f.attributes, "tags": ["suite:a", format!("family:{}", f.algorithm)]});
        if let Some(size) = f.key_size {
            body["key_size"] = json!(size);
        }
        if let Some(curve) = f.curve {
            body["curve"] = json!(curve);
        }
        let created = create_ok(&world, &root, body).await;
        assert_eq!(created["state"], "active", "{}", f.label);
        assert_eq!(created["managed"], true);
        assert_eq!(created["current_label"], f.label);
        assert_eq!(created["algorithm"], f.algorithm);
        assert_eq!(created["blocked"], false);
        assert_eq!(created["has_policy"], true);
        use_key(&world, &root, &client, f).await;
    }
    for name in REFUSED_BY_EMULATOR {
        let answer = create(
            &world,
            &root,
            json!({"label": format!("refused-{}", name.to_lowercase()), "algorithm": name,
                   "key_size": if name == "ISS" { json!(1) } else { Value::Null },
                   "attributes": {"sign": true}}),
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::CONFLICT,
            "{name}: {}",
            answer.text
        );
        assert_eq!(answer.body["reason"], "hsm_refused", "{name}");
        assert!(
            answer.body["detail"].as_str().unwrap().contains("613"),
            "{}",
            answer.text
        );
    }

    // The inventory: every key exactly once, in label order, with filters.
    let mut expected: Vec<String> = families.iter().map(|f| f.label.to_owned()).collect();
    expected.sort();
    let all = list_all(&world, &root, "limit=5").await;
    assert_eq!(labels(&all), expected, "paged inventory");
    let ec = list_all(&world, &root, "algorithm=EC&limit=3").await;
    let ec_expected: BTreeSet<String> = families
        .iter()
        .filter(|f| f.algorithm == "EC")
        .map(|f| f.label.to_owned())
        .collect();
    assert_eq!(
        labels(&ec).into_iter().collect::<BTreeSet<_>>(),
        ec_expected
    );
    let ml = list_all(&world, &root, "prefix=ml-&limit=2").await;
    assert_eq!(labels(&ml).len(), 6, "{:?}", labels(&ml));
    let tagged = list_all(&world, &root, "tag=family:ML-KEM-768").await;
    assert_eq!(labels(&tagged), vec!["ml-kem-768".to_owned()]);
    let p256 = tagged_row(&all, "ec-p256");
    assert_eq!(p256["curve"], "secp256r1");
    assert_eq!(p256["curve_oid"], P256);
    assert_eq!(p256["attributes"]["sign"], true);
    assert_eq!(p256["attributes"]["extractable"], false);
    assert_eq!(p256["attributes"]["sensitive"], true);
    for sort in ["created", "expiry"] {
        let sorted = list_all(&world, &root, &format!("sort={sort}&limit=7")).await;
        let mut seen = labels(&sorted);
        seen.sort();
        assert_eq!(seen, expected, "sort={sort}");
    }
    // A cursor is tied to its sort order.
    let first = world
        .call(
            Method::GET,
            "/api/v1/tenants/acme/keys?limit=1",
            &root,
            None,
        )
        .await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let mixed = world
        .call(
            Method::GET,
            &format!("/api/v1/tenants/acme/keys?limit=1&sort=created&cursor={cursor}"),
            &root,
            None,
        )
        .await;
    assert_eq!(mixed.status, StatusCode::BAD_REQUEST, "{}", mixed.text);
    assert_eq!(mixed.body["reason"], "invalid_cursor");
}

fn tagged_row<'a>(items: &'a [Value], label: &str) -> &'a Value {
    items.iter().find(|i| i["label"] == label).unwrap()
}

#[tokio::test]
async fn bad_key_requests_are_explained_4xx() {
    let (world, root) = world().await;
    let cases = [
        (
            json!({"label": "a", "algorithm": "RSA", "key_size": 1000, "attributes": {"sign": true}}),
            400,
            "invalid_key_size",
        ),
        (
            json!({"label": "a", "algorithm": "EC", "attributes": {"sign": true}}),
            400,
            "curve_required",
        ),
        (
            json!({"label": "a", "algorithm": "DILITHIUM_L2", "attributes": {"sign": true}}),
            400,
            "obsolete_algorithm",
        ),
        (
            json!({"label": "a", "algorithm": "AES", "key_size": 256, "attributes": {"sign": true}}),
            400,
            "unsupported_usage",
        ),
        (
            json!({"label": "a", "algorithm": "AES", "key_size": 256, "attributes": {"encrypt": true}}),
            400,
            "no_private_usage",
        ),
        (
            json!({"label": "a", "algorithm": "AES", "key_size": 256, "attributes": {"decrypt": true, "extractable": true}}),
            400,
            "extractable_with_policy",
        ),
        (
            json!({"label": "kms.mine", "algorithm": "AES", "key_size": 256, "attributes": {"decrypt": true}}),
            400,
            "invalid_label",
        ),
        (
            json!({"label": "pay_v2", "algorithm": "AES", "key_size": 256, "attributes": {"decrypt": true}}),
            400,
            "invalid_label",
        ),
        (
            json!({"label": "has space", "algorithm": "AES", "key_size": 256, "attributes": {"decrypt": true}}),
            400,
            "invalid_label",
        ),
        (
            json!({"label": "a", "algorithm": "AES", "key_size": 256, "attributes": {"decrypt": true}, "tags": ["no spaces"]}),
            400,
            "invalid_tag",
        ),
        (
            json!({"label": "a", "algorithm": "AES", "key_size": 256, "attributes": {"decrypt": true}, "expires_at": 5}),
            400,
            "invalid_expiry",
        ),
        (
            json!({"label": "a", "algorithm": "AES", "key_size": 256, "attributes": {"decrypt": true}, "rotation": {"interval_secs": 5}}),
            400,
            "invalid_rotation",
        ),
        (
            json!({"label": "a", "algorithm": "AES", "key_size": 256, "attributes": {"decrypt": true},
                "policy": {"rule_use": {"tokens": []}}}),
            400,
            "use_rule_frozen",
        ),
        (
            json!({"label": "a", "algorithm": "AES", "key_size": 256, "attributes": {"decrypt": true}, "colour": "red"}),
            400,
            "bad_body",
        ),
        (
            json!({"label": 5, "algorithm": "AES", "key_size": 256, "attributes": {"decrypt": true}}),
            400,
            "bad_body",
        ),
    ];
    for (body, status, reason) in cases {
        let answer = create(&world, &root, body.clone()).await;
        assert_eq!(answer.status.as_u16(), status, "{body}: {}", answer.text);
        assert_eq!(answer.body["reason"], reason, "{body}: {}", answer.text);
        assert!(
            answer
                .header("content-type")
                .starts_with("application/problem+json")
        );
    }
    create_ok(&world, &root, ec_key("dup")).await;
    let again = create(&world, &root, ec_key("dup")).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(again.body["reason"], "key_exists");
    for (path, method, body, status) in [
        (keys_path("nope"), Method::GET, None, 404),
        (keys_path("kms.seal.v1"), Method::GET, None, 404),
        (
            format!("{}/lifecycle", keys_path("dup")),
            Method::POST,
            Some(json!({"event": "explode"})),
            400,
        ),
        (
            format!("{}/lifecycle", keys_path("dup")),
            Method::POST,
            Some(json!({"event": "suspend", "destroy_at": 5})),
            400,
        ),
        (
            format!("{}/lifecycle", keys_path("dup")),
            Method::POST,
            Some(json!({"event": "suspend", "version": 7})),
            400,
        ),
        (
            format!("{}/public-key?format=der", keys_path("dup")),
            Method::GET,
            None,
            400,
        ),
        (
            "/api/v1/tenants/acme/keys?limit=0".to_owned(),
            Method::GET,
            None,
            400,
        ),
        (
            "/api/v1/tenants/acme/keys?state=sleepy".to_owned(),
            Method::GET,
            None,
            400,
        ),
        (
            "/api/v1/tenants/acme/keys?cursor=!!".to_owned(),
            Method::GET,
            None,
            400,
        ),
        (
            "/api/v1/tenants/acme/key-settings".to_owned(),
            Method::PUT,
            Some(json!({"destruction_waiting_period_secs": 3600})),
            400,
        ),
        (
            keys_path("dup"),
            Method::PATCH,
            Some(json!({"owner": "x", "unknown": 1})),
            400,
        ),
    ] {
        let answer = world.call(method, &path, &root, body).await;
        assert_eq!(answer.status.as_u16(), status, "{path}: {}", answer.text);
        assert!(
            answer
                .header("content-type")
                .starts_with("application/problem+json")
        );
    }
}

// ----- (b) lifecycle on the HSM -----

async fn sign(client: &TsbClient, label: &str) -> Result<Vec<u8>, km_tsb::TsbError> {
    client
        .sign(&SignRequest::new(
            label,
            "SHA256_WITH_ECDSA",
            b"payload".to_vec(),
        ))
        .await
}

#[tokio::test]
async fn lifecycle_changes_reach_the_hsm_and_illegal_ones_are_409() {
    let (world, root) = world().await;
    let client = tsb(&world, "acme");
    create_ok(&world, &root, ec_key("life")).await;
    sign(&client, "life").await.unwrap();

    let suspended = event_ok(&world, &root, "life", "suspend").await;
    assert_eq!(
        (suspended["state"].as_str(), suspended["blocked"].as_bool()),
        (Some("suspended"), Some(true))
    );
    let refused = sign(&client, "life").await.unwrap_err();
    assert_eq!(refused.tsb_code(), Some(701), "{refused:?}");

    let back = event_ok(&world, &root, "life", "reactivate").await;
    assert_eq!(back["state"], "active");
    assert_eq!(back["blocked"], false);
    sign(&client, "life").await.unwrap();

    // Illegal moves: the stable codes of km-domain, as 409.
    for (name, reason) in [
        ("reactivate", "illegal_transition"),
        ("activate", "illegal_transition"),
        ("schedule_destruction", "illegal_transition"),
        ("cancel_destruction", "illegal_transition"),
    ] {
        let answer = event(&world, &root, "life", json!({"event": name})).await;
        assert_eq!(
            answer.status,
            StatusCode::CONFLICT,
            "{name}: {}",
            answer.text
        );
        assert_eq!(answer.body["reason"], reason, "{name}");
    }

    // Compromise: blocked for good, its unblock rule frozen in the HSM.
    let compromised = event_ok(&world, &root, "life", "compromise").await;
    assert_eq!(compromised["state"], "compromised");
    let info = hsm_info(&world, "life").await.unwrap();
    assert!(info.blocked);
    assert!(
        info.policy
            .unwrap()
            .is_frozen(km_domain::SkaAction::Unblock)
    );
    assert!(
        client.unblock("life").await.is_err(),
        "unblocking must be impossible"
    );
    let answer = event(&world, &root, "life", json!({"event": "reactivate"})).await;
    assert_eq!(
        answer.body["reason"], "illegal_transition",
        "{}",
        answer.text
    );

    // The history and the audit log name who did what and why.
    let detail = get_key(&world, &root, "life").await;
    let events: Vec<&str> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["create", "suspend", "resume", "mark-compromised"]);
    assert_eq!(detail["history"][1]["reason"], "test");
    assert_eq!(detail["history"][1]["actor"], "root");
    let audit = world.app.audit_log().read(1..=u64::MAX).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "mark_key_compromised"
        && e.target.as_deref() == Some("life")
        && e.details.get("reason").map(String::as_str) == Some("test")));

    // A pre-active key is blocked until activated.
    let pre = create_ok(
        &world,
        &root,
        json!({"label": "later", "algorithm": "EC", "curve": "P-256",
               "attributes": {"sign": true}, "activation_at": START + DAY}),
    )
    .await;
    assert_eq!(
        (pre["state"].as_str(), pre["blocked"].as_bool()),
        (Some("pre-active"), Some(true))
    );
    assert!(sign(&client, "later").await.is_err());
    event_ok(&world, &root, "later", "activate").await;
    sign(&client, "later").await.unwrap();
}

// ----- (c) scheduled destruction -----

#[tokio::test]
async fn destruction_waits_for_the_period_and_can_be_cancelled() {
    let (world, root) = world().await;
    let settings = world
        .call(
            Method::PUT,
            "/api/v1/tenants/acme/key-settings",
            &root,
            Some(json!({"destruction_waiting_period_secs": DAY})),
        )
        .await;
    assert_eq!(settings.status, StatusCode::OK, "{}", settings.text);
    let read = world
        .call(
            Method::GET,
            "/api/v1/tenants/acme/key-settings",
            &root,
            None,
        )
        .await;
    assert_eq!(read.body["destruction_waiting_period_secs"], DAY);

    for label in ["doomed", "spared"] {
        create_ok(&world, &root, ec_key(label)).await;
        event_ok(&world, &root, label, "deactivate").await;
    }
    let too_soon = event(
        &world,
        &root,
        "doomed",
        json!({"event": "schedule_destruction", "destroy_at": START + 60}),
    )
    .await;
    assert_eq!(too_soon.status, StatusCode::CONFLICT, "{}", too_soon.text);
    assert_eq!(too_soon.body["reason"], "waiting_period_too_short");
    for label in ["doomed", "spared"] {
        let scheduled = event_ok(&world, &root, label, "schedule_destruction").await;
        assert_eq!(scheduled["state"], "destroy-scheduled");
        assert_eq!(scheduled["destruction_at"], START + DAY);
    }
    let cancelled = event_ok(&world, &root, "spared", "cancel_destruction").await;
    assert_eq!(cancelled["state"], "deactivated");

    advance(&world, DAY - 10).await;
    let report = run_due(&world).await;
    assert!(report.is_empty(), "nothing is due yet: {report:?}");
    assert!(hsm_info(&world, "doomed").await.is_some());

    let root = advance(&world, 20).await;
    let report = run_due(&world).await;
    assert_eq!(report.count(DueKind::Destroy), 1, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert!(
        hsm_info(&world, "doomed").await.is_none(),
        "deleted in the HSM"
    );
    assert!(
        hsm_info(&world, "spared").await.is_some(),
        "a cancelled schedule is not executed"
    );
    let tomb = get_key(&world, &root, "doomed").await;
    assert_eq!(tomb["state"], "destroyed");
    assert_eq!(tomb["blocked"], Value::Null);
    assert_eq!(tomb["version_list"][0]["destroyed_at"], START + DAY + 10);
    assert!(run_due(&world).await.is_empty(), "idempotent");

    // Destroyed is terminal.
    let answer = event(&world, &root, "doomed", json!({"event": "activate"})).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
    assert_eq!(answer.body["reason"], "illegal_transition");
    let inventory = list_all(&world, &root, "state=destroyed").await;
    assert_eq!(labels(&inventory), vec!["doomed".to_owned()]);

    // Audited as the scheduler.
    let audit = world.app.audit_log().read(1..=u64::MAX).await.unwrap();
    assert!(audit.iter().any(|e| e.actor == "system:scheduler"
        && e.action == "schedule_key_destruction"
        && e.target.as_deref() == Some("doomed")
        && e.details.get("operation").map(String::as_str) == Some("destroy_key")));

    // destroyable=false keys can never be scheduled.
    create_ok(
        &world,
        &root,
        json!({"label": "forever", "algorithm": "AES", "key_size": 256,
               "attributes": {"decrypt": true, "destroyable": false}}),
    )
    .await;
    event_ok(&world, &root, "forever", "deactivate").await;
    let answer = event(
        &world,
        &root,
        "forever",
        json!({"event": "schedule_destruction"}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
    assert_eq!(answer.body["reason"], "not_destroyable");
}

// ----- (d) rotation -----

#[tokio::test]
async fn two_rotations_move_the_alias_to_v3_and_retire_old_versions_after_grace() {
    let (world, root) = world().await;
    let client = tsb(&world, "acme");
    let mut body = ec_key("rot");
    body["rotation"] = json!({"interval_secs": 30 * DAY, "grace_secs": 3600});
    create_ok(&world, &root, body).await;
    for expected in ["rot_v2", "rot_v3"] {
        let answer = world
            .call(
                Method::POST,
                &format!("{}/rotate", keys_path("rot")),
                &root,
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.body["current_label"], expected);
    }
    let detail = get_key(&world, &root, "rot").await;
    assert_eq!(detail["current_version"], 3);
    assert_eq!(detail["versions"], 3);
    let versions = detail["version_list"].as_array().unwrap();
    assert_eq!(versions.len(), 3);
    for v in &versions[..2] {
        assert_eq!(v["state"], "active");
        assert_eq!(v["deactivate_after"], START + 3600);
    }
    // Same spec, attributes and policy; usable during the grace period.
    let v3 = hsm_info(&world, "rot_v3").await.unwrap();
    let v1 = hsm_info(&world, "rot").await.unwrap();
    assert_eq!(
        (v3.algorithm.as_str(), v3.curve_oid.as_deref()),
        ("EC", Some(P256))
    );
    assert_eq!(v3.attributes, v1.attributes);
    assert_eq!(v3.policy.is_some(), v1.policy.is_some());
    for label in ["rot", "rot_v2", "rot_v3"] {
        sign(&client, label).await.unwrap();
    }
    // One inventory row per alias; a version's label resolves to it.
    let rows = list_all(&world, &root, "").await;
    assert_eq!(labels(&rows), vec!["rot".to_owned()]);
    assert_eq!(get_key(&world, &root, "rot_v2").await["label"], "rot");

    let root = advance(&world, 3601).await;
    let report = run_due(&world).await;
    assert_eq!(report.count(DueKind::RetireOldVersion), 2, "{report:?}");
    assert!(run_due(&world).await.is_empty(), "idempotent");
    let detail = get_key(&world, &root, "rot").await;
    let states: Vec<&str> = detail["version_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["deactivated", "deactivated", "active"]);
    assert_eq!(detail["current_label"], "rot_v3");
    for label in ["rot", "rot_v2"] {
        assert!(hsm_info(&world, label).await.unwrap().blocked, "{label}");
        assert!(sign(&client, label).await.is_err(), "{label}");
    }
    sign(&client, "rot_v3").await.unwrap();

    // The scheduler rotates at the interval, audited as itself.
    let root = advance(&world, 30 * DAY).await;
    let report = run_due(&world).await;
    assert_eq!(report.count(DueKind::Rotate), 1, "{report:?}");
    let detail = get_key(&world, &root, "rot").await;
    assert_eq!(detail["current_label"], "rot_v4");
    assert_eq!(
        detail["history"].as_array().unwrap().last().unwrap()["actor"],
        "system:scheduler"
    );
    let audit = world.app.audit_log().read(1..=u64::MAX).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.actor == "system:scheduler" && e.action == "rotate_key")
    );
}

// ----- (e) public keys -----

async fn export(world: &ApiWorld, auth: &Auth, label: &str, format: &str) -> Value {
    let answer = world
        .call(
            Method::GET,
            &format!("{}/public-key?format={format}", keys_path(label)),
            auth,
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{label}: {}", answer.text);
    answer.body
}

/// The DER inside a PEM answer.
fn spki_of(answer: &Value) -> Vec<u8> {
    let pem = answer["pem"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD.decode(body).unwrap()
}

fn b64url(value: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(value.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn public_keys_export_as_pem_and_jwk_that_verify_hsm_signatures() {
    let (world, root) = world().await;
    let client = tsb(&world, "acme");
    let message = b"signed inside the HSM".to_vec();
    let specs = [
        (
            "p256",
            json!({"algorithm": "EC", "curve": "P-256"}),
            "SHA256_WITH_ECDSA",
        ),
        (
            "p384",
            json!({"algorithm": "EC", "curve": "P-384"}),
            "SHA384_WITH_ECDSA",
        ),
        (
            "k256",
            json!({"algorithm": "EC", "curve": "secp256k1"}),
            "SHA256_WITH_ECDSA",
        ),
        (
            "rsa",
            json!({"algorithm": "RSA", "key_size": 2048}),
            "SHA256_WITH_RSA",
        ),
        (
            "ed",
            json!({"algorithm": "ED", "curve": "Ed25519"}),
            "EDDSA",
        ),
        ("mldsa", json!({"algorithm": "ML-DSA-65"}), "ML_DSA"),
    ];
    let mut signatures = BTreeMap::new();
    for (label, spec, algorithm) in &specs {
        let mut body = spec.clone();
        body["label"] = json!(label);
        body["attributes"] = sign_attributes();
        create_ok(&world, &root, body).await;
        let signature = client
            .sign(&SignRequest::new(*label, *algorithm, message.clone()))
            .await
            .unwrap();
        signatures.insert(*label, signature);
    }

    // PEM: a SubjectPublicKeyInfo that verifies the HSM's signatures.
    let p256 = spki_of(&export(&world, &root, "p256", "pem").await);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &p256)
        .verify(&message, &signatures["p256"])
        .expect("P-256 signature verifies with the exported PEM");
    let rsa = spki_of(&export(&world, &root, "rsa", "pem").await);
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &rsa)
        .verify(&message, &signatures["rsa"])
        .expect("RSA signature verifies");
    let mldsa = spki_of(&export(&world, &root, "mldsa", "pem").await);
    UnparsedPublicKey::new(&ML_DSA_65, &mldsa)
        .verify(&message, &signatures["mldsa"])
        .expect("ML-DSA-65 signature verifies");

    // JWK: the right kty/crv, and the coordinates of the same key.
    let jwk = &export(&world, &root, "p256", "jwk").await["jwk"];
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert_eq!(jwk["kid"], "p256");
    let mut point = vec![4u8];
    point.extend(b64url(&jwk["x"]));
    point.extend(b64url(&jwk["y"]));
    assert_eq!(&p256[p256.len() - 65..], point.as_slice());
    assert!(
        jwk.get("n").is_none(),
        "no fields of other key types: {jwk}"
    );
    let jwk = &export(&world, &root, "p384", "jwk").await["jwk"];
    assert_eq!(jwk["crv"], "P-384");
    assert_eq!(b64url(&jwk["x"]).len(), 48);
    let jwk = &export(&world, &root, "k256", "jwk").await["jwk"];
    assert_eq!(jwk["crv"], "secp256k1");
    let jwk = &export(&world, &root, "rsa", "jwk").await["jwk"];
    assert_eq!(
        (jwk["kty"].as_str(), jwk["e"].as_str()),
        (Some("RSA"), Some("AQAB"))
    );
    RsaPublicKeyComponents {
        n: b64url(&jwk["n"]),
        e: b64url(&jwk["e"]),
    }
    .verify(&RSA_PKCS1_2048_8192_SHA256, &message, &signatures["rsa"])
    .expect("RSA signature verifies with the JWK's n and e");
    let jwk = &export(&world, &root, "ed", "jwk").await["jwk"];
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    UnparsedPublicKey::new(&ED25519, b64url(&jwk["x"]))
        .verify(&message, &signatures["ed"])
        .expect("Ed25519 signature verifies with the JWK's x");

    // No JWK for ML-DSA; no public key at all for a secret key.
    let answer = world
        .call(
            Method::GET,
            &format!("{}/public-key?format=jwk", keys_path("mldsa")),
            &root,
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
    assert_eq!(answer.body["reason"], "jwk_unsupported");
    create_ok(
        &world,
        &root,
        json!({"label": "secret", "algorithm": "AES", "key_size": 256, "attributes": {"decrypt": true}}),
    )
    .await;
    let answer = world
        .call(
            Method::GET,
            &format!("{}/public-key", keys_path("secret")),
            &root,
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
    assert_eq!(answer.body["reason"], "no_public_key");
}

// ----- (f) unmanaged keys and keymanager's own -----

#[tokio::test]
async fn unmanaged_keys_are_listed_and_adopted_by_the_first_write() {
    let (world, root) = world().await;
    let client = tsb(&world, "acme");
    create_ok(&world, &root, ec_key("managed")).await;
    assert_eq!(
        labels(&list_all(&world, &root, "").await),
        vec!["managed".to_owned()]
    );

    // Created behind keymanager's back, after the cache was built.
    let mut outside = CreateKeyRequest::new("outside", "EC", sign_key_attributes());
    outside.curve_oid = Some(P256.to_owned());
    outside.policy = Some(Policy::empty_ska());
    client.create_key(&outside).await.unwrap();
    client.block("outside").await.unwrap();
    let mut own = CreateKeyRequest::new("kms.private", "EC", sign_key_attributes());
    own.curve_oid = Some(P256.to_owned());
    client.create_key(&own).await.unwrap();

    // The cache answers at once; once older than its TTL a query refreshes it in the background.
    world.clock.advance(31);
    let rows = poll_rows(&world, &root, |rows| rows.len() > 1).await;
    assert_eq!(
        labels(&rows),
        vec!["managed".to_owned(), "outside".to_owned()]
    );
    let row = tagged_row(&rows, "outside");
    assert_eq!(row["managed"], false);
    assert_eq!(row["state"], "suspended", "derived from the blocked flag");
    assert_eq!(row["algorithm"], "EC");
    assert_eq!(row["current_version"], Value::Null);
    let hidden = world
        .call(Method::GET, &keys_path("kms.private"), &root, None)
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);

    // The first write adopts it.
    let adopted = world
        .call(
            Method::PATCH,
            &keys_path("outside"),
            &root,
            Some(json!({"owner": "team-a", "tags": ["found"]})),
        )
        .await;
    assert_eq!(adopted.status, StatusCode::OK, "{}", adopted.text);
    assert_eq!(adopted.body["managed"], true);
    assert_eq!(adopted.body["adopted"], true);
    assert_eq!(adopted.body["state"], "suspended");
    let found = list_all(&world, &root, "tag=found").await;
    assert_eq!(labels(&found), vec!["outside".to_owned()]);
    event_ok(&world, &root, "outside", "reactivate").await;
    sign(&client, "outside").await.unwrap();
}

fn sign_key_attributes() -> KeyAttributes {
    KeyAttributes {
        sign: Some(true),
        verify: Some(true),
        ..KeyAttributes::default()
    }
}

// ----- (g) roles and tenants -----

#[tokio::test]
async fn readonly_reads_but_does_not_change_and_other_tenants_do_not_exist() {
    let (world, root) = world().await;
    world.create_user(&root, "acme", "reader", "readonly").await;
    world
        .create_user(&root, "globex", "outsider", "admin")
        .await;
    create_ok(&world, &root, ec_key("shared")).await;
    let reader = world.login("reader", PASSWORD).await;
    assert_eq!(
        labels(&list_all(&world, &reader, "").await),
        vec!["shared".to_owned()]
    );
    export(&world, &reader, "shared", "pem").await;
    let refused = create(&world, &reader, ec_key("mine")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let refused = event(&world, &reader, "shared", json!({"event": "suspend"})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);

    let outsider = world.login("outsider", PASSWORD).await;
    for (method, path) in [
        (Method::GET, "/api/v1/tenants/acme/keys".to_owned()),
        (Method::GET, keys_path("shared")),
        (Method::GET, keys_path("does-not-exist")),
    ] {
        let answer = world.call(method, &path, &outsider, None).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            answer.text
        );
    }
}

// ----- HSM and record agree along random lifecycle walks -----

/// A small deterministic generator (xorshift64*), so a failing walk can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % below
    }
}

const EVENTS: [&str; 8] = [
    "activate",
    "suspend",
    "reactivate",
    "deactivate",
    "compromise",
    "schedule_destruction",
    "cancel_destruction",
    "wait_and_run_due",
];

fn domain_event(name: &str, at: u64) -> LifecycleEvent {
    match name {
        "activate" => LifecycleEvent::Activate,
        "suspend" => LifecycleEvent::Suspend,
        "reactivate" => LifecycleEvent::Resume,
        "deactivate" => LifecycleEvent::Deactivate,
        "compromise" => LifecycleEvent::MarkCompromised,
        "schedule_destruction" => LifecycleEvent::ScheduleDestruction { at },
        _ => LifecycleEvent::CancelDestruction,
    }
}

fn parse_state(value: &Value) -> KeyState {
    serde_json::from_value(value.clone()).unwrap()
}

/// What km-domain decides for `name` on the key shown as `before` at `now` (the oracle).
fn decide(
    before: &Value,
    name: &str,
    now: u64,
) -> Result<km_domain::Transition, km_domain::IllegalTransition> {
    let state = parse_state(&before["state"]);
    let mut context = TransitionContext::new(now, true);
    if state == KeyState::DestroyScheduled {
        let restore = before["history"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|h| h["to"] == "destroy-scheduled")
            .map(|h| parse_state(&h["from"]))
            .unwrap();
        context.schedule = Some(km_domain::DestructionSchedule {
            at: before["destruction_at"].as_u64().unwrap(),
            restore_to: km_domain::ScheduledFrom::from_state(restore).unwrap(),
        });
    }
    let at = now + WaitingPeriod::default().as_secs();
    transition(state, &domain_event(name, at), &context)
}

/// After every step: the HSM's blocked flag (or the key's absence) matches every key's state.
async fn assert_hsm_agrees(world: &ApiWorld, root: &Auth, labels: &[&str], step: usize) {
    for label in labels {
        let state = parse_state(&get_key(world, root, label).await["state"]);
        let info = hsm_info(world, label).await;
        match state {
            KeyState::Destroyed => assert!(info.is_none(), "step {step}: {label} still in the HSM"),
            KeyState::Active => {
                assert!(
                    !info.unwrap().blocked,
                    "step {step}: {label} active but blocked"
                )
            }
            other => assert!(
                info.unwrap().blocked,
                "step {step}: {label} {other} but unblocked"
            ),
        }
    }
}

#[tokio::test]
async fn random_lifecycle_walks_keep_hsm_and_record_in_agreement() {
    let (world, mut root) = world().await;
    let labels = ["walk-a", "walk-b", "walk-c", "walk-d"];
    for (i, label) in labels.iter().enumerate() {
        let mut body = ec_key(label);
        if i == 0 {
            body["activation_at"] = json!(START + 400 * DAY);
        }
        create_ok(&world, &root, body).await;
    }
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut reached = BTreeSet::new();
    let (mut refused, mut destroyed) = (0, 0);
    for step in 0..80 {
        let label = labels[rng.next(labels.len())];
        let before = get_key(&world, &root, label).await;
        let now = world.clock.now();
        // Half the time any event (mostly illegal ones), half the time one the domain allows.
        let legal: Vec<&str> = EVENTS
            .iter()
            .copied()
            .filter(|name| *name == "wait_and_run_due" || decide(&before, name, now).is_ok())
            .collect();
        let name = if rng.next(2) == 0 {
            EVENTS[rng.next(EVENTS.len())]
        } else {
            legal[rng.next(legal.len())]
        };
        if name == "wait_and_run_due" {
            root = advance(&world, 8 * DAY).await;
            let report = run_due(&world).await;
            assert!(report.failed.is_empty(), "step {step}: {report:?}");
            destroyed += report.count(DueKind::Destroy);
        } else {
            let answer = event(&world, &root, label, json!({"event": name})).await;
            let state = &before["state"];
            match decide(&before, name, now) {
                Ok(moved) => {
                    let what = format!("step {step} {label} {state} {name}: {}", answer.text);
                    assert_eq!(answer.status, StatusCode::OK, "{what}");
                    assert_eq!(parse_state(&answer.body["state"]), moved.to, "{what}");
                    reached.insert(moved.to);
                }
                Err(illegal) => {
                    let what = format!("step {step} {label} {state} {name}: {}", answer.text);
                    assert_eq!(answer.status, StatusCode::CONFLICT, "{what}");
                    assert_eq!(answer.body["reason"], illegal.code(), "{what}");
                    refused += 1;
                }
            }
        }
        assert_hsm_agrees(&world, &root, &labels, step).await;
    }
    eprintln!("walk reached {reached:?}; {refused} refusals; {destroyed} destroyed");
    assert!(refused > 5, "the walk must also try illegal moves");
    assert!(
        reached.len() >= 5,
        "the walk must cover the states: {reached:?}"
    );
    assert!(
        destroyed > 0,
        "the walk must see a scheduled destruction executed"
    );
}

#[tokio::test]
async fn the_scheduler_leader_executes_due_destructions_as_system_scheduler() {
    use km_core::scheduler::{JobOutcome, KeyDueWorkJob};
    use km_core::{Scheduler, SchedulerConfig};
    let (world, root) = world().await;
    world
        .call(
            Method::PUT,
            "/api/v1/tenants/acme/key-settings",
            &root,
            Some(json!({"destruction_waiting_period_secs": DAY})),
        )
        .await;
    create_ok(&world, &root, ec_key("retired")).await;
    event_ok(&world, &root, "retired", "deactivate").await;
    event_ok(&world, &root, "retired", "schedule_destruction").await;

    let scheduler = Scheduler::new(
        world.app.store().clone(),
        world.app.audit_log().clone(),
        world.clock.clone(),
        "replica-a",
        SchedulerConfig::default(),
    )
    .with_job(std::sync::Arc::new(KeyDueWorkJob::new(
        world.app.partitions().clone(),
        world.app.keys().clone(),
    )));
    let early = scheduler.tick().await;
    assert!(early.acting);
    assert!(
        matches!(&early.jobs[0].outcome, JobOutcome::Done(report) if report.actions == 0),
        "{early:?}"
    );
    assert!(hsm_info(&world, "retired").await.is_some());

    advance(&world, DAY + 1).await;
    let due = scheduler.tick().await;
    assert!(
        matches!(&due.jobs[0].outcome, JobOutcome::Done(report) if report.actions == 1),
        "{due:?}"
    );
    assert!(
        hsm_info(&world, "retired").await.is_none(),
        "deleted in the HSM"
    );
    let events = world.app.audit_log().read(1..=u64::MAX).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.actor == "system:scheduler" && e.target.as_deref() == Some("retired")),
        "the destruction is audited as system:scheduler"
    );
    // The next round finds nothing to do.
    let again = scheduler.tick().await;
    assert!(
        matches!(&again.jobs[0].outcome, JobOutcome::Done(report) if report.actions == 0),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_refresh_reads_new_keys_at_once_and_other_keys_facts_after_the_recheck_age() {
    let (world, root) = world().await;
    let client = tsb(&world, "acme");
    let create_outside = |label: &'static str| {
        let mut request = CreateKeyRequest::new(label, "EC", sign_key_attributes());
        request.curve_oid = Some(P256.to_owned());
        request.policy = Some(Policy::empty_ska());
        request
    };
    client.create_key(&create_outside("old")).await.unwrap();
    let rows = list_all(&world, &root, "").await;
    assert_eq!(tagged_row(&rows, "old")["state"], "active");

    // Behind keymanager's back: "old" blocked, "newcomer" created. After the TTL a refresh lists
    // the newcomer, but keeps old's facts: they are younger than the recheck age (300 s).
    client.block("old").await.unwrap();
    client
        .create_key(&create_outside("newcomer"))
        .await
        .unwrap();
    let root = advance(&world, 31).await;
    let rows = poll_rows(&world, &root, |rows| rows.len() == 2).await;
    assert_eq!(tagged_row(&rows, "newcomer")["state"], "active");
    assert_eq!(
        tagged_row(&rows, "old")["state"],
        "active",
        "facts reused within the recheck age"
    );

    // Past the recheck age the next refresh reads old's facts again.
    let root = advance(&world, 300).await;
    let rows = poll_rows(&world, &root, |rows| {
        rows.iter()
            .any(|row| row["label"] == "old" && row["state"] == "suspended")
    })
    .await;
    assert_eq!(tagged_row(&rows, "old")["blocked"], true);
}

/// Lists until `done` holds (a background refresh has landed), or 20 s have passed.
async fn poll_rows(world: &ApiWorld, auth: &Auth, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = list_all(world, auth, "").await;
        if done(&rows) || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
