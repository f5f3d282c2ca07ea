//! Signatures (TSB `signatureAlgorithm` names) and HMAC.

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::signature::{self as sig, UnparsedPublicKey};
use ecdsa::signature::hazmat::{
    PrehashSigner as _, PrehashVerifier as _, RandomizedPrehashSigner as _,
};
use pkcs8::DecodePrivateKey as _;
use spki::DecodePublicKey as _;

use super::keys::SlhParam;
use super::keys::{
    Curve, Kind, ml_dsa_alg, ml_dsa_verify_alg, parse_spki, rc_curve_dispatch, slh_dispatch,
    sys_rng,
};
use super::{CryptoError, KeyMaterial, SignatureType};

/// BLS ciphersuite (proof-of-possession scheme, as used by Ethereum consensus).
pub(crate) const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
    Keccak224,
    Keccak256,
    Keccak384,
    Keccak512,
    DoubleSha256,
}

impl Hash {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "SHA1" => Self::Sha1,
            "SHA224" => Self::Sha224,
            "SHA256" => Self::Sha256,
            "SHA384" => Self::Sha384,
            "SHA512" => Self::Sha512,
            "SHA3224" | "SHA3_224" => Self::Sha3_224,
            "SHA3256" | "SHA3_256" => Self::Sha3_256,
            "SHA3384" | "SHA3_384" => Self::Sha3_384,
            "SHA3512" | "SHA3_512" => Self::Sha3_512,
            "KECCAK224" => Self::Keccak224,
            "KECCAK256" => Self::Keccak256,
            "KECCAK384" => Self::Keccak384,
            "KECCAK512" => Self::Keccak512,
            "DOUBLE_SHA256" => Self::DoubleSha256,
            _ => return None,
        })
    }

    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha3::Digest as _;
        match self {
            Self::Sha1 => digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data)
                .as_ref()
                .to_vec(),
            Self::Sha224 => digest::digest(&digest::SHA224, data).as_ref().to_vec(),
            Self::Sha256 => digest::digest(&digest::SHA256, data).as_ref().to_vec(),
            Self::Sha384 => digest::digest(&digest::SHA384, data).as_ref().to_vec(),
            Self::Sha512 => digest::digest(&digest::SHA512, data).as_ref().to_vec(),
            Self::Sha3_224 => sha3::Sha3_224::digest(data).to_vec(),
            Self::Sha3_256 => digest::digest(&digest::SHA3_256, data).as_ref().to_vec(),
            Self::Sha3_384 => digest::digest(&digest::SHA3_384, data).as_ref().to_vec(),
            Self::Sha3_512 => digest::digest(&digest::SHA3_512, data).as_ref().to_vec(),
            Self::Keccak224 => sha3::Keccak224::digest(data).to_vec(),
            Self::Keccak256 => sha3::Keccak256::digest(data).to_vec(),
            Self::Keccak384 => sha3::Keccak384::digest(data).to_vec(),
            Self::Keccak512 => sha3::Keccak512::digest(data).to_vec(),
            Self::DoubleSha256 => {
                let first = digest::digest(&digest::SHA256, data);
                digest::digest(&digest::SHA256, first.as_ref())
                    .as_ref()
                    .to_vec()
            }
        }
    }
}

/// How the payload becomes the value that is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// The library hashes the payload with this hash.
    Hash(Hash),
    /// The payload is a precomputed digest of this hash (`NONESHA256_WITH_RSA`).
    Prehashed(Hash),
    /// `NONE_WITH_*`: the payload is signed as given (ECDSA/DSA: it is the digest).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigAlg {
    Rsa { input: Input, pss: bool },
    Ecdsa { input: Input, deterministic: bool },
    Dsa { input: Input },
    EdDsa,
    Bls,
    MlDsa,
    SlhDsa,
}

pub(crate) fn parse_sig_alg(name: &str) -> Result<SigAlg, CryptoError> {
    let n = name.trim().to_ascii_uppercase();
    let unsupported = || {
        CryptoError::AlgorithmNotSupportedByKey(format!(
            "signature algorithm {name} is not supported"
        ))
    };
    match n.as_str() {
        "EDDSA" | "ED25519" => return Ok(SigAlg::EdDsa),
        "BLS" => return Ok(SigAlg::Bls),
        "ML_DSA" | "ML-DSA" => return Ok(SigAlg::MlDsa),
        "SLH_DSA" | "SLH-DSA" => return Ok(SigAlg::SlhDsa),
        _ => {}
    }
    let input_of = |prefix: &str| -> Option<Input> {
        if prefix == "NONE" {
            return Some(Input::None);
        }
        if let Some(h) = prefix.strip_prefix("NONE") {
            return Hash::parse(h).map(Input::Prehashed);
        }
        Hash::parse(prefix).map(Input::Hash)
    };
    if let Some(prefix) = n.strip_suffix("_WITH_RSA_PSS") {
        return input_of(prefix)
            .map(|input| SigAlg::Rsa { input, pss: true })
            .ok_or_else(unsupported);
    }
    if let Some(prefix) = n.strip_suffix("_WITH_RSA") {
        return input_of(prefix)
            .map(|input| SigAlg::Rsa { input, pss: false })
            .ok_or_else(unsupported);
    }
    if let Some(prefix) = n.strip_suffix("_WITH_ECDSA_DETERMINISTIC") {
        return input_of(prefix)
            .map(|input| SigAlg::Ecdsa {
                input,
                deterministic: true,
            })
            .ok_or_else(unsupported);
    }
    if let Some(prefix) = n.strip_suffix("_WITH_ECDSA") {
        return input_of(prefix)
            .map(|input| SigAlg::Ecdsa {
                input,
                deterministic: false,
            })
            .ok_or_else(unsupported);
    }
    if let Some(prefix) = n.strip_suffix("_WITH_DSA") {
        return input_of(prefix)
            .map(|input| SigAlg::Dsa { input })
            .ok_or_else(unsupported);
    }
    // NONE_WITH_EC_SCHNORR_BIP0340, LMS, XMSS-*, DILITHIUM, SPHINCS_PLUS and unknown names.
    Err(unsupported())
}

fn check_kind(key: &KeyMaterial, alg: &SigAlg, name: &str) -> Result<Kind, CryptoError> {
    let kind = Kind::of(key)?;
    let ok = matches!(
        (alg, kind),
        (SigAlg::Rsa { .. }, Kind::Rsa)
            | (SigAlg::Ecdsa { .. }, Kind::Ec(_))
            | (SigAlg::Dsa { .. }, Kind::Dsa)
            | (SigAlg::EdDsa, Kind::Ed25519)
            | (SigAlg::Bls, Kind::Bls)
            | (SigAlg::MlDsa, Kind::MlDsa(_))
            | (SigAlg::SlhDsa, Kind::SlhDsa(_))
    );
    if ok {
        Ok(kind)
    } else {
        Err(CryptoError::AlgorithmNotSupportedByKey(format!(
            "{name} cannot be used with a {} key",
            key.algorithm()
        )))
    }
}

fn rsa_encoding(
    h: Hash,
    pss: bool,
) -> Option<(&'static dyn sig::RsaEncoding, &'static digest::Algorithm)> {
    Some(match (h, pss) {
        (Hash::Sha256, false) => (&sig::RSA_PKCS1_SHA256, &digest::SHA256),
        (Hash::Sha384, false) => (&sig::RSA_PKCS1_SHA384, &digest::SHA384),
        (Hash::Sha512, false) => (&sig::RSA_PKCS1_SHA512, &digest::SHA512),
        (Hash::Sha256, true) => (&sig::RSA_PSS_SHA256, &digest::SHA256),
        (Hash::Sha384, true) => (&sig::RSA_PSS_SHA384, &digest::SHA384),
        (Hash::Sha512, true) => (&sig::RSA_PSS_SHA512, &digest::SHA512),
        _ => return None,
    })
}

fn rsa_params(h: Hash, pss: bool) -> Option<&'static sig::RsaParameters> {
    Some(match (h, pss) {
        (Hash::Sha1, false) => &sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        (Hash::Sha256, false) => &sig::RSA_PKCS1_2048_8192_SHA256,
        (Hash::Sha384, false) => &sig::RSA_PKCS1_2048_8192_SHA384,
        (Hash::Sha512, false) => &sig::RSA_PKCS1_2048_8192_SHA512,
        (Hash::Sha256, true) => &sig::RSA_PSS_2048_8192_SHA256,
        (Hash::Sha384, true) => &sig::RSA_PSS_2048_8192_SHA384,
        (Hash::Sha512, true) => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn rsa_hash(input: Input, name: &str) -> Result<Hash, CryptoError> {
    match input {
        Input::Hash(h) | Input::Prehashed(h) => Ok(h),
        Input::None => Err(CryptoError::AlgorithmNotSupportedByKey(format!(
            "{name}: aws-lc-rs has no PKCS#1 signing without a DigestInfo"
        ))),
    }
}

fn prehash<'a>(input: Input, payload: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
    match input {
        Input::Hash(h) => std::borrow::Cow::Owned(h.digest(payload)),
        Input::Prehashed(_) | Input::None => std::borrow::Cow::Borrowed(payload),
    }
}

fn bad_sig() -> CryptoError {
    CryptoError::Hsm("signing failed".into())
}

pub(crate) fn sign(
    key: &KeyMaterial,
    name: &str,
    payload: &[u8],
    sig_type: SignatureType,
) -> Result<Vec<u8>, CryptoError> {
    let alg = parse_sig_alg(name)?;
    let kind = check_kind(key, &alg, name)?;
    let private = key.private_bytes()?;
    if sig_type == SignatureType::Eth && kind != Kind::Ec(Curve::K256) {
        return Err(CryptoError::AlgorithmNotSupportedByKey(
            "signatureType ETH needs a secp256k1 key".into(),
        ));
    }
    if sig_type == SignatureType::Raw && matches!(kind, Kind::Dsa) {
        return Err(CryptoError::AlgorithmNotSupportedByKey(
            "signatureType RAW is offered for ECDSA only".into(),
        ));
    }
    match (alg, kind) {
        (SigAlg::Rsa { input, pss }, _) => {
            let h = rsa_hash(input, name)?;
            let (enc, dalg) = rsa_encoding(h, pss).ok_or_else(|| {
                CryptoError::AlgorithmNotSupportedByKey(format!(
                    "{name}: aws-lc-rs signs RSA with SHA-256/384/512 only"
                ))
            })?;
            let kp = sig::RsaKeyPair::from_pkcs8(private)
                .map_err(|e| CryptoError::KeyEncoding(e.to_string()))?;
            let mut out = vec![0u8; kp.public_modulus_len()];
            match input {
                Input::Prehashed(_) => {
                    let d = Digest::import_less_safe(payload, dalg).map_err(|_| {
                        CryptoError::InvalidPayload(format!(
                            "{name} needs a {}-byte digest",
                            dalg.output_len()
                        ))
                    })?;
                    kp.sign_digest(enc, &d, &mut out).map_err(|_| bad_sig())?;
                }
                _ => {
                    kp.sign(
                        enc,
                        &aws_lc_rs::rand::SystemRandom::new(),
                        payload,
                        &mut out,
                    )
                    .map_err(|_| bad_sig())?;
                }
            }
            Ok(out)
        }
        (
            SigAlg::Ecdsa {
                input,
                deterministic,
            },
            Kind::Ec(curve),
        ) => {
            let h = prehash(input, payload);
            if h.is_empty() {
                return Err(CryptoError::InvalidPayload("empty digest".into()));
            }
            ecdsa_sign(curve, private, &h, deterministic, sig_type)
        }
        (SigAlg::Dsa { input }, _) => {
            use der::Encode as _;
            let h = prehash(input, payload);
            let sk = dsa::SigningKey::from_pkcs8_der(private)
                .map_err(|e| CryptoError::KeyEncoding(e.to_string()))?;
            let s: dsa::Signature = sk
                .sign_prehash_with_rng(&mut sys_rng(), &h)
                .map_err(|_| bad_sig())?;
            s.to_der().map_err(|_| bad_sig())
        }
        (SigAlg::EdDsa, _) => {
            let kp = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(private)
                .map_err(|e| CryptoError::KeyEncoding(e.to_string()))?;
            Ok(kp.sign(payload).as_ref().to_vec())
        }
        (SigAlg::Bls, _) => {
            let sk = blst::min_pk::SecretKey::from_bytes(private)
                .map_err(|e| CryptoError::KeyEncoding(format!("BLS key: {e:?}")))?;
            Ok(sk.sign(payload, BLS_DST, &[]).compress().to_vec())
        }
        (SigAlg::MlDsa, Kind::MlDsa(l)) => {
            let alg = ml_dsa_alg(l);
            let kp = sig::PqdsaKeyPair::from_pkcs8(alg, private)
                .map_err(|e| CryptoError::KeyEncoding(e.to_string()))?;
            let mut out = vec![0u8; alg.signature_len()];
            let n = kp.sign(payload, &mut out).map_err(|_| bad_sig())?;
            out.truncate(n);
            Ok(out)
        }
        (SigAlg::SlhDsa, Kind::SlhDsa(p)) => slh_sign(p, private, payload),
        _ => Err(CryptoError::AlgorithmNotSupportedByKey(name.to_owned())),
    }
}

fn slh_sign(p: SlhParam, private: &[u8], payload: &[u8]) -> Result<Vec<u8>, CryptoError> {
    use slh_dsa::signature::Signer as _;
    slh_dispatch!(p, P => {
        let sk = slh_dsa::SigningKey::<P>::from_pkcs8_der(private).map_err(|e| CryptoError::KeyEncoding(e.to_string()))?;
        let s = sk.try_sign(payload).map_err(|_| bad_sig())?;
        Ok(s.to_vec())
    })
}

fn slh_verify(
    p: SlhParam,
    public_bits: &[u8],
    payload: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    use slh_dsa::signature::Verifier as _;
    slh_dispatch!(p, P => {
        let vk = slh_dsa::VerifyingKey::<P>::try_from(public_bits).map_err(|e| CryptoError::KeyEncoding(e.to_string()))?;
        let Ok(s) = slh_dsa::Signature::<P>::try_from(signature) else {
            return Ok(false);
        };
        Ok(vk.verify(payload, &s).is_ok())
    })
}

/// Adapts a digest of any length to the digest size aws-lc-rs expects for `curve`, with the
/// same integer value ECDSA's bits2int would take (left-pad shorter, keep the leftmost bytes of
/// longer digests on byte-aligned curves).
fn fit_digest(
    curve: Curve,
    h: &[u8],
) -> Result<(Vec<u8>, &'static digest::Algorithm), CryptoError> {
    let alg: &'static digest::Algorithm = match curve {
        Curve::P256 | Curve::K256 => &digest::SHA256,
        Curve::P384 => &digest::SHA384,
        Curve::P521 => &digest::SHA512,
        _ => return Err(CryptoError::Hsm("curve not served by aws-lc-rs".into())),
    };
    let l = alg.output_len();
    let v = if h.len() >= l {
        if h.len() > l && curve == Curve::P521 {
            return Err(CryptoError::InvalidPayload(
                "digest longer than 64 bytes for P-521".into(),
            ));
        }
        h[..l].to_vec()
    } else {
        let mut v = vec![0u8; l - h.len()];
        v.extend_from_slice(h);
        v
    };
    Ok((v, alg))
}

fn aws_ecdsa_algs(curve: Curve) -> Option<[&'static sig::EcdsaVerificationAlgorithm; 2]> {
    Some(match curve {
        Curve::P256 => [&sig::ECDSA_P256_SHA256_ASN1, &sig::ECDSA_P256_SHA256_FIXED],
        Curve::P384 => [&sig::ECDSA_P384_SHA384_ASN1, &sig::ECDSA_P384_SHA384_FIXED],
        Curve::P521 => [&sig::ECDSA_P521_SHA512_ASN1, &sig::ECDSA_P521_SHA512_FIXED],
        Curve::K256 => [
            &sig::ECDSA_P256K1_SHA256_ASN1,
            &sig::ECDSA_P256K1_SHA256_FIXED,
        ],
        _ => return None,
    })
}

fn ecdsa_sign(
    curve: Curve,
    private: &[u8],
    h: &[u8],
    deterministic: bool,
    sig_type: SignatureType,
) -> Result<Vec<u8>, CryptoError> {
    let key_err = |e: &dyn std::fmt::Display| CryptoError::KeyEncoding(e.to_string());
    if sig_type == SignatureType::Eth {
        let sk = k256::ecdsa::SigningKey::from_pkcs8_der(private).map_err(|e| key_err(&e))?;
        let (s, recid) = if deterministic {
            sk.sign_prehash_recoverable(h)
        } else {
            sk.sign_prehash_recoverable_with_rng(&mut sys_rng(), h)
                .map_err(|_| bad_sig())?
        };
        let mut out = s.to_bytes().to_vec();
        out.push(27 + recid.to_byte());
        return Ok(out);
    }
    if !deterministic && let Some(signing) = curve.aws_signing() {
        let fixed = sig_type == SignatureType::Raw;
        let alg: &'static sig::EcdsaSigningAlgorithm = match (curve, fixed) {
            (Curve::P256, true) => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            (Curve::P384, true) => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
            (Curve::P521, true) => &sig::ECDSA_P521_SHA512_FIXED_SIGNING,
            (Curve::K256, true) => &sig::ECDSA_P256K1_SHA256_FIXED_SIGNING,
            _ => signing,
        };
        let (v, dalg) = fit_digest(curve, h)?;
        let d = Digest::import_less_safe(&v, dalg).map_err(|_| bad_sig())?;
        let kp = sig::EcdsaKeyPair::from_pkcs8(alg, private).map_err(|e| key_err(&e))?;
        return Ok(kp.sign_digest(&d).map_err(|_| bad_sig())?.as_ref().to_vec());
    }
    let raw = sig_type == SignatureType::Raw;
    rc_curve_dispatch!(curve, C => {
        let sk = ecdsa::SigningKey::<C>::from_pkcs8_der(private).map_err(|e| key_err(&e))?;
        let s: ecdsa::Signature<C> = if deterministic {
            sk.sign_prehash(h).map_err(|_| CryptoError::InvalidPayload("digest too short for the curve".into()))?
        } else {
            sk.sign_prehash_with_rng(&mut sys_rng(), h)
                .map_err(|_| CryptoError::InvalidPayload("digest too short for the curve".into()))?
        };
        Ok(if raw { s.to_bytes().to_vec() } else { s.to_der().as_bytes().to_vec() })
    }, p224 => {
        use p224::ecdsa::signature::hazmat::{PrehashSigner as _, RandomizedPrehashSigner as _};
        use p224::pkcs8::DecodePrivateKey as _;
        let sk = p224::ecdsa::SigningKey::from(p224::SecretKey::from_pkcs8_der(private).map_err(|e| key_err(&e))?);
        let s: p224::ecdsa::Signature = if deterministic {
            sk.sign_prehash(h).map_err(|_| CryptoError::InvalidPayload("digest too short for the curve".into()))?
        } else {
            sk.sign_prehash_with_rng(&mut p224::elliptic_curve::rand_core::OsRng, h)
                .map_err(|_| CryptoError::InvalidPayload("digest too short for the curve".into()))?
        };
        Ok(if raw { s.to_bytes().to_vec() } else { s.to_der().as_bytes().to_vec() })
    })
}

/// ECDSA verification over a prehash `h` (DER, RAW r||s and ETH r||s||v are accepted).
pub(crate) fn ecdsa_verify(
    curve: Curve,
    spki_der: &[u8],
    h: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    let n = curve.scalar_len();
    let signature = if curve == Curve::K256 && signature.len() == 2 * n + 1 {
        &signature[..2 * n]
    } else {
        signature
    };
    if let Some([asn1, fixed]) = aws_ecdsa_algs(curve) {
        let (_, _, point) = parse_spki(spki_der)?;
        let (v, dalg) = fit_digest(curve, h)?;
        let d = Digest::import_less_safe(&v, dalg)
            .map_err(|_| CryptoError::InvalidPayload("bad digest".into()))?;
        if UnparsedPublicKey::new(asn1, &point)
            .verify_digest(&d, signature)
            .is_ok()
        {
            return Ok(true);
        }
        return Ok(signature.len() == 2 * n
            && UnparsedPublicKey::new(fixed, &point)
                .verify_digest(&d, signature)
                .is_ok());
    }
    let key_err = |e: &dyn std::fmt::Display| CryptoError::KeyEncoding(e.to_string());
    rc_curve_dispatch!(curve, C => {
        let vk = ecdsa::VerifyingKey::<C>::from_public_key_der(spki_der).map_err(|e| key_err(&e))?;
        let parsed = ecdsa::Signature::<C>::from_der(signature).or_else(|_| ecdsa::Signature::<C>::from_slice(signature));
        Ok(parsed.is_ok_and(|s| vk.verify_prehash(h, &s).is_ok()))
    }, p224 => {
        use p224::ecdsa::signature::hazmat::PrehashVerifier as _;
        use p224::pkcs8::DecodePublicKey as _;
        let vk = p224::ecdsa::VerifyingKey::from_public_key_der(spki_der).map_err(|e| key_err(&e))?;
        let parsed = p224::ecdsa::Signature::from_der(signature).or_else(|_| p224::ecdsa::Signature::from_slice(signature));
        Ok(parsed.is_ok_and(|s| vk.verify_prehash(h, &s).is_ok()))
    })
}

pub(crate) fn verify(
    key: &KeyMaterial,
    name: &str,
    payload: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    let alg = parse_sig_alg(name)?;
    let kind = check_kind(key, &alg, name)?;
    let spki_der = key.public_bytes()?;
    match (alg, kind) {
        (SigAlg::Rsa { input, pss }, _) => {
            let h = rsa_hash(input, name)?;
            let params = rsa_params(h, pss).ok_or_else(|| {
                CryptoError::AlgorithmNotSupportedByKey(format!("{name} is not supported"))
            })?;
            let pk = UnparsedPublicKey::new(params, spki_der);
            Ok(match input {
                Input::Prehashed(_) => {
                    let dalg = rsa_encoding(h, pss)
                        .map(|(_, d)| d)
                        .unwrap_or(&digest::SHA256);
                    match Digest::import_less_safe(payload, dalg) {
                        Ok(d) => pk.verify_digest(&d, signature).is_ok(),
                        Err(_) => {
                            return Err(CryptoError::InvalidPayload(format!(
                                "{name} needs a digest payload"
                            )));
                        }
                    }
                }
                _ => pk.verify(payload, signature).is_ok(),
            })
        }
        (SigAlg::Ecdsa { input, .. }, Kind::Ec(curve)) => {
            let h = prehash(input, payload);
            if h.is_empty() {
                return Err(CryptoError::InvalidPayload("empty digest".into()));
            }
            ecdsa_verify(curve, spki_der, &h, signature)
        }
        (SigAlg::Dsa { input }, _) => {
            let h = prehash(input, payload);
            let vk = dsa::VerifyingKey::from_public_key_der(spki_der)
                .map_err(|e| CryptoError::KeyEncoding(e.to_string()))?;
            let Ok(s) = dsa::Signature::try_from(signature) else {
                return Ok(false);
            };
            Ok(vk.verify_prehash(&h, &s).is_ok())
        }
        (SigAlg::EdDsa, _) => {
            let (_, _, point) = parse_spki(spki_der)?;
            Ok(UnparsedPublicKey::new(&sig::ED25519, &point)
                .verify(payload, signature)
                .is_ok())
        }
        (SigAlg::Bls, _) => {
            let (_, _, point) = parse_spki(spki_der)?;
            let pk = blst::min_pk::PublicKey::from_bytes(&point)
                .map_err(|e| CryptoError::KeyEncoding(format!("BLS public key: {e:?}")))?;
            let Ok(s) = blst::min_pk::Signature::from_bytes(signature) else {
                return Ok(false);
            };
            Ok(s.verify(true, payload, BLS_DST, &[], &pk, true) == blst::BLST_ERROR::BLST_SUCCESS)
        }
        (SigAlg::MlDsa, Kind::MlDsa(l)) => {
            Ok(UnparsedPublicKey::new(ml_dsa_verify_alg(l), spki_der)
                .verify(payload, signature)
                .is_ok())
        }
        (SigAlg::SlhDsa, Kind::SlhDsa(p)) => {
            let (_, _, bits) = parse_spki(spki_der)?;
            slh_verify(p, &bits, payload, signature)
        }
        _ => Err(CryptoError::AlgorithmNotSupportedByKey(name.to_owned())),
    }
}

fn hmac_key(key: &KeyMaterial) -> Result<aws_lc_rs::hmac::Key, CryptoError> {
    if Kind::of(key)? != Kind::HmacSha256 {
        return Err(CryptoError::AlgorithmNotSupportedByKey(format!(
            "HMAC needs an HMACSHA256 key, not {}",
            key.algorithm()
        )));
    }
    Ok(aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        key.private_bytes()?,
    ))
}

pub(crate) fn hmac(key: &KeyMaterial, payload: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let k = hmac_key(key)?;
    Ok(aws_lc_rs::hmac::sign(&k, payload).as_ref().to_vec())
}

pub(crate) fn verify_hmac(
    key: &KeyMaterial,
    payload: &[u8],
    mac: &[u8],
) -> Result<bool, CryptoError> {
    let k = hmac_key(key)?;
    Ok(aws_lc_rs::hmac::verify(&k, payload, mac).is_ok())
}
