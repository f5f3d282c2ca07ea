use super::*;

fn spec(algorithm: &str, size: Option<u32>, curve: Option<&str>) -> Result<KeySpec, KeySpecError> {
    KeySpec::new(Algorithm::parse(algorithm)?, size, curve)
}

fn code(result: Result<impl fmt::Debug, KeySpecError>) -> &'static str {
    result.unwrap_err().code()
}

fn attrs(f: impl FnOnce(&mut KeyAttributes)) -> KeyAttributes {
    let mut a = KeyAttributes::default();
    f(&mut a);
    a
}

#[test]
fn algorithm_names_round_trip_and_are_unique() {
    let all = Algorithm::all();
    assert_eq!(all.len(), 17 + 12 + 3);
    let mut names: Vec<_> = all.iter().map(|a| a.as_tsb_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len());
    for a in all {
        assert_eq!(Algorithm::parse(a.as_tsb_str()).unwrap(), a);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Algorithm>(&json).unwrap(), a);
    }
    assert_eq!(Algorithm::parse("HSS-LMS").unwrap(), Algorithm::Lms);
}

#[test]
fn algorithm_names_are_case_sensitive() {
    assert_eq!(code(Algorithm::parse("chacha20")), "unknown_algorithm");
    assert_eq!(code(Algorithm::parse("rsa")), "unknown_algorithm");
    assert_eq!(Algorithm::parse("ChaCha20").unwrap(), Algorithm::ChaCha20);
}

#[test]
fn obsolete_drafts_point_at_replacements() {
    for (draft, hint) in [
        ("DILITHIUM_L2", "ML-DSA"),
        ("KYBER768_WITH_SHAKE", "ML-KEM"),
        ("SPHINCS_PLUS_SHAKE_L1", "SLH-DSA"),
    ] {
        let err = Algorithm::parse(draft).unwrap_err();
        assert_eq!(err.code(), "obsolete_algorithm");
        assert!(err.to_string().contains(hint), "{err}");
    }
}

#[test]
fn sizes_are_validated_per_algorithm() {
    for size in [2048, 3072, 4096, 8192] {
        assert_eq!(
            spec("RSA", Some(size), None).unwrap().key_size(),
            Some(size)
        );
    }
    for size in [1024, 2048, 4096, 8192] {
        assert!(spec("DSA", Some(size), None).is_ok());
    }
    for alg in ["AES", "Camellia"] {
        for size in [128, 192, 256] {
            assert!(spec(alg, Some(size), None).is_ok());
        }
    }
    assert!(spec("ChaCha20", Some(256), None).is_ok());
    assert!(spec("ISS", Some(2), None).is_ok());

    let err = spec("RSA", Some(1024), None).unwrap_err();
    assert_eq!(err.code(), "invalid_key_size");
    assert!(err.to_string().contains("2048, 3072, 4096, 8192"), "{err}");
    assert_eq!(code(spec("AES", Some(512), None)), "invalid_key_size");
    assert_eq!(code(spec("ChaCha20", Some(128), None)), "invalid_key_size");
    assert_eq!(code(spec("RSA", None, None)), "key_size_required");
    assert_eq!(
        code(spec("TDEA", Some(168), None)),
        "key_size_not_applicable"
    );
    assert_eq!(
        code(spec("ML-DSA-65", Some(65), None)),
        "key_size_not_applicable"
    );
    assert_eq!(
        code(spec("EC", Some(256), Some("P-256"))),
        "key_size_not_applicable"
    );
}

#[test]
fn sizeless_algorithms_need_nothing() {
    for alg in [
        "BLS",
        "TDEA",
        "HMACSHA256",
        "ML-DSA-44",
        "ML-DSA-87",
        "ML-KEM-512",
        "ML-KEM-1024",
        "SLH-DSA-SHA2-128s",
        "SLH-DSA-SHAKE-256f",
        "LMS",
        "XMSS-SHA256_10_256",
    ] {
        assert!(spec(alg, None, None).is_ok(), "{alg}");
    }
}

#[test]
fn curves_are_resolved_by_oid_or_name() {
    let p256 = spec("EC", None, Some("1.2.840.10045.3.1.7")).unwrap();
    assert_eq!(p256.curve(), Some(Curve::P256));
    assert_eq!(
        spec("EC", None, Some("secp256k1")).unwrap().curve(),
        Some(Curve::Secp256k1)
    );
    assert_eq!(
        spec("EC", None, Some("P-384")).unwrap().curve(),
        Some(Curve::P384)
    );
    assert_eq!(
        spec("EC", None, Some("1.3.36.3.3.2.8.1.1.13"))
            .unwrap()
            .curve(),
        Some(Curve::Brainpool512r1)
    );
    assert_eq!(
        spec("ED", None, Some("1.3.101.112")).unwrap().curve(),
        Some(Curve::Ed25519)
    );
    for curve in Curve::ALL {
        assert_eq!(Curve::parse(curve.oid()), Some(*curve));
        assert_eq!(Curve::parse(curve.name()), Some(*curve));
    }
}

#[test]
fn curve_rules() {
    let err = spec("EC", None, None).unwrap_err();
    assert_eq!(err.code(), "curve_required");
    assert!(
        err.to_string().contains("secp256r1 (1.2.840.10045.3.1.7)"),
        "{err}"
    );
    assert_eq!(code(spec("ED", None, None)), "curve_required");
    assert_eq!(code(spec("EC", None, Some("1.2.3.4"))), "unknown_curve");
    // Families do not mix.
    assert_eq!(code(spec("EC", None, Some("1.3.101.112"))), "unknown_curve");
    let err = spec("ED", None, Some("P-256")).unwrap_err();
    assert_eq!(err.code(), "unknown_curve");
    assert!(err.to_string().contains("Ed25519"), "{err}");
    assert_eq!(
        code(spec("RSA", Some(2048), Some("P-256"))),
        "curve_not_applicable"
    );
}

#[test]
fn at_least_one_private_usage() {
    let aes = spec("AES", Some(256), None).unwrap();
    let err = validate_attributes(&aes, &attrs(|a| a.encrypt = true), false).unwrap_err();
    assert_eq!(err.code(), "no_private_usage");
    assert!(err.to_string().contains("decrypt or unwrap"), "{err}");
    assert!(validate_attributes(&aes, &attrs(|a| a.decrypt = true), false).is_ok());
    assert!(validate_attributes(&aes, &attrs(|a| a.unwrap = true), false).is_ok());
}

#[test]
fn sign_only_for_signature_capable_algorithms() {
    let sign = attrs(|a| a.sign = true);
    for alg in [
        spec("RSA", Some(2048), None),
        spec("EC", None, Some("P-256")),
        spec("ED", None, Some("Ed25519")),
        spec("ML-DSA-44", None, None),
        spec("SLH-DSA-SHA2-128f", None, None),
        spec("HMACSHA256", None, None),
    ] {
        assert!(validate_attributes(&alg.unwrap(), &sign, false).is_ok());
    }
    let err =
        validate_attributes(&spec("AES", Some(128), None).unwrap(), &sign, false).unwrap_err();
    assert_eq!(
        err,
        KeySpecError::UnsupportedUsage {
            algorithm: Algorithm::Aes,
            usage: Usage::Sign
        }
    );
    assert_eq!(err.code(), "unsupported_usage");
    assert!(err.to_string().contains("ML-DSA-44"), "{err}");
    assert_eq!(
        code(validate_attributes(
            &spec("ML-KEM-768", None, None).unwrap(),
            &sign,
            false
        )),
        "unsupported_usage"
    );
}

#[test]
fn decrypt_only_for_cipher_capable_algorithms() {
    let decrypt = attrs(|a| a.decrypt = true);
    for alg in [
        spec("RSA", Some(4096), None),
        spec("AES", Some(256), None),
        spec("Camellia", Some(128), None),
        spec("ChaCha20", Some(256), None),
        spec("TDEA", None, None),
    ] {
        assert!(validate_attributes(&alg.unwrap(), &decrypt, false).is_ok());
    }
    for alg in [
        spec("ED", None, Some("Ed25519")),
        spec("ML-DSA-87", None, None),
        spec("DSA", Some(2048), None),
    ] {
        assert_eq!(
            code(validate_attributes(&alg.unwrap(), &decrypt, false)),
            "unsupported_usage"
        );
    }
}

#[test]
fn unwrap_and_public_flags_follow_capabilities() {
    let aes = spec("AES", Some(256), None).unwrap();
    let ml_dsa = spec("ML-DSA-65", None, None).unwrap();
    assert!(
        validate_attributes(
            &aes,
            &attrs(|a| {
                a.unwrap = true;
                a.wrap = true
            }),
            false
        )
        .is_ok()
    );
    assert_eq!(
        validate_attributes(
            &spec("ChaCha20", Some(256), None).unwrap(),
            &attrs(|a| a.unwrap = true),
            false
        )
        .unwrap_err()
        .code(),
        "unsupported_usage"
    );
    // verify needs a signature algorithm, encrypt a cipher.
    let err = validate_attributes(
        &aes,
        &attrs(|a| {
            a.decrypt = true;
            a.verify = true
        }),
        false,
    )
    .unwrap_err();
    assert_eq!(
        err,
        KeySpecError::UnsupportedUsage {
            algorithm: Algorithm::Aes,
            usage: Usage::Verify
        }
    );
    let err = validate_attributes(
        &ml_dsa,
        &attrs(|a| {
            a.sign = true;
            a.encrypt = true
        }),
        false,
    )
    .unwrap_err();
    assert_eq!(
        err,
        KeySpecError::UnsupportedUsage {
            algorithm: Algorithm::MlDsa65,
            usage: Usage::Encrypt
        }
    );
}

#[test]
fn extractable_keys_must_have_no_policy() {
    let aes = spec("AES", Some(256), None).unwrap();
    let a = attrs(|a| {
        a.decrypt = true;
        a.extractable = true
    });
    assert!(validate_attributes(&aes, &a, false).is_ok());
    let err = validate_attributes(&aes, &a, true).unwrap_err();
    assert_eq!(err.code(), "extractable_with_policy");
    assert!(err.to_string().contains("policy null"), "{err}");
}

#[test]
fn bip32_only_for_ec_with_derive() {
    let k1 = spec("EC", None, Some("secp256k1")).unwrap();
    let ok = attrs(|a| {
        a.sign = true;
        a.derive = true;
        a.bip32 = true
    });
    assert!(validate_attributes(&k1, &ok, true).is_ok());
    let no_derive = attrs(|a| {
        a.sign = true;
        a.bip32 = true
    });
    assert_eq!(
        code(validate_attributes(&k1, &no_derive, false)),
        "bip32_requires_ec_derive"
    );
    let ed = spec("ED", None, Some("Ed25519")).unwrap();
    assert_eq!(
        code(validate_attributes(&ed, &ok, false)),
        "bip32_requires_ec_derive"
    );
}

#[test]
fn slip10_only_for_ec_or_ed_with_derive() {
    let ed = spec("ED", None, Some("Ed25519")).unwrap();
    let ok = attrs(|a| {
        a.sign = true;
        a.derive = true;
        a.slip10 = true
    });
    assert!(validate_attributes(&ed, &ok, false).is_ok());
    let no_derive = attrs(|a| {
        a.sign = true;
        a.slip10 = true
    });
    assert_eq!(
        code(validate_attributes(&ed, &no_derive, false)),
        "slip10_requires_derive"
    );
    let rsa = spec("RSA", Some(2048), None).unwrap();
    assert_eq!(
        code(validate_attributes(
            &rsa,
            &attrs(|a| {
                a.sign = true;
                a.slip10 = true
            }),
            false
        )),
        "slip10_requires_derive"
    );
}

#[test]
fn derive_only_for_derivation_capable_algorithms() {
    let rsa = spec("RSA", Some(2048), None).unwrap();
    let err = validate_attributes(
        &rsa,
        &attrs(|a| {
            a.sign = true;
            a.derive = true
        }),
        false,
    )
    .unwrap_err();
    assert_eq!(
        err,
        KeySpecError::UnsupportedUsage {
            algorithm: Algorithm::Rsa,
            usage: Usage::Derive
        }
    );
}

#[test]
fn every_algorithm_has_a_valid_usage() {
    // No algorithm is uncreatable: each supports at least one private usage.
    for algorithm in Algorithm::all() {
        let c = algorithm.capabilities();
        assert!(c.sign || c.decrypt || c.unwrap, "{algorithm}");
    }
}

#[test]
fn attributes_serde_is_camel_case_with_defaults() {
    let a: KeyAttributes = serde_json::from_str(r#"{"sign":true,"destroyable":true}"#).unwrap();
    assert!(a.sign && a.destroyable && !a.extractable);
    let json = serde_json::to_value(a).unwrap();
    assert_eq!(json["sign"], true);
    assert_eq!(json["bip32"], false);
}
