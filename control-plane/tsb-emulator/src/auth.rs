//! Bearer-JWT checks of a partition (reference §2: `Authorization: Bearer <jwt>`, mandatory on
//! CloudHSM TSBaaS, optional on-prem). JWS verification, claim parsing and `exp`/`nbf` checks are
//! the `jsonwebtoken` crate's, on its aws-lc-rs backend (no ring, no OpenSSL).

use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::config::{JwtConfig, JwtKey};
use crate::error::TsbError;

/// A partition's prepared JWT check (key parsed once at start-up).
pub(crate) struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// Parses the key and builds the claim checks; errors name what is wrong with the config.
    pub(crate) fn new(cfg: &JwtConfig) -> Result<Self, String> {
        // Only the aws-lc-rs backend is compiled in, so this is normally already the default;
        // installing it explicitly keeps verification working should another crate in the
        // build ever turn on a second backend (which would leave no default).
        if CryptoProvider::try_get_default().is_none() {
            let _ =
                CryptoProvider::install_default(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER);
        }
        if cfg.issuer.is_empty() || cfg.audience.is_empty() {
            return Err("jwt: issuer and audience must not be empty".into());
        }
        let (algorithm, key) = match &cfg.key {
            JwtKey::Hs256(secret) => {
                if secret.is_empty() {
                    return Err("jwt: the HS256 secret must not be empty".into());
                }
                let key = DecodingKey::from_secret(secret)
                    .map_err(|e| format!("jwt: invalid HS256 secret: {e}"))?;
                (Algorithm::HS256, key)
            }
            JwtKey::Rs256(pem) => {
                let key = DecodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|e| format!("jwt: invalid RS256 public key PEM: {e}"))?;
                (Algorithm::RS256, key)
            }
            JwtKey::Es256(pem) => {
                let key = DecodingKey::from_ec_pem(pem.as_bytes())
                    .map_err(|e| format!("jwt: invalid ES256 public key PEM: {e}"))?;
                (Algorithm::ES256, key)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = cfg.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&[&cfg.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        Ok(Self { key, validation })
    }

    /// Checks the `Authorization` header: no bearer token → 401/406, a token that fails
    /// signature, algorithm, `iss`, `aud`, `exp` or `nbf` checks → 401/617.
    pub(crate) fn check(&self, authorization: Option<&str>) -> Result<(), TsbError> {
        let token = authorization
            .map(str::trim)
            .and_then(|h| {
                h.split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, t)| t.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| TsbError::new(406, "missing bearer access token"))?;
        jsonwebtoken::decode::<serde_json::Value>(token, &self.key, &self.validation)
            .map(|_| ())
            .map_err(|e| {
                // The error kind only (expired, invalid audience, ...): never the token.
                TsbError::new(617, format!("invalid access token: {e}"))
            })
    }
}
