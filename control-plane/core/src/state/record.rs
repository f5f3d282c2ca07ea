//! Record names, the stored envelope and the sealed-body framing: everything about how one record
//! looks on the HSM, kept apart from the protocol that reads and writes it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::{DataObjectName, SealedBlob, Timestamp};

/// Envelope schema written by this release. Readers refuse other values rather than guess.
pub(crate) const SCHEMA: u32 = 1;

/// Longest record kind. Keeps `kms.lock.<kind>.<id>` within the TSB's 256-character labels.
pub(crate) const MAX_KIND_LEN: usize = 32;
/// Longest record id (9 for `kms.lock.` + 32 + 1 + 200 = 242 ≤ 256).
pub(crate) const MAX_ID_LEN: usize = 200;

/// Kinds whose `kms.<kind>.*` names belong to someone else: the store's own lock objects, and the
/// audit log's event batches and checkpoints. A record of such a kind could collide with them.
const RESERVED_KINDS: &[&str] = &["lock", "audit"];

/// Version byte of the sealed-body framing.
const BLOB_VERSION: u8 = 1;

/// A validated (kind, id) pair and the HSM names derived from it.
///
/// Kind: 1–32 of `[a-z0-9_-]`, starting with a letter, never a reserved kind. Id: 1–200 of
/// `[A-Za-z0-9._:@-]`, starting with a letter or digit. So `kms.<kind>.<id>` is always a valid
/// data-object label, splits back unambiguously (the kind has no dot), contains no `/` (the
/// label is a URL path segment) and is never `.`/`..`-like; and no record name can equal a lock
/// name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RecordKey {
    kind: String,
    id: String,
}

impl RecordKey {
    pub(crate) fn new(kind: &str, id: &str) -> Result<Self, &'static str> {
        validate_kind(kind)?;
        validate_id(id)?;
        Ok(Self {
            kind: kind.to_owned(),
            id: id.to_owned(),
        })
    }

    pub(crate) fn kind(&self) -> &str {
        &self.kind
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// `kms.<kind>.<id>`.
    pub(crate) fn object_name(&self) -> DataObjectName {
        DataObjectName::record(&self.kind, &self.id)
    }

    /// `kms.lock.<kind>.<id>`.
    pub(crate) fn lock_name(&self) -> DataObjectName {
        DataObjectName::record("lock", &format!("{}.{}", self.kind, self.id))
    }

    /// Associated data of a sealed body: binds it to this record and this revision, so that a
    /// body copied onto another record, or an older body put under a newer revision, fails
    /// authentication in the HSM. Unambiguous because kind and id cannot contain `|`.
    pub(crate) fn aad(&self, revision: u64) -> Vec<u8> {
        format!(
            "keymanager.state.v{SCHEMA}|{}|{}|{revision}",
            self.kind, self.id
        )
        .into_bytes()
    }
}

pub(crate) fn validate_kind(kind: &str) -> Result<(), &'static str> {
    if kind.is_empty() || kind.len() > MAX_KIND_LEN {
        return Err("a kind is 1 to 32 characters long");
    }
    if !kind.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("a kind starts with a lower-case letter");
    }
    if !kind
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err("a kind consists of a-z, 0-9, _ and -");
    }
    if RESERVED_KINDS.contains(&kind) {
        return Err("this kind is reserved for the state store's own objects");
    }
    Ok(())
}

pub(crate) fn validate_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err("an id is 1 to 200 characters long");
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("an id starts with a letter or digit");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-'))
    {
        return Err("an id consists of A-Z, a-z, 0-9 and . _ : @ -");
    }
    Ok(())
}

/// One record as stored: `{schema, kind, id, revision, updated_at, updated_by, sealed, body}`.
/// `body` is the record's JSON, or (when `sealed`) a base64 string of the sealed framing below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) schema: u32,
    pub(crate) kind: String,
    pub(crate) id: String,
    pub(crate) revision: u64,
    pub(crate) updated_at: Timestamp,
    pub(crate) updated_by: String,
    pub(crate) sealed: bool,
    pub(crate) body: serde_json::Value,
}

impl Envelope {
    /// Parses stored bytes and checks that they belong where they were found.
    pub(crate) fn parse(key: &RecordKey, raw: &[u8]) -> Result<Self, String> {
        let envelope: Envelope = serde_json::from_slice(raw)
            .map_err(|error| format!("not a record envelope: {error}"))?;
        if envelope.schema != SCHEMA {
            return Err(format!(
                "envelope schema {} is not supported by this release (expects {SCHEMA})",
                envelope.schema
            ));
        }
        if envelope.kind != key.kind() || envelope.id != key.id() {
            return Err(format!(
                "the envelope names {}/{} but is stored as {}/{}",
                envelope.kind,
                envelope.id,
                key.kind(),
                key.id()
            ));
        }
        if envelope.revision == 0 {
            return Err("revision 0 is never written".to_owned());
        }
        Ok(envelope)
    }
}

/// Frames a sealed body: `[version=1][key label length][key label][iv length][iv][ciphertext+tag]`,
/// base64. The seal key's label travels with the body so that a later release can rotate keys.
pub(crate) fn encode_sealed(key_label: &str, blob: &SealedBlob) -> Result<String, &'static str> {
    let label_len = u8::try_from(key_label.len()).map_err(|_| "seal key label longer than 255")?;
    let iv_len = u8::try_from(blob.iv.len()).map_err(|_| "nonce longer than 255 bytes")?;
    let mut framed =
        Vec::with_capacity(3 + key_label.len() + blob.iv.len() + blob.ciphertext.len());
    framed.push(BLOB_VERSION);
    framed.push(label_len);
    framed.extend_from_slice(key_label.as_bytes());
    framed.push(iv_len);
    framed.extend_from_slice(&blob.iv);
    framed.extend_from_slice(&blob.ciphertext);
    Ok(STANDARD.encode(framed))
}

/// Inverse of [`encode_sealed`]: the seal key label and the blob.
pub(crate) fn decode_sealed(
    body: &serde_json::Value,
) -> Result<(String, SealedBlob), &'static str> {
    let text = body.as_str().ok_or("a sealed body is a base64 string")?;
    let framed = STANDARD
        .decode(text)
        .map_err(|_| "a sealed body is not valid base64")?;
    let (&version, rest) = framed.split_first().ok_or("the sealed body is empty")?;
    if version != BLOB_VERSION {
        return Err("unknown sealed body version");
    }
    let (&label_len, rest) = rest.split_first().ok_or("the sealed body is truncated")?;
    let (label, rest) = rest
        .split_at_checked(usize::from(label_len))
        .ok_or("the sealed body is truncated")?;
    let label = std::str::from_utf8(label).map_err(|_| "the seal key label is not UTF-8")?;
    let (&iv_len, rest) = rest.split_first().ok_or("the sealed body is truncated")?;
    let (iv, ciphertext) = rest
        .split_at_checked(usize::from(iv_len))
        .ok_or("the sealed body is truncated")?;
    if ciphertext.is_empty() {
        return Err("the sealed body has no ciphertext");
    }
    Ok((
        label.to_owned(),
        SealedBlob {
            ciphertext: ciphertext.to_vec(),
            iv: iv.to_vec(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_labels_and_never_collide_with_locks() {
        let key = RecordKey::new("user", "alice@example.com").unwrap();
        assert_eq!(key.object_name().as_str(), "kms.user.alice@example.com");
        assert_eq!(key.lock_name().as_str(), "kms.lock.user.alice@example.com");
        assert!(DataObjectName::new(key.lock_name().as_str()).is_ok());
        let longest = RecordKey::new(&"k".repeat(MAX_KIND_LEN), &"i".repeat(MAX_ID_LEN)).unwrap();
        assert!(DataObjectName::new(longest.lock_name().as_str()).is_ok());
        assert!(
            RecordKey::new("lock", "user.alice").is_err(),
            "lock kind is reserved"
        );
    }

    #[test]
    fn bad_kinds_and_ids_are_refused() {
        for kind in [
            "",
            "User",
            "a.b",
            "1abc",
            "a/b",
            "a|b",
            &"k".repeat(MAX_KIND_LEN + 1),
        ] {
            assert!(validate_kind(kind).is_err(), "{kind:?}");
        }
        for id in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a|b",
            "a b",
            "é",
            &"i".repeat(MAX_ID_LEN + 1),
        ] {
            assert!(validate_id(id).is_err(), "{id:?}");
        }
        for id in ["a", "acme", "alice@example.com", "v1.2:x-y_z", "0"] {
            assert!(validate_id(id).is_ok(), "{id:?}");
        }
    }

    #[test]
    fn aad_differs_per_record_and_revision() {
        let a = RecordKey::new("user", "alice").unwrap();
        let b = RecordKey::new("user", "bob").unwrap();
        assert_ne!(a.aad(1), b.aad(1));
        assert_ne!(a.aad(1), a.aad(2));
        assert_ne!(
            RecordKey::new("ab", "c").unwrap().aad(1),
            RecordKey::new("a", "bc").unwrap().aad(1)
        );
    }

    #[test]
    fn sealed_framing_round_trips_and_rejects_garbage() {
        let blob = SealedBlob {
            ciphertext: vec![9; 40],
            iv: vec![7; 12],
        };
        let text = encode_sealed("kms.seal.v1", &blob).unwrap();
        let (label, back) = decode_sealed(&serde_json::Value::String(text)).unwrap();
        assert_eq!(label, "kms.seal.v1");
        assert_eq!(back, blob);
        for bad in [
            serde_json::json!(42),
            serde_json::json!("not base64!"),
            serde_json::json!(""),
            serde_json::json!(STANDARD.encode([2u8, 0, 0, 1])),
            serde_json::json!(STANDARD.encode([1u8, 200, 1])),
            serde_json::json!(STANDARD.encode([1u8, 0, 12, 1, 2])),
        ] {
            assert!(decode_sealed(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn envelopes_stored_under_another_name_are_refused() {
        let key = RecordKey::new("user", "alice").unwrap();
        let envelope = Envelope {
            schema: SCHEMA,
            kind: "user".into(),
            id: "bob".into(),
            revision: 1,
            updated_at: 0,
            updated_by: "test".into(),
            sealed: false,
            body: serde_json::json!({}),
        };
        let raw = serde_json::to_vec(&envelope).unwrap();
        assert!(
            Envelope::parse(&key, &raw)
                .unwrap_err()
                .contains("user/bob")
        );
        let other = RecordKey::new("user", "bob").unwrap();
        assert_eq!(Envelope::parse(&other, &raw).unwrap(), envelope);
        let future = serde_json::to_vec(&Envelope {
            schema: 2,
            ..envelope
        })
        .unwrap();
        assert!(Envelope::parse(&other, &future).is_err());
    }
}
