//! HTTP-level tests of the emulator: error mapping, attributes, data objects, API-key groups and
//! partitions, the admin API and fault injection, and an SKA 2-of-3 flow.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

mod common;

use common::*;
use km_tsb_emulator::crypto::{self, KeyMaterial, KeySpec, SignatureType};
use km_tsb_emulator::{EmulatorConfig, PartitionConfig};
use reqwest::Method;
use serde_json::{Value, json};

const P256: &str = "1.2.840.10045.3.1.7";

fn ec_key_body(label: &str) -> Value {
    json!({
        "label": label,
        "algorithm": "EC",
        "curveOid": P256,
        "attributes": {"sign": true, "decrypt": false, "unwrap": false, "destroyable": true,
                        "extractable": false, "sensitive": true, "modifiable": true},
        "policy": null
    })
}

#[tokio::test]
async fn bad_inputs_map_to_tsb_errors() {
    let emu = start(EmulatorConfig::default()).await;
    let c = client();
    let base = emu.base_url();
    let key_url = format!("{base}/v1/key");

    // Malformed JSON.
    let r = send(
        &c,
        Method::POST,
        &key_url,
        None,
        Some(b"{\"label\": ".to_vec()),
    )
    .await;
    r.assert_error(400, 621);
    // Wrong JSON type.
    let r = post(&c, &key_url, &json!({"label": "x", "algorithm": "AES", "keySize": "big", "attributes": {"decrypt": true}})).await;
    r.assert_error(400, 621);
    // Missing required field.
    let r = post(
        &c,
        &key_url,
        &json!({"algorithm": "EC", "curveOid": P256, "attributes": {"sign": true}}),
    )
    .await;
    r.assert_error(400, 600);
    // Unknown algorithm.
    let r = post(
        &c,
        &key_url,
        &json!({"label": "u", "algorithm": "FOO", "attributes": {"sign": true}}),
    )
    .await;
    r.assert_error(400, 613);
    // Bad size.
    let r = post(
        &c,
        &key_url,
        &json!({"label": "s", "algorithm": "AES", "keySize": 100, "attributes": {"decrypt": true}}),
    )
    .await;
    r.assert_error(400, 603);
    // Wrong attribute combinations.
    let r = post(
        &c,
        &key_url,
        &json!({"label": "a", "algorithm": "AES", "keySize": 256, "attributes": {"encrypt": true}}),
    )
    .await;
    r.assert_error(400, 606);
    let r = post(&c, &key_url, &json!({"label": "a", "algorithm": "AES", "keySize": 256,
        "attributes": {"decrypt": true, "extractable": true}, "policy": {"ruleUse": null, "keyStatus": {"blocked": false}}})).await;
    r.assert_error(400, 606);
    let r = post(
        &c,
        &key_url,
        &json!({"label": "a", "algorithm": "RSA", "keySize": 2048,
        "attributes": {"sign": true, "bip32": true, "derive": true}}),
    )
    .await;
    r.assert_error(400, 606);
    let r = post(
        &c,
        &key_url,
        &json!({"label": "a", "algorithm": "EC", "curveOid": P256,
        "attributes": {"sign": true}, "policy": {"keyStatus": {"blocked": true}}}),
    )
    .await;
    r.assert_error(400, 606);

    // Create, duplicate.
    let r = post(&c, &key_url, &ec_key_body("k1")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    for field in ["xml", "xmlSignature", "attestationKeyName"] {
        assert!(r.body[field].is_string(), "{field} missing: {}", r.body);
    }
    assert_eq!(r.body["json"]["label"], "k1");
    assert!(r.body["json"]["publicKey"].is_string());
    assert!(r.body["json"]["policy"].is_null());
    let r = post(&c, &key_url, &ec_key_body("k1")).await;
    r.assert_error(400, 608);
    let r = get(&c, &key_url).await;
    assert_eq!(r.body, json!(["k1"]));

    // Unknown key.
    let r = post(
        &c,
        &format!("{base}/v1/key/attributes"),
        &json!({"label": "nope"}),
    )
    .await;
    r.assert_error(404, 650);
    let r = send(
        &c,
        Method::DELETE,
        &format!("{base}/v1/key/nope"),
        None,
        None,
    )
    .await;
    r.assert_error(404, 650);
    let r = post(
        &c,
        &format!("{base}/v1/synchronousSign"),
        &json!({"signRequest": {
        "signKeyName": "nope", "payload": b64(b"x"), "signatureAlgorithm": "SHA256_WITH_ECDSA"}}),
    )
    .await;
    r.assert_error(404, 650);

    // Missing wrapper.
    let r = post(
        &c,
        &format!("{base}/v1/synchronousSign"),
        &json!({
        "signKeyName": "k1", "payload": b64(b"x"), "signatureAlgorithm": "SHA256_WITH_ECDSA"}),
    )
    .await;
    r.assert_error(400, 600);

    // Body too large.
    let big = vec![b' '; 3 * 1024 * 1024];
    let r = send(&c, Method::POST, &key_url, None, Some(big)).await;
    r.assert_error(400, 612);

    // Unknown route.
    let r = get(&c, &format!("{base}/v1/nothingHere")).await;
    assert_eq!(r.status, 404);

    // Version.
    let r = get(&c, &format!("{base}/v1/versionInfo")).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body["Version"]
            .as_str()
            .unwrap()
            .starts_with("2.2.0-keymanager-emulator-")
    );
    // Authentication is off when no keys are configured: any header is ignored.
    let r = send(
        &c,
        Method::GET,
        &format!("{base}/v1/versionInfo"),
        Some("anything"),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    let r = get(&c, &format!("{base}/v1/licenseInfo")).await;
    assert!(
        r.body["clientFlags"]
            .as_array()
            .unwrap()
            .contains(&json!("TSB_ENGINE"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn key_attributes_and_passwords_are_enforced() {
    let emu = start(EmulatorConfig::default()).await;
    let c = client();
    let base = emu.base_url();
    // A key with a password (char array) that may sign.
    let mut body = ec_key_body("signer");
    body["password"] = json!(["p", "w"]);
    assert_eq!(post(&c, &format!("{base}/v1/key"), &body).await.status, 201);
    let sign = |pw: Value| {
        json!({"signRequest": {"signKeyName": "signer", "payload": b64(b"hello"),
            "signatureAlgorithm": "SHA256_WITH_ECDSA", "keyPassword": pw}})
    };
    let r = post(
        &c,
        &format!("{base}/v1/synchronousSign"),
        &sign(json!("wrong")),
    )
    .await;
    r.assert_error(400, 620);
    let r = post(
        &c,
        &format!("{base}/v1/synchronousSign"),
        &sign(json!("pw")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sig = r.body["signature"].as_str().unwrap().to_owned();
    let r = post(
        &c,
        &format!("{base}/v1/verify"),
        &json!({"verifySignatureRequest": {
        "signKeyName": "signer", "payload": b64(b"hello"), "signature": sig,
        "signatureAlgorithm": "SHA256_WITH_ECDSA"}}),
    )
    .await;
    assert_eq!(r.body["signatureValid"], true, "{}", r.body);

    // An AES key without sign: decrypt allowed, export refused (not extractable).
    let r = post(
        &c,
        &format!("{base}/v1/key"),
        &json!({"label": "aes", "algorithm": "AES", "keySize": 256,
        "attributes": {"decrypt": true, "encrypt": true}, "policy": null}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(
        &c,
        &format!("{base}/v1/encrypt"),
        &json!({"encryptRequest": {"encryptKeyName": "aes",
        "payload": b64(b"secret"), "cipherAlgorithm": "AES_GCM", "tagLength": 128}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(&c, &format!("{base}/v1/synchronousDecrypt"), &json!({"decryptRequest": {"decryptKeyName": "aes",
        "encryptedPayload": r.body["encryptedPayload"], "initializationVector": r.body["initializationVector"],
        "cipherAlgorithm": "AES_GCM", "tagLength": 128}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(unb64(r.body["payload"].as_str().unwrap()), b"secret");
    let r = post(
        &c,
        &format!("{base}/v1/export/plain"),
        &json!({"label": "aes"}),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = post(
        &c,
        &format!("{base}/v1/key/export/plain"),
        &json!({"label": "aes"}),
    )
    .await;
    r.assert_error(400, 614);
    // Signing with a key that lacks the sign attribute: refused by the "HSM" (701).
    let r = post(
        &c,
        &format!("{base}/v1/synchronousSign"),
        &json!({"signRequest": {"signKeyName": "aes",
        "payload": b64(b"x"), "signatureAlgorithm": "SHA256_WITH_ECDSA"}}),
    )
    .await;
    r.assert_error(500, 701);

    // Extractable, non-sensitive plain key: export works.
    let r = post(
        &c,
        &format!("{base}/v1/key"),
        &json!({"label": "exp", "algorithm": "AES", "keySize": 128,
        "attributes": {"decrypt": true, "extractable": true, "sensitive": false}, "policy": null}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(
        &c,
        &format!("{base}/v1/key/export/plain"),
        &json!({"label": "exp"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(unb64(r.body["secretKey"].as_str().unwrap()).len(), 16);

    // Non-destroyable key cannot be deleted.
    let r = post(
        &c,
        &format!("{base}/v1/key"),
        &json!({"label": "keep", "algorithm": "AES", "keySize": 128,
        "attributes": {"decrypt": true, "destroyable": false}}),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = send(
        &c,
        Method::DELETE,
        &format!("{base}/v1/key/keep"),
        None,
        None,
    )
    .await;
    r.assert_error(400, 614);
    // Deleting with the wrong password.
    let r = post(
        &c,
        &format!("{base}/v1/key/deleteKey"),
        &json!({"label": "signer", "password": "nope"}),
    )
    .await;
    r.assert_error(400, 620);
    let r = post(
        &c,
        &format!("{base}/v1/key/deleteKey"),
        &json!({"label": "signer", "password": ["p", "w"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Blocking a plain key is refused; an SKA key with an empty policy blocks and refuses use.
    let r = post(
        &c,
        &format!("{base}/v1/synchronousBlock"),
        &json!({"blockRequest": {"blockKeyName": "aes"}}),
    )
    .await;
    r.assert_error(400, 614);
    let mut ska = ec_key_body("ska-empty");
    ska["policy"] = json!({"ruleUse": null, "ruleBlock": null, "ruleUnblock": null, "ruleModify": null,
        "keyStatus": {"blocked": false}});
    assert_eq!(post(&c, &format!("{base}/v1/key"), &ska).await.status, 201);
    let r = post(
        &c,
        &format!("{base}/v1/synchronousBlock"),
        &json!({"blockRequest": {"blockKeyName": "ska-empty"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &c,
        &format!("{base}/v1/key/attributes"),
        &json!({"label": "ska-empty"}),
    )
    .await;
    assert_eq!(r.body["json"]["policy"]["keyStatus"]["blocked"], true);
    let r = post(
        &c,
        &format!("{base}/v1/synchronousSign"),
        &json!({"signRequest": {"signKeyName": "ska-empty",
        "payload": b64(b"x"), "signatureAlgorithm": "SHA256_WITH_ECDSA"}}),
    )
    .await;
    r.assert_error(500, 701);
    let r = post(
        &c,
        &format!("{base}/v1/synchronousUnblock"),
        &json!({"unblockRequest": {"unblockKeyName": "ska-empty"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Async on an always-fulfilled rule executes at once.
    let r = post(
        &c,
        &format!("{base}/v1/sign"),
        &json!({"signRequest": {"signKeyName": "ska-empty",
        "payload": b64(b"x"), "signatureAlgorithm": "SHA256_WITH_ECDSA"}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["signRequestId"].as_str().unwrap().to_owned();
    let r = get(&c, &format!("{base}/v1/request/{id}")).await;
    assert_eq!(r.body["status"], "EXECUTED", "{}", r.body);
    assert!(r.body["result"].is_string());
    // Modify may only tighten attributes.
    let r = post(
        &c,
        &format!("{base}/v1/synchronousModify"),
        &json!({"modifyRequest": {"modifyKeyName": "ska-empty",
        "attributes": {"decrypt": true}}}),
    )
    .await;
    r.assert_error(400, 614);
    emu.shutdown().await;
}

#[tokio::test]
async fn data_objects_create_if_absent() {
    let emu = start(EmulatorConfig::default()).await;
    let c = client();
    let base = emu.base_url();
    let url = format!("{base}/v1/dataObject");
    let r = post(
        &c,
        &url,
        &json!({"label": "kms.user.alice", "value": b64(b"v1")}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["label"], "kms.user.alice");
    let r = post(
        &c,
        &url,
        &json!({"label": "kms.user.alice", "value": b64(b"v2")}),
    )
    .await;
    r.assert_error(400, 615);
    let r = get(&c, &format!("{url}/kms.user.alice")).await;
    assert_eq!(unb64(r.body["value"].as_str().unwrap()), b"v1");
    let r = send(
        &c,
        Method::PUT,
        &format!("{url}/kms.user.alice"),
        None,
        Some(json!({"value": b64(b"v3")}).to_string().into_bytes()),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = get(&c, &format!("{url}/kms.user.alice")).await;
    assert_eq!(unb64(r.body["value"].as_str().unwrap()), b"v3");
    let r = get(&c, &format!("{url}/missing")).await;
    r.assert_error(404, 653);
    let r = post(
        &c,
        &url,
        &json!({"label": "bad label!", "value": b64(b"x")}),
    )
    .await;
    r.assert_error(400, 610);
    let r = post(
        &c,
        &url,
        &json!({"label": "fixed", "value": b64(b"x"), "modifiable": false, "destroyable": false}),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = send(
        &c,
        Method::PUT,
        &format!("{url}/fixed"),
        None,
        Some(json!({"value": b64(b"y")}).to_string().into_bytes()),
    )
    .await;
    r.assert_error(400, 614);
    let r = send(&c, Method::DELETE, &format!("{url}/fixed"), None, None).await;
    r.assert_error(400, 614);
    let r = get(&c, &url).await;
    assert_eq!(r.body, json!(["fixed", "kms.user.alice"]));
    let r = send(
        &c,
        Method::DELETE,
        &format!("{url}/kms.user.alice"),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    let r = get(&c, &format!("{base}/v1/keystore/statistics")).await;
    assert_eq!(r.body["dataObjects"], 1, "{}", r.body);

    // Concurrent creates of one label: exactly one wins.
    let mut handles = Vec::new();
    for i in 0..8 {
        let c = c.clone();
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            post(
                &c,
                &url,
                &json!({"label": "lock.x", "value": b64(format!("{i}").as_bytes())}),
            )
            .await
            .status
        }));
    }
    let mut created = 0;
    for h in handles {
        match h.await.unwrap() {
            201 => created += 1,
            400 => {}
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!(created, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn api_key_groups_and_partitions() {
    let mut a = PartitionConfig::open("alpha");
    a.api_keys.key_management = vec!["a-km-1".into(), "a-km-2".into()];
    a.api_keys.service = vec!["a-svc".into()];
    let mut b = PartitionConfig::open("beta");
    b.api_keys.key_management = vec!["b-km".into()];
    let open = PartitionConfig::open("gamma");
    let emu = start(EmulatorConfig {
        partitions: vec![a, b, open],
        ..EmulatorConfig::default()
    })
    .await;
    let c = client();
    let base = emu.base_url();
    let create = |label: &str| {
        json!({"label": label, "value": b64(b"x")})
            .to_string()
            .into_bytes()
    };

    // Root: the key selects the partition.
    let r = send(
        &c,
        Method::POST,
        &format!("{base}/v1/dataObject"),
        Some("a-km-1"),
        Some(create("in-alpha")),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = send(
        &c,
        Method::POST,
        &format!("{base}/v1/dataObject"),
        Some("b-km"),
        Some(create("in-beta")),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Rollover: the second key of the group works too.
    let r = send(
        &c,
        Method::GET,
        &format!("{base}/v1/dataObject"),
        Some("a-km-2"),
        None,
    )
    .await;
    assert_eq!(r.body, json!(["in-alpha"]));
    let r = send(
        &c,
        Method::GET,
        &format!("{base}/v1/dataObject"),
        Some("b-km"),
        None,
    )
    .await;
    assert_eq!(r.body, json!(["in-beta"]));
    // Any header is ignored by an open partition (gamma is open but not first: alpha decides).
    let r = send(
        &c,
        Method::GET,
        &format!("{}/v1/versionInfo", emu.partition_url("gamma")),
        Some("whatever"),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    // Wrong key, missing key, key of another group.
    send(
        &c,
        Method::GET,
        &format!("{base}/v1/dataObject"),
        Some("nope"),
        None,
    )
    .await
    .assert_error(401, 631);
    send(
        &c,
        Method::GET,
        &format!("{base}/v1/dataObject"),
        None,
        None,
    )
    .await
    .assert_error(401, 631);
    send(
        &c,
        Method::GET,
        &format!("{base}/v1/dataObject"),
        Some("a-svc"),
        None,
    )
    .await
    .assert_error(401, 631);
    let r = send(
        &c,
        Method::GET,
        &format!("{base}/v1/keystore/statistics"),
        Some("a-svc"),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    // Alpha's key-operation group has no keys: open.
    let r = send(
        &c,
        Method::GET,
        &format!("{base}/v1/generateRandom/16"),
        Some("a-km-1"),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(unb64(r.body["random"].as_str().unwrap()).len(), 16);

    // Explicit partition URLs.
    let r = send(
        &c,
        Method::GET,
        &format!("{}/v1/dataObject", emu.partition_url("beta")),
        Some("b-km"),
        None,
    )
    .await;
    assert_eq!(r.body, json!(["in-beta"]));
    send(
        &c,
        Method::GET,
        &format!("{}/v1/dataObject", emu.partition_url("beta")),
        Some("a-km-1"),
        None,
    )
    .await
    .assert_error(401, 631);
    let r = send(
        &c,
        Method::GET,
        &format!("{}/v1/dataObject", emu.partition_url("gamma")),
        None,
        None,
    )
    .await;
    assert_eq!(r.body, json!([]));
    let r = get(&c, &format!("{}/v1/dataObject", emu.partition_url("nope"))).await;
    assert_eq!(r.status, 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn admin_api_absent_without_faults() {
    let emu = start(EmulatorConfig::default()).await;
    let c = client();
    let r = post(
        &c,
        &format!("{}/_emulator/faults", emu.base_url()),
        &json!({"pathPrefix": "/v1"}),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = post(
        &c,
        &format!("{}/_emulator/clock/advance", emu.base_url()),
        &json!({"seconds": 60}),
    )
    .await;
    assert_eq!(r.status, 404);
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_injection() {
    let emu = start(EmulatorConfig {
        admin_api: true,
        ..EmulatorConfig::default()
    })
    .await;
    let c = client();
    let base = emu.base_url();
    let url = format!("{base}/v1/dataObject");
    let r = post(
        &c,
        &format!("{base}/_emulator/faults"),
        &json!({"pathPrefix": "/v1/dataObject", "method": "POST",
        "status": 503, "errorCode": 701, "times": 2}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = get(&c, &format!("{base}/_emulator/faults")).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    // GET is not affected.
    assert_eq!(get(&c, &url).await.status, 200);
    for _ in 0..2 {
        let r = post(&c, &url, &json!({"label": "f", "value": b64(b"x")})).await;
        assert_eq!((r.status, r.code()), (503, 701), "{}", r.body);
    }
    // The injected failures never reached the store.
    assert_eq!(get(&c, &url).await.body, json!([]));
    let r = post(&c, &url, &json!({"label": "f", "value": b64(b"x")})).await;
    assert_eq!(r.status, 201);

    // Dropped connection: no response at all.
    let r = post(
        &c,
        &format!("{base}/_emulator/faults"),
        &json!({"pathPrefix": "/v1/versionInfo",
        "dropConnection": true, "times": 1}),
    )
    .await;
    assert_eq!(r.status, 201);
    let res = c.get(format!("{base}/v1/versionInfo")).send().await;
    assert!(res.is_err(), "expected a dropped connection, got {res:?}");
    assert_eq!(get(&c, &format!("{base}/v1/versionInfo")).await.status, 200);

    // Latency, scoped to a partition that does not match: no delay; then clear.
    let r = post(
        &c,
        &format!("{base}/_emulator/faults"),
        &json!({"pathPrefix": "/v1", "latencyMs": 5000,
        "partition": "other"}),
    )
    .await;
    assert_eq!(r.status, 201);
    let t0 = std::time::Instant::now();
    assert_eq!(get(&c, &format!("{base}/v1/versionInfo")).await.status, 200);
    assert!(t0.elapsed() < std::time::Duration::from_secs(4));
    let r = post(
        &c,
        &format!("{base}/_emulator/faults"),
        &json!({"pathPrefix": "/v1/licenseInfo", "latencyMs": 200, "times": 1}),
    )
    .await;
    assert_eq!(r.status, 201);
    let t0 = std::time::Instant::now();
    assert_eq!(get(&c, &format!("{base}/v1/licenseInfo")).await.status, 200);
    assert!(t0.elapsed() >= std::time::Duration::from_millis(200));
    let r = send(
        &c,
        Method::DELETE,
        &format!("{base}/_emulator/faults"),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        get(&c, &format!("{base}/_emulator/faults")).await.body,
        json!([])
    );
    emu.shutdown().await;
}

struct Approver {
    key: KeyMaterial,
    spki: String,
}

impl Approver {
    fn new() -> Self {
        let key = crypto::generate(&KeySpec {
            algorithm: "EC",
            key_size: None,
            curve_oid: Some(P256),
            algorithm_oid: None,
        })
        .unwrap();
        let spki = b64(&key.public_key_der().unwrap());
        Self { key, spki }
    }
    fn sign(&self, msg: &[u8]) -> String {
        b64(&self
            .key
            .sign("SHA256_WITH_ECDSA", msg, SignatureType::Der)
            .unwrap())
    }
    fn auth(&self) -> Value {
        let ts = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        json!({"timestamp": ts, "timestampSignature": self.sign(ts.as_bytes()),
            "timestampDigestAlgorithm": "SHA-256", "approverPublicKey": self.spki})
    }
    async fn tasks(&self, c: &reqwest::Client, base: &str) -> Vec<Value> {
        let r = post(
            c,
            &format!("{base}/v1/filteredAllApprovalTask"),
            &self.auth(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["tasks"].as_array().unwrap().clone()
    }
    async fn approve(&self, c: &reqwest::Client, base: &str, task: &Value) -> Resp {
        let tbs = unb64(task["approvalToBeSigned"].as_str().unwrap());
        post(c, &format!("{base}/v1/approval"), &json!({"id": task["id"], "approvalToBeSigned": task["approvalToBeSigned"],
            "signature": self.sign(&tbs), "approvalDigestAlgorithm": "SHA-256", "approverPublicKey": self.spki})).await
    }
    async fn reject(&self, c: &reqwest::Client, base: &str, task: &Value) -> Resp {
        let mut body = self.auth();
        body["id"] = task["id"].clone();
        send(
            c,
            Method::DELETE,
            &format!("{base}/v1/task"),
            None,
            Some(body.to_string().into_bytes()),
        )
        .await
    }
}

fn quorum_policy(approvers: &[&Approver], quorum: u32, timelock: i64) -> Value {
    let rule = json!({"tokens": [{"name": "main", "timelock": timelock, "timeout": 0, "groups": [{
        "name": "main", "quorum": quorum,
        "approvals": approvers.iter().map(|a| json!({"type": "public_key", "value": a.spki})).collect::<Vec<_>>()
    }]}]});
    json!({"ruleUse": rule, "ruleBlock": null, "ruleUnblock": null, "ruleModify": null, "keyStatus": {"blocked": false}})
}

#[tokio::test]
async fn ska_two_of_three() {
    let emu = start(EmulatorConfig {
        admin_api: true,
        ..EmulatorConfig::default()
    })
    .await;
    let c = client();
    let base = emu.base_url();
    let (a1, a2, a3) = (Approver::new(), Approver::new(), Approver::new());
    let mut body = ec_key_body("ska");
    body["policy"] = quorum_policy(&[&a1, &a2, &a3], 2, 0);
    let r = post(&c, &format!("{base}/v1/key"), &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["json"]["policy"]["ruleUse"]["tokens"][0]["groups"][0]["quorum"],
        2
    );

    let sign_req = json!({"signRequest": {"signKeyName": "ska", "payload": b64(b"pay me"),
        "signatureAlgorithm": "SHA256_WITH_ECDSA", "metaData": b64(b"{\"app\":\"test\"}")}});
    // Sync sign needs approvals.
    post(&c, &format!("{base}/v1/synchronousSign"), &sign_req)
        .await
        .assert_error(400, 401);
    let r = post(&c, &format!("{base}/v1/sign"), &sign_req).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["signRequestId"].as_str().unwrap().to_owned();
    let st = get(&c, &format!("{base}/v1/request/{id}")).await;
    assert_eq!(st.body["status"], "PENDING");
    assert_eq!(st.body["notYetApprovedBy"].as_array().unwrap().len(), 3);

    // Approver 1 approves.
    let tasks = a1.tasks(&c, &base).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["requestId"], id.as_str());
    assert_eq!(tasks[0]["type"], "SIGN");
    // A wrong signature is refused.
    let bad = post(
        &c,
        &format!("{base}/v1/approval"),
        &json!({"id": tasks[0]["id"],
        "approvalToBeSigned": tasks[0]["approvalToBeSigned"], "signature": a1.sign(b"other"),
        "approvalDigestAlgorithm": "SHA-256", "approverPublicKey": a1.spki}),
    )
    .await;
    bad.assert_error(400, 403);
    // Another approver cannot use approver 1's task.
    a2.approve(&c, &base, &tasks[0])
        .await
        .assert_error(403, 400);
    assert_eq!(a1.approve(&c, &base, &tasks[0]).await.status, 200);
    let st = get(&c, &format!("{base}/v1/request/{id}")).await;
    assert_eq!(st.body["status"], "PENDING");
    assert_eq!(st.body["approvedBy"], json!([a1.spki]));
    assert!(a1.tasks(&c, &base).await.is_empty());

    // Approver 3 approves: quorum reached, executed inline.
    let tasks = a3.tasks(&c, &base).await;
    assert_eq!(a3.approve(&c, &base, &tasks[0]).await.status, 200);
    let st = get(&c, &format!("{base}/v1/request/{id}")).await;
    assert_eq!(st.body["status"], "EXECUTED", "{}", st.body);
    let sig = st.body["result"].as_str().unwrap();
    let v = post(
        &c,
        &format!("{base}/v1/verify"),
        &json!({"verifySignatureRequest": {"signKeyName": "ska",
        "payload": b64(b"pay me"), "signature": sig, "signatureAlgorithm": "SHA256_WITH_ECDSA"}}),
    )
    .await;
    assert_eq!(v.body["signatureValid"], true);
    // Approver 2's task is gone with the request.
    assert!(a2.tasks(&c, &base).await.is_empty());

    // Two rejections make 2-of-3 impossible.
    let r = post(&c, &format!("{base}/v1/sign"), &sign_req).await;
    let id2 = r.body["signRequestId"].as_str().unwrap().to_owned();
    let t = a1.tasks(&c, &base).await;
    assert_eq!(a1.reject(&c, &base, &t[0]).await.status, 200);
    assert_eq!(
        get(&c, &format!("{base}/v1/request/{id2}")).await.body["status"],
        "PENDING"
    );
    let t = a2.tasks(&c, &base).await;
    assert_eq!(a2.reject(&c, &base, &t[0]).await.status, 200);
    let st = get(&c, &format!("{base}/v1/request/{id2}")).await;
    assert_eq!(st.body["status"], "REJECTED");
    assert_eq!(st.body["rejectedBy"].as_array().unwrap().len(), 2);

    // Cancel a pending request.
    let r = post(&c, &format!("{base}/v1/sign"), &sign_req).await;
    let id3 = r.body["signRequestId"].as_str().unwrap().to_owned();
    let r = send(
        &c,
        Method::DELETE,
        &format!("{base}/v1/request/{id3}"),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        get(&c, &format!("{base}/v1/request/{id3}")).await.body["status"],
        "CANCELLED"
    );
    assert!(a3.tasks(&c, &base).await.is_empty());
    let r = post(
        &c,
        &format!("{base}/v1/filteredRequests"),
        &json!({"status": ["EXECUTED", "REJECTED"]}),
    )
    .await;
    assert_eq!(
        r.body["requests"].as_array().unwrap().len(),
        2,
        "{}",
        r.body
    );
    get(&c, &format!("{base}/v1/request/{}", uuid::Uuid::new_v4()))
        .await
        .assert_error(404, 651);

    // Timelock: 1-of-1 with 120 s; executes only once the emulator clock passes it.
    let mut body = ec_key_body("timelocked");
    body["policy"] = quorum_policy(&[&a1], 1, 120);
    assert_eq!(post(&c, &format!("{base}/v1/key"), &body).await.status, 201);
    let r = post(
        &c,
        &format!("{base}/v1/sign"),
        &json!({"signRequest": {"signKeyName": "timelocked",
        "payload": b64(b"later"), "signatureAlgorithm": "SHA256_WITH_ECDSA"}}),
    )
    .await;
    let id4 = r.body["signRequestId"].as_str().unwrap().to_owned();
    let t = a1.tasks(&c, &base).await;
    assert_eq!(a1.approve(&c, &base, &t[0]).await.status, 200);
    assert_eq!(
        get(&c, &format!("{base}/v1/request/{id4}")).await.body["status"],
        "APPROVED"
    );
    let r = post(
        &c,
        &format!("{base}/_emulator/clock/advance"),
        &json!({"seconds": 120}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let st = get(&c, &format!("{base}/v1/request/{id4}")).await;
    assert_eq!(st.body["status"], "EXECUTED", "{}", st.body);

    // Timeout: nobody approves within 60 s of the emulator clock -> EXPIRED, tasks gone.
    let mut body = ec_key_body("short-lived");
    body["policy"] = quorum_policy(&[&a2], 1, 0);
    body["policy"]["ruleUse"]["tokens"][0]["timeout"] = json!(60);
    assert_eq!(post(&c, &format!("{base}/v1/key"), &body).await.status, 201);
    let r = post(
        &c,
        &format!("{base}/v1/sign"),
        &json!({"signRequest": {"signKeyName": "short-lived",
        "payload": b64(b"x"), "signatureAlgorithm": "SHA256_WITH_ECDSA"}}),
    )
    .await;
    let id6 = r.body["signRequestId"].as_str().unwrap().to_owned();
    let t = a2.tasks(&c, &base).await;
    assert_eq!(t.len(), 1);
    let r = post(
        &c,
        &format!("{base}/_emulator/clock/advance"),
        &json!({"seconds": 120}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        get(&c, &format!("{base}/v1/request/{id6}")).await.body["status"],
        "EXPIRED"
    );
    a2.approve(&c, &base, &t[0]).await.assert_error(404, 652);
    assert!(a2.tasks(&c, &base).await.is_empty());

    // Deleting the key cancels its open requests.
    let r = post(&c, &format!("{base}/v1/sign"), &sign_req).await;
    let id5 = r.body["signRequestId"].as_str().unwrap().to_owned();
    assert_eq!(
        send(
            &c,
            Method::DELETE,
            &format!("{base}/v1/key/ska"),
            None,
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(
        get(&c, &format!("{base}/v1/request/{id5}")).await.body["status"],
        "CANCELLED"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn approver_management_and_onboarded_approver() {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let emu = start(EmulatorConfig::default()).await;
    let c = client();
    let base = emu.base_url();
    let r = post(
        &c,
        &format!("{base}/v1/approverManagement/create"),
        &json!({"approverName": "alice@example.test",
        "algorithm": "RSA", "keySize": 2048, "backupPassword": ["b", "k"], "validity": 30}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let code = r.body["oneTimeCode"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    let r = post(
        &c,
        &format!("{base}/v1/approverManagement/create"),
        &json!({"approverName": "alice@example.test",
        "keySize": 2048, "backupPassword": "x"}),
    )
    .await;
    r.assert_error(400, 632);
    let st = get(
        &c,
        &format!("{base}/v1/approverManagement/onboarding/status"),
    )
    .await;
    assert_eq!(st.body["pending"][0]["approverName"], "alice@example.test");

    let transport = "0123456789abcdef";
    let bad = post(
        &c,
        &format!("{base}/v1/approver/onboard"),
        &json!({"approverName": "alice@example.test",
        "oneTimeCode": "000000x", "transportPassword": transport}),
    )
    .await;
    bad.assert_error(400, 412);
    let chars: Vec<String> = code.chars().map(|c| c.to_string()).collect();
    let r = post(
        &c,
        &format!("{base}/v1/approver/onboard"),
        &json!({"approverName": "alice@example.test",
        "oneTimeCode": chars, "transportPassword": transport}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let key_bytes = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, transport.as_bytes());
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key_bytes.as_ref()).unwrap());
    let iv: [u8; 12] = unb64(r.body["initializationVector"].as_str().unwrap())
        .try_into()
        .unwrap();
    let mut buf = unb64(r.body["encryptedPayload"].as_str().unwrap());
    let plain = aead
        .open_in_place(Nonce::assume_unique_for_key(iv), Aad::empty(), &mut buf)
        .unwrap();
    let bundle = String::from_utf8(plain.to_vec()).unwrap();
    let section = |label: &str| -> Vec<u8> {
        let start = bundle.find(&format!("-----BEGIN {label}-----")).unwrap();
        let end = bundle.find(&format!("-----END {label}-----")).unwrap();
        let body: String = bundle[start..end].lines().skip(1).collect();
        unb64(&body)
    };
    let approver_key = crypto::import_plain(&crypto::PlainImport {
        algorithm: "RSA".into(),
        private_key: Some(zeroize::Zeroizing::new(section("PRIVATE KEY"))),
        ..Default::default()
    })
    .unwrap();
    let cert_b64 = b64(&section("CERTIFICATE"));
    // The one-time code is consumed.
    let again = post(
        &c,
        &format!("{base}/v1/approver/onboard"),
        &json!({"approverName": "alice@example.test",
        "oneTimeCode": code, "transportPassword": transport}),
    )
    .await;
    again.assert_error(400, 412);
    let st = get(
        &c,
        &format!("{base}/v1/approverManagement/onboarding/status"),
    )
    .await;
    assert_eq!(
        st.body["onboarded"][0]["approverCertificate"],
        cert_b64.as_str()
    );

    // A key governed by the onboarded approver (1-of-1).
    let mut body = ec_key_body("by-alice");
    body["policy"] = json!({"ruleUse": {"tokens": [{"name": "t", "timelock": 0, "timeout": 0, "groups": [{"name": "g",
        "quorum": 1, "approvals": [{"type": "onboarded_approver_certificate", "name": "alice@example.test"}]}]}]},
        "keyStatus": {"blocked": false}});
    let r = post(&c, &format!("{base}/v1/key"), &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(
        &c,
        &format!("{base}/v1/sign"),
        &json!({"signRequest": {"signKeyName": "by-alice",
        "payload": b64(b"m"), "signatureAlgorithm": "SHA256_WITH_ECDSA"}}),
    )
    .await;
    let id = r.body["signRequestId"].as_str().unwrap().to_owned();
    let rsa_sign = |m: &[u8]| {
        b64(&approver_key
            .sign("SHA256_WITH_RSA", m, SignatureType::Der)
            .unwrap())
    };
    let ts = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = post(
        &c,
        &format!("{base}/v1/filteredSignApprovalTask"),
        &json!({"timestamp": ts,
        "timestampSignature": rsa_sign(ts.as_bytes()), "timestampDigestAlgorithm": "SHA-256",
        "approverCertificate": cert_b64, "detailLevel": "level2"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let task = r.body["tasks"][0].clone();
    assert!(task.get("metaData").is_some());
    let tbs = unb64(task["approvalToBeSigned"].as_str().unwrap());
    let r = post(&c, &format!("{base}/v1/approval"), &json!({"id": task["id"], "approvalToBeSigned": task["approvalToBeSigned"],
        "signature": rsa_sign(&tbs), "approvalDigestAlgorithm": "SHA-256", "approverCertificate": cert_b64})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        get(&c, &format!("{base}/v1/request/{id}")).await.body["status"],
        "EXECUTED"
    );
    // A stale timestamp is refused.
    let old = (time::OffsetDateTime::now_utc() - time::Duration::minutes(11))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = post(
        &c,
        &format!("{base}/v1/filteredAllApprovalTask"),
        &json!({"timestamp": old,
        "timestampSignature": rsa_sign(old.as_bytes()), "approverCertificate": cert_b64}),
    )
    .await;
    r.assert_error(400, 404);
    let r = send(
        &c,
        Method::DELETE,
        &format!("{base}/v1/approverManagement/delete/alice@example.test"),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn tls_and_mtls() {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "client");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

    let emu = start(EmulatorConfig {
        tls: Some(km_tsb_emulator::TlsConfig {
            cert_chain_pem: server_cert.pem(),
            private_key_pem: server_key.serialize_pem(),
            client_ca_pem: Some(ca_cert.pem()),
            client_auth: km_tsb_emulator::ClientAuth::Need,
        }),
        ..EmulatorConfig::default()
    })
    .await;
    assert!(emu.base_url().starts_with("https://"));
    let ca = reqwest::Certificate::from_pem(ca_cert.pem().as_bytes()).unwrap();
    let identity = reqwest::Identity::from_pem(
        format!("{}{}", client_cert.pem(), client_key.serialize_pem()).as_bytes(),
    )
    .unwrap();
    let with_cert = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .identity(identity)
        .build()
        .unwrap();
    let r = with_cert
        .get(format!("{}/v1/versionInfo", emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let without = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    assert!(
        without
            .get(format!("{}/v1/versionInfo", emu.base_url()))
            .send()
            .await
            .is_err()
    );
    emu.shutdown().await;
}

/// Manual scale check (run with `--ignored`): 100 000 keys, then time the key list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: creates 100 000 keys"]
async fn list_100k_keys() {
    let emu = start(EmulatorConfig::default()).await;
    let c = client();
    let url = format!("{}/v1/key", emu.base_url());
    let mut tasks = Vec::new();
    for w in 0..16 {
        let c = c.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..100_000).step_by(16) {
                let r = post(
                    &c,
                    &url,
                    &json!({"label": format!("k{i:06}"), "algorithm": "AES", "keySize": 128,
                    "attributes": {"decrypt": true}}),
                )
                .await;
                assert_eq!(r.status, 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut best = std::time::Duration::MAX;
    for _ in 0..5 {
        let t0 = std::time::Instant::now();
        let r = get(&c, &url).await;
        best = best.min(t0.elapsed());
        assert_eq!(r.body.as_array().unwrap().len(), 100_000);
    }
    println!("GET /v1/key with 100000 keys: best of 5 = {best:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn certificates_and_wrapping() {
    let emu = start(EmulatorConfig::default()).await;
    let c = client();
    let base = emu.base_url();
    for label in ["ca", "leaf"] {
        let r = post(
            &c,
            &format!("{base}/v1/key"),
            &json!({"label": label, "algorithm": "RSA", "keySize": 2048,
            "attributes": {"sign": true}, "policy": null}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // Self-signed CA certificate.
    let r = post(
        &c,
        &format!("{base}/v1/certificate/synchronous/selfsign"),
        &json!({"signKeyName": "ca",
        "signatureAlgorithm": "SHA256_WITH_RSA", "validity": 30, "commonName": "Emulator Test CA",
        "keyUsage": ["KEY_CERT_SIGN", "CRL_SIGN"], "certificateAuthority": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ca_pem = r.body["certificate"].as_str().unwrap().to_owned();
    assert!(ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        get(&c, &format!("{base}/v1/certificate/ca")).await.body["certificate"],
        ca_pem.as_str()
    );
    // CSR for the leaf (wrapped form accepted too), issued by the CA.
    let r = post(&c, &format!("{base}/v1/certificate/synchronous/request"), &json!({"csrSignRequest": {
        "signKeyName": "leaf", "signatureAlgorithm": "SHA256_WITH_RSA", "validity": 10,
        "standardCertificateAttributes": {"commonName": "leaf.example.test", "organizationName": "KM"},
        "keyUsage": ["DIGITAL_SIGNATURE"], "extendedKeyUsage": ["SERVER_AUTH"]}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let csr = r.body["certificateSigningRequest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(csr.contains("CERTIFICATE REQUEST"));
    // The CSR call leaves a self-signed certificate on the key.
    assert_eq!(
        get(&c, &format!("{base}/v1/certificate/leaf")).await.status,
        200
    );
    let r = post(
        &c,
        &format!("{base}/v1/certificate/synchronous/sign"),
        &json!({"signKeyName": "ca",
        "signatureAlgorithm": "SHA256_WITH_RSA", "certificateSigningRequest": csr, "validity": 10,
        "keyUsage": ["DIGITAL_SIGNATURE"], "extendedKeyUsage": ["SERVER_AUTH"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let leaf_pem = r.body["certificate"].as_str().unwrap().to_owned();
    // Independent check with openssl when it is installed.
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok()
    {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        std::fs::write(dir.path().join("leaf.pem"), &leaf_pem).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(dir.path().join("ca.pem"))
            .arg(dir.path().join("leaf.pem"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        send(
            &c,
            Method::DELETE,
            &format!("{base}/v1/certificate/leaf"),
            None,
            None
        )
        .await
        .status,
        200
    );
    get(&c, &format!("{base}/v1/certificate/leaf"))
        .await
        .assert_error(404, 650);

    // Wrap an extractable AES key with an AES wrap key, unwrap it under a new label.
    let r = post(
        &c,
        &format!("{base}/v1/key"),
        &json!({"label": "kek", "algorithm": "AES", "keySize": 256,
        "attributes": {"unwrap": true, "wrap": true, "decrypt": true}}),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = post(
        &c,
        &format!("{base}/v1/key"),
        &json!({"label": "dek", "algorithm": "AES", "keySize": 256,
        "attributes": {"decrypt": true, "encrypt": true, "extractable": true}, "policy": null}),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = post(
        &c,
        &format!("{base}/v1/wrap"),
        &json!({"wrapKeyRequest": {"keyToBeWrapped": "kek",
        "wrapKeyName": "dek", "wrapMethod": "AES_WRAP"}}),
    )
    .await;
    r.assert_error(500, 701); // kek is not extractable
    let r = post(
        &c,
        &format!("{base}/v1/wrap"),
        &json!({"wrapKeyRequest": {"keyToBeWrapped": "dek",
        "wrapKeyName": "kek", "wrapMethod": "AES_WRAP"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let wrapped = r.body["wrappedKey"].as_str().unwrap().to_owned();
    let r = post(
        &c,
        &format!("{base}/v1/synchronousUnwrap"),
        &json!({"unwrapKeyRequest": {"wrappedKey": wrapped,
        "label": "dek2", "unwrapKeyName": "kek", "wrapMethod": "AES_WRAP", "keySize": 256,
        "attributes": {"decrypt": true, "encrypt": true}, "policy": null}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(
        &c,
        &format!("{base}/v1/encrypt"),
        &json!({"encryptRequest": {"encryptKeyName": "dek",
        "payload": b64(b"same key"), "cipherAlgorithm": "AES_GCM", "tagLength": 128}}),
    )
    .await;
    let r = post(&c, &format!("{base}/v1/synchronousDecrypt"), &json!({"decryptRequest": {"decryptKeyName": "dek2",
        "encryptedPayload": r.body["encryptedPayload"], "initializationVector": r.body["initializationVector"],
        "cipherAlgorithm": "AES_GCM", "tagLength": 128}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(unb64(r.body["payload"].as_str().unwrap()), b"same key");
    // HMAC round trip.
    let r = post(
        &c,
        &format!("{base}/v1/key"),
        &json!({"label": "mac", "algorithm": "HMACSHA256", "keySize": 256,
        "attributes": {"sign": true}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post(
        &c,
        &format!("{base}/v1/synchronousHmac"),
        &json!({"hmacRequest": {"keyName": "mac", "payload": b64(b"m")}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &c,
        &format!("{base}/v1/verify"),
        &json!({"verifyHmacRequest": {"keyName": "mac", "payload": b64(b"m"),
        "signature": r.body["keyedHash"]}}),
    )
    .await;
    assert_eq!(r.body["signatureValid"], true, "{}", r.body);
    emu.shutdown().await;
}

#[tokio::test]
async fn state_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || EmulatorConfig {
        storage: km_tsb_emulator::Storage::Directory(dir.path().join("state")),
        ..EmulatorConfig::default()
    };
    let c = client();
    let a1 = Approver::new();
    let emu = start(cfg()).await;
    let base = emu.base_url();
    // A second emulator cannot open the same directory.
    assert!(km_tsb_emulator::Emulator::start(cfg()).await.is_err());
    let mut body = ec_key_body("persisted");
    body["policy"] = quorum_policy(&[&a1], 1, 0);
    let r = post(&c, &format!("{base}/v1/key"), &body).await;
    let public_key = r.body["json"]["publicKey"].clone();
    assert_eq!(
        post(
            &c,
            &format!("{base}/v1/dataObject"),
            &json!({"label": "d", "value": b64(b"v")})
        )
        .await
        .status,
        201
    );
    let r = post(
        &c,
        &format!("{base}/v1/sign"),
        &json!({"signRequest": {"signKeyName": "persisted",
        "payload": b64(b"p"), "signatureAlgorithm": "SHA256_WITH_ECDSA"}}),
    )
    .await;
    let id = r.body["signRequestId"].as_str().unwrap().to_owned();
    emu.shutdown().await;

    let emu = start(cfg()).await;
    let base = emu.base_url();
    let r = post(
        &c,
        &format!("{base}/v1/key/attributes"),
        &json!({"label": "persisted"}),
    )
    .await;
    assert_eq!(r.body["json"]["publicKey"], public_key);
    assert_eq!(
        get(&c, &format!("{base}/v1/dataObject/d")).await.status,
        200
    );
    assert_eq!(
        get(&c, &format!("{base}/v1/request/{id}")).await.body["status"],
        "PENDING"
    );
    let t = a1.tasks(&c, &base).await;
    assert_eq!(a1.approve(&c, &base, &t[0]).await.status, 200);
    let st = get(&c, &format!("{base}/v1/request/{id}")).await;
    assert_eq!(st.body["status"], "EXECUTED", "{}", st.body);
    emu.shutdown().await;
}

#[tokio::test]
async fn plain_import() {
    let emu = start(EmulatorConfig::default()).await;
    let c = client();
    let base = emu.base_url();
    let local = crypto::generate(&KeySpec {
        algorithm: "EC",
        key_size: None,
        curve_oid: Some(P256),
        algorithm_oid: None,
    })
    .unwrap();
    let ex = local.export_plain();
    let private = b64(ex.private_key.as_ref().unwrap());
    let public = b64(ex.public_key.as_ref().unwrap());
    let r = post(
        &c,
        &format!("{base}/v1/key/import/plain"),
        &json!({"label": "imp", "algorithm": "EC", "curveOid": P256,
        "privateKey": private, "publicKey": public, "attributes": {"sign": true}, "policy": null}),
    )
    .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    assert_eq!(r.body["json"]["publicKey"], public.as_str());
    // A private key never overwrites.
    let r = post(
        &c,
        &format!("{base}/v1/key/import/plain"),
        &json!({"label": "imp", "algorithm": "EC", "curveOid": P256,
        "privateKey": private, "publicKey": public, "attributes": {"sign": true}, "policy": null}),
    )
    .await;
    r.assert_error(400, 608);
    // Sign in the emulator, verify locally with the original key.
    let r = post(
        &c,
        &format!("{base}/v1/synchronousSign"),
        &json!({"signRequest": {"signKeyName": "imp",
        "payload": b64(b"imported"), "signatureAlgorithm": "SHA256_WITH_ECDSA"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sig = unb64(r.body["signature"].as_str().unwrap());
    assert!(
        local
            .verify("SHA256_WITH_ECDSA", b"imported", &sig)
            .unwrap()
    );
    // Public-key-only import: verify works, sign is refused.
    let r = post(
        &c,
        &format!("{base}/v1/key/import/plain"),
        &json!({"label": "pub", "algorithm": "EC", "curveOid": P256,
        "publicKey": public, "attributes": {"verify": true}, "policy": null}),
    )
    .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    let r = post(&c, &format!("{base}/v1/verify"), &json!({"verifySignatureRequest": {"signKeyName": "pub",
        "payload": b64(b"imported"), "signature": b64(&sig), "signatureAlgorithm": "SHA256_WITH_ECDSA"}})).await;
    assert_eq!(r.body["signatureValid"], true, "{}", r.body);
    let r = post(
        &c,
        &format!("{base}/v1/synchronousSign"),
        &json!({"signRequest": {"signKeyName": "pub",
        "payload": b64(b"x"), "signatureAlgorithm": "SHA256_WITH_ECDSA"}}),
    )
    .await;
    assert!(r.status >= 400 && r.status != 404, "{}", r.body);
    emu.shutdown().await;
}

/// Reference §5: never-fulfillable block/unblock/modify rules are allowed and freeze their
/// action; a never-fulfillable ruleUse is refused. Blocking is not key invalidation.
#[tokio::test]
async fn frozen_rules_and_blocked_keys_in_statistics() {
    let emu = start(EmulatorConfig::default()).await;
    let c = client();
    let base = emu.base_url();
    let a1 = Approver::new();
    let over_quorum = json!({"tokens": [{"name": "main", "timelock": 0, "timeout": 0, "groups": [{
        "name": "main", "quorum": 2, "approvals": [{"type": "public_key", "value": a1.spki}]}]}]});

    // ruleBlock and ruleModify frozen by an over-quorum group: accepted.
    let mut body = ec_key_body("frozen");
    body["policy"] = json!({"ruleUse": null, "ruleBlock": over_quorum, "ruleUnblock": null,
        "ruleModify": over_quorum, "keyStatus": {"blocked": false}});
    let r = post(&c, &format!("{base}/v1/key"), &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["json"]["policy"]["ruleBlock"]["tokens"][0]["groups"][0]["quorum"],
        2
    );
    // The frozen actions: sync needs approvals that can never come, async is refused.
    let block = json!({"blockRequest": {"blockKeyName": "frozen"}});
    post(&c, &format!("{base}/v1/synchronousBlock"), &block)
        .await
        .assert_error(400, 401);
    post(&c, &format!("{base}/v1/block"), &block)
        .await
        .assert_error(400, 614);
    let modify = json!({"modifyRequest": {"modifyKeyName": "frozen",
        "policy": {"ruleUse": null, "ruleBlock": null, "ruleUnblock": null, "ruleModify": null}}});
    post(&c, &format!("{base}/v1/synchronousModify"), &modify)
        .await
        .assert_error(400, 401);
    post(&c, &format!("{base}/v1/modify"), &modify)
        .await
        .assert_error(400, 614);
    // ruleUse null: still usable.
    let r = post(
        &c,
        &format!("{base}/v1/synchronousSign"),
        &json!({"signRequest": {
        "signKeyName": "frozen", "payload": b64(b"x"), "signatureAlgorithm": "SHA256_WITH_ECDSA"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Freezing unblock through a modify is accepted as well.
    let mut body = ec_key_body("open");
    body["policy"] = json!({"ruleUse": null, "ruleBlock": null, "ruleUnblock": null,
        "ruleModify": null, "keyStatus": {"blocked": false}});
    assert_eq!(post(&c, &format!("{base}/v1/key"), &body).await.status, 201);
    let r = post(
        &c,
        &format!("{base}/v1/synchronousModify"),
        &json!({"modifyRequest": {
        "modifyKeyName": "open", "policy": {"ruleUse": null, "ruleBlock": null,
        "ruleUnblock": over_quorum, "ruleModify": null}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // A never-fulfillable ruleUse is refused, in both forms.
    for frozen_use in [over_quorum.clone(), json!({"tokens": []})] {
        let mut body = ec_key_body("unusable");
        body["policy"] = json!({"ruleUse": frozen_use, "ruleBlock": null, "ruleUnblock": null,
            "ruleModify": null, "keyStatus": {"blocked": false}});
        post(&c, &format!("{base}/v1/key"), &body)
            .await
            .assert_error(400, 600);
    }

    // A blocked key is not an invalidated key.
    let r = post(
        &c,
        &format!("{base}/v1/synchronousBlock"),
        &json!({"blockRequest": {"blockKeyName": "open"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = get(&c, &format!("{base}/v1/keystore/statistics")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["invalidatedKeys"], 0, "{}", r.body);
    assert_eq!(r.body["privateKeys"], 2, "{}", r.body);
    emu.shutdown().await;
}
