//! Raw wire shapes the SDK cannot see (it accepts 200 and 201 alike and ignores unknown fields):
//! status codes and JSON bodies exactly as the reference and the wire decisions fix them.

use serde_json::{Value, json};

use super::{b64, emulator, p256_approver};

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("emulator answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn statuses_and_bodies_follow_the_reference() {
    let emu = emulator().await;
    let base = emu.base_url();
    let http = reqwest::Client::new();
    let (get, post, put, delete) = (
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    );
    let url = |path: &str| format!("{base}{path}");

    let (status, body) = call(&http, get.clone(), url("/v1/versionInfo"), None).await;
    assert_eq!(status, 200);
    assert!(
        body["Version"]
            .as_str()
            .is_some_and(|v| v.contains("keymanager-emulator")),
        "{body}"
    );

    let (status, body) = call(&http, get.clone(), url("/v1/keystore/statistics"), None).await;
    assert_eq!(status, 200);
    for field in [
        "privateKeys",
        "publicKeys",
        "secretKeys",
        "certificates",
        "dataObjects",
        "invalidatedKeys",
        "usedSize",
        "maxSize",
        "remainingObjects",
    ] {
        assert!(body[field].is_u64(), "statistics lack {field}: {body}");
    }

    // Key creation: 201 and the full descriptor; the password as a char array.
    let create = json!({"label": "wire-key", "algorithm": "EC", "curveOid": "1.2.840.10045.3.1.7",
        "password": ["p", "w", "1"], "attributes": {"sign": true}, "policy": null});
    let (status, body) = call(&http, post.clone(), url("/v1/key"), Some(create)).await;
    assert_eq!(status, 201, "{body}");
    for field in ["xml", "xmlSignature", "attestationKeyName"] {
        assert!(body[field].is_string(), "descriptor lacks {field}: {body}");
    }
    assert_eq!(body["json"]["label"], "wire-key");
    assert!(body["json"]["policy"].is_null());
    // ... and the same password as a plain string is accepted too (Jackson char[]).
    let sign = |password: Value| {
        json!({"signRequest": {"signKeyName": "wire-key",
        "signatureAlgorithm": "SHA256_WITH_ECDSA", "payload": b64(b"x"), "keyPassword": password}})
    };
    let (status, body) = call(
        &http,
        post.clone(),
        url("/v1/synchronousSign"),
        Some(sign(json!("pw1"))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["signature"].is_string());
    let (status, _) = call(
        &http,
        post.clone(),
        url("/v1/synchronousSign"),
        Some(sign(json!(["p", "w", "1"]))),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(&http, get.clone(), url("/v1/key"), None).await;
    assert_eq!((status, body), (200, json!(["wire-key"])));

    // Data objects: 201 {label} / 200 {label} / list of labels / 200 / 404 + 653.
    let (status, body) = call(
        &http,
        post.clone(),
        url("/v1/dataObject"),
        Some(json!({"label": "wire-object", "value": b64(b"v1")})),
    )
    .await;
    assert_eq!((status, body), (201, json!({"label": "wire-object"})));
    let (status, body) = call(
        &http,
        put.clone(),
        url("/v1/dataObject/wire-object"),
        Some(json!({"value": b64(b"v2")})),
    )
    .await;
    assert_eq!((status, body), (200, json!({"label": "wire-object"})));
    let (status, body) = call(&http, get.clone(), url("/v1/dataObject/wire-object"), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"label": "wire-object", "value": b64(b"v2"), "modifiable": true,
        "destroyable": true, "private": true})
    );
    let (status, body) = call(&http, get.clone(), url("/v1/dataObject"), None).await;
    assert_eq!((status, body), (200, json!(["wire-object"])));
    let (status, _) = call(
        &http,
        delete.clone(),
        url("/v1/dataObject/wire-object"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(&http, get.clone(), url("/v1/dataObject/wire-object"), None).await;
    assert_eq!(status, 404);
    let keys: Vec<&String> = body.as_object().expect("error object").keys().collect();
    assert_eq!(
        keys.len(),
        3,
        "error body is exactly errorCode/reason/message: {body}"
    );
    assert_eq!(body["errorCode"], 653);
    assert_eq!(body["reason"], "res.error.data.object.not.existent");

    // Async submission: 201 {"signRequestId"}; request status has every field.
    let approver = p256_approver();
    let ska = json!({"label": "wire-ska", "algorithm": "EC", "curveOid": "1.2.840.10045.3.1.7",
        "attributes": {"sign": true},
        "policy": {"ruleUse": {"tokens": [{"name": "t", "timelock": 0, "timeout": 0, "groups": [
            {"name": "g", "quorum": 1, "approvals": [
                {"type": "public_key", "name": "a", "value": b64(approver.public_key_spki_der())}]}]}]},
            "ruleBlock": null, "ruleUnblock": null, "ruleModify": null, "keyStatus": {"blocked": false}}});
    let (status, body) = call(&http, post.clone(), url("/v1/key"), Some(ska)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["json"]["policy"]["keyStatus"]["blocked"], false,
        "{body}"
    );
    let request = json!({"signRequest": {"signKeyName": "wire-ska", "signatureAlgorithm": "SHA256_WITH_ECDSA",
        "payload": b64(b"async")}});
    let (status, body) = call(&http, post.clone(), url("/v1/sign"), Some(request)).await;
    assert_eq!(status, 201, "{body}");
    let id = body["signRequestId"]
        .as_str()
        .expect("signRequestId")
        .to_owned();
    let (status, body) = call(&http, get.clone(), url(&format!("/v1/request/{id}")), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["status"], "PENDING");
    assert!(
        body["executionTime"].is_null() && body["result"].is_null(),
        "{body}"
    );
    assert_eq!(body["approvedBy"], json!([]));
    assert_eq!(body["rejectedBy"], json!([]));
    assert_eq!(
        body["notYetApprovedBy"],
        json!([b64(approver.public_key_spki_der())])
    );
    let (status, body) = call(
        &http,
        post.clone(),
        url("/v1/filteredRequests"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["requests"][0]["id"], id.as_str(), "{body}");
    let (status, _) = call(
        &http,
        delete.clone(),
        url(&format!("/v1/request/{id}")),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = call(&http, get, url(&format!("/v1/request/{id}")), None).await;
    assert_eq!(body["status"], "CANCELLED");
}
