//! Translation between the port's key types (km-domain / km-core) and the TSB wire types of the
//! SDK, field by field so that the compiler notices when either side changes.

use km_core::{HsmError, HsmKeyInfo, HsmRequest, HsmRequestStatus, NewHsmKey};
use km_domain::{
    ApproverKind, KeyAttributes, SkaApproval, SkaGroup, SkaKeyStatus, SkaPolicy, SkaRule, SkaToken,
    validate_attributes,
};
use km_tsb::{
    Approval, ApprovalType, CreateKeyRequest, Group, KeyInfo, KeyStatus, Policy, RequestState,
    RequestStatus, Rule, Token,
};

/// The create request for `key`, after checking its attributes and policy with the domain rules
/// (so that a mistake is explained in our words before a round trip).
pub(crate) fn create_request(key: &NewHsmKey) -> Result<CreateKeyRequest, HsmError> {
    let refused = |reason: String| {
        HsmError::Refused(format!(
            "cannot create key {} ({}): {reason}",
            key.label, key.spec
        ))
    };
    // Every key we create carries an SKA policy (possibly the empty one).
    validate_attributes(&key.spec, &key.attributes, true).map_err(|e| refused(e.to_string()))?;
    key.policy
        .validate_for_create()
        .map_err(|e| refused(e.to_string()))?;
    let mut request = CreateKeyRequest::new(
        key.label.clone(),
        key.spec.algorithm().as_tsb_str(),
        tsb_attributes(&key.attributes),
    );
    request.key_size = key.spec.key_size();
    request.curve_oid = key.spec.curve_oid().map(str::to_owned);
    request.policy = Some(tsb_policy(&key.policy, true));
    Ok(request)
}

/// Every flag sent explicitly, so that no TSB default (PKCS#11 style: sensitive, modifiable and
/// destroyable on) decides for the caller.
fn tsb_attributes(a: &KeyAttributes) -> km_tsb::KeyAttributes {
    km_tsb::KeyAttributes {
        encrypt: Some(a.encrypt),
        decrypt: Some(a.decrypt),
        verify: Some(a.verify),
        sign: Some(a.sign),
        wrap: Some(a.wrap),
        unwrap: Some(a.unwrap),
        derive: Some(a.derive),
        bip32: Some(a.bip32),
        slip10: Some(a.slip10),
        extractable: Some(a.extractable),
        modifiable: Some(a.modifiable),
        destroyable: Some(a.destroyable),
        sensitive: Some(a.sensitive),
        copyable: Some(a.copyable),
        always_sensitive: None,
        never_extractable: None,
        eka_sign: None,
    }
}

/// Flags the TSB does not report read as `false`.
fn domain_attributes(a: &km_tsb::KeyAttributes) -> KeyAttributes {
    let flag = |v: Option<bool>| v.unwrap_or(false);
    KeyAttributes {
        encrypt: flag(a.encrypt),
        decrypt: flag(a.decrypt),
        verify: flag(a.verify),
        sign: flag(a.sign),
        wrap: flag(a.wrap),
        unwrap: flag(a.unwrap),
        derive: flag(a.derive),
        bip32: flag(a.bip32),
        slip10: flag(a.slip10),
        extractable: flag(a.extractable),
        modifiable: flag(a.modifiable),
        destroyable: flag(a.destroyable),
        sensitive: flag(a.sensitive),
        copyable: flag(a.copyable),
    }
}

/// The wire policy. `with_status` sends `keyStatus` (creation); a modification leaves it out, so
/// that replacing the rules can never unblock a key past its unblock rule.
pub(crate) fn tsb_policy(policy: &SkaPolicy, with_status: bool) -> Policy {
    Policy {
        rule_use: policy.rule_use.as_ref().map(tsb_rule),
        rule_block: policy.rule_block.as_ref().map(tsb_rule),
        rule_unblock: policy.rule_unblock.as_ref().map(tsb_rule),
        rule_modify: policy.rule_modify.as_ref().map(tsb_rule),
        key_status: with_status.then_some(KeyStatus {
            blocked: policy.key_status.blocked,
        }),
    }
}

fn tsb_rule(rule: &SkaRule) -> Rule {
    Rule {
        tokens: rule
            .tokens
            .iter()
            .map(|token| Token {
                name: token.name.clone(),
                timelock: token.timelock,
                timeout: token.timeout,
                // No groups is sent as `null`, the TSB's documented "no approval needed".
                groups: (!token.groups.is_empty())
                    .then(|| token.groups.iter().map(tsb_group).collect()),
            })
            .collect(),
    }
}

fn tsb_group(group: &SkaGroup) -> Group {
    Group {
        name: group.name.clone(),
        quorum: group.quorum,
        approvals: group
            .approvals
            .iter()
            .map(|a| Approval {
                kind: match a.kind {
                    ApproverKind::PublicKey => ApprovalType::PublicKey,
                    ApproverKind::Certificate => ApprovalType::Certificate,
                    ApproverKind::Onboarded => ApprovalType::OnboardedApproverCertificate,
                },
                name: a.name.clone(),
                value: a.value.clone(),
            })
            .collect(),
    }
}

/// The domain policy of a wire policy (`keyStatus` read into the blocked state).
pub(crate) fn domain_policy(policy: &Policy) -> SkaPolicy {
    SkaPolicy {
        rule_use: policy.rule_use.as_ref().map(domain_rule),
        rule_block: policy.rule_block.as_ref().map(domain_rule),
        rule_unblock: policy.rule_unblock.as_ref().map(domain_rule),
        rule_modify: policy.rule_modify.as_ref().map(domain_rule),
        key_status: SkaKeyStatus {
            blocked: policy.is_blocked(),
        },
    }
}

fn domain_rule(rule: &Rule) -> SkaRule {
    SkaRule::new(
        rule.tokens
            .iter()
            .map(|token| SkaToken {
                name: token.name.clone(),
                timelock: token.timelock,
                timeout: token.timeout,
                groups: token.groups.iter().flatten().map(domain_group).collect(),
            })
            .collect(),
    )
}

fn domain_group(group: &Group) -> SkaGroup {
    SkaGroup::new(
        group.name.clone(),
        group.quorum,
        group
            .approvals
            .iter()
            .map(|a| SkaApproval {
                kind: match a.kind {
                    ApprovalType::PublicKey => ApproverKind::PublicKey,
                    ApprovalType::Certificate => ApproverKind::Certificate,
                    ApprovalType::OnboardedApproverCertificate => ApproverKind::Onboarded,
                },
                name: a.name.clone(),
                value: a.value.clone(),
            })
            .collect(),
    )
}

/// What the port reports about a key, from the TSB key descriptor's `json` part.
pub(crate) fn key_info(key: &KeyInfo) -> HsmKeyInfo {
    HsmKeyInfo {
        label: key.label.clone(),
        algorithm: key.algorithm.clone().unwrap_or_default(),
        key_size: key.key_size,
        curve_oid: key.curve_oid.clone(),
        attributes: domain_attributes(&key.attributes),
        always_sensitive: key.attributes.always_sensitive,
        never_extractable: key.attributes.never_extractable,
        blocked: key.is_blocked(),
        policy: key.policy.as_ref().map(domain_policy),
        public_key_spki_der: key.public_key.clone(),
        created_at: key
            .created_at()
            .and_then(|t| u64::try_from(t.unix_timestamp()).ok()),
        usage_count: key.key_usage_count,
    }
}

/// The port's view of a request: state and approval progress, no result but a failure reason.
pub(crate) fn request(status: RequestStatus) -> HsmRequest {
    let state = match status.status {
        RequestState::Pending => HsmRequestStatus::Pending,
        RequestState::Approved => HsmRequestStatus::Approved,
        RequestState::Executed => HsmRequestStatus::Executed,
        RequestState::Failed => HsmRequestStatus::Failed,
        RequestState::Expired => HsmRequestStatus::Expired,
        RequestState::Rejected => HsmRequestStatus::Rejected,
        RequestState::Cancelled => HsmRequestStatus::Cancelled,
        RequestState::Unknown => HsmRequestStatus::Unknown,
    };
    let executed_at = status
        .executed_at()
        .and_then(|t| u64::try_from(t.unix_timestamp()).ok());
    HsmRequest {
        approvals_collected: u32::try_from(status.approved_by.len()).unwrap_or(u32::MAX),
        approvals_needed: None,
        executed_at,
        // Only a failure's result is kept: other results may be secret (decrypted payloads).
        failure: (state == HsmRequestStatus::Failed)
            .then_some(status.result)
            .flatten(),
        status: state,
        id: status.id,
        approved_by: status.approved_by,
        not_yet_approved_by: status.not_yet_approved_by,
        rejected_by: status.rejected_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_survive_the_wire_types_both_ways() {
        let approvers = vec![
            SkaApproval::public_key(Some("alice".into()), "QUJDRA=="),
            SkaApproval::certificate("bob", "RUZHSA=="),
            SkaApproval::onboarded("carol"),
        ];
        let mut free = SkaToken::new("free", vec![]);
        free.timelock = 60;
        let mut policy = SkaPolicy::empty()
            .with_rule(
                km_domain::SkaAction::Use,
                Some(SkaRule::quorum("main", 2, approvers)),
            )
            .with_rule(km_domain::SkaAction::Block, Some(SkaRule::new(vec![free])))
            .with_rule(km_domain::SkaAction::Unblock, Some(SkaRule::frozen()));
        policy.key_status.blocked = true;
        assert_eq!(domain_policy(&tsb_policy(&policy, true)), policy);
        // Without the status the wire policy says nothing about blocking.
        let wire = tsb_policy(&policy, false);
        assert_eq!(wire.key_status, None);
        assert!(
            wire.rule_block
                .as_ref()
                .is_some_and(|r| r.tokens[0].groups.is_none())
        );
        assert_eq!(
            domain_policy(&tsb_policy(&SkaPolicy::empty(), true)),
            SkaPolicy::empty()
        );
    }

    #[test]
    fn attributes_are_sent_in_full() {
        let attributes = KeyAttributes {
            sign: true,
            sensitive: true,
            ..KeyAttributes::default()
        };
        let wire = tsb_attributes(&attributes);
        assert_eq!(wire.destroyable, Some(false));
        assert_eq!(wire.sign, Some(true));
        assert_eq!(domain_attributes(&wire), attributes);
    }
}
