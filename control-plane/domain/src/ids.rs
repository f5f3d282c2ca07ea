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
    /// A whitespace or control character, which would make logs and audit records ambiguous.
    #[error("{kind} may not contain whitespace or control characters; found '{}'", .character.escape_unicode())]
    Unprintable {
        /// Which identifier.
        kind: &'static str,
        /// The first offending character.
        character: char,
    },
    /// A prefix that only keymanager itself may use (e.g. `system:`), refused so that outside input
    /// can never impersonate an internal actor such as the scheduler.
    #[error("{kind} may not start with the reserved prefix '{prefix}'")]
    Reserved {
        /// Which identifier.
        kind: &'static str,
        /// The reserved prefix.
        prefix: &'static str,
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
            return Err(InvalidId::Length {
                kind: KIND,
                max: Self::MAX_LEN,
                len,
            });
        }
        for (index, character) in value.chars().enumerate() {
            let allowed = match index {
                0 => character.is_ascii_lowercase(),
                _ => {
                    character.is_ascii_lowercase() || character.is_ascii_digit() || character == '-'
                }
            };
            if !allowed {
                return Err(InvalidId::Character {
                    kind: KIND,
                    character,
                });
            }
        }
        if value.ends_with('-') {
            return Err(InvalidId::Character {
                kind: KIND,
                character: '-',
            });
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

/// Who acts: a local user id, an SSO subject, an API-token id, or an internal actor such as
/// `system:scheduler`. It is what audit events name as the actor and what a `Grant` is issued to, so
/// it must be one unambiguous token (no whitespace or control characters) and outside input must not
/// be able to pose as an internal actor.
///
/// [`PrincipalId::parse`] is for anything that comes from outside (usernames, SSO claims, token ids)
/// and refuses the reserved `system:` prefix; [`PrincipalId::system`] builds internal actors.
/// Deserialisation accepts both forms so stored records round-trip: never deserialise a
/// `PrincipalId` straight from request input — take a string and call `parse`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PrincipalId(String);

impl PrincipalId {
    /// Longest accepted id; long enough for e-mail addresses and SSO subjects.
    pub const MAX_LEN: usize = 255;
    /// Prefix reserved for internal actors (scheduler, startup tasks).
    pub const SYSTEM_PREFIX: &'static str = "system:";
    const KIND: &'static str = "principal id";

    /// Validates an id that came from outside keymanager: 1 to 255 characters, no whitespace or
    /// control characters, not starting with `system:`.
    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        if value.starts_with(Self::SYSTEM_PREFIX) {
            return Err(InvalidId::Reserved {
                kind: Self::KIND,
                prefix: Self::SYSTEM_PREFIX,
            });
        }
        Self::parse_any(value)
    }

    /// The id of an internal actor, `system:<name>`, where `name` is a slug like `scheduler`.
    pub fn system(name: &str) -> Result<Self, InvalidId> {
        const KIND: &str = "system actor name";
        let max = Self::MAX_LEN - Self::SYSTEM_PREFIX.len();
        let len = name.chars().count();
        if len == 0 || len > max {
            return Err(InvalidId::Length {
                kind: KIND,
                max,
                len,
            });
        }
        for (index, character) in name.chars().enumerate() {
            let allowed = character.is_ascii_lowercase()
                || (index > 0 && (character.is_ascii_digit() || character == '-'));
            if !allowed {
                return Err(InvalidId::Character {
                    kind: KIND,
                    character,
                });
            }
        }
        Ok(Self(format!("{}{name}", Self::SYSTEM_PREFIX)))
    }

    /// Whether this is an internal actor (`system:...`).
    pub fn is_system(&self) -> bool {
        self.0.starts_with(Self::SYSTEM_PREFIX)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parse_any(value: &str) -> Result<Self, InvalidId> {
        let len = value.chars().count();
        if len == 0 || len > Self::MAX_LEN {
            return Err(InvalidId::Length {
                kind: Self::KIND,
                max: Self::MAX_LEN,
                len,
            });
        }
        if let Some(character) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidId::Unprintable {
                kind: Self::KIND,
                character,
            });
        }
        Ok(Self(value.to_owned()))
    }
}

impl TryFrom<String> for PrincipalId {
    type Error = InvalidId;
    /// Accepts stored ids, including `system:` ones (see the type's documentation).
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if let Some(name) = value.strip_prefix(Self::SYSTEM_PREFIX) {
            return Self::system(name);
        }
        Self::parse_any(&value)
    }
}

impl From<PrincipalId> for String {
    fn from(value: PrincipalId) -> Self {
        value.0
    }
}

impl fmt::Display for PrincipalId {
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
            assert_eq!(
                TenantId::parse(ok).map(|t| t.to_string()),
                Ok(ok.to_owned())
            );
        }
    }

    #[test]
    fn refuses_everything_else_with_the_reason() {
        assert!(matches!(
            TenantId::parse(""),
            Err(InvalidId::Length { len: 0, .. })
        ));
        assert!(matches!(
            TenantId::parse(&"a".repeat(64)),
            Err(InvalidId::Length { len: 64, .. })
        ));
        for (bad, character) in [
            ("1acme", '1'),
            ("Acme", 'A'),
            ("ac me", ' '),
            ("acme-", '-'),
            ("ac/me", '/'),
            ("-a", '-'),
        ] {
            assert_eq!(
                TenantId::parse(bad),
                Err(InvalidId::Character {
                    kind: "tenant id",
                    character
                }),
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
    #[test]
    fn principal_ids_accept_users_sso_subjects_and_tokens() {
        for ok in [
            "alice",
            "alice@example.com",
            "github:12345",
            "tok_01HZX",
            &"x".repeat(255),
        ] {
            assert_eq!(
                PrincipalId::parse(ok).map(|p| p.to_string()),
                Ok(ok.to_owned())
            );
        }
        assert!(!PrincipalId::parse("alice").unwrap().is_system());
    }

    #[test]
    fn principal_ids_refuse_blanks_controls_and_the_system_prefix() {
        assert!(matches!(
            PrincipalId::parse(""),
            Err(InvalidId::Length { len: 0, .. })
        ));
        assert!(matches!(
            PrincipalId::parse(&"x".repeat(256)),
            Err(InvalidId::Length { len: 256, .. })
        ));
        for (bad, character) in [
            ("al ice", ' '),
            ("alice\n", '\n'),
            ("a\tb", '\t'),
            ("a\u{7f}", '\u{7f}'),
        ] {
            assert_eq!(
                PrincipalId::parse(bad),
                Err(InvalidId::Unprintable {
                    kind: "principal id",
                    character
                }),
                "{bad:?}"
            );
        }
        assert_eq!(
            PrincipalId::parse("system:scheduler"),
            Err(InvalidId::Reserved {
                kind: "principal id",
                prefix: "system:"
            })
        );
        let message = PrincipalId::parse("a b").unwrap_err().to_string();
        assert!(message.contains("'\\u{20}'"), "{message}");
    }

    #[test]
    fn system_principals_are_built_not_parsed() {
        let scheduler = PrincipalId::system("scheduler").unwrap();
        assert_eq!(scheduler.as_str(), "system:scheduler");
        assert!(scheduler.is_system());
        assert!(PrincipalId::system("").is_err());
        assert!(PrincipalId::system("Sched").is_err());
        assert!(PrincipalId::system("sched uler").is_err());
        assert!(PrincipalId::system("1st").is_err());
    }

    #[test]
    fn principal_ids_round_trip_through_serde_including_system_ones() {
        for id in [
            PrincipalId::parse("alice@example.com").unwrap(),
            PrincipalId::system("scheduler").unwrap(),
        ] {
            let json = serde_json::to_string(&id).unwrap();
            let back: PrincipalId = serde_json::from_str(&json).unwrap();
            assert_eq!(back, id);
        }
        assert!(serde_json::from_str::<PrincipalId>("\"system:Not A Slug\"").is_err());
        assert!(serde_json::from_str::<PrincipalId>("\"a b\"").is_err());
    }
}
