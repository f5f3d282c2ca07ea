//! Tests for `authorize`. The expectations are written independently of `PERMISSIONS`: each action is
//! classified by what it *is* (`intent`, an exhaustive match, so a new action does not compile here
//! until someone decides its meaning), and the outcome for each persona is derived from DESIGN §4.4
//! by hand.

use std::collections::HashSet;

use proptest::prelude::*;

use super::*;

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

fn acme() -> TenantId {
    tenant("acme")
}

fn globex() -> TenantId {
    tenant("globex")
}

/// What an action is, in the words of DESIGN §4.4 — not in the words of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    /// Looks at oneself or at a list filtered to oneself.
    OwnView,
    /// Changes one's own credentials.
    OwnCredentials,
    /// Reads keys, certificates or status of a tenant.
    TenantRead,
    /// Creates, manages or uses keys and certificates in a tenant.
    TenantWork,
    /// Users and configuration of a tenant.
    TenantAdministration,
    /// One's own credentials for a tenant's partition: any role on the tenant.
    OwnTenantCredentials,
    /// Reads platform-wide information.
    PlatformRead,
    /// Changes the platform (partitions, SSO, plugins, accounts, operators, global settings).
    PlatformAdministration,
}

fn intent(action: Action) -> Intent {
    use Intent::*;
    match action {
        Action::ReadOwnAccount | Action::ListPartitions => OwnView,
        Action::ChangeOwnPassword | Action::ManageOwnTotp | Action::ManageOwnApiTokens => {
            OwnCredentials
        }
        Action::ManageOwnPartitionCredentials => OwnTenantCredentials,
        Action::ListUsers
        | Action::ReadUser
        | Action::CreateUser
        | Action::ManageRoleBindings
        | Action::UpdateSettings
        | Action::ConfigureTenantPlugins => TenantAdministration,
        Action::UpdateUser
        | Action::DeleteUser
        | Action::ResetUserPassword
        | Action::ListAllUsers
        | Action::ManagePlatformBindings
        | Action::UpdatePlatformSettings
        | Action::OnboardPartition
        | Action::UpdatePartition
        | Action::OffboardPartition
        | Action::ManageSso
        | Action::ManagePlugins => PlatformAdministration,
        Action::ReadPlatformSettings | Action::ReadPlatformAudit | Action::VerifyAudit => {
            PlatformRead
        }
        Action::ReadSettings
        | Action::ReadAudit
        | Action::ReadPartition
        | Action::ListPlugins
        | Action::ListKeys
        | Action::ReadKey
        | Action::ExportPublicKey
        | Action::ListApprovers
        | Action::ListCertificates
        | Action::ReadCertificate
        | Action::ListApprovals
        | Action::ReadSelfTestReports
        | Action::ReadDashboard => TenantRead,
        Action::CreateKey
        | Action::UpdateKeyMetadata
        | Action::ChangeKeyLifecycle
        | Action::RotateKey
        | Action::ScheduleKeyDestruction
        | Action::CancelKeyDestruction
        | Action::MarkKeyCompromised
        | Action::EditKeyPolicy
        | Action::UseKey
        | Action::ManageApprovers
        | Action::IssueCertificate
        | Action::ImportCertificate
        | Action::DeleteCertificate
        | Action::Approve
        | Action::CancelApprovalRequest
        | Action::RunSelfTest => TenantWork,
    }
}

/// Whether the action changes anything (own credentials included).
fn mutates(action: Action) -> bool {
    !matches!(
        intent(action),
        Intent::OwnView | Intent::TenantRead | Intent::PlatformRead
    )
}

/// Hand-written role inclusion (not `Role::includes`).
fn role_suffices(had: Role, needed: Role) -> bool {
    matches!(
        (had, needed),
        (Role::Admin, _)
            | (Role::User, Role::User | Role::Readonly)
            | (Role::Readonly, Role::Readonly)
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persona {
    /// admin on acme
    Admin,
    /// user on acme
    User,
    /// readonly on acme
    Readonly,
    /// admin on `*`
    OperatorAdmin,
    /// readonly on `*`
    OperatorReadonly,
    /// authenticated, no bindings
    NoBinding,
}

const PERSONAS: [Persona; 6] = [
    Persona::Admin,
    Persona::User,
    Persona::Readonly,
    Persona::OperatorAdmin,
    Persona::OperatorReadonly,
    Persona::NoBinding,
];

const KINDS: [PrincipalKind; 3] = [
    PrincipalKind::User,
    PrincipalKind::ApiToken,
    PrincipalKind::System,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Own,
    Other,
    Nowhere,
}

const WHERES: [Where; 3] = [Where::Own, Where::Other, Where::Nowhere];

fn principal(persona: Persona, kind: PrincipalKind) -> Principal {
    let bindings = match persona {
        Persona::Admin => vec![RoleBinding::tenant(acme(), Role::Admin)],
        Persona::User => vec![RoleBinding::tenant(acme(), Role::User)],
        Persona::Readonly => vec![RoleBinding::tenant(acme(), Role::Readonly)],
        Persona::OperatorAdmin => vec![RoleBinding::all_tenants(Role::Admin)],
        Persona::OperatorReadonly => vec![RoleBinding::all_tenants(Role::Readonly)],
        Persona::NoBinding => vec![],
    };
    let subject = match kind {
        PrincipalKind::User => PrincipalId::parse("alice").unwrap(),
        PrincipalKind::ApiToken => PrincipalId::parse("tok_ci").unwrap(),
        PrincipalKind::System => PrincipalId::system("scheduler").unwrap(),
    };
    Principal {
        subject,
        kind,
        bindings,
    }
}

/// The expected decision, derived by hand from the persona and the action's intent. `Ok` carries the
/// role of the binding expected to grant it (None: no binding needed).
fn expected(
    persona: Persona,
    kind: PrincipalKind,
    place: Where,
    action: Action,
) -> Result<Option<Role>, DenyReason> {
    let needed = match intent(action) {
        Intent::OwnView => return Ok(None),
        Intent::OwnCredentials => {
            return if kind == PrincipalKind::User {
                Ok(None)
            } else {
                Err(DenyReason::InteractiveUserOnly { kind })
            };
        }
        Intent::TenantRead | Intent::PlatformRead | Intent::OwnTenantCredentials => Role::Readonly,
        Intent::TenantWork => Role::User,
        Intent::TenantAdministration | Intent::PlatformAdministration => Role::Admin,
    };
    let had = if matches!(
        intent(action),
        Intent::PlatformRead | Intent::PlatformAdministration
    ) {
        match persona {
            Persona::OperatorAdmin => Role::Admin,
            Persona::OperatorReadonly => Role::Readonly,
            Persona::Admin | Persona::User | Persona::Readonly | Persona::NoBinding => {
                return Err(DenyReason::PlatformOperatorOnly);
            }
        }
    } else {
        let had = match (persona, place) {
            (_, Where::Nowhere) => return Err(DenyReason::TenantRequired),
            (Persona::Admin, Where::Own) | (Persona::OperatorAdmin, _) => Some(Role::Admin),
            (Persona::User, Where::Own) => Some(Role::User),
            (Persona::Readonly, Where::Own) | (Persona::OperatorReadonly, _) => {
                Some(Role::Readonly)
            }
            (Persona::Admin | Persona::User | Persona::Readonly, Where::Other)
            | (Persona::NoBinding, _) => None,
        };
        match had {
            Some(had) => had,
            None => return Err(DenyReason::NoBindingForTenant),
        }
    };
    if role_suffices(had, needed) {
        Ok(Some(had))
    } else {
        Err(DenyReason::RoleTooLow { needed, had })
    }
}

#[test]
fn authorization_matrix_matches_the_hand_written_expectations() {
    let mut checked = 0usize;
    let mut granted = 0usize;
    for &action in Action::ALL {
        for persona in PERSONAS {
            for kind in KINDS {
                for place in WHERES {
                    let who = principal(persona, kind);
                    let tenant = match place {
                        Where::Own => Some(acme()),
                        Where::Other => Some(globex()),
                        Where::Nowhere => None,
                    };
                    let got = authorize(&who, tenant.as_ref(), action);
                    let want = expected(persona, kind, place, action);
                    let context = format!("{action} by {persona:?} ({kind}) on {place:?}");
                    match (&got, want) {
                        (Ok(grant), Ok(role)) => {
                            granted += 1;
                            assert_eq!(grant.principal(), &who.subject, "{context}");
                            assert_eq!(grant.principal_kind(), kind, "{context}");
                            assert_eq!(grant.tenant(), tenant.as_ref(), "{context}");
                            assert_eq!(grant.action(), action, "{context}");
                            assert_eq!(grant.via().map(|binding| binding.role), role, "{context}");
                            assert_eq!(grant.require(action, tenant.as_ref()), Ok(()), "{context}");
                        }
                        (Err(denied), Err(reason)) => {
                            assert_eq!(denied.reason(), reason, "{context}");
                            assert_eq!(denied.principal(), &who.subject, "{context}");
                            assert_eq!(denied.tenant(), tenant.as_ref(), "{context}");
                            assert_eq!(denied.action(), action, "{context}");
                        }
                        (got, want) => panic!("{context}: got {got:?}, expected {want:?}"),
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(
        checked,
        Action::ALL.len() * PERSONAS.len() * KINDS.len() * WHERES.len()
    );
    // Both outcomes occur in bulk, so neither branch is vacuous.
    assert!(
        granted > checked / 5 && granted < checked * 4 / 5,
        "{granted} of {checked}"
    );
}

#[test]
fn the_design_statements_hold_in_plain_words() {
    let alice = |role| {
        Principal::user(
            PrincipalId::parse("alice").unwrap(),
            vec![RoleBinding::tenant(acme(), role)],
        )
    };
    let on_acme = Some(acme());
    let can = |who: &Principal, action| authorize(who, on_acme.as_ref(), action).is_ok();

    // admin = everything on the tenant, including users and configuration
    assert!(can(&alice(Role::Admin), Action::CreateUser));
    assert!(can(&alice(Role::Admin), Action::UpdateSettings));
    assert!(can(&alice(Role::Admin), Action::CreateKey));
    // user = create, manage and use keys and certificates, but not users or configuration
    assert!(can(&alice(Role::User), Action::CreateKey));
    assert!(can(&alice(Role::User), Action::UseKey));
    assert!(can(&alice(Role::User), Action::IssueCertificate));
    assert!(!can(&alice(Role::User), Action::CreateUser));
    assert!(!can(&alice(Role::User), Action::UpdateSettings));
    // readonly = read keys, certificates and status, change nothing
    assert!(can(&alice(Role::Readonly), Action::ReadKey));
    assert!(can(&alice(Role::Readonly), Action::ListCertificates));
    assert!(can(&alice(Role::Readonly), Action::ReadDashboard));
    assert!(!can(&alice(Role::Readonly), Action::UseKey));
    // a tenant admin is not a platform operator
    assert_eq!(
        authorize(&alice(Role::Admin), None, Action::OnboardPartition)
            .unwrap_err()
            .reason(),
        DenyReason::PlatformOperatorOnly
    );
    // a binding on `*` makes a platform operator, on every tenant
    let operator = Principal::user(
        PrincipalId::parse("olga").unwrap(),
        vec![RoleBinding::all_tenants(Role::Admin)],
    );
    assert!(operator.is_platform_operator());
    assert!(authorize(&operator, None, Action::OnboardPartition).is_ok());
    assert!(authorize(&operator, Some(&tenant("brand-new")), Action::CreateKey).is_ok());
}

#[test]
fn the_most_permissive_applicable_binding_wins() {
    let who = Principal::user(
        PrincipalId::parse("bob").unwrap(),
        vec![
            RoleBinding::tenant(acme(), Role::Readonly),
            RoleBinding::all_tenants(Role::User),
            RoleBinding::tenant(globex(), Role::Admin),
        ],
    );
    let on = |t: &TenantId, action| authorize(&who, Some(t), action);
    // acme: readonly on acme, user on `*` → user
    let grant = on(&acme(), Action::CreateKey).unwrap();
    assert_eq!(grant.via(), Some(&RoleBinding::all_tenants(Role::User)));
    assert_eq!(
        on(&acme(), Action::CreateUser).unwrap_err().reason(),
        DenyReason::RoleTooLow {
            needed: Role::Admin,
            had: Role::User
        }
    );
    // globex: admin on globex beats user on `*`
    assert_eq!(
        on(&globex(), Action::CreateUser).unwrap().via(),
        Some(&RoleBinding::tenant(globex(), Role::Admin))
    );
    // platform: only the `*` binding counts
    assert_eq!(
        authorize(&who, None, Action::ManageSso)
            .unwrap_err()
            .reason(),
        DenyReason::RoleTooLow {
            needed: Role::Admin,
            had: Role::User
        }
    );
    assert_eq!(who.role_on(&acme()), Some(Role::User));
    assert_eq!(who.role_on(&globex()), Some(Role::Admin));
    assert_eq!(who.role_on(&tenant("initech")), Some(Role::User));
    assert_eq!(who.platform_role(), Some(Role::User));
}

#[test]
fn ties_prefer_the_tenant_binding_whatever_the_order() {
    let bindings = vec![
        RoleBinding::all_tenants(Role::Admin),
        RoleBinding::tenant(acme(), Role::Admin),
    ];
    for bindings in [bindings.clone(), bindings.into_iter().rev().collect()] {
        let who = Principal::user(PrincipalId::parse("carol").unwrap(), bindings);
        let grant = authorize(&who, Some(&acme()), Action::ListKeys).unwrap();
        assert_eq!(grant.via(), Some(&RoleBinding::tenant(acme(), Role::Admin)));
    }
}

#[test]
fn every_action_has_exactly_one_row_and_the_list_is_complete() {
    // `Action::ALL` is generated with the enum; this checks the table against it.
    let mut seen = HashSet::new();
    for (index, (action, _)) in PERMISSIONS.iter().enumerate() {
        assert!(seen.insert(*action), "{action} has two rows");
        assert_eq!(Action::ALL[index], *action);
        assert_eq!(*action as usize, index);
    }
    assert_eq!(seen.len(), Action::ALL.len());
    for &action in Action::ALL {
        assert!(action.requirement().is_some(), "{action}");
        // the independent classification agrees on the scope kind
        let scope = match intent(action) {
            Intent::OwnView | Intent::OwnCredentials => ScopeKind::Account,
            Intent::TenantRead
            | Intent::TenantWork
            | Intent::TenantAdministration
            | Intent::OwnTenantCredentials => ScopeKind::Tenant,
            Intent::PlatformRead | Intent::PlatformAdministration => ScopeKind::Platform,
        };
        assert_eq!(
            action.requirement().map(Requirement::scope),
            Some(scope),
            "{action}"
        );
    }
}

#[test]
fn action_names_are_unique_match_serde_and_parse_back() {
    let mut names = HashSet::new();
    for &action in Action::ALL {
        assert!(names.insert(action.as_str()), "{action}");
        assert_eq!(
            serde_json::to_string(&action).unwrap(),
            format!("\"{}\"", action.as_str())
        );
        assert_eq!(
            serde_json::from_str::<Action>(&format!("\"{action}\"")).unwrap(),
            action
        );
        assert_eq!(Action::parse(action.as_str()), Some(action));
    }
    assert_eq!(Action::parse("delete_everything"), None);
}

#[test]
fn roles_are_ordered_by_privilege_and_serialise_lowercase() {
    assert!(Role::Readonly < Role::User && Role::User < Role::Admin);
    for had in Role::ALL {
        for needed in Role::ALL {
            assert_eq!(
                had.includes(needed),
                role_suffices(had, needed),
                "{had} {needed}"
            );
        }
        assert_eq!(serde_json::to_string(&had).unwrap(), format!("\"{had}\""));
    }
    assert_eq!(
        serde_json::from_str::<Role>("\"readonly\"").unwrap(),
        Role::Readonly
    );
    assert!(serde_json::from_str::<Role>("\"Admin\"").is_err());
}

#[test]
fn scopes_serialise_as_tenant_or_star() {
    assert_eq!(
        serde_json::to_string(&TenantScope::AllTenants).unwrap(),
        "\"*\""
    );
    assert_eq!(
        serde_json::to_string(&TenantScope::Tenant(acme())).unwrap(),
        "\"acme\""
    );
    assert_eq!(
        serde_json::from_str::<TenantScope>("\"*\"").unwrap(),
        TenantScope::AllTenants
    );
    assert_eq!(
        serde_json::from_str::<TenantScope>("\"acme\"").unwrap(),
        TenantScope::Tenant(acme())
    );
    assert!(serde_json::from_str::<TenantScope>("\"**\"").is_err());
    assert!(serde_json::from_str::<TenantScope>("\"\"").is_err());

    let who = Principal::api_token(
        PrincipalId::parse("tok_1").unwrap(),
        vec![
            RoleBinding::tenant(acme(), Role::User),
            RoleBinding::all_tenants(Role::Readonly),
        ],
    );
    let json = serde_json::to_string(&who).unwrap();
    assert_eq!(
        json,
        r#"{"subject":"tok_1","kind":"api_token","bindings":[{"scope":"acme","role":"user"},{"scope":"*","role":"readonly"}]}"#
    );
    assert_eq!(serde_json::from_str::<Principal>(&json).unwrap(), who);
}

#[test]
fn a_grant_only_covers_what_it_was_issued_for() {
    let who = principal(Persona::OperatorAdmin, PrincipalKind::User);
    let grant = authorize(&who, Some(&acme()), Action::CreateKey).unwrap();
    assert_eq!(grant.require(Action::CreateKey, Some(&acme())), Ok(()));
    let wrong_action = grant
        .require(Action::ScheduleKeyDestruction, Some(&acme()))
        .unwrap_err();
    assert_eq!(wrong_action.granted, Action::CreateKey);
    assert_eq!(wrong_action.required, Action::ScheduleKeyDestruction);
    assert_eq!(
        wrong_action.to_string(),
        "grant is for create_key on acme, but schedule_key_destruction on acme was attempted"
    );
    assert!(grant.require(Action::CreateKey, Some(&globex())).is_err());
    assert!(grant.require(Action::CreateKey, None).is_err());
}

#[test]
fn denials_explain_themselves_with_stable_codes() {
    let who = principal(Persona::Readonly, PrincipalKind::User);
    let denied = authorize(&who, Some(&acme()), Action::RotateKey).unwrap_err();
    assert_eq!(denied.reason().code(), "role_too_low");
    assert_eq!(
        denied.to_string(),
        "alice may not rotate_key on acme: needs role user, has readonly"
    );
    let denied = authorize(&who, None, Action::ListKeys).unwrap_err();
    assert_eq!(
        denied.to_string(),
        "alice may not list_keys on no tenant: a tenant must be named"
    );
    let token = principal(Persona::OperatorAdmin, PrincipalKind::ApiToken);
    let denied = authorize(&token, None, Action::ManageOwnApiTokens).unwrap_err();
    assert_eq!(
        denied.reason(),
        DenyReason::InteractiveUserOnly {
            kind: PrincipalKind::ApiToken
        }
    );
    assert_eq!(denied.reason().code(), "interactive_user_only");
    let codes: HashSet<_> = [
        DenyReason::NoBindingForTenant,
        DenyReason::RoleTooLow {
            needed: Role::Admin,
            had: Role::User,
        },
        DenyReason::PlatformOperatorOnly,
        DenyReason::TenantRequired,
        DenyReason::InteractiveUserOnly {
            kind: PrincipalKind::System,
        },
        DenyReason::Unlisted,
    ]
    .iter()
    .map(|reason| reason.code())
    .collect();
    assert_eq!(codes.len(), 6);
}

// ---------------------------------------------------------------- properties

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

fn scope_strategy() -> impl Strategy<Value = TenantScope> {
    prop_oneof![
        3 => (0..TENANTS.len()).prop_map(|index| TenantScope::Tenant(tenant(TENANTS[index]))),
        1 => Just(TenantScope::AllTenants),
    ]
}

fn role_strategy() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL.to_vec())
}

fn binding_strategy() -> impl Strategy<Value = RoleBinding> {
    (scope_strategy(), role_strategy()).prop_map(|(scope, role)| RoleBinding { scope, role })
}

fn principal_strategy() -> impl Strategy<Value = Principal> {
    (
        prop::sample::select(KINDS.to_vec()),
        prop::collection::vec(binding_strategy(), 0..6),
    )
        .prop_map(|(kind, bindings)| Principal {
            subject: PrincipalId::parse("p").unwrap(),
            kind,
            bindings,
        })
}

fn action_strategy() -> impl Strategy<Value = Action> {
    prop::sample::select(Action::ALL.to_vec())
}

fn tenant_strategy() -> impl Strategy<Value = Option<TenantId>> {
    prop::option::of((0..TENANTS.len()).prop_map(|index| tenant(TENANTS[index])))
}

proptest! {
    #[test]
    fn adding_a_binding_never_removes_a_permission(
        who in principal_strategy(),
        extra in binding_strategy(),
        place in tenant_strategy(),
        action in action_strategy(),
    ) {
        let before = authorize(&who, place.as_ref(), action).is_ok();
        let mut more = who.clone();
        more.bindings.push(extra);
        let after = authorize(&more, place.as_ref(), action).is_ok();
        prop_assert!(!before || after);
    }

    #[test]
    fn readonly_principals_never_change_anything_but_their_own_credentials(
        who in principal_strategy(),
        place in tenant_strategy(),
        action in action_strategy(),
    ) {
        let mut who = who;
        for binding in &mut who.bindings {
            binding.role = Role::Readonly;
        }
        if authorize(&who, place.as_ref(), action).is_ok() && mutates(action) {
            prop_assert!(matches!(
                intent(action),
                Intent::OwnCredentials | Intent::OwnTenantCredentials
            ));
        }
    }

    #[test]
    fn the_decision_does_not_depend_on_binding_order(
        who in principal_strategy(),
        place in tenant_strategy(),
        action in action_strategy(),
    ) {
        let mut reversed = who.clone();
        reversed.bindings.reverse();
        prop_assert_eq!(authorize(&who, place.as_ref(), action), authorize(&reversed, place.as_ref(), action));
    }

    #[test]
    fn bindings_on_other_tenants_never_reach_this_one(
        who in principal_strategy(),
        target in 0..TENANTS.len(),
        action in action_strategy(),
    ) {
        let target = tenant(TENANTS[target]);
        let mut who = who;
        who.bindings.retain(|binding| matches!(&binding.scope, TenantScope::Tenant(t) if *t != target));
        let result = authorize(&who, Some(&target), action);
        match action.requirement() {
            Some(Requirement::Tenant(_)) => {
                prop_assert_eq!(result.unwrap_err().reason(), DenyReason::NoBindingForTenant);
            }
            Some(Requirement::Platform(_)) => {
                prop_assert_eq!(result.unwrap_err().reason(), DenyReason::PlatformOperatorOnly);
            }
            Some(Requirement::Authenticated | Requirement::InteractiveUser) | None => {}
        }
    }

    #[test]
    fn tenant_decisions_agree_with_the_effective_role(
        who in principal_strategy(),
        place in tenant_strategy(),
        action in action_strategy(),
    ) {
        let allowed = authorize(&who, place.as_ref(), action).is_ok();
        match (action.requirement(), place.as_ref()) {
            (Some(Requirement::Tenant(needed)), Some(t)) => {
                let effective = who.role_on(t);
                prop_assert_eq!(allowed, effective.is_some_and(|had| role_suffices(had, needed)));
            }
            (Some(Requirement::Platform(needed)), _) => {
                prop_assert_eq!(allowed, who.platform_role().is_some_and(|had| role_suffices(had, needed)));
            }
            (Some(Requirement::Tenant(_)), None) => prop_assert!(!allowed),
            (Some(Requirement::Authenticated), _) => prop_assert!(allowed),
            (Some(Requirement::InteractiveUser), _) => prop_assert_eq!(allowed, who.kind == PrincipalKind::User),
            (None, _) => prop_assert!(!allowed),
        }
    }
}
