//! Approver signatures (SKA timestamps, approvals) and approver certificates.

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey};

use super::CryptoError;
use super::keys::{Curve, OID_EC, OID_ED25519, OID_RSA, parse_spki};
use super::sign::{Hash, ecdsa_verify};

fn digest_by_name(name: &str) -> Result<Hash, CryptoError> {
    let n: String = name
        .trim()
        .to_ascii_uppercase()
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .collect();
    Ok(match n.as_str() {
        "SHA1" => Hash::Sha1,
        "SHA224" => Hash::Sha224,
        "SHA256" => Hash::Sha256,
        "SHA384" => Hash::Sha384,
        "SHA512" => Hash::Sha512,
        _ => {
            return Err(CryptoError::InputValidation(format!(
                "unsupported digest algorithm {name}"
            )));
        }
    })
}

/// Checks an approver's signature over `message`: RSA → RSASSA-PKCS1-v1_5 with the named
/// digest, EC → ECDSA (DER; RAW r||s also accepted) with the named digest, Ed25519 → EdDSA
/// (digest name ignored). `spki_der` is the approver's SubjectPublicKeyInfo.
///
/// Ok(false) for a wrong signature; Err for an unusable key or digest name.
pub fn verify_approver_signature(
    spki_der: &[u8],
    digest_algorithm: &str,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    let (oid, params, bits) = parse_spki(spki_der)?;
    match oid.as_str() {
        OID_ED25519 => Ok(UnparsedPublicKey::new(&sig::ED25519, &bits)
            .verify(message, signature)
            .is_ok()),
        OID_RSA => {
            let params: &'static sig::RsaParameters = match digest_by_name(digest_algorithm)? {
                Hash::Sha1 => &sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                Hash::Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                Hash::Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                Hash::Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                _ => {
                    return Err(CryptoError::InputValidation(format!(
                        "digest {digest_algorithm} is not supported for RSA approvers"
                    )));
                }
            };
            Ok(UnparsedPublicKey::new(params, spki_der)
                .verify(message, signature)
                .is_ok())
        }
        OID_EC => {
            let curve = params
                .as_deref()
                .ok_or_else(|| CryptoError::KeyEncoding("EC public key without named curve".into()))
                .and_then(Curve::from_oid)
                .map_err(|e| CryptoError::UnsupportedApproverKeyType(e.to_string()))?;
            let h = digest_by_name(digest_algorithm)?.digest(message);
            ecdsa_verify(curve, spki_der, &h, signature)
        }
        other => Err(CryptoError::UnsupportedApproverKeyType(format!(
            "approver key type {other}"
        ))),
    }
}

/// SubjectPublicKeyInfo DER of an X.509 certificate (DER; PEM is tolerated).
pub fn certificate_public_key(cert_der: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let bad = |e: &dyn std::fmt::Display| CryptoError::CertificateEncoding(e.to_string());
    let pem_holder;
    let der = if cert_der.starts_with(b"-----BEGIN") {
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_der).map_err(|e| bad(&e))?;
        pem_holder = pem;
        pem_holder.contents.as_slice()
    } else {
        cert_der
    };
    let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| bad(&e))?;
    if !rest.is_empty() {
        return Err(CryptoError::CertificateEncoding(
            "trailing bytes after certificate".into(),
        ));
    }
    Ok(cert.tbs_certificate.subject_pki.raw.to_vec())
}
