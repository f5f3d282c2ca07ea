//! The SKA (Smart Key Attributes) policy model: who must approve which action on a key.
//!
//! `policy: null` (a plain key that can never become SKA) and an *empty* SKA policy (all rules
//! `null`, usable without approvals now but modifiable later) are different things on the TSB;
//! this SDK models the former as `Option<Policy>::None` (always serialised as explicit `null`)
//! and the latter as [`Policy::empty_ska`].

use serde::{Deserialize, Serialize};

/// An SKA policy: one rule per governed action plus the key's blocked state.
///
/// A `None` rule is serialised as `null`, which the TSB treats as "always fulfilled".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Governs sign, decrypt, unwrap and certificate issuance.
    #[serde(default)]
    pub rule_use: Option<Rule>,
    /// Governs blocking the key.
    #[serde(default)]
    pub rule_block: Option<Rule>,
    /// Governs unblocking the key (must exist when creating a blocked key).
    #[serde(default)]
    pub rule_unblock: Option<Rule>,
    /// Governs replacing the policy.
    #[serde(default)]
    pub rule_modify: Option<Rule>,
    /// Whether the key is blocked; omitted from the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_status: Option<KeyStatus>,
}

impl Policy {
    /// The empty SKA policy: all rules `null`, key not blocked. Makes an SKA key that needs no
    /// approvals today but whose policy can be tightened later (unlike `policy: null`).
    pub fn empty_ska() -> Self {
        Policy {
            rule_use: None,
            rule_block: None,
            rule_unblock: None,
            rule_modify: None,
            key_status: Some(KeyStatus { blocked: false }),
        }
    }

    /// The TSB clients' "simplified policy": one token `main` with one group `main` holding
    /// all `approvals` with the given `quorum`, used for all four rules.
    pub fn simplified(approvals: Vec<Approval>, quorum: u32, timelock: u64, timeout: u64) -> Self {
        let rule = Rule {
            tokens: vec![Token {
                name: "main".to_owned(),
                timelock,
                timeout,
                groups: Some(vec![Group {
                    name: "main".to_owned(),
                    quorum,
                    approvals,
                }]),
            }],
        };
        Policy {
            rule_use: Some(rule.clone()),
            rule_block: Some(rule.clone()),
            rule_unblock: Some(rule.clone()),
            rule_modify: Some(rule),
            key_status: Some(KeyStatus { blocked: false }),
        }
    }

    /// Whether the policy marks the key as blocked.
    pub fn is_blocked(&self) -> bool {
        self.key_status.as_ref().is_some_and(|s| s.blocked)
    }
}

/// A rule: alternatives (tokens) that are OR-ed; fulfilling any one token fulfils the rule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// OR-ed alternatives.
    #[serde(default, deserialize_with = "crate::serde_helpers::null_default")]
    pub tokens: Vec<Token>,
}

/// A token: groups that are AND-ed, plus timing constraints.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    /// Token name (shown to approvers).
    pub name: String,
    /// Minimum seconds between request and accepted approvals (multiple of 60; 0 = none).
    #[serde(default, deserialize_with = "crate::serde_helpers::null_default")]
    pub timelock: u64,
    /// Maximum seconds for approvals to arrive (multiple of 60; 0 = none).
    #[serde(default, deserialize_with = "crate::serde_helpers::null_default")]
    pub timeout: u64,
    /// AND-ed groups; `null` makes the token always fulfillable.
    #[serde(default)]
    pub groups: Option<Vec<Group>>,
}

/// A group: `quorum` of its `approvals` must approve (N-of-M).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Group name.
    pub name: String,
    /// How many approvals of this group are needed.
    pub quorum: u32,
    /// The approvers of this group.
    #[serde(default, deserialize_with = "crate::serde_helpers::null_default")]
    pub approvals: Vec<Approval>,
}

/// One approver in a group, identified by public key, certificate or onboarded-approver name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// How `value`/`name` identify the approver.
    #[serde(rename = "type")]
    pub kind: ApprovalType,
    /// Approver name (required for certificate and onboarded approvers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Bare base64 of the SPKI DER public key or DER certificate (no newlines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Approval {
    /// An approver identified by its public key (SPKI DER).
    pub fn public_key(name: Option<String>, spki_der: &[u8]) -> Self {
        Approval {
            kind: ApprovalType::PublicKey,
            name,
            value: Some(crate::serde_helpers::encode(spki_der)),
        }
    }

    /// An approver identified by a certificate (DER).
    pub fn certificate(name: impl Into<String>, cert_der: &[u8]) -> Self {
        Approval {
            kind: ApprovalType::Certificate,
            name: Some(name.into()),
            value: Some(crate::serde_helpers::encode(cert_der)),
        }
    }

    /// An approver onboarded through Approver Management, referenced by name.
    pub fn onboarded(name: impl Into<String>) -> Self {
        Approval {
            kind: ApprovalType::OnboardedApproverCertificate,
            name: Some(name.into()),
            value: None,
        }
    }
}

/// The `type` of an [`Approval`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApprovalType {
    /// `public_key`
    #[serde(rename = "public_key")]
    PublicKey,
    /// `certificate`
    #[serde(rename = "certificate")]
    Certificate,
    /// `onboarded_approver_certificate`
    #[serde(rename = "onboarded_approver_certificate")]
    OnboardedApproverCertificate,
}

/// `keyStatus` inside a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyStatus {
    /// Whether the key is blocked (unusable until unblocked).
    #[serde(default, deserialize_with = "crate::serde_helpers::null_default")]
    pub blocked: bool,
}
