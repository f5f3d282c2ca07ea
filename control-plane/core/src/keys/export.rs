//! Public-key export: the HSM's DER `SubjectPublicKeyInfo` as PEM, or as a JWK (RFC 7517/7518,
//! RFC 8037 for Ed25519, RFC 8812 for secp256k1) for the key types JWK defines. Parsing and PEM
//! armour are the `spki`/`der` crates'; nothing here touches private material.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use der::asn1::UintRef;
use der::pem::LineEnding;
use der::{Decode as _, EncodePem as _, Reader as _, SliceReader};
use km_domain::{KeyState, TenantId};
use spki::SubjectPublicKeyInfoRef;

use super::{KeyError, KeyService, Located};
use crate::Hsm;

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_ED25519: &str = "1.3.101.112";

/// Which encoding to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicKeyFormat {
    /// PEM `PUBLIC KEY` (SubjectPublicKeyInfo), for every asymmetric key.
    Pem,
    /// JSON Web Key, for EC P-256/P-384/P-521/secp256k1, RSA and Ed25519.
    Jwk,
}

/// A public key as a JSON Web Key. Only the fields of its `kty` are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    /// `EC`, `RSA` or `OKP`.
    pub kty: &'static str,
    /// Curve (`P-256`, `P-384`, `P-521`, `secp256k1`, `Ed25519`).
    pub crv: Option<&'static str>,
    /// EC x coordinate or OKP public key, base64url.
    pub x: Option<String>,
    /// EC y coordinate, base64url.
    pub y: Option<String>,
    /// RSA modulus, base64url.
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    pub e: Option<String>,
    /// Key id: the HSM label of the version.
    pub kid: String,
}

/// The exported public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKeyMaterial {
    /// PEM text.
    Pem(String),
    /// A JWK.
    Jwk(Jwk),
}

/// A public key with what it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyExport {
    /// The HSM label of the exported version.
    pub label: String,
    /// Its version number (`None` for unmanaged keys).
    pub version: Option<u32>,
    /// The key.
    pub material: PublicKeyMaterial,
}

impl KeyService {
    /// The public key of `label` (the current version unless `version` says otherwise).
    pub async fn public_key(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        label: &str,
        version: Option<u32>,
        format: PublicKeyFormat,
    ) -> Result<PublicKeyExport, KeyError> {
        let (hsm_label, number) = match self.locate(tenant, label, version).await? {
            Located::Managed { record, version } => {
                let v = record.value.version(version).ok_or(KeyError::NotFound)?;
                if v.state == KeyState::Destroyed {
                    return Err(KeyError::conflict(
                        "key_destroyed",
                        format!(
                            "version {version} of {label} is destroyed; nothing is left to export"
                        ),
                    ));
                }
                (v.label.clone(), Some(version))
            }
            Located::Unmanaged if version.is_some_and(|v| v != 1) => {
                return Err(KeyError::invalid(
                    "unknown_version",
                    format!("{label} is not managed and has only version 1"),
                ));
            }
            Located::Unmanaged => (label.to_owned(), None),
        };
        let spki = hsm.key_public_key(&hsm_label).await?.ok_or_else(|| {
            KeyError::conflict(
                "no_public_key",
                format!("{hsm_label} is a symmetric (secret) key and has no public key to export"),
            )
        })?;
        let material = match format {
            PublicKeyFormat::Pem => PublicKeyMaterial::Pem(spki_to_pem(&spki)?),
            PublicKeyFormat::Jwk => PublicKeyMaterial::Jwk(spki_to_jwk(&spki, &hsm_label)?),
        };
        Ok(PublicKeyExport {
            label: hsm_label,
            version: number,
            material,
        })
    }
}

fn malformed(error: impl std::fmt::Display) -> KeyError {
    tracing::error!(%error, "the HSM returned a public key that is not a valid SubjectPublicKeyInfo");
    KeyError::conflict(
        "malformed_public_key",
        "the HSM returned a public key keymanager cannot parse",
    )
}

/// PEM `PUBLIC KEY` of a DER SubjectPublicKeyInfo.
pub fn spki_to_pem(der: &[u8]) -> Result<String, KeyError> {
    let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(malformed)?;
    spki.to_pem(LineEnding::LF).map_err(malformed)
}

/// The JWK of a DER SubjectPublicKeyInfo; a conflict for key types JWK does not define.
pub fn spki_to_jwk(der: &[u8], kid: &str) -> Result<Jwk, KeyError> {
    let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(malformed)?;
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| malformed("the public key bit string has unused bits"))?;
    let algorithm = spki.algorithm.oid.to_string();
    let jwk = Jwk {
        kty: "",
        crv: None,
        x: None,
        y: None,
        n: None,
        e: None,
        kid: kid.to_owned(),
    };
    match algorithm.as_str() {
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters_oid()
                .map_err(malformed)?
                .to_string();
            let (crv, size) = ec_curve(&curve)?;
            let point = key
                .strip_prefix(&[0x04])
                .filter(|xy| xy.len() == 2 * size)
                .ok_or_else(|| {
                    KeyError::conflict(
                        "jwk_unsupported",
                        "the EC public key is not an uncompressed point; use format=pem",
                    )
                })?;
            let (x, y) = point.split_at(size);
            Ok(Jwk {
                kty: "EC",
                crv: Some(crv),
                x: Some(URL_SAFE_NO_PAD.encode(x)),
                y: Some(URL_SAFE_NO_PAD.encode(y)),
                ..jwk
            })
        }
        OID_RSA_ENCRYPTION => {
            let (n, e) = rsa_public_key(key).map_err(malformed)?;
            Ok(Jwk {
                kty: "RSA",
                n: Some(URL_SAFE_NO_PAD.encode(n)),
                e: Some(URL_SAFE_NO_PAD.encode(e)),
                ..jwk
            })
        }
        OID_ED25519 => Ok(Jwk {
            kty: "OKP",
            crv: Some("Ed25519"),
            x: Some(URL_SAFE_NO_PAD.encode(key)),
            ..jwk
        }),
        other => Err(KeyError::conflict(
            "jwk_unsupported",
            format!("JWK defines no representation for keys of algorithm {other}; use format=pem"),
        )),
    }
}

/// JWK curve name and coordinate size of a named curve.
fn ec_curve(oid: &str) -> Result<(&'static str, usize), KeyError> {
    match oid {
        "1.2.840.10045.3.1.7" => Ok(("P-256", 32)),
        "1.3.132.0.34" => Ok(("P-384", 48)),
        "1.3.132.0.35" => Ok(("P-521", 66)),
        "1.3.132.0.10" => Ok(("secp256k1", 32)),
        other => Err(KeyError::conflict(
            "jwk_unsupported",
            format!(
                "JWK defines no curve name for {other} (only P-256, P-384, P-521 and secp256k1); use format=pem"
            ),
        )),
    }
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017), as
/// unsigned big-endian bytes without leading zeros.
fn rsa_public_key(der: &[u8]) -> Result<(&[u8], &[u8]), der::Error> {
    let mut reader = SliceReader::new(der)?;
    let (n, e) = reader.sequence(|r| {
        let n = UintRef::decode(r)?;
        let e = UintRef::decode(r)?;
        Ok::<_, der::Error>((n.as_bytes(), e.as_bytes()))
    })?;
    reader.finish()?;
    Ok((n, e))
}
