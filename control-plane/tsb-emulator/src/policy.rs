//! The SKA (Smart Key Attributes) policy model of the reference §5 and its evaluation:
//! tokens are OR-ed, groups inside a token AND-ed, approvals inside a group N-of-M.

use serde::{Deserialize, Serialize};

use crate::error::TsbError;

/// `policy` of a key. `None` at the key level = plain key.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Policy {
    #[serde(default)]
    pub rule_use: Option<Rule>,
    #[serde(default)]
    pub rule_block: Option<Rule>,
    #[serde(default)]
    pub rule_unblock: Option<Rule>,
    #[serde(default)]
    pub rule_modify: Option<Rule>,
    #[serde(default)]
    pub key_status: Option<KeyStatus>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct KeyStatus {
    #[serde(default)]
    pub blocked: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Rule {
    /// `null` = always fulfilled; `[]` = never fulfillable (freezes the action).
    #[serde(default)]
    pub tokens: Option<Vec<Token>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Token {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub timelock: Option<i64>,
    #[serde(default)]
    pub timeout: Option<i64>,
    /// `null` or empty = no approvals needed.
    #[serde(default)]
    pub groups: Option<Vec<Group>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Group {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub quorum: Option<u32>,
    #[serde(default)]
    pub approvals: Option<Vec<Approval>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Approval {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// The action a rule governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Action {
    Use,
    Block,
    Unblock,
    Modify,
}

impl Policy {
    pub fn blocked(&self) -> bool {
        self.key_status.as_ref().is_some_and(|s| s.blocked)
    }

    pub fn rule(&self, action: Action) -> Option<&Rule> {
        match action {
            Action::Use => self.rule_use.as_ref(),
            Action::Block => self.rule_block.as_ref(),
            Action::Unblock => self.rule_unblock.as_ref(),
            Action::Modify => self.rule_modify.as_ref(),
        }
    }

    /// The JSON the TSB echoes (all rules present, `keyStatus` always set).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ruleUse": self.rule_use,
            "ruleBlock": self.rule_block,
            "ruleUnblock": self.rule_unblock,
            "ruleModify": self.rule_modify,
            "keyStatus": { "blocked": self.blocked() },
        })
    }

    /// Structural checks done at key creation and modify.
    ///
    /// Never-fulfillable rules (`tokens: []`, or groups whose quorum exceeds their approvals)
    /// are allowed for ruleBlock/ruleUnblock/ruleModify: they freeze that action (reference §5).
    /// The reference allows this for those three rules only, so a never-fulfillable ruleUse,
    /// which would leave a key that can never be used, is refused (600).
    pub fn validate(&self) -> Result<(), TsbError> {
        if let Some(Rule {
            tokens: Some(tokens),
        }) = &self.rule_use
            && tokens.is_empty()
        {
            return Err(TsbError::validation(
                "ruleUse can never be fulfilled (no tokens); only block, unblock and modify rules may freeze their action",
            ));
        }
        for (is_use, rule) in [
            (true, &self.rule_use),
            (false, &self.rule_block),
            (false, &self.rule_unblock),
            (false, &self.rule_modify),
        ] {
            let Some(rule) = rule else { continue };
            for token in rule.tokens.iter().flatten() {
                for (what, v) in [("timelock", token.timelock), ("timeout", token.timeout)] {
                    let v = v.unwrap_or(0);
                    if v < 0 || v % 60 != 0 {
                        return Err(TsbError::new(
                            619,
                            format!("{what} must be a non-negative multiple of 60 seconds"),
                        ));
                    }
                }
                for group in token.groups.iter().flatten() {
                    let approvals = group.approvals.as_deref().unwrap_or(&[]);
                    let quorum = group.quorum.unwrap_or(0);
                    if is_use && quorum as usize > approvals.len() {
                        return Err(TsbError::validation(format!(
                            "ruleUse group quorum {quorum} exceeds its {} approvals; only block, unblock and modify rules may freeze their action",
                            approvals.len()
                        )));
                    }
                    for a in approvals {
                        match a.kind.as_deref() {
                            Some("public_key") | Some("certificate") => {
                                if a.value.as_deref().is_none_or(str::is_empty) {
                                    return Err(TsbError::missing("approvals.value"));
                                }
                            }
                            Some("onboarded_approver_certificate") => {
                                if a.name.as_deref().is_none_or(str::is_empty) {
                                    return Err(TsbError::new(
                                        604,
                                        "onboarded_approver_certificate needs the approver name",
                                    ));
                                }
                            }
                            Some(other) => {
                                return Err(TsbError::new(
                                    501,
                                    format!("unknown approval type '{other}'"),
                                ));
                            }
                            None => return Err(TsbError::missing("approvals.type")),
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A rule with every approver resolved to its SPKI (base64), frozen into a request when it is
/// created so later policy changes do not alter pending requests.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct ResolvedRule {
    /// `None` = the rule was null (always fulfilled).
    pub tokens: Option<Vec<ResolvedToken>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct ResolvedToken {
    pub timelock: i64,
    pub timeout: i64,
    pub groups: Vec<ResolvedGroup>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct ResolvedGroup {
    pub quorum: u32,
    /// Approver SPKIs, base64.
    pub approvers: Vec<String>,
}

/// Outcome of evaluating a request at a point in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Evaluation {
    /// A token is fulfilled and its timelock has passed.
    Execute,
    /// A token's quorum is met but its timelock has not passed yet.
    WaitTimelock,
    /// Still collecting approvals.
    Pending,
    /// Every token has timed out.
    Expired,
    /// Rejections make every token unsatisfiable.
    Rejected,
}

impl ResolvedRule {
    /// True when the rule needs no approval and no waiting: sync endpoints may run.
    pub fn always_fulfilled_now(&self) -> bool {
        match &self.tokens {
            None => true,
            Some(tokens) => tokens
                .iter()
                .any(|t| t.timelock == 0 && t.groups.iter().all(|g| g.quorum == 0)),
        }
    }

    /// True when no token can ever reach its quorum (`tokens: []`, or every token has a group
    /// with fewer approvers than its quorum): the action is frozen.
    pub fn never_fulfillable(&self) -> bool {
        self.tokens.as_ref().is_some_and(|tokens| {
            tokens.iter().all(|t| {
                t.groups
                    .iter()
                    .any(|g| g.quorum as usize > g.approvers.len())
            })
        })
    }

    /// Every distinct approver of the rule, in policy order.
    pub fn approvers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in self.tokens.iter().flatten() {
            for g in &t.groups {
                for a in &g.approvers {
                    if !out.contains(a) {
                        out.push(a.clone());
                    }
                }
            }
        }
        out
    }

    /// `elapsed` = seconds since the request was created (emulator clock).
    pub fn evaluate(&self, approved: &[String], rejected: &[String], elapsed: i64) -> Evaluation {
        let Some(tokens) = &self.tokens else {
            return Evaluation::Execute;
        };
        let mut wait = false;
        let mut any_alive = false;
        let mut any_satisfiable = false;
        for t in tokens {
            let timed_out = t.timeout > 0 && elapsed > t.timeout;
            let quorum_met = t.groups.iter().all(|g| {
                g.approvers.iter().filter(|a| approved.contains(a)).count() >= g.quorum as usize
            });
            if quorum_met {
                if elapsed >= t.timelock {
                    return Evaluation::Execute;
                }
                wait = true;
                continue;
            }
            if timed_out {
                continue;
            }
            any_alive = true;
            let satisfiable = t.groups.iter().all(|g| {
                g.approvers.iter().filter(|a| !rejected.contains(a)).count() >= g.quorum as usize
            });
            if satisfiable {
                any_satisfiable = true;
            }
        }
        if wait {
            Evaluation::WaitTimelock
        } else if !any_alive {
            Evaluation::Expired
        } else if !any_satisfiable {
            Evaluation::Rejected
        } else {
            Evaluation::Pending
        }
    }

    /// The earliest moment (seconds after creation) at which something can change by time alone.
    pub fn has_time_component(&self) -> bool {
        self.tokens
            .iter()
            .flatten()
            .any(|t| t.timelock > 0 || t.timeout > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(quorum: u32, approvers: &[&str], timelock: i64, timeout: i64) -> ResolvedRule {
        ResolvedRule {
            tokens: Some(vec![ResolvedToken {
                timelock,
                timeout,
                groups: vec![ResolvedGroup {
                    quorum,
                    approvers: approvers.iter().map(|s| s.to_string()).collect(),
                }],
            }]),
        }
    }

    #[test]
    fn quorum_two_of_three() {
        let r = rule(2, &["a", "b", "c"], 0, 0);
        assert!(!r.always_fulfilled_now());
        assert_eq!(r.evaluate(&[], &[], 0), Evaluation::Pending);
        assert_eq!(r.evaluate(&["a".into()], &[], 0), Evaluation::Pending);
        assert_eq!(
            r.evaluate(&["a".into(), "c".into()], &[], 0),
            Evaluation::Execute
        );
        assert_eq!(r.evaluate(&[], &["a".into()], 0), Evaluation::Pending);
        assert_eq!(
            r.evaluate(&[], &["a".into(), "b".into()], 0),
            Evaluation::Rejected
        );
    }

    #[test]
    fn timelock_and_timeout() {
        let r = rule(1, &["a"], 120, 600);
        assert_eq!(r.evaluate(&["a".into()], &[], 10), Evaluation::WaitTimelock);
        assert_eq!(r.evaluate(&["a".into()], &[], 120), Evaluation::Execute);
        assert_eq!(r.evaluate(&[], &[], 601), Evaluation::Expired);
    }

    #[test]
    fn and_across_groups_or_across_tokens() {
        let r = ResolvedRule {
            tokens: Some(vec![
                ResolvedToken {
                    timelock: 0,
                    timeout: 0,
                    groups: vec![
                        ResolvedGroup {
                            quorum: 1,
                            approvers: vec!["a".into()],
                        },
                        ResolvedGroup {
                            quorum: 1,
                            approvers: vec!["b".into()],
                        },
                    ],
                },
                ResolvedToken {
                    timelock: 0,
                    timeout: 0,
                    groups: vec![ResolvedGroup {
                        quorum: 1,
                        approvers: vec!["c".into()],
                    }],
                },
            ]),
        };
        assert_eq!(r.evaluate(&["a".into()], &[], 0), Evaluation::Pending);
        assert_eq!(
            r.evaluate(&["a".into(), "b".into()], &[], 0),
            Evaluation::Execute
        );
        assert_eq!(r.evaluate(&["c".into()], &[], 0), Evaluation::Execute);
        assert_eq!(
            r.evaluate(&[], &["a".into(), "c".into()], 0),
            Evaluation::Rejected
        );
        assert_eq!(r.approvers(), vec!["a", "b", "c"]);
    }

    #[test]
    fn null_and_empty_rules() {
        assert!(ResolvedRule { tokens: None }.always_fulfilled_now());
        let frozen = ResolvedRule {
            tokens: Some(vec![]),
        };
        assert!(!frozen.always_fulfilled_now());
        assert_eq!(frozen.evaluate(&[], &[], 0), Evaluation::Expired);
        let open = ResolvedRule {
            tokens: Some(vec![ResolvedToken {
                timelock: 0,
                timeout: 0,
                groups: vec![],
            }]),
        };
        assert!(open.always_fulfilled_now());
    }

    #[test]
    fn validation() {
        let p: Policy = serde_json::from_value(serde_json::json!({
            "ruleUse": {"tokens": [{"name": "t", "timelock": 30, "timeout": 0, "groups": []}]}
        }))
        .unwrap();
        assert_eq!(p.validate().unwrap_err().code, 619);
        let p: Policy = serde_json::from_value(serde_json::json!({
            "ruleUse": {"tokens": [{"name": "t", "groups": [{"name": "g", "quorum": 2,
                "approvals": [{"type": "public_key", "value": "AAAA"}]}]}]}
        }))
        .unwrap();
        assert_eq!(p.validate().unwrap_err().code, 600);
    }

    #[test]
    fn never_fulfillable_rules_freeze_block_unblock_modify_only() {
        let over_quorum = serde_json::json!({"tokens": [{"name": "t", "timelock": 0, "timeout": 0,
            "groups": [{"name": "g", "quorum": 2,
                "approvals": [{"type": "public_key", "value": "AAAA"}]}]}]});
        for rule in ["ruleBlock", "ruleUnblock", "ruleModify"] {
            for frozen in [over_quorum.clone(), serde_json::json!({"tokens": []})] {
                let p: Policy =
                    serde_json::from_value(serde_json::json!({ rule: frozen })).unwrap();
                assert!(p.validate().is_ok(), "{rule} {frozen} must be accepted");
            }
        }
        for frozen in [over_quorum, serde_json::json!({"tokens": []})] {
            let p: Policy =
                serde_json::from_value(serde_json::json!({ "ruleUse": frozen.clone() })).unwrap();
            assert_eq!(p.validate().unwrap_err().code, 600, "ruleUse {frozen}");
        }
        let resolved = rule(2, &["a"], 0, 0);
        assert!(resolved.never_fulfillable());
        assert_eq!(resolved.evaluate(&[], &[], 0), Evaluation::Rejected);
        assert!(!rule(1, &["a"], 0, 0).never_fulfillable());
        assert!(
            ResolvedRule {
                tokens: Some(vec![])
            }
            .never_fulfillable()
        );
        assert!(!ResolvedRule { tokens: None }.never_fulfillable());
        // One live token is enough.
        let mixed = ResolvedRule {
            tokens: Some(vec![
                rule(2, &["a"], 0, 0).tokens.unwrap().remove(0),
                rule(1, &["b"], 0, 0).tokens.unwrap().remove(0),
            ]),
        };
        assert!(!mixed.never_fulfillable());
    }
}
