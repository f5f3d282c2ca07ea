//! Keys: every algorithm family the emulator implements, used for what it is for; list,
//! attributes, delete; plain import/export; password change; wrap/unwrap; random.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ED25519, EcdsaKeyPair, KeyPair as _,
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
};
use km_tsb::{
    CreateKeyRequest, DecryptRequest, EncryptRequest, HmacRequest, ImportPlainKeyRequest,
    KeyAttributes, Policy, SignRequest, TsbClient, UnwrapKeyRequest, VerifyHmacRequest,
    VerifyRequest, WrapKeyRequest,
};
use secrecy::{ExposeSecret as _, SecretSlice, SecretString};

use super::{
    P256, cipher_attributes, client, emulator, expect_api_error, p256_key, sign_attributes,
};

/// One signing key family: algorithm, size/curve, signature algorithm.
struct SigningCase {
    label: &'static str,
    algorithm: &'static str,
    key_size: Option<u32>,
    curve_oid: Option<&'static str>,
    signature_algorithm: &'static str,
}

const fn case(
    label: &'static str,
    algorithm: &'static str,
    key_size: Option<u32>,
    curve_oid: Option<&'static str>,
    signature_algorithm: &'static str,
) -> SigningCase {
    SigningCase {
        label,
        algorithm,
        key_size,
        curve_oid,
        signature_algorithm,
    }
}

fn verify_request(label: &str, algorithm: &str, payload: &[u8], signature: &[u8]) -> VerifyRequest {
    VerifyRequest {
        sign_key_name: label.to_owned(),
        master_key_password: None,
        signature_algorithm: algorithm.to_owned(),
        payload: payload.to_vec(),
        signature: signature.to_vec(),
    }
}

/// Creates the key, checks its descriptor, signs, verifies, and checks that a tampered payload
/// does not verify. Returns (public key SPKI, payload, signature).
async fn sign_and_verify(c: &TsbClient, k: &SigningCase) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut request = CreateKeyRequest::new(k.label, k.algorithm, sign_attributes());
    request.key_size = k.key_size;
    request.curve_oid = k.curve_oid.map(str::to_owned);
    let descriptor = c
        .create_key(&request)
        .await
        .unwrap_or_else(|e| panic!("{} key creation: {e:?}", k.label));
    let info = &descriptor.json;
    assert_eq!(info.label, k.label);
    assert_eq!(info.algorithm.as_deref(), Some(k.algorithm), "{}", k.label);
    if let Some(curve) = k.curve_oid {
        assert_eq!(info.curve_oid.as_deref(), Some(curve), "{}", k.label);
    }
    if let Some(size) = k.key_size {
        assert_eq!(info.key_size, Some(size), "{}", k.label);
    }
    assert_eq!(info.attributes.sign, Some(true), "{}", k.label);
    assert!(info.policy.is_none(), "{}: policy null requested", k.label);
    let spki = info
        .public_key
        .clone()
        .unwrap_or_else(|| panic!("{} has no public key", k.label));
    assert!(spki.len() > 20, "{}: SPKI too short", k.label);

    let payload = format!("payload signed by {}", k.label).into_bytes();
    let signature = c
        .sign(&SignRequest::new(
            k.label,
            k.signature_algorithm,
            payload.clone(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{} sign: {e:?}", k.label));
    assert!(!signature.is_empty(), "{}: empty signature", k.label);
    let valid = c
        .verify(&verify_request(
            k.label,
            k.signature_algorithm,
            &payload,
            &signature,
        ))
        .await
        .unwrap_or_else(|e| panic!("{} verify: {e:?}", k.label));
    assert!(valid, "{}: own signature must verify", k.label);
    let mut tampered = payload.clone();
    tampered[0] ^= 0x01;
    let valid = c
        .verify(&verify_request(
            k.label,
            k.signature_algorithm,
            &tampered,
            &signature,
        ))
        .await
        .unwrap_or_else(|e| panic!("{} verify tampered: {e:?}", k.label));
    assert!(!valid, "{}: a tampered payload must not verify", k.label);
    (spki, payload, signature)
}

#[tokio::test]
async fn classic_signing_families_sign_and_verify() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let cases = [
        case("rsa-2048", "RSA", Some(2048), None, "SHA256_WITH_RSA"),
        case("ec-p256", "EC", Some(256), Some(P256), "SHA256_WITH_ECDSA"),
        case(
            "ec-p384",
            "EC",
            Some(384),
            Some("1.3.132.0.34"),
            "SHA384_WITH_ECDSA",
        ),
        case(
            "ec-p521",
            "EC",
            Some(521),
            Some("1.3.132.0.35"),
            "SHA512_WITH_ECDSA",
        ),
        case(
            "ec-p224",
            "EC",
            Some(224),
            Some("1.3.132.0.33"),
            "SHA224_WITH_ECDSA",
        ),
        case(
            "ec-k256",
            "EC",
            Some(256),
            Some("1.3.132.0.10"),
            "SHA256_WITH_ECDSA",
        ),
        case(
            "ec-bp256",
            "EC",
            Some(256),
            Some("1.3.36.3.3.2.8.1.1.7"),
            "SHA256_WITH_ECDSA",
        ),
        case(
            "ec-bp384",
            "EC",
            Some(384),
            Some("1.3.36.3.3.2.8.1.1.11"),
            "SHA384_WITH_ECDSA",
        ),
        case("ed25519", "ED", None, Some("1.3.101.112"), "EDDSA"),
        case("dsa-2048", "DSA", Some(2048), None, "SHA256_WITH_DSA"),
    ];
    for k in &cases {
        let (spki, payload, signature) = sign_and_verify(&c, k).await;
        // Independent checks with aws-lc-rs against the SPKI the emulator published.
        match k.label {
            "ec-p256" => {
                let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &spki).expect("P-256 SPKI");
                key.verify_sig(&payload, &signature)
                    .expect("P-256 signature verifies");
                assert!(key.verify_sig(b"other", &signature).is_err());
            }
            "rsa-2048" => {
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &spki)
                    .verify(&payload, &signature)
                    .expect("RSA signature verifies");
            }
            "ed25519" => {
                // Ed25519 SPKI = 12-byte header + 32-byte point.
                assert_eq!(spki.len(), 44);
                UnparsedPublicKey::new(&ED25519, &spki[12..])
                    .verify(&payload, &signature)
                    .expect("Ed25519 signature verifies");
            }
            _ => {}
        }
    }

    // RSA-PSS with the same RSA key, and an algorithm the key cannot do (607).
    let payload = b"pss payload".to_vec();
    let signature = c
        .sign(&SignRequest::new(
            "rsa-2048",
            "SHA256_WITH_RSA_PSS",
            payload.clone(),
        ))
        .await
        .expect("PSS sign");
    assert!(
        c.verify(&verify_request(
            "rsa-2048",
            "SHA256_WITH_RSA_PSS",
            &payload,
            &signature
        ))
        .await
        .expect("PSS verify")
    );
    expect_api_error(
        c.sign(&SignRequest::new("ec-p256", "SHA256_WITH_RSA", payload))
            .await,
        400,
        607,
    );
}

#[tokio::test]
async fn bls_and_post_quantum_signing_families_sign_and_verify() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let cases = [
        case("bls", "BLS", None, None, "BLS"),
        case("ml-dsa-44", "ML-DSA-44", None, None, "ML_DSA"),
        case("ml-dsa-65", "ML-DSA-65", None, None, "ML_DSA"),
        case("ml-dsa-87", "ML-DSA-87", None, None, "ML_DSA"),
        case(
            "slh-dsa-sha2-128f",
            "SLH-DSA-SHA2-128f",
            None,
            None,
            "SLH_DSA",
        ),
        case(
            "slh-dsa-shake-128f",
            "SLH-DSA-SHAKE-128f",
            None,
            None,
            "SLH_DSA",
        ),
    ];
    for k in &cases {
        let (spki, payload, signature) = sign_and_verify(&c, k).await;
        if k.label == "ml-dsa-65" {
            UnparsedPublicKey::new(&aws_lc_rs::signature::ML_DSA_65, &spki)
                .verify(&payload, &signature)
                .expect("ML-DSA-65 signature verifies independently");
        }
    }
    // Names the TSB lists but the emulator cannot implement are refused, not faked.
    let request = CreateKeyRequest::new("xmss", "XMSS", sign_attributes());
    expect_api_error(c.create_key(&request).await, 400, 613);
}

/// Encrypts with `algorithm`, checks the ciphertext differs, decrypts and compares.
async fn round_trip(c: &TsbClient, label: &str, algorithm: &str, aad: Option<&[u8]>) {
    let plaintext = format!("secret for {label} / {algorithm} — 32+ bytes of text").into_bytes();
    let mut request = EncryptRequest::new(label, algorithm, plaintext.clone());
    request.additional_authentication_data = aad.map(<[u8]>::to_vec);
    let encrypted = c
        .encrypt(&request)
        .await
        .unwrap_or_else(|e| panic!("{label}/{algorithm} encrypt: {e:?}"));
    assert_ne!(
        encrypted.encrypted_payload, plaintext,
        "{label}/{algorithm}"
    );
    let mut decrypt = DecryptRequest::new(label, algorithm, encrypted.encrypted_payload.clone());
    decrypt.initialization_vector = encrypted.initialization_vector.clone();
    decrypt.additional_authentication_data = aad.map(<[u8]>::to_vec);
    if encrypted.message_authentication_code.is_some() {
        decrypt.tag_length = Some(128);
    }
    let decrypted = c
        .decrypt(&decrypt)
        .await
        .unwrap_or_else(|e| panic!("{label}/{algorithm} decrypt: {e:?}"));
    assert_eq!(
        decrypted.as_slice(),
        plaintext.as_slice(),
        "{label}/{algorithm}"
    );

    if aad.is_some() {
        // AEAD: a flipped ciphertext bit is detected.
        let mut forged = decrypt.clone();
        forged.encrypted_payload[0] ^= 0x01;
        expect_api_error(c.decrypt(&forged).await, 400, 410);
    }
}

#[tokio::test]
async fn cipher_key_families_encrypt_and_decrypt() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let keys: [(&str, &str, Option<u32>); 5] = [
        ("aes-256", "AES", Some(256)),
        ("camellia-128", "Camellia", Some(128)),
        ("chacha20", "ChaCha20", Some(256)),
        ("tdea", "TDEA", None),
        ("rsa-2048-enc", "RSA", Some(2048)),
    ];
    for (label, algorithm, size) in keys {
        let mut request = CreateKeyRequest::new(label, algorithm, cipher_attributes());
        request.key_size = size;
        let descriptor = c
            .create_key(&request)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e:?}"));
        assert_eq!(descriptor.json.algorithm.as_deref(), Some(algorithm));
        let secret = algorithm != "RSA";
        assert_eq!(
            descriptor.json.public_key.is_none(),
            secret,
            "{label}: public key presence"
        );
    }
    round_trip(&c, "aes-256", "AES_GCM", Some(b"header")).await;
    round_trip(&c, "aes-256", "AES", None).await;
    round_trip(&c, "aes-256", "AES_CTR", None).await;
    round_trip(&c, "camellia-128", "CAMELLIA", None).await;
    round_trip(&c, "chacha20", "CHACHA20_AEAD", Some(b"aad")).await;
    round_trip(&c, "chacha20", "CHACHA20", None).await;
    round_trip(&c, "tdea", "TDEA_CBC", None).await;
    round_trip(&c, "rsa-2048-enc", "RSA_PADDING_OAEP_WITH_SHA256", None).await;

    // A cipher of another family is refused with 607.
    expect_api_error(
        c.encrypt(&EncryptRequest::new(
            "camellia-128",
            "AES_GCM",
            b"x".to_vec(),
        ))
        .await,
        400,
        607,
    );
}

#[tokio::test]
async fn hmac_key_macs_and_verifies_and_matches_an_independent_hmac() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let attributes = KeyAttributes {
        sign: Some(true),
        verify: Some(true),
        extractable: Some(true),
        sensitive: Some(false),
        ..KeyAttributes::default()
    };
    let mut request = CreateKeyRequest::new("hmac", "HMACSHA256", attributes);
    request.key_size = Some(256);
    let descriptor = c.create_key(&request).await.expect("HMAC key");
    assert_eq!(descriptor.json.algorithm.as_deref(), Some("HMACSHA256"));

    let payload = b"message to authenticate".to_vec();
    let mac = c
        .hmac(&HmacRequest {
            key_name: "hmac".into(),
            payload: payload.clone(),
        })
        .await
        .expect("hmac");
    assert_eq!(mac.len(), 32, "HMAC-SHA256 is 32 bytes");
    let verify = |payload: Vec<u8>, signature: Vec<u8>| VerifyHmacRequest {
        key_name: "hmac".into(),
        payload,
        signature,
    };
    assert!(
        c.verify_hmac(&verify(payload.clone(), mac.clone()))
            .await
            .expect("verify")
    );
    assert!(
        !c.verify_hmac(&verify(b"other message".to_vec(), mac.clone()))
            .await
            .expect("verify")
    );

    // Same MAC as aws-lc-rs computes with the exported key.
    let exported = c
        .export_plain_key("hmac", None)
        .await
        .expect("export HMAC key");
    let secret = exported.secret_key.expect("secret key exported");
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.expose_secret());
    assert_eq!(
        aws_lc_rs::hmac::sign(&key, &payload).as_ref(),
        mac.as_slice()
    );
}

#[tokio::test]
async fn ml_kem_key_pair_encapsulates_and_decapsulates_consistently() {
    use aws_lc_rs::kem::{DecapsulationKey, EncapsulationKey, ML_KEM_768};
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let attributes = KeyAttributes {
        decrypt: Some(true),
        extractable: Some(true),
        sensitive: Some(false),
        ..KeyAttributes::default()
    };
    let descriptor = c
        .create_key(&CreateKeyRequest::new(
            "ml-kem-768",
            "ML-KEM-768",
            attributes,
        ))
        .await
        .expect("ML-KEM key");
    assert_eq!(descriptor.json.algorithm.as_deref(), Some("ML-KEM-768"));
    let spki = descriptor.json.public_key.expect("public key");
    // ML-KEM-768: 1184-byte encapsulation key at the end of the SPKI, 2400-byte decapsulation key
    // at the end of the exported PKCS#8.
    let ek =
        EncapsulationKey::new(&ML_KEM_768, &spki[spki.len() - 1184..]).expect("encapsulation key");
    let exported = c
        .export_plain_key("ml-kem-768", None)
        .await
        .expect("export");
    let private = exported.private_key.expect("private key exported");
    let private = private.expose_secret();
    let dk = DecapsulationKey::new(&ML_KEM_768, &private[private.len() - 2400..])
        .expect("decapsulation key");
    let (ciphertext, sender_secret) = ek.encapsulate().expect("encapsulate");
    let receiver_secret = dk.decapsulate(ciphertext).expect("decapsulate");
    assert_eq!(sender_secret.as_ref(), receiver_secret.as_ref());
    // The emulator has no KEM operation on /v1/encrypt and says so.
    expect_api_error(
        c.encrypt(&EncryptRequest::new("ml-kem-768", "AES_GCM", b"x".to_vec()))
            .await,
        400,
        607,
    );
}

#[tokio::test]
async fn list_attributes_and_delete() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let created = c.create_key(&p256_key("list-a")).await.expect("create");
    c.create_key(&p256_key("list-b")).await.expect("create");
    // Labels are unique: 608.
    let error = expect_api_error(c.create_key(&p256_key("list-a")).await, 400, 608);
    assert!(error.is_already_existing());

    let mut labels = c.list_keys().await.expect("list");
    labels.sort();
    assert_eq!(labels, vec!["list-a".to_owned(), "list-b".to_owned()]);

    let descriptor = c.key_attributes("list-a", None).await.expect("attributes");
    assert_eq!(
        descriptor.attestation_key_name.as_deref(),
        Some("attestation-key")
    );
    assert!(
        descriptor
            .xml
            .as_deref()
            .is_some_and(|x| x.contains("list-a"))
    );
    assert!(
        descriptor
            .xml_signature
            .as_deref()
            .is_some_and(|s| !s.is_empty())
    );
    let info = descriptor.json;
    assert_eq!(info.label, "list-a");
    assert_eq!(info.algorithm.as_deref(), Some("EC"));
    assert_eq!(info.curve_oid.as_deref(), Some(P256));
    assert_eq!(info.key_size, Some(256));
    assert_eq!(info.uuid, created.json.uuid);
    assert_eq!(info.public_key, created.json.public_key);
    assert!(!info.is_ska() && !info.is_blocked());
    let created_at = info.created_at().expect("createTime parses");
    let age = time::OffsetDateTime::now_utc() - created_at;
    assert!(
        age.whole_seconds().abs() < 120,
        "createTime {created_at} is not now"
    );

    // The public key is SPKI DER: aws-lc-rs parses it and verifies a signature made through the
    // TSB, without asking the emulator.
    let spki = info.public_key.expect("public key");
    let payload = b"independent verification".to_vec();
    let signature = c
        .sign(&SignRequest::new(
            "list-a",
            "SHA256_WITH_ECDSA",
            payload.clone(),
        ))
        .await
        .expect("sign");
    ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &spki)
        .expect("P-256 SPKI")
        .verify_sig(&payload, &signature)
        .expect("signature verifies");

    c.delete_key("list-a").await.expect("delete");
    let error = expect_api_error(c.key_attributes("list-a", None).await, 404, 650);
    assert!(error.is_not_found());
    assert_eq!(
        c.list_keys().await.expect("list"),
        vec!["list-b".to_owned()]
    );
    expect_api_error(c.delete_key("list-a").await, 404, 650);
    expect_api_error(
        c.sign(&SignRequest::new("list-a", "SHA256_WITH_ECDSA", payload))
            .await,
        404,
        650,
    );

    // Password-protected key: POST /v1/key/deleteKey checks the password.
    let password = SecretString::from("delete-me-pw");
    let mut request = p256_key("list-pw");
    request.password = Some(password.clone());
    c.create_key(&request).await.expect("create");
    expect_api_error(
        c.delete_key_with_password("list-pw", Some(&SecretString::from("wrong")))
            .await,
        400,
        620,
    );
    c.delete_key_with_password("list-pw", Some(&password))
        .await
        .expect("delete with password");
    expect_api_error(c.key_attributes("list-pw", Some(&password)).await, 404, 650);
}

#[tokio::test]
async fn import_plain_and_export_plain() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let rng = aws_lc_rs::rand::SystemRandom::new();

    // Public-key-only import: usable for verify, not for sign.
    let local = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("key");
    let local_spki = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
        local.public_key(),
    )
    .expect("SPKI")
    .as_ref()
    .to_vec();
    let public_only = ImportPlainKeyRequest {
        label: "imported-public".into(),
        algorithm: "EC".into(),
        private_key: None,
        public_key: Some(local_spki.clone()),
        secret_key: None,
        certificate: None,
        curve_oid: Some(P256.into()),
        attributes: KeyAttributes {
            verify: Some(true),
            ..KeyAttributes::default()
        },
        policy: None,
    };
    let answer = c
        .import_plain_key(&public_only)
        .await
        .expect("public import");
    assert_eq!(answer["json"]["label"], "imported-public", "{answer}");
    let payload = b"signed outside the TSB".to_vec();
    let signature = local
        .sign(&rng, &payload)
        .expect("local sign")
        .as_ref()
        .to_vec();
    let verify = |payload: &[u8]| {
        verify_request("imported-public", "SHA256_WITH_ECDSA", payload, &signature)
    };
    assert!(c.verify(&verify(&payload)).await.expect("verify"));
    assert!(!c.verify(&verify(b"something else")).await.expect("verify"));
    // A public-only key cannot sign: KEY_FUNCTION_NOT_PERMITTED (701).
    expect_api_error(
        c.sign(&SignRequest::new(
            "imported-public",
            "SHA256_WITH_ECDSA",
            payload.clone(),
        ))
        .await,
        500,
        701,
    );

    // Re-importing a public key overwrites the public-only key.
    let replacement = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("key");
    let replacement_spki =
        aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
            replacement.public_key(),
        )
        .expect("SPKI")
        .as_ref()
        .to_vec();
    let reimport = ImportPlainKeyRequest {
        public_key: Some(replacement_spki.clone()),
        ..public_only.clone()
    };
    c.import_plain_key(&reimport)
        .await
        .expect("public re-import overwrites");
    let info = c
        .key_attributes("imported-public", None)
        .await
        .expect("attributes")
        .json;
    assert_eq!(info.public_key, Some(replacement_spki));
    assert!(
        !c.verify(&verify(&payload))
            .await
            .expect("old signature no longer verifies")
    );
    c.import_plain_key(&public_only)
        .await
        .expect("back to the first key");

    // Private-key import: the TSB signs, aws-lc-rs verifies with the local public key.
    let pkcs8 = local.to_pkcs8v1().expect("PKCS#8").as_ref().to_vec();
    let private = ImportPlainKeyRequest {
        label: "imported-private".into(),
        private_key: Some(SecretSlice::from(pkcs8.clone())),
        attributes: sign_attributes(),
        ..public_only.clone()
    };
    let answer = c.import_plain_key(&private).await.expect("private import");
    assert_eq!(
        answer["json"]["publicKey"],
        super::b64(&local_spki),
        "{answer}"
    );
    let tsb_signature = c
        .sign(&SignRequest::new(
            "imported-private",
            "SHA256_WITH_ECDSA",
            payload.clone(),
        ))
        .await
        .expect("sign with imported key");
    ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &local_spki)
        .expect("SPKI")
        .verify_sig(&payload, &tsb_signature)
        .expect("imported key signs with the imported private key");
    // A private key never overwrites an existing key.
    expect_api_error(c.import_plain_key(&private).await, 400, 608);

    // Export: allowed for a non-SKA, extractable, non-sensitive key.
    let mut exportable = p256_key("exportable");
    exportable.attributes.extractable = Some(true);
    exportable.attributes.sensitive = Some(false);
    let created = c.create_key(&exportable).await.expect("create");
    let exported = c
        .export_plain_key("exportable", None)
        .await
        .expect("export");
    assert_eq!(exported.public_key, created.json.public_key);
    let private = exported.private_key.expect("private key exported");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, private.expose_secret())
        .expect("exported PKCS#8 loads");
    let signature = pair.sign(&rng, &payload).expect("sign").as_ref().to_vec();
    assert!(
        c.verify(&verify_request(
            "exportable",
            "SHA256_WITH_ECDSA",
            &payload,
            &signature
        ))
        .await
        .expect("verify")
    );

    // Refused: not extractable, sensitive, SKA.
    c.create_key(&p256_key("not-extractable"))
        .await
        .expect("create");
    expect_api_error(c.export_plain_key("not-extractable", None).await, 400, 614);
    let mut sensitive = p256_key("sensitive");
    sensitive.attributes.extractable = Some(true);
    sensitive.attributes.sensitive = Some(true);
    c.create_key(&sensitive).await.expect("create");
    expect_api_error(c.export_plain_key("sensitive", None).await, 400, 614);
    let mut ska = p256_key("ska-key");
    ska.policy = Some(Policy::empty_ska());
    c.create_key(&ska).await.expect("create");
    expect_api_error(c.export_plain_key("ska-key", None).await, 400, 614);
    // An SKA key cannot be extractable in the first place (606).
    let mut ska_extractable = p256_key("ska-extractable");
    ska_extractable.policy = Some(Policy::empty_ska());
    ska_extractable.attributes.extractable = Some(true);
    expect_api_error(c.create_key(&ska_extractable).await, 400, 606);
}

#[tokio::test]
async fn change_password_refuses_the_old_password() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let old = SecretString::from("old-password");
    let new = SecretString::from("new-password");
    let mut request = p256_key("pw-key");
    request.password = Some(old.clone());
    c.create_key(&request).await.expect("create");

    let sign_with = |password: Option<&SecretString>| {
        let mut request = SignRequest::new("pw-key", "SHA256_WITH_ECDSA", b"pw".to_vec());
        request.key_password = password.cloned();
        request
    };
    c.sign(&sign_with(Some(&old)))
        .await
        .expect("old password works before the change");
    expect_api_error(c.sign(&sign_with(None)).await, 400, 620);
    expect_api_error(
        c.change_key_password("pw-key", Some(&SecretString::from("wrong")), &new)
            .await,
        400,
        620,
    );

    c.change_key_password("pw-key", Some(&old), &new)
        .await
        .expect("change password");
    expect_api_error(c.sign(&sign_with(Some(&old))).await, 400, 620);
    expect_api_error(c.key_attributes("pw-key", Some(&old)).await, 400, 620);
    let signature = c
        .sign(&sign_with(Some(&new)))
        .await
        .expect("new password works");
    assert!(!signature.is_empty());
    let descriptor = c
        .key_attributes("pw-key", Some(&new))
        .await
        .expect("attributes");
    assert_eq!(descriptor.json.label, "pw-key");
}

#[tokio::test]
async fn wrap_and_unwrap_round_trip() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let kek_attributes = KeyAttributes {
        wrap: Some(true),
        unwrap: Some(true),
        ..KeyAttributes::default()
    };
    let mut kek = CreateKeyRequest::new("kek", "AES", kek_attributes);
    kek.key_size = Some(256);
    c.create_key(&kek).await.expect("KEK");
    let mut target = CreateKeyRequest::new(
        "data-key",
        "AES",
        KeyAttributes {
            extractable: Some(true),
            ..cipher_attributes()
        },
    );
    target.key_size = Some(256);
    c.create_key(&target).await.expect("data key");
    let mut locked = CreateKeyRequest::new("locked-key", "AES", cipher_attributes());
    locked.key_size = Some(256);
    c.create_key(&locked).await.expect("non-extractable key");

    let wrap = |key: &str| WrapKeyRequest {
        key_to_be_wrapped: key.to_owned(),
        key_to_be_wrapped_password: None,
        wrap_key_name: "kek".into(),
        wrap_key_password: None,
        wrap_method: "AES_WRAP".into(),
    };
    let wrapped = c.wrap(&wrap("data-key")).await.expect("wrap");
    assert_eq!(wrapped.len(), 40, "RFC 3394 of a 256-bit key is 40 bytes");
    // Non-extractable keys are not wrapped: KEY_FUNCTION_NOT_PERMITTED (701).
    expect_api_error(c.wrap(&wrap("locked-key")).await, 500, 701);

    let unwrap = UnwrapKeyRequest {
        wrapped_key: wrapped,
        label: "data-key-copy".into(),
        unwrap_key_name: "kek".into(),
        unwrap_key_password: None,
        wrap_method: "AES_WRAP".into(),
        attributes: cipher_attributes(),
        policy: None,
        meta_data: None,
        meta_data_signature: None,
        signed_approvals: None,
    };
    let answer = c.unwrap(&unwrap).await.expect("unwrap");
    assert_eq!(answer["json"]["label"], "data-key-copy", "{answer}");
    assert_eq!(answer["json"]["algorithm"], "AES", "{answer}");
    assert!(
        c.list_keys()
            .await
            .expect("list")
            .contains(&"data-key-copy".to_owned())
    );
    // Unwrapping to an existing label: 608.
    expect_api_error(c.unwrap(&unwrap).await, 400, 608);

    let plaintext = b"encrypted with the original, decrypted with the copy".to_vec();
    let encrypted = c
        .encrypt(&EncryptRequest::new(
            "data-key",
            "AES_GCM",
            plaintext.clone(),
        ))
        .await
        .expect("encrypt");
    let mut decrypt = DecryptRequest::new("data-key-copy", "AES_GCM", encrypted.encrypted_payload);
    decrypt.initialization_vector = encrypted.initialization_vector;
    decrypt.tag_length = Some(128);
    let decrypted = c
        .decrypt(&decrypt)
        .await
        .expect("decrypt with the unwrapped key");
    assert_eq!(decrypted.as_slice(), plaintext.as_slice());
}

#[tokio::test]
async fn random_bytes_have_the_requested_length_and_differ() {
    let emu = emulator().await;
    let c = client(&emu.base_url());
    let first = c.random(32).await.expect("random");
    let second = c.random(32).await.expect("random");
    assert_eq!((first.len(), second.len()), (32, 32));
    assert_ne!(first.as_slice(), second.as_slice());
    assert_ne!(first.as_slice(), [0u8; 32].as_slice());
    assert_eq!(c.random(1).await.expect("random").len(), 1);
    assert_eq!(c.random(4096).await.expect("random").len(), 4096);
    assert!(matches!(
        c.random(0).await,
        Err(km_tsb::TsbError::InvalidInput(_))
    ));
}
