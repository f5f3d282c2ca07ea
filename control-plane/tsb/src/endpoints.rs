//! The endpoint methods of [`TsbClient`], one per TSB operation, each sending the API key of
//! the group the reference assigns to the endpoint.

use std::time::Duration;

use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::TsbError;
use crate::approver::ApproverKey;
use crate::client::{KeyGroup, TsbClient};
use crate::serde_helpers::Envelope;
use crate::types::approvals::{
    ApprovalRequest, ApprovalTask, ApprovalTaskFilter, FilteredApprovalTaskRequest,
    RejectTaskRequest, TaskKind, TaskList,
};
use crate::types::approver_management::{
    ApproverNameRequest, CreateApproverRequest, ForgotPasswordRequest, OnboardApproverRequest,
    OnboardApproverResponse, OnboardingStatus, OneTimeCodeResponse,
};
use crate::types::certificates::{
    CertificateResponse, CsrRequest, CsrResponse, ImportCertificateRequest,
    SelfSignCertificateRequest, SignCertificateRequest,
};
use crate::types::crypto::{
    BlockRequest, DecryptRequest, EncryptRequest, EncryptResponse, HmacRequest, ModifyRequest,
    SignRequest, UnblockRequest, UnwrapKeyRequest, VerifyHmacRequest, VerifyRequest,
    WrapKeyRequest,
};
use crate::types::data_objects::{
    CreateDataObjectRequest, DataObject, DataObjectFlags, ReplaceDataObjectRequest,
};
use crate::types::keys::{
    ChangePasswordRequest, CreateKeyRequest, ExportedKey, ImportPlainKeyRequest, KeyDescriptor,
    KeyLabelRequest,
};
use crate::types::policy::Policy;
use crate::types::requests::{RequestFilter, RequestList, RequestStatus};
use crate::types::service::{KeystoreStatistics, LicenseInfo, VersionInfo};

/// How far in the past approver timestamps are dated by the high-level approver helpers, to
/// absorb clock skew (the TSB accepts up to 600 s in the past and 0 s in the future).
pub const APPROVER_TIMESTAMP_SKEW_MARGIN: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignatureResponse {
    #[serde(with = "crate::serde_helpers::b64")]
    signature: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignatureValidResponse {
    signature_valid: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyedHashResponse {
    #[serde(with = "crate::serde_helpers::b64")]
    keyed_hash: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PayloadResponse {
    #[serde(with = "crate::serde_helpers::b64")]
    payload: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WrappedKeyResponse {
    #[serde(with = "crate::serde_helpers::b64")]
    wrapped_key: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RandomResponse {
    #[serde(with = "crate::serde_helpers::b64")]
    random: Vec<u8>,
}

/// Pulls the request id out of an async submission answer (`{"signRequestId": "..."}` etc.).
pub(crate) fn request_id_from(value: &serde_json::Value, field: &str) -> Result<String, TsbError> {
    value
        .get(field)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| TsbError::Decode(format!("response has no `{field}`")))
}

impl TsbClient {
    async fn submit_async<T: serde::Serialize>(
        &self,
        group: KeyGroup,
        path: &[&str],
        wrapper: &'static str,
        inner: &T,
        id_field: &str,
    ) -> Result<String, TsbError> {
        let value: serde_json::Value = self
            .send_json(
                Method::POST,
                group,
                path,
                &Envelope {
                    name: wrapper,
                    inner,
                },
            )
            .await?;
        request_id_from(&value, id_field)
    }

    // ----- service information (serviceToken) -----

    /// `GET /v1/versionInfo`.
    pub async fn version_info(&self) -> Result<VersionInfo, TsbError> {
        self.get_json(KeyGroup::Service, &["versionInfo"]).await
    }

    /// `GET /v1/licenseInfo`.
    pub async fn license_info(&self) -> Result<LicenseInfo, TsbError> {
        self.get_json(KeyGroup::Service, &["licenseInfo"]).await
    }

    /// `GET /v1/keystore/statistics` — the customary health/connectivity check.
    pub async fn keystore_statistics(&self) -> Result<KeystoreStatistics, TsbError> {
        self.get_json(KeyGroup::Service, &["keystore", "statistics"])
            .await
    }

    // ----- keys (keyManagementToken) -----

    /// `POST /v1/key` → 201 key descriptor.
    pub async fn create_key(&self, request: &CreateKeyRequest) -> Result<KeyDescriptor, TsbError> {
        self.send_json(Method::POST, KeyGroup::KeyManagement, &["key"], request)
            .await
    }

    /// `GET /v1/key` → all key labels of the partition.
    pub async fn list_keys(&self) -> Result<Vec<String>, TsbError> {
        self.get_json(KeyGroup::KeyManagement, &["key"]).await
    }

    /// `POST /v1/key/attributes` → key descriptor (attributes, policy, public key, ...).
    pub async fn key_attributes(
        &self,
        label: &str,
        password: Option<&SecretString>,
    ) -> Result<KeyDescriptor, TsbError> {
        let body = KeyLabelRequest {
            label: label.to_owned(),
            password: password.cloned(),
        };
        self.send_json(
            Method::POST,
            KeyGroup::KeyManagement,
            &["key", "attributes"],
            &body,
        )
        .await
    }

    /// `DELETE /v1/key/{label}`; pending requests on the key become CANCELLED.
    pub async fn delete_key(&self, label: &str) -> Result<(), TsbError> {
        self.send_unit::<()>(
            Method::DELETE,
            KeyGroup::KeyManagement,
            &["key", label],
            None,
        )
        .await
    }

    /// `POST /v1/key/deleteKey` — delete a password-protected key.
    pub async fn delete_key_with_password(
        &self,
        label: &str,
        password: Option<&SecretString>,
    ) -> Result<(), TsbError> {
        let body = KeyLabelRequest {
            label: label.to_owned(),
            password: password.cloned(),
        };
        self.send_unit(
            Method::POST,
            KeyGroup::KeyManagement,
            &["key", "deleteKey"],
            Some(&body),
        )
        .await
    }

    /// `POST /v1/key/changePassword`.
    pub async fn change_key_password(
        &self,
        label: &str,
        password: Option<&SecretString>,
        new_password: &SecretString,
    ) -> Result<(), TsbError> {
        let body = ChangePasswordRequest {
            label: label.to_owned(),
            password: password.cloned(),
            new_password: new_password.clone(),
        };
        self.send_unit(
            Method::POST,
            KeyGroup::KeyManagement,
            &["key", "changePassword"],
            Some(&body),
        )
        .await
    }

    /// `POST /v1/key/import/plain`. The answer's shape is not pinned down by the reference, so
    /// it is returned as JSON.
    pub async fn import_plain_key(
        &self,
        request: &ImportPlainKeyRequest,
    ) -> Result<serde_json::Value, TsbError> {
        self.send_json(
            Method::POST,
            KeyGroup::KeyManagement,
            &["key", "import", "plain"],
            request,
        )
        .await
    }

    /// `POST /v1/key/export/plain` (non-SKA, extractable, non-sensitive keys only).
    pub async fn export_plain_key(
        &self,
        label: &str,
        password: Option<&SecretString>,
    ) -> Result<ExportedKey, TsbError> {
        let body = KeyLabelRequest {
            label: label.to_owned(),
            password: password.cloned(),
        };
        self.send_json(
            Method::POST,
            KeyGroup::KeyManagement,
            &["key", "export", "plain"],
            &body,
        )
        .await
    }

    /// `POST /v1/key/keyAttestation` → the zip the TSB hands out, as raw bytes: `<label>.xml`
    /// (the key's attestation), `<label>.sig` (its signature by the attestation key),
    /// `<label>.pem` (the attestation key's public key), `PrimusHSM_Attestation.crt` (its
    /// certificate) and a `README`.
    pub async fn key_attestation(
        &self,
        label: &str,
        password: Option<&SecretString>,
    ) -> Result<Vec<u8>, TsbError> {
        let body = KeyLabelRequest {
            label: label.to_owned(),
            password: password.cloned(),
        };
        self.send_for_file(
            Method::POST,
            KeyGroup::KeyManagement,
            &["key", "keyAttestation"],
            &body,
            "application/zip, application/json",
        )
        .await
    }

    // ----- block / unblock (keyOperationToken) / modify (keyManagementToken) -----

    /// `POST /v1/synchronousBlock` for `label` (no password, no approvals).
    pub async fn block(&self, label: &str) -> Result<(), TsbError> {
        self.block_with(&BlockRequest::new(label)).await
    }

    /// `POST /v1/synchronousBlock` with a full request.
    pub async fn block_with(&self, request: &BlockRequest) -> Result<(), TsbError> {
        let body = Envelope {
            name: "blockRequest",
            inner: request,
        };
        self.send_unit(
            Method::POST,
            KeyGroup::KeyOperation,
            &["synchronousBlock"],
            Some(&body),
        )
        .await
    }

    /// `POST /v1/block` → request id (`blockKeyRequestId`).
    pub async fn block_async(&self, label: &str) -> Result<String, TsbError> {
        self.block_async_with(&BlockRequest::new(label)).await
    }

    /// `POST /v1/block` with a full request → request id.
    pub async fn block_async_with(&self, request: &BlockRequest) -> Result<String, TsbError> {
        self.submit_async(
            KeyGroup::KeyOperation,
            &["block"],
            "blockRequest",
            request,
            "blockKeyRequestId",
        )
        .await
    }

    /// `POST /v1/synchronousUnblock` for `label`.
    pub async fn unblock(&self, label: &str) -> Result<(), TsbError> {
        self.unblock_with(&UnblockRequest::new(label)).await
    }

    /// `POST /v1/synchronousUnblock` with a full request.
    pub async fn unblock_with(&self, request: &UnblockRequest) -> Result<(), TsbError> {
        let body = Envelope {
            name: "unblockRequest",
            inner: request,
        };
        self.send_unit(
            Method::POST,
            KeyGroup::KeyOperation,
            &["synchronousUnblock"],
            Some(&body),
        )
        .await
    }

    /// `POST /v1/unblock` → request id (`unblockKeyRequestId`).
    pub async fn unblock_async(&self, label: &str) -> Result<String, TsbError> {
        self.unblock_async_with(&UnblockRequest::new(label)).await
    }

    /// `POST /v1/unblock` with a full request → request id.
    pub async fn unblock_async_with(&self, request: &UnblockRequest) -> Result<String, TsbError> {
        self.submit_async(
            KeyGroup::KeyOperation,
            &["unblock"],
            "unblockRequest",
            request,
            "unblockKeyRequestId",
        )
        .await
    }

    /// `POST /v1/synchronousModify`: replace the SKA policy of `label`.
    pub async fn modify(&self, label: &str, policy: &Policy) -> Result<(), TsbError> {
        self.modify_with(&ModifyRequest::new(label, policy.clone()))
            .await
    }

    /// `POST /v1/synchronousModify` with a full request.
    pub async fn modify_with(&self, request: &ModifyRequest) -> Result<(), TsbError> {
        let body = Envelope {
            name: "modifyRequest",
            inner: request,
        };
        self.send_unit(
            Method::POST,
            KeyGroup::KeyManagement,
            &["synchronousModify"],
            Some(&body),
        )
        .await
    }

    /// `POST /v1/modify` → request id (`modifyKeyRequestId`).
    pub async fn modify_async(&self, label: &str, policy: &Policy) -> Result<String, TsbError> {
        self.modify_async_with(&ModifyRequest::new(label, policy.clone()))
            .await
    }

    /// `POST /v1/modify` with a full request → request id.
    pub async fn modify_async_with(&self, request: &ModifyRequest) -> Result<String, TsbError> {
        self.submit_async(
            KeyGroup::KeyManagement,
            &["modify"],
            "modifyRequest",
            request,
            "modifyKeyRequestId",
        )
        .await
    }

    // ----- crypto (keyOperationToken) -----

    /// `POST /v1/synchronousSign` → signature bytes.
    pub async fn sign(&self, request: &SignRequest) -> Result<Vec<u8>, TsbError> {
        let body = Envelope {
            name: "signRequest",
            inner: request,
        };
        let r: SignatureResponse = self
            .send_json(
                Method::POST,
                KeyGroup::KeyOperation,
                &["synchronousSign"],
                &body,
            )
            .await?;
        Ok(r.signature)
    }

    /// `POST /v1/sign` → request id (`signRequestId`); the signature is the request's `result`.
    pub async fn sign_async(&self, request: &SignRequest) -> Result<String, TsbError> {
        self.submit_async(
            KeyGroup::KeyOperation,
            &["sign"],
            "signRequest",
            request,
            "signRequestId",
        )
        .await
    }

    /// `POST /v1/verify` (`verifySignatureRequest`) → whether the signature is valid.
    pub async fn verify(&self, request: &VerifyRequest) -> Result<bool, TsbError> {
        let body = Envelope {
            name: "verifySignatureRequest",
            inner: request,
        };
        let r: SignatureValidResponse = self
            .send_json(Method::POST, KeyGroup::KeyOperation, &["verify"], &body)
            .await?;
        Ok(r.signature_valid)
    }

    /// `POST /v1/synchronousHmac` → MAC bytes (`keyedHash`).
    pub async fn hmac(&self, request: &HmacRequest) -> Result<Vec<u8>, TsbError> {
        let body = Envelope {
            name: "hmacRequest",
            inner: request,
        };
        let r: KeyedHashResponse = self
            .send_json(
                Method::POST,
                KeyGroup::KeyOperation,
                &["synchronousHmac"],
                &body,
            )
            .await?;
        Ok(r.keyed_hash)
    }

    /// `POST /v1/verify` (`verifyHmacRequest`) → whether the MAC is valid.
    pub async fn verify_hmac(&self, request: &VerifyHmacRequest) -> Result<bool, TsbError> {
        let body = Envelope {
            name: "verifyHmacRequest",
            inner: request,
        };
        let r: SignatureValidResponse = self
            .send_json(Method::POST, KeyGroup::KeyOperation, &["verify"], &body)
            .await?;
        Ok(r.signature_valid)
    }

    /// `POST /v1/encrypt`.
    pub async fn encrypt(&self, request: &EncryptRequest) -> Result<EncryptResponse, TsbError> {
        let body = Envelope {
            name: "encryptRequest",
            inner: request,
        };
        self.send_json(Method::POST, KeyGroup::KeyOperation, &["encrypt"], &body)
            .await
    }

    /// `POST /v1/synchronousDecrypt` → plaintext (zeroized on drop).
    pub async fn decrypt(&self, request: &DecryptRequest) -> Result<Zeroizing<Vec<u8>>, TsbError> {
        let body = Envelope {
            name: "decryptRequest",
            inner: request,
        };
        let r: PayloadResponse = self
            .send_json(
                Method::POST,
                KeyGroup::KeyOperation,
                &["synchronousDecrypt"],
                &body,
            )
            .await?;
        Ok(Zeroizing::new(r.payload))
    }

    /// `POST /v1/decrypt` → request id (`decryptRequestId`).
    pub async fn decrypt_async(&self, request: &DecryptRequest) -> Result<String, TsbError> {
        self.submit_async(
            KeyGroup::KeyOperation,
            &["decrypt"],
            "decryptRequest",
            request,
            "decryptRequestId",
        )
        .await
    }

    /// `POST /v1/wrap` → wrapped key bytes.
    pub async fn wrap(&self, request: &WrapKeyRequest) -> Result<Vec<u8>, TsbError> {
        let body = Envelope {
            name: "wrapKeyRequest",
            inner: request,
        };
        let r: WrappedKeyResponse = self
            .send_json(Method::POST, KeyGroup::KeyOperation, &["wrap"], &body)
            .await?;
        Ok(r.wrapped_key)
    }

    /// `POST /v1/synchronousUnwrap`. The answer's body is not pinned down by the reference; it
    /// is returned as JSON (`Null` when empty).
    pub async fn unwrap(&self, request: &UnwrapKeyRequest) -> Result<serde_json::Value, TsbError> {
        let body = Envelope {
            name: "unwrapKeyRequest",
            inner: request,
        };
        self.send_json(
            Method::POST,
            KeyGroup::KeyOperation,
            &["synchronousUnwrap"],
            &body,
        )
        .await
    }

    /// `POST /v1/unwrap` → request id (`unwrapRequestId`).
    pub async fn unwrap_async(&self, request: &UnwrapKeyRequest) -> Result<String, TsbError> {
        self.submit_async(
            KeyGroup::KeyOperation,
            &["unwrap"],
            "unwrapKeyRequest",
            request,
            "unwrapRequestId",
        )
        .await
    }

    /// `GET /v1/generateRandom/{len}` → `len` random bytes from the HSM.
    pub async fn random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, TsbError> {
        if len == 0 {
            return Err(TsbError::InvalidInput("random length must be > 0".into()));
        }
        let len_text = len.to_string();
        let r: RandomResponse = self
            .get_json(KeyGroup::KeyOperation, &["generateRandom", &len_text])
            .await?;
        Ok(Zeroizing::new(r.random))
    }

    // ----- certificates (keyOperationToken) -----

    /// `POST /v1/certificate/synchronous/request` → CSR (PEM).
    pub async fn create_csr(&self, request: &CsrRequest) -> Result<CsrResponse, TsbError> {
        self.send_json(
            Method::POST,
            KeyGroup::KeyOperation,
            &["certificate", "synchronous", "request"],
            request,
        )
        .await
    }

    /// `POST /v1/certificate/request` (`csrSignRequest`, SKA) → request id; result = CSR PEM.
    pub async fn create_csr_async(&self, request: &CsrRequest) -> Result<String, TsbError> {
        self.submit_async(
            KeyGroup::KeyOperation,
            &["certificate", "request"],
            "csrSignRequest",
            request,
            "signRequestId",
        )
        .await
    }

    /// `POST /v1/certificate/synchronous/selfsign` → certificate (PEM).
    pub async fn create_self_signed_certificate(
        &self,
        request: &SelfSignCertificateRequest,
    ) -> Result<CertificateResponse, TsbError> {
        self.send_json(
            Method::POST,
            KeyGroup::KeyOperation,
            &["certificate", "synchronous", "selfsign"],
            request,
        )
        .await
    }

    /// `POST /v1/certificate/selfsign` (`selfSignCertificateRequest`, SKA) → request id.
    pub async fn create_self_signed_certificate_async(
        &self,
        request: &SelfSignCertificateRequest,
    ) -> Result<String, TsbError> {
        self.submit_async(
            KeyGroup::KeyOperation,
            &["certificate", "selfsign"],
            "selfSignCertificateRequest",
            request,
            "signRequestId",
        )
        .await
    }

    /// `POST /v1/certificate/synchronous/sign`: issue a certificate from a CSR with a CA key.
    pub async fn sign_certificate(
        &self,
        request: &SignCertificateRequest,
    ) -> Result<CertificateResponse, TsbError> {
        self.send_json(
            Method::POST,
            KeyGroup::KeyOperation,
            &["certificate", "synchronous", "sign"],
            request,
        )
        .await
    }

    /// `POST /v1/certificate/sign` (`signCertificateRequest`, SKA) → request id; result = PEM.
    pub async fn sign_certificate_async(
        &self,
        request: &SignCertificateRequest,
    ) -> Result<String, TsbError> {
        self.submit_async(
            KeyGroup::KeyOperation,
            &["certificate", "sign"],
            "signCertificateRequest",
            request,
            "signRequestId",
        )
        .await
    }

    /// `POST /v1/certificate/import/plain`: attach a certificate (DER) to a key (overwrites).
    pub async fn import_certificate(
        &self,
        label: &str,
        certificate_der: &[u8],
    ) -> Result<CertificateResponse, TsbError> {
        let body = ImportCertificateRequest {
            label: label.to_owned(),
            certificate: certificate_der.to_vec(),
        };
        self.send_json(
            Method::POST,
            KeyGroup::KeyOperation,
            &["certificate", "import", "plain"],
            &body,
        )
        .await
    }

    /// `GET /v1/certificate/{label}`.
    pub async fn get_certificate(&self, label: &str) -> Result<CertificateResponse, TsbError> {
        self.get_json(KeyGroup::KeyOperation, &["certificate", label])
            .await
    }

    /// `DELETE /v1/certificate/{label}`.
    pub async fn delete_certificate(&self, label: &str) -> Result<(), TsbError> {
        self.send_unit::<()>(
            Method::DELETE,
            KeyGroup::KeyOperation,
            &["certificate", label],
            None,
        )
        .await
    }

    // ----- requests (keyOperationToken) -----

    /// `GET /v1/request/{id}`.
    pub async fn request_status(&self, id: &str) -> Result<RequestStatus, TsbError> {
        self.get_json(KeyGroup::KeyOperation, &["request", id])
            .await
    }

    /// `DELETE /v1/request/{id}` → request CANCELLED, its tasks deleted.
    pub async fn cancel_request(&self, id: &str) -> Result<(), TsbError> {
        self.send_unit::<()>(
            Method::DELETE,
            KeyGroup::KeyOperation,
            &["request", id],
            None,
        )
        .await
    }

    /// `POST /v1/filteredRequests`.
    pub async fn filtered_requests(
        &self,
        filter: &RequestFilter,
    ) -> Result<Vec<RequestStatus>, TsbError> {
        let list: RequestList = self
            .send_json(
                Method::POST,
                KeyGroup::KeyOperation,
                &["filteredRequests"],
                filter,
            )
            .await?;
        Ok(list.requests)
    }

    /// Polls `GET /v1/request/{id}` every `poll_interval` until the request reaches a final
    /// state (see [`crate::RequestState::is_final`]) and returns that status, or fails with
    /// [`TsbError::WaitTimeout`] once `timeout` has passed.
    pub async fn wait_for_request(
        &self,
        id: &str,
        poll_interval: Duration,
        timeout: Duration,
    ) -> Result<RequestStatus, TsbError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.request_status(id).await?;
            if status.status.is_final() {
                return Ok(status);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(TsbError::WaitTimeout {
                    id: id.to_owned(),
                    last_status: status.status.to_string(),
                });
            }
            tokio::time::sleep(poll_interval.min(deadline - now)).await;
        }
    }

    // ----- approver side (approverToken) -----

    /// `POST /v1/filtered{Kind}ApprovalTask` with a caller-built (already signed) body.
    pub async fn filtered_approval_tasks(
        &self,
        kind: TaskKind,
        request: &FilteredApprovalTaskRequest,
    ) -> Result<Vec<ApprovalTask>, TsbError> {
        let list: TaskList = self
            .send_json(
                Method::POST,
                KeyGroup::Approver,
                &[kind.path_segment()],
                request,
            )
            .await?;
        Ok(list.tasks)
    }

    /// `POST /v1/approval` with a caller-built body.
    pub async fn submit_approval(&self, request: &ApprovalRequest) -> Result<(), TsbError> {
        self.send_unit(
            Method::POST,
            KeyGroup::Approver,
            &["approval"],
            Some(request),
        )
        .await
    }

    /// `DELETE /v1/task` with a caller-built body (reject).
    pub async fn reject_task(&self, request: &RejectTaskRequest) -> Result<(), TsbError> {
        self.send_unit(Method::DELETE, KeyGroup::Approver, &["task"], Some(request))
            .await
    }

    /// Fetches the approval tasks visible to `approver`, signing the current time (dated back by
    /// [`APPROVER_TIMESTAMP_SKEW_MARGIN`]).
    pub async fn fetch_approval_tasks(
        &self,
        approver: &ApproverKey,
        filter: &ApprovalTaskFilter,
    ) -> Result<Vec<ApprovalTask>, TsbError> {
        self.fetch_approval_tasks_at(approver, filter, skewed_now())
            .await
    }

    /// Like [`TsbClient::fetch_approval_tasks`] with an explicit timestamp (tests, clock port).
    pub async fn fetch_approval_tasks_at(
        &self,
        approver: &ApproverKey,
        filter: &ApprovalTaskFilter,
        now: OffsetDateTime,
    ) -> Result<Vec<ApprovalTask>, TsbError> {
        let (timestamp, timestamp_signature) = approver.sign_timestamp(now)?;
        let (approver_public_key, approver_certificate) = approver.identity_fields();
        let body = FilteredApprovalTaskRequest {
            timestamp,
            timestamp_signature,
            approver_public_key,
            approver_certificate,
            timestamp_digest_algorithm: approver.digest_algorithm().to_owned(),
            id: filter.id.clone(),
            request_id: filter.request_id.clone(),
            detail_level: filter.detail_level.clone(),
            paging: filter.paging.clone(),
        };
        self.filtered_approval_tasks(filter.kind, &body).await
    }

    /// Approves `task`: signs its decoded `approvalToBeSigned` and posts `/v1/approval`.
    pub async fn approve(
        &self,
        approver: &ApproverKey,
        task: &ApprovalTask,
    ) -> Result<(), TsbError> {
        let signature = approver.sign_approval(&task.approval_to_be_signed)?;
        let (approver_public_key, approver_certificate) = approver.identity_fields();
        let body = ApprovalRequest {
            id: task.id.clone(),
            approval_to_be_signed: task.approval_to_be_signed.clone(),
            signature,
            approval_digest_algorithm: approver.digest_algorithm().to_owned(),
            approver_public_key,
            approver_certificate,
        };
        self.submit_approval(&body).await
    }

    /// Rejects task `task_id` (`DELETE /v1/task` with a signed timestamp).
    pub async fn reject(&self, approver: &ApproverKey, task_id: &str) -> Result<(), TsbError> {
        self.reject_at(approver, task_id, skewed_now()).await
    }

    /// Like [`TsbClient::reject`] with an explicit timestamp.
    pub async fn reject_at(
        &self,
        approver: &ApproverKey,
        task_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), TsbError> {
        let (timestamp, timestamp_signature) = approver.sign_timestamp(now)?;
        let (approver_public_key, approver_certificate) = approver.identity_fields();
        let body = RejectTaskRequest {
            id: task_id.to_owned(),
            timestamp,
            timestamp_signature,
            timestamp_digest_algorithm: approver.digest_algorithm().to_owned(),
            approver_public_key,
            approver_certificate,
        };
        self.reject_task(&body).await
    }

    // ----- approver management (approverKeyManagementToken; onboard: approverToken) -----

    /// `POST /v1/approverManagement/create` → one-time code for onboarding.
    pub async fn create_approver(
        &self,
        request: &CreateApproverRequest,
    ) -> Result<SecretString, TsbError> {
        let r: OneTimeCodeResponse = self
            .send_json(
                Method::POST,
                KeyGroup::ApproverKeyManagement,
                &["approverManagement", "create"],
                request,
            )
            .await?;
        Ok(r.one_time_code)
    }

    /// `POST /v1/approver/onboard` → encrypted approver key material (see
    /// [`OnboardApproverResponse::decrypt`]).
    pub async fn onboard_approver(
        &self,
        request: &OnboardApproverRequest,
    ) -> Result<OnboardApproverResponse, TsbError> {
        self.send_json(
            Method::POST,
            KeyGroup::Approver,
            &["approver", "onboard"],
            request,
        )
        .await
    }

    /// `POST /v1/approverManagement/renewOneTimeCode` → new one-time code.
    pub async fn renew_one_time_code(&self, approver_name: &str) -> Result<SecretString, TsbError> {
        let r: OneTimeCodeResponse = self
            .send_json(
                Method::POST,
                KeyGroup::ApproverKeyManagement,
                &["approverManagement", "renewOneTimeCode"],
                &ApproverNameRequest { approver_name },
            )
            .await?;
        Ok(r.one_time_code)
    }

    /// `POST /v1/approverManagement/restoreFromBackup` → one-time code.
    pub async fn restore_approver_from_backup(
        &self,
        approver_name: &str,
    ) -> Result<SecretString, TsbError> {
        let r: OneTimeCodeResponse = self
            .send_json(
                Method::POST,
                KeyGroup::ApproverKeyManagement,
                &["approverManagement", "restoreFromBackup"],
                &ApproverNameRequest { approver_name },
            )
            .await?;
        Ok(r.one_time_code)
    }

    /// `POST /v1/approverManagement/restoreFromBackup/forgotPassword` → request id
    /// (`unwrapRequestId`; SKA-governed, result = one-time code).
    pub async fn restore_approver_forgot_password(
        &self,
        approver_name: &str,
        new_backup_password: &SecretString,
    ) -> Result<String, TsbError> {
        let body = ForgotPasswordRequest {
            approver_name,
            new_backup_password: new_backup_password.clone(),
        };
        let value: serde_json::Value = self
            .send_json(
                Method::POST,
                KeyGroup::ApproverKeyManagement,
                &["approverManagement", "restoreFromBackup", "forgotPassword"],
                &body,
            )
            .await?;
        request_id_from(&value, "unwrapRequestId")
    }

    /// `GET /v1/approverManagement/onboarding/status`.
    pub async fn approver_onboarding_status(&self) -> Result<OnboardingStatus, TsbError> {
        self.get_json(
            KeyGroup::ApproverKeyManagement,
            &["approverManagement", "onboarding", "status"],
        )
        .await
    }

    /// `DELETE /v1/approverManagement/delete/{approverName}`.
    pub async fn delete_approver(&self, approver_name: &str) -> Result<(), TsbError> {
        self.send_unit::<()>(
            Method::DELETE,
            KeyGroup::ApproverKeyManagement,
            &["approverManagement", "delete", approver_name],
            None,
        )
        .await
    }

    // ----- data objects (keyManagementToken) -----

    /// `POST /v1/dataObject`: create-if-absent. Fails with code 615
    /// ([`TsbError::is_already_existing`]) when the label exists.
    pub async fn create_data_object(
        &self,
        label: &str,
        value: &[u8],
        flags: DataObjectFlags,
    ) -> Result<(), TsbError> {
        let body = CreateDataObjectRequest {
            label: label.to_owned(),
            value: value.to_vec(),
            flags,
        };
        self.send_unit(
            Method::POST,
            KeyGroup::KeyManagement,
            &["dataObject"],
            Some(&body),
        )
        .await
    }

    /// `GET /v1/dataObject/{label}`; missing → 404/653 ([`TsbError::is_not_found`]).
    pub async fn get_data_object(&self, label: &str) -> Result<DataObject, TsbError> {
        self.get_json(KeyGroup::KeyManagement, &["dataObject", label])
            .await
    }

    /// `GET /v1/dataObject` → all data object labels.
    pub async fn list_data_objects(&self) -> Result<Vec<String>, TsbError> {
        self.get_json(KeyGroup::KeyManagement, &["dataObject"])
            .await
    }

    /// `PUT /v1/dataObject/{label}`: replace the value of an existing object.
    pub async fn replace_data_object(&self, label: &str, value: &[u8]) -> Result<(), TsbError> {
        self.send_unit(
            Method::PUT,
            KeyGroup::KeyManagement,
            &["dataObject", label],
            Some(&ReplaceDataObjectRequest { value }),
        )
        .await
    }

    /// `DELETE /v1/dataObject/{label}`.
    pub async fn delete_data_object(&self, label: &str) -> Result<(), TsbError> {
        self.send_unit::<()>(
            Method::DELETE,
            KeyGroup::KeyManagement,
            &["dataObject", label],
            None,
        )
        .await
    }
}

fn skewed_now() -> OffsetDateTime {
    OffsetDateTime::now_utc() - APPROVER_TIMESTAMP_SKEW_MARGIN
}
