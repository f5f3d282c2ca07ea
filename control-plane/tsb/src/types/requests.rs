//! Asynchronous request tracking (`keyOperationToken` group): status, cancel, filtered list.

use serde::{Deserialize, Serialize};

/// State of an asynchronous (SKA) request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestState {
    /// Waiting for approvals.
    Pending,
    /// Quorum reached; waiting for execution (timelock/scheduler).
    Approved,
    /// Done; `result` holds the outcome.
    Executed,
    /// Execution failed.
    Failed,
    /// Approvals did not arrive in time.
    Expired,
    /// Rejected by approvers.
    Rejected,
    /// Cancelled by the client or because the key was deleted.
    Cancelled,
    /// A state this SDK does not know (newer TSB).
    #[serde(other)]
    Unknown,
}

impl RequestState {
    /// Whether the request can no longer change state (everything except PENDING/APPROVED).
    pub fn is_final(self) -> bool {
        !matches!(self, RequestState::Pending | RequestState::Approved)
    }

    /// The wire name (`PENDING`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "PENDING",
            RequestState::Approved => "APPROVED",
            RequestState::Executed => "EXECUTED",
            RequestState::Failed => "FAILED",
            RequestState::Expired => "EXPIRED",
            RequestState::Rejected => "REJECTED",
            RequestState::Cancelled => "CANCELLED",
            RequestState::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /v1/request/{id}` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStatus {
    /// Request id.
    pub id: String,
    /// Current state.
    pub status: RequestState,
    /// When it executed (ISO-8601), if it did.
    #[serde(default)]
    pub execution_time: Option<String>,
    /// Approvers (base64 SPKI) who approved.
    #[serde(default, deserialize_with = "crate::serde_helpers::null_default")]
    pub approved_by: Vec<String>,
    /// Approvers (base64 SPKI) still to approve.
    #[serde(default, deserialize_with = "crate::serde_helpers::null_default")]
    pub not_yet_approved_by: Vec<String>,
    /// Approvers (base64 SPKI) who rejected.
    #[serde(default, deserialize_with = "crate::serde_helpers::null_default")]
    pub rejected_by: Vec<String>,
    /// Result once EXECUTED: signature / plaintext (base64), CSR / certificate PEM, OTP or
    /// `"true"`, depending on the request type.
    #[serde(default)]
    pub result: Option<String>,
}

impl RequestStatus {
    /// Decodes `result` as base64 (signature/plaintext results).
    pub fn result_bytes(&self) -> Option<Result<Vec<u8>, crate::TsbError>> {
        self.result.as_deref().map(|r| {
            crate::serde_helpers::decode(r)
                .map_err(|e| crate::TsbError::Decode(format!("request result is not base64: {e}")))
        })
    }

    /// Parses `executionTime`.
    pub fn executed_at(&self) -> Option<time::OffsetDateTime> {
        self.execution_time
            .as_deref()
            .and_then(super::keys::parse_time)
    }
}

/// `POST /v1/filteredRequests` body; empty filter = all requests.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestFilter {
    /// Only requests in these states (`None`/empty = all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Vec<RequestState>>,
    /// Only requests on this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
}

/// `{"requests": [...]}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RequestList {
    #[serde(default, deserialize_with = "crate::serde_helpers::null_default")]
    pub(crate) requests: Vec<RequestStatus>,
}
