//! Data object wire types (`keyManagementToken`): arbitrary small blobs stored in the HSM
//! partition. keymanager keeps all its persistent state in them, so create is create-if-absent
//! (a second create of the same label fails with 615).

use serde::{Deserialize, Serialize};

/// Flags of a new data object. All default to `true`, as on the TSB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataObjectFlags {
    /// Value may be replaced.
    pub modifiable: bool,
    /// Object may be deleted.
    pub destroyable: bool,
    /// Object is private to the partition user.
    pub private: bool,
}

impl Default for DataObjectFlags {
    fn default() -> Self {
        DataObjectFlags {
            modifiable: true,
            destroyable: true,
            private: true,
        }
    }
}

/// `POST /v1/dataObject` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDataObjectRequest {
    /// Label (1–256 chars of `[A-Za-z0-9._:@/-]`).
    pub label: String,
    /// Value (≤ 1 MiB).
    #[serde(with = "crate::serde_helpers::b64")]
    pub value: Vec<u8>,
    /// Flags.
    #[serde(flatten)]
    pub flags: DataObjectFlags,
}

/// `PUT /v1/dataObject/{label}` body.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReplaceDataObjectRequest<'a> {
    #[serde(with = "crate::serde_helpers::b64")]
    pub(crate) value: &'a [u8],
}

/// `GET /v1/dataObject/{label}` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataObject {
    /// Label.
    pub label: String,
    /// Value.
    #[serde(with = "crate::serde_helpers::b64")]
    pub value: Vec<u8>,
    /// Value may be replaced.
    #[serde(default = "yes")]
    pub modifiable: bool,
    /// Object may be deleted.
    #[serde(default = "yes")]
    pub destroyable: bool,
    /// Private to the partition user.
    #[serde(default = "yes")]
    pub private: bool,
}

fn yes() -> bool {
    true
}
