//! Unit tests of the app layer's pure parts; the use cases run against the real emulator in
//! tests/e2e/api.

use km_domain::{Action, Principal, PrincipalId, Role, RoleBinding, TenantId, authorize};

use super::page::paginate;
use super::*;

#[test]
fn request_ids_from_clients_are_short_and_plain() {
    assert!(RequestId::from_client("abc-123_X.y").is_some());
    for bad in ["", "a b", "a\nb", "ä", &"a".repeat(65)] {
        assert!(RequestId::from_client(bad).is_none(), "{bad:?}");
    }
    assert_eq!(RequestId::generate().as_str().len(), 32);
}

#[test]
fn other_tenants_are_not_found_and_low_roles_are_forbidden() {
    let acme = TenantId::parse("acme").unwrap();
    let globex = TenantId::parse("globex").unwrap();
    let user = Principal::user(
        PrincipalId::parse("bob").unwrap(),
        vec![RoleBinding::tenant(acme.clone(), Role::Readonly)],
    );
    let other = authorize(&user, Some(&globex), Action::ListUsers).unwrap_err();
    assert_eq!(AppError::from_denied(&other).code(), "not_found");
    let low = authorize(&user, Some(&acme), Action::ListUsers).unwrap_err();
    let error = AppError::from_denied(&low);
    assert_eq!(
        (error.code(), error.reason()),
        ("forbidden", "role_too_low")
    );
    let platform = authorize(&user, None, Action::ListAllUsers).unwrap_err();
    assert_eq!(
        AppError::from_denied(&platform).reason(),
        "platform_operator_only"
    );
}

#[test]
fn pages_follow_the_cursor_to_the_end() {
    let items: Vec<String> = (0..7).map(|i| format!("u{i}")).collect();
    let mut page = PageRequest {
        cursor: None,
        limit: Some(3),
    };
    let mut seen = Vec::new();
    loop {
        let result = paginate(items.clone(), Clone::clone, &page).unwrap();
        seen.extend(result.items);
        match result.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen, items);
    for bad in [Some(0), Some(MAX_PAGE_LIMIT + 1)] {
        let request = PageRequest {
            cursor: None,
            limit: bad,
        };
        assert_eq!(
            paginate(items.clone(), Clone::clone, &request)
                .unwrap_err()
                .code(),
            "invalid_input"
        );
    }
    let garbage = PageRequest {
        cursor: Some("!!".to_owned()),
        limit: None,
    };
    assert_eq!(
        paginate(items, Clone::clone, &garbage)
            .unwrap_err()
            .reason(),
        "invalid_cursor"
    );
}

#[test]
fn every_error_has_a_distinct_code_and_internal_ones_say_nothing() {
    let errors = [
        AppError::Unauthenticated { ended: None },
        AppError::InvalidToken,
        AppError::InvalidCredentials,
        AppError::CsrfInvalid,
        AppError::SecondFactorRequired,
        AppError::SecondFactorEnrolmentRequired,
        AppError::PasswordChangeRequired,
        AppError::SecondFactorInvalid,
        AppError::LoginExpired,
        AppError::Locked {
            retry_after_secs: 5,
        },
        AppError::AccountDisabled,
        AppError::Forbidden {
            reason: "role_too_low",
            message: String::new(),
        },
        AppError::NotFound { what: "user" },
        AppError::Conflict {
            reason: "user_exists",
            message: String::new(),
        },
        AppError::InvalidInput {
            reason: "bad",
            message: String::new(),
        },
        AppError::SetupTokenInvalid,
        AppError::SetupAlreadyComplete,
        AppError::Busy,
        AppError::AuditUnavailable,
        AppError::HsmUnavailable,
        AppError::PartitionConnection {
            message: String::new(),
        },
        AppError::VaultUnavailable {
            message: String::new(),
        },
        AppError::SsoRefused {
            reason: "no_partition_mapping",
            message: String::new(),
        },
        AppError::Internal,
    ];
    let mut codes: Vec<&str> = errors.iter().map(AppError::code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), errors.len());
    assert!(!AppError::Internal.to_string().contains("HSM"));
}
