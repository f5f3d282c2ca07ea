//! The values the [`Hsm`](super::Hsm) port's key methods speak: what to create, what the HSM
//! reports about a key, and how far a policy change or an approval request has got. Domain and
//! core types only, so use cases never see a TSB wire type.

use km_domain::{KeyAttributes, KeySpec, KeySpecError, SkaPolicy};

use crate::clock::Timestamp;

/// A key to generate inside the HSM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHsmKey {
    /// The label, unique in the partition (the TSB allows 1–256 characters without `/` or
    /// control characters).
    pub label: String,
    /// Algorithm with size or curve.
    pub spec: KeySpec,
    /// Usage and protection flags, sent in full (no HSM defaults apply).
    pub attributes: KeyAttributes,
    /// The SKA policy. Every key keymanager creates is an SKA key, so it can be blocked and given
    /// approval rules later; the empty policy (the default) needs no approvals. This also means
    /// keymanager never creates extractable keys (the TSB allows those only without a policy).
    pub policy: SkaPolicy,
}

impl NewHsmKey {
    /// A key with the empty SKA policy (not blocked, no approvals).
    pub fn new(label: impl Into<String>, spec: KeySpec, attributes: KeyAttributes) -> Self {
        Self {
            label: label.into(),
            spec,
            attributes,
            policy: SkaPolicy::empty(),
        }
    }
}

/// What the HSM reports about one key. Only references and public parts: no key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmKeyInfo {
    /// The label.
    pub label: String,
    /// The algorithm exactly as the HSM names it (`RSA`, `EC`, `ML-DSA-65`, `HSS-LMS`, ...);
    /// [`HsmKeyInfo::spec`] reads it as a domain spec.
    pub algorithm: String,
    /// Key size in bits as reported (the TSB also reports one for EC keys and TDEA).
    pub key_size: Option<u32>,
    /// Curve OID of EC/ED keys.
    pub curve_oid: Option<String>,
    /// Usage and protection flags as reported. Flags the HSM does not report read as `false`
    /// (a real TSB may leave out `encrypt`, `verify` and `wrap`).
    pub attributes: KeyAttributes,
    /// Whether the key has always been sensitive, if reported: `Some(false)` means its material
    /// was once readable.
    pub always_sensitive: Option<bool>,
    /// Whether the key has never been extractable, if reported: `Some(false)` means its material
    /// may have left the HSM.
    pub never_extractable: Option<bool>,
    /// Whether the key is blocked (refuses every use of its private/secret half).
    pub blocked: bool,
    /// The SKA policy; `None` for a plain key (created with `policy: null`, which can never be
    /// blocked or given approval rules).
    pub policy: Option<SkaPolicy>,
    /// The public key as DER `SubjectPublicKeyInfo`; `None` for symmetric keys.
    pub public_key_spki_der: Option<Vec<u8>>,
    /// When the HSM created the key.
    pub created_at: Option<Timestamp>,
    /// How often the key was used, if the HSM counts.
    pub usage_count: Option<u64>,
}

impl HsmKeyInfo {
    /// The reported algorithm, size and curve as a domain spec (see
    /// [`KeySpec::from_reported`]); an error for algorithms keymanager does not know.
    pub fn spec(&self) -> Result<KeySpec, KeySpecError> {
        KeySpec::from_reported(&self.algorithm, self.key_size, self.curve_oid.as_deref())
    }

    /// Whether the key is governed by an SKA policy (possibly the empty one).
    pub fn is_ska(&self) -> bool {
        self.policy.is_some()
    }
}

/// The outcome of an SKA-governed change ([`Hsm::block_key`](super::Hsm::block_key),
/// [`Hsm::unblock_key`](super::Hsm::unblock_key), [`Hsm::modify_policy`](super::Hsm::modify_policy)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HsmChange {
    /// The change is in force.
    Applied,
    /// The key's rule for this action asks for approvals: a request waits for them (follow it
    /// with [`Hsm::request_status`](super::Hsm::request_status), withdraw it with
    /// [`Hsm::cancel_request`](super::Hsm::cancel_request)); nothing changes until it executes.
    Pending {
        /// The HSM's request id.
        request_id: String,
    },
}

/// Where an approval request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HsmRequestStatus {
    /// Waiting for approvals.
    Pending,
    /// Enough approvals; waiting for its timelock or for execution.
    Approved,
    /// Approvers rejected it (no token can reach its quorum any more).
    Rejected,
    /// Done.
    Executed,
    /// The approvals did not arrive within the timeout.
    Expired,
    /// Cancelled by a client, or because its key was deleted.
    Cancelled,
    /// Execution failed in the HSM ([`HsmRequest::failure`] says why).
    Failed,
    /// A state this adapter does not know (a newer HSM); treat as not final.
    Unknown,
}

impl HsmRequestStatus {
    /// Whether the request can no longer change (everything but pending, approved and unknown).
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            HsmRequestStatus::Pending | HsmRequestStatus::Approved | HsmRequestStatus::Unknown
        )
    }
}

/// An approval request (SKA) and its progress. Holds no operation result, so that nothing secret
/// (a decrypted payload) travels through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmRequest {
    /// The HSM's request id.
    pub id: String,
    /// Where it stands.
    pub status: HsmRequestStatus,
    /// How many approvals have arrived.
    pub approvals_collected: u32,
    /// How many approvals are needed in all, if the HSM says (the TSB does not: it reports who
    /// approved, not the quorum; derive it from the key's policy).
    pub approvals_needed: Option<u32>,
    /// Approvers (as the HSM identifies them: base64 SPKI) who approved.
    pub approved_by: Vec<String>,
    /// Approvers of the governing rule who have neither approved nor rejected yet.
    pub not_yet_approved_by: Vec<String>,
    /// Approvers who rejected.
    pub rejected_by: Vec<String>,
    /// When it executed.
    pub executed_at: Option<Timestamp>,
    /// The HSM's reason, for a failed request.
    pub failure: Option<String>,
}

/// An approver onboarded through the HSM's approver management: policies may name it
/// (`onboarded_approver_certificate`) instead of carrying its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnboardedApprover {
    /// The approver's name (an e-mail address by convention).
    pub name: String,
    /// Its certificate (base64 DER, as SKA policies carry certificates), when the HSM reports
    /// one.
    pub certificate_base64: Option<String>,
}
