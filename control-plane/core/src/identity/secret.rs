//! A string secret that is wiped from memory on drop and never printed.

use std::fmt;

use zeroize::Zeroizing;

/// A secret string: a password, a setup token, a session cookie value, an API token, a TOTP or
/// recovery code, or an enrolment URL that embeds a TOTP seed.
///
/// Why our own type and not `secrecy::SecretString`: km-core depends only on `zeroize`, and the
/// identity API needs exactly this much (wipe on drop, redacted `Debug`, no `Display`, no serde).
/// Adapters that hold a `SecretString` convert with `SecretText::from(s.expose_secret())`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(Zeroizing<String>);

impl SecretText {
    /// Wraps a secret; the `String`'s buffer is wiped when this value drops.
    pub fn new(secret: String) -> Self {
        Self(Zeroizing::new(secret))
    }

    /// The secret itself. Call it only where the secret must leave the process (a response body
    /// shown once, a cookie) or be checked; never log the result.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Length in characters (for policy checks without exposing the text).
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

impl From<String> for SecretText {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

impl From<&str> for SecretText {
    fn from(secret: &str) -> Self {
        Self::new(secret.to_owned())
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = SecretText::from("hunter2-hunter2");
        assert_eq!(format!("{secret:?}"), "SecretText(<redacted>)");
        assert_eq!(secret.expose_secret(), "hunter2-hunter2");
        assert_eq!(secret.char_count(), 15);
    }
}
