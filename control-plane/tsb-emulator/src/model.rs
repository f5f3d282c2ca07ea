//! In-memory state of one partition (keys, data objects, requests with their approval tasks,
//! approvers) and its serialisation for the storage layer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::config::ApiKeyGroups;
use crate::crypto::KeyMaterial;
use crate::error::{EmulatorError, TsbError};
use crate::policy::{Policy, ResolvedRule};
use crate::storage::{Kind, Persistence};

/// Key attributes as stored (request flags plus the read-only ones).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Attributes {
    pub encrypt: bool,
    pub decrypt: bool,
    pub verify: bool,
    pub sign: bool,
    pub wrap: bool,
    pub unwrap: bool,
    pub derive: bool,
    pub bip32: bool,
    pub slip10: bool,
    pub extractable: bool,
    pub modifiable: bool,
    pub destroyable: bool,
    pub sensitive: bool,
    pub copyable: bool,
    pub always_sensitive: bool,
    pub never_extractable: bool,
    pub eka_sign: bool,
}

/// Attributes as sent by a client: every flag optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AttributesIn {
    pub encrypt: Option<bool>,
    pub decrypt: Option<bool>,
    pub verify: Option<bool>,
    pub sign: Option<bool>,
    pub wrap: Option<bool>,
    pub unwrap: Option<bool>,
    pub derive: Option<bool>,
    pub bip32: Option<bool>,
    pub slip10: Option<bool>,
    pub extractable: Option<bool>,
    pub modifiable: Option<bool>,
    pub destroyable: Option<bool>,
    pub sensitive: Option<bool>,
    pub copyable: Option<bool>,
}

impl AttributesIn {
    /// Defaults follow PKCS#11 (destroyable, modifiable and sensitive on; everything else off).
    pub fn to_attributes(&self) -> Attributes {
        let sensitive = self.sensitive.unwrap_or(true);
        let extractable = self.extractable.unwrap_or(false);
        Attributes {
            encrypt: self.encrypt.unwrap_or(false),
            decrypt: self.decrypt.unwrap_or(false),
            verify: self.verify.unwrap_or(false),
            sign: self.sign.unwrap_or(false),
            wrap: self.wrap.unwrap_or(false),
            unwrap: self.unwrap.unwrap_or(false),
            derive: self.derive.unwrap_or(false),
            bip32: self.bip32.unwrap_or(false),
            slip10: self.slip10.unwrap_or(false),
            extractable,
            modifiable: self.modifiable.unwrap_or(true),
            destroyable: self.destroyable.unwrap_or(true),
            sensitive,
            copyable: self.copyable.unwrap_or(false),
            always_sensitive: sensitive,
            never_extractable: !extractable,
            eka_sign: false,
        }
    }

    /// Applies a modification that may only make the key stricter (614 otherwise).
    pub fn apply_stricter(&self, current: &Attributes) -> Result<Attributes, TsbError> {
        let mut next = current.clone();
        // Capabilities may only be removed (true -> false).
        let removable: [(&str, Option<bool>, &mut bool); 12] = [
            ("encrypt", self.encrypt, &mut next.encrypt),
            ("decrypt", self.decrypt, &mut next.decrypt),
            ("verify", self.verify, &mut next.verify),
            ("sign", self.sign, &mut next.sign),
            ("wrap", self.wrap, &mut next.wrap),
            ("unwrap", self.unwrap, &mut next.unwrap),
            ("derive", self.derive, &mut next.derive),
            ("bip32", self.bip32, &mut next.bip32),
            ("slip10", self.slip10, &mut next.slip10),
            ("extractable", self.extractable, &mut next.extractable),
            ("destroyable", self.destroyable, &mut next.destroyable),
            ("copyable", self.copyable, &mut next.copyable),
        ];
        for (name, wanted, slot) in removable {
            if let Some(w) = wanted {
                if w && !*slot {
                    return Err(TsbError::forbidden_for_key(format!(
                        "attribute '{name}' can only be made stricter (true -> false)"
                    )));
                }
                *slot = w;
            }
        }
        if let Some(s) = self.sensitive {
            if !s && next.sensitive {
                return Err(TsbError::forbidden_for_key(
                    "attribute 'sensitive' can only be made stricter (false -> true)",
                ));
            }
            next.sensitive = s;
        }
        if let Some(m) = self.modifiable {
            if m && !next.modifiable {
                return Err(TsbError::forbidden_for_key(
                    "attribute 'modifiable' can only be made stricter (true -> false)",
                ));
            }
            next.modifiable = m;
        }
        if next != *current && !current.modifiable {
            return Err(TsbError::forbidden_for_key("key is not modifiable"));
        }
        Ok(next)
    }
}

/// `keyUsageCount`: counted outside the partition lock (an operation bumps it after its crypto
/// finished). Clones share the counter, so a use counted through a snapshot taken before a
/// copy-on-write of the record still lands in the live record. Serialised as a plain number.
#[derive(Clone, Default)]
pub(crate) struct UsageCount(Arc<AtomicU64>);

impl UsageCount {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Serialize for UsageCount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.get())
    }
}

impl<'de> Deserialize<'de> for UsageCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u64::deserialize(d).map(|n| Self(Arc::new(AtomicU64::new(n))))
    }
}

/// Key material behind an `Arc` so that operations can take it out of the partition lock
/// without copying secrets; serialised like the material itself.
mod arc_material {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::crypto::KeyMaterial;

    pub fn serialize<S: Serializer>(m: &Arc<KeyMaterial>, s: S) -> Result<S::Ok, S::Error> {
        m.as_ref().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<KeyMaterial>, D::Error> {
        KeyMaterial::deserialize(d).map(Arc::new)
    }
}

/// One HSM key. Stored as `Arc<KeyRecord>` in the partition: an operation clones the `Arc`
/// (a consistent snapshot) under the lock and works on it after releasing the lock; writers
/// copy on write (`Arc::make_mut`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KeyRecord {
    pub label: String,
    pub id: Option<String>,
    pub uuid: String,
    #[serde(with = "arc_material")]
    pub material: Arc<KeyMaterial>,
    pub attributes: Attributes,
    /// `None` = plain key that can never become SKA.
    pub policy: Option<Policy>,
    /// (salt hex, salted SHA-256 hex) of the key password.
    pub password: Option<(String, String)>,
    pub create_time: i64,
    pub key_usage_count: UsageCount,
    pub certificate_pem: Option<String>,
    pub address_format: Option<Value>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl KeyRecord {
    pub fn blocked(&self) -> bool {
        self.policy.as_ref().is_some_and(Policy::blocked)
    }
}

/// An HSM data object (wire-decisions.md).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DataObjectRecord {
    pub label: String,
    /// Base64 of the value.
    pub value: String,
    pub modifiable: bool,
    pub destroyable: bool,
    pub private: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum RequestStatus {
    Pending,
    Approved,
    Executed,
    Failed,
    Expired,
    Rejected,
    Cancelled,
}

impl RequestStatus {
    pub fn is_open(self) -> bool {
        matches!(self, RequestStatus::Pending | RequestStatus::Approved)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "PENDING",
            RequestStatus::Approved => "APPROVED",
            RequestStatus::Executed => "EXECUTED",
            RequestStatus::Failed => "FAILED",
            RequestStatus::Expired => "EXPIRED",
            RequestStatus::Rejected => "REJECTED",
            RequestStatus::Cancelled => "CANCELLED",
        }
    }
}

/// What an asynchronous request will do once approved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RequestKind {
    Sign,
    Decrypt,
    Unwrap,
    Block,
    Unblock,
    Modify,
    Csr,
    SelfSign,
    SignCertificate,
}

impl RequestKind {
    /// Task `type` on the approver side.
    pub fn task_type(self) -> &'static str {
        match self {
            RequestKind::Sign => "SIGN",
            RequestKind::Decrypt => "DECRYPT",
            RequestKind::Unwrap => "UNWRAP",
            RequestKind::Block => "BLOCK",
            RequestKind::Unblock => "UNBLOCK",
            RequestKind::Modify => "MODIFY",
            RequestKind::Csr | RequestKind::SelfSign | RequestKind::SignCertificate => {
                "CERTIFICATE"
            }
        }
    }
}

/// One approval task: a request waiting for one approver.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskRecord {
    pub id: String,
    /// Approver SPKI (base64).
    pub approver: String,
    /// Base64 of the challenge the approver signs.
    pub approval_to_be_signed: String,
    pub created: i64,
    pub last_fetched: Option<i64>,
}

/// An asynchronous (SKA) request.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestRecord {
    pub id: String,
    pub seq: u64,
    pub kind: RequestKind,
    pub key_name: String,
    /// Emulator-clock unix seconds.
    pub created: i64,
    pub rule: ResolvedRule,
    /// The inner request object; cleared once the request is closed.
    pub params: Value,
    pub status: RequestStatus,
    pub approved: Vec<String>,
    pub rejected: Vec<String>,
    pub tasks: Vec<TaskRecord>,
    pub execution_time: Option<i64>,
    pub result: Option<String>,
    pub meta_data: Option<String>,
    pub meta_data_signature: Option<String>,
    /// In memory only: the request is fulfilled and its operation is running outside the
    /// partition lock. It is neither re-evaluated, cancelled nor persisted meanwhile (a crash
    /// leaves the persisted, still open request, which executes again after the restart).
    #[serde(skip)]
    pub executing: bool,
}

impl std::fmt::Debug for RequestRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestRecord")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// An approver created through Approver Management.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApproverRecord {
    pub name: String,
    pub material: KeyMaterial,
    /// Base64 DER.
    pub certificate: String,
    pub one_time_code: Option<String>,
    pub onboarded: bool,
    pub backup_password: (String, String),
}

impl std::fmt::Debug for ApproverRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApproverRecord")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Which records changed and must be persisted before the response goes out.
#[derive(Clone, Debug)]
pub(crate) enum Dirty {
    Key(String),
    DataObject(String),
    Request(String),
    Approver(String),
}

/// Everything of one partition.
#[derive(Default)]
pub(crate) struct PartitionState {
    /// Sorted by label: the in-memory index that `GET /v1/key` lists.
    pub keys: BTreeMap<String, Arc<KeyRecord>>,
    pub data_objects: BTreeMap<String, DataObjectRecord>,
    pub requests: BTreeMap<String, RequestRecord>,
    pub approvers: BTreeMap<String, ApproverRecord>,
    pub next_seq: u64,
}

/// A partition with its configuration and locked state.
pub(crate) struct Partition {
    pub name: String,
    pub api_keys: ApiKeyGroups,
    /// Bearer-JWT requirement (`None` = no JWT needed).
    pub jwt: Option<crate::auth::JwtVerifier>,
    pub state: tokio::sync::Mutex<PartitionState>,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn to_bytes<T: Serialize>(v: &T) -> Result<Zeroizing<Vec<u8>>, TsbError> {
    serde_json::to_vec(v)
        .map(Zeroizing::new)
        .map_err(|e| TsbError::io(format!("serialisation failed: {e}")))
}

impl PartitionState {
    pub(crate) fn load(persistence: &Persistence, partition: &str) -> Result<Self, EmulatorError> {
        fn parse<T: serde::de::DeserializeOwned>(
            bytes: &[u8],
            partition: &str,
            what: &str,
        ) -> Result<T, EmulatorError> {
            serde_json::from_slice(bytes).map_err(|e| {
                EmulatorError::Storage(format!(
                    "unreadable {what} record in partition {partition}: {e}"
                ))
            })
        }
        let mut st = PartitionState::default();
        for b in persistence.load_all(partition, Kind::Key)? {
            let k: KeyRecord = parse(&b, partition, "key")?;
            st.keys.insert(k.label.clone(), Arc::new(k));
        }
        for b in persistence.load_all(partition, Kind::DataObject)? {
            let d: DataObjectRecord = parse(&b, partition, "data object")?;
            st.data_objects.insert(d.label.clone(), d);
        }
        for b in persistence.load_all(partition, Kind::Request)? {
            let r: RequestRecord = parse(&b, partition, "request")?;
            st.next_seq = st.next_seq.max(r.seq + 1);
            st.requests.insert(r.id.clone(), r);
        }
        for b in persistence.load_all(partition, Kind::Approver)? {
            let a: ApproverRecord = parse(&b, partition, "approver")?;
            st.approvers.insert(a.name.clone(), a);
        }
        Ok(st)
    }

    /// Persists (or deletes, when gone from memory) every dirty record.
    pub(crate) async fn flush(
        &self,
        persistence: &Persistence,
        partition: &str,
        dirty: &[Dirty],
    ) -> Result<(), TsbError> {
        for d in dirty {
            match d {
                Dirty::Key(n) => match self.keys.get(n) {
                    Some(k) => {
                        persistence
                            .put(partition, Kind::Key, n, to_bytes(k.as_ref())?)
                            .await?
                    }
                    None => persistence.delete(partition, Kind::Key, n).await?,
                },
                Dirty::DataObject(n) => match self.data_objects.get(n) {
                    Some(o) => {
                        persistence
                            .put(partition, Kind::DataObject, n, to_bytes(o)?)
                            .await?
                    }
                    None => persistence.delete(partition, Kind::DataObject, n).await?,
                },
                Dirty::Request(n) => match self.requests.get(n) {
                    Some(r) => {
                        persistence
                            .put(partition, Kind::Request, n, to_bytes(r)?)
                            .await?
                    }
                    None => persistence.delete(partition, Kind::Request, n).await?,
                },
                Dirty::Approver(n) => match self.approvers.get(n) {
                    Some(a) => {
                        persistence
                            .put(partition, Kind::Approver, n, to_bytes(a)?)
                            .await?
                    }
                    None => persistence.delete(partition, Kind::Approver, n).await?,
                },
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stricter_only() {
        let cur = AttributesIn {
            sign: Some(true),
            sensitive: Some(false),
            ..Default::default()
        }
        .to_attributes();
        let tighten = AttributesIn {
            sensitive: Some(true),
            sign: Some(false),
            ..Default::default()
        };
        let next = tighten.apply_stricter(&cur).unwrap();
        assert!(next.sensitive && !next.sign);
        let loosen = AttributesIn {
            decrypt: Some(true),
            ..Default::default()
        };
        assert_eq!(loosen.apply_stricter(&cur).unwrap_err().code, 614);
        let mut frozen = cur.clone();
        frozen.modifiable = false;
        assert_eq!(tighten.apply_stricter(&frozen).unwrap_err().code, 614);
    }
}
