//! `POST /v1/key/keyAttestation` over HTTP: the zip's five entries, the signature over the XML
//! by the key that also signs descriptors' `xmlSignature`, the attestation key's certificate
//! (checked with openssl), and the TSB errors for unknown keys, passwords and bad bodies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

mod common;

use std::io::{Cursor, Read as _};
use std::process::Command;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use common::*;
use km_tsb_emulator::EmulatorConfig;
use serde_json::{Value, json};
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::SubjectPublicKeyInfo;

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

/// The entries of a zip, by name.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut data = Vec::new();
            file.read_to_end(&mut data).unwrap();
            (file.name().unwrap().into_owned(), data)
        })
        .collect()
}

fn entry<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    entries
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, d)| d.as_slice())
        .unwrap_or_else(|| panic!("no {name} in the zip"))
}

/// DER of the one PEM block in `pem`.
fn pem_der(pem: &[u8], label: &str) -> Vec<u8> {
    let text = std::str::from_utf8(pem).unwrap();
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let inner = text
        .split_once(&begin)
        .and_then(|(_, rest)| rest.split_once(&end))
        .map(|(inner, _)| inner)
        .unwrap_or_else(|| panic!("no {label} PEM block in {text}"));
    unb64(&inner.split_whitespace().collect::<String>())
}

#[tokio::test]
async fn key_attestation_is_a_zip_signed_by_the_attestation_key() {
    let emu = start(EmulatorConfig::default()).await;
    let c = client();
    let base = emu.base_url();
    assert_eq!(
        post(&c, &format!("{base}/v1/key"), &ec_key_body("att"))
            .await
            .status,
        201
    );

    let response = c
        .post(format!("{base}/v1/key/keyAttestation"))
        .json(&json!({"label": "att", "password": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"att-attestation.zip\""
    );
    let entries = unzip(&response.bytes().await.unwrap());
    let mut names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "PrimusHSM_Attestation.crt",
            "README",
            "att.pem",
            "att.sig",
            "att.xml"
        ]
    );

    // The XML names the key and carries its public key; the signature over it verifies with
    // the attestation key's public key from the zip.
    let xml = entry(&entries, "att.xml");
    let xml_text = std::str::from_utf8(xml).unwrap();
    assert!(xml_text.contains("<label>att</label>"), "{xml_text}");
    let attributes = post(
        &c,
        &format!("{base}/v1/key/attributes"),
        &json!({"label": "att"}),
    )
    .await;
    let key_spki = attributes.body["json"]["publicKey"].as_str().unwrap();
    assert!(xml_text.contains(&format!("<publicKey>{key_spki}</publicKey>")));
    let attestation_spki = pem_der(entry(&entries, "att.pem"), "PUBLIC KEY");
    let (_, spki) = SubjectPublicKeyInfo::from_der(&attestation_spki).unwrap();
    let verifier = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, spki.subject_public_key.data);
    verifier.verify(xml, entry(&entries, "att.sig")).unwrap();
    // ... and it is the key behind the descriptors' `xmlSignature`.
    let descriptor_xml = attributes.body["xml"].as_str().unwrap();
    let descriptor_signature = unb64(attributes.body["xmlSignature"].as_str().unwrap());
    verifier
        .verify(descriptor_xml.as_bytes(), &descriptor_signature)
        .unwrap();
    assert_eq!(attributes.body["attestationKeyName"], "attestation-key");
    let readme = std::str::from_utf8(entry(&entries, "README")).unwrap();
    assert!(readme.contains("openssl dgst -sha256 -verify"), "{readme}");

    // The certificate holds the same public key and verifies as a self-signed certificate.
    let certificate = entry(&entries, "PrimusHSM_Attestation.crt");
    let certificate_der = pem_der(certificate, "CERTIFICATE");
    let (_, parsed) = x509_parser::parse_x509_certificate(&certificate_der).unwrap();
    assert_eq!(parsed.public_key().raw, attestation_spki.as_slice());
    assert!(
        parsed.subject().to_string().contains("CN=attestation-key"),
        "{}",
        parsed.subject()
    );
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("attestation.crt");
    std::fs::write(&cert_path, certificate).unwrap();
    let out = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&cert_path)
        .arg(&cert_path)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A second attestation is signed by the same key (one attestation key per emulator).
    let again = c
        .post(format!("{base}/v1/key/keyAttestation"))
        .json(&json!({"label": "att"}))
        .send()
        .await
        .unwrap();
    let again = unzip(&again.bytes().await.unwrap());
    assert_eq!(entry(&again, "att.pem"), entry(&entries, "att.pem"));
    assert_eq!(
        entry(&again, "PrimusHSM_Attestation.crt"),
        entry(&entries, "PrimusHSM_Attestation.crt")
    );
}

#[tokio::test]
async fn key_attestation_refusals_are_tsb_errors() {
    let emu = start(EmulatorConfig::default()).await;
    let c = client();
    let base = emu.base_url();
    let url = format!("{base}/v1/key/keyAttestation");
    post(&c, &url, &json!({"label": "nope"}))
        .await
        .assert_error(404, 650);
    post(&c, &url, &json!({})).await.assert_error(400, 600);

    let mut body = ec_key_body("locked");
    body["password"] = json!(["p", "w"]);
    assert_eq!(post(&c, &format!("{base}/v1/key"), &body).await.status, 201);
    post(&c, &url, &json!({"label": "locked"}))
        .await
        .assert_error(400, 620);
    post(&c, &url, &json!({"label": "locked", "password": "wrong"}))
        .await
        .assert_error(400, 620);
    let ok = c
        .post(&url)
        .json(&json!({"label": "locked", "password": ["p", "w"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}
