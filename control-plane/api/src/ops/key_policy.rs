//! SKA policies and approval requests of a tenant's keys: read and replace a key's policy
//! (`/tenants/{tenant}/keys/{label}/policy`), follow and withdraw its requests
//! (`.../requests`), every waiting request of the tenant (`/tenants/{tenant}/requests`), and the
//! approvers the HSM has onboarded (`/tenants/{tenant}/approvers`).

use km_core::keys::{ApproverDecision, PendingChange, PendingRequest, RequestProgress};
use km_core::{App, HsmRequestStatus, KeyDetail, OnboardedApprover, PolicyUpdate};
use km_domain::{ApproverKind, SkaAction, SkaPolicy, SkaRule};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::keys::{ApproverKindName, PolicyRequest};
use super::{ApiTags, NoContent, fail, tenant};
use crate::context::{authenticate, request_id};
use crate::models::Text;
use crate::problem::ApiError;

/// The policy and request operations.
pub(crate) struct KeyPolicyApi;

// ----- bodies -----

/// A new SKA policy for a key. The key's blocked state is not part of it (that is the
/// lifecycle's).
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct PolicyUpdateRequest {
    /// The rules; absent rules need no approval.
    pub policy: PolicyRequest,
    /// Why (kept in the key's history and the audit log).
    #[oai(validator(max_length = 256))]
    pub reason: Option<Text>,
    /// The version to change (default: the current one).
    pub version: Option<u32>,
}

/// One approver of a group.
#[derive(Debug, Clone, Object)]
pub struct ApprovalBody {
    /// How the approver is identified.
    #[oai(rename = "type")]
    pub kind: ApproverKindName,
    /// Display name.
    pub name: Option<String>,
    /// Bare base64 of the SPKI DER or DER certificate.
    pub value: Option<String>,
}

/// N-of-M approvers.
#[derive(Debug, Clone, Object)]
pub struct GroupBody {
    /// Name.
    pub name: String,
    /// How many must approve.
    pub quorum: u32,
    /// The approvers.
    pub approvals: Vec<ApprovalBody>,
}

/// Groups that must all agree, within a time window.
#[derive(Debug, Clone, Object)]
pub struct TokenBody {
    /// Name.
    pub name: String,
    /// Seconds after approval before execution.
    pub timelock: u64,
    /// Seconds the approvals may take (0 = no limit).
    pub timeout: u64,
    /// Groups (empty = no approval needed).
    pub groups: Vec<GroupBody>,
}

/// Alternatives of which any one token suffices; none = the action is frozen for good.
#[derive(Debug, Clone, Object)]
pub struct RuleBody {
    /// The tokens.
    pub tokens: Vec<TokenBody>,
    /// Whether no token can ever be fulfilled.
    pub frozen: bool,
}

/// Which rule governs a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RuleName {
    /// `ruleUse`.
    Use,
    /// `ruleBlock`.
    Block,
    /// `ruleUnblock`.
    Unblock,
    /// `ruleModify`.
    Modify,
}

impl From<SkaAction> for RuleName {
    fn from(action: SkaAction) -> Self {
        match action {
            SkaAction::Use => RuleName::Use,
            SkaAction::Block => RuleName::Block,
            SkaAction::Unblock => RuleName::Unblock,
            SkaAction::Modify => RuleName::Modify,
        }
    }
}

/// Where a request stands in the HSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RequestStatusName {
    /// Waiting for approvals.
    Pending,
    /// Approved; waiting for its timelock or execution.
    Approved,
    /// Rejected.
    Rejected,
    /// Executed.
    Executed,
    /// Timed out.
    Expired,
    /// Withdrawn.
    Cancelled,
    /// Execution failed.
    Failed,
    /// A state this version does not know.
    Unknown,
}

impl From<HsmRequestStatus> for RequestStatusName {
    fn from(status: HsmRequestStatus) -> Self {
        match status {
            HsmRequestStatus::Pending => Self::Pending,
            HsmRequestStatus::Approved => Self::Approved,
            HsmRequestStatus::Rejected => Self::Rejected,
            HsmRequestStatus::Executed => Self::Executed,
            HsmRequestStatus::Expired => Self::Expired,
            HsmRequestStatus::Cancelled => Self::Cancelled,
            HsmRequestStatus::Failed => Self::Failed,
            HsmRequestStatus::Unknown => Self::Unknown,
        }
    }
}

/// An approver's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum DecisionName {
    /// Approved.
    Approved,
    /// Not decided yet.
    Waiting,
    /// Rejected.
    Rejected,
}

impl From<ApproverDecision> for DecisionName {
    fn from(decision: ApproverDecision) -> Self {
        match decision {
            ApproverDecision::Approved => Self::Approved,
            ApproverDecision::Waiting => Self::Waiting,
            ApproverDecision::Rejected => Self::Rejected,
        }
    }
}

/// One approver's progress on a request.
#[derive(Debug, Clone, Object)]
pub struct ApproverProgressBody {
    /// Name from the key's policy, when it names this public key.
    pub name: Option<String>,
    /// SHA-256 of the approver's public key (hex, first 16 bytes).
    pub fingerprint: String,
    /// Decision so far.
    pub decision: DecisionName,
}

/// A change waiting for approvals in the HSM.
#[derive(Debug, Clone, Object)]
pub struct PendingRequestBody {
    /// The HSM's request id.
    pub request_id: String,
    /// The version it concerns.
    pub version: u32,
    /// What executes when approved: a lifecycle event (`suspend`, `resume`, ...), `policy`,
    /// or `freeze_unblock`.
    pub change: String,
    /// The rule whose approvers are asked.
    pub governed_by: RuleName,
    /// Who asked.
    pub requested_by: String,
    /// When (unix seconds).
    pub requested_at: u64,
    /// Why.
    pub reason: Option<String>,
    /// The policy asked for (policy changes).
    pub policy: Option<PolicyBody>,
}

impl From<&PendingRequest> for PendingRequestBody {
    fn from(p: &PendingRequest) -> Self {
        Self {
            request_id: p.request_id.clone(),
            version: p.version,
            change: p.change.name().to_owned(),
            governed_by: p.governed_by.into(),
            requested_by: p.requested_by.clone(),
            requested_at: p.requested_at,
            reason: p.reason.clone(),
            policy: match &p.change {
                PendingChange::Policy { policy } => Some(policy.into()),
                _ => None,
            },
        }
    }
}

/// A request with its live progress.
#[derive(Debug, Clone, Object)]
pub struct RequestProgressBody {
    /// The key's alias.
    pub key: String,
    /// HSM label of the version.
    pub label: String,
    /// The request.
    #[oai(flatten)]
    pub request: PendingRequestBody,
    /// Where it stands (absent when the HSM could not be asked just now).
    pub status: Option<RequestStatusName>,
    /// Approvals collected.
    pub approvals_collected: u32,
    /// Approvals the cheapest token of the governing rule needs.
    pub approvals_needed: Option<u32>,
    /// The approvers the HSM lists.
    pub approvers: Vec<ApproverProgressBody>,
}

impl From<RequestProgress> for RequestProgressBody {
    fn from(p: RequestProgress) -> Self {
        Self {
            key: p.key,
            label: p.label,
            request: (&p.request).into(),
            status: p.status.map(Into::into),
            approvals_collected: p.approvals_collected,
            approvals_needed: p.approvals_needed,
            approvers: p
                .approvers
                .into_iter()
                .map(|a| ApproverProgressBody {
                    name: a.name,
                    fingerprint: a.fingerprint,
                    decision: a.decision.into(),
                })
                .collect(),
        }
    }
}

/// An SKA policy (absent rules need no approval).
#[derive(Debug, Clone, Object)]
pub struct PolicyBody {
    /// Governs sign, decrypt, unwrap.
    pub rule_use: Option<RuleBody>,
    /// Governs blocking.
    pub rule_block: Option<RuleBody>,
    /// Governs unblocking.
    pub rule_unblock: Option<RuleBody>,
    /// Governs replacing the policy.
    pub rule_modify: Option<RuleBody>,
}

impl From<&SkaPolicy> for PolicyBody {
    fn from(p: &SkaPolicy) -> Self {
        let rule = |action| p.rule(action).map(rule_body);
        Self {
            rule_use: rule(SkaAction::Use),
            rule_block: rule(SkaAction::Block),
            rule_unblock: rule(SkaAction::Unblock),
            rule_modify: rule(SkaAction::Modify),
        }
    }
}

fn rule_body(rule: &SkaRule) -> RuleBody {
    RuleBody {
        frozen: rule.is_frozen(),
        tokens: rule
            .tokens
            .iter()
            .map(|t| TokenBody {
                name: t.name.clone(),
                timelock: t.timelock,
                timeout: t.timeout,
                groups: t
                    .groups
                    .iter()
                    .map(|g| GroupBody {
                        name: g.name.clone(),
                        quorum: g.quorum,
                        approvals: g
                            .approvals
                            .iter()
                            .map(|a| ApprovalBody {
                                kind: match a.kind {
                                    ApproverKind::PublicKey => ApproverKindName::PublicKey,
                                    ApproverKind::Certificate => ApproverKindName::Certificate,
                                    ApproverKind::Onboarded => {
                                        ApproverKindName::OnboardedApproverCertificate
                                    }
                                },
                                name: a.name.clone(),
                                value: a.value.clone(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A key's SKA policy with the changes waiting for approvals.
#[derive(Debug, Clone, Object)]
pub struct KeyPolicyBody {
    /// Alias (managed) or HSM label (unmanaged).
    pub key: String,
    /// HSM label of the version shown (absent once destroyed).
    pub label: Option<String>,
    /// Whether the key has an SKA policy at all (plain keys never can).
    pub ska: bool,
    /// The HSM's blocked flag.
    pub blocked: Option<bool>,
    /// The policy in force (absent for plain or destroyed keys).
    pub policy: Option<PolicyBody>,
    /// Changes of the key waiting for approvals.
    pub pending: Vec<PendingRequestBody>,
}

impl From<KeyDetail> for KeyPolicyBody {
    fn from(d: KeyDetail) -> Self {
        Self {
            key: d.summary.label.clone(),
            label: d.summary.current_label.clone(),
            ska: d.policy.is_some(),
            blocked: d.summary.blocked,
            policy: d.policy.as_ref().map(Into::into),
            pending: d.pending.iter().map(Into::into).collect(),
        }
    }
}

/// An approver onboarded through the HSM's approver management.
#[derive(Debug, Clone, Object)]
pub struct OnboardedApproverBody {
    /// Name (use it with type `onboarded_approver_certificate`).
    pub name: String,
    /// Base64 DER certificate, when known.
    pub certificate: Option<String>,
}

impl From<OnboardedApprover> for OnboardedApproverBody {
    fn from(a: OnboardedApprover) -> Self {
        Self {
            name: a.name,
            certificate: a.certificate_base64,
        }
    }
}

// ----- responses -----

#[derive(Debug, ApiResponse)]
enum PolicyResponse {
    /// The policy in force.
    #[oai(status = 200)]
    Ok(Json<KeyPolicyBody>),
    /// The key's modify rule asks for approvals: the change waits as a request (see
    /// `pending`); nothing changed yet.
    #[oai(status = 202)]
    Accepted(Json<KeyPolicyBody>),
}

#[derive(Debug, ApiResponse)]
enum RequestsResponse {
    /// The requests, oldest first.
    #[oai(status = 200)]
    Ok(Json<Vec<RequestProgressBody>>),
}

#[derive(Debug, ApiResponse)]
enum ApproversResponse {
    /// The onboarded approvers (empty when the partition's credentials do not reach approver
    /// management).
    #[oai(status = 200)]
    Ok(Json<Vec<OnboardedApproverBody>>),
}

#[OpenApi(tag = "ApiTags::Keys")]
impl KeyPolicyApi {
    /// A key's SKA policy as the HSM holds it, with the changes waiting for approvals.
    #[oai(
        path = "/tenants/:tenant/keys/:label/policy",
        method = "get",
        operation_id = "get_key_policy"
    )]
    async fn get_policy(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// Key label.
        label: Path<String>,
    ) -> Result<PolicyResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let detail = app
            .get_key(&caller, &rid, &tenant, &label.0)
            .await
            .map_err(fail(&rid))?;
        Ok(PolicyResponse::Ok(Json(detail.into())))
    }

    /// Replaces a key's SKA policy (validated first: quorums, names, timelock/timeout multiples
    /// of 60, approver values). 200 when in force; 202 when the key's modify rule asks for
    /// approvals (the request is in `pending`). Plain keys (409 `plain_key`), compromised and
    /// destroyed keys are refused.
    #[oai(
        path = "/tenants/:tenant/keys/:label/policy",
        method = "put",
        operation_id = "update_key_policy"
    )]
    async fn update_policy(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// Key label.
        label: Path<String>,
        body: Json<PolicyUpdateRequest>,
    ) -> Result<PolicyResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let body = body.0;
        let update = PolicyUpdate {
            policy: body.policy.into(),
            reason: body.reason.map(|r| r.0),
            version: body.version,
        };
        let before = update.version;
        let detail = app
            .update_key_policy(&caller, &rid, &tenant, &label.0, update)
            .await
            .map_err(fail(&rid))?;
        let version = before.or(detail.summary.current_version);
        let waiting = detail.pending.iter().any(|p| {
            Some(p.version) == version && matches!(p.change, PendingChange::Policy { .. })
        });
        let body = Json(KeyPolicyBody::from(detail));
        Ok(if waiting {
            PolicyResponse::Accepted(body)
        } else {
            PolicyResponse::Ok(body)
        })
    }

    /// The key's requests waiting for approvals, with who approved, who is still asked and who
    /// rejected (settling the ones the HSM has decided).
    #[oai(
        path = "/tenants/:tenant/keys/:label/requests",
        method = "get",
        operation_id = "list_key_requests"
    )]
    async fn key_requests(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// Key label.
        label: Path<String>,
    ) -> Result<RequestsResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let requests = app
            .key_requests(&caller, &rid, &tenant, &label.0)
            .await
            .map_err(fail(&rid))?;
        Ok(RequestsResponse::Ok(Json(
            requests.into_iter().map(Into::into).collect(),
        )))
    }

    /// Withdraws a waiting request of the key: the HSM drops it and nothing changes.
    #[oai(
        path = "/tenants/:tenant/keys/:label/requests/:request_id",
        method = "delete",
        operation_id = "cancel_key_request"
    )]
    async fn cancel_request(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// Key label.
        label: Path<String>,
        /// The HSM's request id.
        request_id: Path<String>,
    ) -> Result<NoContent, ApiError> {
        let rid = self::request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        app.cancel_key_request(&caller, &rid, &tenant, &label.0, &request_id.0)
            .await
            .map_err(fail(&rid))?;
        Ok(NoContent::Done)
    }

    /// Every request waiting for approvals on the tenant's keys, oldest first.
    #[oai(
        path = "/tenants/:tenant/requests",
        method = "get",
        operation_id = "list_pending_requests"
    )]
    async fn pending_requests(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
    ) -> Result<RequestsResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let requests = app
            .pending_key_requests(&caller, &rid, &tenant)
            .await
            .map_err(fail(&rid))?;
        Ok(RequestsResponse::Ok(Json(
            requests.into_iter().map(Into::into).collect(),
        )))
    }

    /// Approvers onboarded through the partition's approver management, by name.
    #[oai(
        path = "/tenants/:tenant/approvers",
        method = "get",
        operation_id = "list_onboarded_approvers"
    )]
    async fn approvers(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
    ) -> Result<ApproversResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let approvers = app
            .onboarded_approvers(&caller, &rid, &tenant)
            .await
            .map_err(fail(&rid))?;
        Ok(ApproversResponse::Ok(Json(
            approvers.into_iter().map(Into::into).collect(),
        )))
    }
}
