//! Tenants: HSM partitions registered with keymanager (DESIGN §4.1) — their registration values and
//! the rules those values follow. Credentials are not part of a registration: it only names where
//! they are kept (the vault reference lives in km-core, next to the vault port).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::TenantId;

/// A `#rrggbb` colour in lower case. Only this type reaches templates and SVG attributes, so a
/// colour can never carry markup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Colour(String);

impl Colour {
    /// Parses `#rrggbb` (any case).
    pub fn parse(value: &str) -> Result<Self, InvalidRegistration> {
        let valid = value
            .strip_prefix('#')
            .is_some_and(|hex| hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()));
        if valid {
            Ok(Self(value.to_ascii_lowercase()))
        } else {
            Err(InvalidRegistration::new(
                "colour",
                "must be #rrggbb (six hexadecimal digits)",
            ))
        }
    }

    /// The colour text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Distinct, accessible accent colours offered by the console's colour picker and given to a
    /// partition that has no registered colour.
    pub const PALETTE: [&'static str; 10] = [
        "#6366f1", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#ec4899", "#14b8a6",
        "#f97316", "#84cc16",
    ];

    /// The palette colour for `id`: FNV-1a of the id picks an entry, so every replica and every
    /// page shows the same colour for the same partition.
    pub fn default_for(id: &TenantId) -> Self {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in id.as_str().bytes() {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        let index = usize::try_from(hash).unwrap_or(0) % Self::PALETTE.len();
        Self(
            Self::PALETTE
                .get(index)
                .copied()
                .unwrap_or("#6366f1")
                .to_owned(),
        )
    }
}

impl TryFrom<String> for Colour {
    type Error = InvalidRegistration;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Colour> for String {
    fn from(colour: Colour) -> Self {
        colour.0
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A partition's display name: 1–64 characters, no control characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Validates and trims `value`.
    pub fn parse(value: &str) -> Result<Self, InvalidRegistration> {
        let trimmed = value.trim();
        let count = trimmed.chars().count();
        if count == 0 || count > Self::MAX_CHARS {
            return Err(InvalidRegistration::new(
                "display_name",
                "must be 1 to 64 characters",
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(InvalidRegistration::new(
                "display_name",
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = InvalidRegistration;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<DisplayName> for String {
    fn from(name: DisplayName) -> Self {
        name.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The base URL of a partition's TSB REST API: `http(s)://host[:port][/path]`, no query, no
/// fragment, no user info (credentials belong in the vault, never in a URL).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TsbEndpoint(String);

impl TsbEndpoint {
    /// Validates `value`; a trailing `/` is removed.
    pub fn parse(value: &str) -> Result<Self, InvalidRegistration> {
        let invalid = |reason| Err(InvalidRegistration::new("endpoint", reason));
        let value = value.trim();
        let Some((scheme, rest)) = value.split_once("://") else {
            return invalid("must start with https:// or http://");
        };
        if scheme != "https" && scheme != "http" {
            return invalid("must start with https:// or http://");
        }
        if value.len() > 2048 {
            return invalid("must be at most 2048 characters");
        }
        if value.contains(['?', '#']) {
            return invalid("must not contain a query or fragment");
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return invalid("must not contain spaces");
        }
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') {
            return invalid(
                "must not contain user information; keep credentials in the partition's vault",
            );
        }
        let host = authority
            .rsplit_once(':')
            .filter(|(_, port)| !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()))
            .map_or(authority, |(host, _)| host);
        if host.is_empty() {
            return invalid("must name a host");
        }
        Ok(Self(value.trim_end_matches('/').to_owned()))
    }

    /// The URL text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the endpoint is reached over TLS.
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }
}

impl TryFrom<String> for TsbEndpoint {
    type Error = InvalidRegistration;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TsbEndpoint> for String {
    fn from(endpoint: TsbEndpoint) -> Self {
        endpoint.0
    }
}

impl fmt::Display for TsbEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How keymanager authenticates to a partition's TSB (the matching secrets are in the vault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// `X-API-KEY` per API-key group (one key for all groups, or one per group).
    ApiKeys,
    /// A bearer JWT.
    Jwt,
    /// A TLS client certificate (mutual TLS), optionally with API keys.
    Mtls,
}

impl AuthMode {
    /// The mode's name in the API and console.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::ApiKeys => "api_keys",
            AuthMode::Jwt => "jwt",
            AuthMode::Mtls => "mtls",
        }
    }
}

/// Whether keymanager serves a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionStatus {
    /// Served normally.
    Active,
    /// Registered, but keymanager sends nothing to its HSM (e.g. during maintenance or an
    /// incident); its members still see it, greyed out, and its settings.
    Suspended,
}

/// A value of a registration that breaks its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct InvalidRegistration {
    /// The field (API name).
    pub field: &'static str,
    /// The rule.
    pub reason: &'static str,
}

impl InvalidRegistration {
    fn new(field: &'static str, reason: &'static str) -> Self {
        Self { field, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_hex_and_lower_case() {
        assert_eq!(Colour::parse("#AABBCC").unwrap().as_str(), "#aabbcc");
        for bad in ["red", "#abc", "#abcdeg", "aabbcc", "#abcdef\" onload=\"x"] {
            assert!(Colour::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_colours_are_stable_palette_entries_that_differ_for_the_demo_partitions() {
        let acme = Colour::default_for(&TenantId::parse("acme").unwrap());
        assert_eq!(acme, Colour::default_for(&TenantId::parse("acme").unwrap()));
        assert_ne!(
            acme,
            Colour::default_for(&TenantId::parse("globex").unwrap())
        );
        assert!(Colour::PALETTE.contains(&acme.as_str()));
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(
            DisplayName::parse("  Acme Corp ").unwrap().as_str(),
            "Acme Corp"
        );
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(65)).is_err());
        assert!(DisplayName::parse("a\u{7}b").is_err());
        assert!(DisplayName::parse("Zürich Bank AG").is_ok());
    }

    #[test]
    fn endpoints_are_plain_http_urls_without_credentials() {
        assert_eq!(
            TsbEndpoint::parse("https://tsb.example.com:8080/")
                .unwrap()
                .as_str(),
            "https://tsb.example.com:8080"
        );
        assert!(TsbEndpoint::parse("http://127.0.0.1:4711/partitions/acme").is_ok());
        for bad in [
            "tsb.example.com",
            "ftp://tsb.example.com",
            "https://user:pw@tsb.example.com",
            "https://tsb.example.com/?apikey=x",
            "https://",
            "https://:8080",
            "https://tsb example.com",
        ] {
            assert!(TsbEndpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
