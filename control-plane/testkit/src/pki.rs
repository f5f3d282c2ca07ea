//! A throwaway certificate authority with a server certificate for 127.0.0.1/localhost and client
//! certificates, for TLS and mTLS tests. rustls refuses a CA certificate used as an end entity, so
//! the server and clients get leaf certificates issued by the CA.

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate chain and its private key, both PEM.
#[derive(Clone)]
pub struct Identity {
    /// Leaf certificate (PEM).
    pub certificate_pem: String,
    /// PKCS#8 private key (PEM).
    pub private_key_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("certificate_pem", &self.certificate_pem)
            .finish_non_exhaustive()
    }
}

/// A CA plus a server identity for 127.0.0.1 and localhost.
pub struct TestPki {
    ca_params: CertificateParams,
    ca_key: KeyPair,
    /// The CA certificate (PEM): trust anchor for clients and for the server's client-auth.
    pub ca_pem: String,
    /// Server identity (SAN 127.0.0.1, localhost).
    pub server: Identity,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("ca_pem", &self.ca_pem)
            .finish_non_exhaustive()
    }
}

impl TestPki {
    /// Makes a new CA (named `name`) and a server certificate.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let ca_key = KeyPair::generate().context("CA key")?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = distinguished_name(&format!("{name} test CA"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_pem = ca_params
            .self_signed(&ca_key)
            .context("CA certificate")?
            .pem();
        let mut pki = Self {
            ca_params,
            ca_key,
            ca_pem,
            server: Identity {
                certificate_pem: String::new(),
                private_key_pem: String::new(),
            },
        };
        pki.server = pki.issue("127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth)?;
        Ok(pki)
    }

    /// Issues a client certificate with common name `common_name`.
    pub fn client(&self, common_name: &str) -> anyhow::Result<Identity> {
        self.issue(common_name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, common_name: &str, usage: ExtendedKeyUsagePurpose) -> anyhow::Result<Identity> {
        let key = KeyPair::generate().context("leaf key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = distinguished_name(common_name);
        if usage == ExtendedKeyUsagePurpose::ServerAuth {
            params.subject_alt_names = vec![
                SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
                SanType::DnsName("localhost".try_into()?),
            ];
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let certificate = params
            .signed_by(&key, &issuer)
            .context("leaf certificate")?;
        Ok(Identity {
            certificate_pem: certificate.pem(),
            private_key_pem: key.serialize_pem(),
        })
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "keymanager tests");
    name
}
