//! Wire helpers shared by the handlers: JSON parsing with TSB error codes, request wrappers,
//! passwords as char arrays or strings, standard base64, PEM armour, ISO-8601 times.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::error::TsbError;

/// Parses a request body as JSON (621 on malformed input).
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, TsbError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(TsbError::invalid_json("request body is empty"));
    }
    serde_json::from_slice(body).map_err(|e| TsbError::invalid_json(format!("malformed JSON: {e}")))
}

/// Takes the inner object of a `{"signRequest": {...}}` style wrapper (600 when absent).
pub(crate) fn unwrap_wrapper(v: Value, wrapper: &str) -> Result<Value, TsbError> {
    match v {
        Value::Object(mut m) => match m.remove(wrapper) {
            Some(inner @ Value::Object(_)) => Ok(inner),
            Some(Value::Null) | None => Err(TsbError::missing(wrapper)),
            Some(_) => Err(TsbError::invalid_json(format!(
                "'{wrapper}' must be an object"
            ))),
        },
        _ => Err(TsbError::invalid_json("request body must be a JSON object")),
    }
}

/// Accepts either the wrapped form or the bare inner object (used where the reference does not
/// say whether the synchronous certificate endpoints are wrapped).
pub(crate) fn unwrap_optional_wrapper(v: Value, wrapper: &str) -> Value {
    match v {
        Value::Object(mut m) if m.get(wrapper).is_some_and(Value::is_object) => {
            m.remove(wrapper).unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// Deserialises an already parsed value; type mismatches are `invalid.json` (621) like Jackson's
/// unreadable-message errors.
pub(crate) fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, TsbError> {
    if !v.is_object() {
        return Err(TsbError::invalid_json("request body must be a JSON object"));
    }
    serde_json::from_value(v).map_err(|e| TsbError::invalid_json(format!("invalid JSON: {e}")))
}

pub(crate) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, TsbError> {
    from_value(parse_json(body)?)
}

pub(crate) fn parse_wrapped<T: DeserializeOwned>(
    body: &[u8],
    wrapper: &str,
) -> Result<T, TsbError> {
    from_value(unwrap_wrapper(parse_json(body)?, wrapper)?)
}

/// Required field check (600).
pub(crate) fn required<T>(v: Option<T>, field: &str) -> Result<T, TsbError> {
    v.ok_or_else(|| TsbError::missing(field))
}

/// Required non-empty string.
pub(crate) fn required_str(v: Option<String>, field: &str) -> Result<String, TsbError> {
    match v {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(TsbError::missing(field)),
    }
}

pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Standard base64 (whitespace tolerated); 612 invalid.payload on garbage.
pub(crate) fn b64_decode(s: &str, field: &str) -> Result<Vec<u8>, TsbError> {
    let cleaned: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|_| TsbError::new(612, format!("'{field}' is not valid base64")))
}

/// Decodes base64 DER, tolerating PEM armour (`-----BEGIN ...-----`) around it.
pub(crate) fn der_from_b64_or_pem(s: &str, field: &str) -> Result<Vec<u8>, TsbError> {
    let body: String = s
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .collect::<Vec<_>>()
        .join("");
    b64_decode(&body, field)
}

/// PEM armour around DER.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = b64_encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

pub(crate) fn iso8601(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

pub(crate) fn parse_iso8601(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Percent-decodes one URL path segment (key names may contain reserved characters).
pub(crate) fn percent_decode(s: &str) -> Result<String, TsbError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| TsbError::new(610, "malformed percent-encoding in path"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| TsbError::new(610, "path segment is not UTF-8"))
}

/// A password sent as a JSON char array (`["s","e","c"]`) or as a plain string; zeroized on drop
/// and never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Password(pub Zeroizing<String>);

impl Password {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Password;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of characters")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Password, E> {
                Ok(Password(Zeroizing::new(v.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Password, A::Error> {
                let mut s = Zeroizing::new(String::new());
                while let Some(item) = seq.next_element::<String>()? {
                    let mut item = item;
                    s.push_str(&item);
                    zeroize::Zeroize::zeroize(&mut item);
                }
                Ok(Password(s))
            }
        }
        d.deserialize_any(V)
    }
}

impl serde::Serialize for Password {
    // Only used for persisting pending requests inside the encrypted state directory.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A JSON success response body.
pub(crate) struct JsonOut {
    pub status: u16,
    pub body: Value,
}

impl JsonOut {
    pub fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }
    pub fn created(body: Value) -> Self {
        Self { status: 201, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_forms() {
        let p: Password = serde_json::from_str("[\"s\",\"e\",\"c\"]").unwrap();
        assert_eq!(p.as_str(), "sec");
        let p: Password = serde_json::from_str("\"sec\"").unwrap();
        assert_eq!(p.as_str(), "sec");
        assert!(!format!("{p:?}").contains("sec"));
    }

    #[test]
    fn wrapper_and_errors() {
        let v = parse_json(br#"{"signRequest":{"a":1}}"#).unwrap();
        assert_eq!(unwrap_wrapper(v, "signRequest").unwrap()["a"], 1);
        let v = parse_json(br#"{"other":{}}"#).unwrap();
        assert_eq!(unwrap_wrapper(v, "signRequest").unwrap_err().code, 600);
        assert_eq!(parse_json(b"{nope").unwrap_err().code, 621);
        assert_eq!(percent_decode("a%2Fb").unwrap(), "a/b");
        let pem = pem_encode("CERTIFICATE", &[1, 2, 3]);
        assert_eq!(der_from_b64_or_pem(&pem, "c").unwrap(), vec![1, 2, 3]);
    }
}
