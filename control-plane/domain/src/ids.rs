//! Identifiers that cross crate boundaries. Each is a validated newtype so that an unchecked string
//! can never reach an HSM object name, a URL path or an audit record.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string was refused as an identifier; the message tells the user what to type instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    /// Empty or longer than the limit.
    #[error("{kind} must be 1 to {max} characters long, got {len}")]
    Length {
        /// Which identifier.
        kind: &'static str,
        /// The limit.
        max: usize,
        /// What was given.
        len: usize,
    },
    /// A character outside the allowed set.
    #[error(
        "{kind} may contain only lowercase letters a-z, digits and '-', and must start with a letter; \
         '{character}' is not allowed"
    )]
    Character {
        /// Which identifier.
        kind: &'static str,
        /// The first offending character.
        character: char,
    },
}

/// A tenant: one HSM partition registered with keymanager. Tenant ids are slugs because they
/// appear in URLs (`/api/v1/tenants/{tenant}`), data-object names (`kms.partition.<id>`) and logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// Longest accepted tenant id; keeps derived HSM object names well inside TSB limits.
    pub const MAX_LEN: usize = 63;

    /// Validates a tenant slug: `[a-z][a-z0-9-]{0,62}`, not ending in '-'.
    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        const KIND: &str = "tenant id";
        let len = value.chars().count();
        if len == 0 || len > Self::MAX_LEN {
            return Err(InvalidId::Length { kind: KIND, max: Self::MAX_LEN, len });
        }
        for (index, character) in value.chars().enumerate() {
            let allowed = match index {
                0 => character.is_ascii_lowercase(),
                _ => character.is_ascii_lowercase() || character.is_ascii_digit() || character == '-',
            };
            if !allowed {
                return Err(InvalidId::Character { kind: KIND, character });
            }
        }
        if value.ends_with('-') {
            return Err(InvalidId::Character { kind: KIND, character: '-' });
        }
        Ok(Self(value.to_owned()))
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_slugs() {
        for ok in ["a", "acme", "acme-prod-2", &"a".repeat(63)] {
            assert_eq!(TenantId::parse(ok).map(|t| t.to_string()), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn refuses_everything_else_with_the_reason() {
        assert!(matches!(TenantId::parse(""), Err(InvalidId::Length { len: 0, .. })));
        assert!(matches!(TenantId::parse(&"a".repeat(64)), Err(InvalidId::Length { len: 64, .. })));
        for (bad, character) in
            [("1acme", '1'), ("Acme", 'A'), ("ac me", ' '), ("acme-", '-'), ("ac/me", '/'), ("-a", '-')]
        {
            assert_eq!(
                TenantId::parse(bad),
                Err(InvalidId::Character { kind: "tenant id", character }),
                "{bad}"
            );
        }
    }

    #[test]
    fn serde_validates() {
        let parsed: Result<TenantId, _> = serde_json::from_str("\"Bad Id\"");
        assert!(parsed.is_err());
        let ok: TenantId = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(ok.as_str(), "acme");
    }
}
