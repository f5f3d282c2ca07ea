//! A key's SKA policy and its approval requests (`/keys/{label}/policy`): a readable view of the
//! four rules (use, block, unblock, modify → tokens → groups with their quorum → approvers), the
//! requests that wait for approvals with their progress (withdrawable), and — for those who may
//! edit the policy — an editor: a simple single-token form per rule, or the policy's TSB JSON.
//!
//! The page only reads and draws; `App::update_key_policy` validates (with the domain's path to
//! the offending element), authorizes and audits, and answers whether the HSM applied the policy
//! or holds it as a request because the modify rule asks for approvals.

use std::sync::Arc;

use askama::Template;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use km_core::keys::{ApproverDecision, PendingChange, RequestProgress, approver_fingerprint};
use km_core::{AppError, HsmRequestStatus, KeyDetail, PolicyUpdate};
use km_domain::{
    Action, ApproverKind, KeyState, SkaAction, SkaApproval, SkaGroup, SkaPolicy, SkaRule, SkaToken,
};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::fmt;
use crate::http;
use crate::pages::keys::encode;
use crate::pages::{TO_NOTICES, errors, form_viewer};
use crate::viewer::{self, Console, Layout, Need, PageMeta, Viewer};

/// The policy page of a key.
fn policy_href(label: &str) -> String {
    format!("/keys/{}/policy", encode(label))
}

/// What each rule governs, in words.
fn rule_title(action: SkaAction) -> (&'static str, &'static str) {
    match action {
        SkaAction::Use => (
            "Use",
            "Signing, decrypting, unwrapping: every use of the private or secret key.",
        ),
        SkaAction::Block => (
            "Block",
            "Suspending, deactivating or marking the key compromised blocks it.",
        ),
        SkaAction::Unblock => ("Unblock", "Activating or reactivating the key unblocks it."),
        SkaAction::Modify => ("Modify", "Replacing this policy."),
    }
}

/// `5 minutes`, or `none` for 0 (seconds that are not whole minutes are shown as seconds).
fn minutes_text(secs: u64) -> String {
    match (secs, secs / 60) {
        (0, _) => "none".to_owned(),
        (secs, _) if !secs.is_multiple_of(60) => format!("{secs} seconds"),
        (_, 1) => "1 minute".to_owned(),
        (_, minutes) => format!("{minutes} minutes"),
    }
}

/// The first 16 hex characters of the approver fingerprint km-core gives request progress
/// (SHA-256 of the base64-decoded value): short, stable, and the same prefix.
fn short_fingerprint(value: &str) -> String {
    approver_fingerprint(value).chars().take(16).collect()
}

// ----- the readable view -----

struct ApproverView {
    name: String,
    kind: &'static str,
    /// A short fingerprint of the key or certificate; empty for onboarded approvers.
    fingerprint: String,
}

struct GroupView {
    name: String,
    quorum: String,
    approvers: Vec<ApproverView>,
}

struct TokenView {
    name: String,
    timelock: String,
    timeout: String,
    groups: Vec<GroupView>,
}

/// One rule as the page shows it.
struct RuleView {
    action: &'static str,
    title: &'static str,
    about: &'static str,
    /// `none` (no approval needed), `frozen` or `tokens`.
    kind: &'static str,
    tokens: Vec<TokenView>,
}

fn approver_view(approval: &SkaApproval) -> ApproverView {
    let (kind, fingerprint) = match approval.kind {
        ApproverKind::PublicKey => ("public key", approval.value.as_deref()),
        ApproverKind::Certificate => ("certificate", approval.value.as_deref()),
        ApproverKind::Onboarded => ("onboarded approver", None),
    };
    ApproverView {
        name: approval.name.clone().unwrap_or_default(),
        kind,
        fingerprint: fingerprint.map(short_fingerprint).unwrap_or_default(),
    }
}

fn rule_view(action: SkaAction, rule: Option<&SkaRule>) -> RuleView {
    let (title, about) = rule_title(action);
    let (kind, tokens) = match rule {
        None => ("none", Vec::new()),
        Some(rule) if rule.is_frozen() => ("frozen", Vec::new()),
        Some(rule) => (
            "tokens",
            rule.tokens
                .iter()
                .map(|token| TokenView {
                    name: token.name.clone(),
                    timelock: minutes_text(token.timelock),
                    timeout: minutes_text(token.timeout),
                    groups: token
                        .groups
                        .iter()
                        .map(|group| GroupView {
                            name: group.name.clone(),
                            quorum: format!(
                                "{} of {} approve",
                                group.quorum,
                                group.approvals.len()
                            ),
                            approvers: group.approvals.iter().map(approver_view).collect(),
                        })
                        .collect(),
                })
                .collect(),
        ),
    };
    RuleView {
        action: action_name(action),
        title,
        about,
        kind,
        tokens,
    }
}

/// The form's and URL's name of an action (`use`, `block`, ...).
fn action_name(action: SkaAction) -> &'static str {
    match action {
        SkaAction::Use => "use",
        SkaAction::Block => "block",
        SkaAction::Unblock => "unblock",
        SkaAction::Modify => "modify",
    }
}

// ----- requests -----

struct DecisionView {
    name: String,
    fingerprint: String,
    decision: &'static str,
}

struct RequestView {
    id: String,
    cancel_href: String,
    change: &'static str,
    rule: &'static str,
    version: u32,
    requested_by: String,
    requested_at: String,
    reason: String,
    status: &'static str,
    collected: u32,
    /// The meter's maximum (at least the approvals collected).
    needed: u32,
    progress: String,
    approvers: Vec<DecisionView>,
}

fn status_text(status: Option<HsmRequestStatus>) -> &'static str {
    match status {
        None => "unknown (the HSM could not be asked just now)",
        Some(HsmRequestStatus::Pending) => "waiting for approvals",
        Some(HsmRequestStatus::Approved) => "approved, waiting for its timelock or execution",
        Some(HsmRequestStatus::Rejected) => "rejected",
        Some(HsmRequestStatus::Executed) => "executed",
        Some(HsmRequestStatus::Expired) => "expired",
        Some(HsmRequestStatus::Cancelled) => "cancelled",
        Some(HsmRequestStatus::Failed) => "failed",
        Some(HsmRequestStatus::Unknown) => "unknown",
    }
}

fn request_view(label: &str, progress: &RequestProgress) -> RequestView {
    let request = &progress.request;
    let collected = progress.approvals_collected;
    let (needed, text) = match progress.approvals_needed {
        Some(needed) => (
            needed.max(collected),
            format!("{collected} of {needed} approvals"),
        ),
        None => (collected.max(1), format!("{collected} approvals so far")),
    };
    RequestView {
        id: request.request_id.clone(),
        cancel_href: format!(
            "/keys/{}/requests/{}/cancel",
            encode(label),
            encode(&request.request_id)
        ),
        change: request.change.name(),
        rule: rule_title(request.governed_by).0,
        version: request.version,
        requested_by: request.requested_by.clone(),
        requested_at: fmt::datetime(request.requested_at),
        reason: request.reason.clone().unwrap_or_default(),
        status: status_text(progress.status),
        collected,
        needed,
        progress: text,
        approvers: progress
            .approvers
            .iter()
            .map(|approver| DecisionView {
                name: approver.name.clone().unwrap_or_default(),
                fingerprint: approver.fingerprint.chars().take(16).collect(),
                decision: match approver.decision {
                    ApproverDecision::Approved => "approved",
                    ApproverDecision::Waiting => "waiting",
                    ApproverDecision::Rejected => "rejected",
                },
            })
            .collect(),
    }
}

// ----- the simple editor -----

/// A rule's part of the simple form, as shown or as posted (kept verbatim on a refusal).
#[derive(Debug, Clone, PartialEq, Eq)]
struct RuleForm {
    action: SkaAction,
    prefix: &'static str,
    title: &'static str,
    /// `none`, `approvals` or `frozen`.
    mode: String,
    token: String,
    timelock: String,
    timeout: String,
    quorum: String,
    approvers: String,
    /// What to correct in this rule.
    error: Option<String>,
}

impl RuleForm {
    fn blank(action: SkaAction) -> Self {
        Self {
            action,
            prefix: action_name(action),
            title: rule_title(action).0,
            mode: "none".to_owned(),
            token: action_name(action).to_owned(),
            timelock: "0".to_owned(),
            timeout: "0".to_owned(),
            quorum: "1".to_owned(),
            approvers: String::new(),
            error: None,
        }
    }

    /// The form showing `rule`, or `None` when the simple form cannot show it exactly (several
    /// tokens or groups, a group named unlike its token, seconds that are not whole minutes,
    /// names with commas or line breaks).
    fn of(action: SkaAction, rule: Option<&SkaRule>) -> Option<Self> {
        let mut form = Self::blank(action);
        let Some(rule) = rule else {
            return Some(form);
        };
        let [token] = rule.tokens.as_slice() else {
            if rule.tokens.is_empty() {
                form.mode = "frozen".to_owned();
                return Some(form);
            }
            return None;
        };
        let [group] = token.groups.as_slice() else {
            return None;
        };
        if group.name != token.name
            || !token.timelock.is_multiple_of(60)
            || !token.timeout.is_multiple_of(60)
        {
            return None;
        }
        let mut lines = Vec::with_capacity(group.approvals.len());
        for approval in &group.approvals {
            let name = approval.name.as_deref().unwrap_or_default();
            if name.contains([',', '\n', '\r']) {
                return None;
            }
            let value = approval.value.as_deref().unwrap_or_default();
            lines.push(match approval.kind {
                ApproverKind::PublicKey => format!("{name}, public_key, {value}"),
                ApproverKind::Certificate => format!("{name}, certificate, {value}"),
                ApproverKind::Onboarded => format!("{name}, onboarded"),
            });
        }
        form.mode = "approvals".to_owned();
        form.token = token.name.clone();
        form.timelock = (token.timelock / 60).to_string();
        form.timeout = (token.timeout / 60).to_string();
        form.quorum = group.quorum.to_string();
        form.approvers = lines.join("\n");
        Some(form)
    }

    fn from_pairs(action: SkaAction, pairs: &[(String, String)]) -> Self {
        let prefix = action_name(action);
        let get = |field: &str| {
            let name = format!("{prefix}_{field}");
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        Self {
            mode: get("mode"),
            token: get("token"),
            timelock: get("timelock"),
            timeout: get("timeout"),
            quorum: get("quorum"),
            approvers: get("approvers"),
            ..Self::blank(action)
        }
    }

    /// Whether `Frozen` is offered (the domain refuses a frozen use rule).
    fn may_freeze(&self) -> bool {
        self.action != SkaAction::Use
    }

    /// The rule this part describes (`None` = no approval needed), or what to correct.
    fn to_rule(&self) -> Result<Option<SkaRule>, String> {
        match self.mode.as_str() {
            "none" => Ok(None),
            "frozen" if self.may_freeze() => Ok(Some(SkaRule::frozen())),
            "frozen" => {
                Err("the use rule cannot be frozen: the key could never be used again".to_owned())
            }
            "approvals" => {
                let name = self.token.trim();
                if name.is_empty() {
                    return Err("give the token a name (approvers see it)".to_owned());
                }
                let timelock = minutes_to_secs("timelock", &self.timelock)?;
                let timeout = minutes_to_secs("timeout", &self.timeout)?;
                let quorum = match self.quorum.trim().parse::<u32>() {
                    Ok(quorum) if quorum >= 1 => quorum,
                    _ => {
                        return Err(
                            "the quorum is how many approvers must approve: a whole number, at least 1"
                                .to_owned(),
                        );
                    }
                };
                let approvals = parse_approvers(&self.approvers)?;
                if approvals.is_empty() {
                    return Err("add at least one approver, one per line".to_owned());
                }
                Ok(Some(SkaRule::new(vec![SkaToken {
                    name: name.to_owned(),
                    timelock,
                    timeout,
                    groups: vec![SkaGroup::new(name, quorum, approvals)],
                }])))
            }
            _ => Err("choose how the rule is decided".to_owned()),
        }
    }
}

/// Minutes as typed (empty = 0) → seconds.
fn minutes_to_secs(field: &str, text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    text.parse::<u64>()
        .ok()
        .and_then(|minutes| minutes.checked_mul(60))
        .ok_or_else(|| format!("the {field} is a whole number of minutes (0 = none)"))
}

/// The bare base64 of a key or certificate as pasted: PEM armour and whitespace removed.
fn strip_armour(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("-----") {
        out.push_str(&rest[..start]);
        let marker = &rest[start + 5..];
        match marker.find("-----") {
            Some(end) => rest = &marker[end + 5..],
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.retain(|c| !c.is_whitespace());
    out
}

/// Whether a line without a comma continues the previous approver's value (the rest of a pasted
/// PEM block: armour or base64).
fn is_continuation(line: &str) -> bool {
    line.starts_with("-----")
        || line
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

const LINE_FORMS: &str =
    "write `name, public_key, <base64>`, `name, certificate, <base64>` or `name, onboarded`";

/// The approvers textarea: one per line, `name, public_key, <base64 SPKI>`,
/// `name, certificate, <base64 DER or PEM>` or `name, onboarded`. Blank lines are skipped; a
/// line of base64 or PEM armour continues the value above it. Errors name the line.
fn parse_approvers(text: &str) -> Result<Vec<SkaApproval>, String> {
    struct Entry {
        line: usize,
        /// The last line of its value (pasted PEM continues over several lines).
        last: usize,
        name: String,
        kind: ApproverKind,
        value: String,
    }
    let mut entries: Vec<Entry> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        let Some((name, rest)) = trimmed.split_once(',') else {
            match entries.last_mut() {
                Some(entry)
                    if entry.kind != ApproverKind::Onboarded && is_continuation(trimmed) =>
                {
                    entry.value.push_str(trimmed);
                    entry.last = line;
                    continue;
                }
                _ => return Err(format!("approvers, line {line}: {LINE_FORMS}")),
            }
        };
        let (kind, value) = rest.split_once(',').unwrap_or((rest, ""));
        let kind = match kind
            .trim()
            .to_ascii_lowercase()
            .replace([' ', '-'], "_")
            .as_str()
        {
            "public_key" => ApproverKind::PublicKey,
            "certificate" => ApproverKind::Certificate,
            "onboarded" | "onboarded_approver_certificate" => ApproverKind::Onboarded,
            other => {
                return Err(format!(
                    "approvers, line {line}: unknown approver type '{other}'; use public_key, certificate or onboarded"
                ));
            }
        };
        entries.push(Entry {
            line,
            last: line,
            name: name.trim().to_owned(),
            kind,
            value: value.to_owned(),
        });
    }
    entries
        .into_iter()
        .map(|entry| {
            let line = if entry.last > entry.line {
                format!("s {}–{}", entry.line, entry.last)
            } else {
                format!(" {}", entry.line)
            };
            let value = strip_armour(&entry.value);
            let name = Some(entry.name).filter(|name| !name.is_empty());
            match entry.kind {
                ApproverKind::Onboarded => {
                    if !value.is_empty() {
                        return Err(format!(
                            "approvers, line{line}: an onboarded approver is named only (`name, onboarded`)"
                        ));
                    }
                    name.map(SkaApproval::onboarded).ok_or_else(|| {
                        format!("approvers, line{line}: give the onboarded approver's name")
                    })
                }
                kind => {
                    let what = if kind == ApproverKind::PublicKey {
                        "public key (SPKI)"
                    } else {
                        "certificate"
                    };
                    if value.is_empty() {
                        return Err(format!(
                            "approvers, line{line}: paste the approver's {what} in base64 or PEM"
                        ));
                    }
                    if STANDARD.decode(&value).is_err() {
                        return Err(format!(
                            "approvers, line{line}: the {what} is not valid base64"
                        ));
                    }
                    match (kind, name) {
                        (ApproverKind::PublicKey, name) => {
                            Ok(SkaApproval::public_key(name, value))
                        }
                        (_, Some(name)) => Ok(SkaApproval::certificate(name, value)),
                        (_, None) => Err(format!(
                            "approvers, line{line}: a certificate approver needs a name"
                        )),
                    }
                }
            }
        })
        .collect()
}

/// The simple form: one part per rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PolicyForm {
    rules: Vec<RuleForm>,
}

impl PolicyForm {
    /// The form showing `policy`, if every rule fits it.
    fn of(policy: &SkaPolicy) -> Option<Self> {
        SkaAction::ALL
            .iter()
            .map(|action| RuleForm::of(*action, policy.rule(*action)))
            .collect::<Option<Vec<_>>>()
            .map(|rules| Self { rules })
    }

    fn from_pairs(pairs: &[(String, String)]) -> Self {
        Self {
            rules: SkaAction::ALL
                .iter()
                .map(|action| RuleForm::from_pairs(*action, pairs))
                .collect(),
        }
    }

    /// The policy described, or the first thing to correct (also noted on its rule).
    fn build_policy(&mut self) -> Result<SkaPolicy, String> {
        let mut policy = SkaPolicy::empty();
        for rule in &mut self.rules {
            match rule.to_rule() {
                Ok(built) => policy = policy.with_rule(rule.action, built),
                Err(message) => {
                    let message = format!("{} rule: {message}", rule.title);
                    rule.error = Some(message.clone());
                    return Err(message);
                }
            }
        }
        Ok(policy)
    }

    /// Notes a refusal on the rule its domain path names (`ruleBlock.tokens[0]...`).
    fn note(&mut self, message: &str) {
        if let Some(rule) = self
            .rules
            .iter_mut()
            .find(|rule| message.starts_with(rule.action.rule_name()))
        {
            rule.error = Some(message.to_owned());
        }
    }
}

// ----- the JSON editor -----

/// A policy as the TSB spells it, indented.
fn policy_json(policy: &SkaPolicy) -> String {
    serde_json::to_string_pretty(policy).unwrap_or_default()
}

/// The posted JSON as a policy, or why not.
fn parse_policy_json(text: &str) -> Result<SkaPolicy, String> {
    serde_json::from_str::<SkaPolicy>(text)
        .map_err(|error| format!("The JSON is not an SKA policy: {error}"))
}

// ----- the page -----

/// The editor's state: from the current policy, or as a refused submission left it.
struct EditorView {
    /// The simple form, when the policy's shape fits it.
    simple: Option<PolicyForm>,
    json: String,
    reason: String,
    simple_error: Option<String>,
    json_error: Option<String>,
    /// Whether the JSON editor is expanded (a refused JSON submission, or no simple form).
    json_open: bool,
    /// Names the HSM's approver management knows, as a hint.
    onboarded: Vec<String>,
}

/// What was submitted through which editor.
enum Submitted {
    Simple(PolicyForm),
    Json(String),
}

/// A refused submission to show again: what was entered, and why it was refused.
struct Attempt {
    submitted: Submitted,
    reason: String,
    message: String,
}

#[derive(Template)]
#[template(path = "pages/key_policy.html")]
struct PolicyPage {
    layout: Layout,
    label: String,
    key_href: String,
    policy_href: String,
    state: &'static str,
    /// Why the key has no (editable) policy, when it has none or it is fixed.
    explanation: Option<&'static str>,
    blocked: bool,
    rules: Vec<RuleView>,
    requests: Vec<RequestView>,
    can_cancel: bool,
    editor: Option<EditorView>,
}

/// Why a key's policy cannot be shown or changed, if so.
fn explanation(key: &KeyDetail) -> Option<&'static str> {
    match (key.summary.state, &key.policy, key.summary.has_policy) {
        (KeyState::Destroyed, _, _) => {
            Some("The key is destroyed: its material is gone from the HSM, and its policy with it.")
        }
        (KeyState::Compromised, _, _) => Some(
            "The key is compromised: its policy is fixed for good (unblocking is frozen), so it can no longer be changed.",
        ),
        (_, None, Some(false)) => Some(
            "This is a plain key: it was created without an SKA policy, and the HSM can never give it one. Create a new key to have its use governed by approvals.",
        ),
        (_, None, _) => Some("The HSM did not report the key's policy just now."),
        _ => None,
    }
}

/// The message after a redirect (`?policy=applied|requested|withdrawn`); a request id is shown
/// only when it names a request of this key.
fn outcome_notice(req: &Request, key: &KeyDetail) -> Option<String> {
    match viewer::query_param(req, "policy")?.as_str() {
        "applied" => Some("Policy applied.".to_owned()),
        "withdrawn" => Some("Request withdrawn.".to_owned()),
        "requested" => {
            let id = viewer::query_param(req, "request")?;
            key.pending
                .iter()
                .find(|p| p.request_id == id && matches!(p.change, PendingChange::Policy { .. }))
                .map(|p| format!("The change waits for approvals (request {}).", p.request_id))
        }
        _ => None,
    }
}

async fn policy_page(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    label: &str,
    attempt: Option<Attempt>,
    refusal: Option<(StatusCode, String)>,
) -> Response {
    let Some(tenant) = viewer.tenant().cloned() else {
        return errors::forbidden(viewer, req);
    };
    let rid = http::request_id(req);
    let app = &console.app;
    let key = match app.get_key(&viewer.caller, &rid, &tenant, label).await {
        Ok(key) => key,
        Err(error) => return errors::app_error(viewer, req, &error),
    };
    let mut layout = viewer.layout(
        PageMeta::new("keys", "Keys", format!("Policy of {}", key.summary.label))
            .subtitle("SKA rules: who has to approve what before the HSM does it"),
        req,
    );
    if let Some(message) = outcome_notice(req, &key) {
        layout.notice("success", message);
    }
    let requests = match app.key_requests(&viewer.caller, &rid, &tenant, label).await {
        Ok(requests) => requests,
        Err(error) => {
            layout.notice(
                "warning",
                format!("The key's approval requests could not be read: {error}"),
            );
            Vec::new()
        }
    };
    let explanation = explanation(&key);
    let editor = match (&key.policy, explanation) {
        (Some(policy), None) if viewer.may(Action::EditKeyPolicy, Some(&tenant)) => {
            let onboarded = app
                .onboarded_approvers(&viewer.caller, &rid, &tenant)
                .await
                .map(|list| list.into_iter().map(|a| a.name).collect())
                .unwrap_or_default();
            let current_json = policy_json(policy);
            let mut editor = EditorView {
                simple: PolicyForm::of(policy),
                json: current_json,
                reason: String::new(),
                simple_error: None,
                json_error: None,
                json_open: false,
                onboarded,
            };
            if let Some(attempt) = attempt {
                editor.reason = attempt.reason;
                match attempt.submitted {
                    Submitted::Simple(form) => {
                        editor.simple = Some(form);
                        editor.simple_error = Some(attempt.message);
                    }
                    Submitted::Json(json) => {
                        editor.json = json;
                        editor.json_error = Some(attempt.message);
                        editor.json_open = true;
                    }
                }
            }
            editor.json_open |= editor.simple.is_none();
            Some(editor)
        }
        _ => None,
    };
    let status = match refusal {
        Some((status, message)) => {
            layout.notice("error", message);
            status
        }
        None => StatusCode::OK,
    };
    let page = PolicyPage {
        layout,
        key_href: format!("/keys/{}", encode(&key.summary.label)),
        policy_href: policy_href(&key.summary.label),
        state: key.summary.state.as_str(),
        explanation,
        blocked: key.policy.as_ref().is_some_and(|p| p.key_status.blocked),
        rules: key
            .policy
            .as_ref()
            .map(|policy| {
                SkaAction::ALL
                    .iter()
                    .map(|action| rule_view(*action, policy.rule(*action)))
                    .collect()
            })
            .unwrap_or_default(),
        requests: requests
            .iter()
            .map(|progress| request_view(&key.summary.label, progress))
            .collect(),
        can_cancel: viewer.may(Action::CancelApprovalRequest, Some(&tenant)),
        editor,
        label: key.summary.label,
    };
    http::html(status, &page)
}

/// `GET /keys/{label}/policy`.
#[handler]
pub(crate) async fn show_policy(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(label): Path<String>,
) -> Response {
    match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => policy_page(&console, &viewer, req, &label, None, None).await,
        Err(response) => response,
    }
}

/// A refusal the person can act on in the form: the App's message.
fn explainable(error: &AppError) -> Option<StatusCode> {
    match error {
        AppError::InvalidInput { .. } => Some(StatusCode::UNPROCESSABLE_ENTITY),
        AppError::Conflict { .. } => Some(StatusCode::CONFLICT),
        _ => None,
    }
}

/// `POST /keys/{label}/policy`: replaces the policy from the simple form (`editor=form`) or the
/// JSON (`editor=json`); a refusal shows the form again with what was entered.
#[handler]
pub(crate) async fn update_policy(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(label): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_default()
    };
    let viewer = match form_viewer(&console, req, get("csrf")).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let Some(tenant) = viewer.tenant().cloned() else {
        return errors::forbidden(&viewer, req);
    };
    let reason = get("reason").trim().to_owned();
    let (policy, submitted) = if get("editor") == "json" {
        let json = get("policy_json").to_owned();
        (parse_policy_json(&json), Submitted::Json(json))
    } else {
        let mut form = PolicyForm::from_pairs(&pairs);
        (form.build_policy(), Submitted::Simple(form))
    };
    let mut attempt = Attempt {
        submitted,
        reason,
        message: String::new(),
    };
    let policy = match policy {
        Ok(policy) => policy,
        Err(message) => {
            if !viewer.may(Action::EditKeyPolicy, Some(&tenant)) {
                return errors::forbidden(&viewer, req);
            }
            attempt.message = message;
            let refusal = (
                StatusCode::UNPROCESSABLE_ENTITY,
                "The policy was not changed; correct the form below.".to_owned(),
            );
            return policy_page(&console, &viewer, req, &label, Some(attempt), Some(refusal)).await;
        }
    };
    let update = PolicyUpdate {
        policy,
        reason: Some(attempt.reason.clone()).filter(|reason| !reason.is_empty()),
        version: None,
    };
    let result = console
        .app
        .update_key_policy(
            &viewer.caller,
            &http::request_id(req),
            &tenant,
            &label,
            update,
        )
        .await;
    match result {
        Ok(detail) => {
            let href = policy_href(&detail.summary.label);
            let waiting = detail
                .pending
                .iter()
                .find(|p| matches!(p.change, PendingChange::Policy { .. }));
            let target = match waiting {
                Some(request) => format!(
                    "{href}?policy=requested&request={}{TO_NOTICES}",
                    encode(&request.request_id)
                ),
                None => format!("{href}?policy=applied{TO_NOTICES}"),
            };
            http::redirect(&target, &[])
        }
        Err(error) => match explainable(&error) {
            Some(status) => {
                attempt.message = error.to_string();
                if let Submitted::Simple(form) = &mut attempt.submitted {
                    form.note(&attempt.message);
                }
                let refusal = (status, "The policy was not changed.".to_owned());
                policy_page(&console, &viewer, req, &label, Some(attempt), Some(refusal)).await
            }
            None => errors::app_error(&viewer, req, &error),
        },
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CancelForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /keys/{label}/requests/{request_id}/cancel`: withdraws a request of the key.
#[handler]
pub(crate) async fn cancel_request(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path((label, request_id)): Path<(String, String)>,
    Form(form): Form<CancelForm>,
) -> Response {
    let viewer = match form_viewer(&console, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let Some(tenant) = viewer.tenant().cloned() else {
        return errors::forbidden(&viewer, req);
    };
    let result = console
        .app
        .cancel_key_request(
            &viewer.caller,
            &http::request_id(req),
            &tenant,
            &label,
            &request_id,
        )
        .await;
    match result {
        Ok(detail) => http::redirect(
            &format!(
                "{}?policy=withdrawn{TO_NOTICES}",
                policy_href(&detail.summary.label)
            ),
            &[],
        ),
        Err(error) => match explainable(&error) {
            Some(status) => {
                let refusal = (status, error.to_string());
                policy_page(&console, &viewer, req, &label, None, Some(refusal)).await
            }
            None => errors::app_error(&viewer, req, &error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPKI: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEq7BFUpkGp3+LQmlQYGmqO1xDSdzvSr9aJQnpHmGAfBJLqb3DMFTMfcFYb7TXtfAYQt8iEXGGm5r4HqdeF6XKzA==";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn fingerprints_are_the_cores_short_prefix() {
        // SHA-256("abc") starts ba7816bf8f01cfea; the value is base64 of "abc".
        assert_eq!(short_fingerprint("YWJj"), "ba7816bf8f01cfea");
    }

    #[test]
    fn approver_lines_of_every_kind_are_read() {
        let text = format!(
            "alice, public_key, {SPKI}\n\n  bob , certificate, QUJD\ncarol@example.com, onboarded\n, public key, {SPKI}x"
        );
        let error = parse_approvers(&text).unwrap_err();
        assert!(error.contains("line 5"), "{error}");
        let text = format!(
            "alice, public_key, {SPKI}\n\n  bob , certificate, QUJD\ncarol@example.com, Onboarded"
        );
        let approvals = parse_approvers(&text).unwrap();
        assert_eq!(
            approvals,
            vec![
                SkaApproval::public_key(Some("alice".to_owned()), SPKI),
                SkaApproval::certificate("bob", "QUJD"),
                SkaApproval::onboarded("carol@example.com"),
            ]
        );
        let nameless = parse_approvers(&format!(", public_key, {SPKI}")).unwrap();
        assert_eq!(nameless, vec![SkaApproval::public_key(None, SPKI)]);
    }

    #[test]
    fn pem_armour_and_whitespace_are_stripped() {
        let (head, tail) = SPKI.split_at(40);
        let pasted = format!(
            "alice, public_key, -----BEGIN PUBLIC KEY-----\n{head}\n  {tail}\n-----END PUBLIC KEY-----\nbob, certificate, -----BEGIN CERTIFICATE----- QU JD -----END CERTIFICATE-----"
        );
        let approvals = parse_approvers(&pasted).unwrap();
        assert_eq!(
            approvals,
            vec![
                SkaApproval::public_key(Some("alice".to_owned()), SPKI),
                SkaApproval::certificate("bob", "QUJD"),
            ]
        );
        assert_eq!(
            strip_armour("-----BEGIN X-----\r\nQU\tJD\n-----END X-----"),
            "QUJD"
        );
    }

    #[test]
    fn bad_approver_lines_are_named_by_line() {
        let cases = [
            ("alice public key", "line 1: write"),
            (
                "\nalice, fingerprint, QUJD",
                "line 2: unknown approver type 'fingerprint'",
            ),
            (
                "alice, public_key",
                "line 1: paste the approver's public key",
            ),
            (
                "alice, public_key, not base64!",
                "line 1: the public key (SPKI) is not valid base64",
            ),
            (
                ", certificate, QUJD",
                "line 1: a certificate approver needs a name",
            ),
            (
                "x, onboarded\n\n\nbob, onboarded, QUJD",
                "line 4: an onboarded approver is named only",
            ),
            (", onboarded", "line 1: give the onboarded approver's name"),
            ("carol, onboarded\nQUJD", "line 2: write"),
        ];
        for (text, expected) in cases {
            let error = parse_approvers(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn minutes_become_seconds() {
        assert_eq!(minutes_to_secs("timelock", ""), Ok(0));
        assert_eq!(minutes_to_secs("timelock", " 5 "), Ok(300));
        assert!(
            minutes_to_secs("timeout", "1.5")
                .unwrap_err()
                .contains("timeout")
        );
        assert!(minutes_to_secs("timeout", "-1").is_err());
        assert!(minutes_to_secs("timeout", &u64::MAX.to_string()).is_err());
    }

    #[test]
    fn the_simple_form_builds_the_policy_and_round_trips() {
        let mut form = PolicyForm::from_pairs(&pairs(&[
            ("use_mode", "none"),
            ("block_mode", "approvals"),
            ("block_token", "security"),
            ("block_timelock", "2"),
            ("block_timeout", "60"),
            ("block_quorum", "1"),
            ("block_approvers", &format!("alice, public_key, {SPKI}")),
            ("unblock_mode", "frozen"),
            ("modify_mode", "none"),
        ]));
        let policy = form.build_policy().unwrap();
        policy.validate().unwrap();
        assert_eq!(policy.rule_use, None);
        assert_eq!(policy.rule_unblock, Some(SkaRule::frozen()));
        let block = policy.rule_block.clone().unwrap();
        assert_eq!(block.tokens.len(), 1);
        assert_eq!(block.tokens[0].timelock, 120);
        assert_eq!(block.tokens[0].timeout, 3600);
        assert_eq!(block.tokens[0].groups[0].quorum, 1);
        // Shown again, the form reads the same.
        let mut shown = PolicyForm::of(&policy).unwrap();
        assert_eq!(shown.rules[1].mode, "approvals");
        assert_eq!(shown.rules[1].timelock, "2");
        assert_eq!(shown.rules[2].mode, "frozen");
        assert_eq!(shown.build_policy().unwrap(), policy);
    }

    #[test]
    fn form_errors_name_the_rule() {
        let mut form = PolicyForm::from_pairs(&pairs(&[
            ("use_mode", "frozen"),
            ("block_mode", "none"),
            ("unblock_mode", "none"),
            ("modify_mode", "none"),
        ]));
        let error = form.build_policy().unwrap_err();
        assert!(
            error.starts_with("Use rule: the use rule cannot be frozen"),
            "{error}"
        );
        assert_eq!(form.rules[0].error.as_deref(), Some(error.as_str()));
        let mut form = PolicyForm::from_pairs(&pairs(&[
            ("use_mode", "none"),
            ("block_mode", "approvals"),
            ("block_token", "t"),
            ("block_quorum", "1"),
            ("block_approvers", "alice, public_key, QUJD\nbob"),
        ]));
        let error = form.build_policy().unwrap_err();
        assert!(
            error.starts_with("Block rule: approvers, lines 1–2: the public key"),
            "{error}"
        );
        let mut form = PolicyForm::from_pairs(&pairs(&[
            ("use_mode", "none"),
            ("block_mode", "approvals"),
            ("block_token", "t"),
            ("block_quorum", "0"),
        ]));
        assert!(form.build_policy().unwrap_err().contains("quorum"));
        // A refusal from the domain lands on the rule its path names.
        form.note("ruleBlock.tokens[0].groups[0]: quorum 2 but 1 approver");
        assert!(
            form.rules[1]
                .error
                .as_deref()
                .unwrap()
                .starts_with("ruleBlock")
        );
    }

    #[test]
    fn shapes_the_simple_form_cannot_show_are_left_to_json() {
        let a = SkaApproval::public_key(Some("a".to_owned()), SPKI);
        let two_tokens = SkaRule::new(vec![
            SkaToken::new("one", vec![SkaGroup::new("one", 1, vec![a.clone()])]),
            SkaToken::new("two", vec![SkaGroup::new("two", 1, vec![a.clone()])]),
        ]);
        let policy = SkaPolicy::empty().with_rule(SkaAction::Modify, Some(two_tokens));
        assert_eq!(PolicyForm::of(&policy), None);
        let odd_group = SkaRule::new(vec![SkaToken::new(
            "t",
            vec![SkaGroup::new("g", 1, vec![a])],
        )]);
        let policy = SkaPolicy::empty().with_rule(SkaAction::Use, Some(odd_group));
        assert_eq!(PolicyForm::of(&policy), None);
        assert!(PolicyForm::of(&SkaPolicy::empty()).is_some());
    }

    #[test]
    fn the_json_editor_round_trips_the_tsb_form() {
        let policy = SkaPolicy::empty().with_rule(
            SkaAction::Block,
            Some(SkaRule::quorum("b", 1, vec![SkaApproval::onboarded("x")])),
        );
        let json = policy_json(&policy);
        assert!(json.contains("\"ruleBlock\": {\n"), "{json}");
        assert!(json.contains("\"ruleUse\": null"), "{json}");
        assert_eq!(parse_policy_json(&json).unwrap(), policy);
        assert!(parse_policy_json("{").is_err());
    }

    #[test]
    fn rules_read_in_words() {
        assert_eq!(rule_view(SkaAction::Use, None).kind, "none");
        assert_eq!(
            rule_view(SkaAction::Unblock, Some(&SkaRule::frozen())).kind,
            "frozen"
        );
        let rule = SkaRule::quorum(
            "ops",
            2,
            vec![
                SkaApproval::public_key(Some("alice".to_owned()), "YWJj"),
                SkaApproval::onboarded("bob"),
                SkaApproval::certificate("carol", "QUJD"),
            ],
        );
        let view = rule_view(SkaAction::Block, Some(&rule));
        assert_eq!(view.kind, "tokens");
        let group = &view.tokens[0].groups[0];
        assert_eq!(group.quorum, "2 of 3 approve");
        assert_eq!(group.approvers[0].fingerprint, "ba7816bf8f01cfea");
        assert_eq!(group.approvers[1].fingerprint, "");
        assert_eq!(view.tokens[0].timelock, "none");
        assert_eq!(minutes_text(60), "1 minute");
        assert_eq!(minutes_text(300), "5 minutes");
    }
}
