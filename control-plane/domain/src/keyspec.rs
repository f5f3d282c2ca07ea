//! Key specifications and attribute rules (TSB reference §4.1–§4.2), checked before anything is sent
//! to the HSM.
//!
//! A [`KeySpec`] is an algorithm with its size or curve, built only through [`KeySpec::new`] (the TSB
//! request fields `algorithm`, `keySize`, `curveOid`), so a held `KeySpec` is always one the TSB
//! accepts. [`validate_attributes`] then checks the boolean attribute map against the spec and the
//! presence of an SKA policy. Every refusal is a [`KeySpecError`] with a stable code and a message
//! saying what to choose instead, so the UI and API can explain rather than relay an HSM 400.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every algorithm keymanager can create, with the exact TSB `algorithm` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSA; `keySize` 2048/3072/4096/8192.
    Rsa,
    /// DSA; `keySize` 1024/2048/4096/8192.
    Dsa,
    /// Elliptic curve on a named curve (`curveOid`).
    Ec,
    /// Edwards curve Ed25519 (`curveOid` 1.3.101.112).
    Ed,
    /// BLS signatures; no size.
    Bls,
    /// ISS; `keySize` is the security level 1/2/3.
    Iss,
    /// AES; 128/192/256.
    Aes,
    /// Camellia; 128/192/256.
    Camellia,
    /// ChaCha20; 256.
    ChaCha20,
    /// Triple DES; no size.
    Tdea,
    /// HMAC-SHA256 key.
    HmacSha256,
    /// ML-DSA-44 (FIPS 204).
    MlDsa44,
    /// ML-DSA-65.
    MlDsa65,
    /// ML-DSA-87.
    MlDsa87,
    /// ML-KEM-512 (FIPS 203).
    MlKem512,
    /// ML-KEM-768.
    MlKem768,
    /// ML-KEM-1024.
    MlKem1024,
    /// SLH-DSA (FIPS 205) with the given parameter set.
    SlhDsa(SlhDsaParams),
    /// LMS / HSS-LMS (stored by the HSM as `HSS-LMS`).
    Lms,
    /// XMSS-SHA256_10_256.
    XmssSha256,
    /// XMSS-SHAKE256_10_256.
    XmssShake256,
}

/// The twelve SLH-DSA parameter sets: hash family × security category × small/fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlhDsaParams {
    /// SHA2 or SHAKE.
    pub hash: SlhDsaHash,
    /// 128, 192 or 256.
    pub level: SlhDsaLevel,
    /// `s` (small signatures) or `f` (fast signing).
    pub fast: bool,
}

/// SLH-DSA hash family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlhDsaHash {
    /// SHA2-based.
    Sha2,
    /// SHAKE-based.
    Shake,
}

/// SLH-DSA security category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlhDsaLevel {
    /// Category 1.
    L128,
    /// Category 3.
    L192,
    /// Category 5.
    L256,
}

/// What an algorithm can do with its private/secret half; decides which attributes make sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capabilities {
    /// Signatures or MACs (`sign`/`verify`).
    pub sign: bool,
    /// Ciphers (`decrypt`/`encrypt`).
    pub decrypt: bool,
    /// Key wrapping (`unwrap`/`wrap`).
    pub unwrap: bool,
    /// Key derivation (`derive`, BIP32/SLIP-10).
    pub derive: bool,
}

const fn caps(sign: bool, decrypt: bool, unwrap: bool, derive: bool) -> Capabilities {
    Capabilities {
        sign,
        decrypt,
        unwrap,
        derive,
    }
}

impl Algorithm {
    /// Every algorithm (SLH-DSA in all twelve parameter sets).
    pub fn all() -> Vec<Algorithm> {
        let mut all = vec![
            Algorithm::Rsa,
            Algorithm::Dsa,
            Algorithm::Ec,
            Algorithm::Ed,
            Algorithm::Bls,
            Algorithm::Iss,
            Algorithm::Aes,
            Algorithm::Camellia,
            Algorithm::ChaCha20,
            Algorithm::Tdea,
            Algorithm::HmacSha256,
            Algorithm::MlDsa44,
            Algorithm::MlDsa65,
            Algorithm::MlDsa87,
            Algorithm::MlKem512,
            Algorithm::MlKem768,
            Algorithm::MlKem1024,
        ];
        for hash in [SlhDsaHash::Sha2, SlhDsaHash::Shake] {
            for level in [SlhDsaLevel::L128, SlhDsaLevel::L192, SlhDsaLevel::L256] {
                for fast in [false, true] {
                    all.push(Algorithm::SlhDsa(SlhDsaParams { hash, level, fast }));
                }
            }
        }
        all.extend([
            Algorithm::Lms,
            Algorithm::XmssSha256,
            Algorithm::XmssShake256,
        ]);
        all
    }

    /// The exact TSB `algorithm` string (case matters: `ChaCha20`, `Camellia`, `TDEA`).
    pub const fn as_tsb_str(self) -> &'static str {
        match self {
            Algorithm::Rsa => "RSA",
            Algorithm::Dsa => "DSA",
            Algorithm::Ec => "EC",
            Algorithm::Ed => "ED",
            Algorithm::Bls => "BLS",
            Algorithm::Iss => "ISS",
            Algorithm::Aes => "AES",
            Algorithm::Camellia => "Camellia",
            Algorithm::ChaCha20 => "ChaCha20",
            Algorithm::Tdea => "TDEA",
            Algorithm::HmacSha256 => "HMACSHA256",
            Algorithm::MlDsa44 => "ML-DSA-44",
            Algorithm::MlDsa65 => "ML-DSA-65",
            Algorithm::MlDsa87 => "ML-DSA-87",
            Algorithm::MlKem512 => "ML-KEM-512",
            Algorithm::MlKem768 => "ML-KEM-768",
            Algorithm::MlKem1024 => "ML-KEM-1024",
            Algorithm::SlhDsa(p) => slh_dsa_name(p),
            Algorithm::Lms => "LMS",
            Algorithm::XmssSha256 => "XMSS-SHA256_10_256",
            Algorithm::XmssShake256 => "XMSS-SHAKE256_10_256",
        }
    }

    /// Parses a TSB `algorithm` string exactly as the TSB spells it. Obsolete PQC draft names get
    /// their own error pointing at the standardised replacement.
    pub fn parse(value: &str) -> Result<Self, KeySpecError> {
        if let Some(found) = Self::all().into_iter().find(|a| a.as_tsb_str() == value) {
            return Ok(found);
        }
        if value == "HSS-LMS" {
            return Ok(Algorithm::Lms);
        }
        let replacement = if value.starts_with("DILITHIUM") {
            Some("ML-DSA-44/65/87")
        } else if value.starts_with("KYBER") {
            Some("ML-KEM-512/768/1024")
        } else if value.starts_with("SPHINCS") {
            Some("an SLH-DSA-* parameter set")
        } else {
            None
        };
        Err(match replacement {
            Some(replacement) => KeySpecError::ObsoleteAlgorithm {
                given: value.to_owned(),
                replacement,
            },
            None => KeySpecError::UnknownAlgorithm {
                given: value.to_owned(),
            },
        })
    }

    /// What the key can be used for. HMAC counts as signing (a MAC is created with `sign` rights);
    /// EC decrypts via ECIES; ML-KEM establishes keys, so it counts as unwrapping.
    pub const fn capabilities(self) -> Capabilities {
        match self {
            Algorithm::Rsa => caps(true, true, true, false),
            Algorithm::Ec => caps(true, true, false, true),
            Algorithm::Ed | Algorithm::Bls => caps(true, false, false, true),
            Algorithm::Dsa
            | Algorithm::Iss
            | Algorithm::HmacSha256
            | Algorithm::MlDsa44
            | Algorithm::MlDsa65
            | Algorithm::MlDsa87
            | Algorithm::SlhDsa(_)
            | Algorithm::Lms
            | Algorithm::XmssSha256
            | Algorithm::XmssShake256 => caps(true, false, false, false),
            Algorithm::Aes => caps(false, true, true, false),
            Algorithm::Camellia | Algorithm::ChaCha20 | Algorithm::Tdea => {
                caps(false, true, false, false)
            }
            Algorithm::MlKem512 | Algorithm::MlKem768 | Algorithm::MlKem1024 => {
                caps(false, false, true, false)
            }
        }
    }

    /// The `keySize` values the TSB accepts; empty when the algorithm takes none.
    pub const fn key_sizes(self) -> &'static [u32] {
        match self {
            Algorithm::Rsa => &[2048, 3072, 4096, 8192],
            Algorithm::Dsa => &[1024, 2048, 4096, 8192],
            Algorithm::Iss => &[1, 2, 3],
            Algorithm::Aes | Algorithm::Camellia => &[128, 192, 256],
            Algorithm::ChaCha20 => &[256],
            _ => &[],
        }
    }

    /// Whether the TSB requires a `curveOid`.
    pub const fn needs_curve(self) -> bool {
        matches!(self, Algorithm::Ec | Algorithm::Ed)
    }
}

const fn slh_dsa_name(p: SlhDsaParams) -> &'static str {
    use SlhDsaHash::{Sha2, Shake};
    use SlhDsaLevel::{L128, L192, L256};
    match (p.hash, p.level, p.fast) {
        (Sha2, L128, false) => "SLH-DSA-SHA2-128s",
        (Sha2, L128, true) => "SLH-DSA-SHA2-128f",
        (Sha2, L192, false) => "SLH-DSA-SHA2-192s",
        (Sha2, L192, true) => "SLH-DSA-SHA2-192f",
        (Sha2, L256, false) => "SLH-DSA-SHA2-256s",
        (Sha2, L256, true) => "SLH-DSA-SHA2-256f",
        (Shake, L128, false) => "SLH-DSA-SHAKE-128s",
        (Shake, L128, true) => "SLH-DSA-SHAKE-128f",
        (Shake, L192, false) => "SLH-DSA-SHAKE-192s",
        (Shake, L192, true) => "SLH-DSA-SHAKE-192f",
        (Shake, L256, false) => "SLH-DSA-SHAKE-256s",
        (Shake, L256, true) => "SLH-DSA-SHAKE-256f",
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_tsb_str())
    }
}

impl Serialize for Algorithm {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_tsb_str())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Algorithm::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Defines [`Curve`] with its OID and name tables, so they cannot drift from the enum.
macro_rules! define_curves {
    ($( $(#[$meta:meta])* $variant:ident => $oid:literal, $name:literal, $ed:literal; )+) => {
        /// A named curve the TSB accepts in `curveOid`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Curve {
            $( $(#[$meta])* $variant, )+
        }

        impl Curve {
            /// Every named curve.
            pub const ALL: &'static [Curve] = &[ $( Curve::$variant, )+ ];

            /// The OID sent as `curveOid`.
            pub const fn oid(self) -> &'static str {
                match self { $( Curve::$variant => $oid, )+ }
            }

            /// The usual name, for display and for parsing user input.
            pub const fn name(self) -> &'static str {
                match self { $( Curve::$variant => $name, )+ }
            }

            /// Whether the curve is for `ED` keys (Edwards) rather than `EC`.
            pub const fn is_edwards(self) -> bool {
                match self { $( Curve::$variant => $ed, )+ }
            }
        }
    };
}

define_curves! {
    /// secp224k1.
    Secp224k1 => "1.3.132.0.32", "secp224k1", false;
    /// secp224r1 (P-224).
    Secp224r1 => "1.3.132.0.33", "secp224r1", false;
    /// secp256k1 (Bitcoin, Ethereum).
    Secp256k1 => "1.3.132.0.10", "secp256k1", false;
    /// secp256r1 (P-256).
    P256 => "1.2.840.10045.3.1.7", "secp256r1", false;
    /// secp384r1 (P-384).
    P384 => "1.3.132.0.34", "secp384r1", false;
    /// secp521r1 (P-521).
    P521 => "1.3.132.0.35", "secp521r1", false;
    /// X9.62 prime239v1.
    X962P239v1 => "1.2.840.10045.3.1.1", "x962p239v1", false;
    /// X9.62 prime239v2.
    X962P239v2 => "1.2.840.10045.3.1.2", "x962p239v2", false;
    /// X9.62 prime239v3.
    X962P239v3 => "1.2.840.10045.3.1.3", "x962p239v3", false;
    /// brainpoolP224r1.
    Brainpool224r1 => "1.3.36.3.3.2.8.1.1.1", "brainpoolP224r1", false;
    /// brainpoolP256r1.
    Brainpool256r1 => "1.3.36.3.3.2.8.1.1.7", "brainpoolP256r1", false;
    /// brainpoolP320r1.
    Brainpool320r1 => "1.3.36.3.3.2.8.1.1.9", "brainpoolP320r1", false;
    /// brainpoolP384r1.
    Brainpool384r1 => "1.3.36.3.3.2.8.1.1.11", "brainpoolP384r1", false;
    /// brainpoolP512r1.
    Brainpool512r1 => "1.3.36.3.3.2.8.1.1.13", "brainpoolP512r1", false;
    /// ANSSI FRP256v1.
    Frp256v1 => "1.2.250.1.223.101.256.1", "frp256v1", false;
    /// Ed25519 (the only `ED` curve).
    Ed25519 => "1.3.101.112", "Ed25519", true;
}

impl Curve {
    /// Finds a curve by OID or by name (names case-insensitively; `P-256`/`P-384`/`P-521` too).
    pub fn parse(value: &str) -> Option<Curve> {
        let alias = match value.to_ascii_lowercase().as_str() {
            "p-224" => Some(Curve::Secp224r1),
            "p-256" | "prime256v1" => Some(Curve::P256),
            "p-384" => Some(Curve::P384),
            "p-521" => Some(Curve::P521),
            _ => None,
        };
        alias.or_else(|| {
            Curve::ALL
                .iter()
                .copied()
                .find(|c| c.oid() == value || c.name().eq_ignore_ascii_case(value))
        })
    }

    fn names_for(edwards: bool) -> String {
        Curve::ALL
            .iter()
            .filter(|c| c.is_edwards() == edwards)
            .map(|c| format!("{} ({})", c.name(), c.oid()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated algorithm with its size or curve: what the TSB create request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    algorithm: Algorithm,
    key_size: Option<u32>,
    curve: Option<Curve>,
}

impl KeySpec {
    /// Validates a spec from the TSB request fields. `key_size` must be one of
    /// [`Algorithm::key_sizes`] (and absent for algorithms without sizes); `curve` (an OID or a
    /// curve name) is required for `EC`/`ED` and refused otherwise.
    pub fn new(
        algorithm: Algorithm,
        key_size: Option<u32>,
        curve: Option<&str>,
    ) -> Result<Self, KeySpecError> {
        let sizes = algorithm.key_sizes();
        match (key_size, sizes.is_empty()) {
            (Some(size), true) => {
                return Err(KeySpecError::KeySizeNotApplicable { algorithm, size });
            }
            (Some(size), false) if !sizes.contains(&size) => {
                return Err(KeySpecError::InvalidKeySize { algorithm, size });
            }
            (None, false) => return Err(KeySpecError::KeySizeRequired { algorithm }),
            _ => {}
        }
        let curve = match (curve, algorithm.needs_curve()) {
            (Some(_), false) => return Err(KeySpecError::CurveNotApplicable { algorithm }),
            (None, true) => return Err(KeySpecError::CurveRequired { algorithm }),
            (None, false) => None,
            (Some(given), true) => {
                let edwards = algorithm == Algorithm::Ed;
                match Curve::parse(given) {
                    Some(c) if c.is_edwards() == edwards => Some(c),
                    _ => {
                        return Err(KeySpecError::UnknownCurve {
                            algorithm,
                            given: given.to_owned(),
                        });
                    }
                }
            }
        };
        Ok(Self {
            algorithm,
            key_size,
            curve,
        })
    }

    /// The algorithm.
    pub const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The `keySize` to send, if the algorithm takes one.
    pub const fn key_size(&self) -> Option<u32> {
        self.key_size
    }

    /// The curve, for `EC`/`ED`.
    pub const fn curve(&self) -> Option<Curve> {
        self.curve
    }
}

impl KeySpec {
    /// The `curveOid` to send, for `EC`/`ED`.
    pub fn curve_oid(&self) -> Option<&'static str> {
        self.curve.map(Curve::oid)
    }

    /// The spec of a key as the HSM reports it (key descriptor `algorithm`, `keySize`,
    /// `curveOid`), for the inventory of existing keys. More lenient than [`KeySpec::new`] where
    /// the HSM says more than a create request may: a reported size is ignored for algorithms
    /// that take none (the TSB reports e.g. the curve size of EC keys and 192 for TDEA), and a
    /// reported curve is ignored for algorithms without curves. `HSS-LMS` reads as LMS; the bare
    /// `XMSS` the TSB stores for both XMSS variants cannot be told apart and is refused.
    pub fn from_reported(
        algorithm: &str,
        key_size: Option<u32>,
        curve_oid: Option<&str>,
    ) -> Result<Self, KeySpecError> {
        let algorithm = Algorithm::parse(algorithm)?;
        let key_size = key_size.filter(|_| !algorithm.key_sizes().is_empty());
        let curve_oid = curve_oid.filter(|_| algorithm.needs_curve());
        Self::new(algorithm, key_size, curve_oid)
    }
}

/// `RSA 2048`, `EC secp256r1`, `ML-DSA-65`: the algorithm with its size or curve, for messages.
impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.algorithm.as_tsb_str())?;
        if let Some(size) = self.key_size {
            write!(f, " {size}")?;
        }
        if let Some(curve) = self.curve {
            write!(f, " {curve}")?;
        }
        Ok(())
    }
}

/// The boolean attribute map of a TSB create request (§4.2). Absent flags are `false`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyAttributes {
    /// Public-key/secret encrypt.
    pub encrypt: bool,
    /// Decrypt with the private/secret key.
    pub decrypt: bool,
    /// Public-key/secret verify.
    pub verify: bool,
    /// Sign (or MAC) with the private/secret key.
    pub sign: bool,
    /// Wrap other keys.
    pub wrap: bool,
    /// Unwrap other keys.
    pub unwrap: bool,
    /// Derive keys from this one.
    pub derive: bool,
    /// BIP32 derivation (EC with derive only).
    pub bip32: bool,
    /// SLIP-10 derivation (EC/ED with derive only).
    pub slip10: bool,
    /// Material may leave the HSM (requires `policy: null`).
    pub extractable: bool,
    /// Attributes may later be made stricter.
    pub modifiable: bool,
    /// The key may be destroyed (`false` blocks destruction for ever).
    pub destroyable: bool,
    /// Material never leaves the HSM in plain.
    pub sensitive: bool,
    /// The key may be externalised (copied).
    pub copyable: bool,
}

/// A usage attribute, as named in the TSB attribute map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Usage {
    /// `sign`.
    Sign,
    /// `verify`.
    Verify,
    /// `decrypt`.
    Decrypt,
    /// `encrypt`.
    Encrypt,
    /// `unwrap`.
    Unwrap,
    /// `wrap`.
    Wrap,
    /// `derive`.
    Derive,
}

impl Usage {
    /// The attribute name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Usage::Sign => "sign",
            Usage::Verify => "verify",
            Usage::Decrypt => "decrypt",
            Usage::Encrypt => "encrypt",
            Usage::Unwrap => "unwrap",
            Usage::Wrap => "wrap",
            Usage::Derive => "derive",
        }
    }

    fn allowed(self, c: Capabilities) -> bool {
        match self {
            Usage::Sign | Usage::Verify => c.sign,
            Usage::Decrypt | Usage::Encrypt => c.decrypt,
            Usage::Unwrap | Usage::Wrap => c.unwrap,
            Usage::Derive => c.derive,
        }
    }

    fn capable_algorithms(self) -> String {
        let mut names: Vec<&str> = Algorithm::all()
            .into_iter()
            .filter(|a| self.allowed(a.capabilities()))
            .map(|a| match a {
                Algorithm::SlhDsa(_) => "SLH-DSA-*",
                other => other.as_tsb_str(),
            })
            .collect();
        names.dedup();
        names.join(", ")
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks an attribute map against a spec before the create request is sent. `has_policy` is
/// whether the request carries an SKA policy (`policy` not `null`).
///
/// Rules (§4.2): at least one of decrypt/sign/unwrap; each usage only for an algorithm that
/// supports it (the public-key flags encrypt/verify/wrap follow decrypt/sign/unwrap); extractable
/// keys only without a policy; bip32 only for EC with derive; slip10 only for EC/ED with derive.
pub fn validate_attributes(
    spec: &KeySpec,
    attributes: &KeyAttributes,
    has_policy: bool,
) -> Result<(), KeySpecError> {
    let a = attributes;
    let algorithm = spec.algorithm();
    if !(a.decrypt || a.sign || a.unwrap) {
        return Err(KeySpecError::NoPrivateUsage { algorithm });
    }
    let requested = [
        (a.sign, Usage::Sign),
        (a.verify, Usage::Verify),
        (a.decrypt, Usage::Decrypt),
        (a.encrypt, Usage::Encrypt),
        (a.unwrap, Usage::Unwrap),
        (a.wrap, Usage::Wrap),
        (a.derive, Usage::Derive),
    ];
    let capabilities = algorithm.capabilities();
    if let Some((_, usage)) = requested
        .iter()
        .find(|(on, usage)| *on && !usage.allowed(capabilities))
    {
        return Err(KeySpecError::UnsupportedUsage {
            algorithm,
            usage: *usage,
        });
    }
    if a.extractable && has_policy {
        return Err(KeySpecError::ExtractableWithPolicy);
    }
    if a.bip32 && !(algorithm == Algorithm::Ec && a.derive) {
        return Err(KeySpecError::Bip32RequiresEcDerive { algorithm });
    }
    if a.slip10 && !(matches!(algorithm, Algorithm::Ec | Algorithm::Ed) && a.derive) {
        return Err(KeySpecError::Slip10RequiresDerive { algorithm });
    }
    Ok(())
}

/// Why a key spec or attribute map was refused. The codes ([`KeySpecError::code`]) are stable API;
/// the messages say what to choose instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySpecError {
    /// Not a TSB algorithm name.
    #[error(
        "unknown algorithm '{given}'; choose one of RSA, DSA, EC, ED, BLS, ISS, AES, Camellia, ChaCha20, TDEA, HMACSHA256, ML-DSA-44/65/87, ML-KEM-512/768/1024, SLH-DSA-{{SHA2,SHAKE}}-{{128,192,256}}{{s,f}}, LMS, XMSS-SHA256_10_256, XMSS-SHAKE256_10_256 (case matters)"
    )]
    UnknownAlgorithm {
        /// What was given.
        given: String,
    },
    /// A pre-standard PQC draft name.
    #[error("'{given}' is an obsolete draft algorithm; choose {replacement}")]
    ObsoleteAlgorithm {
        /// What was given.
        given: String,
        /// The standardised replacement.
        replacement: &'static str,
    },
    /// The size is not one the TSB accepts for the algorithm.
    #[error("{algorithm} does not support key size {size}; choose one of {}", sizes_text(*.algorithm))]
    InvalidKeySize {
        /// The algorithm.
        algorithm: Algorithm,
        /// The rejected size.
        size: u32,
    },
    /// The algorithm needs a size and none was given.
    #[error("{algorithm} needs a key size; choose one of {}", sizes_text(*.algorithm))]
    KeySizeRequired {
        /// The algorithm.
        algorithm: Algorithm,
    },
    /// The algorithm has a fixed size (or a curve) and takes no `keySize`.
    #[error("{algorithm} takes no key size (got {size}); leave it out")]
    KeySizeNotApplicable {
        /// The algorithm.
        algorithm: Algorithm,
        /// The size given.
        size: u32,
    },
    /// EC/ED without a curve.
    #[error("{algorithm} needs a curve; choose one of {}", curves_text(*.algorithm))]
    CurveRequired {
        /// The algorithm.
        algorithm: Algorithm,
    },
    /// A curve that is unknown or belongs to the other family (EC vs ED).
    #[error("'{given}' is not a curve for {algorithm}; choose one of {}", curves_text(*.algorithm))]
    UnknownCurve {
        /// The algorithm.
        algorithm: Algorithm,
        /// What was given.
        given: String,
    },
    /// A curve for an algorithm without curves.
    #[error("{algorithm} takes no curve; leave it out, or choose EC or ED for curve keys")]
    CurveNotApplicable {
        /// The algorithm.
        algorithm: Algorithm,
    },
    /// None of decrypt, sign, unwrap: the key could not be used for anything.
    #[error(
        "a key needs at least one of decrypt, sign or unwrap; for {algorithm} choose {}",
        private_usages_text(*.algorithm)
    )]
    NoPrivateUsage {
        /// The algorithm.
        algorithm: Algorithm,
    },
    /// A usage the algorithm cannot perform.
    #[error("{algorithm} keys cannot {usage}; for {usage} choose one of {}", .usage.capable_algorithms())]
    UnsupportedUsage {
        /// The algorithm.
        algorithm: Algorithm,
        /// The refused usage.
        usage: Usage,
    },
    /// The TSB only accepts extractable keys without an SKA policy.
    #[error(
        "extractable keys cannot carry an SKA policy; either set extractable=false or send policy null"
    )]
    ExtractableWithPolicy,
    /// BIP32 outside EC-with-derive.
    #[error(
        "bip32 is only for EC keys with derive=true (got {algorithm}); choose EC (e.g. secp256k1) and set derive, or clear bip32"
    )]
    Bip32RequiresEcDerive {
        /// The algorithm.
        algorithm: Algorithm,
    },
    /// SLIP-10 outside EC/ED-with-derive.
    #[error(
        "slip10 is only for EC or ED keys with derive=true (got {algorithm}); choose EC or ED and set derive, or clear slip10"
    )]
    Slip10RequiresDerive {
        /// The algorithm.
        algorithm: Algorithm,
    },
}

impl KeySpecError {
    /// Stable machine-readable code.
    pub const fn code(&self) -> &'static str {
        match self {
            KeySpecError::UnknownAlgorithm { .. } => "unknown_algorithm",
            KeySpecError::ObsoleteAlgorithm { .. } => "obsolete_algorithm",
            KeySpecError::InvalidKeySize { .. } => "invalid_key_size",
            KeySpecError::KeySizeRequired { .. } => "key_size_required",
            KeySpecError::KeySizeNotApplicable { .. } => "key_size_not_applicable",
            KeySpecError::CurveRequired { .. } => "curve_required",
            KeySpecError::UnknownCurve { .. } => "unknown_curve",
            KeySpecError::CurveNotApplicable { .. } => "curve_not_applicable",
            KeySpecError::NoPrivateUsage { .. } => "no_private_usage",
            KeySpecError::UnsupportedUsage { .. } => "unsupported_usage",
            KeySpecError::ExtractableWithPolicy => "extractable_with_policy",
            KeySpecError::Bip32RequiresEcDerive { .. } => "bip32_requires_ec_derive",
            KeySpecError::Slip10RequiresDerive { .. } => "slip10_requires_derive",
        }
    }
}

fn sizes_text(algorithm: Algorithm) -> String {
    algorithm
        .key_sizes()
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn curves_text(algorithm: Algorithm) -> String {
    Curve::names_for(algorithm == Algorithm::Ed)
}

fn private_usages_text(algorithm: Algorithm) -> String {
    let c = algorithm.capabilities();
    [
        (c.sign, "sign"),
        (c.decrypt, "decrypt"),
        (c.unwrap, "unwrap"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(" or ")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod reported_tests {
    use super::*;

    #[test]
    fn display_names_algorithm_and_size_or_curve() {
        let text = |a, size, curve| KeySpec::new(a, size, curve).unwrap().to_string();
        assert_eq!(text(Algorithm::Rsa, Some(2048), None), "RSA 2048");
        assert_eq!(text(Algorithm::Ec, None, Some("P-256")), "EC secp256r1");
        assert_eq!(text(Algorithm::Ed, None, Some("1.3.101.112")), "ED Ed25519");
        assert_eq!(text(Algorithm::MlDsa65, None, None), "ML-DSA-65");
    }

    #[test]
    fn reported_specs_read_back_leniently() {
        let ec = KeySpec::from_reported("EC", Some(256), Some("1.2.840.10045.3.1.7")).unwrap();
        assert_eq!(
            ec,
            KeySpec::new(Algorithm::Ec, None, Some("P-256")).unwrap()
        );
        assert_eq!(ec.curve_oid(), Some("1.2.840.10045.3.1.7"));
        let tdea = KeySpec::from_reported("TDEA", Some(192), None).unwrap();
        assert_eq!((tdea.algorithm(), tdea.key_size()), (Algorithm::Tdea, None));
        let aes = KeySpec::from_reported("AES", Some(256), Some("1.3.101.112")).unwrap();
        assert_eq!((aes.key_size(), aes.curve_oid()), (Some(256), None));
        assert_eq!(
            KeySpec::from_reported("HSS-LMS", None, None)
                .unwrap()
                .algorithm(),
            Algorithm::Lms
        );
        // What a create request could not carry is still refused.
        assert_eq!(
            KeySpec::from_reported("AES", Some(100), None)
                .unwrap_err()
                .code(),
            "invalid_key_size"
        );
        assert_eq!(
            KeySpec::from_reported("XMSS", None, None)
                .unwrap_err()
                .code(),
            "unknown_algorithm"
        );
    }
}
