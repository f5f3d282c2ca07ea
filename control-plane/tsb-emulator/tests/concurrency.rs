//! Correctness under concurrency: operations on one partition run in parallel (crypto outside
//! the partition lock), so counters, label uniqueness and request outcomes must hold when many
//! calls race. Nothing here measures time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

mod common;

use common::*;
use km_tsb_emulator::EmulatorConfig;
use serde_json::{Value, json};

const P256: &str = "1.2.840.10045.3.1.7";

async fn create(c: &reqwest::Client, base: &str, body: Value) {
    let r = post(c, &format!("{base}/v1/key"), &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn usage_count(c: &reqwest::Client, base: &str, label: &str) -> u64 {
    let r = post(
        c,
        &format!("{base}/v1/key/attributes"),
        &json!({ "label": label }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["json"]["keyUsageCount"].as_u64().unwrap()
}

/// Runs `n` copies of `f(i)` at once and returns their results in order.
async fn concurrently<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_signs_on_one_key_all_count() {
    let emu = start(EmulatorConfig::default()).await;
    let c = client();
    let base = emu.base_url();
    // P-256 runs inline on the async workers, RSA on the blocking pool: both paths.
    create(
        &c,
        &base,
        json!({"label": "ec", "algorithm": "EC", "curveOid": P256,
            "attributes": {"sign": true}, "policy": null}),
    )
    .await;
    create(
        &c,
        &base,
        json!({"label": "rsa", "algorithm": "RSA", "keySize": 2048,
            "attributes": {"sign": true}, "policy": null}),
    )
    .await;
    for (label, alg) in [("ec", "SHA256_WITH_ECDSA"), ("rsa", "SHA256_WITH_RSA")] {
        let results = concurrently(32, |i| {
            let c = c.clone();
            let base = base.clone();
            async move {
                let payload = b64(format!("message {i}").as_bytes());
                let r = post(
                    &c,
                    &format!("{base}/v1/synchronousSign"),
                    &json!({"signRequest": {"signKeyName": label, "payload": payload,
                        "signatureAlgorithm": alg}}),
                )
                .await;
                (payload, r)
            }
        })
        .await;
        for (payload, r) in &results {
            assert_eq!(r.status, 200, "{label}: {}", r.body);
            // Each signature belongs to its own payload.
            let v = post(
                &c,
                &format!("{base}/v1/verify"),
                &json!({"verifySignatureRequest": {"signKeyName": label, "payload": payload,
                    "signature": r.body["signature"], "signatureAlgorithm": alg}}),
            )
            .await;
            assert_eq!(v.body["signatureValid"], true, "{label}: {}", v.body);
        }
        assert_eq!(usage_count(&c, &base, label).await, 32, "{label}");
    }
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_and_unwraps_of_one_label_yield_one_key() {
    let emu = start(EmulatorConfig::default()).await;
    let c = client();
    let base = emu.base_url();

    // Key generation runs without the lock: the label is re-checked when inserting.
    let results = concurrently(8, |_| {
        let c = c.clone();
        let base = base.clone();
        async move {
            post(
                &c,
                &format!("{base}/v1/key"),
                &json!({"label": "contended", "algorithm": "EC", "curveOid": P256,
                    "attributes": {"sign": true}, "policy": null}),
            )
            .await
        }
    })
    .await;
    let created = results.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 1, "exactly one create wins");
    for r in results.iter().filter(|r| r.status != 201) {
        r.assert_error(400, 608);
    }

    // Same for unwraps racing for one new label.
    create(
        &c,
        &base,
        json!({"label": "kek", "algorithm": "AES", "keySize": 256,
            "attributes": {"unwrap": true, "decrypt": true}}),
    )
    .await;
    create(
        &c,
        &base,
        json!({"label": "dek", "algorithm": "AES", "keySize": 256,
            "attributes": {"decrypt": true, "extractable": true}, "policy": null}),
    )
    .await;
    let r = post(
        &c,
        &format!("{base}/v1/wrap"),
        &json!({"wrapKeyRequest": {"keyToBeWrapped": "dek", "wrapKeyName": "kek",
            "wrapMethod": "AES_WRAP"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let wrapped = r.body["wrappedKey"].as_str().unwrap().to_owned();
    let results = concurrently(8, |_| {
        let c = c.clone();
        let base = base.clone();
        let wrapped = wrapped.clone();
        async move {
            post(
                &c,
                &format!("{base}/v1/synchronousUnwrap"),
                &json!({"unwrapKeyRequest": {"wrappedKey": wrapped, "label": "dek-copy",
                    "unwrapKeyName": "kek", "wrapMethod": "AES_WRAP", "keySize": 256,
                    "attributes": {"decrypt": true}, "policy": null}}),
            )
            .await
        }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.status == 201).count(), 1);
    for r in results.iter().filter(|r| r.status != 201) {
        r.assert_error(400, 608);
    }
    // Only the successful unwrap counts as a use of the unwrapping key.
    assert_eq!(usage_count(&c, &base, "kek").await, 1);
    let list = get(&c, &format!("{base}/v1/key")).await;
    let labels: Vec<String> = serde_json::from_value(list.body).unwrap();
    assert_eq!(
        labels.iter().filter(|l| l.as_str() == "dek-copy").count(),
        1
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_async_requests_all_execute() {
    let emu = start(EmulatorConfig::default()).await;
    let c = client();
    let base = emu.base_url();
    // An SKA key whose ruleUse is null: every asynchronous request executes at once.
    create(
        &c,
        &base,
        json!({"label": "ska", "algorithm": "RSA", "keySize": 2048,
            "attributes": {"sign": true},
            "policy": {"ruleUse": null, "ruleBlock": null, "ruleUnblock": null,
                "ruleModify": null, "keyStatus": {"blocked": false}}}),
    )
    .await;
    let ids = concurrently(16, |i| {
        let c = c.clone();
        let base = base.clone();
        async move {
            let r = post(
                &c,
                &format!("{base}/v1/sign"),
                &json!({"signRequest": {"signKeyName": "ska",
                    "payload": b64(format!("async {i}").as_bytes()),
                    "signatureAlgorithm": "SHA256_WITH_RSA"}}),
            )
            .await;
            assert_eq!(r.status, 201, "{}", r.body);
            r.body["signRequestId"].as_str().unwrap().to_owned()
        }
    })
    .await;
    for id in &ids {
        // Executed before the submission was answered.
        let r = get(&c, &format!("{base}/v1/request/{id}")).await;
        assert_eq!(r.body["status"], "EXECUTED", "{}", r.body);
        assert!(!r.body["result"].as_str().unwrap().is_empty());
    }
    assert_eq!(usage_count(&c, &base, "ska").await, 16);
    emu.shutdown().await;
}
