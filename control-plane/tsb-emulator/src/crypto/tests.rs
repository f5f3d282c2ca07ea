//! Tests of the crypto module (run with `cargo test -p km-tsb-emulator crypto`).

use super::*;

const EC_P224: &str = "1.3.132.0.33";
const EC_P256: &str = "1.2.840.10045.3.1.7";
const EC_P384: &str = "1.3.132.0.34";
const EC_P521: &str = "1.3.132.0.35";
const EC_K256: &str = "1.3.132.0.10";
const EC_BP256: &str = "1.3.36.3.3.2.8.1.1.7";
const EC_BP384: &str = "1.3.36.3.3.2.8.1.1.11";

fn new_key(algorithm: &str, key_size: Option<u32>, curve_oid: Option<&str>) -> KeyMaterial {
    generate(&KeySpec {
        algorithm,
        key_size,
        curve_oid,
        algorithm_oid: None,
    })
    .unwrap_or_else(|e| panic!("generate {algorithm} {key_size:?} {curve_oid:?}: {e}"))
}

fn code<T: std::fmt::Debug>(r: Result<T, CryptoError>) -> u32 {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.error_code(),
    }
}

fn rsa2048() -> &'static KeyMaterial {
    static KEY: std::sync::OnceLock<KeyMaterial> = std::sync::OnceLock::new();
    KEY.get_or_init(|| new_key("RSA", Some(2048), None))
}

fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// sign → verify, tampered payload and tampered signature fail.
fn round_trip(key: &KeyMaterial, alg: &str, ty: SignatureType) -> Vec<u8> {
    let msg = b"transfer 100 CHF to alice";
    let s = key
        .sign(alg, msg, ty)
        .unwrap_or_else(|e| panic!("sign {alg}: {e}"));
    assert!(
        key.verify(alg, msg, &s).expect("verify"),
        "{alg} {} signature must verify",
        key.algorithm()
    );
    assert!(
        !key.verify(alg, b"transfer 999 CHF to mallory", &s)
            .expect("verify"),
        "{alg}: tampered payload verified"
    );
    let mut bad = s.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    assert!(
        !key.verify(alg, msg, &bad).expect("verify"),
        "{alg}: tampered signature verified"
    );
    s
}

#[test]
fn crypto_rsa_signatures() {
    let key = rsa2048();
    assert_eq!(key.key_size(), Some(2048));
    for alg in [
        "SHA256_WITH_RSA",
        "SHA384_WITH_RSA",
        "SHA512_WITH_RSA",
        "SHA256_WITH_RSA_PSS",
        "SHA512_WITH_RSA_PSS",
    ] {
        let s = round_trip(key, alg, SignatureType::Der);
        assert_eq!(s.len(), 256);
    }
    // NONESHA256: the payload is the digest; the result is an ordinary SHA256withRSA signature.
    let msg = b"hello";
    let s = key
        .sign("NONESHA256_WITH_RSA", &sha256(msg), SignatureType::Der)
        .expect("sign");
    assert!(key.verify("SHA256_WITH_RSA", msg, &s).expect("verify"));
    assert!(
        key.verify("NONESHA256_WITH_RSA", &sha256(msg), &s)
            .expect("verify")
    );
    assert_eq!(
        code(key.sign("NONESHA256_WITH_RSA", b"short", SignatureType::Der)),
        612
    );
    // PKCS#1 deterministic: same signature twice
    assert_eq!(
        key.sign("SHA256_WITH_RSA", msg, SignatureType::Der)
            .expect("sign"),
        key.sign("SHA256_WITH_RSA", msg, SignatureType::Der)
            .expect("sign")
    );
    // not offered by aws-lc-rs → 607
    assert_eq!(
        code(key.sign("NONE_WITH_RSA", msg, SignatureType::Der)),
        607
    );
    assert_eq!(
        code(key.sign("SHA1_WITH_RSA", msg, SignatureType::Der)),
        607
    );
    // wrong algorithm family for the key → 607; unknown name → 607
    assert_eq!(
        code(key.sign("SHA256_WITH_ECDSA", msg, SignatureType::Der)),
        607
    );
    assert_eq!(code(key.sign("EDDSA", msg, SignatureType::Der)), 607);
    assert_eq!(code(key.sign("FOO_WITH_BAR", msg, SignatureType::Der)), 607);
    assert_eq!(code(key.hmac(msg)), 607);
}

#[test]
fn crypto_ecdsa_all_curves() {
    for curve in [
        EC_P224, EC_P256, EC_P384, EC_P521, EC_K256, EC_BP256, EC_BP384,
    ] {
        let key = new_key("EC", None, Some(curve));
        assert_eq!(key.curve_oid(), Some(curve));
        assert!(key.key_size().is_some());
        for alg in [
            "SHA256_WITH_ECDSA",
            "SHA384_WITH_ECDSA",
            "SHA3256_WITH_ECDSA",
            "KECCAK256_WITH_ECDSA",
            "DOUBLE_SHA256_WITH_ECDSA",
        ] {
            let der = round_trip(&key, alg, SignatureType::Der);
            assert_eq!(der.first(), Some(&0x30), "{curve} {alg}: DER expected");
            let raw = round_trip(&key, alg, SignatureType::Raw);
            let n = (key.key_size().expect("size") as usize).div_ceil(8);
            assert_eq!(raw.len(), 2 * n, "{curve} {alg}: RAW is r||s");
        }
        // NONE_WITH_ECDSA: payload is the digest
        let msg = b"payload";
        let s = key
            .sign("NONE_WITH_ECDSA", &sha256(msg), SignatureType::Der)
            .expect("sign");
        assert!(
            key.verify("SHA256_WITH_ECDSA", msg, &s).expect("verify"),
            "{curve}: NONE over digest = SHA256 over message"
        );
        // deterministic: RFC 6979, identical twice, verifies as ordinary ECDSA
        let d1 = round_trip(&key, "SHA256_WITH_ECDSA_DETERMINISTIC", SignatureType::Der);
        let d2 = key
            .sign(
                "SHA256_WITH_ECDSA_DETERMINISTIC",
                b"transfer 100 CHF to alice",
                SignatureType::Der,
            )
            .expect("sign");
        assert_eq!(d1, d2, "{curve}: deterministic ECDSA");
        assert!(
            key.verify("SHA256_WITH_ECDSA", b"transfer 100 CHF to alice", &d1)
                .expect("verify")
        );
        assert_eq!(
            code(key.sign("SHA256_WITH_RSA", msg, SignatureType::Der)),
            607
        );
        if curve != EC_K256 {
            assert_eq!(
                code(key.sign("SHA256_WITH_ECDSA", msg, SignatureType::Eth)),
                607
            );
        }
    }
}

#[test]
fn crypto_ecdsa_long_digest_matches_rustcrypto() {
    // aws-lc-rs path with a digest longer than the curve: cross-check with p256's own truncation.
    use ecdsa::signature::hazmat::PrehashVerifier as _;
    use spki::DecodePublicKey as _;
    let key = new_key("EC", None, Some(EC_P256));
    let msg = b"long digest";
    let s = key
        .sign("SHA512_WITH_ECDSA", msg, SignatureType::Der)
        .expect("sign");
    let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&key.public_key_der().expect("spki"))
        .expect("vk");
    let sig = p256::ecdsa::Signature::from_der(&s).expect("der");
    let h = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, msg);
    vk.verify_prehash(h.as_ref(), &sig)
        .expect("p256 accepts the truncated-digest signature");
    let s1 = key
        .sign("SHA1_WITH_ECDSA", msg, SignatureType::Der)
        .expect("sign");
    let h1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, msg);
    vk.verify_prehash(
        h1.as_ref(),
        &p256::ecdsa::Signature::from_der(&s1).expect("der"),
    )
    .expect("SHA-1 digest");
}

#[test]
fn crypto_ecdsa_eth_recoverable() {
    let key = new_key("EC", None, Some(EC_K256));
    let msg = b"eth tx";
    let s = key
        .sign("KECCAK256_WITH_ECDSA", msg, SignatureType::Eth)
        .expect("sign");
    assert_eq!(s.len(), 65);
    let v = s[64];
    assert!(v == 27 || v == 28);
    assert!(key.verify("KECCAK256_WITH_ECDSA", msg, &s).expect("verify"));
    let h = {
        use sha3::Digest as _;
        sha3::Keccak256::digest(msg)
    };
    let sig = k256::ecdsa::Signature::from_slice(&s[..64]).expect("sig");
    let recid = k256::ecdsa::RecoveryId::from_byte(v - 27).expect("recid");
    let recovered =
        k256::ecdsa::VerifyingKey::recover_from_prehash(&h, &sig, recid).expect("recover");
    use spki::EncodePublicKey as _;
    assert_eq!(
        recovered.to_public_key_der().expect("der").as_bytes(),
        key.public_key_der().expect("spki").as_slice()
    );
}

#[test]
fn crypto_ed25519_bls_pqc_signatures() {
    let ed = new_key("ED", None, Some("1.3.101.112"));
    assert_eq!(round_trip(&ed, "EDDSA", SignatureType::Der).len(), 64);
    assert_eq!(
        code(ed.sign("SHA256_WITH_ECDSA", b"x", SignatureType::Der)),
        607
    );

    let bls = new_key("BLS", None, None);
    assert_eq!(
        bls.algorithm_oid().as_deref(),
        Some("1.3.6.1.4.1.44668.5.3.1.1")
    );
    assert_eq!(round_trip(&bls, "BLS", SignatureType::Der).len(), 96);

    for alg in ["ML-DSA-44", "ML-DSA-65", "ML-DSA-87"] {
        let k = new_key(alg, None, None);
        round_trip(&k, "ML_DSA", SignatureType::Der);
        assert_eq!(code(k.sign("SLH_DSA", b"x", SignatureType::Der)), 607);
    }
    for alg in ["SLH-DSA-SHA2-128f", "SLH-DSA-SHAKE-128f"] {
        let k = new_key(alg, None, None);
        assert_eq!(k.algorithm(), alg);
        round_trip(&k, "SLH_DSA", SignatureType::Der);
    }
    let kem = new_key("ML-KEM-768", None, None);
    assert_eq!(
        kem.algorithm_oid().as_deref(),
        Some("2.16.840.1.101.3.4.4.2")
    );
    assert!(kem.public_key_der().is_some());
    assert_eq!(code(kem.sign("ML_DSA", b"x", SignatureType::Der)), 607);
}

#[test]
fn crypto_dsa_1024_signatures() {
    // DSA parameter generation is slow in debug builds; 1024 keeps this test short.
    let key = new_key("DSA", Some(1024), None);
    for alg in ["SHA1_WITH_DSA", "SHA256_WITH_DSA"] {
        round_trip(&key, alg, SignatureType::Der);
    }
    let s = key
        .sign("NONE_WITH_DSA", &sha256(b"m"), SignatureType::Der)
        .expect("sign");
    assert!(key.verify("SHA256_WITH_DSA", b"m", &s).expect("verify"));
    assert_eq!(
        code(key.sign("SHA256_WITH_DSA", b"m", SignatureType::Raw)),
        607
    );
    assert_eq!(
        code(generate(&KeySpec {
            algorithm: "DSA",
            key_size: Some(4096),
            ..KeySpec::default()
        })),
        603
    );
}

#[test]
#[ignore = "slow: DSA-2048 parameter generation and RSA-4096/8192 key generation take long in debug builds"]
fn crypto_slow_key_sizes() {
    round_trip(
        &new_key("DSA", Some(2048), None),
        "SHA256_WITH_DSA",
        SignatureType::Der,
    );
    round_trip(
        &new_key("RSA", Some(4096), None),
        "SHA256_WITH_RSA",
        SignatureType::Der,
    );
    round_trip(
        &new_key("RSA", Some(8192), None),
        "SHA256_WITH_RSA",
        SignatureType::Der,
    );
}

#[test]
fn crypto_generate_refusals() {
    for (alg, size, curve) in [
        ("FOO", None, None),
        ("LMS", None, None),
        ("XMSS-SHA256_10_256", None, None),
        ("ISS", Some(1), None),
        ("EC", None, Some("1.3.132.0.32")),            // secp224k1
        ("EC", None, Some("1.3.36.3.3.2.8.1.1.13")),   // brainpoolP512r1
        ("EC", None, Some("1.2.250.1.223.101.256.1")), // frp256v1
        ("EC", None, None),
        ("ED", None, Some("1.3.101.113")), // Ed448
    ] {
        assert_eq!(
            code(generate(&KeySpec {
                algorithm: alg,
                key_size: size,
                curve_oid: curve,
                algorithm_oid: None
            })),
            613,
            "{alg} {curve:?}"
        );
    }
    assert_eq!(
        code(generate(&KeySpec {
            algorithm: "RSA",
            key_size: Some(1024),
            ..KeySpec::default()
        })),
        603
    );
    assert_eq!(
        code(generate(&KeySpec {
            algorithm: "AES",
            key_size: Some(100),
            ..KeySpec::default()
        })),
        603
    );
    assert_eq!(
        code(generate(&KeySpec {
            algorithm: "AES",
            key_size: None,
            ..KeySpec::default()
        })),
        603
    );
    // case-insensitive input, canonical stored name
    assert_eq!(new_key("camellia", Some(128), None).algorithm(), "Camellia");
    assert_eq!(new_key("chacha20", None, None).key_size(), Some(256));
    assert_eq!(new_key("TDEA", None, None).key_size(), Some(192));
}

fn cipher_round_trip(key: &KeyMaterial, alg: &str, payload: &[u8]) -> Encrypted {
    let e = key
        .encrypt(alg, payload, None, None)
        .unwrap_or_else(|err| panic!("encrypt {alg}: {err}"));
    assert_ne!(
        e.encrypted_payload.as_slice(),
        payload,
        "{alg}: ciphertext equals plaintext"
    );
    let d = key
        .decrypt(alg, &e.encrypted_payload, e.iv.as_deref(), None, None)
        .unwrap_or_else(|err| panic!("decrypt {alg}: {err}"));
    assert_eq!(d, payload, "{alg}");
    e
}

#[test]
fn crypto_symmetric_ciphers() {
    let block16 = [7u8; 32];
    let text = b"attack at dawn, bring coffee";
    for size in [128, 192, 256] {
        let aes = new_key("AES", Some(size), None);
        let e = cipher_round_trip(&aes, "AES", text);
        assert_eq!(e.iv.as_ref().map(Vec::len), Some(16));
        assert_eq!(e.encrypted_payload.len(), 32, "PKCS#7 padded");
        cipher_round_trip(&aes, "AES_CBC_NO_PADDING", &block16);
        let e = cipher_round_trip(&aes, "AES_ECB", &block16);
        assert!(e.iv.is_none());
        cipher_round_trip(&aes, "AES_CTR", text);
        assert_eq!(
            code(aes.encrypt("AES_CBC_NO_PADDING", text, None, None)),
            612
        );
        assert_eq!(code(aes.encrypt("CAMELLIA", text, None, None)), 607);
    }
    for size in [128, 192, 256] {
        let cam = new_key("Camellia", Some(size), None);
        cipher_round_trip(&cam, "CAMELLIA", text);
        cipher_round_trip(&cam, "CAMELLIA_CBC_NO_PADDING", &block16);
        cipher_round_trip(&cam, "CAMELLIA_ECB", &block16);
    }
    let tdea = new_key("TDEA", None, None);
    let e = cipher_round_trip(&tdea, "TDEA_CBC", text);
    assert_eq!(e.iv.as_ref().map(Vec::len), Some(8));
    cipher_round_trip(&tdea, "TDEA_CBC_NO_PADDING", &block16);
    cipher_round_trip(&tdea, "TDEA_ECB", &block16);
    let chacha = new_key("ChaCha20", Some(256), None);
    let e = cipher_round_trip(&chacha, "CHACHA20", text);
    assert_eq!(e.iv.as_ref().map(Vec::len), Some(12));
    assert_eq!(code(chacha.encrypt("AES_GCM", text, None, None)), 607);
    let aes = new_key("AES", Some(256), None);
    assert_eq!(code(aes.encrypt("RC4", text, None, None)), 629);
    // wrong padding on decrypt → 410
    let e = aes.encrypt("AES", text, None, None).expect("encrypt");
    let mut bad = e.encrypted_payload.clone();
    if let Some(last) = bad.last_mut() {
        *last ^= 0xff;
    }
    let r = aes.decrypt("AES", &bad, e.iv.as_deref(), None, None);
    assert!(r.map(|p| p != text).unwrap_or(true));
}

#[test]
fn crypto_aead_ciphers() {
    let text = b"attack at dawn";
    let aad = b"header";
    for size in [128, 192, 256] {
        let aes = new_key("AES", Some(size), None);
        for tag in [None, Some(0), Some(128), Some(120), Some(96), Some(64)] {
            let e = aes
                .encrypt("AES_GCM", text, tag, Some(aad))
                .expect("encrypt");
            let tlen = tag.filter(|t| *t != 0).unwrap_or(128) as usize / 8;
            assert_eq!(e.iv.as_ref().map(Vec::len), Some(12));
            assert_eq!(e.mac.as_ref().map(Vec::len), Some(tlen));
            assert_eq!(e.without_mac.len(), text.len());
            assert_eq!(e.encrypted_payload.len(), text.len() + tlen);
            assert_eq!(&e.encrypted_payload[..text.len()], e.without_mac.as_slice());
            let d = aes
                .decrypt(
                    "AES_GCM",
                    &e.encrypted_payload,
                    e.iv.as_deref(),
                    tag,
                    Some(aad),
                )
                .expect("decrypt");
            assert_eq!(d, text);
            // tampered ciphertext, tag, AAD → 410
            let mut bad = e.encrypted_payload.clone();
            bad[0] ^= 1;
            assert_eq!(
                code(aes.decrypt("AES_GCM", &bad, e.iv.as_deref(), tag, Some(aad))),
                410
            );
            let mut bad = e.encrypted_payload.clone();
            if let Some(last) = bad.last_mut() {
                *last ^= 1;
            }
            assert_eq!(
                code(aes.decrypt("AES_GCM", &bad, e.iv.as_deref(), tag, Some(aad))),
                410
            );
            assert_eq!(
                code(aes.decrypt(
                    "AES_GCM",
                    &e.encrypted_payload,
                    e.iv.as_deref(),
                    tag,
                    Some(b"other")
                )),
                410
            );
        }
        assert_eq!(code(aes.encrypt("AES_GCM", text, Some(100), None)), 624);
    }
    let chacha = new_key("ChaCha20", None, None);
    let e = chacha
        .encrypt("CHACHA20_AEAD", text, None, Some(aad))
        .expect("encrypt");
    assert_eq!(e.mac.as_ref().map(Vec::len), Some(16));
    assert_eq!(
        chacha
            .decrypt(
                "CHACHA20_AEAD",
                &e.encrypted_payload,
                e.iv.as_deref(),
                None,
                Some(aad)
            )
            .expect("decrypt"),
        text
    );
    let mut bad = e.encrypted_payload.clone();
    bad[1] ^= 1;
    assert_eq!(
        code(chacha.decrypt("CHACHA20_AEAD", &bad, e.iv.as_deref(), None, Some(aad))),
        410
    );
    assert_eq!(
        code(chacha.encrypt("CHACHA20_AEAD", text, Some(96), None)),
        624
    );
}

#[test]
fn crypto_rsa_encryption() {
    let key = rsa2048();
    for alg in [
        "RSA_PADDING_OAEP_WITH_SHA256",
        "RSA_PADDING_OAEP",
        "RSA_PADDING_OAEP_WITH_SHA512",
        "RSA",
        "RSA_PADDING_PKCS",
    ] {
        let e = cipher_round_trip(key, alg, b"secret");
        assert_eq!(e.encrypted_payload.len(), 256);
        assert!(e.iv.is_none() && e.mac.is_none());
        let mut bad = e.encrypted_payload.clone();
        bad[10] ^= 1;
        assert_eq!(code(key.decrypt(alg, &bad, None, None, None)), 410, "{alg}");
    }
    assert_eq!(code(key.encrypt("RSA_NO_PADDING", b"x", None, None)), 629);
    assert_eq!(
        code(key.encrypt("RSA_PADDING_OAEP_WITH_SHA224", b"x", None, None)),
        629
    );
    assert_eq!(code(key.encrypt("AES_GCM", b"x", None, None)), 607);
    // public-only copy encrypts but cannot decrypt
    let public = import_plain(&PlainImport {
        algorithm: "RSA".into(),
        public_key: key.public_key_der(),
        ..PlainImport::default()
    })
    .expect("import");
    assert!(!public.has_private());
    let e = public
        .encrypt("RSA_PADDING_OAEP_WITH_SHA256", b"m", None, None)
        .expect("encrypt");
    assert_eq!(
        key.decrypt(
            "RSA_PADDING_OAEP_WITH_SHA256",
            &e.encrypted_payload,
            None,
            None,
            None
        )
        .expect("decrypt"),
        b"m"
    );
    assert_eq!(
        code(public.decrypt(
            "RSA_PADDING_OAEP_WITH_SHA256",
            &e.encrypted_payload,
            None,
            None,
            None
        )),
        611
    );
}

#[test]
fn crypto_hmac() {
    let key = new_key("HMACSHA256", None, None);
    let mac = key.hmac(b"data").expect("hmac");
    assert_eq!(mac.len(), 32);
    assert!(key.verify_hmac(b"data", &mac).expect("verify"));
    assert!(!key.verify_hmac(b"datA", &mac).expect("verify"));
    let aes = new_key("AES", Some(256), None);
    assert_eq!(code(aes.hmac(b"data")), 607);
}

fn same_key(a: &KeyMaterial, b: &KeyMaterial) {
    let (ea, eb) = (a.export_plain(), b.export_plain());
    assert_eq!(a.algorithm(), b.algorithm());
    assert_eq!(ea.secret_key.as_deref(), eb.secret_key.as_deref());
    assert_eq!(a.public_key_der(), b.public_key_der());
}

#[test]
fn crypto_wrap_unwrap() {
    let kek256 = new_key("AES", Some(256), None);
    let kek128 = new_key("AES", Some(128), None);
    let aes = new_key("AES", Some(128), None);
    let hmac = new_key("HMACSHA256", Some(160), None);
    let spec = |algorithm| KeySpec {
        algorithm,
        ..KeySpec::default()
    };

    let w = kek256.wrap("AES_WRAP", &aes).expect("wrap");
    assert_eq!(w.len(), 24);
    same_key(
        &aes,
        &kek256.unwrap("AES_WRAP", &w, &spec("AES")).expect("unwrap"),
    );
    let w = kek128.wrap("AES_WRAP_PAD", &hmac).expect("wrap");
    let back = kek128
        .unwrap("AES_WRAP_PAD", &w, &spec("HMACSHA256"))
        .expect("unwrap");
    same_key(&hmac, &back);
    assert_eq!(
        back.hmac(b"x").expect("hmac"),
        hmac.hmac(b"x").expect("hmac")
    );
    let mut bad = w.clone();
    bad[3] ^= 1;
    assert_eq!(
        code(kek128.unwrap("AES_WRAP_PAD", &bad, &spec("HMACSHA256"))),
        701
    );
    assert_eq!(
        code(kek256.unwrap("AES_WRAP_PAD", &w, &spec("HMACSHA256"))),
        701
    );

    // private keys: AES_WRAP_PAD_<TYPE>
    let ec = new_key("EC", None, Some(EC_P256));
    let ec_spec = KeySpec {
        algorithm: "EC",
        curve_oid: Some(EC_P256),
        ..KeySpec::default()
    };
    for method in ["AES_WRAP_PAD_EC", "AES_WRAP_EC"] {
        let w = kek256.wrap(method, &ec).expect("wrap");
        let back = kek256.unwrap(method, &w, &ec_spec).expect("unwrap");
        same_key(&ec, &back);
        let s = back
            .sign("SHA256_WITH_ECDSA", b"m", SignatureType::Der)
            .expect("sign");
        assert!(ec.verify("SHA256_WITH_ECDSA", b"m", &s).expect("verify"));
    }
    let ed = new_key("ED", None, None);
    let w = kek256.wrap("AES_WRAP_PAD_ED", &ed).expect("wrap");
    same_key(
        &ed,
        &kek256
            .unwrap("AES_WRAP_PAD_ED", &w, &spec("ED"))
            .expect("unwrap"),
    );
    let bls = new_key("BLS", None, None);
    let w = kek256.wrap("AES_WRAP_PAD_BLS", &bls).expect("wrap");
    same_key(
        &bls,
        &kek256
            .unwrap("AES_WRAP_PAD_BLS", &w, &spec("BLS"))
            .expect("unwrap"),
    );
    assert_eq!(code(kek256.wrap("AES_WRAP_PAD_RSA", &ec)), 607);
    assert_eq!(code(kek256.wrap("AES_WRAP_PAD", &ec)), 607);
    assert_eq!(code(kek256.unwrap("AES_WRAP_PAD_EC", &w, &spec("ED"))), 607);
    assert_eq!(
        code(new_key("AES", Some(192), None).wrap("AES_WRAP", &aes)),
        607
    );
    assert_eq!(code(ec.wrap("AES_WRAP", &aes)), 607);
    assert_eq!(code(kek256.wrap("ML-KEM-768", &aes)), 611);

    // RSA wrapping
    let rsa = rsa2048();
    let w = rsa.wrap("RSA_WRAP_OAEP", &aes).expect("wrap");
    same_key(
        &aes,
        &rsa.unwrap("RSA_WRAP_OAEP", &w, &spec("AES"))
            .expect("unwrap"),
    );
    assert_eq!(code(rsa.wrap("RSA_WRAP_OAEP", &ec)), 607);
    let w = rsa.wrap("RSA_WRAP_PAD", &ec).expect("wrap");
    same_key(
        &ec,
        &rsa.unwrap("RSA_WRAP_PAD", &w, &ec_spec).expect("unwrap"),
    );
    let w = rsa.wrap("RSA_WRAP_PAD", &aes).expect("wrap");
    same_key(
        &aes,
        &rsa.unwrap("RSA_WRAP_PAD", &w, &spec("AES"))
            .expect("unwrap"),
    );
    let mut bad = w.clone();
    if let Some(last) = bad.last_mut() {
        *last ^= 1;
    }
    assert_eq!(code(rsa.unwrap("RSA_WRAP_PAD", &bad, &spec("AES"))), 701);
    assert_eq!(code(kek256.wrap("RSA_WRAP_OAEP", &aes)), 607);
}

#[test]
fn crypto_import_export_and_persistence() {
    // private key round trip through export/import
    for (alg, curve) in [
        ("EC", Some(EC_P384)),
        ("EC", Some(EC_BP256)),
        ("EC", Some(EC_P224)),
        ("ED", None),
        ("ML-DSA-44", None),
        ("BLS", None),
        ("ML-KEM-512", None),
    ] {
        let key = new_key(alg, None, curve);
        let ex = key.export_plain();
        let imported = import_plain(&PlainImport {
            algorithm: alg.into(),
            curve_oid: None,
            private_key: ex.private_key.clone(),
            public_key: ex.public_key.clone(),
            ..PlainImport::default()
        })
        .unwrap_or_else(|e| panic!("import {alg}: {e}"));
        assert_eq!(imported.public_key_der(), key.public_key_der(), "{alg}");
        assert_eq!(imported.curve_oid(), key.curve_oid(), "{alg}");
        assert!(imported.has_private());
    }
    // RSA: mismatching public key → 625
    let ec = new_key("EC", None, Some(EC_P256));
    let rsa = rsa2048();
    assert_eq!(
        code(import_plain(&PlainImport {
            algorithm: "RSA".into(),
            private_key: rsa.export_plain().private_key,
            public_key: ec.public_key_der(),
            ..PlainImport::default()
        })),
        625
    );
    // wrong algorithm for the material → 625
    assert_eq!(
        code(import_plain(&PlainImport {
            algorithm: "RSA".into(),
            private_key: ec.export_plain().private_key,
            ..PlainImport::default()
        })),
        625
    );
    // secret keys
    let aes = import_plain(&PlainImport {
        algorithm: "AES".into(),
        secret_key: Some(zeroize::Zeroizing::new(vec![1u8; 32])),
        ..PlainImport::default()
    })
    .expect("import");
    assert_eq!(aes.key_size(), Some(256));
    assert!(aes.public_key_der().is_none());
    assert_eq!(
        aes.export_plain().secret_key.as_deref().map(Vec::as_slice),
        Some([1u8; 32].as_slice())
    );
    assert_eq!(
        code(import_plain(&PlainImport {
            algorithm: "AES".into(),
            secret_key: Some(zeroize::Zeroizing::new(vec![1u8; 20])),
            ..PlainImport::default()
        })),
        603
    );
    // public-only EC key: verify yes, sign no
    let public = import_plain(&PlainImport {
        algorithm: "EC".into(),
        public_key: ec.public_key_der(),
        ..PlainImport::default()
    })
    .expect("import");
    assert_eq!(public.curve_oid(), Some(EC_P256));
    let s = ec
        .sign("SHA256_WITH_ECDSA", b"m", SignatureType::Der)
        .expect("sign");
    assert!(
        public
            .verify("SHA256_WITH_ECDSA", b"m", &s)
            .expect("verify")
    );
    assert_eq!(
        code(public.sign("SHA256_WITH_ECDSA", b"m", SignatureType::Der)),
        611
    );

    // serde round trip keeps the key usable; Debug shows no material
    let json = serde_json::to_string(&ec).expect("serialize");
    let back: KeyMaterial = serde_json::from_str(&json).expect("deserialize");
    assert!(back.verify("SHA256_WITH_ECDSA", b"m", &s).expect("verify"));
    let s2 = back
        .sign("SHA256_WITH_ECDSA", b"m", SignatureType::Der)
        .expect("sign");
    assert!(ec.verify("SHA256_WITH_ECDSA", b"m", &s2).expect("verify"));
    let debug = format!("{aes:?} {ec:?}");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
    assert!(
        !debug.contains(&b64) && !debug.contains("1, 1, 1"),
        "Debug leaks material: {debug}"
    );
    assert!(debug.contains("AES"));
}

#[test]
fn crypto_approver_signatures() {
    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::signature::{self as s, KeyPair as _};
    let msg = b"2026-11-30T10:00:00Z";
    let rng = aws_lc_rs::rand::SystemRandom::new();

    let rsa = s::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa");
    let rsa_spki = rsa.public_key().as_der().expect("der").as_ref().to_vec();
    for (name, enc) in [
        ("SHA-256", &s::RSA_PKCS1_SHA256),
        ("SHA-512", &s::RSA_PKCS1_SHA512),
    ] {
        let mut sig = vec![0u8; rsa.public_modulus_len()];
        rsa.sign(enc, &rng, msg, &mut sig).expect("sign");
        assert!(
            verify_approver_signature(&rsa_spki, name, msg, &sig).expect("verify"),
            "{name}"
        );
        assert!(!verify_approver_signature(&rsa_spki, name, b"other", &sig).expect("verify"));
        let other = if name == "SHA-256" {
            "SHA-512"
        } else {
            "SHA-256"
        };
        assert!(!verify_approver_signature(&rsa_spki, other, msg, &sig).expect("verify"));
    }

    for (alg, name) in [
        (&s::ECDSA_P256_SHA256_ASN1_SIGNING, "SHA-256"),
        (&s::ECDSA_P384_SHA384_ASN1_SIGNING, "SHA-384"),
    ] {
        let ec = s::EcdsaKeyPair::generate(alg).expect("ec");
        let spki = ec.public_key().as_der().expect("der").as_ref().to_vec();
        let sig = ec.sign(&rng, msg).expect("sign");
        assert!(
            verify_approver_signature(&spki, name, msg, sig.as_ref()).expect("verify"),
            "{name}"
        );
        assert!(!verify_approver_signature(&spki, name, b"other", sig.as_ref()).expect("verify"));
    }

    let ed = s::Ed25519KeyPair::generate().expect("ed");
    let spki = ed.public_key().as_der().expect("der").as_ref().to_vec();
    let sig = ed.sign(msg);
    assert!(verify_approver_signature(&spki, "SHA-256", msg, sig.as_ref()).expect("verify"));
    assert!(!verify_approver_signature(&spki, "SHA-256", b"other", sig.as_ref()).expect("verify"));
    assert!(!verify_approver_signature(&spki, "SHA-256", msg, b"").expect("verify"));
    assert_eq!(
        code(verify_approver_signature(&rsa_spki, "MD5", msg, b"sig")),
        600
    );
    assert_eq!(
        code(verify_approver_signature(
            b"not der", "SHA-256", msg, b"sig"
        )),
        625
    );
}

#[test]
fn crypto_random_bytes() {
    let a = random_bytes(32).expect("random");
    let b = random_bytes(32).expect("random");
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    assert_eq!(code(random_bytes(2 << 20)), 600);
}

mod openssl {
    //! X.509 output checked by the `openssl` CLI.
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let dir =
                std::env::temp_dir().join(format!("km-crypto-{tag}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            Self(dir)
        }
        fn write(&self, name: &str, data: &str) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, data).expect("write");
            p
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn openssl(args: &[&str]) -> (bool, String) {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl CLI at /usr/bin/openssl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn subject(cn: &str) -> SubjectAttributes {
        SubjectAttributes {
            common_name: cn.into(),
            country: Some("CH".into()),
            organization_name: Some("Keymanager Tests".into()),
            email: Some("ops@example.test".into()),
            ..SubjectAttributes::default()
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    fn check_ca_chain(ca_key: &KeyMaterial, alg: &str) {
        let dir = TempDir::new("chain");
        let ca = self_signed_certificate(
            ca_key,
            alg,
            &subject("Test CA"),
            30,
            &s(&["KEY_CERT_SIGN", "CRL_SIGN"]),
            &[],
            true,
        )
        .expect("self-signed CA");
        let ca_path = dir.write("ca.pem", &ca);
        let ca_str = ca_path.to_str().expect("path");
        let (ok, out) = openssl(&["verify", "-CAfile", ca_str, ca_str]);
        assert!(ok, "self-signed CA must verify against itself: {out}");
        let (_, text) = openssl(&["x509", "-in", ca_str, "-noout", "-text"]);
        assert!(text.contains("CA:TRUE"), "{text}");
        assert!(text.contains("Key Usage: critical"), "{text}");
        assert!(text.contains("Subject: C = CH, O = Keymanager Tests, CN = Test CA, emailAddress = ops@example.test"), "{text}");
        // the certificate holds this key
        let der = x509_parser::pem::parse_x509_pem(ca.as_bytes())
            .expect("pem")
            .1
            .contents;
        assert_eq!(
            Some(certificate_public_key(&der).expect("spki")),
            ca_key.public_key_der()
        );

        // leaf from an openssl-made CSR
        let key_path = dir.0.join("leaf.key");
        let csr_path = dir.0.join("leaf.csr");
        let (ok, out) = openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=leaf.example.test",
            "-keyout",
            key_path.to_str().expect("path"),
            "-out",
            csr_path.to_str().expect("path"),
        ]);
        assert!(ok, "openssl req: {out}");
        let csr = std::fs::read_to_string(&csr_path).expect("csr");
        let leaf = sign_csr(
            ca_key,
            Some(&ca),
            alg,
            &csr,
            None,
            10,
            &s(&["DIGITAL_SIGNATURE"]),
            &s(&["SERVER_AUTH", "CLIENT_AUTH"]),
            false,
        )
        .expect("issue leaf");
        let leaf_path = dir.write("leaf.pem", &leaf);
        let (ok, out) = openssl(&[
            "verify",
            "-CAfile",
            ca_str,
            leaf_path.to_str().expect("path"),
        ]);
        assert!(ok, "leaf must verify against the CA: {out}");
        let (_, text) = openssl(&[
            "x509",
            "-in",
            leaf_path.to_str().expect("path"),
            "-noout",
            "-text",
        ]);
        assert!(
            text.contains("Issuer: C = CH, O = Keymanager Tests, CN = Test CA"),
            "{text}"
        );
        assert!(text.contains("Subject: CN = leaf.example.test"), "{text}");
        assert!(text.contains("TLS Web Server Authentication"), "{text}");
        // common name override
        let leaf2 = sign_csr(
            ca_key,
            Some(&ca),
            alg,
            &csr,
            Some("renamed"),
            10,
            &[],
            &[],
            false,
        )
        .expect("issue");
        let p2 = dir.write("leaf2.pem", &leaf2);
        let (_, text) = openssl(&[
            "x509",
            "-in",
            p2.to_str().expect("path"),
            "-noout",
            "-subject",
        ]);
        assert!(text.contains("CN = renamed"), "{text}");

        // tampered CSR → 628
        let der = x509_parser::pem::parse_x509_pem(csr.as_bytes())
            .expect("pem")
            .1
            .contents;
        let mut bad = der.clone();
        let i = bad.len() / 3;
        bad[i] ^= 0x01;
        use base64::Engine as _;
        let bad_pem = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            base64::engine::general_purpose::STANDARD.encode(&bad)
        );
        assert_eq!(
            code(sign_csr(
                ca_key,
                Some(&ca),
                alg,
                &bad_pem,
                None,
                10,
                &[],
                &[],
                false
            )),
            628
        );
        assert_eq!(
            code(sign_csr(
                ca_key,
                Some(&ca),
                alg,
                "garbage",
                None,
                10,
                &[],
                &[],
                false
            )),
            628
        );
        // a CA certificate of another key → 402; none → 402
        let other = new_key("EC", None, Some(EC_P256));
        let other_ca = self_signed_certificate(
            &other,
            "SHA256_WITH_ECDSA",
            &subject("Other"),
            30,
            &[],
            &[],
            true,
        )
        .expect("ca");
        assert_eq!(
            code(sign_csr(
                ca_key,
                Some(&other_ca),
                alg,
                &csr,
                None,
                10,
                &[],
                &[],
                false
            )),
            402
        );
        assert_eq!(
            code(sign_csr(ca_key, None, alg, &csr, None, 10, &[], &[], false)),
            402
        );
    }

    #[test]
    fn crypto_x509_rsa_ca_chain_passes_openssl() {
        check_ca_chain(rsa2048(), "SHA256_WITH_RSA");
    }

    #[test]
    fn crypto_x509_ec_and_ed_ca_chains_pass_openssl() {
        check_ca_chain(&new_key("EC", None, Some(EC_P384)), "SHA384_WITH_ECDSA");
        check_ca_chain(&new_key("EC", None, Some(EC_P256)), "SHA256_WITH_ECDSA");
        check_ca_chain(&new_key("ED", None, None), "EDDSA");
    }

    #[test]
    fn crypto_x509_csr_passes_openssl_req_verify() {
        let dir = TempDir::new("csr");
        for (key, alg) in [
            (rsa2048().clone(), "SHA512_WITH_RSA"),
            (new_key("EC", None, Some(EC_P521)), "SHA512_WITH_ECDSA"),
            (new_key("ED", None, None), "EDDSA"),
        ] {
            let mut subj = subject("csr.example.test");
            subj.organization_identifier = Some("VATCH-123".into());
            subj.state_or_province_name = Some("Zurich".into());
            let csr = create_csr(
                &key,
                alg,
                &subj,
                &s(&["DIGITAL_SIGNATURE", "KEY_ENCIPHERMENT"]),
                &s(&["CLIENT_AUTH"]),
            )
            .expect("csr");
            assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
            let p = dir.write("req.pem", &csr);
            let (ok, out) = openssl(&[
                "req",
                "-verify",
                "-noout",
                "-text",
                "-in",
                p.to_str().expect("path"),
            ]);
            assert!(ok, "{alg}: openssl req -verify: {out}");
            assert!(
                out.contains("CN=csr.example.test") || out.contains("CN = csr.example.test"),
                "{out}"
            );
            assert!(out.contains("Digital Signature"), "{out}");
        }
        let key = rsa2048();
        assert_eq!(
            code(create_csr(key, "SHA224_WITH_RSA", &subject("x"), &[], &[])),
            607
        );
        assert_eq!(
            code(create_csr(
                key,
                "SHA256_WITH_ECDSA",
                &subject("x"),
                &[],
                &[]
            )),
            607
        );
        assert_eq!(
            code(create_csr(
                key,
                "SHA256_WITH_RSA",
                &subject("x"),
                &s(&["FLY"]),
                &[]
            )),
            600
        );
        let public = import_plain(&PlainImport {
            algorithm: "RSA".into(),
            public_key: key.public_key_der(),
            ..PlainImport::default()
        })
        .expect("import");
        assert_eq!(
            code(create_csr(
                &public,
                "SHA256_WITH_RSA",
                &subject("x"),
                &[],
                &[]
            )),
            611
        );
    }

    #[test]
    fn crypto_certificate_only_import() {
        let key = new_key("EC", None, Some(EC_P256));
        let cert = self_signed_certificate(
            &key,
            "SHA256_WITH_ECDSA",
            &subject("imported"),
            5,
            &[],
            &[],
            false,
        )
        .expect("cert");
        let der = x509_parser::pem::parse_x509_pem(cert.as_bytes())
            .expect("pem")
            .1
            .contents;
        let imported = import_plain(&PlainImport {
            algorithm: "EC".into(),
            certificate: Some(der),
            ..PlainImport::default()
        })
        .expect("import");
        assert!(!imported.has_private());
        assert_eq!(imported.public_key_der(), key.public_key_der());
        let s = key
            .sign("SHA256_WITH_ECDSA", b"m", SignatureType::Der)
            .expect("sign");
        assert!(
            imported
                .verify("SHA256_WITH_ECDSA", b"m", &s)
                .expect("verify")
        );
        assert_eq!(code(certificate_public_key(b"garbage")), 626);
    }
}

#[test]
fn crypto_camellia_and_tdea_match_openssl() {
    // Library wiring check against an independent implementation.
    let key_bytes = [0x11u8; 16];
    let cam = import_plain(&PlainImport {
        algorithm: "Camellia".into(),
        secret_key: Some(zeroize::Zeroizing::new(key_bytes.to_vec())),
        ..PlainImport::default()
    })
    .expect("import");
    let e = cam
        .encrypt("CAMELLIA", b"camellia text", None, None)
        .expect("encrypt");
    let out = std::process::Command::new("openssl")
        .args([
            "enc",
            "-d",
            "-camellia-128-cbc",
            "-K",
            &hex::encode(key_bytes),
            "-iv",
            &hex::encode(e.iv.as_deref().expect("iv")),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(&e.encrypted_payload)?;
            child.wait_with_output()
        })
        .expect("openssl enc");
    assert!(out.status.success());
    assert_eq!(out.stdout, b"camellia text");
}
