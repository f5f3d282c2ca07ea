//! One module per page area: `auth` (setup, sign-in, second factor, sign-out), `home`
//! (overview, partition switch), `account` (profile, password, TOTP), `users`, `audit`,
//! `settings`, `notifications` (the partition's expiry-notification webhook), `keys` (the
//! partition's keys: inventory, creation wizard, detail, lifecycle),
//! `key_attestation` (a key's HSM attestation as a zip download),
//! `partitions` (a partition's status and the member's own credentials), `platform`
//! (the operators' partition registry: list, onboarding wizard, edit), `sso` (the operators'
//! single-sign-on configuration and mapping preview), `sso_login` (signing in at an identity
//! provider), and `errors` (the mapping of `AppError` to pages).

pub(crate) mod account;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod dashboard;
pub(crate) mod errors;
pub(crate) mod home;
pub(crate) mod key_attestation;
pub(crate) mod key_edit;
pub(crate) mod key_policy;
pub(crate) mod keys;
pub(crate) mod notifications;
pub(crate) mod partitions;
pub(crate) mod platform;
pub(crate) mod settings;
pub(crate) mod sso;
pub(crate) mod sso_login;
pub(crate) mod users;

use km_core::AppError;
use km_domain::TenantId;
use poem::{Request, Response};

use crate::http;
use crate::viewer::{self, Console, Need, Viewer};

/// Fragment of redirects after a form posted to a section (`...#result`): without one, the browser
/// would keep the form's fragment and scroll past the notice at the top of the page.
pub(crate) const TO_NOTICES: &str = "#main";

/// Checks a signed-in form: same origin, and the session's CSRF token (through the app, the
/// same check the REST API makes).
pub(crate) fn form_ok(console: &Console, viewer: &Viewer, req: &Request, csrf: &str) -> bool {
    http::same_origin(req) && console.app.check_csrf(&viewer.caller, Some(csrf)).is_ok()
}

/// The viewer of a signed-in form whose CSRF token and origin check out (an error page
/// otherwise).
pub(crate) async fn form_viewer(
    console: &Console,
    req: &Request,
    csrf: &str,
) -> Result<Viewer, Response> {
    let viewer = viewer::viewer(console, req, Need::Full).await?;
    if !form_ok(console, &viewer, req, csrf) {
        return Err(errors::app_error(&viewer, req, &AppError::CsrfInvalid));
    }
    Ok(viewer)
}

/// The partition named in a path: a string that cannot be a tenant id names no partition (404).
#[allow(
    clippy::result_large_err,
    reason = "the error is the page to answer, like the async helpers' (built once per request)"
)]
pub(crate) fn path_tenant(viewer: &Viewer, req: &Request, id: &str) -> Result<TenantId, Response> {
    TenantId::parse(id)
        .map_err(|_| errors::app_error(viewer, req, &AppError::NotFound { what: "partition" }))
}
