//! Unit tests of the pure parts; the services run against the real emulator in
//! tests/e2e/identity.rs (with the km-auth adapters).

use km_domain::{Role, RoleBinding, TenantId};

use super::*;

#[test]
fn usernames_are_case_insensitive_slugs_that_fit_record_ids() {
    assert_eq!(parse_username(" Alice ").unwrap().as_str(), "alice");
    assert_eq!(
        parse_username("alice.smith@example.com").unwrap().as_str(),
        "alice.smith@example.com"
    );
    for bad in [
        "",
        "-alice",
        "al ice",
        "github:123",
        "system:x",
        "ålice",
        &"a".repeat(65),
    ] {
        assert!(
            matches!(parse_username(bad), Err(IdentityError::InvalidUsername(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn hex_is_lower_case_and_two_digits_per_byte() {
    assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
}

#[test]
fn bindings_keep_one_role_per_scope_the_last_given() {
    let acme = TenantId::parse("acme").unwrap();
    let bindings = normalise_bindings(vec![
        RoleBinding::tenant(acme.clone(), Role::Readonly),
        RoleBinding::all_tenants(Role::User),
        RoleBinding::tenant(acme.clone(), Role::Admin),
    ]);
    assert_eq!(
        bindings,
        vec![
            RoleBinding::tenant(acme, Role::Admin),
            RoleBinding::all_tenants(Role::User),
        ]
    );
}

#[test]
fn error_messages_say_when_to_retry_and_never_include_secrets() {
    let locked = IdentityError::Locked {
        until: 1_000_900,
        retry_after_secs: 61,
    };
    assert_eq!(locked.code(), "account_locked");
    assert!(
        locked.to_string().contains("try again in 2 minute(s)"),
        "{locked}"
    );
    let soon = IdentityError::Locked {
        until: 1,
        retry_after_secs: 0,
    };
    assert!(soon.to_string().contains("1 minute(s)"));
}

#[test]
fn secret_types_redact_debug() {
    let hash = PasswordHash::new("$2b$04$abcdefghijklmnopqrstuv".to_owned());
    assert_eq!(format!("{hash:?}"), "PasswordHash(<redacted>)");
    let secret = TotpSecret::from_bytes(vec![1, 2, 3]);
    assert_eq!(format!("{secret:?}"), "TotpSecret(<redacted>)");
    let json = serde_json::to_string(&secret).unwrap();
    assert_eq!(json, "\"AQID\"");
    let back: TotpSecret = serde_json::from_str(&json).unwrap();
    assert_eq!(back, secret);
}
