//! Key attestation over the REST API against the real TSB emulator: the zip of an EC key's
//! attestation, its signature over the XML verified with `openssl dgst`, versions of a rotated
//! key, a readonly user downloading, another tenant and unknown keys answered 404 problem+json,
//! and a destroyed key refused with 409 `key_destroyed`.

use std::io::{Cursor, Read as _};
use std::path::Path;
use std::process::Command;

use km_core::Clock as _;
use km_domain::TenantId;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::api::{ApiWorld, Auth, PASSWORD, ROOT_PASSWORD};

const DAY: u64 = 24 * 60 * 60;

fn attestation_path(tenant: &str, label: &str) -> String {
    format!("/api/v1/tenants/{tenant}/keys/{label}/attestation")
}

/// A GET whose answer is kept as bytes (a zip is not text).
async fn download(world: &ApiWorld, path: &str, auth: &Auth) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = world.http.get(format!("{}{path}", world.base));
    request = match auth {
        Auth::Session { cookie, csrf } => request
            .header("cookie", format!("km_session={cookie}"))
            .header("x-csrf-token", csrf),
        Auth::Bearer(token) => request.bearer_auth(token),
        Auth::RawAuthorization(value) => request.header("authorization", value),
        Auth::Anonymous => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

/// Unpacks the zip into `dir`; returns the entry names, sorted.
fn unzip_into(zip: &[u8], dir: &Path) -> Vec<String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
    let mut names = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let name = file.name().unwrap().into_owned();
        let mut data = Vec::new();
        file.read_to_end(&mut data).unwrap();
        std::fs::write(dir.join(&name), data).unwrap();
        names.push(name);
    }
    names.sort_unstable();
    names
}

/// Downloads the attestation at `path` as `auth`, checks the zip's entries for the HSM label
/// `label`, the signature over the XML with `openssl dgst`, and returns the XML.
async fn verified_attestation(world: &ApiWorld, path: &str, auth: &Auth, label: &str) -> String {
    let (status, headers, zip) = download(world, path, auth).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&zip));
    assert_eq!(header(&headers, "content-type"), "application/zip");
    assert_eq!(
        header(&headers, "content-disposition"),
        format!("attachment; filename=\"{label}-attestation.zip\"")
    );
    let dir = tempfile::tempdir().unwrap();
    let names = unzip_into(&zip, dir.path());
    let mut expected = vec![
        "PrimusHSM_Attestation.crt".to_owned(),
        "README".to_owned(),
        format!("{label}.pem"),
        format!("{label}.sig"),
        format!("{label}.xml"),
    ];
    expected.sort_unstable();
    assert_eq!(names, expected);

    // The emulator signs with ECDSA P-256 over SHA-256 (DER), like a Primus HSM's attestation key.
    let file = |suffix: &str| dir.path().join(format!("{label}.{suffix}"));
    let output = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(file("pem"))
        .arg("-signature")
        .arg(file("sig"))
        .arg(file("xml"))
        .output()
        .expect("openssl runs");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && said.contains("Verified OK"),
        "openssl dgst: {said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The certificate of the attestation key is a real X.509 certificate.
    let output = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(dir.path().join("PrimusHSM_Attestation.crt"))
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl x509: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(file("xml")).unwrap()
}

#[tokio::test]
async fn an_ec_keys_attestation_verifies_and_is_only_for_the_tenant() {
    let world = ApiWorld::start().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    let created = world
        .call(
            Method::POST,
            "/api/v1/tenants/acme/keys",
            &root,
            Some(
                json!({"label": "attested", "algorithm": "EC", "curve": "P-256",
                        "attributes": {"sign": true, "verify": true}}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);

    let path = attestation_path("acme", "attested");
    let xml = verified_attestation(&world, &path, &root, "attested").await;
    assert!(xml.contains("<label>attested</label>"), "{xml}");
    assert!(xml.contains("<algorithm>EC</algorithm>"), "{xml}");

    // After a rotation the alias attests the new version; version 1 is still there by number.
    let rotated = world
        .call(
            Method::POST,
            "/api/v1/tenants/acme/keys/attested/rotate",
            &root,
            None,
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let xml = verified_attestation(&world, &path, &root, "attested_v2").await;
    assert!(xml.contains("<label>attested_v2</label>"), "{xml}");
    let first = format!("{path}?version=1");
    let xml = verified_attestation(&world, &first, &root, "attested").await;
    assert!(xml.contains("<label>attested</label>"), "{xml}");

    // A readonly user of the tenant may download it.
    world.create_user(&root, "acme", "reader", "readonly").await;
    let reader = world.login("reader", PASSWORD).await;
    verified_attestation(&world, &path, &reader, "attested_v2").await;

    // Another tenant's admin does not see the key; an unknown key and an unknown version are
    // problems too.
    world
        .create_user(&root, "globex", "outsider", "admin")
        .await;
    let outsider = world.login("outsider", PASSWORD).await;
    for (who, path, expected, reason) in [
        (&outsider, path.clone(), StatusCode::NOT_FOUND, "not_found"),
        (
            &root,
            attestation_path("acme", "does-not-exist"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            &root,
            format!("{path}?version=9"),
            StatusCode::BAD_REQUEST,
            "unknown_version",
        ),
    ] {
        let answer = world.call(Method::GET, &path, who, None).await;
        assert_eq!(answer.status, expected, "{path}: {}", answer.text);
        assert!(
            answer
                .header("content-type")
                .starts_with("application/problem+json"),
            "{path}: {}",
            answer.header("content-type")
        );
        let named = answer.body["reason"].as_str().unwrap_or(answer.code());
        assert_eq!(named, reason, "{path}: {}", answer.text);
    }
}

#[tokio::test]
async fn a_destroyed_key_has_nothing_left_to_attest() {
    let world = ApiWorld::start().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    let settings = world
        .call(
            Method::PUT,
            "/api/v1/tenants/acme/key-settings",
            &root,
            Some(json!({"destruction_waiting_period_secs": DAY})),
        )
        .await;
    assert_eq!(settings.status, StatusCode::OK, "{}", settings.text);
    let created = world
        .call(
            Method::POST,
            "/api/v1/tenants/acme/keys",
            &root,
            Some(
                json!({"label": "doomed", "algorithm": "EC", "curve": "P-256",
                        "attributes": {"sign": true}}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    for event in ["deactivate", "schedule_destruction"] {
        let answer = world
            .call(
                Method::POST,
                "/api/v1/tenants/acme/keys/doomed/lifecycle",
                &root,
                Some(json!({"event": event, "reason": "test"})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{event}: {}", answer.text);
    }
    // Scheduled, not yet destroyed: still attested.
    let path = attestation_path("acme", "doomed");
    verified_attestation(&world, &path, &root, "doomed").await;

    world.clock.advance(DAY + 10);
    let report = world
        .app
        .keys()
        .run_due(&TenantId::parse("acme").unwrap(), world.clock.now())
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    let root = world.login("root", ROOT_PASSWORD).await;
    let answer = world.call(Method::GET, &path, &root, None).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
    assert_eq!(answer.body["reason"], "key_destroyed", "{}", answer.text);
}
