//! Approver-side signing: an approver is a TSB client that proves possession of its key by
//! signing timestamps (to fetch or reject tasks) and approval challenges (to approve).
//!
//! Schemes (wire decisions): RSA → RSASSA-PKCS1-v1_5 with SHA-256; EC → ECDSA (ASN.1 DER) with
//! the curve's digest (P-256/secp256k1 SHA-256, P-384 SHA-384, P-521 SHA-512); Ed25519 → EdDSA
//! (digest name sent as `SHA-256`, ignored by the verifier).

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::TsbError;

/// The algorithm family of an [`ApproverKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApproverKeyType {
    /// RSA (PKCS#1 v1.5, SHA-256).
    Rsa,
    /// ECDSA on NIST P-256 (SHA-256).
    EcP256,
    /// ECDSA on NIST P-384 (SHA-384).
    EcP384,
    /// ECDSA on NIST P-521 (SHA-512).
    EcP521,
    /// ECDSA on secp256k1 (SHA-256).
    EcSecp256k1,
    /// Ed25519.
    Ed25519,
}

enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// An approver's private key, held in aws-lc-rs. Debug output shows only the key type.
pub struct ApproverKey {
    signer: Signer,
    key_type: ApproverKeyType,
    spki: Vec<u8>,
    certificate: Option<Vec<u8>>,
    rng: SystemRandom,
}

impl std::fmt::Debug for ApproverKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApproverKey")
            .field("key_type", &self.key_type)
            .field("has_certificate", &self.certificate.is_some())
            .finish_non_exhaustive()
    }
}

fn spki_of<K: AsDer<PublicKeyX509Der<'static>>>(key: &K) -> Result<Vec<u8>, TsbError> {
    key.as_der()
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| TsbError::Crypto("cannot encode approver public key".into()))
}

impl ApproverKey {
    /// Loads an unencrypted PKCS#8 (v1 or v2) DER private key: EC P-256/P-384/P-521/secp256k1,
    /// Ed25519 or RSA.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, TsbError> {
        let ec_algs: [(&'static signature::EcdsaSigningAlgorithm, ApproverKeyType); 4] = [
            (
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                ApproverKeyType::EcP256,
            ),
            (
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                ApproverKeyType::EcP384,
            ),
            (
                &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
                ApproverKeyType::EcP521,
            ),
            (
                &signature::ECDSA_P256K1_SHA256_ASN1_SIGNING,
                ApproverKeyType::EcSecp256k1,
            ),
        ];
        for (alg, key_type) in ec_algs {
            if let Ok(kp) = EcdsaKeyPair::from_pkcs8(alg, der) {
                let spki = spki_of(kp.public_key())?;
                return Ok(Self::assemble(Signer::Ecdsa(kp), key_type, spki));
            }
        }
        if let Ok(kp) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            let spki = spki_of(kp.public_key())?;
            return Ok(Self::assemble(
                Signer::Ed25519(kp),
                ApproverKeyType::Ed25519,
                spki,
            ));
        }
        if let Ok(kp) = RsaKeyPair::from_pkcs8(der) {
            let spki = spki_of(kp.public_key())?;
            return Ok(Self::assemble(Signer::Rsa(kp), ApproverKeyType::Rsa, spki));
        }
        Err(TsbError::Crypto(
            "unsupported or malformed PKCS#8 key (expected EC P-256/P-384/P-521/secp256k1, Ed25519 or RSA)"
                .into(),
        ))
    }

    /// Loads a PEM `PRIVATE KEY` (PKCS#8) block.
    pub fn from_pkcs8_pem(pem: &[u8]) -> Result<Self, TsbError> {
        use rustls_pki_types::PrivatePkcs8KeyDer;
        use rustls_pki_types::pem::PemObject;
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem)
            .map_err(|_| TsbError::Crypto("no PKCS#8 PRIVATE KEY block in PEM".into()))?;
        Self::from_pkcs8_der(der.secret_pkcs8_der())
    }

    fn assemble(signer: Signer, key_type: ApproverKeyType, spki: Vec<u8>) -> Self {
        ApproverKey {
            signer,
            key_type,
            spki,
            certificate: None,
            rng: SystemRandom::new(),
        }
    }

    /// Identify the approver by this certificate (DER) instead of its bare public key; the
    /// requests then carry `approverCertificate` instead of `approverPublicKey`.
    pub fn with_certificate_der(mut self, cert_der: Vec<u8>) -> Self {
        self.certificate = Some(cert_der);
        self
    }

    /// The certificate set by [`ApproverKey::with_certificate_der`], if any.
    pub fn certificate_der(&self) -> Option<&[u8]> {
        self.certificate.as_deref()
    }

    /// The key type.
    pub fn key_type(&self) -> ApproverKeyType {
        self.key_type
    }

    /// The public key as SubjectPublicKeyInfo DER — what goes into a policy's
    /// [`crate::Approval::public_key`] and the `approverPublicKey` fields.
    pub fn public_key_spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The digest name sent as `timestampDigestAlgorithm`/`approvalDigestAlgorithm`.
    pub fn digest_algorithm(&self) -> &'static str {
        match self.key_type {
            ApproverKeyType::EcP384 => "SHA-384",
            ApproverKeyType::EcP521 => "SHA-512",
            ApproverKeyType::Rsa
            | ApproverKeyType::EcP256
            | ApproverKeyType::EcSecp256k1
            | ApproverKeyType::Ed25519 => "SHA-256",
        }
    }

    /// Signs arbitrary bytes with the approver scheme.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TsbError> {
        match &self.signer {
            Signer::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|_| TsbError::Crypto("RSA signing failed".into()))?;
                Ok(sig)
            }
            Signer::Ecdsa(kp) => kp
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| TsbError::Crypto("ECDSA signing failed".into())),
            Signer::Ed25519(kp) => Ok(kp.sign(message).as_ref().to_vec()),
        }
    }

    /// Formats `now` as the approver timestamp (ISO-8601 UTC with `Z`, whole seconds) and signs
    /// its UTF-8 bytes. Returns `(timestamp, signature)`.
    pub fn sign_timestamp(&self, now: OffsetDateTime) -> Result<(String, Vec<u8>), TsbError> {
        let timestamp = format_timestamp(now)?;
        let signature = self.sign(timestamp.as_bytes())?;
        Ok((timestamp, signature))
    }

    /// Signs the decoded `approvalToBeSigned` bytes of a task.
    pub fn sign_approval(&self, approval_to_be_signed: &[u8]) -> Result<Vec<u8>, TsbError> {
        self.sign(approval_to_be_signed)
    }

    /// `(approverPublicKey, approverCertificate)` as the request fields want them: exactly one
    /// is set.
    pub(crate) fn identity_fields(&self) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        match &self.certificate {
            Some(cert) => (None, Some(cert.clone())),
            None => (Some(self.spki.clone()), None),
        }
    }
}

/// ISO-8601 UTC, whole seconds, `Z` suffix (e.g. `2026-11-28T22:54:06Z`).
pub(crate) fn format_timestamp(now: OffsetDateTime) -> Result<String, TsbError> {
    let utc = now
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .map_err(|e| TsbError::InvalidInput(format!("timestamp: {e}")))?;
    utc.format(&Rfc3339)
        .map_err(|e| TsbError::InvalidInput(format!("timestamp: {e}")))
}
