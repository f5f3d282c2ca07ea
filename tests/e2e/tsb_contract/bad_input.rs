//! Bad input sent with raw reqwest (what a buggy or hostile client would send): the emulator
//! answers with the TSB error body and a 4xx status, never a 5xx.

use serde_json::{Value, json};

use super::{emulator, p256_key};

/// Sends `body` (raw bytes) and returns (status, parsed error body).
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<&[u8]>,
) -> (u16, Value) {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_vec());
    }
    let response = request.send().await.expect("emulator answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

#[track_caller]
fn assert_error(answer: &(u16, Value), status: u16, code: u64, reason: &str) {
    let (got_status, body) = answer;
    assert!(*got_status < 500, "5xx for bad input: {answer:?}");
    assert_eq!(*got_status, status, "{body}");
    assert_eq!(body["errorCode"].as_u64(), Some(code), "{body}");
    assert_eq!(body["reason"].as_str(), Some(reason), "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn bad_input_gets_tsb_errors_and_never_a_5xx() {
    let emu = emulator().await;
    let base = emu.base_url();
    let http = reqwest::Client::new();
    let post = reqwest::Method::POST;
    let url = |path: &str| format!("{base}{path}");

    // Malformed JSON: 400 / 621 on every body-taking endpoint family.
    for path in [
        "/v1/key",
        "/v1/dataObject",
        "/v1/synchronousSign",
        "/v1/encrypt",
        "/v1/approval",
    ] {
        let answer = send(&http, post.clone(), &url(path), Some(b"{\"label\": ")).await;
        assert_error(&answer, 400, 621, "res.error.invalid.json");
    }
    let answer = send(&http, post.clone(), &url("/v1/key"), Some(b"[1, 2]")).await;
    assert!(
        answer.0 == 400 && answer.1["errorCode"].as_u64().is_some(),
        "{answer:?}"
    );

    // Unknown algorithm: 400 / 613 invalid.key.type.
    let body = json!({"label": "k", "algorithm": "NOT-AN-ALGORITHM", "attributes": {"sign": true}, "policy": null});
    let answer = send(
        &http,
        post.clone(),
        &url("/v1/key"),
        Some(body.to_string().as_bytes()),
    )
    .await;
    assert_error(&answer, 400, 613, "res.error.invalid.key.type");

    // Wrong attribute combinations: 400 / 606 key.attributes.invalid.
    let none_usable = json!({"label": "k", "algorithm": "EC", "curveOid": "1.2.840.10045.3.1.7",
        "attributes": {"sign": false, "decrypt": false, "unwrap": false}, "policy": null});
    let extractable_ska = json!({"label": "k", "algorithm": "EC", "curveOid": "1.2.840.10045.3.1.7",
        "attributes": {"sign": true, "extractable": true},
        "policy": {"ruleUse": null, "ruleBlock": null, "ruleUnblock": null, "ruleModify": null,
                   "keyStatus": {"blocked": false}}});
    let bip32_on_rsa = json!({"label": "k", "algorithm": "RSA", "keySize": 2048,
        "attributes": {"sign": true, "bip32": true, "derive": true}, "policy": null});
    for body in [none_usable, extractable_ska, bip32_on_rsa] {
        let answer = send(
            &http,
            post.clone(),
            &url("/v1/key"),
            Some(body.to_string().as_bytes()),
        )
        .await;
        assert_error(&answer, 400, 606, "res.error.key.attributes.invalid");
    }

    // Missing mandatory field, bad key size, bad base64, bad key name.
    let answer = send(
        &http,
        post.clone(),
        &url("/v1/key"),
        Some(br#"{"algorithm": "AES", "keySize": 256, "attributes": {"decrypt": true}}"#),
    )
    .await;
    assert_error(&answer, 400, 600, "res.error.input.validation.failed");
    let answer = send(&http, post.clone(), &url("/v1/key"), Some(br#"{"label": "k", "algorithm": "AES", "keySize": 100, "attributes": {"decrypt": true}, "policy": null}"#)).await;
    assert_error(&answer, 400, 603, "res.error.input.keysize");
    let answer = send(&http, post.clone(), &url("/v1/key"), Some(br#"{"label": "", "algorithm": "AES", "keySize": 256, "attributes": {"decrypt": true}, "policy": null}"#)).await;
    assert!(answer.0 == 400, "{answer:?}");

    let c = super::client(&base);
    c.create_key(&p256_key("k")).await.expect("key");
    let bad_payload = json!({"signRequest": {"signKeyName": "k", "signatureAlgorithm": "SHA256_WITH_ECDSA", "payload": "%%% not base64 %%%"}});
    let answer = send(
        &http,
        post.clone(),
        &url("/v1/synchronousSign"),
        Some(bad_payload.to_string().as_bytes()),
    )
    .await;
    assert_error(&answer, 400, 612, "res.error.invalid.payload");
    let unwrapped =
        json!({"signKeyName": "k", "signatureAlgorithm": "SHA256_WITH_ECDSA", "payload": "AAAA"});
    let answer = send(
        &http,
        post.clone(),
        &url("/v1/synchronousSign"),
        Some(unwrapped.to_string().as_bytes()),
    )
    .await;
    assert!(
        answer.0 == 400 && answer.1["errorCode"].as_u64().is_some(),
        "missing wrapper: {answer:?}"
    );
    let unknown_alg = json!({"signRequest": {"signKeyName": "k", "signatureAlgorithm": "SHA999_WITH_MAGIC", "payload": "AAAA"}});
    let answer = send(
        &http,
        post.clone(),
        &url("/v1/synchronousSign"),
        Some(unknown_alg.to_string().as_bytes()),
    )
    .await;
    assert_error(
        &answer,
        400,
        607,
        "res.error.algorithm.not.supported.by.key",
    );

    // Unknown JSON fields are ignored (wire decision), not refused.
    let extra = json!({"label": "extra-fields", "algorithm": "AES", "keySize": 128,
        "attributes": {"decrypt": true}, "policy": null, "somethingNew": 1});
    let answer = send(
        &http,
        post.clone(),
        &url("/v1/key"),
        Some(extra.to_string().as_bytes()),
    )
    .await;
    assert_eq!(answer.0, 201, "{answer:?}");

    // Random length out of range, bad request id, unknown request.
    let answer = send(
        &http,
        reqwest::Method::GET,
        &url("/v1/generateRandom/0"),
        None,
    )
    .await;
    assert_error(&answer, 400, 619, "res.error.invalid.number.range");
    let answer = send(
        &http,
        reqwest::Method::GET,
        &url("/v1/generateRandom/abc"),
        None,
    )
    .await;
    assert_error(&answer, 400, 619, "res.error.invalid.number.range");
    let answer = send(
        &http,
        reqwest::Method::GET,
        &url("/v1/request/not-a-uuid"),
        None,
    )
    .await;
    assert_error(&answer, 400, 609, "res.error.invalid.uuid");
    let answer = send(
        &http,
        reqwest::Method::GET,
        &url("/v1/request/8d0f7a3e-0d4e-4c4b-9a3e-2f1e0c9b8a7d"),
        None,
    )
    .await;
    assert_error(&answer, 404, 651, "res.error.request.not.existent");

    // Approval calls with a stale timestamp or garbage signature.
    let stale = json!({"timestamp": "2001-01-01T00:00:00Z", "timestampSignature": "AAAA",
        "approverPublicKey": "AAAA", "timestampDigestAlgorithm": "SHA-256"});
    let answer = send(
        &http,
        post.clone(),
        &url("/v1/filteredAllApprovalTask"),
        Some(stale.to_string().as_bytes()),
    )
    .await;
    assert_error(&answer, 400, 404, "res.error.input.timestamp.off");

    // Unknown route: 404, not a 5xx.
    let answer = send(
        &http,
        reqwest::Method::GET,
        &url("/v1/noSuchEndpoint"),
        None,
    )
    .await;
    assert_eq!(answer.0, 404, "{answer:?}");
}
