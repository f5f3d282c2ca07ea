//! Software crypto of the emulated HSM: key generation/import/export, sign/verify, HMAC,
//! encrypt/decrypt, wrap/unwrap, X.509 (CSR, self-signed, issuing) and approver-signature checks.
//!
//! Owns all use of cryptographic libraries in the emulator (except the storage module's at-rest
//! AES-GCM). Every primitive comes from a well-kept library: aws-lc-rs first; RustCrypto crates
//! (DSA, brainpool, secp224r1, deterministic ECDSA, Camellia, ChaCha20, TDEA, SLH-DSA) and blst
//! (BLS) only where aws-lc-rs lacks the algorithm. What no such library implements is refused
//! with the TSB's own error code (see [`CryptoError::error_code`]), never substituted.
//!
//! Must not depend on the server, storage or SKA modules: it only does the math and the
//! algorithm checks; attributes, policies and permissions are the server's business.

mod approver;
mod cipher;
mod keys;
mod sign;
mod wrap;
pub mod x509;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use approver::{certificate_public_key, verify_approver_signature};
pub use x509::{SubjectAttributes, create_csr, self_signed_certificate, sign_csr};

/// Parameters of a key to create (or of the key that an unwrap produces), as the TSB request
/// carries them (`algorithm`, `keySize`, `curveOid`, `algorithmOid`).
#[derive(Debug, Clone, Copy, Default)]
pub struct KeySpec<'a> {
    /// TSB algorithm name (`RSA`, `EC`, `AES`, `ML-DSA-65`, ...); matched case-insensitively.
    pub algorithm: &'a str,
    /// Key size in bits where the algorithm has one.
    pub key_size: Option<u32>,
    /// Curve OID for `EC`/`ED`.
    pub curve_oid: Option<&'a str>,
    /// Optional algorithm OID (BLS variant); echoed in the key descriptor.
    pub algorithm_oid: Option<&'a str>,
}

/// Body of `POST /v1/key/import/plain` after base64 decoding (PEM armour already removed).
#[derive(Clone, Default)]
pub struct PlainImport {
    /// TSB algorithm name.
    pub algorithm: String,
    /// Curve OID (EC/ED), optional: taken from the key encoding when absent.
    pub curve_oid: Option<String>,
    /// PKCS#8 DER private key (raw 32-byte secret for BLS, raw expanded key for ML-KEM also accepted).
    pub private_key: Option<Zeroizing<Vec<u8>>>,
    /// SubjectPublicKeyInfo DER.
    pub public_key: Option<Vec<u8>>,
    /// Raw secret key bytes (AES, Camellia, ChaCha20, TDEA, HMACSHA256).
    pub secret_key: Option<Zeroizing<Vec<u8>>>,
    /// DER X.509 certificate (public-only import when no private key is given).
    pub certificate: Option<Vec<u8>>,
}

impl std::fmt::Debug for PlainImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainImport")
            .field("algorithm", &self.algorithm)
            .field("curve_oid", &self.curve_oid)
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .field("public_key", &self.public_key.as_ref().map(Vec::len))
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("certificate", &self.certificate.as_ref().map(Vec::len))
            .finish()
    }
}

/// Result of `export_plain`: what `POST /v1/key/export/plain` returns (before base64).
#[derive(Default)]
pub struct ExportedKey {
    /// PKCS#8 DER private key.
    pub private_key: Option<Zeroizing<Vec<u8>>>,
    /// SubjectPublicKeyInfo DER.
    pub public_key: Option<Vec<u8>>,
    /// Raw secret key bytes.
    pub secret_key: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for ExportedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportedKey")
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .field("public_key", &self.public_key.as_ref().map(Vec::len))
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// `signatureType` of a sign request: DER (default), RAW (r||s fixed width), ETH (r||s||v).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureType {
    /// ASN.1 DER for (EC)DSA; the algorithm's only encoding otherwise.
    #[default]
    Der,
    /// r||s, each left-padded to the group order width (ECDSA/DSA).
    Raw,
    /// r||s||v for secp256k1 (v = 27 + recovery id), Ethereum style.
    Eth,
}

impl SignatureType {
    /// Parses the TSB `signatureType` value; `None`/empty means DER.
    pub fn parse(value: Option<&str>) -> Result<Self, CryptoError> {
        match value.map(str::trim) {
            None | Some("") => Ok(Self::Der),
            Some(v) if v.eq_ignore_ascii_case("DER") => Ok(Self::Der),
            Some(v) if v.eq_ignore_ascii_case("RAW") => Ok(Self::Raw),
            Some(v) if v.eq_ignore_ascii_case("ETH") => Ok(Self::Eth),
            Some(v) => Err(CryptoError::InputValidation(format!(
                "unknown signatureType {v}"
            ))),
        }
    }
}

/// Result of `encrypt`, mapped 1:1 onto the TSB encrypt response fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    /// `encryptedPayload`: ciphertext, including the tag for AEAD ciphers.
    pub encrypted_payload: Vec<u8>,
    /// `encryptedPayloadWithoutMessageAuthenticationCode`: ciphertext without the tag.
    pub without_mac: Vec<u8>,
    /// `initializationVector` (None for ECB and RSA).
    pub iv: Option<Vec<u8>>,
    /// `messageAuthenticationCode` (AEAD tag), None otherwise.
    pub mac: Option<Vec<u8>>,
}

/// Errors carry the TSB business code the server must answer with.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// 600 input.validation.failed
    #[error("input validation failed: {0}")]
    InputValidation(String),
    /// 601 unsupported.approver.key.type
    #[error("unsupported approver key type: {0}")]
    UnsupportedApproverKeyType(String),
    /// 603 input.keysize
    #[error("key size not supported: {0}")]
    KeySize(String),
    /// 607 algorithm.not.supported.by.key
    #[error("algorithm not supported by key: {0}")]
    AlgorithmNotSupportedByKey(String),
    /// 611 unsupported.operation
    #[error("unsupported operation: {0}")]
    UnsupportedOperation(String),
    /// 612 invalid.payload
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    /// 613 invalid.key.type
    #[error("invalid key type: {0}")]
    InvalidKeyType(String),
    /// 624 key.invalid.tagLength
    #[error("invalid tag length: {0}")]
    TagLength(String),
    /// 625 key.invalid.encoding
    #[error("invalid key encoding: {0}")]
    KeyEncoding(String),
    /// 626 certificate.invalid.encoding
    #[error("invalid certificate encoding: {0}")]
    CertificateEncoding(String),
    /// 402 invalid.certificate (e.g. CA certificate does not belong to the CA key)
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// 628 csr.invalid.format
    #[error("invalid certificate signing request: {0}")]
    CsrFormat(String),
    /// 629 unsupported.cipher
    #[error("unsupported cipher: {0}")]
    UnsupportedCipher(String),
    /// 403 input.invalid.signature
    #[error("invalid signature")]
    InvalidSignature,
    /// 410 decrypt.failed
    #[error("decryption failed")]
    DecryptFailed,
    /// 701 in.hsm (operation failed inside the "HSM", e.g. integrity failure on unwrap)
    #[error("operation failed in the HSM: {0}")]
    Hsm(String),
}

impl CryptoError {
    /// TSB `errorCode`.
    pub fn error_code(&self) -> u32 {
        match self {
            Self::InputValidation(_) => 600,
            Self::UnsupportedApproverKeyType(_) => 601,
            Self::KeySize(_) => 603,
            Self::AlgorithmNotSupportedByKey(_) => 607,
            Self::UnsupportedOperation(_) => 611,
            Self::InvalidPayload(_) => 612,
            Self::InvalidKeyType(_) => 613,
            Self::TagLength(_) => 624,
            Self::KeyEncoding(_) => 625,
            Self::CertificateEncoding(_) => 626,
            Self::InvalidCertificate(_) => 402,
            Self::CsrFormat(_) => 628,
            Self::UnsupportedCipher(_) => 629,
            Self::InvalidSignature => 403,
            Self::DecryptFailed => 410,
            Self::Hsm(_) => 701,
        }
    }

    /// TSB `reason` (`res.error.*`) matching [`Self::error_code`].
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InputValidation(_) => "res.error.input.validation.failed",
            Self::UnsupportedApproverKeyType(_) => "res.error.unsupported.approver.key.type",
            Self::KeySize(_) => "res.error.input.keysize",
            Self::AlgorithmNotSupportedByKey(_) => "res.error.algorithm.not.supported.by.key",
            Self::UnsupportedOperation(_) => "res.error.unsupported.operation",
            Self::InvalidPayload(_) => "res.error.invalid.payload",
            Self::InvalidKeyType(_) => "res.error.invalid.key.type",
            Self::TagLength(_) => "res.error.key.invalid.tagLength",
            Self::KeyEncoding(_) => "res.error.key.invalid.encoding",
            Self::CertificateEncoding(_) => "res.error.certificate.invalid.encoding",
            Self::InvalidCertificate(_) => "res.error.invalid.certificate",
            Self::CsrFormat(_) => "res.error.csr.invalid.format",
            Self::UnsupportedCipher(_) => "res.error.unsupported.cipher",
            Self::InvalidSignature => "res.error.input.invalid.signature",
            Self::DecryptFailed => "res.error.decrypt.failed",
            Self::Hsm(_) => "res.error.in.hsm",
        }
    }
}

/// Secret/private material of one HSM key plus the metadata needed to use it.
///
/// Serialised by the server into its (encrypted) state files: private keys as PKCS#8 DER,
/// secret keys as raw bytes (BLS: raw 32-byte scalar, ML-KEM: raw expanded decapsulation
/// key), all base64 in serde and zeroized on drop. `Debug` never prints material.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyMaterial {
    algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    curve_oid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    algorithm_oid: Option<String>,
    /// PKCS#8 DER (asymmetric) or raw secret bytes (symmetric, BLS, ML-KEM).
    #[serde(default, with = "b64_secret", skip_serializing_if = "Option::is_none")]
    private: Option<Zeroizing<Vec<u8>>>,
    /// SubjectPublicKeyInfo DER (asymmetric keys only).
    #[serde(default, with = "b64_public", skip_serializing_if = "Option::is_none")]
    public: Option<Vec<u8>>,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("algorithm", &self.algorithm)
            .field("key_size", &self.key_size)
            .field("curve_oid", &self.curve_oid)
            .field("has_private", &self.private.is_some())
            .finish_non_exhaustive()
    }
}

mod b64_secret {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub fn serialize<S: Serializer>(
        value: &Option<Zeroizing<Vec<u8>>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_str(&Zeroizing::new(STANDARD.encode(v.as_slice()))),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            let t = Zeroizing::new(t);
            STANDARD
                .decode(t.as_bytes())
                .map(Zeroizing::new)
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

mod b64_public {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_str(&STANDARD.encode(v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            STANDARD
                .decode(t.as_bytes())
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

/// Creates a new key (the math part of `POST /v1/key`).
///
/// RSA 4096/8192 and DSA 2048/3072 generation take seconds (DSA in debug builds: long).
pub fn generate(spec: &KeySpec) -> Result<KeyMaterial, CryptoError> {
    keys::generate(spec)
}

/// Imports plain key material (`POST /v1/key/import/plain`): PKCS#8 private keys, SPKI
/// public-only keys, raw secret keys, or a certificate (public-only).
pub fn import_plain(req: &PlainImport) -> Result<KeyMaterial, CryptoError> {
    keys::import_plain(req)
}

/// `GET /v1/generateRandom/{length}`; at most 1 MiB.
pub fn random_bytes(len: usize) -> Result<Vec<u8>, CryptoError> {
    if len > 1 << 20 {
        return Err(CryptoError::InputValidation(
            "random length above 1 MiB".into(),
        ));
    }
    let mut out = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut out)
        .map_err(|_| CryptoError::Hsm("random generator failed".into()))?;
    Ok(out)
}

impl KeyMaterial {
    /// TSB algorithm name as stored (`RSA`, `EC`, `ED`, `AES`, `Camellia`, `ML-DSA-65`, ...).
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    /// Key size in bits (RSA/DSA modulus, EC curve size, symmetric key length); None otherwise.
    pub fn key_size(&self) -> Option<u32> {
        self.key_size
    }

    /// Curve OID for EC/ED keys.
    pub fn curve_oid(&self) -> Option<&str> {
        self.curve_oid.as_deref()
    }

    /// Algorithm OID shown in the key descriptor (the requested one for BLS, else the standard one).
    pub fn algorithm_oid(&self) -> Option<String> {
        if let Some(oid) = &self.algorithm_oid {
            return Some(oid.clone());
        }
        keys::Kind::of(self)
            .ok()
            .and_then(|k| k.default_algorithm_oid())
            .map(str::to_owned)
    }

    /// SubjectPublicKeyInfo DER for asymmetric keys, None for secret keys.
    pub fn public_key_der(&self) -> Option<Vec<u8>> {
        self.public.clone()
    }

    /// False for public-key or certificate-only imports.
    pub fn has_private(&self) -> bool {
        self.private.is_some()
    }

    /// True when one operation with this key takes microseconds (symmetric keys, Ed25519,
    /// P-256 through aws-lc-rs): the server runs such operations inline on its async workers.
    /// Everything else (RSA, DSA, other curves, post-quantum, BLS: 0.2-15 ms per signature in
    /// a debug build) goes to the blocking pool so it never stalls the async runtime.
    pub fn is_fast(&self) -> bool {
        match keys::Kind::of(self) {
            Ok(k) => {
                k.is_secret()
                    || matches!(k, keys::Kind::Ed25519 | keys::Kind::Ec(keys::Curve::P256))
            }
            Err(_) => false,
        }
    }

    /// Signs `payload` with `signature_algorithm` (TSB name).
    pub fn sign(
        &self,
        signature_algorithm: &str,
        payload: &[u8],
        signature_type: SignatureType,
    ) -> Result<Vec<u8>, CryptoError> {
        sign::sign(self, signature_algorithm, payload, signature_type)
    }

    /// Verifies a signature made by `sign` (DER or RAW encodings are both accepted for (EC)DSA).
    pub fn verify(
        &self,
        signature_algorithm: &str,
        payload: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        sign::verify(self, signature_algorithm, payload, signature)
    }

    /// HMAC-SHA256 with an `HMACSHA256` key (`/v1/synchronousHmac`).
    pub fn hmac(&self, payload: &[u8]) -> Result<Vec<u8>, CryptoError> {
        sign::hmac(self, payload)
    }

    /// Constant-time HMAC check (`verifyHmacRequest`).
    pub fn verify_hmac(&self, payload: &[u8], mac: &[u8]) -> Result<bool, CryptoError> {
        sign::verify_hmac(self, payload, mac)
    }

    /// Encrypts with a TSB cipher name; IVs/nonces are random and returned in [`Encrypted`].
    pub fn encrypt(
        &self,
        cipher_algorithm: &str,
        payload: &[u8],
        tag_length_bits: Option<u32>,
        aad: Option<&[u8]>,
    ) -> Result<Encrypted, CryptoError> {
        cipher::encrypt(self, cipher_algorithm, payload, tag_length_bits, aad)
    }

    /// Decrypts; for AEAD ciphers `ciphertext` includes the tag (the `encryptedPayload`).
    pub fn decrypt(
        &self,
        cipher_algorithm: &str,
        ciphertext: &[u8],
        iv: Option<&[u8]>,
        tag_length_bits: Option<u32>,
        aad: Option<&[u8]>,
    ) -> Result<Vec<u8>, CryptoError> {
        cipher::decrypt(self, cipher_algorithm, ciphertext, iv, tag_length_bits, aad)
    }

    /// Wraps `key_to_wrap` with this key (`/v1/wrap`).
    pub fn wrap(
        &self,
        wrap_method: &str,
        key_to_wrap: &KeyMaterial,
    ) -> Result<Vec<u8>, CryptoError> {
        wrap::wrap(self, wrap_method, key_to_wrap)
    }

    /// Unwraps `wrapped` with this key into a new key described by `new_key`.
    pub fn unwrap(
        &self,
        wrap_method: &str,
        wrapped: &[u8],
        new_key: &KeySpec,
    ) -> Result<KeyMaterial, CryptoError> {
        wrap::unwrap(self, wrap_method, wrapped, new_key)
    }

    /// Plain export (`/v1/key/export/plain`); the server checks extractable/sensitive first.
    pub fn export_plain(&self) -> ExportedKey {
        keys::export_plain(self)
    }
}
