//! SKA policy and approval-request use cases: author a key's policy, follow the requests that
//! wait for approvals (per key and tenant-wide), withdraw one, and list the approvers the HSM
//! has onboarded. Changes are audited; reads go through `permit` like every key read.

use km_domain::{Action, TenantId};

use super::{App, AppError, Gate, RequestId};
use crate::OnboardedApprover;
use crate::identity::Caller;
use crate::keys::{KeyDetail, PolicyUpdate, RequestProgress};

impl App {
    /// Replaces the SKA policy of a key's version (`edit_key_policy`, audited). The answer's
    /// `pending` holds the request when the key's modify rule asks for approvals.
    pub async fn update_key_policy(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        label: &str,
        update: PolicyUpdate,
    ) -> Result<KeyDetail, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, Some(tenant), Action::EditKeyPolicy)
            .await?;
        let rules: Vec<String> = km_domain::SkaAction::ALL
            .iter()
            .filter(|action| update.policy.rule(**action).is_some())
            .map(ToString::to_string)
            .collect();
        let mut draft = Self::draft(&grant, rid, "update_key_policy", Some(label))
            .with_detail("rules", rules.join(","));
        if let Some(version) = update.version {
            draft = draft.with_detail("version", version.to_string());
        }
        if let Some(reason) = &update.reason {
            let reason: String = reason.chars().take(crate::keys::MAX_REASON_LEN).collect();
            draft = draft.with_detail("reason", reason);
        }
        let actor = caller.principal().subject.to_string();
        self.audited(draft, async {
            let hsm = self.tenant_hsm(caller, tenant).await?;
            Ok(self
                .inner
                .keys
                .update_policy(&*hsm, tenant, label, update, &actor)
                .await?)
        })
        .await
    }

    /// The approval requests of one key with their progress (`list_approvals`).
    pub async fn key_requests(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        label: &str,
    ) -> Result<Vec<RequestProgress>, AppError> {
        self.permit(caller, rid, Gate::Full, Some(tenant), Action::ListApprovals)
            .await?;
        let hsm = self.tenant_hsm(caller, tenant).await?;
        Ok(self.inner.keys.requests(&*hsm, tenant, label).await?)
    }

    /// Every request waiting on the tenant's keys (`list_approvals`).
    pub async fn pending_key_requests(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
    ) -> Result<Vec<RequestProgress>, AppError> {
        self.permit(caller, rid, Gate::Full, Some(tenant), Action::ListApprovals)
            .await?;
        let hsm = self.tenant_hsm(caller, tenant).await?;
        Ok(self.inner.keys.pending_requests(&*hsm, tenant).await?)
    }

    /// Withdraws a request of a key (`cancel_approval_request`, audited).
    pub async fn cancel_key_request(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        label: &str,
        request_id: &str,
    ) -> Result<KeyDetail, AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                Some(tenant),
                Action::CancelApprovalRequest,
            )
            .await?;
        let draft = Self::draft(&grant, rid, "cancel_key_request", Some(label)).with_detail(
            "request_id",
            request_id.chars().take(100).collect::<String>(),
        );
        let actor = caller.principal().subject.to_string();
        self.audited(draft, async {
            let hsm = self.tenant_hsm(caller, tenant).await?;
            Ok(self
                .inner
                .keys
                .cancel_request(&*hsm, tenant, label, request_id, &actor)
                .await?)
        })
        .await
    }

    /// Approvers onboarded through the partition's approver management (`list_approvers`):
    /// names a policy may use. Empty when the partition's credentials do not reach approver
    /// management — a policy can still name approvers by public key or certificate.
    pub async fn onboarded_approvers(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
    ) -> Result<Vec<OnboardedApprover>, AppError> {
        self.permit(caller, rid, Gate::Full, Some(tenant), Action::ListApprovers)
            .await?;
        let hsm = self.tenant_hsm(caller, tenant).await?;
        match hsm.onboarded_approvers().await {
            Ok(approvers) => Ok(approvers),
            Err(crate::HsmError::Unauthorized(_) | crate::HsmError::Refused(_)) => Ok(Vec::new()),
            Err(error) => Err(AppError::PartitionConnection {
                message: crate::partitions::explain_connection_failure(&error),
            }),
        }
    }
}
