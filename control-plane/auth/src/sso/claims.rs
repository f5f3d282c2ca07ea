//! Reading groups and roles out of a claims object: configured claim names, dotted paths into
//! nested objects (`realm_access.roles`) and Entra ID's group overage marker.

use openidconnect::AdditionalClaims;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use km_core::{SsoProviderKind, SsoProviderSettings};

/// Every claim of an ID token or userinfo answer that openidconnect does not model itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ExtraClaims {
    #[serde(flatten)]
    pub(crate) claims: Map<String, Value>,
}

impl AdditionalClaims for ExtraClaims {}

/// Which claims hold groups and roles for one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimNames {
    pub(crate) groups: String,
    pub(crate) roles: Option<String>,
}

impl ClaimNames {
    /// The provider's configured names, or its kind's defaults (blank counts as unset).
    pub(crate) fn of(provider: &SsoProviderSettings) -> Self {
        let configured = |name: &Option<String>| {
            name.as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
        };
        let groups = configured(&provider.groups_claim).unwrap_or_else(|| "groups".to_owned());
        let roles = configured(&provider.roles_claim).or_else(|| {
            match provider.kind {
                SsoProviderKind::EntraId => Some("roles"),
                SsoProviderKind::Keycloak => Some("realm_access.roles"),
                SsoProviderKind::Oidc | SsoProviderKind::Github => None,
            }
            .map(str::to_owned)
        });
        Self { groups, roles }
    }
}

/// The claim `name`: a top-level claim of exactly that name first (names such as
/// `https://example.com/groups` contain dots), otherwise a dotted path into nested objects.
pub(crate) fn lookup<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut current = claims.get(parts.next()?)?;
    let mut nested = false;
    for part in parts {
        current = current.as_object()?.get(part)?;
        nested = true;
    }
    nested.then_some(current)
}

/// A claim's values as strings: an array of strings (numbers and booleans are written out), or a
/// single string. Nulls, objects and empty strings are skipped; duplicates dropped, order kept.
pub(crate) fn string_list(value: &Value) -> Vec<String> {
    fn one(value: &Value) -> Option<String> {
        match value {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    let mut out: Vec<String> = Vec::new();
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for item in items {
        if let Some(s) = one(item)
            && !out.contains(&s)
        {
            out.push(s);
        }
    }
    out
}

/// The values of claim `name`, or `None` when the claim is absent (or null).
pub(crate) fn values(claims: &Map<String, Value>, name: &str) -> Option<Vec<String>> {
    match lookup(claims, name)? {
        Value::Null => None,
        value => Some(string_list(value)),
    }
}

/// Entra ID "group overage": too many groups for a token, so the groups claim is replaced by a
/// distributed-claims reference (`_claim_names.<groups claim>`), or `hasgroups: true` in the
/// implicit flow. Only meaningful when the groups claim itself is absent.
pub(crate) fn groups_overage(claims: &Map<String, Value>, groups_claim: &str) -> bool {
    if lookup(claims, groups_claim).is_some() {
        return false;
    }
    let referenced = claims
        .get("_claim_names")
        .and_then(Value::as_object)
        .is_some_and(|names| names.contains_key(groups_claim));
    referenced || claims.get("hasgroups") == Some(&Value::Bool(true))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn settings(kind: SsoProviderKind) -> SsoProviderSettings {
        SsoProviderSettings {
            id: "p".into(),
            display_name: "P".into(),
            kind,
            issuer_url: "https://idp.example".into(),
            api_url: None,
            client_id: "c".into(),
            extra_scopes: vec![],
            groups_claim: None,
            roles_claim: None,
        }
    }

    #[test]
    fn defaults_per_kind() {
        let oidc = ClaimNames::of(&settings(SsoProviderKind::Oidc));
        assert_eq!(oidc.groups, "groups");
        assert_eq!(oidc.roles, None);
        let entra = ClaimNames::of(&settings(SsoProviderKind::EntraId));
        assert_eq!(entra.roles.as_deref(), Some("roles"));
        let keycloak = ClaimNames::of(&settings(SsoProviderKind::Keycloak));
        assert_eq!(keycloak.roles.as_deref(), Some("realm_access.roles"));
        let mut custom = settings(SsoProviderKind::Keycloak);
        custom.groups_claim = Some("memberOf".into());
        custom.roles_claim = Some("  ".into());
        let custom = ClaimNames::of(&custom);
        assert_eq!(custom.groups, "memberOf");
        assert_eq!(custom.roles.as_deref(), Some("realm_access.roles"));
    }

    #[test]
    fn dotted_paths_and_literal_names() {
        let claims = map(json!({
            "realm_access": {"roles": ["admin", "auditor"]},
            "https://example.com/groups": ["g1"],
            "resource_access": {"km": {"roles": ["operator"]}},
            "flat": "x"
        }));
        assert_eq!(
            values(&claims, "realm_access.roles").unwrap(),
            vec!["admin", "auditor"]
        );
        assert_eq!(
            values(&claims, "https://example.com/groups").unwrap(),
            vec!["g1"]
        );
        assert_eq!(
            values(&claims, "resource_access.km.roles").unwrap(),
            vec!["operator"]
        );
        assert_eq!(values(&claims, "flat").unwrap(), vec!["x"]);
        assert!(values(&claims, "realm_access.missing").is_none());
        assert!(values(&claims, "flat.deeper").is_none());
        assert!(values(&claims, "absent").is_none());
    }

    #[test]
    fn string_lists_are_cleaned() {
        assert_eq!(
            string_list(&json!(["a", 7, true, null, {"x": 1}, "", "a"])),
            vec!["a", "7", "true"]
        );
        assert_eq!(string_list(&json!("solo")), vec!["solo"]);
        assert!(string_list(&json!({"a": 1})).is_empty());
    }

    #[test]
    fn entra_group_overage() {
        let overage = map(json!({
            "_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}
        }));
        assert!(groups_overage(&overage, "groups"));
        assert!(!groups_overage(&overage, "memberOf"));
        let with_groups = map(json!({"groups": ["a"], "_claim_names": {"groups": "src1"}}));
        assert!(!groups_overage(&with_groups, "groups"));
        assert!(groups_overage(&map(json!({"hasgroups": true})), "groups"));
        assert!(!groups_overage(&map(json!({})), "groups"));
    }
}
