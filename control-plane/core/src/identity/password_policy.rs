//! Password rules after NIST SP 800-63B §5.1.1.2: a minimum length (12 here, above NIST's 8) and
//! a generous maximum, every printable character allowed (spaces and Unicode included), **no**
//! composition rules (no "one digit, one symbol"), and a check against passwords known to be
//! common, repetitive or sequential, or built from the account's own name.
//!
//! A pure function over the text, so the console can show the same message before submitting.

use super::SecretText;

/// The embedded list (see the file's header for how it is used).
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Runs (and their reverses, wrapping around) that make a password guessable however long it is.
const SEQUENCES: &[&str] = &[
    "0123456789",
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "qwertzuiop",
    "azertyuiop",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm",
    "qazwsxedcrfvtgbyhnujmikolp",
    "1q2w3e4r5t6y7u8i9o0p",
];

/// Why a password was refused; the message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    /// Fewer characters than the minimum.
    #[error(
        "the password must have at least {min} characters (it has {actual}); a passphrase of several words is easy to remember"
    )]
    TooShort {
        /// Required.
        min: usize,
        /// Given.
        actual: usize,
    },
    /// More characters than the maximum.
    #[error("the password may have at most {max} characters")]
    TooLong {
        /// Allowed.
        max: usize,
    },
    /// Control characters (newline, tab, NUL, ...) cannot be typed reliably into a login form.
    #[error("the password may not contain control characters such as newlines or tabs")]
    ControlCharacter,
    /// On the list of common passwords (or a common word padded with digits and symbols).
    #[error("this password is too common and would be guessed quickly; choose another")]
    Common,
    /// One short pattern repeated, or a keyboard/alphabet/digit run.
    #[error("the password is a repetition or a sequence (like 'aaaa' or '1234'); choose another")]
    Predictable,
    /// Contains the username or the product name.
    #[error("the password may not contain your username or the product name")]
    ContainsContext,
}

/// The rule set in force (lengths come from the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Minimum length in characters.
    pub min_chars: usize,
    /// Maximum length in characters.
    pub max_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: 12,
            max_chars: 128,
        }
    }
}

impl PasswordPolicy {
    /// Checks `password` for the account `username` (pass "" when there is none yet).
    pub fn check(&self, password: &SecretText, username: &str) -> Result<(), PasswordRejected> {
        let text = password.expose_secret();
        let actual = password.char_count();
        if actual < self.min_chars {
            return Err(PasswordRejected::TooShort {
                min: self.min_chars,
                actual,
            });
        }
        if actual > self.max_chars {
            return Err(PasswordRejected::TooLong {
                max: self.max_chars,
            });
        }
        if text.chars().any(char::is_control) {
            return Err(PasswordRejected::ControlCharacter);
        }
        let lower = zeroize::Zeroizing::new(text.to_lowercase());
        if is_common(&lower) {
            return Err(PasswordRejected::Common);
        }
        if is_predictable(&lower) {
            return Err(PasswordRejected::Predictable);
        }
        let username = username.to_lowercase();
        let product = ["keymanager", "securosys"];
        if (username.chars().count() >= 4 && lower.contains(&username))
            || product.iter().any(|name| lower.contains(name))
        {
            return Err(PasswordRejected::ContainsContext);
        }
        Ok(())
    }
}

fn common_entries() -> impl Iterator<Item = &'static str> {
    COMMON_PASSWORDS
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

fn is_common(lower: &str) -> bool {
    let core = lower.trim_matches(|c: char| !c.is_alphabetic());
    common_entries().any(|entry| entry == lower || (!core.is_empty() && entry == core))
}

fn is_predictable(lower: &str) -> bool {
    let chars: Vec<char> = lower.chars().collect();
    // One unit of up to 4 characters repeated: "aaaaaaaaaaaa", "abcabcabcabc", "12121212...".
    for period in 1..=4.min(chars.len() / 2) {
        if chars.len().is_multiple_of(period)
            && chars.chunks(period).all(|chunk| chunk == &chars[..period])
        {
            return true;
        }
    }
    // A run along the alphabet, the digits or a keyboard row, either direction, wrapping.
    SEQUENCES.iter().any(|sequence| {
        let forward: String = sequence.repeat(chars.len() / sequence.len() + 2);
        let backward: String = forward.chars().rev().collect();
        forward.contains(lower) || backward.contains(lower)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(password: &str, username: &str) -> Result<(), PasswordRejected> {
        PasswordPolicy::default().check(&SecretText::from(password), username)
    }

    #[test]
    fn length_is_counted_in_characters_between_12_and_128() {
        assert_eq!(
            check("short pass1", "alice"),
            Err(PasswordRejected::TooShort {
                min: 12,
                actual: 11
            })
        );
        assert_eq!(check("gänseblümchen", "alice"), Ok(()));
        assert_eq!(
            check(&"ab1-".repeat(32), "alice"),
            Err(PasswordRejected::Predictable)
        );
        let long: String = "tiger lily river ".repeat(8);
        assert_eq!(
            check(&long, "alice"),
            Err(PasswordRejected::TooLong { max: 128 })
        );
        assert_eq!(check(&long[..128], "alice"), Ok(()));
    }

    #[test]
    fn no_composition_rules_spaces_and_unicode_welcome() {
        for ok in [
            "purple monkey dishwasher",
            "alllowercaseletters",
            "ein schöner tag im mai",
            "私のパスワードは長いです",
            "Tr0ub4dor&3 extended",
        ] {
            assert_eq!(check(ok, "alice"), Ok(()), "{ok}");
        }
    }

    #[test]
    fn common_passwords_and_padded_common_words_are_refused() {
        for bad in [
            "password1234",
            "Password123!",
            "!!Qwerty2024!!",
            "correcthorsebatterystaple",
            "iloveyou1234567",
            "Welcome2024!!",
            "monkey12345678",
        ] {
            assert_eq!(check(bad, "alice"), Err(PasswordRejected::Common), "{bad}");
        }
    }

    #[test]
    fn repetitions_and_sequences_are_refused() {
        for bad in [
            "aaaaaaaaaaaa",
            "xyzxyzxyzxyz",
            "121212121212",
            "123456789012",
            "210987654321",
            "abcdefghijklm",
            "qwertyuiopqw",
            "mnbvcxzmnbvcxz",
        ] {
            assert_eq!(
                check(bad, "alice"),
                Err(PasswordRejected::Predictable),
                "{bad}"
            );
        }
    }

    #[test]
    fn context_words_are_refused() {
        assert_eq!(
            check("my name is AliceSmith!", "alicesmith"),
            Err(PasswordRejected::ContainsContext)
        );
        assert_eq!(
            check("my keymanager login 7", "bob"),
            Err(PasswordRejected::ContainsContext)
        );
        // Short usernames are not searched for (too many false positives).
        assert_eq!(check("bobcat on the prowl", "bob"), Ok(()));
    }

    #[test]
    fn control_characters_are_refused() {
        assert_eq!(
            check("line one\nline two", "alice"),
            Err(PasswordRejected::ControlCharacter)
        );
    }
}
