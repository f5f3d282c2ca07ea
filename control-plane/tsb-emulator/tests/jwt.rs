//! Bearer JWT (reference §2): partitions configured with a JWT check accept a valid token and
//! answer 401 with 406 (no token) or 617 (any invalid token); JWT and API keys combine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

mod common;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use km_tsb_emulator::{ApiKeyGroups, EmulatorConfig, JwtConfig, PartitionConfig};
use serde_json::{Value, json};

const ISS: &str = "https://idp.example.test";
const AUD: &str = "tsb-emulator";
const SECRET: &[u8] = b"a shared secret of at least 32 bytes!";

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "tenant-1", "iat": now(), "exp": now() + 300})
}

fn token(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

fn hs(claims: &Value) -> String {
    token(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET).unwrap(),
        claims,
    )
}

async fn call(c: &reqwest::Client, url: &str, bearer: Option<&str>, api_key: Option<&str>) -> Resp {
    let mut rb = c.get(url);
    if let Some(t) = bearer {
        rb = rb.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(k) = api_key {
        rb = rb.header("X-API-KEY", k);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    Resp { status, body }
}

#[tokio::test]
async fn bearer_jwt_is_checked() {
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let rsa = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let service_key = "svc-key";
    let emu = start(EmulatorConfig {
        partitions: vec![
            PartitionConfig::open("hs").with_jwt(JwtConfig::hs256(SECRET, ISS, AUD)),
            PartitionConfig::new(
                "es",
                ApiKeyGroups {
                    service: vec![service_key.into()],
                    ..ApiKeyGroups::default()
                },
            )
            .with_jwt(JwtConfig::es256(&ec.public_key_pem(), ISS, AUD).with_leeway_secs(0)),
            PartitionConfig::open("rs").with_jwt(JwtConfig::rs256(&rsa.public_key_pem(), ISS, AUD)),
            PartitionConfig::open("plain"),
        ],
        ..EmulatorConfig::default()
    })
    .await;
    let c = client();
    let url = |p: &str| format!("{}/v1/versionInfo", emu.partition_url(p));

    // HS256: a valid token is accepted, on reads and on writes.
    let good = hs(&claims());
    let r = call(&c, &url("hs"), Some(&good), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c
        .post(format!("{}/v1/key", emu.partition_url("hs")))
        .bearer_auth(&good)
        .json(&json!({"label": "k", "algorithm": "AES", "keySize": 256,
            "attributes": {"decrypt": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    // Missing (or not a bearer token): 406.
    call(&c, &url("hs"), None, None)
        .await
        .assert_error(401, 406);
    let r = c
        .get(url("hs"))
        .header("Authorization", "Basic dXNlcjpwdw==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["errorCode"], 406);

    // Invalid tokens: 617.
    let mut expired = claims();
    expired["exp"] = json!(now() - 3600);
    let mut wrong_aud = claims();
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = claims();
    wrong_iss["iss"] = json!("https://evil.test");
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut not_yet = claims();
    not_yet["nbf"] = json!(now() + 3600);
    let other_secret = token(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another secret, also long enough").unwrap(),
        &claims(),
    );
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let mut c2 = claims();
        c2["sub"] = json!("tenant-2");
        let forged = hs(&c2);
        let forged_payload = forged.split('.').nth(1).unwrap();
        format!("{}.{}.{}", parts[0], forged_payload, parts[2])
    };
    for (what, t) in [
        ("expired", hs(&expired)),
        ("wrong audience", hs(&wrong_aud)),
        ("wrong issuer", hs(&wrong_iss)),
        ("no exp", hs(&no_exp)),
        ("not yet valid", hs(&not_yet)),
        ("bad signature", other_secret),
        ("tampered payload", tampered),
        ("garbage", "not.a.jwt".to_string()),
    ] {
        let r = call(&c, &url("hs"), Some(&t), None).await;
        assert_eq!((r.status, r.code()), (401, 617), "{what}: {}", r.body);
        assert_eq!(r.body["reason"], "res.error.invalid.access.token", "{what}");
        assert!(
            !r.body["message"].as_str().unwrap().contains(&t),
            "the token is not echoed"
        );
    }

    // ES256 partition: only ES256 tokens with the right key; combined with its API key.
    let es_key = EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap();
    let es_good = token(Algorithm::ES256, &es_key, &claims());
    let r = call(&c, &url("es"), Some(&es_good), Some(service_key)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // JWT without the API key: 631; API key without JWT: 406.
    call(&c, &url("es"), Some(&es_good), None)
        .await
        .assert_error(401, 631);
    call(&c, &url("es"), None, Some(service_key))
        .await
        .assert_error(401, 406);
    // An HS256 token (even one made with the public key as secret) is refused: algorithm pinned.
    let confused = token(
        Algorithm::HS256,
        &EncodingKey::from_secret(ec.public_key_pem().as_bytes()).unwrap(),
        &claims(),
    );
    call(&c, &url("es"), Some(&confused), Some(service_key))
        .await
        .assert_error(401, 617);
    call(&c, &url("es"), Some(&good), Some(service_key))
        .await
        .assert_error(401, 617);
    // Leeway 0 on this partition: a token expired a few seconds ago is refused.
    let mut just_expired = claims();
    just_expired["exp"] = json!(now() - 5);
    call(
        &c,
        &url("es"),
        Some(&token(Algorithm::ES256, &es_key, &just_expired)),
        Some(service_key),
    )
    .await
    .assert_error(401, 617);

    // RS256 partition.
    let rs_key = EncodingKey::from_rsa_pem(rsa.serialize_pem().as_bytes()).unwrap();
    let r = call(
        &c,
        &url("rs"),
        Some(&token(Algorithm::RS256, &rs_key, &claims())),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    call(&c, &url("rs"), Some(&es_good), None)
        .await
        .assert_error(401, 617);

    // A partition without JWT configuration ignores the header.
    let r = call(&c, &url("plain"), None, None).await;
    assert_eq!(r.status, 200);
    emu.shutdown().await;
}
