//! X.509 for the certificate endpoints: CSRs, self-signed certificates and issuing from a CSR.
//!
//! Built with rcgen, signed through [`rcgen::SigningKey`] implemented over [`KeyMaterial`], so
//! private keys never leave this module. Signature algorithms are limited to what rcgen can
//! name in a certificate: RSA `SHA{256,384,512}_WITH_RSA`, ECDSA P-256 `SHA256_WITH_ECDSA`,
//! P-384 `SHA384_WITH_ECDSA`, P-521 `SHA{256,384,512}_WITH_ECDSA`, Ed25519 `EDDSA`
//! (`SHA224_WITH_RSA` → 607: rcgen has no identifier for it).

use rcgen::string::{Ia5String, PrintableString};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, SerialNumber,
    SignatureAlgorithm,
};
use time::{Duration, OffsetDateTime};

use super::keys::{Curve, Kind, parse_spki};
use super::{CryptoError, KeyMaterial, SignatureType};

/// `standardCertificateAttributes` of the TSB certificate requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectAttributes {
    /// CN (required).
    pub common_name: String,
    /// C (two-letter country code).
    pub country: Option<String>,
    /// ST.
    pub state_or_province_name: Option<String>,
    /// L.
    pub locality: Option<String>,
    /// O.
    pub organization_name: Option<String>,
    /// OU.
    pub organization_unit_name: Option<String>,
    /// organizationIdentifier (2.5.4.97).
    pub organization_identifier: Option<String>,
    /// emailAddress (1.2.840.113549.1.9.1).
    pub email: Option<String>,
    /// title (2.5.4.12).
    pub title: Option<String>,
    /// surname (2.5.4.4).
    pub surname: Option<String>,
    /// givenName (2.5.4.42).
    pub given_name: Option<String>,
    /// initials (2.5.4.43).
    pub initials: Option<String>,
    /// pseudonym (2.5.4.65).
    pub pseudonym: Option<String>,
    /// generationQualifier (2.5.4.44).
    pub generation_qualifier: Option<String>,
}

/// A [`KeyMaterial`] seen by rcgen as a signing key.
struct KeySigner<'a> {
    key: &'a KeyMaterial,
    tsb_algorithm: String,
    algorithm: &'static SignatureAlgorithm,
    raw_public: Vec<u8>,
}

impl rcgen::PublicKeyData for KeySigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.raw_public
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.algorithm
    }
}

impl rcgen::SigningKey for KeySigner<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.key
            .sign(&self.tsb_algorithm, msg, SignatureType::Der)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

fn signer<'a>(
    key: &'a KeyMaterial,
    signature_algorithm: &str,
) -> Result<KeySigner<'a>, CryptoError> {
    let kind = Kind::of(key)?;
    let name = signature_algorithm.trim().to_ascii_uppercase();
    let algorithm: &'static SignatureAlgorithm = match (kind, name.as_str()) {
        (Kind::Rsa, "SHA256_WITH_RSA") => &rcgen::PKCS_RSA_SHA256,
        (Kind::Rsa, "SHA384_WITH_RSA") => &rcgen::PKCS_RSA_SHA384,
        (Kind::Rsa, "SHA512_WITH_RSA") => &rcgen::PKCS_RSA_SHA512,
        (Kind::Ec(Curve::P256), "SHA256_WITH_ECDSA") => &rcgen::PKCS_ECDSA_P256_SHA256,
        (Kind::Ec(Curve::P384), "SHA384_WITH_ECDSA") => &rcgen::PKCS_ECDSA_P384_SHA384,
        (Kind::Ec(Curve::P521), "SHA256_WITH_ECDSA") => &rcgen::PKCS_ECDSA_P521_SHA256,
        (Kind::Ec(Curve::P521), "SHA384_WITH_ECDSA") => &rcgen::PKCS_ECDSA_P521_SHA384,
        (Kind::Ec(Curve::P521), "SHA512_WITH_ECDSA") => &rcgen::PKCS_ECDSA_P521_SHA512,
        (Kind::Ed25519, "EDDSA") => &rcgen::PKCS_ED25519,
        _ => {
            return Err(CryptoError::AlgorithmNotSupportedByKey(format!(
                "{signature_algorithm} cannot sign certificates with a {} key",
                key.algorithm()
            )));
        }
    };
    if !key.has_private() {
        return Err(CryptoError::UnsupportedOperation(
            "key has no private part".into(),
        ));
    }
    let (_, _, raw_public) = parse_spki(key.public_bytes()?)?;
    Ok(KeySigner {
        key,
        tsb_algorithm: name,
        algorithm,
        raw_public,
    })
}

fn invalid(what: &str, e: impl std::fmt::Display) -> CryptoError {
    CryptoError::InputValidation(format!("{what}: {e}"))
}

fn distinguished_name(s: &SubjectAttributes) -> Result<DistinguishedName, CryptoError> {
    if s.common_name.trim().is_empty() {
        return Err(CryptoError::InputValidation(
            "commonName is required".into(),
        ));
    }
    let mut dn = DistinguishedName::new();
    let custom = |oid: &[u64]| DnType::CustomDnType(oid.to_vec());
    if let Some(c) = &s.country {
        let v = PrintableString::try_from(c.clone()).map_err(|e| invalid("country", e))?;
        dn.push(DnType::CountryName, DnValue::PrintableString(v));
    }
    let utf8 = [
        (DnType::StateOrProvinceName, &s.state_or_province_name),
        (DnType::LocalityName, &s.locality),
        (DnType::OrganizationName, &s.organization_name),
        (DnType::OrganizationalUnitName, &s.organization_unit_name),
        (custom(&[2, 5, 4, 97]), &s.organization_identifier),
    ];
    for (ty, value) in utf8 {
        if let Some(v) = value {
            dn.push(ty, v.clone());
        }
    }
    dn.push(DnType::CommonName, s.common_name.clone());
    if let Some(e) = &s.email {
        let v = Ia5String::try_from(e.clone()).map_err(|e| invalid("email", e))?;
        dn.push(
            custom(&[1, 2, 840, 113_549, 1, 9, 1]),
            DnValue::Ia5String(v),
        );
    }
    let more = [
        (custom(&[2, 5, 4, 12]), &s.title),
        (custom(&[2, 5, 4, 4]), &s.surname),
        (custom(&[2, 5, 4, 42]), &s.given_name),
        (custom(&[2, 5, 4, 43]), &s.initials),
        (custom(&[2, 5, 4, 65]), &s.pseudonym),
        (custom(&[2, 5, 4, 44]), &s.generation_qualifier),
    ];
    for (ty, value) in more {
        if let Some(v) = value {
            dn.push(ty, v.clone());
        }
    }
    Ok(dn)
}

fn key_usages(names: &[String]) -> Result<Vec<KeyUsagePurpose>, CryptoError> {
    names
        .iter()
        .map(|n| {
            Ok(match n.trim().to_ascii_uppercase().as_str() {
                "DIGITAL_SIGNATURE" => KeyUsagePurpose::DigitalSignature,
                "CONTENT_COMMITMENT" | "NON_REPUDIATION" => KeyUsagePurpose::ContentCommitment,
                "KEY_ENCIPHERMENT" => KeyUsagePurpose::KeyEncipherment,
                "DATA_ENCIPHERMENT" => KeyUsagePurpose::DataEncipherment,
                "KEY_AGREEMENT" => KeyUsagePurpose::KeyAgreement,
                "KEY_CERT_SIGN" => KeyUsagePurpose::KeyCertSign,
                "CRL_SIGN" => KeyUsagePurpose::CrlSign,
                "ENCIPHER_ONLY" => KeyUsagePurpose::EncipherOnly,
                "DECIPHER_ONLY" => KeyUsagePurpose::DecipherOnly,
                other => {
                    return Err(CryptoError::InputValidation(format!(
                        "unknown keyUsage {other}"
                    )));
                }
            })
        })
        .collect()
}

fn extended_key_usages(names: &[String]) -> Result<Vec<ExtendedKeyUsagePurpose>, CryptoError> {
    names
        .iter()
        .map(|n| {
            Ok(match n.trim().to_ascii_uppercase().as_str() {
                "ANY_EXTENDED_KEY_USAGE" => ExtendedKeyUsagePurpose::Any,
                "SERVER_AUTH" => ExtendedKeyUsagePurpose::ServerAuth,
                "CLIENT_AUTH" => ExtendedKeyUsagePurpose::ClientAuth,
                "CODE_SIGNING" => ExtendedKeyUsagePurpose::CodeSigning,
                "EMAIL_PROTECTION" => ExtendedKeyUsagePurpose::EmailProtection,
                "TIME_STAMPING" => ExtendedKeyUsagePurpose::TimeStamping,
                "OCSP_SIGNING" => ExtendedKeyUsagePurpose::OcspSigning,
                other => {
                    return Err(CryptoError::InputValidation(format!(
                        "unknown extendedKeyUsage {other}"
                    )));
                }
            })
        })
        .collect()
}

fn random_serial() -> Result<SerialNumber, CryptoError> {
    let mut bytes = super::random_bytes(16)?;
    if let Some(first) = bytes.first_mut() {
        // positive, and no leading zero byte
        *first = (*first & 0x7f) | 0x40;
    }
    Ok(SerialNumber::from_slice(&bytes))
}

/// Validity, serial, CA flag and usages common to every certificate made here.
fn apply_common(
    params: &mut CertificateParams,
    validity_days: u32,
    key_usage: &[String],
    extended_key_usage: &[String],
    certificate_authority: bool,
) -> Result<(), CryptoError> {
    if validity_days == 0 {
        return Err(CryptoError::InputValidation(
            "validity must be at least one day".into(),
        ));
    }
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(1);
    params.not_after = now + Duration::days(i64::from(validity_days));
    params.serial_number = Some(random_serial()?);
    if !key_usage.is_empty() {
        params.key_usages = key_usages(key_usage)?;
    }
    if !extended_key_usage.is_empty() {
        params.extended_key_usages = extended_key_usages(extended_key_usage)?;
    }
    if certificate_authority {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A CA certificate with a keyUsage extension must allow certificate signing, or
        // no verifier accepts what it issues.
        if !params.key_usages.is_empty()
            && !params.key_usages.contains(&KeyUsagePurpose::KeyCertSign)
        {
            params.key_usages.push(KeyUsagePurpose::KeyCertSign);
        }
    } else {
        params.is_ca = IsCa::ExplicitNoCa;
    }
    Ok(())
}

fn rc_err(e: rcgen::Error) -> CryptoError {
    CryptoError::Hsm(format!("certificate encoding: {e}"))
}

/// PKCS#10 CSR (PEM) for `key`, signed with `signature_algorithm`.
pub fn create_csr(
    key: &KeyMaterial,
    signature_algorithm: &str,
    subject: &SubjectAttributes,
    key_usage: &[String],
    extended_key_usage: &[String],
) -> Result<String, CryptoError> {
    let signer = signer(key, signature_algorithm)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(subject)?;
    params.key_usages = key_usages(key_usage)?;
    params.extended_key_usages = extended_key_usages(extended_key_usage)?;
    params
        .serialize_request(&signer)
        .map_err(rc_err)?
        .pem()
        .map_err(rc_err)
}

/// Self-signed certificate (PEM); `certificate_authority` adds BasicConstraints CA:TRUE.
pub fn self_signed_certificate(
    key: &KeyMaterial,
    signature_algorithm: &str,
    subject: &SubjectAttributes,
    validity_days: u32,
    key_usage: &[String],
    extended_key_usage: &[String],
    certificate_authority: bool,
) -> Result<String, CryptoError> {
    let signer = signer(key, signature_algorithm)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(subject)?;
    apply_common(
        &mut params,
        validity_days,
        key_usage,
        extended_key_usage,
        certificate_authority,
    )?;
    Ok(params.self_signed(&signer).map_err(rc_err)?.pem())
}

/// Issues a certificate (PEM) for a CSR with the CA key; the issuer DN comes from the CA's
/// certificate, which must hold the CA key's public key. The CSR's signature is checked
/// first (628 if bad). `common_name` replaces the CSR's CN when given; the requested key
/// usages replace the CSR's when non-empty.
#[allow(clippy::too_many_arguments, reason = "mirrors the TSB request fields")]
pub fn sign_csr(
    ca_key: &KeyMaterial,
    ca_certificate_pem: Option<&str>,
    signature_algorithm: &str,
    csr_pem: &str,
    common_name: Option<&str>,
    validity_days: u32,
    key_usage: &[String],
    extended_key_usage: &[String],
    certificate_authority: bool,
) -> Result<String, CryptoError> {
    let signer = signer(ca_key, signature_algorithm)?;
    let ca_pem = ca_certificate_pem
        .ok_or_else(|| CryptoError::InvalidCertificate("the CA key has no certificate".into()))?;
    let ca_spki = super::approver::certificate_public_key(ca_pem.trim().as_bytes())?;
    if Some(ca_spki) != ca_key.public_key_der() {
        return Err(CryptoError::InvalidCertificate(
            "CA certificate does not belong to the CA key".into(),
        ));
    }
    let mut csr = CertificateSigningRequestParams::from_pem(csr_pem.trim())
        .map_err(|e| CryptoError::CsrFormat(e.to_string()))?;
    if let Some(cn) = common_name.filter(|c| !c.trim().is_empty()) {
        csr.params.distinguished_name.remove(DnType::CommonName);
        csr.params
            .distinguished_name
            .push(DnType::CommonName, cn.to_owned());
    }
    csr.params.use_authority_key_identifier_extension = true;
    apply_common(
        &mut csr.params,
        validity_days,
        key_usage,
        extended_key_usage,
        certificate_authority,
    )?;
    let issuer = Issuer::from_ca_cert_pem(ca_pem.trim(), &signer)
        .map_err(|e| CryptoError::CertificateEncoding(e.to_string()))?;
    Ok(csr.signed_by(&issuer).map_err(rc_err)?.pem())
}
