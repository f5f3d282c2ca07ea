//! Key kinds, generation, import and export.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::KeyPair as _;
use der::asn1::{BitString, OctetString};
use der::{Decode as _, Encode as _};
use pkcs8::{EncodePrivateKey as _, ObjectIdentifier};
use spki::{AlgorithmIdentifierOwned, EncodePublicKey as _, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use super::{CryptoError, ExportedKey, KeyMaterial, KeySpec, PlainImport};

pub(crate) const OID_RSA: &str = "1.2.840.113549.1.1.1";
pub(crate) const OID_EC: &str = "1.2.840.10045.2.1";
pub(crate) const OID_DSA: &str = "1.2.840.10040.4.1";
pub(crate) const OID_ED25519: &str = "1.3.101.112";
pub(crate) const OID_BLS_DEFAULT: &str = "1.3.6.1.4.1.44668.5.3.1.1";

/// Elliptic curves this emulator can do (TSB `curveOid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P224,
    P256,
    P384,
    P521,
    K256,
    Bp256,
    Bp384,
}

impl Curve {
    pub(crate) fn from_oid(oid: &str) -> Result<Self, CryptoError> {
        Ok(match oid.trim() {
            "1.3.132.0.33" => Self::P224,
            "1.2.840.10045.3.1.7" => Self::P256,
            "1.3.132.0.34" => Self::P384,
            "1.3.132.0.35" => Self::P521,
            "1.3.132.0.10" => Self::K256,
            "1.3.36.3.3.2.8.1.1.7" => Self::Bp256,
            "1.3.36.3.3.2.8.1.1.11" => Self::Bp384,
            other => {
                return Err(CryptoError::InvalidKeyType(format!(
                    "curve {other} is not supported by the emulator"
                )));
            }
        })
    }

    pub(crate) fn oid(self) -> &'static str {
        match self {
            Self::P224 => "1.3.132.0.33",
            Self::P256 => "1.2.840.10045.3.1.7",
            Self::P384 => "1.3.132.0.34",
            Self::P521 => "1.3.132.0.35",
            Self::K256 => "1.3.132.0.10",
            Self::Bp256 => "1.3.36.3.3.2.8.1.1.7",
            Self::Bp384 => "1.3.36.3.3.2.8.1.1.11",
        }
    }

    pub(crate) fn bits(self) -> u32 {
        match self {
            Self::P224 => 224,
            Self::P256 | Self::K256 | Self::Bp256 => 256,
            Self::P384 | Self::Bp384 => 384,
            Self::P521 => 521,
        }
    }

    /// Byte width of a scalar (r or s in RAW signatures).
    pub(crate) fn scalar_len(self) -> usize {
        (self.bits() as usize).div_ceil(8)
    }

    /// aws-lc-rs signing algorithm for the curves it implements (digest-sized prehash input).
    pub(crate) fn aws_signing(
        self,
    ) -> Option<&'static aws_lc_rs::signature::EcdsaSigningAlgorithm> {
        use aws_lc_rs::signature as s;
        match self {
            Self::P256 => Some(&s::ECDSA_P256_SHA256_ASN1_SIGNING),
            Self::P384 => Some(&s::ECDSA_P384_SHA384_ASN1_SIGNING),
            Self::P521 => Some(&s::ECDSA_P521_SHA512_ASN1_SIGNING),
            Self::K256 => Some(&s::ECDSA_P256K1_SHA256_ASN1_SIGNING),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MlDsa {
    L44,
    L65,
    L87,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MlKem {
    L512,
    L768,
    L1024,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlhParam {
    Sha2_128s,
    Sha2_128f,
    Sha2_192s,
    Sha2_192f,
    Sha2_256s,
    Sha2_256f,
    Shake128s,
    Shake128f,
    Shake192s,
    Shake192f,
    Shake256s,
    Shake256f,
}

const SLH_NAMES: [(&str, SlhParam, &str); 12] = [
    (
        "SLH-DSA-SHA2-128s",
        SlhParam::Sha2_128s,
        "2.16.840.1.101.3.4.3.20",
    ),
    (
        "SLH-DSA-SHA2-128f",
        SlhParam::Sha2_128f,
        "2.16.840.1.101.3.4.3.21",
    ),
    (
        "SLH-DSA-SHA2-192s",
        SlhParam::Sha2_192s,
        "2.16.840.1.101.3.4.3.22",
    ),
    (
        "SLH-DSA-SHA2-192f",
        SlhParam::Sha2_192f,
        "2.16.840.1.101.3.4.3.23",
    ),
    (
        "SLH-DSA-SHA2-256s",
        SlhParam::Sha2_256s,
        "2.16.840.1.101.3.4.3.24",
    ),
    (
        "SLH-DSA-SHA2-256f",
        SlhParam::Sha2_256f,
        "2.16.840.1.101.3.4.3.25",
    ),
    (
        "SLH-DSA-SHAKE-128s",
        SlhParam::Shake128s,
        "2.16.840.1.101.3.4.3.26",
    ),
    (
        "SLH-DSA-SHAKE-128f",
        SlhParam::Shake128f,
        "2.16.840.1.101.3.4.3.27",
    ),
    (
        "SLH-DSA-SHAKE-192s",
        SlhParam::Shake192s,
        "2.16.840.1.101.3.4.3.28",
    ),
    (
        "SLH-DSA-SHAKE-192f",
        SlhParam::Shake192f,
        "2.16.840.1.101.3.4.3.29",
    ),
    (
        "SLH-DSA-SHAKE-256s",
        SlhParam::Shake256s,
        "2.16.840.1.101.3.4.3.30",
    ),
    (
        "SLH-DSA-SHAKE-256f",
        SlhParam::Shake256f,
        "2.16.840.1.101.3.4.3.31",
    ),
];

/// Runs `$body` with `$T` bound to the slh-dsa parameter-set type of `$p`.
macro_rules! slh_dispatch {
    ($p:expr, $T:ident => $body:expr) => {
        match $p {
            SlhParam::Sha2_128s => {
                type $T = slh_dsa::Sha2_128s;
                $body
            }
            SlhParam::Sha2_128f => {
                type $T = slh_dsa::Sha2_128f;
                $body
            }
            SlhParam::Sha2_192s => {
                type $T = slh_dsa::Sha2_192s;
                $body
            }
            SlhParam::Sha2_192f => {
                type $T = slh_dsa::Sha2_192f;
                $body
            }
            SlhParam::Sha2_256s => {
                type $T = slh_dsa::Sha2_256s;
                $body
            }
            SlhParam::Sha2_256f => {
                type $T = slh_dsa::Sha2_256f;
                $body
            }
            SlhParam::Shake128s => {
                type $T = slh_dsa::Shake128s;
                $body
            }
            SlhParam::Shake128f => {
                type $T = slh_dsa::Shake128f;
                $body
            }
            SlhParam::Shake192s => {
                type $T = slh_dsa::Shake192s;
                $body
            }
            SlhParam::Shake192f => {
                type $T = slh_dsa::Shake192f;
                $body
            }
            SlhParam::Shake256s => {
                type $T = slh_dsa::Shake256s;
                $body
            }
            SlhParam::Shake256f => {
                type $T = slh_dsa::Shake256f;
                $body
            }
        }
    };
}
pub(crate) use slh_dispatch;

/// Runs `$body` with `$C` bound to the RustCrypto curve type (new generation crates).
/// `P224` is excluded (older crate generation) and must be handled separately.
macro_rules! rc_curve_dispatch {
    ($curve:expr, $C:ident => $body:expr, p224 => $p224:expr) => {
        match $curve {
            Curve::P256 => {
                type $C = p256::NistP256;
                $body
            }
            Curve::P384 => {
                type $C = p384::NistP384;
                $body
            }
            Curve::P521 => {
                type $C = p521::NistP521;
                $body
            }
            Curve::K256 => {
                type $C = k256::Secp256k1;
                $body
            }
            Curve::Bp256 => {
                type $C = bp256::BrainpoolP256r1;
                $body
            }
            Curve::Bp384 => {
                type $C = bp384::BrainpoolP384r1;
                $body
            }
            Curve::P224 => $p224,
        }
    };
}
pub(crate) use rc_curve_dispatch;

/// What a stored key is, derived from its algorithm name and curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Rsa,
    Dsa,
    Ec(Curve),
    Ed25519,
    Bls,
    MlDsa(MlDsa),
    SlhDsa(SlhParam),
    MlKem(MlKem),
    Aes,
    Camellia,
    ChaCha20,
    Tdea,
    HmacSha256,
}

/// Algorithm names the TSB lists but no well-kept library implements → 613.
const REFUSED: [&str; 17] = [
    "ISS",
    "LMS",
    "HSS-LMS",
    "XMSS",
    "XMSS-SHA256_10_256",
    "XMSS-SHAKE256_10_256",
    "DILITHIUM_L2",
    "DILITHIUM_L3",
    "DILITHIUM_L5",
    "KYBER512_WITH_SHAKE",
    "KYBER768_WITH_SHAKE",
    "KYBER1024_WITH_SHAKE",
    "KYBER512_WITH_SHA2_AES",
    "KYBER768_WITH_SHA2_AES",
    "KYBER1024_WITH_SHA2_AES",
    "SPHINCS_PLUS_SHAKE_L1",
    "SPHINCS_PLUS_SHAKE_L3",
];

/// Canonical TSB spelling of an algorithm name (input is matched case-insensitively).
pub(crate) fn canonical_algorithm(
    name: &str,
    curve_oid: Option<&str>,
) -> Result<(String, Kind), CryptoError> {
    let n = name.trim();
    let upper = n.to_ascii_uppercase();
    let simple = |canon: &str, kind: Kind| Ok((canon.to_owned(), kind));
    match upper.as_str() {
        "RSA" => return simple("RSA", Kind::Rsa),
        "DSA" => return simple("DSA", Kind::Dsa),
        "ED" => {
            let oid = curve_oid.unwrap_or(OID_ED25519).trim();
            if oid != OID_ED25519 {
                return Err(CryptoError::InvalidKeyType(format!(
                    "ED curve {oid} is not supported"
                )));
            }
            return simple("ED", Kind::Ed25519);
        }
        "EC" => {
            let oid = curve_oid
                .ok_or_else(|| CryptoError::InvalidKeyType("EC key without curveOid".into()))?;
            return simple("EC", Kind::Ec(Curve::from_oid(oid)?));
        }
        "BLS" => return simple("BLS", Kind::Bls),
        "AES" => return simple("AES", Kind::Aes),
        "CAMELLIA" => return simple("Camellia", Kind::Camellia),
        "CHACHA20" => return simple("ChaCha20", Kind::ChaCha20),
        "TDEA" => return simple("TDEA", Kind::Tdea),
        "HMACSHA256" => return simple("HMACSHA256", Kind::HmacSha256),
        "ML-DSA-44" => return simple("ML-DSA-44", Kind::MlDsa(MlDsa::L44)),
        "ML-DSA-65" => return simple("ML-DSA-65", Kind::MlDsa(MlDsa::L65)),
        "ML-DSA-87" => return simple("ML-DSA-87", Kind::MlDsa(MlDsa::L87)),
        "ML-KEM-512" => return simple("ML-KEM-512", Kind::MlKem(MlKem::L512)),
        "ML-KEM-768" => return simple("ML-KEM-768", Kind::MlKem(MlKem::L768)),
        "ML-KEM-1024" => return simple("ML-KEM-1024", Kind::MlKem(MlKem::L1024)),
        _ => {}
    }
    if let Some((canon, p, _)) = SLH_NAMES.iter().find(|(c, _, _)| c.eq_ignore_ascii_case(n)) {
        return simple(canon, Kind::SlhDsa(*p));
    }
    if REFUSED.iter().any(|r| r.eq_ignore_ascii_case(n)) || upper.starts_with("SPHINCS") {
        return Err(CryptoError::InvalidKeyType(format!(
            "{n} is not implemented by any library the emulator uses"
        )));
    }
    Err(CryptoError::InvalidKeyType(format!(
        "unknown key algorithm {n}"
    )))
}

impl Kind {
    pub(crate) fn of(key: &KeyMaterial) -> Result<Self, CryptoError> {
        canonical_algorithm(&key.algorithm, key.curve_oid.as_deref()).map(|(_, k)| k)
    }

    pub(crate) fn is_secret(self) -> bool {
        matches!(
            self,
            Self::Aes | Self::Camellia | Self::ChaCha20 | Self::Tdea | Self::HmacSha256
        )
    }

    pub(crate) fn default_algorithm_oid(self) -> Option<&'static str> {
        Some(match self {
            Self::Rsa => OID_RSA,
            Self::Dsa => OID_DSA,
            Self::Ec(_) => OID_EC,
            Self::Ed25519 => OID_ED25519,
            Self::Bls => OID_BLS_DEFAULT,
            Self::MlDsa(MlDsa::L44) => "2.16.840.1.101.3.4.3.17",
            Self::MlDsa(MlDsa::L65) => "2.16.840.1.101.3.4.3.18",
            Self::MlDsa(MlDsa::L87) => "2.16.840.1.101.3.4.3.19",
            Self::SlhDsa(p) => SLH_NAMES
                .iter()
                .find(|(_, q, _)| *q == p)
                .map(|(_, _, o)| *o)?,
            Self::MlKem(MlKem::L512) => "2.16.840.1.101.3.4.4.1",
            Self::MlKem(MlKem::L768) => "2.16.840.1.101.3.4.4.2",
            Self::MlKem(MlKem::L1024) => "2.16.840.1.101.3.4.4.3",
            _ => return None,
        })
    }
}

pub(crate) fn ml_dsa_alg(l: MlDsa) -> &'static aws_lc_rs::signature::PqdsaSigningAlgorithm {
    use aws_lc_rs::signature as s;
    match l {
        MlDsa::L44 => &s::ML_DSA_44_SIGNING,
        MlDsa::L65 => &s::ML_DSA_65_SIGNING,
        MlDsa::L87 => &s::ML_DSA_87_SIGNING,
    }
}

pub(crate) fn ml_dsa_verify_alg(
    l: MlDsa,
) -> &'static aws_lc_rs::signature::PqdsaVerificationAlgorithm {
    use aws_lc_rs::signature as s;
    match l {
        MlDsa::L44 => &s::ML_DSA_44,
        MlDsa::L65 => &s::ML_DSA_65,
        MlDsa::L87 => &s::ML_DSA_87,
    }
}

fn ml_kem_alg(l: MlKem) -> &'static aws_lc_rs::kem::Algorithm {
    use aws_lc_rs::kem as k;
    match l {
        MlKem::L512 => &k::ML_KEM_512,
        MlKem::L768 => &k::ML_KEM_768,
        MlKem::L1024 => &k::ML_KEM_1024,
    }
}

pub(crate) fn hsm(what: &str) -> impl Fn(aws_lc_rs::error::Unspecified) -> CryptoError + '_ {
    move |_| CryptoError::Hsm(format!("{what} failed"))
}

fn enc_err(what: &str) -> impl Fn(der::Error) -> CryptoError + '_ {
    move |e| CryptoError::KeyEncoding(format!("{what}: {e}"))
}

/// Fallible system RNG for RustCrypto APIs (rand_core 0.10 generation).
pub(crate) fn sys_rng() -> getrandom::SysRng {
    getrandom::SysRng
}

/// Builds a SubjectPublicKeyInfo DER with absent parameters.
pub(crate) fn build_spki(oid: &str, key: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let oid = ObjectIdentifier::new(oid)
        .map_err(|e| CryptoError::InputValidation(format!("bad OID: {e}")))?;
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        },
        subject_public_key: BitString::from_bytes(key).map_err(enc_err("public key"))?,
    };
    spki.to_der().map_err(enc_err("public key"))
}

/// Builds a PKCS#8 (v1) with absent parameters around `private_key` (already DER or raw).
fn build_pkcs8(oid: &str, private_key: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let oid = ObjectIdentifier::new(oid)
        .map_err(|e| CryptoError::InputValidation(format!("bad OID: {e}")))?;
    let info = pkcs8::PrivateKeyInfoRef::new(
        spki::AlgorithmIdentifierRef {
            oid,
            parameters: None,
        },
        der::asn1::OctetStringRef::new(private_key).map_err(enc_err("private key"))?,
    );
    info.to_der()
        .map(Zeroizing::new)
        .map_err(enc_err("private key"))
}

/// (algorithm OID, parameters OID if any, BIT STRING contents) of an SPKI.
pub(crate) fn parse_spki(
    der_bytes: &[u8],
) -> Result<(String, Option<String>, Vec<u8>), CryptoError> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(der_bytes).map_err(enc_err("public key"))?;
    let params = spki.algorithm.parameters_oid().ok().map(|o| o.to_string());
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CryptoError::KeyEncoding("public key bit string not octet aligned".into()))?
        .to_vec();
    Ok((spki.algorithm.oid.to_string(), params, bits))
}

/// (algorithm OID, parameters OID if any, privateKey OCTET STRING contents) of a PKCS#8.
type Pkcs8Parts = (String, Option<String>, Zeroizing<Vec<u8>>);

/// (normalised PKCS#8, derived SPKI, key size) of a loaded private key.
type LoadedKey = (Zeroizing<Vec<u8>>, Vec<u8>, Option<u32>);

fn parse_pkcs8(der_bytes: &[u8]) -> Result<Pkcs8Parts, CryptoError> {
    let info = pkcs8::PrivateKeyInfoRef::from_der(der_bytes).map_err(enc_err("private key"))?;
    let params = info.algorithm.parameters_oid().ok().map(|o| o.to_string());
    Ok((
        info.algorithm.oid.to_string(),
        params,
        Zeroizing::new(info.private_key.as_bytes().to_vec()),
    ))
}

fn secret_key(algorithm: String, bytes: Zeroizing<Vec<u8>>) -> KeyMaterial {
    KeyMaterial {
        algorithm,
        key_size: Some(u32::try_from(bytes.len() * 8).unwrap_or(u32::MAX)),
        curve_oid: None,
        algorithm_oid: None,
        private: Some(bytes),
        public: None,
    }
}

impl KeyMaterial {
    pub(crate) fn set_algorithm_oid(&mut self, oid: &str) {
        self.algorithm_oid = Some(oid.to_owned());
    }

    pub(crate) fn private_bytes(&self) -> Result<&[u8], CryptoError> {
        self.private
            .as_deref()
            .map(Vec::as_slice)
            .ok_or_else(|| CryptoError::UnsupportedOperation("key has no private part".into()))
    }

    pub(crate) fn public_bytes(&self) -> Result<&[u8], CryptoError> {
        self.public
            .as_deref()
            .ok_or_else(|| CryptoError::UnsupportedOperation("key has no public part".into()))
    }
}

fn random_secret(len_bytes: usize) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut out = Zeroizing::new(vec![0u8; len_bytes]);
    aws_lc_rs::rand::fill(out.as_mut_slice()).map_err(hsm("random generator"))?;
    Ok(out)
}

fn check_secret_len(kind: Kind, len: usize) -> Result<(), CryptoError> {
    let ok = match kind {
        Kind::Aes | Kind::Camellia => matches!(len, 16 | 24 | 32),
        Kind::ChaCha20 => len == 32,
        Kind::Tdea => len == 24,
        Kind::HmacSha256 => (14..=512).contains(&len),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(CryptoError::KeySize(format!(
            "{} bits is not a valid size for {kind:?}",
            len * 8
        )))
    }
}

pub(crate) fn generate(spec: &KeySpec) -> Result<KeyMaterial, CryptoError> {
    let (algorithm, kind) = canonical_algorithm(spec.algorithm, spec.curve_oid)?;
    let mut key = match kind {
        Kind::Aes | Kind::Camellia | Kind::ChaCha20 | Kind::Tdea | Kind::HmacSha256 => {
            let bits = match (kind, spec.key_size) {
                (Kind::ChaCha20, None) => 256,
                (Kind::Tdea, None | Some(0)) => 192,
                (Kind::Tdea, Some(168 | 192)) => 192,
                (Kind::HmacSha256, None) => 256,
                (_, Some(b)) => b,
                (_, None) => {
                    return Err(CryptoError::KeySize(format!("{algorithm} needs keySize")));
                }
            };
            if bits % 8 != 0 {
                return Err(CryptoError::KeySize(format!(
                    "{bits} is not a multiple of 8"
                )));
            }
            let len = (bits / 8) as usize;
            check_secret_len(kind, len)?;
            secret_key(algorithm, random_secret(len)?)
        }
        Kind::Rsa => {
            use aws_lc_rs::rsa::{KeyPair, KeySize};
            let size = match spec.key_size {
                Some(2048) => KeySize::Rsa2048,
                Some(3072) => KeySize::Rsa3072,
                Some(4096) => KeySize::Rsa4096,
                Some(8192) => KeySize::Rsa8192,
                other => return Err(CryptoError::KeySize(format!("RSA key size {other:?}"))),
            };
            let kp = KeyPair::generate(size).map_err(hsm("RSA key generation"))?;
            let pkcs8: Pkcs8V1Der = kp.as_der().map_err(hsm("RSA encoding"))?;
            let spki: PublicKeyX509Der = kp.public_key().as_der().map_err(hsm("RSA encoding"))?;
            asym(
                algorithm,
                spec.key_size,
                None,
                pkcs8.as_ref(),
                spki.as_ref(),
            )
        }
        Kind::Dsa => {
            #[allow(deprecated, reason = "TSB offers 1024-bit DSA keys")]
            let size = match spec.key_size {
                Some(1024) => dsa::KeySize::DSA_1024_160,
                Some(2048) => dsa::KeySize::DSA_2048_256,
                Some(3072) => dsa::KeySize::DSA_3072_256,
                other => {
                    return Err(CryptoError::KeySize(format!(
                        "DSA key size {other:?} (the dsa crate offers 1024, 2048, 3072)"
                    )));
                }
            };
            let mut rng = sys_rng();
            let components = dsa::Components::try_generate_from_rng_with_key_size(&mut rng, size)
                .map_err(|_| CryptoError::Hsm("random generator failed".into()))?;
            let sk = dsa::SigningKey::try_generate_from_rng_with_components(&mut rng, components)
                .map_err(|_| CryptoError::Hsm("random generator failed".into()))?;
            let pkcs8 = sk
                .to_pkcs8_der()
                .map_err(|e| CryptoError::Hsm(format!("DSA encoding: {e}")))?;
            let spki = sk
                .verifying_key()
                .to_public_key_der()
                .map_err(|e| CryptoError::Hsm(format!("DSA encoding: {e}")))?;
            asym(
                algorithm,
                spec.key_size,
                None,
                pkcs8.as_bytes(),
                spki.as_bytes(),
            )
        }
        Kind::Ec(curve) => {
            let (pkcs8, spki) = generate_ec(curve)?;
            asym(
                algorithm,
                Some(curve.bits()),
                Some(curve.oid()),
                &pkcs8,
                &spki,
            )
        }
        Kind::Ed25519 => {
            let kp = aws_lc_rs::signature::Ed25519KeyPair::generate()
                .map_err(hsm("Ed25519 key generation"))?;
            let pkcs8: Pkcs8V1Der = kp.as_der().map_err(hsm("Ed25519 encoding"))?;
            let spki: PublicKeyX509Der =
                kp.public_key().as_der().map_err(hsm("Ed25519 encoding"))?;
            asym(
                algorithm,
                None,
                Some(OID_ED25519),
                pkcs8.as_ref(),
                spki.as_ref(),
            )
        }
        Kind::MlDsa(l) => {
            let kp = aws_lc_rs::signature::PqdsaKeyPair::generate(ml_dsa_alg(l))
                .map_err(hsm("ML-DSA key generation"))?;
            let pkcs8 = kp.to_pkcs8v1().map_err(hsm("ML-DSA encoding"))?;
            let spki: PublicKeyX509Der =
                kp.public_key().as_der().map_err(hsm("ML-DSA encoding"))?;
            asym(algorithm, None, None, pkcs8.as_ref(), spki.as_ref())
        }
        Kind::SlhDsa(p) => slh_dispatch!(p, P => {
            let mut rng = rand_core::UnwrapErr(sys_rng());
            let sk = slh_dsa::SigningKey::<P>::new(&mut rng);
            let pkcs8 = sk.to_pkcs8_der().map_err(|e| CryptoError::Hsm(format!("SLH-DSA encoding: {e}")))?;
            let spki = sk.as_ref().to_public_key_der().map_err(|e| CryptoError::Hsm(format!("SLH-DSA encoding: {e}")))?;
            asym(algorithm, None, None, pkcs8.as_bytes(), spki.as_bytes())
        }),
        Kind::Bls => {
            let ikm = random_secret(32)?;
            let sk = blst::min_pk::SecretKey::key_gen(&ikm, &[])
                .map_err(|e| CryptoError::Hsm(format!("BLS key generation: {e:?}")))?;
            let oid = spec.algorithm_oid.unwrap_or(OID_BLS_DEFAULT);
            let spki = build_spki(oid, &sk.sk_to_pk().compress())?;
            let secret = Zeroizing::new(sk.to_bytes().to_vec());
            KeyMaterial {
                algorithm,
                key_size: None,
                curve_oid: None,
                algorithm_oid: Some(oid.to_owned()),
                private: Some(secret),
                public: Some(spki),
            }
        }
        Kind::MlKem(l) => {
            let dk = aws_lc_rs::kem::DecapsulationKey::generate(ml_kem_alg(l))
                .map_err(hsm("ML-KEM key generation"))?;
            ml_kem_material(algorithm, kind, &dk)?
        }
    };
    if let (Some(oid), None) = (spec.algorithm_oid, &key.algorithm_oid) {
        key.algorithm_oid = Some(oid.to_owned());
    }
    Ok(key)
}

fn ml_kem_material(
    algorithm: String,
    kind: Kind,
    dk: &aws_lc_rs::kem::DecapsulationKey,
) -> Result<KeyMaterial, CryptoError> {
    let ek = dk.encapsulation_key().map_err(hsm("ML-KEM encoding"))?;
    let ek_bytes = ek.key_bytes().map_err(hsm("ML-KEM encoding"))?;
    let dk_bytes = dk.key_bytes().map_err(hsm("ML-KEM encoding"))?;
    let oid = kind.default_algorithm_oid().unwrap_or_default();
    Ok(KeyMaterial {
        algorithm,
        key_size: None,
        curve_oid: None,
        algorithm_oid: None,
        private: Some(Zeroizing::new(dk_bytes.as_ref().to_vec())),
        public: Some(build_spki(oid, ek_bytes.as_ref())?),
    })
}

fn asym(
    algorithm: String,
    key_size: Option<u32>,
    curve: Option<&str>,
    pkcs8: &[u8],
    spki: &[u8],
) -> KeyMaterial {
    KeyMaterial {
        algorithm,
        key_size,
        curve_oid: curve.map(str::to_owned),
        algorithm_oid: None,
        private: Some(Zeroizing::new(pkcs8.to_vec())),
        public: Some(spki.to_vec()),
    }
}

/// (PKCS#8, SPKI) of a fresh EC key.
fn generate_ec(curve: Curve) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
    if let Some(alg) = curve.aws_signing() {
        let kp =
            aws_lc_rs::signature::EcdsaKeyPair::generate(alg).map_err(hsm("EC key generation"))?;
        let pkcs8 = kp.to_pkcs8v1().map_err(hsm("EC encoding"))?;
        let spki: PublicKeyX509Der = kp.public_key().as_der().map_err(hsm("EC encoding"))?;
        return Ok((
            Zeroizing::new(pkcs8.as_ref().to_vec()),
            spki.as_ref().to_vec(),
        ));
    }
    let enc = |e: &dyn std::fmt::Display| CryptoError::Hsm(format!("EC encoding: {e}"));
    rc_curve_dispatch!(curve, C => {
        use ecdsa::elliptic_curve::Generate as _;
        let sk = ecdsa::SigningKey::<C>::try_generate_from_rng(&mut sys_rng())
            .map_err(|_| CryptoError::Hsm("random generator failed".into()))?;
        let pkcs8 = sk.to_pkcs8_der().map_err(|e| enc(&e))?;
        let spki = sk.verifying_key().to_public_key_der().map_err(|e| enc(&e))?;
        Ok((Zeroizing::new(pkcs8.as_bytes().to_vec()), spki.as_bytes().to_vec()))
    }, p224 => {
        use p224::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
        let sk = p224::SecretKey::random(&mut p224::elliptic_curve::rand_core::OsRng);
        let pkcs8 = sk.to_pkcs8_der().map_err(|e| enc(&e))?;
        let spki = sk.public_key().to_public_key_der().map_err(|e| enc(&e))?;
        Ok((Zeroizing::new(pkcs8.as_bytes().to_vec()), spki.as_bytes().to_vec()))
    })
}

/// Loads a PKCS#8 private key of `kind` with its library and returns the derived SPKI
/// (validates the encoding) and the normalised PKCS#8.
fn load_private(kind: Kind, pkcs8_der: &[u8]) -> Result<LoadedKey, CryptoError> {
    let rejected =
        |e: &dyn std::fmt::Display| CryptoError::KeyEncoding(format!("private key: {e}"));
    match kind {
        Kind::Rsa => {
            let kp = aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8_der).map_err(|e| rejected(&e))?;
            let spki: PublicKeyX509Der = kp.public_key().as_der().map_err(hsm("RSA encoding"))?;
            let bits = u32::try_from(kp.public_modulus_len() * 8).ok();
            Ok((
                Zeroizing::new(pkcs8_der.to_vec()),
                spki.as_ref().to_vec(),
                bits,
            ))
        }
        Kind::Dsa => {
            use pkcs8::DecodePrivateKey as _;
            let sk = dsa::SigningKey::from_pkcs8_der(pkcs8_der).map_err(|e| rejected(&e))?;
            let spki = sk
                .verifying_key()
                .to_public_key_der()
                .map_err(|e| rejected(&e))?;
            let bits = sk.verifying_key().components().p().bit_width();
            Ok((
                Zeroizing::new(pkcs8_der.to_vec()),
                spki.as_bytes().to_vec(),
                Some(bits),
            ))
        }
        Kind::Ec(curve) => {
            if let Some(alg) = curve.aws_signing() {
                let kp = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8_der)
                    .map_err(|e| rejected(&e))?;
                let spki: PublicKeyX509Der =
                    kp.public_key().as_der().map_err(hsm("EC encoding"))?;
                let normalised = kp.to_pkcs8v1().map_err(hsm("EC encoding"))?;
                return Ok((
                    Zeroizing::new(normalised.as_ref().to_vec()),
                    spki.as_ref().to_vec(),
                    Some(curve.bits()),
                ));
            }
            rc_curve_dispatch!(curve, C => {
                use pkcs8::DecodePrivateKey as _;
                let sk = ecdsa::SigningKey::<C>::from_pkcs8_der(pkcs8_der).map_err(|e| rejected(&e))?;
                let spki = sk.verifying_key().to_public_key_der().map_err(|e| rejected(&e))?;
                Ok((Zeroizing::new(pkcs8_der.to_vec()), spki.as_bytes().to_vec(), Some(curve.bits())))
            }, p224 => {
                use p224::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
                let sk = p224::SecretKey::from_pkcs8_der(pkcs8_der).map_err(|e| rejected(&e))?;
                let spki = sk.public_key().to_public_key_der().map_err(|e| rejected(&e))?;
                Ok((Zeroizing::new(pkcs8_der.to_vec()), spki.as_bytes().to_vec(), Some(curve.bits())))
            })
        }
        Kind::Ed25519 => {
            let kp = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8_der)
                .map_err(|e| rejected(&e))?;
            let spki: PublicKeyX509Der =
                kp.public_key().as_der().map_err(hsm("Ed25519 encoding"))?;
            let normalised: Pkcs8V1Der = kp.as_der().map_err(hsm("Ed25519 encoding"))?;
            Ok((
                Zeroizing::new(normalised.as_ref().to_vec()),
                spki.as_ref().to_vec(),
                None,
            ))
        }
        Kind::MlDsa(l) => {
            let kp = aws_lc_rs::signature::PqdsaKeyPair::from_pkcs8(ml_dsa_alg(l), pkcs8_der)
                .map_err(|e| rejected(&e))?;
            let spki: PublicKeyX509Der =
                kp.public_key().as_der().map_err(hsm("ML-DSA encoding"))?;
            Ok((
                Zeroizing::new(pkcs8_der.to_vec()),
                spki.as_ref().to_vec(),
                None,
            ))
        }
        Kind::SlhDsa(p) => slh_dispatch!(p, P => {
            use pkcs8::DecodePrivateKey as _;
            let sk = slh_dsa::SigningKey::<P>::from_pkcs8_der(pkcs8_der).map_err(|e| rejected(&e))?;
            let spki = sk.as_ref().to_public_key_der().map_err(|e| rejected(&e))?;
            Ok((Zeroizing::new(pkcs8_der.to_vec()), spki.as_bytes().to_vec(), None))
        }),
        _ => Err(CryptoError::KeyEncoding(format!(
            "{kind:?} keys are not imported as PKCS#8 here"
        ))),
    }
}

/// Checks that a public-only SPKI is of the expected kind (and parses with its library).
fn check_public(kind: Kind, spki_der: &[u8]) -> Result<Option<u32>, CryptoError> {
    let (oid, params, bits) = parse_spki(spki_der)?;
    let bad =
        || CryptoError::KeyEncoding(format!("public key of type {oid} does not match {kind:?}"));
    match kind {
        Kind::Rsa => {
            if oid != OID_RSA {
                return Err(bad());
            }
            let pk = aws_lc_rs::rsa::PublicEncryptingKey::from_der(spki_der)
                .map_err(|e| CryptoError::KeyEncoding(format!("public key: {e}")))?;
            Ok(u32::try_from(pk.key_size_bits()).ok())
        }
        Kind::Dsa => {
            use spki::DecodePublicKey as _;
            if oid != OID_DSA {
                return Err(bad());
            }
            let vk = dsa::VerifyingKey::from_public_key_der(spki_der)
                .map_err(|e| CryptoError::KeyEncoding(format!("public key: {e}")))?;
            Ok(Some(vk.components().p().bit_width()))
        }
        Kind::Ec(curve) => {
            if oid != OID_EC || params.as_deref() != Some(curve.oid()) {
                return Err(bad());
            }
            Ok(Some(curve.bits()))
        }
        Kind::Ed25519 => {
            if oid != OID_ED25519 || bits.len() != 32 {
                return Err(bad());
            }
            Ok(None)
        }
        Kind::Bls => {
            blst::min_pk::PublicKey::key_validate(&bits)
                .map_err(|e| CryptoError::KeyEncoding(format!("BLS public key: {e:?}")))?;
            Ok(None)
        }
        _ => {
            if Some(oid.as_str()) != kind.default_algorithm_oid() {
                return Err(bad());
            }
            Ok(None)
        }
    }
}

pub(crate) fn import_plain(req: &PlainImport) -> Result<KeyMaterial, CryptoError> {
    let (algorithm, kind) = match canonical_algorithm(&req.algorithm, req.curve_oid.as_deref()) {
        Ok(v) => v,
        // EC without curveOid: take the curve from the key encoding.
        Err(e) if req.algorithm.trim().eq_ignore_ascii_case("EC") && req.curve_oid.is_none() => {
            let curve = ec_curve_from_material(req).ok_or(e)?;
            ("EC".to_owned(), Kind::Ec(curve))
        }
        Err(e) => return Err(e),
    };
    if kind.is_secret() {
        let secret = req.secret_key.as_ref().ok_or_else(|| {
            CryptoError::KeyEncoding(format!("{algorithm} import needs secretKey"))
        })?;
        let secret = if kind == Kind::Tdea && secret.len() == 16 {
            // 2-key TDEA (K1,K2) is 3-key TDEA with K3 = K1.
            let mut k = Zeroizing::new(secret.to_vec());
            k.extend_from_slice(&secret[..8]);
            k
        } else {
            secret.clone()
        };
        check_secret_len(kind, secret.len())?;
        return Ok(secret_key(algorithm, secret));
    }
    if req.secret_key.is_some() {
        return Err(CryptoError::KeyEncoding(format!(
            "{algorithm} keys have no secretKey"
        )));
    }
    let cert_spki = match &req.certificate {
        Some(c) => Some(super::approver::certificate_public_key(c)?),
        None => None,
    };
    let given_public = req.public_key.clone().or(cert_spki);
    let curve_oid = match kind {
        Kind::Ec(c) => Some(c.oid().to_owned()),
        Kind::Ed25519 => Some(OID_ED25519.to_owned()),
        _ => None,
    };
    let mut key = if let Some(private) = &req.private_key {
        let (private, public, size) = match kind {
            Kind::Bls => {
                let raw = unwrap_raw_private(private, OID_BLS_DEFAULT)?;
                let sk = blst::min_pk::SecretKey::from_bytes(&raw)
                    .map_err(|e| CryptoError::KeyEncoding(format!("BLS private key: {e:?}")))?;
                let oid = given_public
                    .as_deref()
                    .and_then(|p| parse_spki(p).ok())
                    .map(|(o, _, _)| o)
                    .unwrap_or_else(|| OID_BLS_DEFAULT.to_owned());
                (raw, build_spki(&oid, &sk.sk_to_pk().compress())?, None)
            }
            Kind::MlKem(l) => {
                let raw =
                    unwrap_raw_private(private, kind.default_algorithm_oid().unwrap_or_default())?;
                let dk = aws_lc_rs::kem::DecapsulationKey::new(ml_kem_alg(l), &raw)
                    .map_err(|e| CryptoError::KeyEncoding(format!("ML-KEM private key: {e}")))?;
                // aws-lc-rs cannot derive the encapsulation key of an imported decapsulation
                // key, so the public key must come with it; a KEM round trip proves they match.
                let spki = given_public.clone().ok_or_else(|| {
                    CryptoError::KeyEncoding("ML-KEM import needs the publicKey".into())
                })?;
                let (_, _, ek_bytes) = parse_spki(&spki)?;
                let ek = aws_lc_rs::kem::EncapsulationKey::new(ml_kem_alg(l), &ek_bytes)
                    .map_err(|e| CryptoError::KeyEncoding(format!("ML-KEM public key: {e}")))?;
                let (ct, ss1) = ek.encapsulate().map_err(hsm("ML-KEM encapsulation"))?;
                let ss2 = dk.decapsulate(ct).map_err(hsm("ML-KEM decapsulation"))?;
                if ss1.as_ref() != ss2.as_ref() {
                    return Err(CryptoError::KeyEncoding(
                        "ML-KEM public key does not match the private key".into(),
                    ));
                }
                (raw, spki, None)
            }
            _ => {
                let (oid, params, _) = parse_pkcs8(private)?;
                if let (Kind::Ec(c), Some(p)) = (kind, &params)
                    && oid == OID_EC
                    && p != c.oid()
                {
                    return Err(CryptoError::KeyEncoding(format!(
                        "private key is on curve {p}, not {}",
                        c.oid()
                    )));
                }
                load_private(kind, private)?
            }
        };
        if let Some(given) = &given_public
            && given != &public
        {
            return Err(CryptoError::KeyEncoding(
                "public key / certificate does not match the private key".into(),
            ));
        }
        KeyMaterial {
            algorithm: algorithm.clone(),
            key_size: size,
            curve_oid: curve_oid.clone(),
            algorithm_oid: None,
            private: Some(private),
            public: Some(public),
        }
    } else if let Some(public) = given_public {
        let size = check_public(kind, &public)?;
        KeyMaterial {
            algorithm: algorithm.clone(),
            key_size: size,
            curve_oid: curve_oid.clone(),
            algorithm_oid: None,
            private: None,
            public: Some(public),
        }
    } else {
        return Err(CryptoError::KeyEncoding("no key material in import".into()));
    };
    if kind == Kind::Bls {
        key.algorithm_oid = key
            .public
            .as_deref()
            .and_then(|p| parse_spki(p).ok())
            .map(|(o, _, _)| o);
    }
    if let Kind::Ec(c) = kind {
        key.key_size = Some(c.bits());
    }
    Ok(key)
}

/// Raw private bytes from either a PKCS#8 wrapper (as `export_plain` produces) or raw bytes.
fn unwrap_raw_private(material: &[u8], _oid: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    match parse_pkcs8(material) {
        Ok((_, _, inner)) => match OctetString::from_der(&inner) {
            Ok(os) => Ok(Zeroizing::new(os.as_bytes().to_vec())),
            Err(_) => Ok(inner),
        },
        Err(_) => Ok(Zeroizing::new(material.to_vec())),
    }
}

fn ec_curve_from_material(req: &PlainImport) -> Option<Curve> {
    if let Some(p) = &req.private_key
        && let Ok((_, Some(params), _)) = parse_pkcs8(p)
    {
        return Curve::from_oid(&params).ok();
    }
    let spki = req.public_key.clone().or_else(|| {
        req.certificate
            .as_deref()
            .and_then(|c| super::approver::certificate_public_key(c).ok())
    })?;
    let (_, params, _) = parse_spki(&spki).ok()?;
    Curve::from_oid(&params?).ok()
}

pub(crate) fn export_plain(key: &KeyMaterial) -> ExportedKey {
    let kind = Kind::of(key).ok();
    match kind {
        Some(k) if k.is_secret() => ExportedKey {
            private_key: None,
            public_key: None,
            secret_key: key.private.clone(),
        },
        Some(Kind::Bls | Kind::MlKem(_)) => {
            let oid = key.algorithm_oid().unwrap_or_default();
            let private = key.private.as_ref().and_then(|raw| {
                let os = OctetString::new(raw.as_slice()).ok()?;
                let inner = Zeroizing::new(os.to_der().ok()?);
                build_pkcs8(&oid, &inner).ok()
            });
            ExportedKey {
                private_key: private,
                public_key: key.public.clone(),
                secret_key: None,
            }
        }
        _ => ExportedKey {
            private_key: key.private.clone(),
            public_key: key.public.clone(),
            secret_key: None,
        },
    }
}
