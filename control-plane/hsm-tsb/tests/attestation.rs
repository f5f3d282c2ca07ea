//! Key attestation through the `Hsm` port against the real TSB emulator: TsbHsm → km-tsb → HTTP →
//! km-tsb-emulator. The zip's five entries, the signature over the XML checked with aws-lc-rs,
//! the attestation key's certificate checked with `openssl x509`; an unknown key is NotFound, and
//! a TSB without the endpoint is a refusal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Cursor, Read as _, Write as _};
use std::process::{Command, Stdio};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use km_core::{Hsm, HsmError, NewHsmKey};
use km_domain::{Algorithm, KeyAttributes, KeySpec};
use km_hsm_tsb::TsbHsm;
use km_testkit::EmulatorFixture;
use km_tsb::TsbClient;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn emulator() -> (EmulatorFixture, TsbHsm) {
    km_testkit::install_crypto_provider();
    let fixture = EmulatorFixture::ephemeral().await.unwrap();
    let hsm = TsbHsm::new(TsbClient::builder(fixture.base_url()).build().unwrap());
    (fixture, hsm)
}

fn p256_key(label: &str) -> NewHsmKey {
    let spec = KeySpec::new(Algorithm::Ec, None, Some("P-256")).unwrap();
    let attributes = KeyAttributes {
        sign: true,
        verify: true,
        sensitive: true,
        destroyable: true,
        ..KeyAttributes::default()
    };
    NewHsmKey::new(label, spec, attributes)
}

/// The zip's entries as (name, bytes), in archive order.
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
        .map(|(_, data)| data.as_slice())
        .unwrap_or_else(|| panic!("no {name} in the zip"))
}

/// The DER inside a one-block PEM text.
fn pem_der(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).unwrap();
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD.decode(body.trim()).unwrap()
}

/// Runs `openssl args...` with `input` on stdin; (success, stdout + stderr).
fn openssl(args: &[&str], input: &[u8]) -> (bool, String) {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn a_key_is_attested_with_a_verifiable_signature_and_certificate() {
    let (_fixture, hsm) = emulator().await;
    let created = hsm.create_key(&p256_key("attested")).await.unwrap();
    let zip = hsm.key_attestation("attested").await.unwrap();
    let entries = unzip(&zip);
    let mut names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "PrimusHSM_Attestation.crt",
            "README",
            "attested.pem",
            "attested.sig",
            "attested.xml",
        ]
    );

    // The XML is about this key ...
    let xml = entry(&entries, "attested.xml");
    let text = std::str::from_utf8(xml).unwrap();
    assert!(text.contains("<label>attested</label>"), "{text}");
    let key_spki = STANDARD.encode(created.public_key_spki_der.unwrap());
    assert!(text.contains(&format!("<publicKey>{key_spki}</publicKey>")));
    // ... and signed by the attestation key of the .pem.
    let attestation_spki = pem_der(entry(&entries, "attested.pem"));
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &attestation_spki)
        .verify(xml, entry(&entries, "attested.sig"))
        .unwrap();
    // A tampered XML does not verify.
    let tampered = text.replace(
        "<sensitive>true</sensitive>",
        "<sensitive>false</sensitive>",
    );
    assert_ne!(tampered, text);
    assert!(
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &attestation_spki)
            .verify(tampered.as_bytes(), entry(&entries, "attested.sig"))
            .is_err()
    );

    // The certificate is a real X.509 certificate of that same key.
    let certificate = entry(&entries, "PrimusHSM_Attestation.crt");
    let (ok, dump) = openssl(&["x509", "-noout", "-text"], certificate);
    assert!(ok, "openssl x509: {dump}");
    assert!(dump.contains("CN = attestation-key"), "{dump}");
    assert!(dump.contains("Public-Key: (256 bit)"), "{dump}");
    assert!(dump.contains("ecdsa-with-SHA256"), "{dump}");
    let (ok, public_key) = openssl(&["x509", "-noout", "-pubkey"], certificate);
    assert!(ok, "openssl x509 -pubkey: {public_key}");
    assert_eq!(pem_der(public_key.as_bytes()), attestation_spki);
}

#[tokio::test]
async fn an_unknown_key_is_not_found() {
    let (_fixture, hsm) = emulator().await;
    assert!(matches!(
        hsm.key_attestation("missing").await,
        Err(HsmError::NotFound(_))
    ));
}

/// A server answering every request with `status` and `body`: a TSB without the endpoint.
async fn answering(status: &'static str, body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn a_tsb_without_attestation_refuses() {
    for (status, body) in [
        ("404 Not Found", ""),
        (
            "501 Not Implemented",
            r#"{"errorCode":101,"reason":"res.error.not.implemented","message":"no"}"#,
        ),
    ] {
        let hsm = TsbHsm::new(
            TsbClient::builder(answering(status, body).await)
                .build()
                .unwrap(),
        );
        match hsm.key_attestation("any").await {
            Err(HsmError::Refused(message)) => {
                assert!(message.contains("offers no key attestation"), "{message}");
            }
            other => panic!("{status}: expected a refusal, got {other:?}"),
        }
    }
}
