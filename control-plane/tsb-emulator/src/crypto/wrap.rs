//! Key wrapping (TSB `wrapMethod` names).
//!
//! * `AES_WRAP` / `AES_WRAP_PAD`: RFC 3394 / RFC 5649 over the raw bytes of a secret key.
//! * `AES_WRAP[_PAD]_{RSA,EC,ED,DSA,BLS}`: RFC 5649 over the PKCS#8 DER of a private key.
//! * `RSA_WRAP_OAEP`: RSA-OAEP (SHA-256, MGF1-SHA-256) over the raw bytes of a secret key.
//! * `RSA_WRAP_PAD`: PKCS#11 `CKM_RSA_AES_KEY_WRAP`: a fresh AES-256 key encrypted with
//!   RSA-OAEP (SHA-256) followed by RFC 5649 of the key (raw secret or PKCS#8 private key).
//! * `ML-KEM-*`: refused with 611, as the current TSB does.

use aws_lc_rs::key_wrap::{AES_128, AES_256, KeyEncryptionKey, KeyWrap as _, KeyWrapPadded as _};
use aws_lc_rs::rsa::{
    OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey,
};
use zeroize::Zeroizing;

use super::keys::{Kind, canonical_algorithm};
use super::{CryptoError, KeyMaterial, KeySpec, PlainImport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    Ec,
    Ed,
    Dsa,
    Bls,
}

impl Family {
    fn matches(self, kind: Kind) -> bool {
        matches!(
            (self, kind),
            (Self::Rsa, Kind::Rsa)
                | (Self::Ec, Kind::Ec(_))
                | (Self::Ed, Kind::Ed25519)
                | (Self::Dsa, Kind::Dsa)
                | (Self::Bls, Kind::Bls)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    AesWrap,
    AesWrapPad,
    AesWrapPrivate(Family),
    RsaOaep,
    RsaAes,
}

fn parse(name: &str) -> Result<Method, CryptoError> {
    let n = name.trim().to_ascii_uppercase();
    let family = |s: &str| match s {
        "RSA" => Some(Family::Rsa),
        "EC" => Some(Family::Ec),
        "ED" => Some(Family::Ed),
        "DSA" => Some(Family::Dsa),
        "BLS" => Some(Family::Bls),
        _ => None,
    };
    match n.as_str() {
        "AES_WRAP" => return Ok(Method::AesWrap),
        "AES_WRAP_PAD" => return Ok(Method::AesWrapPad),
        "RSA_WRAP_OAEP" => return Ok(Method::RsaOaep),
        "RSA_WRAP_PAD" => return Ok(Method::RsaAes),
        _ => {}
    }
    let suffix = n
        .strip_prefix("AES_WRAP_PAD_")
        .or_else(|| n.strip_prefix("AES_WRAP_"));
    if let Some(f) = suffix.and_then(family) {
        return Ok(Method::AesWrapPrivate(f));
    }
    Err(CryptoError::UnsupportedOperation(format!(
        "wrap method {name} is not supported"
    )))
}

fn aes_kek(
    key: &KeyMaterial,
    name: &str,
) -> Result<KeyEncryptionKey<aws_lc_rs::key_wrap::AesBlockCipher>, CryptoError> {
    if Kind::of(key)? != Kind::Aes {
        return Err(CryptoError::AlgorithmNotSupportedByKey(format!(
            "{name} needs an AES wrapping key"
        )));
    }
    let secret = key.private_bytes()?;
    let cipher = match secret.len() {
        16 => &AES_128,
        32 => &AES_256,
        _ => {
            return Err(CryptoError::AlgorithmNotSupportedByKey(
                "aws-lc-rs key wrap supports AES-128 and AES-256 wrapping keys".into(),
            ));
        }
    };
    KeyEncryptionKey::new(cipher, secret).map_err(|_| CryptoError::Hsm("key wrap".into()))
}

fn need_rsa(key: &KeyMaterial, name: &str) -> Result<(), CryptoError> {
    if Kind::of(key)? != Kind::Rsa {
        return Err(CryptoError::AlgorithmNotSupportedByKey(format!(
            "{name} needs an RSA wrapping key"
        )));
    }
    Ok(())
}

fn kw_pad(
    kek: KeyEncryptionKey<aws_lc_rs::key_wrap::AesBlockCipher>,
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut out = vec![0u8; data.len().div_ceil(8) * 8 + 8];
    let n = kek
        .wrap_with_padding(data, &mut out)
        .map_err(|_| CryptoError::Hsm("key wrap".into()))?
        .len();
    out.truncate(n);
    Ok(out)
}

fn kw_unpad(
    kek: KeyEncryptionKey<aws_lc_rs::key_wrap::AesBlockCipher>,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut out = Zeroizing::new(vec![0u8; data.len()]);
    let n = kek
        .unwrap_with_padding(data, &mut out)
        .map_err(|_| CryptoError::Hsm("Error unwrapping key".into()))?
        .len();
    out.truncate(n);
    Ok(out)
}

fn oaep_encrypt(wrapping: &KeyMaterial, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let pk = PublicEncryptingKey::from_der(wrapping.public_bytes()?)
        .map_err(|e| CryptoError::KeyEncoding(e.to_string()))?;
    let k = OaepPublicEncryptingKey::new(pk).map_err(|_| CryptoError::Hsm("key wrap".into()))?;
    if data.len() > k.max_plaintext_size(&OAEP_SHA256_MGF1SHA256) {
        return Err(CryptoError::UnsupportedOperation(
            "key too large for RSA-OAEP wrapping".into(),
        ));
    }
    let mut out = vec![0u8; k.ciphertext_size()];
    let n = k
        .encrypt(&OAEP_SHA256_MGF1SHA256, data, &mut out, None)
        .map_err(|_| CryptoError::Hsm("key wrap".into()))?
        .len();
    out.truncate(n);
    Ok(out)
}

fn oaep_decrypt(
    wrapping: &KeyMaterial,
    data: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, usize), CryptoError> {
    let sk = PrivateDecryptingKey::from_pkcs8(wrapping.private_bytes()?)
        .map_err(|e| CryptoError::KeyEncoding(e.to_string()))?;
    let k = OaepPrivateDecryptingKey::new(sk).map_err(|_| CryptoError::Hsm("unwrap".into()))?;
    let modulus = k.key_size_bytes();
    let mut out = Zeroizing::new(vec![0u8; k.min_output_size()]);
    let n = k
        .decrypt(&OAEP_SHA256_MGF1SHA256, data, &mut out, None)
        .map_err(|_| CryptoError::Hsm("Error unwrapping key".into()))?
        .len();
    out.truncate(n);
    Ok((out, modulus))
}

/// Bytes that get wrapped: raw secret, or PKCS#8 of a private key.
fn wrap_payload(key_to_wrap: &KeyMaterial) -> Result<(Kind, Zeroizing<Vec<u8>>), CryptoError> {
    let kind = Kind::of(key_to_wrap)?;
    let exported = key_to_wrap.export_plain();
    let bytes = if kind.is_secret() {
        exported.secret_key
    } else {
        exported.private_key
    };
    let bytes = bytes.ok_or_else(|| {
        CryptoError::UnsupportedOperation("key to wrap has no private part".into())
    })?;
    Ok((kind, bytes))
}

pub(crate) fn wrap(
    wrapping: &KeyMaterial,
    name: &str,
    key_to_wrap: &KeyMaterial,
) -> Result<Vec<u8>, CryptoError> {
    let method = parse(name)?;
    let (kind, bytes) = wrap_payload(key_to_wrap)?;
    match method {
        Method::AesWrap | Method::AesWrapPad | Method::RsaOaep if !kind.is_secret() => {
            Err(CryptoError::AlgorithmNotSupportedByKey(format!(
                "{name} wraps secret keys; use AES_WRAP_PAD_<TYPE> or RSA_WRAP_PAD"
            )))
        }
        Method::AesWrapPrivate(f) if !f.matches(kind) => {
            Err(CryptoError::AlgorithmNotSupportedByKey(format!(
                "{name} cannot wrap a {} key",
                key_to_wrap.algorithm()
            )))
        }
        Method::AesWrap => {
            if bytes.len() < 16 || bytes.len() % 8 != 0 {
                return Err(CryptoError::InvalidPayload(
                    "AES_WRAP needs a key of 16+ bytes in 8-byte steps".into(),
                ));
            }
            let kek = aes_kek(wrapping, name)?;
            let mut out = vec![0u8; bytes.len() + 8];
            let n = kek
                .wrap(&bytes, &mut out)
                .map_err(|_| CryptoError::Hsm("key wrap".into()))?
                .len();
            out.truncate(n);
            Ok(out)
        }
        Method::AesWrapPad | Method::AesWrapPrivate(_) => kw_pad(aes_kek(wrapping, name)?, &bytes),
        Method::RsaOaep => {
            need_rsa(wrapping, name)?;
            oaep_encrypt(wrapping, &bytes)
        }
        Method::RsaAes => {
            need_rsa(wrapping, name)?;
            let ephemeral = Zeroizing::new(super::random_bytes(32)?);
            let mut out = oaep_encrypt(wrapping, &ephemeral)?;
            let kek = KeyEncryptionKey::new(&AES_256, &ephemeral)
                .map_err(|_| CryptoError::Hsm("key wrap".into()))?;
            out.extend_from_slice(&kw_pad(kek, &bytes)?);
            Ok(out)
        }
    }
}

pub(crate) fn unwrap(
    wrapping: &KeyMaterial,
    name: &str,
    wrapped: &[u8],
    spec: &KeySpec,
) -> Result<KeyMaterial, CryptoError> {
    let method = parse(name)?;
    let (_, kind) = canonical_algorithm(spec.algorithm, spec.curve_oid)?;
    let bytes = match method {
        Method::AesWrap | Method::AesWrapPad | Method::RsaOaep if !kind.is_secret() => {
            return Err(CryptoError::AlgorithmNotSupportedByKey(format!(
                "{name} unwraps secret keys only"
            )));
        }
        Method::AesWrapPrivate(f) if !f.matches(kind) => {
            return Err(CryptoError::AlgorithmNotSupportedByKey(format!(
                "{name} cannot produce a {} key",
                spec.algorithm
            )));
        }
        Method::AesWrap => {
            let kek = aes_kek(wrapping, name)?;
            let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
            let n = kek
                .unwrap(wrapped, &mut out)
                .map_err(|_| CryptoError::Hsm("Error unwrapping key".into()))?
                .len();
            out.truncate(n);
            out
        }
        Method::AesWrapPad | Method::AesWrapPrivate(_) => {
            kw_unpad(aes_kek(wrapping, name)?, wrapped)?
        }
        Method::RsaOaep => {
            need_rsa(wrapping, name)?;
            oaep_decrypt(wrapping, wrapped)?.0
        }
        Method::RsaAes => {
            need_rsa(wrapping, name)?;
            let modulus = PublicEncryptingKey::from_der(wrapping.public_bytes()?)
                .map_err(|e| CryptoError::KeyEncoding(e.to_string()))?
                .key_size_bytes();
            if wrapped.len() <= modulus {
                return Err(CryptoError::Hsm("Error unwrapping key".into()));
            }
            let (rsa_part, kw_part) = wrapped.split_at(modulus);
            let (ephemeral, _) = oaep_decrypt(wrapping, rsa_part)?;
            let kek = KeyEncryptionKey::new(&AES_256, &ephemeral)
                .map_err(|_| CryptoError::Hsm("Error unwrapping key".into()))?;
            kw_unpad(kek, kw_part)?
        }
    };
    let mut req = PlainImport {
        algorithm: spec.algorithm.to_owned(),
        curve_oid: spec.curve_oid.map(str::to_owned),
        ..PlainImport::default()
    };
    if kind.is_secret() {
        req.secret_key = Some(bytes);
    } else {
        req.private_key = Some(bytes);
    }
    let mut key = super::keys::import_plain(&req).map_err(|e| match e {
        CryptoError::KeyEncoding(m) | CryptoError::KeySize(m) => {
            CryptoError::Hsm(format!("Error unwrapping key: {m}"))
        }
        other => other,
    })?;
    if let Some(oid) = spec.algorithm_oid {
        key.set_algorithm_oid(oid);
    }
    Ok(key)
}
