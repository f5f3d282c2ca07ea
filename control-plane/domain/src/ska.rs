//! The SKA (Smart Key Attributes) policy model (TSB reference §5): who has to approve which action
//! on a key before the HSM performs it.
//!
//! A [`SkaPolicy`] holds one optional [`SkaRule`] per [`SkaAction`] (use, block, unblock, modify)
//! plus the key's blocked state. A rule is a set of [`SkaToken`]s of which any one suffices (OR);
//! a token is a set of [`SkaGroup`]s that must all agree (AND), after an optional timelock and
//! before an optional timeout; a group needs `quorum` of its [`SkaApproval`]s (N-of-M).
//!
//! Absent rules mean "no approval needed": [`SkaPolicy::default`] is the *empty* policy, an SKA
//! key usable without approvals today whose policy can be tightened later. A rule without tokens
//! ([`SkaRule::frozen`]) can never be fulfilled and freezes its action (allowed for block, unblock
//! and modify only: compromised keys get a frozen unblock rule).
//!
//! The serde form is the TSB's own JSON (`ruleUse`, `tokens`, `groups`, `quorum`, `approvals`,
//! `type: public_key|certificate|onboarded_approver_certificate`, `keyStatus.blocked`), so a policy
//! can be shown, stored and sent as the TSB spells it. [`SkaPolicy::validate`] holds keymanager's
//! authoring rules, checked before anything reaches the HSM so that a mistake is explained with a
//! path to the offending element instead of relayed as an HSM 400.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The actions an SKA policy governs, one rule each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkaAction {
    /// Using the private/secret key: sign, decrypt, unwrap, certificate issuance (`ruleUse`).
    Use,
    /// Blocking the key (`ruleBlock`).
    Block,
    /// Unblocking the key (`ruleUnblock`).
    Unblock,
    /// Replacing the policy (`ruleModify`).
    Modify,
}

impl SkaAction {
    /// Every action, in the TSB's order.
    pub const ALL: [SkaAction; 4] = [
        SkaAction::Use,
        SkaAction::Block,
        SkaAction::Unblock,
        SkaAction::Modify,
    ];

    /// The JSON name of the action's rule (`ruleUse`, ...), also used in validation paths.
    pub const fn rule_name(self) -> &'static str {
        match self {
            SkaAction::Use => "ruleUse",
            SkaAction::Block => "ruleBlock",
            SkaAction::Unblock => "ruleUnblock",
            SkaAction::Modify => "ruleModify",
        }
    }
}

impl fmt::Display for SkaAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkaAction::Use => "use",
            SkaAction::Block => "block",
            SkaAction::Unblock => "unblock",
            SkaAction::Modify => "modify",
        })
    }
}

/// A key's SKA policy. `Default` is the empty policy: no rules, not blocked.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkaPolicy {
    /// Governs sign, decrypt, unwrap and certificate issuance; `None` = no approval needed.
    #[serde(default, deserialize_with = "rule_or_null")]
    pub rule_use: Option<SkaRule>,
    /// Governs blocking; `None` = no approval needed.
    #[serde(default, deserialize_with = "rule_or_null")]
    pub rule_block: Option<SkaRule>,
    /// Governs unblocking; `None` = no approval needed.
    #[serde(default, deserialize_with = "rule_or_null")]
    pub rule_unblock: Option<SkaRule>,
    /// Governs replacing this policy; `None` = no approval needed.
    #[serde(default, deserialize_with = "rule_or_null")]
    pub rule_modify: Option<SkaRule>,
    /// Whether the key is blocked. Set at creation; afterwards changed only by block/unblock
    /// (a policy modification keeps the key's current state).
    #[serde(default, deserialize_with = "null_default")]
    pub key_status: SkaKeyStatus,
}

/// `keyStatus` of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub struct SkaKeyStatus {
    /// The key refuses every use of its private/secret half until unblocked.
    #[serde(default, deserialize_with = "null_default")]
    pub blocked: bool,
}

/// A rule: alternatives of which any one token suffices. No tokens = never fulfillable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkaRule {
    /// OR-ed alternatives.
    pub tokens: Vec<SkaToken>,
}

/// A token: groups that must all reach their quorum, within the token's time window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkaToken {
    /// Shown to approvers; unique within its rule.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Seconds after the request before the approved action may run (multiple of 60; 0 = none).
    #[serde(default, deserialize_with = "null_default")]
    pub timelock: u64,
    /// Seconds the approvals may take (multiple of 60; 0 = no limit).
    #[serde(default, deserialize_with = "null_default")]
    pub timeout: u64,
    /// AND-ed groups; none = the token needs no approval (JSON `null`, the TSB's form for it).
    #[serde(
        default,
        deserialize_with = "null_default",
        serialize_with = "empty_as_null"
    )]
    pub groups: Vec<SkaGroup>,
}

/// A group: `quorum` of its `approvals` must approve (N-of-M).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkaGroup {
    /// Unique within its token.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// How many of the approvers must approve (1..=approvers).
    #[serde(default, deserialize_with = "null_default")]
    pub quorum: u32,
    /// The approvers.
    #[serde(default, deserialize_with = "null_default")]
    pub approvals: Vec<SkaApproval>,
}

/// One approver of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SkaApproval {
    /// How the approver is identified.
    #[serde(rename = "type")]
    pub kind: ApproverKind,
    /// Display name; required for certificate and onboarded approvers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Bare standard base64 of the SPKI DER public key or the DER certificate (no PEM armour,
    /// no line breaks); absent for onboarded approvers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// How an [`SkaApproval`] identifies its approver (the TSB's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ApproverKind {
    /// By public key (`value` = base64 SPKI DER).
    #[serde(rename = "public_key")]
    PublicKey,
    /// By certificate (`value` = base64 DER certificate, `name` required).
    #[serde(rename = "certificate")]
    Certificate,
    /// By the name of an approver onboarded through TSB Approver Management.
    #[serde(rename = "onboarded_approver_certificate")]
    Onboarded,
}

impl ApproverKind {
    /// The TSB's `type` string.
    pub const fn as_tsb_str(self) -> &'static str {
        match self {
            ApproverKind::PublicKey => "public_key",
            ApproverKind::Certificate => "certificate",
            ApproverKind::Onboarded => "onboarded_approver_certificate",
        }
    }
}

impl fmt::Display for ApproverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_tsb_str())
    }
}

impl SkaApproval {
    /// An approver identified by its public key, given as bare base64 of the SPKI DER.
    pub fn public_key(name: Option<String>, spki_base64: impl Into<String>) -> Self {
        Self {
            kind: ApproverKind::PublicKey,
            name,
            value: Some(spki_base64.into()),
        }
    }

    /// An approver identified by a certificate, given as bare base64 of the DER.
    pub fn certificate(name: impl Into<String>, certificate_base64: impl Into<String>) -> Self {
        Self {
            kind: ApproverKind::Certificate,
            name: Some(name.into()),
            value: Some(certificate_base64.into()),
        }
    }

    /// An approver onboarded through TSB Approver Management, referenced by name.
    pub fn onboarded(name: impl Into<String>) -> Self {
        Self {
            kind: ApproverKind::Onboarded,
            name: Some(name.into()),
            value: None,
        }
    }
}

impl SkaGroup {
    /// A group needing `quorum` of `approvals`.
    pub fn new(name: impl Into<String>, quorum: u32, approvals: Vec<SkaApproval>) -> Self {
        Self {
            name: name.into(),
            quorum,
            approvals,
        }
    }
}

impl SkaToken {
    /// A token without timelock or timeout.
    pub fn new(name: impl Into<String>, groups: Vec<SkaGroup>) -> Self {
        Self {
            name: name.into(),
            timelock: 0,
            timeout: 0,
            groups,
        }
    }

    /// Whether some group asks for at least one approval.
    pub fn needs_approvals(&self) -> bool {
        self.groups.iter().any(|g| g.quorum > 0)
    }

    /// Whether enough approvers exist in every group for the token to be fulfilled at all.
    pub fn can_be_fulfilled(&self) -> bool {
        self.groups
            .iter()
            .all(|g| g.quorum as usize <= g.approvals.len())
    }
}

impl SkaRule {
    /// A rule with the given alternatives.
    pub fn new(tokens: Vec<SkaToken>) -> Self {
        Self { tokens }
    }

    /// A rule that can never be fulfilled: the action it governs is frozen for good (e.g. the
    /// unblock rule of a compromised key).
    pub fn frozen() -> Self {
        Self { tokens: Vec::new() }
    }

    /// The usual single-token rule: one group `name` needing `quorum` of `approvals`.
    pub fn quorum(name: impl Into<String>, quorum: u32, approvals: Vec<SkaApproval>) -> Self {
        let name = name.into();
        Self::new(vec![SkaToken::new(
            name.clone(),
            vec![SkaGroup::new(name, quorum, approvals)],
        )])
    }

    /// Whether no token can ever be fulfilled.
    pub fn is_frozen(&self) -> bool {
        !self.tokens.iter().any(SkaToken::can_be_fulfilled)
    }

    /// Whether some token is fulfilled at once: no approvals and no timelock.
    pub fn is_immediate(&self) -> bool {
        self.tokens
            .iter()
            .any(|t| !t.needs_approvals() && t.timelock == 0)
    }
}

impl SkaPolicy {
    /// The empty policy: no rules, not blocked (same as `Default`).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Whether no action is governed by a rule (the blocked state is not a rule).
    pub fn is_empty(&self) -> bool {
        SkaAction::ALL.iter().all(|a| self.rule(*a).is_none())
    }

    /// The rule governing `action`, `None` if it needs no approval.
    pub fn rule(&self, action: SkaAction) -> Option<&SkaRule> {
        match action {
            SkaAction::Use => self.rule_use.as_ref(),
            SkaAction::Block => self.rule_block.as_ref(),
            SkaAction::Unblock => self.rule_unblock.as_ref(),
            SkaAction::Modify => self.rule_modify.as_ref(),
        }
    }

    /// This policy with the rule for `action` replaced (`None` = no approval needed).
    pub fn with_rule(mut self, action: SkaAction, rule: Option<SkaRule>) -> Self {
        let slot = match action {
            SkaAction::Use => &mut self.rule_use,
            SkaAction::Block => &mut self.rule_block,
            SkaAction::Unblock => &mut self.rule_unblock,
            SkaAction::Modify => &mut self.rule_modify,
        };
        *slot = rule;
        self
    }

    /// Whether the HSM performs `action` at once, without approvals or timelock: the rule is
    /// absent or has such a token. Otherwise it needs an asynchronous request and approvals.
    pub fn executes_immediately(&self, action: SkaAction) -> bool {
        self.rule(action).is_none_or(SkaRule::is_immediate)
    }

    /// Whether `action` can never happen (its rule has no fulfillable token).
    pub fn is_frozen(&self, action: SkaAction) -> bool {
        self.rule(action).is_some_and(SkaRule::is_frozen)
    }

    /// Checks keymanager's authoring rules; the first violation is returned with its path.
    ///
    /// - `ruleUse` may not be frozen (a key that can never be used is a mistake; freeze the
    ///   other actions only);
    /// - token names unique and non-empty within a rule, group names within a token;
    /// - every group has at least one approver, and `1 <= quorum <= approvers`;
    /// - timelock and timeout are multiples of 60 seconds (non-negative by type);
    /// - a public-key approver has a base64 `value`, a certificate approver a `name` and a base64
    ///   `value`, an onboarded approver a `name` and no `value`; no approver twice in a group.
    pub fn validate(&self) -> Result<(), SkaPolicyError> {
        if self.rule_use.as_ref().is_some_and(|r| r.tokens.is_empty()) {
            return Err(SkaPolicyError::UseRuleFrozen);
        }
        for action in SkaAction::ALL {
            if let Some(rule) = self.rule(action) {
                validate_rule(action.rule_name(), rule)?;
            }
        }
        Ok(())
    }

    /// [`SkaPolicy::validate`] plus the rule for creating a key with this policy: a key created
    /// blocked (pre-active) needs an unblock rule, or the TSB refuses it.
    pub fn validate_for_create(&self) -> Result<(), SkaPolicyError> {
        self.validate()?;
        if self.key_status.blocked && self.rule_unblock.is_none() {
            return Err(SkaPolicyError::BlockedWithoutUnblockRule);
        }
        Ok(())
    }
}

fn validate_rule(rule_path: &str, rule: &SkaRule) -> Result<(), SkaPolicyError> {
    let mut token_names = HashSet::new();
    for (t, token) in rule.tokens.iter().enumerate() {
        let path = format!("{rule_path}.tokens[{t}]");
        if token.name.trim().is_empty() {
            return Err(SkaPolicyError::EmptyName {
                path,
                what: "token",
            });
        }
        if !token_names.insert(token.name.as_str()) {
            return Err(SkaPolicyError::DuplicateName {
                path,
                what: "token",
                name: token.name.clone(),
            });
        }
        for (field, seconds) in [("timelock", token.timelock), ("timeout", token.timeout)] {
            if !seconds.is_multiple_of(60) {
                return Err(SkaPolicyError::NotWholeMinutes {
                    path: path.clone(),
                    field,
                    seconds,
                });
            }
        }
        let mut group_names = HashSet::new();
        for (g, group) in token.groups.iter().enumerate() {
            let path = format!("{path}.groups[{g}]");
            if group.name.trim().is_empty() {
                return Err(SkaPolicyError::EmptyName {
                    path,
                    what: "group",
                });
            }
            if !group_names.insert(group.name.as_str()) {
                return Err(SkaPolicyError::DuplicateName {
                    path,
                    what: "group",
                    name: group.name.clone(),
                });
            }
            validate_group(&path, group)?;
        }
    }
    Ok(())
}

fn validate_group(path: &str, group: &SkaGroup) -> Result<(), SkaPolicyError> {
    let approvers = group.approvals.len();
    if approvers == 0 {
        return Err(SkaPolicyError::NoApprovers {
            path: path.to_owned(),
        });
    }
    if group.quorum == 0 {
        return Err(SkaPolicyError::ZeroQuorum {
            path: path.to_owned(),
        });
    }
    if group.quorum as usize > approvers {
        return Err(SkaPolicyError::QuorumTooHigh {
            path: path.to_owned(),
            quorum: group.quorum,
            approvers,
        });
    }
    let mut seen = HashSet::new();
    for (a, approval) in group.approvals.iter().enumerate() {
        let path = format!("{path}.approvals[{a}]");
        let kind = approval.kind;
        let name = approval.name.as_deref().filter(|n| !n.trim().is_empty());
        let value = approval.value.as_deref().filter(|v| !v.is_empty());
        match kind {
            ApproverKind::PublicKey | ApproverKind::Certificate => {
                let Some(value) = value else {
                    return Err(SkaPolicyError::MissingValue { path, kind });
                };
                if !is_base64(value) {
                    return Err(SkaPolicyError::InvalidBase64 { path, kind });
                }
                if kind == ApproverKind::Certificate && name.is_none() {
                    return Err(SkaPolicyError::MissingApproverName { path, kind });
                }
            }
            ApproverKind::Onboarded => {
                if name.is_none() {
                    return Err(SkaPolicyError::MissingApproverName { path, kind });
                }
                if value.is_some() {
                    return Err(SkaPolicyError::UnexpectedValue { path });
                }
            }
        }
        let identity = match kind {
            ApproverKind::Onboarded => name,
            ApproverKind::PublicKey | ApproverKind::Certificate => value,
        };
        if !seen.insert((kind, identity)) {
            return Err(SkaPolicyError::DuplicateApprover { path });
        }
    }
    Ok(())
}

/// Standard base64 with padding, no whitespace (what the TSB expects in `value`).
fn is_base64(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    let padding = text.len() - body.len();
    !text.is_empty()
        && text.len().is_multiple_of(4)
        && padding <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Why [`SkaPolicy::validate`] refused a policy. `path` points at the element in the TSB JSON
/// (e.g. `ruleBlock.tokens[0].groups[1].approvals[2]`); the codes ([`SkaPolicyError::code`]) are
/// stable API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkaPolicyError {
    /// `ruleUse` without tokens: the key could never be used.
    #[error(
        "ruleUse has no tokens, so the key could never be used; give it a token, or remove the rule to allow use without approvals (only block, unblock and modify may be frozen)"
    )]
    UseRuleFrozen,
    /// A token or group without a name.
    #[error("{path}: the {what} needs a name")]
    EmptyName {
        /// Where.
        path: String,
        /// `token` or `group`.
        what: &'static str,
    },
    /// Two tokens of a rule, or two groups of a token, with the same name.
    #[error("{path}: another {what} is already named '{name}'; {what} names must be unique")]
    DuplicateName {
        /// Where.
        path: String,
        /// `token` or `group`.
        what: &'static str,
        /// The repeated name.
        name: String,
    },
    /// A timelock or timeout that is not a whole number of minutes.
    #[error("{path}: {field} is {seconds} s; the TSB takes whole minutes (multiples of 60 s)")]
    NotWholeMinutes {
        /// Where.
        path: String,
        /// `timelock` or `timeout`.
        field: &'static str,
        /// The value given.
        seconds: u64,
    },
    /// A group without approvers.
    #[error(
        "{path}: the group has no approvers; add at least one, or remove the group (a token without groups needs no approval)"
    )]
    NoApprovers {
        /// Where.
        path: String,
    },
    /// A quorum of zero.
    #[error(
        "{path}: quorum 0 asks for no approval; set 1 or more, or remove the group (a token without groups needs no approval)"
    )]
    ZeroQuorum {
        /// Where.
        path: String,
    },
    /// More approvals required than the group has approvers.
    #[error(
        "{path}: quorum {quorum} exceeds the group's {approvers} approver(s); lower the quorum or add approvers"
    )]
    QuorumTooHigh {
        /// Where.
        path: String,
        /// The quorum given.
        quorum: u32,
        /// How many approvers the group has.
        approvers: usize,
    },
    /// A public-key or certificate approver without `value`.
    #[error("{path}: a {kind} approver needs its value (bare base64 DER)")]
    MissingValue {
        /// Where.
        path: String,
        /// The approver type.
        kind: ApproverKind,
    },
    /// `value` that is not standard base64.
    #[error(
        "{path}: the {kind} value is not standard base64 (bare DER in base64, no PEM header, no line breaks)"
    )]
    InvalidBase64 {
        /// Where.
        path: String,
        /// The approver type.
        kind: ApproverKind,
    },
    /// A certificate or onboarded approver without `name`.
    #[error("{path}: a {kind} approver needs a name")]
    MissingApproverName {
        /// Where.
        path: String,
        /// The approver type.
        kind: ApproverKind,
    },
    /// An onboarded approver with a `value`.
    #[error(
        "{path}: an onboarded approver is referenced by name only; remove the value or use type public_key/certificate"
    )]
    UnexpectedValue {
        /// Where.
        path: String,
    },
    /// The same approver twice in one group (it would count towards the quorum once only).
    #[error("{path}: this approver is already in the group; each approver counts once")]
    DuplicateApprover {
        /// Where.
        path: String,
    },
    /// A key created blocked without an unblock rule.
    #[error(
        "a key created blocked needs a ruleUnblock (the TSB refuses it otherwise); add one or create the key unblocked"
    )]
    BlockedWithoutUnblockRule,
}

impl SkaPolicyError {
    /// Stable machine-readable code.
    pub const fn code(&self) -> &'static str {
        match self {
            SkaPolicyError::UseRuleFrozen => "use_rule_frozen",
            SkaPolicyError::EmptyName { .. } => "empty_name",
            SkaPolicyError::DuplicateName { .. } => "duplicate_name",
            SkaPolicyError::NotWholeMinutes { .. } => "not_whole_minutes",
            SkaPolicyError::NoApprovers { .. } => "no_approvers",
            SkaPolicyError::ZeroQuorum { .. } => "zero_quorum",
            SkaPolicyError::QuorumTooHigh { .. } => "quorum_too_high",
            SkaPolicyError::MissingValue { .. } => "missing_value",
            SkaPolicyError::InvalidBase64 { .. } => "invalid_base64",
            SkaPolicyError::MissingApproverName { .. } => "missing_approver_name",
            SkaPolicyError::UnexpectedValue { .. } => "unexpected_value",
            SkaPolicyError::DuplicateApprover { .. } => "duplicate_approver",
            SkaPolicyError::BlockedWithoutUnblockRule => "blocked_without_unblock_rule",
        }
    }
}

/// `null` (or absent) reads as the type's default, as the TSB sends `null` for empty lists.
fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// No groups are written as `null`, the TSB's documented form of "no approval needed".
fn empty_as_null<S: Serializer>(groups: &[SkaGroup], serializer: S) -> Result<S::Ok, S::Error> {
    if groups.is_empty() {
        serializer.serialize_none()
    } else {
        serializer.collect_seq(groups)
    }
}

/// A rule as the TSB may send it: `null`, or `{"tokens": null}` (both "always fulfilled"), or
/// `{"tokens": [...]}` (`[]` = frozen).
#[derive(Deserialize)]
struct WireRule {
    #[serde(default)]
    tokens: Option<Vec<SkaToken>>,
}

fn rule_or_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SkaRule>, D::Error> {
    Ok(Option::<WireRule>::deserialize(deserializer)?
        .and_then(|rule| rule.tokens)
        .map(SkaRule::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A policy in the TSB's JSON as the reference (§5) and the TSB clients write it: a 2-of-3
    /// use rule with a timelock, alternatives for block, a certificate and an onboarded approver.
    const SAMPLE: &str = r#"{
        "ruleUse": {"tokens": [{"name": "main", "timelock": 120, "timeout": 3600, "groups": [
            {"name": "officers", "quorum": 2, "approvals": [
                {"type": "public_key", "name": "alice", "value": "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="},
                {"type": "public_key", "value": "MCowBQYDK2VwAyEAPUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="},
                {"type": "onboarded_approver_certificate", "name": "carol@example.com"}
            ]}
        ]}]},
        "ruleBlock": {"tokens": [
            {"name": "any-officer", "timelock": 0, "timeout": 0, "groups": [
                {"name": "officers", "quorum": 1, "approvals": [
                    {"type": "certificate", "name": "dave", "value": "MIIBszCCAVmgAwIBAgIU"}
                ]}
            ]},
            {"name": "free", "timelock": 0, "timeout": 0, "groups": null}
        ]},
        "ruleUnblock": {"tokens": []},
        "ruleModify": null,
        "keyStatus": {"blocked": false}
    }"#;

    fn pk(n: u8) -> SkaApproval {
        // Distinct, valid base64 values.
        SkaApproval::public_key(None, format!("AAAA{}", char::from(b'A' + n)).repeat(4))
    }

    fn policy_with(action: SkaAction, rule: SkaRule) -> SkaPolicy {
        SkaPolicy::empty().with_rule(action, Some(rule))
    }

    fn code(policy: &SkaPolicy) -> &'static str {
        policy.validate().unwrap_err().code()
    }

    #[test]
    fn sample_policy_parses_validates_and_round_trips() {
        let policy: SkaPolicy = serde_json::from_str(SAMPLE).unwrap();
        policy.validate().unwrap();
        let use_rule = policy.rule(SkaAction::Use).unwrap();
        assert_eq!(use_rule.tokens[0].timelock, 120);
        assert_eq!(use_rule.tokens[0].groups[0].quorum, 2);
        assert_eq!(
            use_rule.tokens[0].groups[0].approvals[2],
            SkaApproval::onboarded("carol@example.com")
        );
        assert_eq!(
            policy.rule(SkaAction::Block).unwrap().tokens[0].groups[0].approvals[0].kind,
            ApproverKind::Certificate
        );
        assert!(
            policy.rule(SkaAction::Block).unwrap().tokens[1]
                .groups
                .is_empty()
        );
        assert!(policy.is_frozen(SkaAction::Unblock));
        assert!(policy.rule(SkaAction::Modify).is_none());
        assert!(!policy.key_status.blocked);

        // Our JSON is the TSB's JSON: parsing it again gives the same policy, and it equals the
        // sample as a JSON value (explicit nulls for absent rules and token groups).
        let json = serde_json::to_value(&policy).unwrap();
        let expected: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
        assert_eq!(json, expected);
        assert_eq!(serde_json::from_value::<SkaPolicy>(json).unwrap(), policy);
    }

    #[test]
    fn empty_policy_is_all_null_rules_and_reads_back_from_tsb_forms() {
        let empty = SkaPolicy::empty();
        assert!(empty.is_empty());
        assert_eq!(
            serde_json::to_value(&empty).unwrap(),
            serde_json::json!({
                "ruleUse": null, "ruleBlock": null, "ruleUnblock": null, "ruleModify": null,
                "keyStatus": {"blocked": false}
            })
        );
        // Absent fields, a null keyStatus and `{"tokens": null}` rules are all the empty policy.
        for text in [
            "{}",
            r#"{"keyStatus": null}"#,
            r#"{"ruleUse": {"tokens": null}, "ruleModify": {}}"#,
        ] {
            assert_eq!(serde_json::from_str::<SkaPolicy>(text).unwrap(), empty);
        }
        for action in SkaAction::ALL {
            assert!(empty.executes_immediately(action));
            assert!(!empty.is_frozen(action));
        }
        empty.validate_for_create().unwrap();
    }

    #[test]
    fn immediacy_and_freezing_follow_tokens() {
        let one_of_one = policy_with(SkaAction::Block, SkaRule::quorum("sec", 1, vec![pk(1)]));
        assert!(!one_of_one.executes_immediately(SkaAction::Block));
        assert!(one_of_one.executes_immediately(SkaAction::Use));
        assert!(!one_of_one.is_frozen(SkaAction::Block));

        let mut free = SkaToken::new("free", vec![]);
        assert!(
            policy_with(SkaAction::Modify, SkaRule::new(vec![free.clone()]))
                .executes_immediately(SkaAction::Modify)
        );
        free.timelock = 60;
        assert!(
            !policy_with(SkaAction::Modify, SkaRule::new(vec![free]))
                .executes_immediately(SkaAction::Modify)
        );

        let frozen = policy_with(SkaAction::Unblock, SkaRule::frozen());
        assert!(frozen.is_frozen(SkaAction::Unblock));
        assert!(!frozen.executes_immediately(SkaAction::Unblock));
        frozen.validate().unwrap();
        assert_eq!(
            policy_with(SkaAction::Use, SkaRule::frozen()).validate(),
            Err(SkaPolicyError::UseRuleFrozen)
        );
    }

    #[test]
    fn quorum_must_be_between_one_and_the_approvers() {
        let ok = policy_with(SkaAction::Use, SkaRule::quorum("g", 2, vec![pk(1), pk(2)]));
        ok.validate().unwrap();
        let too_high = policy_with(
            SkaAction::Block,
            SkaRule::quorum("g", 3, vec![pk(1), pk(2)]),
        );
        let error = too_high.validate().unwrap_err();
        assert_eq!(error.code(), "quorum_too_high");
        assert_eq!(
            error.to_string(),
            "ruleBlock.tokens[0].groups[0]: quorum 3 exceeds the group's 2 approver(s); lower the quorum or add approvers"
        );
        assert_eq!(
            code(&policy_with(
                SkaAction::Use,
                SkaRule::quorum("g", 0, vec![pk(1)])
            )),
            "zero_quorum"
        );
        assert_eq!(
            code(&policy_with(
                SkaAction::Use,
                SkaRule::quorum("g", 1, vec![])
            )),
            "no_approvers"
        );
    }

    #[test]
    fn names_must_be_present_and_unique() {
        let group = |name: &str| SkaGroup::new(name, 1, vec![pk(1)]);
        let dup_tokens = SkaRule::new(vec![
            SkaToken::new("t", vec![group("g")]),
            SkaToken::new("t", vec![group("g")]),
        ]);
        let error = policy_with(SkaAction::Modify, dup_tokens)
            .validate()
            .unwrap_err();
        assert_eq!(error.code(), "duplicate_name");
        assert!(error.to_string().starts_with("ruleModify.tokens[1]: "));

        let dup_groups = SkaRule::new(vec![SkaToken::new("t", vec![group("g"), group("g")])]);
        assert_eq!(
            code(&policy_with(SkaAction::Use, dup_groups)),
            "duplicate_name"
        );
        // The same group name in two tokens is fine.
        let across = SkaRule::new(vec![
            SkaToken::new("a", vec![group("g")]),
            SkaToken::new("b", vec![group("g")]),
        ]);
        policy_with(SkaAction::Use, across).validate().unwrap();

        let unnamed = SkaRule::new(vec![SkaToken::new(" ", vec![group("g")])]);
        assert_eq!(code(&policy_with(SkaAction::Use, unnamed)), "empty_name");
        let unnamed_group = SkaRule::new(vec![SkaToken::new("t", vec![group("")])]);
        assert_eq!(
            code(&policy_with(SkaAction::Use, unnamed_group)),
            "empty_name"
        );
    }

    #[test]
    fn times_are_whole_minutes() {
        let mut token = SkaToken::new("t", vec![SkaGroup::new("g", 1, vec![pk(1)])]);
        token.timelock = 90;
        let error = policy_with(SkaAction::Use, SkaRule::new(vec![token.clone()]))
            .validate()
            .unwrap_err();
        assert_eq!(error.code(), "not_whole_minutes");
        assert!(error.to_string().contains("timelock is 90 s"));
        token.timelock = 120;
        token.timeout = 61;
        assert_eq!(
            code(&policy_with(
                SkaAction::Use,
                SkaRule::new(vec![token.clone()])
            )),
            "not_whole_minutes"
        );
        token.timeout = 3600;
        policy_with(SkaAction::Use, SkaRule::new(vec![token]))
            .validate()
            .unwrap();
        // Negative times cannot even be parsed.
        assert!(serde_json::from_str::<SkaToken>(r#"{"name":"t","timelock":-60}"#).is_err());
    }

    #[test]
    fn approvers_need_the_fields_of_their_kind() {
        let rule = |a: SkaApproval| policy_with(SkaAction::Use, SkaRule::quorum("g", 1, vec![a]));
        assert_eq!(
            code(&rule(SkaApproval {
                kind: ApproverKind::PublicKey,
                name: Some("x".into()),
                value: None,
            })),
            "missing_value"
        );
        assert_eq!(
            code(&rule(SkaApproval::public_key(
                None,
                "-----BEGIN PUBLIC KEY-----"
            ))),
            "invalid_base64"
        );
        assert_eq!(
            code(&rule(SkaApproval::public_key(None, "QUJD\nREVG"))),
            "invalid_base64"
        );
        assert_eq!(
            code(&rule(SkaApproval {
                kind: ApproverKind::Certificate,
                name: None,
                value: Some("QUJD".into()),
            })),
            "missing_approver_name"
        );
        assert_eq!(
            code(&rule(SkaApproval {
                kind: ApproverKind::Onboarded,
                name: None,
                value: None,
            })),
            "missing_approver_name"
        );
        assert_eq!(
            code(&rule(SkaApproval {
                kind: ApproverKind::Onboarded,
                name: Some("carol".into()),
                value: Some("QUJD".into()),
            })),
            "unexpected_value"
        );
        rule(SkaApproval::certificate("dave", "QUJDRA=="))
            .validate()
            .unwrap();
        rule(SkaApproval::onboarded("carol")).validate().unwrap();
    }

    #[test]
    fn an_approver_counts_once_per_group() {
        let twice = policy_with(SkaAction::Use, SkaRule::quorum("g", 2, vec![pk(1), pk(1)]));
        let error = twice.validate().unwrap_err();
        assert_eq!(error.code(), "duplicate_approver");
        assert!(
            error
                .to_string()
                .starts_with("ruleUse.tokens[0].groups[0].approvals[1]: ")
        );
        let onboarded = policy_with(
            SkaAction::Use,
            SkaRule::quorum(
                "g",
                1,
                vec![SkaApproval::onboarded("c"), SkaApproval::onboarded("c")],
            ),
        );
        assert_eq!(code(&onboarded), "duplicate_approver");
    }

    #[test]
    fn a_key_created_blocked_needs_an_unblock_rule() {
        let mut blocked = SkaPolicy::empty();
        blocked.key_status.blocked = true;
        // Fine as a modification (the key's state is kept), not for creation.
        blocked.validate().unwrap();
        assert_eq!(
            blocked.validate_for_create(),
            Err(SkaPolicyError::BlockedWithoutUnblockRule)
        );
        let with_unblock = blocked.with_rule(
            SkaAction::Unblock,
            Some(SkaRule::quorum("officers", 1, vec![pk(1)])),
        );
        with_unblock.validate_for_create().unwrap();
    }

    #[test]
    fn approver_kinds_use_the_tsb_type_strings() {
        for (kind, text) in [
            (ApproverKind::PublicKey, "public_key"),
            (ApproverKind::Certificate, "certificate"),
            (ApproverKind::Onboarded, "onboarded_approver_certificate"),
        ] {
            assert_eq!(kind.as_tsb_str(), text);
            assert_eq!(serde_json::to_value(kind).unwrap(), text);
        }
        assert!(serde_json::from_str::<ApproverKind>(r#""onboarded""#).is_err());
        assert_eq!(
            SkaAction::ALL.map(SkaAction::rule_name),
            ["ruleUse", "ruleBlock", "ruleUnblock", "ruleModify"]
        );
    }

    #[test]
    fn base64_check() {
        for ok in ["QQ==", "QUI=", "QUJD", "a+/9"] {
            assert!(is_base64(ok), "{ok}");
        }
        for bad in ["", "QQ", "Q===", "QU JD", "QUJD\n", "QU-_", "=QUJ"] {
            assert!(!is_base64(bad), "{bad}");
        }
    }
}
