//! km-web — keymanager's web console: server-rendered HTML pages (askama templates, compile-time
//! checked) with first-party CSS and small JavaScript modules, all served by the binary itself.
//!
//! Owns: page routing, templates and static assets, the session cookie and CSRF handling of
//! forms, and the security headers of every console response. Which partitions exist (and how
//! they look) comes from km-core's partition registry, through the same use cases as the API.
//!
//! Single sign-on: the sign-in page offers the enabled identity providers, and the browser flow
//! (redirect to the provider, callback, session cookie) is the console's; the operators' pages
//! edit the same configuration as the REST API, through the same use cases.
//!
//! Every page performs its work through `km_core::App` use cases — the same ones the REST API
//! calls — so authorization (`km_domain::authorize`) and audit happen there, once. The console
//! also calls `authorize` itself, but only to decide what to draw: hiding is UX, the app layer
//! enforces.
//!
//! Must not depend on: the REST API crate, the TSB SDK or emulator, HTTP clients, or any adapter.
//! It never calls keymanager over HTTP.

mod assets;
mod fmt;
mod http;
mod icons;
mod pages;
mod partitions;
mod sso;
mod viewer;

use std::sync::Arc;

use km_core::App;
use poem::{Endpoint, EndpointExt, Route, get, post};

pub use http::{CONTENT_SECURITY_POLICY, PARTITION_COOKIE, SESSION_COOKIE};
use pages::{
    account, audit, auth, dashboard, home, key_edit, keys, partitions as partition_pages, platform,
    settings, sso as sso_pages, sso_login, users,
};
use viewer::Console;

/// How the console is set up beside the [`App`]. Partitions are not configured here: the
/// console reads them from the App's partition registry.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Shortest password the identity service accepts, for the hint next to password fields.
    pub password_min_chars: usize,
    /// The console's public base URL (`server.public_url`), when the deployment configured one:
    /// SSO redirect URIs are built from it instead of the request's Host.
    pub public_url: Option<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            password_min_chars: km_core::IdentityConfig::default().password_min_chars,
            public_url: None,
        }
    }
}

/// The console's routes, to mount at the root of the control plane's HTTP server (beside
/// `/api/v1`, `/healthz`, ...):
///
/// `/` (overview), `/setup`, `/login`, `/login/second-factor`, `/login/cancel`, `/logout`,
/// `/partition`, `/account`, `/account/password`, `/account/sign-out-everywhere`,
/// `/account/totp`, `/users` (+ `/users/role`, `/users/status`, `/users/delete`), `/audit`,
/// `/settings`, `/settings/notifications` (+ `/secret`, `/test`), `/static/*`; the current partition's dashboard `/dashboard` and keys: `/keys`
/// (inventory), `/keys/new` (creation wizard), `/keys/{label}` (detail, + `/state`, `/rotate`,
/// `/public.pem`, `/public.jwk`, `/attestation.zip`); partitions for their members: `/partitions`
/// (→ the current one), `/partitions/{id}` (status), `/partitions/{id}/credentials`
/// (+ `/remove`: own credentials);
/// and for platform operators: `/platform/partitions` (registry), `/platform/partitions/new`
/// (onboarding wizard), `/platform/partitions/{id}` (edit, + `/status`, `/credentials`,
/// `/offboard`), `/platform/sso` (password sign-in switch, identity providers),
/// `/platform/sso/new`, `/platform/sso/{id}` (edit, + `/preview`, `/delete`). Single sign-on:
/// `/login/sso/{provider}` (to the identity provider) and `/login/sso/{provider}/callback`.
///
/// Every response carries the strict CSP ([`CONTENT_SECURITY_POLICY`]), `nosniff`,
/// `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY` and an `X-Request-Id`; pages are
/// `Cache-Control: no-store`.
pub fn routes(app: App, config: ConsoleConfig) -> impl Endpoint {
    let console = Arc::new(Console {
        app,
        password_min_chars: config.password_min_chars,
        public_url: config
            .public_url
            .map(|url| url.trim_end_matches('/').to_owned()),
    });
    Route::new()
        .at("/", get(home::show_home))
        .at("/partition", post(home::switch_partition))
        .at("/setup", get(auth::setup_form).post(auth::setup_submit))
        .at("/login", get(auth::login_form).post(auth::login_submit))
        .at(
            "/login/second-factor",
            get(auth::second_factor_form).post(auth::second_factor_submit),
        )
        .at("/login/cancel", post(auth::login_cancel))
        .at("/login/sso/:provider", get(sso_login::begin))
        .at("/login/sso/:provider/callback", get(sso_login::callback))
        .at("/logout", get(auth::logout_form).post(auth::logout_submit))
        .at("/account", get(account::show_account))
        .at("/account/password", post(account::change_password))
        .at(
            "/account/sign-out-everywhere",
            post(account::sign_out_everywhere),
        )
        .at(
            "/account/totp",
            get(account::show_totp).post(account::totp_submit),
        )
        .at("/users", get(users::show_users).post(users::create_user))
        .at("/users/role", post(users::set_role))
        .at("/users/status", post(users::set_status))
        .at("/users/delete", post(users::delete_user))
        .at("/dashboard", get(dashboard::show_dashboard))
        .at("/keys", get(keys::show_keys))
        .at("/keys/new", get(keys::new_key).post(keys::create_key))
        .at("/keys/:label", get(keys::show_key))
        .at("/keys/:label/state", post(keys::change_state))
        .at("/keys/:label/rotate", post(keys::rotate))
        .at(
            "/keys/:label/edit",
            get(key_edit::edit_form).post(key_edit::edit_submit),
        )
        .at("/keys/:label/public.pem", get(keys::public_pem))
        .at("/keys/:label/public.jwk", get(keys::public_jwk))
        .at(
            "/keys/:label/policy",
            get(pages::key_policy::show_policy).post(pages::key_policy::update_policy),
        )
        .at(
            "/keys/:label/requests/:request_id/cancel",
            post(pages::key_policy::cancel_request),
        )
        .at(
            "/keys/:label/attestation.zip",
            get(pages::key_attestation::download),
        )
        .at("/partitions", get(partition_pages::show_current))
        .at("/partitions/:id", get(partition_pages::show_partition))
        .at(
            "/partitions/:id/credentials",
            get(partition_pages::show_own_credentials).post(partition_pages::set_own_credentials),
        )
        .at(
            "/partitions/:id/credentials/remove",
            post(partition_pages::remove_own_credentials),
        )
        .at("/platform/partitions", get(platform::show_partitions))
        .at(
            "/platform/partitions/new",
            get(platform::onboard_form).post(platform::onboard_submit),
        )
        .at(
            "/platform/partitions/:id",
            get(platform::show_edit).post(platform::update_details),
        )
        .at(
            "/platform/partitions/:id/status",
            post(platform::set_status),
        )
        .at(
            "/platform/partitions/:id/credentials",
            post(platform::rotate_credentials),
        )
        .at(
            "/platform/partitions/:id/offboard",
            post(platform::offboard),
        )
        .at(
            "/platform/sso",
            get(sso_pages::show_settings).post(sso_pages::update_local_login),
        )
        .at(
            "/platform/sso/new",
            get(sso_pages::new_provider).post(sso_pages::create_provider),
        )
        .at(
            "/platform/sso/:id",
            get(sso_pages::show_provider).post(sso_pages::update_provider),
        )
        .at(
            "/platform/sso/:id/preview",
            post(sso_pages::preview_mapping),
        )
        .at("/platform/sso/:id/delete", post(sso_pages::delete_provider))
        .at(
            "/settings/keys",
            get(key_edit::show_key_settings).post(key_edit::update_key_settings),
        )
        .at(
            "/settings/notifications",
            get(pages::notifications::show).post(pages::notifications::save),
        )
        .at(
            "/settings/notifications/secret",
            post(pages::notifications::rotate_secret),
        )
        .at(
            "/settings/notifications/test",
            post(pages::notifications::send_test),
        )
        .at("/audit", get(audit::show_audit))
        .at(
            "/settings",
            get(settings::show_settings).post(settings::update_settings),
        )
        .at("/static/:name", get(assets::asset))
        .data(console)
        .around(http::around)
}
