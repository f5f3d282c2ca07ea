//! Small serde adapters for the TSB wire conventions: binary values are standard base64 strings,
//! and key passwords are JSON arrays of one-character strings (`["s","e","c"]`, the Jackson
//! rendering of a Java `char[]`). Kept private so the public types expose plain Rust values.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// Encodes bytes as standard (padded) base64.
pub(crate) fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64, tolerating embedded ASCII whitespace (line-wrapped values).
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        STANDARD.decode(compact)
    } else {
        STANDARD.decode(text)
    }
}

/// `Vec<u8>` <-> base64 string.
pub(crate) mod b64 {
    use super::*;

    pub(crate) fn serialize<T, S>(value: &T, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: AsRef<[u8]> + ?Sized,
        S: Serializer,
    {
        serializer.serialize_str(&encode(value.as_ref()))
    }

    pub(crate) fn deserialize<'de, D>(deserializer: D) -> Result<Vec<u8>, D::Error>
    where
        D: Deserializer<'de>,
    {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        decode(&text).map_err(|e| de::Error::custom(format!("invalid base64: {e}")))
    }
}

/// `Option<Vec<u8>>` <-> base64 string or `null`.
pub(crate) mod b64_opt {
    use super::*;

    pub(crate) fn serialize<S>(value: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
    {
        match value {
            Some(bytes) => serializer.serialize_str(&encode(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error>
    where
        D: Deserializer<'de>,
    {
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(deserializer)?;
        match text {
            None => Ok(None),
            Some(t) => decode(&t)
                .map(Some)
                .map_err(|e| de::Error::custom(format!("invalid base64: {e}"))),
        }
    }
}

/// `Option<SecretSlice<u8>>` <-> base64 string or `null` (private key material).
pub(crate) mod secret_b64_opt {
    use super::*;

    pub(crate) fn serialize<S>(
        value: &Option<SecretSlice<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
    {
        match value {
            Some(secret) => {
                let text = Zeroizing::new(encode(secret.expose_secret()));
                serializer.serialize_str(&text)
            }
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D>(deserializer: D) -> Result<Option<SecretSlice<u8>>, D::Error>
    where
        D: Deserializer<'de>,
    {
        let text = <Option<String>>::deserialize(deserializer)?.map(Zeroizing::new);
        match text {
            None => Ok(None),
            Some(t) => decode(&t)
                .map(|bytes| Some(SecretSlice::from(bytes)))
                .map_err(|_| de::Error::custom("invalid base64 in secret field")),
        }
    }
}

/// `Option<SecretString>` <-> `["s","e","c"]` (char array) or `null`. Deserialisation accepts
/// a char array or a plain string, as Jackson does for `char[]`.
pub(crate) mod password_opt {
    use super::*;

    pub(crate) fn serialize<S>(
        value: &Option<SecretString>,
        serializer: S,
    ) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
    {
        match value {
            Some(secret) => serialize_chars(secret.expose_secret(), serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D>(deserializer: D) -> Result<Option<SecretString>, D::Error>
    where
        D: Deserializer<'de>,
    {
        deserializer.deserialize_option(OptPasswordVisitor)
    }

    struct OptPasswordVisitor;

    impl<'de> Visitor<'de> for OptPasswordVisitor {
        type Value = Option<SecretString>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a password as a char array, a string, or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            super::password::deserialize(d).map(Some)
        }
    }
}

/// `SecretString` <-> `["s","e","c"]` (char array); accepts a plain string too.
pub(crate) mod password {
    use super::*;

    pub(crate) fn serialize<S>(value: &SecretString, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
    {
        serialize_chars(value.expose_secret(), serializer)
    }

    pub(crate) fn deserialize<'de, D>(deserializer: D) -> Result<SecretString, D::Error>
    where
        D: Deserializer<'de>,
    {
        deserializer.deserialize_any(PasswordVisitor)
    }

    struct PasswordVisitor;

    impl<'de> Visitor<'de> for PasswordVisitor {
        type Value = SecretString;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a password as a char array or a string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(SecretString::from(v))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut buf = Zeroizing::new(String::new());
            while let Some(item) = seq.next_element::<String>()? {
                let item = Zeroizing::new(item);
                let mut chars = item.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => buf.push(c),
                    _ => {
                        return Err(de::Error::custom(
                            "password char array elements must be single characters",
                        ));
                    }
                }
            }
            Ok(SecretString::from(buf.as_str()))
        }
    }
}

/// Plain `SecretString` <-> JSON string (for fields whose Java type is unconfirmed: a string is
/// accepted by Jackson for both `String` and `char[]`).
pub(crate) mod secret_str {
    use super::*;

    pub(crate) fn serialize<S>(value: &SecretString, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
    {
        serializer.serialize_str(value.expose_secret())
    }

    pub(crate) fn deserialize<'de, D>(deserializer: D) -> Result<SecretString, D::Error>
    where
        D: Deserializer<'de>,
    {
        super::password::deserialize(deserializer)
    }
}

fn serialize_chars<S: Serializer>(secret: &str, serializer: S) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(secret.chars().count()))?;
    let mut buf = [0u8; 4];
    for c in secret.chars() {
        let s: &str = c.encode_utf8(&mut buf);
        seq.serialize_element(s)?;
    }
    buf.zeroize();
    seq.end()
}

/// Serialises `{"<name>": <inner>}` — the TSB's request wrapper objects
/// (`{"signRequest": {...}}`, `{"blockRequest": {...}}`, ...).
#[derive(Debug)]
pub(crate) struct Envelope<'a, T: ?Sized> {
    pub(crate) name: &'static str,
    pub(crate) inner: &'a T,
}

impl<T: Serialize + ?Sized> Serialize for Envelope<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.name, self.inner)?;
        map.end()
    }
}

/// Treats an explicit JSON `null` like a missing field (`T::default()`); Java services often
/// send `null` for empty lists.
pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
