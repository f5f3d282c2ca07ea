//! The operations, one `#[OpenApi]` impl per area, and their response types (one enum per kind of
//! answer; every error is an [`ApiError`](crate::problem::ApiError)).

pub(crate) mod account;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod dashboard;
pub(crate) mod key_attestation;
pub(crate) mod key_policy;
pub(crate) mod keys;
pub(crate) mod notifications;
pub(crate) mod partitions;
pub(crate) mod platform;
pub(crate) mod sso;
pub(crate) mod users;

use km_core::{AppError, PageRequest, RequestId};
use km_domain::TenantId;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Tags};

use crate::models::{User, UserPage};
use crate::problem::ApiError;

/// Groups of operations in the document.
#[derive(Debug, Tags)]
pub(crate) enum ApiTags {
    /// First-run setup, sign-in and sign-out.
    Auth,
    /// The caller's own account: password, TOTP, API tokens.
    Account,
    /// Users and role bindings of one tenant.
    Users,
    /// Platform-wide administration: every account, platform roles, every token.
    Platform,
    /// Runtime settings.
    Settings,
    /// The audit log.
    Audit,
    /// HSM partitions (tenants): what members see, their own credentials, and the operators'
    /// registry.
    Partitions,
    /// Keys of a tenant: inventory, creation, lifecycle, rotation, public keys; key settings.
    Keys,
    /// Expiry notifications of a tenant: signed webhook settings, signing secret, test delivery.
    Notifications,
    /// A tenant at a glance: TSB status, keys by state and algorithm, upcoming expiries and
    /// destructions.
    Dashboard,
}

/// Maps an app error to its response (the one mapping lives in `problem::status_of`).
pub(crate) fn fail(rid: &RequestId) -> impl Fn(AppError) -> ApiError + '_ {
    move |error| ApiError::from_app(&error, rid)
}

/// Parses a tenant id from the path.
pub(crate) fn tenant(raw: &str, rid: &RequestId) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|error| {
        ApiError::from_app(&AppError::invalid("invalid_tenant", error.to_string()), rid)
    })
}

/// The page a list operation was asked for.
pub(crate) fn page(cursor: Option<String>, limit: Option<u32>) -> PageRequest {
    PageRequest { cursor, limit }
}

/// Nothing to return.
#[derive(Debug, ApiResponse)]
pub(crate) enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

/// One user.
#[derive(Debug, ApiResponse)]
pub(crate) enum UserResponse {
    /// The user.
    #[oai(status = 200)]
    Ok(Json<User>),
}

/// A user was created.
#[derive(Debug, ApiResponse)]
pub(crate) enum UserCreated {
    /// The new user.
    #[oai(status = 201)]
    Created(Json<User>),
}

/// A page of users.
#[derive(Debug, ApiResponse)]
pub(crate) enum UserPageResponse {
    /// The page.
    #[oai(status = 200)]
    Ok(Json<UserPage>),
}
