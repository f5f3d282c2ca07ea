//! How the console draws and collects the single-sign-on configuration for the operator pages:
//! the provider form (presets by kind, client, claims, allowed groups and the mapping table), the
//! providers list, and the mapping preview with the partitions' names and colours.
//!
//! The client secret is read straight into a [`FormSecret`] and no view has a place for it, so a
//! re-rendered form can never echo it. Which values are acceptable is the App's decision
//! (`SsoConfig::validate`); this module only turns form fields into the configuration and
//! explains what it cannot read.

use std::collections::BTreeMap;

use km_core::{
    PartitionRecord, SecretText, SsoProviderConfig, SsoProviderKind, SsoProviderSettings,
};
use km_domain::{ClaimKind, MappingDecision, MappingRule, Role, SsoMapping, TenantScope};
use serde::Deserialize;

use crate::pages::users::parse_role;
use crate::partitions::{FormSecret, swatch_svg};

/// The kinds the form offers: (kind, label).
const KINDS: [(SsoProviderKind, &str); 4] = [
    (SsoProviderKind::Oidc, "OpenID Connect"),
    (SsoProviderKind::EntraId, "Microsoft Entra ID"),
    (SsoProviderKind::Keycloak, "Keycloak"),
    (SsoProviderKind::Github, "GitHub"),
];
/// The claims a mapping rule can match: (form value, label).
const CLAIMS: [(ClaimKind, &str); 2] = [(ClaimKind::Group, "Group"), (ClaimKind::Role, "Role")];

const ENTRA_ISSUER_PREFIX: &str = "https://login.microsoftonline.com/";
const ENTRA_ISSUER_SUFFIX: &str = "/v2.0";
const KEYCLOAK_REALMS: &str = "/realms/";
/// GitHub's web base, the issuer of the GitHub kind unless a GitHub Enterprise Server is named.
const GITHUB_URL: &str = "https://github.com";
/// Empty mapping rows under the rules: without JavaScript, the way to add rules.
const BLANK_ROWS: usize = 3;
/// Most lines read from a text area (allowed groups, preview claims).
const MAX_LINES: usize = 500;
/// Most mapping rows read from one form.
const MAX_ROWS: usize = 500;

/// The name of a kind in lists and forms.
pub(crate) fn kind_label(kind: SsoProviderKind) -> &'static str {
    KINDS
        .iter()
        .find(|(candidate, _)| *candidate == kind)
        .map_or("", |(_, label)| label)
}

fn parse_kind(text: &str) -> Option<SsoProviderKind> {
    KINDS
        .iter()
        .map(|(kind, _)| *kind)
        .find(|kind| kind.as_str() == text)
}

fn parse_claim(text: &str) -> Option<ClaimKind> {
    CLAIMS
        .iter()
        .map(|(claim, _)| *claim)
        .find(|claim| claim_name(*claim) == text)
}

fn claim_name(claim: ClaimKind) -> &'static str {
    match claim {
        ClaimKind::Group => "group",
        ClaimKind::Role => "role",
    }
}

/// Whether `text` has the shape of a provider id (1–32 of a-z, 0-9 and `-`, starting with a
/// letter), so it can be put into a URL as it is. The App decides whether it exists.
pub(crate) fn is_provider_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 32
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The non-empty lines of a text area, trimmed, each once, in order (at most [`MAX_LINES`]).
pub(crate) fn lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        if out.len() == MAX_LINES {
            break;
        }
        if !out.iter().any(|seen| seen == line) {
            out.push(line.to_owned());
        }
    }
    out
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim())
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

fn entra_issuer(tenant: &str) -> String {
    format!("{ENTRA_ISSUER_PREFIX}{tenant}{ENTRA_ISSUER_SUFFIX}")
}

fn keycloak_issuer(base: &str, realm: &str) -> String {
    format!("{base}{KEYCLOAK_REALMS}{realm}")
}

/// The helper fields that rebuild an issuer of `kind` exactly: the Entra ID directory (tenant) id,
/// the Keycloak base URL and realm. Empty where the issuer does not have that shape (it is then
/// edited as it is).
#[derive(Debug, Default)]
struct IssuerParts {
    entra_tenant: String,
    keycloak_base: String,
    keycloak_realm: String,
}

impl IssuerParts {
    fn of(kind: SsoProviderKind, issuer: &str) -> Self {
        match kind {
            SsoProviderKind::EntraId => issuer
                .strip_prefix(ENTRA_ISSUER_PREFIX)
                .and_then(|rest| rest.strip_suffix(ENTRA_ISSUER_SUFFIX))
                .filter(|tenant| valid_tenant(tenant))
                .map(|tenant| Self {
                    entra_tenant: tenant.to_owned(),
                    ..Self::default()
                })
                .unwrap_or_default(),
            SsoProviderKind::Keycloak => issuer
                .rsplit_once(KEYCLOAK_REALMS)
                .filter(|(base, realm)| !base.is_empty() && valid_realm(realm))
                .map(|(base, realm)| Self {
                    keycloak_base: base.to_owned(),
                    keycloak_realm: realm.to_owned(),
                    ..Self::default()
                })
                .unwrap_or_default(),
            SsoProviderKind::Oidc | SsoProviderKind::Github => Self::default(),
        }
    }

    fn rebuilds_issuer(&self) -> bool {
        !self.entra_tenant.is_empty() || !self.keycloak_realm.is_empty()
    }
}

/// An Entra ID directory id: a GUID or a verified domain name.
fn valid_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant.len() <= 128
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
}

/// A Keycloak realm name as it appears in a URL path segment.
fn valid_realm(realm: &str) -> bool {
    !realm.is_empty()
        && realm.len() <= 255
        && !realm
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '%'))
}

/// One mapping row as submitted (`rule_claim_<n>`, `rule_value_<n>`, `rule_scope_<n>`,
/// `rule_role_<n>`, `rule_remove_<n>`).
#[derive(Debug, Default, Clone)]
struct RowInput {
    claim: String,
    value: String,
    scope: String,
    role: String,
    remove: bool,
}

impl RowInput {
    fn blank(&self) -> bool {
        self.value.trim().is_empty()
    }

    /// The rule of this row (`number` names it in messages); `None` when it is empty or removed.
    fn rule(&self, number: usize) -> Result<Option<MappingRule>, String> {
        if self.remove || self.blank() {
            return Ok(None);
        }
        let claim = parse_claim(&self.claim)
            .ok_or_else(|| format!("Mapping rule {number}: choose group or role."))?;
        if self.scope.is_empty() {
            return Err(format!(
                "Mapping rule {number}: choose the partition it grants a role on."
            ));
        }
        let scope = TenantScope::parse(&self.scope)
            .map_err(|invalid| format!("Mapping rule {number}: {invalid}."))?;
        let role = parse_role(&self.role)
            .ok_or_else(|| format!("Mapping rule {number}: choose admin, user or readonly."))?;
        Ok(Some(MappingRule {
            claim,
            value: self.value.trim().to_owned(),
            scope,
            role,
        }))
    }
}

/// The provider form as submitted. The mapping rows arrive as numbered fields, collected by
/// `rows` and put in order by [`ProviderInput::row_inputs`].
#[derive(Debug, Deserialize)]
pub(crate) struct ProviderInput {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    issuer_url: String,
    #[serde(default)]
    entra_tenant: String,
    #[serde(default)]
    keycloak_base: String,
    #[serde(default)]
    keycloak_realm: String,
    #[serde(default)]
    github_url: String,
    #[serde(default)]
    api_url: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: FormSecret,
    #[serde(default)]
    extra_scopes: String,
    #[serde(default)]
    groups_claim: String,
    #[serde(default)]
    roles_claim: String,
    #[serde(default)]
    enabled: String,
    #[serde(default)]
    allowed_groups: String,
    #[serde(flatten)]
    rows: BTreeMap<String, String>,
}

impl ProviderInput {
    /// The id typed into a new provider's form.
    pub fn id(&self) -> &str {
        self.id.trim()
    }

    /// The client secret typed (blank = keep the stored one); taken out of the form.
    pub fn take_secret(&mut self) -> Option<SecretText> {
        std::mem::take(&mut self.client_secret).take()
    }

    /// The mapping rows in the order of their numbers.
    fn row_inputs(&self) -> Vec<RowInput> {
        let mut rows: BTreeMap<usize, RowInput> = BTreeMap::new();
        for (name, value) in &self.rows {
            let Some((field, number)) = name
                .strip_prefix("rule_")
                .and_then(|rest| rest.split_once('_'))
            else {
                continue;
            };
            let Ok(number) = number.parse::<usize>() else {
                continue;
            };
            if rows.len() >= MAX_ROWS && !rows.contains_key(&number) {
                continue;
            }
            let row = rows.entry(number).or_default();
            match field {
                "claim" => row.claim = value.clone(),
                "value" => row.value = value.clone(),
                "scope" => row.scope = value.clone(),
                "role" => row.role = value.clone(),
                "remove" => row.remove = !value.is_empty(),
                _ => {}
            }
        }
        rows.into_values().collect()
    }

    /// The issuer URL the fields of the chosen kind give.
    fn issuer(&self, kind: SsoProviderKind) -> Result<String, String> {
        let typed = optional(&self.issuer_url);
        match kind {
            SsoProviderKind::Oidc => typed.ok_or_else(|| "Enter the issuer URL.".to_owned()),
            SsoProviderKind::EntraId => match optional(&self.entra_tenant) {
                Some(tenant) if valid_tenant(&tenant) => Ok(entra_issuer(&tenant)),
                Some(_) => Err(
                    "The directory (tenant) id is a GUID or a domain name (letters, digits, dots and dashes)."
                        .to_owned(),
                ),
                None => typed.ok_or_else(|| {
                    "Enter the directory (tenant) id, or the issuer URL.".to_owned()
                }),
            },
            SsoProviderKind::Keycloak => {
                let base = optional(&self.keycloak_base)
                    .map(|base| base.trim_end_matches('/').to_owned());
                let realm = optional(&self.keycloak_realm);
                match (base, realm) {
                    (None, None) => typed.ok_or_else(|| {
                        "Enter the Keycloak base URL and realm, or the issuer URL.".to_owned()
                    }),
                    (Some(base), Some(realm)) if valid_realm(&realm) => {
                        Ok(keycloak_issuer(&base, &realm))
                    }
                    (Some(_), Some(_)) => Err(
                        "The realm is its name as in the Keycloak URL: no slashes, spaces, ? or #."
                            .to_owned(),
                    ),
                    _ => Err("Enter both the Keycloak base URL and the realm.".to_owned()),
                }
            }
            SsoProviderKind::Github => {
                Ok(optional(&self.github_url).unwrap_or_else(|| GITHUB_URL.to_owned()))
            }
        }
    }

    /// The provider `id` as configured by this form, or what to fix.
    pub fn provider(&self, id: &str) -> Result<SsoProviderConfig, String> {
        if !is_provider_id(id) {
            return Err(
                "The provider id: 1 to 32 lowercase letters, digits and dashes, starting with a letter."
                    .to_owned(),
            );
        }
        let kind =
            parse_kind(&self.kind).ok_or_else(|| "Choose the kind of provider.".to_owned())?;
        let mut extra_scopes: Vec<String> = Vec::new();
        for scope in self
            .extra_scopes
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|scope| !scope.is_empty())
        {
            if !extra_scopes.iter().any(|seen| seen == scope) {
                extra_scopes.push(scope.to_owned());
            }
        }
        let settings = SsoProviderSettings {
            id: id.to_owned(),
            display_name: self.display_name.trim().to_owned(),
            kind,
            issuer_url: self.issuer(kind)?,
            api_url: optional(&self.api_url).filter(|_| kind == SsoProviderKind::Github),
            client_id: self.client_id.trim().to_owned(),
            extra_scopes,
            groups_claim: optional(&self.groups_claim),
            roles_claim: optional(&self.roles_claim),
        };
        let mut rules = Vec::new();
        for (index, row) in self.row_inputs().iter().enumerate() {
            if let Some(rule) = row.rule(index + 1)? {
                rules.push(rule);
            }
        }
        Ok(SsoProviderConfig {
            settings,
            enabled: !self.enabled.is_empty(),
            mapping: SsoMapping {
                allowed_group_ids: lines(&self.allowed_groups),
                rules,
            },
        })
    }

    /// The form again with what was submitted (the secret left out), for a correction.
    pub fn form(&self, id: &str, is_new: bool, secret_stored: bool) -> ProviderForm {
        let rows = self
            .row_inputs()
            .into_iter()
            .filter(|row| !row.remove)
            .map(|row| RuleRow::new(row.claim, row.value, row.scope, row.role, false))
            .collect();
        ProviderForm {
            is_new,
            id: id.to_owned(),
            display_name: self.display_name.clone(),
            kind: parse_kind(&self.kind).map_or("oidc", SsoProviderKind::as_str),
            issuer_url: self.issuer_url.clone(),
            current_issuer: String::new(),
            entra_tenant: self.entra_tenant.clone(),
            keycloak_base: self.keycloak_base.clone(),
            keycloak_realm: self.keycloak_realm.clone(),
            github_url: self.github_url.clone(),
            api_url: self.api_url.clone(),
            client_id: self.client_id.clone(),
            secret_stored,
            extra_scopes: self.extra_scopes.clone(),
            groups_claim: self.groups_claim.clone(),
            roles_claim: self.roles_claim.clone(),
            enabled: !self.enabled.is_empty(),
            allowed_groups: self.allowed_groups.clone(),
            rows,
            scopes: Vec::new(),
            error: None,
        }
        .padded()
    }
}

/// A radio button of the kind choice.
#[derive(Debug)]
pub(crate) struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

/// An option of a mapping row's partition select.
#[derive(Debug)]
pub(crate) struct ScopeOption {
    pub value: String,
    pub label: String,
}

impl ScopeOption {
    /// "Choose a partition", the registered partitions, the partitions that `rules` name but
    /// that are not registered (any more), and `*`.
    pub fn list(partitions: &[PartitionRecord], rules: &[RuleRow]) -> Vec<Self> {
        let mut options = vec![Self {
            value: String::new(),
            label: "Choose a partition…".to_owned(),
        }];
        for partition in partitions {
            options.push(Self {
                value: partition.id.as_str().to_owned(),
                label: format!("{} ({})", partition.display_name, partition.id),
            });
        }
        for row in rules {
            let known = row.scope.is_empty()
                || row.scope == TenantScope::ALL_TENANTS
                || options.iter().any(|option| option.value == row.scope);
            if !known {
                options.push(Self {
                    value: row.scope.clone(),
                    label: format!("{} (not registered)", row.scope),
                });
            }
        }
        options.push(Self {
            value: TenantScope::ALL_TENANTS.to_owned(),
            label: "All partitions (*): platform operators".to_owned(),
        });
        options
    }
}

/// One row of the mapping table as drawn. `index` names its fields (`rule_value_<index>`);
/// the template row for JavaScript has the placeholder `__index__`.
#[derive(Debug, Clone)]
pub(crate) struct RuleRow {
    pub index: String,
    pub claim: String,
    pub value: String,
    pub scope: String,
    pub role: String,
    /// A saved rule: offered for removal (blank rows are ignored anyway).
    pub saved: bool,
}

impl RuleRow {
    fn new(claim: String, value: String, scope: String, role: String, saved: bool) -> Self {
        Self {
            index: String::new(),
            claim,
            value,
            scope,
            role,
            saved,
        }
    }

    fn blank() -> Self {
        Self::new(
            claim_name(ClaimKind::Group).to_owned(),
            String::new(),
            String::new(),
            Role::Readonly.as_str().to_owned(),
            false,
        )
    }

    fn of(rule: &MappingRule) -> Self {
        Self::new(
            claim_name(rule.claim).to_owned(),
            rule.value.clone(),
            rule.scope.to_string(),
            rule.role.as_str().to_owned(),
            true,
        )
    }

    /// The row JavaScript copies to add a rule.
    pub fn template() -> Self {
        Self {
            index: "__index__".to_owned(),
            ..Self::blank()
        }
    }

    pub fn has_claim(&self, claim: &str) -> bool {
        self.claim == claim
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope == scope
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.role == role
    }

    /// The row's number as people count (1 for the first), for labels.
    pub fn number(&self) -> String {
        self.index
            .parse::<usize>()
            .map_or_else(|_| "new".to_owned(), |index| (index + 1).to_string())
    }
}

/// What the provider form shows (pages/sso_provider.html). There is no field for the client
/// secret's value: only whether one is stored.
#[derive(Debug)]
pub(crate) struct ProviderForm {
    pub is_new: bool,
    pub id: String,
    pub display_name: String,
    /// `oidc`, `entra_id`, `keycloak` or `github`.
    pub kind: &'static str,
    pub issuer_url: String,
    /// The saved issuer, when the kind's helper fields show it instead of `issuer_url`.
    pub current_issuer: String,
    pub entra_tenant: String,
    pub keycloak_base: String,
    pub keycloak_realm: String,
    pub github_url: String,
    pub api_url: String,
    pub client_id: String,
    pub secret_stored: bool,
    pub extra_scopes: String,
    pub groups_claim: String,
    pub roles_claim: String,
    pub enabled: bool,
    pub allowed_groups: String,
    pub rows: Vec<RuleRow>,
    pub scopes: Vec<ScopeOption>,
    pub error: Option<String>,
}

impl ProviderForm {
    /// A new provider: OpenID Connect, enabled, no rules yet.
    pub fn blank() -> Self {
        Self {
            is_new: true,
            id: String::new(),
            display_name: String::new(),
            kind: SsoProviderKind::Oidc.as_str(),
            issuer_url: String::new(),
            current_issuer: String::new(),
            entra_tenant: String::new(),
            keycloak_base: String::new(),
            keycloak_realm: String::new(),
            github_url: GITHUB_URL.to_owned(),
            api_url: String::new(),
            client_id: String::new(),
            secret_stored: false,
            extra_scopes: String::new(),
            groups_claim: String::new(),
            roles_claim: String::new(),
            enabled: true,
            allowed_groups: String::new(),
            rows: Vec::new(),
            scopes: Vec::new(),
            error: None,
        }
        .padded()
    }

    /// A configured provider.
    pub fn of(provider: &SsoProviderConfig, secret_stored: bool) -> Self {
        let s = &provider.settings;
        let parts = IssuerParts::of(s.kind, &s.issuer_url);
        let github = s.kind == SsoProviderKind::Github;
        let (issuer_url, current_issuer) = if github {
            (String::new(), String::new())
        } else if parts.rebuilds_issuer() {
            (String::new(), s.issuer_url.clone())
        } else {
            (s.issuer_url.clone(), String::new())
        };
        Self {
            is_new: false,
            id: s.id.clone(),
            display_name: s.display_name.clone(),
            kind: s.kind.as_str(),
            issuer_url,
            current_issuer,
            entra_tenant: parts.entra_tenant,
            keycloak_base: parts.keycloak_base,
            keycloak_realm: parts.keycloak_realm,
            github_url: if github {
                s.issuer_url.clone()
            } else {
                GITHUB_URL.to_owned()
            },
            api_url: s.api_url.clone().unwrap_or_default(),
            client_id: s.client_id.clone(),
            secret_stored,
            extra_scopes: s.extra_scopes.join(" "),
            groups_claim: s.groups_claim.clone().unwrap_or_default(),
            roles_claim: s.roles_claim.clone().unwrap_or_default(),
            enabled: provider.enabled,
            allowed_groups: provider.mapping.allowed_group_ids.join("\n"),
            rows: provider.mapping.rules.iter().map(RuleRow::of).collect(),
            scopes: Vec::new(),
            error: None,
        }
        .padded()
    }

    /// Blank rows below the rules, and every row numbered.
    fn padded(mut self) -> Self {
        let blank = self.rows.iter().filter(|row| row.value.is_empty()).count();
        for _ in blank..BLANK_ROWS {
            self.rows.push(RuleRow::blank());
        }
        for (index, row) in self.rows.iter_mut().enumerate() {
            row.index = index.to_string();
        }
        self
    }

    /// The partition choices of the mapping rows.
    pub fn with_scopes(mut self, partitions: &[PartitionRecord]) -> Self {
        self.scopes = ScopeOption::list(partitions, &self.rows);
        self
    }

    /// With an error to show at the top of the form.
    pub fn with_error(mut self, message: String) -> Self {
        self.error = Some(message);
        self
    }

    pub fn kind_choices(&self) -> Vec<Choice> {
        KINDS
            .iter()
            .map(|(kind, label)| Choice {
                value: kind.as_str(),
                label,
                checked: kind.as_str() == self.kind,
            })
            .collect()
    }

    pub fn claim_choices(&self) -> Vec<(&'static str, &'static str)> {
        CLAIMS
            .iter()
            .map(|(claim, label)| (claim_name(*claim), *label))
            .collect()
    }

    pub fn roles(&self) -> Vec<&'static str> {
        Role::ALL.iter().map(|role| role.as_str()).collect()
    }

    /// The row JavaScript copies to add a rule.
    pub fn template_row(&self) -> RuleRow {
        RuleRow::template()
    }

    /// The issuer the kind's helper fields build (what the page shows before JavaScript
    /// updates it while typing).
    pub fn built_issuer(&self) -> String {
        match self.kind {
            "entra_id" if !self.entra_tenant.trim().is_empty() => {
                entra_issuer(self.entra_tenant.trim())
            }
            "keycloak"
                if !self.keycloak_base.trim().is_empty()
                    && !self.keycloak_realm.trim().is_empty() =>
            {
                keycloak_issuer(
                    self.keycloak_base.trim().trim_end_matches('/'),
                    self.keycloak_realm.trim(),
                )
            }
            _ => String::new(),
        }
    }
}

/// A row of the providers list.
#[derive(Debug)]
pub(crate) struct ProviderRow {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub issuer: String,
    pub enabled: bool,
    pub secret_stored: bool,
}

impl ProviderRow {
    pub fn of(provider: &SsoProviderConfig, secrets: &[(String, bool)]) -> Self {
        let s = &provider.settings;
        Self {
            id: s.id.clone(),
            name: s.display_name.clone(),
            kind: kind_label(s.kind),
            issuer: s.issuer_url.clone(),
            enabled: provider.enabled,
            secret_stored: secret_stored(secrets, &s.id),
        }
    }
}

/// Whether the App reported a stored client secret for `id`.
pub(crate) fn secret_stored(secrets: &[(String, bool)], id: &str) -> bool {
    secrets
        .iter()
        .any(|(provider, stored)| provider == id && *stored)
}

/// The preview form as submitted.
#[derive(Debug, Deserialize)]
pub(crate) struct PreviewInput {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub groups: String,
    #[serde(default)]
    pub roles: String,
}

/// The preview card: the claims tried, and what a sign-in with them gets.
#[derive(Debug, Default)]
pub(crate) struct PreviewView {
    pub groups: String,
    pub roles: String,
    pub result: Option<PreviewResult>,
}

/// A binding a preview grants, with the partition as the switcher shows it.
#[derive(Debug)]
pub(crate) struct BindingView {
    pub scope: String,
    pub name: String,
    /// The partition's colour as `#rrggbb` (empty for `*` and unregistered partitions).
    pub colour: String,
    pub swatch: String,
    pub role: &'static str,
}

/// The decision of a preview.
#[derive(Debug)]
pub(crate) struct PreviewResult {
    /// `granted`, `not_in_allowed_group` or `no_partition_mapping` (the refusal reasons).
    pub outcome: &'static str,
    pub headline: &'static str,
    pub detail: &'static str,
    pub bindings: Vec<BindingView>,
    /// The rules that matched, described.
    pub matched: Vec<String>,
}

/// How a rule's scope reads: the partition's name and id, or all partitions.
fn scope_label(scope: &TenantScope, partitions: &[PartitionRecord]) -> String {
    match scope {
        TenantScope::AllTenants => "All partitions (*)".to_owned(),
        TenantScope::Tenant(tenant) => partitions
            .iter()
            .find(|partition| &partition.id == tenant)
            .map_or_else(
                || format!("{tenant} (not registered)"),
                |partition| format!("{} ({tenant})", partition.display_name),
            ),
    }
}

impl PreviewResult {
    pub fn of(
        decision: &MappingDecision,
        mapping: &SsoMapping,
        partitions: &[PartitionRecord],
    ) -> Self {
        match decision {
            MappingDecision::Granted { bindings, matched } => Self {
                outcome: "granted",
                headline: "Sign-in allowed",
                detail: "A sign-in with these claims gets these roles (the highest of the matching rules per partition).",
                bindings: bindings
                    .iter()
                    .map(|binding| {
                        let partition = match &binding.scope {
                            TenantScope::Tenant(tenant) => {
                                partitions.iter().find(|partition| &partition.id == tenant)
                            }
                            TenantScope::AllTenants => None,
                        };
                        BindingView {
                            scope: binding.scope.to_string(),
                            name: scope_label(&binding.scope, partitions),
                            colour: partition
                                .map(|p| p.colour.as_str().to_owned())
                                .unwrap_or_default(),
                            swatch: partition
                                .map(|p| swatch_svg(&p.colour, 12))
                                .unwrap_or_default(),
                            role: binding.role.as_str(),
                        }
                    })
                    .collect(),
                matched: matched
                    .iter()
                    .filter_map(|index| mapping.rules.get(*index))
                    .map(|rule| {
                        format!(
                            "{} {} → {}: {}",
                            claim_name(rule.claim),
                            rule.value,
                            scope_label(&rule.scope, partitions),
                            rule.role
                        )
                    })
                    .collect(),
            },
            MappingDecision::NotInAllowedGroup => Self::refused(
                "not_in_allowed_group",
                "Refused: not in an allowed group",
                "None of these groups is among the allowed group ids, so the sign-in is refused whatever the rules say.",
            ),
            MappingDecision::NoMatchingRule => Self::refused(
                "no_partition_mapping",
                "Refused: no partition mapping",
                "No mapping rule matches these groups and roles, so the person would have a role nowhere and the sign-in is refused.",
            ),
        }
    }

    fn refused(outcome: &'static str, headline: &'static str, detail: &'static str) -> Self {
        Self {
            outcome,
            headline,
            detail,
            bindings: Vec::new(),
            matched: Vec::new(),
        }
    }

    pub fn granted(&self) -> bool {
        self.outcome == "granted"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `body` as poem reads a posted form.
    async fn form(body: &str) -> ProviderInput {
        use poem::FromRequest as _;
        let request = poem::Request::builder()
            .method(poem::http::Method::POST)
            .content_type("application/x-www-form-urlencoded")
            .body(body.to_owned());
        let (request, mut body) = request.split();
        let poem::web::Form(input) =
            poem::web::Form::<ProviderInput>::from_request(&request, &mut body)
                .await
                .unwrap();
        input
    }

    #[tokio::test]
    async fn presets_build_the_issuer() {
        let entra = form("kind=entra_id&entra_tenant=+contoso.onmicrosoft.com+&issuer_url=ignored")
            .await
            .issuer(SsoProviderKind::EntraId)
            .unwrap();
        assert_eq!(
            entra,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"
        );
        let keycloak = form("keycloak_base=https%3A%2F%2Fkc.example%2F&keycloak_realm=corp")
            .await
            .issuer(SsoProviderKind::Keycloak)
            .unwrap();
        assert_eq!(keycloak, "https://kc.example/realms/corp");
        assert!(
            form("keycloak_base=https%3A%2F%2Fkc.example")
                .await
                .issuer(SsoProviderKind::Keycloak)
                .is_err()
        );
        assert_eq!(
            form("").await.issuer(SsoProviderKind::Github).unwrap(),
            "https://github.com"
        );
        assert!(form("").await.issuer(SsoProviderKind::Oidc).is_err());
        // A custom issuer is kept when the helper fields are empty.
        assert_eq!(
            form("issuer_url=https%3A%2F%2Flogin.microsoftonline.us%2Ft%2Fv2.0")
                .await
                .issuer(SsoProviderKind::EntraId)
                .unwrap(),
            "https://login.microsoftonline.us/t/v2.0"
        );
    }

    #[tokio::test]
    async fn rows_become_rules_in_order_and_the_secret_is_not_kept() {
        let mut input = form(
            "kind=oidc&issuer_url=http%3A%2F%2F127.0.0.1%3A1&client_id=c&client_secret=+s3cret+&enabled=on\
             &extra_scopes=groups%2C+roles+groups&allowed_groups=grp-a%0D%0A%0D%0Agrp-b%0D%0Agrp-a\
             &rule_claim_10=role&rule_value_10=KeyAdmin&rule_scope_10=%2A&rule_role_10=admin\
             &rule_claim_2=group&rule_value_2=grp-a&rule_scope_2=acme&rule_role_2=user\
             &rule_claim_3=group&rule_value_3=old&rule_scope_3=acme&rule_role_3=user&rule_remove_3=on\
             &rule_claim_4=group&rule_value_4=&rule_scope_4=&rule_role_4=readonly",
        )
        .await;
        assert!(!format!("{input:?}").contains("s3cret"));
        let provider = input.provider("corp").unwrap();
        assert!(provider.enabled);
        assert_eq!(provider.settings.extra_scopes, ["groups", "roles"]);
        assert_eq!(provider.mapping.allowed_group_ids, ["grp-a", "grp-b"]);
        let rules: Vec<String> = provider
            .mapping
            .rules
            .iter()
            .map(|r| format!("{}:{}:{}:{}", claim_name(r.claim), r.value, r.scope, r.role))
            .collect();
        assert_eq!(rules, ["group:grp-a:acme:user", "role:KeyAdmin:*:admin"]);
        assert_eq!(input.take_secret().unwrap().expose_secret(), "s3cret");
        let again = input.form("corp", false, true);
        assert_eq!(again.rows.len(), 5, "two rules, the blank row and padding");
        assert_eq!(again.rows[0].index, "0");
        assert_eq!(again.rows[2].value, "KeyAdmin");
        assert_eq!(again.rows[2].index, "2");
    }

    #[tokio::test]
    async fn unreadable_rows_are_explained() {
        let missing_scope = form(
            "kind=oidc&issuer_url=https%3A%2F%2Fidp&client_id=c&rule_claim_0=group&rule_value_0=g&rule_scope_0=&rule_role_0=user",
        )
        .await;
        let error = missing_scope.provider("corp").unwrap_err();
        assert!(
            error.contains("rule 1") && error.contains("partition"),
            "{error}"
        );
        assert!(form("kind=oidc").await.provider("Bad Id").is_err());
    }

    #[test]
    fn saved_issuers_are_split_into_the_preset_fields_when_they_fit() {
        let parts = IssuerParts::of(
            SsoProviderKind::EntraId,
            "https://login.microsoftonline.com/0000-aaaa/v2.0",
        );
        assert_eq!(parts.entra_tenant, "0000-aaaa");
        let parts = IssuerParts::of(SsoProviderKind::Keycloak, "https://kc/auth/realms/corp");
        assert_eq!(
            (parts.keycloak_base.as_str(), parts.keycloak_realm.as_str()),
            ("https://kc/auth", "corp")
        );
        assert!(!IssuerParts::of(SsoProviderKind::EntraId, "https://other/v2.0").rebuilds_issuer());
    }

    #[test]
    fn lines_are_trimmed_and_deduplicated() {
        assert_eq!(lines(" a \n\n b\r\na\n"), ["a", "b"]);
        assert!(is_provider_id("corp-1") && !is_provider_id("1corp") && !is_provider_id(""));
    }
}
