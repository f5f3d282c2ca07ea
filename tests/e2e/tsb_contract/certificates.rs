//! Certificates: CSR, self-signed CA, issuing from an openssl-made CSR, import/get/delete —
//! every artefact is checked with the `openssl` command line tool.

use std::path::Path;
use std::process::Command;

use km_tsb::{
    CreateKeyRequest, CsrRequest, ExtendedKeyUsage, KeyUsage, SelfSignCertificateRequest,
    SignCertificateRequest, StandardCertificateAttributes,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use super::{client, emulator, expect_api_error, p256_key, sign_attributes};

/// Runs openssl; returns (success, stdout + stderr).
fn openssl(args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().expect("utf-8 path").to_owned()
}

fn csr_request(key: &str, algorithm: &str, common_name: &str) -> CsrRequest {
    CsrRequest {
        sign_key_name: key.to_owned(),
        key_password: None,
        signature_algorithm: algorithm.to_owned(),
        validity: Some(30),
        standard_certificate_attributes: StandardCertificateAttributes {
            common_name: common_name.to_owned(),
            country: Some("CH".into()),
            organization_name: Some("keymanager tests".into()),
            ..StandardCertificateAttributes::default()
        },
        key_usage: Some(vec![KeyUsage::DigitalSignature]),
        extended_key_usage: Some(vec![ExtendedKeyUsage::ServerAuth]),
        meta_data: None,
        meta_data_signature: None,
    }
}

fn sign_csr_request(ca_key: &str, common_name: &str, csr_pem: &str) -> SignCertificateRequest {
    SignCertificateRequest {
        sign_key_name: ca_key.to_owned(),
        key_password: None,
        signature_algorithm: "SHA256_WITH_RSA".into(),
        common_name: common_name.to_owned(),
        certificate_signing_request: csr_pem.to_owned(),
        certificate_authority: Some(false),
        key_usage: Some(vec![KeyUsage::DigitalSignature]),
        extended_key_usage: Some(vec![ExtendedKeyUsage::ClientAuth]),
        validity: Some(30),
        meta_data: None,
        meta_data_signature: None,
    }
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("PEM certificate")
        .as_ref()
        .to_vec()
}

#[tokio::test]
async fn certificates_are_valid_for_openssl() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let dir = tempfile::tempdir().expect("tempdir");

    // CSR from an RSA key; as a side effect the key gets a self-signed certificate.
    let mut rsa = CreateKeyRequest::new("ca-key", "RSA", sign_attributes());
    rsa.key_size = Some(2048);
    c.create_key(&rsa).await.expect("RSA key");
    expect_api_error(c.get_certificate("ca-key").await, 404, 650);
    let csr = c
        .create_csr(&csr_request("ca-key", "SHA256_WITH_RSA", "csr.example"))
        .await
        .expect("CSR");
    assert_eq!(csr.label.as_deref(), Some("ca-key"));
    assert!(
        csr.certificate_signing_request
            .contains("BEGIN CERTIFICATE REQUEST")
    );
    let csr_file = path(dir.path(), "rsa.csr");
    std::fs::write(&csr_file, &csr.certificate_signing_request).expect("write CSR");
    let (ok, text) = openssl(&["req", "-verify", "-noout", "-in", &csr_file]);
    assert!(ok, "openssl rejects the CSR: {text}");
    let (ok, text) = openssl(&["req", "-noout", "-subject", "-in", &csr_file]);
    assert!(
        ok && text.contains("CN = csr.example") && text.contains("C = CH"),
        "{text}"
    );
    let side_effect = c
        .get_certificate("ca-key")
        .await
        .expect("self-signed side effect");
    assert!(side_effect.certificate.contains("BEGIN CERTIFICATE"));

    // Self-signed CA certificate.
    let ca = c
        .create_self_signed_certificate(&SelfSignCertificateRequest {
            sign_key_name: "ca-key".into(),
            key_password: None,
            signature_algorithm: "SHA256_WITH_RSA".into(),
            validity: Some(365),
            common_name: "keymanager test CA".into(),
            key_usage: Some(vec![KeyUsage::KeyCertSign, KeyUsage::CrlSign]),
            extended_key_usage: None,
            certificate_authority: Some(true),
            meta_data: None,
            meta_data_signature: None,
        })
        .await
        .expect("self-signed CA");
    let ca_file = path(dir.path(), "ca.pem");
    std::fs::write(&ca_file, &ca.certificate).expect("write CA");
    let (ok, text) = openssl(&["x509", "-noout", "-text", "-in", &ca_file]);
    assert!(ok, "{text}");
    assert!(text.contains("CA:TRUE"), "no CA:TRUE in\n{text}");
    assert!(text.contains("keymanager test CA"), "{text}");
    assert_eq!(
        c.get_certificate("ca-key")
            .await
            .expect("get")
            .certificate
            .trim(),
        ca.certificate.trim(),
        "the self-signed certificate is stored with the key"
    );

    // An openssl-made CSR (EC P-256), issued by the CA key.
    let leaf_key = path(dir.path(), "leaf.key");
    let leaf_csr = path(dir.path(), "leaf.csr");
    let (ok, text) = openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=leaf",
        "-keyout",
        &leaf_key,
        "-out",
        &leaf_csr,
    ]);
    assert!(ok, "{text}");
    let csr_pem = std::fs::read_to_string(&leaf_csr).expect("read CSR");
    let leaf = c
        .sign_certificate(&sign_csr_request("ca-key", "leaf", &csr_pem))
        .await
        .expect("issue leaf");
    let leaf_file = path(dir.path(), "leaf.pem");
    std::fs::write(&leaf_file, &leaf.certificate).expect("write leaf");
    let (ok, text) = openssl(&["verify", "-CAfile", &ca_file, &leaf_file]);
    assert!(ok && text.contains("OK"), "openssl verify: {text}");
    let (_, text) = openssl(&["x509", "-noout", "-text", "-in", &leaf_file]);
    assert!(
        text.contains("CN = leaf") || text.contains("CN=leaf"),
        "{text}"
    );
    assert!(!text.contains("CA:TRUE"), "leaf must not be a CA:\n{text}");
    // Garbage instead of a CSR is refused.
    let garbage = c
        .sign_certificate(&sign_csr_request("ca-key", "leaf", "not a CSR"))
        .await
        .expect_err("garbage CSR");
    assert_eq!(garbage.http_status(), Some(400), "{garbage:?}");

    // Import / get / delete on an EC key certified by the CA.
    c.create_key(&p256_key("holder")).await.expect("EC key");
    let holder_csr = c
        .create_csr(&csr_request("holder", "SHA256_WITH_ECDSA", "holder"))
        .await
        .expect("EC CSR");
    let holder_cert = c
        .sign_certificate(&sign_csr_request(
            "ca-key",
            "holder",
            &holder_csr.certificate_signing_request,
        ))
        .await
        .expect("issue holder certificate");
    let holder_file = path(dir.path(), "holder.pem");
    std::fs::write(&holder_file, &holder_cert.certificate).expect("write");
    let (ok, text) = openssl(&["verify", "-CAfile", &ca_file, &holder_file]);
    assert!(ok, "{text}");

    let holder_der = der_of(&holder_cert.certificate);
    let imported = c
        .import_certificate("holder", &holder_der)
        .await
        .expect("import");
    assert_eq!(imported.label.as_deref(), Some("holder"));
    let stored = c.get_certificate("holder").await.expect("get");
    assert_eq!(
        der_of(&stored.certificate),
        holder_der,
        "import overwrote the self-signed one"
    );
    // A certificate for another public key does not belong to this key (402).
    let leaf_der = der_of(&leaf.certificate);
    expect_api_error(c.import_certificate("holder", &leaf_der).await, 400, 402);
    expect_api_error(
        c.import_certificate("no-such-key", &holder_der).await,
        404,
        650,
    );
    c.delete_certificate("holder")
        .await
        .expect("delete certificate");
    expect_api_error(c.get_certificate("holder").await, 404, 650);
    expect_api_error(c.delete_certificate("holder").await, 404, 650);
    // The key itself is still there.
    c.key_attributes("holder", None)
        .await
        .expect("key survives certificate deletion");
}
