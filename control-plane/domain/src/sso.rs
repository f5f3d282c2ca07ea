//! What single sign-on grants: the mapping from an identity provider's groups and role claims to
//! role bindings (DESIGN §4.4). One pure function, [`map_claims`], decides it — for a real login
//! and for the operators' "preview" alike, so the preview can never disagree with a login.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Role, RoleBinding, TenantScope};

/// Which claim a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    /// A value of the groups claim (Entra ID object id, Keycloak group path, GitHub `org/team`).
    Group,
    /// A value of the roles claim (Entra ID app role, Keycloak realm role).
    Role,
}

/// One line of the mapping table: members of `value` get `role` on `scope`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MappingRule {
    /// Which claim is matched.
    pub claim: ClaimKind,
    /// The exact claim value (case-sensitive: group ids are opaque).
    pub value: String,
    /// Where the role applies (`*` makes platform operators).
    pub scope: TenantScope,
    /// The role granted.
    pub role: Role,
}

/// A provider's access rules.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SsoMapping {
    /// If not empty, only people in at least one of these groups may sign in at all
    /// (`allowed_group_id`).
    #[serde(default)]
    pub allowed_group_ids: Vec<String>,
    /// The mapping table.
    #[serde(default)]
    pub rules: Vec<MappingRule>,
}

/// What a set of claims yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingDecision {
    /// Sign-in allowed with these bindings (one per scope, the highest role of all matching
    /// rules), sorted by scope; `matched` are the indexes of the rules that matched.
    Granted {
        /// The bindings the session gets.
        bindings: Vec<RoleBinding>,
        /// Indexes into `rules` of the rules that matched.
        matched: Vec<usize>,
    },
    /// None of the groups is in `allowed_group_ids`.
    NotInAllowedGroup,
    /// Allowed, but no rule matches: the person would have access to nothing.
    NoMatchingRule,
}

/// Decides what `groups` and `roles` yield under `mapping`.
pub fn map_claims(mapping: &SsoMapping, groups: &[String], roles: &[String]) -> MappingDecision {
    if !mapping.allowed_group_ids.is_empty()
        && !groups
            .iter()
            .any(|group| mapping.allowed_group_ids.contains(group))
    {
        return MappingDecision::NotInAllowedGroup;
    }
    let mut best: BTreeMap<TenantScope, Role> = BTreeMap::new();
    let mut matched = Vec::new();
    for (index, rule) in mapping.rules.iter().enumerate() {
        let values = match rule.claim {
            ClaimKind::Group => groups,
            ClaimKind::Role => roles,
        };
        if values.contains(&rule.value) {
            matched.push(index);
            let entry = best.entry(rule.scope.clone()).or_insert(rule.role);
            if rule.role > *entry {
                *entry = rule.role;
            }
        }
    }
    if best.is_empty() {
        return MappingDecision::NoMatchingRule;
    }
    MappingDecision::Granted {
        bindings: best
            .into_iter()
            .map(|(scope, role)| RoleBinding { scope, role })
            .collect(),
        matched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TenantId;

    fn rule(claim: ClaimKind, value: &str, scope: &str, role: Role) -> MappingRule {
        MappingRule {
            claim,
            value: value.to_owned(),
            scope: if scope == "*" {
                TenantScope::AllTenants
            } else {
                TenantScope::Tenant(TenantId::parse(scope).unwrap())
            },
            role,
        }
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    fn mapping() -> SsoMapping {
        SsoMapping {
            allowed_group_ids: strings(&["grp-a", "grp-b", "grp-ops"]),
            rules: vec![
                rule(ClaimKind::Group, "grp-a", "acme", Role::User),
                rule(ClaimKind::Group, "grp-b", "globex", Role::User),
                rule(ClaimKind::Role, "KeyAdmin", "acme", Role::Admin),
                rule(ClaimKind::Group, "grp-a", "globex", Role::Readonly),
                rule(ClaimKind::Group, "grp-ops", "*", Role::Readonly),
            ],
        }
    }

    #[test]
    fn one_group_maps_to_its_partition() {
        let MappingDecision::Granted { bindings, matched } =
            map_claims(&mapping(), &strings(&["grp-a"]), &[])
        else {
            panic!("granted expected");
        };
        assert_eq!(matched, [0, 3]);
        assert_eq!(
            bindings,
            [
                RoleBinding::tenant(TenantId::parse("acme").unwrap(), Role::User),
                RoleBinding::tenant(TenantId::parse("globex").unwrap(), Role::Readonly),
            ]
        );
    }

    #[test]
    fn the_highest_role_per_scope_wins_and_role_claims_count() {
        let decision = map_claims(
            &mapping(),
            &strings(&["grp-a", "grp-b"]),
            &strings(&["KeyAdmin"]),
        );
        let MappingDecision::Granted { bindings, .. } = decision else {
            panic!("granted expected");
        };
        assert_eq!(
            bindings,
            [
                RoleBinding::tenant(TenantId::parse("acme").unwrap(), Role::Admin),
                RoleBinding::tenant(TenantId::parse("globex").unwrap(), Role::User),
            ]
        );
    }

    #[test]
    fn people_outside_the_allowed_groups_are_refused_even_with_a_role_claim() {
        assert_eq!(
            map_claims(&mapping(), &strings(&["grp-x"]), &strings(&["KeyAdmin"])),
            MappingDecision::NotInAllowedGroup
        );
        assert_eq!(
            map_claims(&mapping(), &[], &[]),
            MappingDecision::NotInAllowedGroup
        );
    }

    #[test]
    fn an_allowed_person_without_a_matching_rule_gets_nothing() {
        let mut mapping = mapping();
        mapping.allowed_group_ids.clear();
        assert_eq!(
            map_claims(&mapping, &strings(&["grp-x"]), &[]),
            MappingDecision::NoMatchingRule
        );
    }

    #[test]
    fn group_values_are_matched_exactly() {
        let mut mapping = mapping();
        mapping.allowed_group_ids.clear();
        assert_eq!(
            map_claims(&mapping, &strings(&["GRP-A", "grp-a ", "grp"]), &[]),
            MappingDecision::NoMatchingRule
        );
    }

    #[test]
    fn a_star_rule_makes_a_platform_operator() {
        let MappingDecision::Granted { bindings, .. } =
            map_claims(&mapping(), &strings(&["grp-ops"]), &[])
        else {
            panic!("granted expected");
        };
        assert_eq!(bindings, [RoleBinding::all_tenants(Role::Readonly)]);
    }
}
