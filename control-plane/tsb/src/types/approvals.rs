//! Approver-side wire types (`approverToken` group): fetch approval tasks, approve, reject.
//! Approvers prove possession of their key by signing a fresh timestamp on every call.

use serde::{Deserialize, Serialize};

/// Which `/v1/filtered*ApprovalTask` endpoint to query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TaskKind {
    /// `/v1/filteredAllApprovalTask` (all kinds).
    #[default]
    All,
    /// `/v1/filteredSignApprovalTask`.
    Sign,
    /// `/v1/filteredDecryptApprovalTask`.
    Decrypt,
    /// `/v1/filteredUnwrapKeyApprovalTask`.
    UnwrapKey,
    /// `/v1/filteredBlockKeyApprovalTask`.
    BlockKey,
    /// `/v1/filteredUnblockKeyApprovalTask`.
    UnblockKey,
    /// `/v1/filteredModifyKeyApprovalTask`.
    ModifyKey,
}

impl TaskKind {
    /// The path segment after `/v1/`.
    pub fn path_segment(self) -> &'static str {
        match self {
            TaskKind::All => "filteredAllApprovalTask",
            TaskKind::Sign => "filteredSignApprovalTask",
            TaskKind::Decrypt => "filteredDecryptApprovalTask",
            TaskKind::UnwrapKey => "filteredUnwrapKeyApprovalTask",
            TaskKind::BlockKey => "filteredBlockKeyApprovalTask",
            TaskKind::UnblockKey => "filteredUnblockKeyApprovalTask",
            TaskKind::ModifyKey => "filteredModifyKeyApprovalTask",
        }
    }
}

/// Paging of task lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Paging {
    /// Page number (0-based).
    pub page_number: u32,
    /// Page size.
    pub page_size: u32,
    /// `CREATION_DATE_ASC`, `CREATION_DATE_DESC`, `LAST_FETCHED_DATE_ASC`, `LAST_FETCHED_DATE_DESC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_order: Option<String>,
}

/// What to fetch, for [`crate::TsbClient::fetch_approval_tasks`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApprovalTaskFilter {
    /// Which endpoint (task kind).
    pub kind: TaskKind,
    /// Only this task.
    pub id: Option<String>,
    /// Only tasks of this request.
    pub request_id: Option<String>,
    /// `level1`..`level5` (level ≥ 2 adds metadata).
    pub detail_level: Option<String>,
    /// Paging.
    pub paging: Option<Paging>,
}

/// Body of the `/v1/filtered*ApprovalTask` endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilteredApprovalTaskRequest {
    /// Current time, ISO-8601 `Z`.
    pub timestamp: String,
    /// Approver signature over the UTF-8 bytes of `timestamp`.
    #[serde(with = "crate::serde_helpers::b64")]
    pub timestamp_signature: Vec<u8>,
    /// Approver public key (SPKI DER); exclusive with `approver_certificate`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub approver_public_key: Option<Vec<u8>>,
    /// Approver certificate (DER).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub approver_certificate: Option<Vec<u8>>,
    /// `SHA-256`, `SHA-384`, ...
    pub timestamp_digest_algorithm: String,
    /// Only this task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Only tasks of this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Detail level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail_level: Option<String>,
    /// Paging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
}

/// The kind of operation an approval task is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum TaskType {
    Sign,
    Decrypt,
    Unwrap,
    Block,
    Unblock,
    Modify,
    Certificate,
    /// A type this SDK does not know.
    #[serde(other)]
    Unknown,
}

/// One approval task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalTask {
    /// Task id (used to approve or reject).
    pub id: String,
    /// The request this task belongs to.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Operation kind.
    #[serde(rename = "type", default)]
    pub task_type: Option<TaskType>,
    /// Key the request is for.
    #[serde(default)]
    pub key_name: Option<String>,
    /// Detail level of this answer.
    #[serde(default)]
    pub detail_level: Option<String>,
    /// The opaque challenge the approver signs (decoded bytes).
    #[serde(with = "crate::serde_helpers::b64")]
    pub approval_to_be_signed: Vec<u8>,
    /// Request metadata (base64 of a JSON object), level ≥ 2.
    #[serde(default, with = "crate::serde_helpers::b64_opt")]
    pub meta_data: Option<Vec<u8>>,
    /// Signature over `meta_data`.
    #[serde(default, with = "crate::serde_helpers::b64_opt")]
    pub meta_data_signature: Option<Vec<u8>>,
}

/// `{"tasks": [...]}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TaskList {
    #[serde(default, deserialize_with = "crate::serde_helpers::null_default")]
    pub(crate) tasks: Vec<ApprovalTask>,
}

/// `POST /v1/approval` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    /// Task id.
    pub id: String,
    /// The challenge, echoed back.
    #[serde(with = "crate::serde_helpers::b64")]
    pub approval_to_be_signed: Vec<u8>,
    /// Signature over the decoded challenge bytes.
    #[serde(with = "crate::serde_helpers::b64")]
    pub signature: Vec<u8>,
    /// `SHA-256`, ...
    pub approval_digest_algorithm: String,
    /// Approver public key (SPKI DER).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub approver_public_key: Option<Vec<u8>>,
    /// Approver certificate (DER).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub approver_certificate: Option<Vec<u8>>,
}

/// `DELETE /v1/task` body (reject a task).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectTaskRequest {
    /// Task id.
    pub id: String,
    /// Current time, ISO-8601 `Z`.
    pub timestamp: String,
    /// Signature over the UTF-8 bytes of `timestamp`.
    #[serde(with = "crate::serde_helpers::b64")]
    pub timestamp_signature: Vec<u8>,
    /// `SHA-256`, ...
    pub timestamp_digest_algorithm: String,
    /// Approver public key (SPKI DER).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub approver_public_key: Option<Vec<u8>>,
    /// Approver certificate (DER).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_helpers::b64_opt"
    )]
    pub approver_certificate: Option<Vec<u8>>,
}
