//! One module per page area: `auth` (setup, sign-in, second factor, sign-out), `home`
//! (overview, partition switch), `account` (profile, password, TOTP), `users`, `audit`,
//! `settings`, and `errors` (the mapping of `AppError` to pages).

pub(crate) mod account;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod errors;
pub(crate) mod home;
pub(crate) mod settings;
pub(crate) mod users;

use poem::Request;

use crate::http;
use crate::viewer::{Console, Viewer};

/// Checks a signed-in form: same origin, and the session's CSRF token (through the app, the
/// same check the REST API makes).
pub(crate) fn form_ok(console: &Console, viewer: &Viewer, req: &Request, csrf: &str) -> bool {
    http::same_origin(req) && console.app.check_csrf(&viewer.caller, Some(csrf)).is_ok()
}
