//! Single sign-on for platform operators: whether password sign-in is offered to everybody, the
//! identity providers (add, edit, delete), each provider's mapping of groups and roles to
//! partitions, and a preview of what given claims would get.
//!
//! Every page asks an operator-only use case first (`get_sso_settings`, `list_all_partitions`),
//! so the App refuses — and audits — anyone else. Saving reads the current configuration,
//! changes the one provider (or switch) and saves the whole configuration through
//! `update_sso_settings`, which validates it; a typed client secret is stored afterwards through
//! `set_sso_client_secret` and never shown again.

use std::sync::Arc;

use askama::Template;
use km_core::{AppError, PartitionRecord, SsoProviderConfig, SsoSettingsView};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::http;
use crate::pages::auth::sentence;
use crate::pages::{TO_NOTICES, errors, form_viewer};
use crate::sso::{
    PreviewInput, PreviewResult, PreviewView, ProviderForm, ProviderInput, ProviderRow,
    is_provider_id, lines, secret_stored,
};
use crate::viewer::{self, Console, Layout, Need, PageMeta, Viewer};

/// Nav entry of every page here.
const ACTIVE: &str = "platform-sso";
/// Breadcrumb of every page here.
const SECTION: &str = "Platform";
/// Longest client secret the App accepts (checked first, so a provider is not saved without it).
const MAX_SECRET_CHARS: usize = 1024;

/// The SSO configuration, through the operators' use case (anyone else is refused there).
async fn settings(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
) -> Result<SsoSettingsView, Response> {
    console
        .app
        .get_sso_settings(&viewer.caller, &http::request_id(req))
        .await
        .map_err(|error| errors::app_error(viewer, req, &error))
}

/// The registered partitions, for the mapping rows' partition choice and the preview.
async fn partitions(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
) -> Result<Vec<PartitionRecord>, Response> {
    console
        .app
        .list_all_partitions(&viewer.caller, &http::request_id(req))
        .await
        .map_err(|error| errors::app_error(viewer, req, &error))
}

/// The configured provider `id` ("not found" for an unknown id or one that cannot be an id).
#[allow(
    clippy::result_large_err,
    reason = "the error is the page to answer, like the async helpers' (built once per request)"
)]
fn provider<'a>(
    viewer: &Viewer,
    req: &Request,
    view: &'a SsoSettingsView,
    id: &str,
) -> Result<&'a SsoProviderConfig, Response> {
    Some(id)
        .filter(|id| is_provider_id(id))
        .and_then(|id| view.config.provider(id))
        .ok_or_else(|| errors::app_error(viewer, req, &AppError::NotFound { what: "provider" }))
}

/// What a refused change says on its form: the App's validation message, or `None` for errors
/// that need an error page.
fn form_error(error: &AppError) -> Option<String> {
    matches!(
        error,
        AppError::InvalidInput { .. } | AppError::Conflict { .. }
    )
    .then(|| sentence(&error.to_string()))
}

// ---------------------------------------------------------------- the overview

#[derive(Template)]
#[template(path = "pages/platform_sso.html")]
struct SettingsPage {
    layout: Layout,
    local_login: bool,
    rows: Vec<ProviderRow>,
    /// `<origin>/login/sso/`, the start of every provider's redirect URI.
    callback_base: String,
    error: Option<String>,
}

fn settings_page(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    view: &SsoSettingsView,
    local_login: bool,
    error: Option<String>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let layout = viewer.layout(
        PageMeta::new(ACTIVE, SECTION, "Single sign-on")
            .subtitle("Who may sign in through your identity providers, and what they get."),
        req,
    );
    let page = SettingsPage {
        layout,
        local_login,
        rows: view
            .config
            .providers
            .iter()
            .map(|provider| ProviderRow::of(provider, &view.secrets))
            .collect(),
        callback_base: format!("{}/login/sso/", console.origin(req).unwrap_or_default()),
        error,
    };
    http::html(status, &page)
}

/// `GET /platform/sso`.
#[handler]
pub(crate) async fn show_settings(req: &Request, console: Data<&Arc<Console>>) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    match settings(&console, &viewer, req).await {
        Ok(view) => settings_page(&console, &viewer, req, &view, view.config.local_login, None),
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LocalLoginForm {
    #[serde(default)]
    csrf: String,
    /// The checkbox: present (`on`) when password sign-in stays offered to everybody.
    #[serde(default)]
    local_login: String,
}

/// `POST /platform/sso`: password sign-in for everybody, or only as the administrators'
/// break-glass.
#[handler]
pub(crate) async fn update_local_login(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<LocalLoginForm>,
) -> Response {
    let viewer = match form_viewer(&console, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let view = match settings(&console, &viewer, req).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    let local_login = !form.local_login.is_empty();
    let mut config = view.config.clone();
    config.local_login = local_login;
    match console
        .app
        .update_sso_settings(&viewer.caller, &http::request_id(req), config)
        .await
    {
        Ok(_) => http::redirect(&format!("/platform/sso?done=sso_saved{TO_NOTICES}"), &[]),
        Err(error) => match form_error(&error) {
            Some(message) => {
                settings_page(&console, &viewer, req, &view, local_login, Some(message))
            }
            None => errors::app_error(&viewer, req, &error),
        },
    }
}

// ---------------------------------------------------------------- one provider

#[derive(Template)]
#[template(path = "pages/sso_provider.html")]
struct ProviderPage {
    layout: Layout,
    form: ProviderForm,
    /// The preview card (saved providers only).
    preview: Option<PreviewView>,
    /// The redirect URI to register at the provider.
    callback_url: String,
    delete_error: Option<String>,
}

/// The provider page (the form, the preview and deletion) or, for a new provider, the form.
fn provider_page(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    form: ProviderForm,
    preview: Option<PreviewView>,
    delete_error: Option<String>,
) -> Response {
    let status = if form.error.is_some() || delete_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let meta = if form.is_new {
        PageMeta::new(ACTIVE, SECTION, "Add an identity provider").subtitle(
            "Register keymanager at your identity provider first: it gives you the client id and secret.",
        )
    } else {
        PageMeta::new(ACTIVE, SECTION, format!("Provider {}", form.id)).subtitle(
            "Protocol settings, who may sign in, and which roles their groups and roles grant.",
        )
    };
    let id = if form.is_new {
        "<id>"
    } else {
        form.id.as_str()
    };
    let callback_url = format!(
        "{}/login/sso/{id}/callback",
        console.origin(req).unwrap_or_default()
    );
    let page = ProviderPage {
        layout: viewer.layout(meta, req),
        form,
        preview,
        callback_url,
        delete_error,
    };
    http::html(status, &page)
}

/// `GET /platform/sso/new`.
#[handler]
pub(crate) async fn new_provider(req: &Request, console: Data<&Arc<Console>>) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    // Asked first so that only operators see even the empty form.
    if let Err(response) = settings(&console, &viewer, req).await {
        return response;
    }
    match partitions(&console, &viewer, req).await {
        Ok(partitions) => {
            let form = ProviderForm::blank().with_scopes(&partitions);
            provider_page(&console, &viewer, req, form, None, None)
        }
        Err(response) => response,
    }
}

/// `GET /platform/sso/{id}`.
#[handler]
pub(crate) async fn show_provider(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(id): Path<String>,
) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    saved_provider_page(&console, &viewer, req, &id, PreviewView::default(), None).await
}

/// A saved provider's page with its configuration as stored.
async fn saved_provider_page(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    id: &str,
    preview: PreviewView,
    delete_error: Option<String>,
) -> Response {
    let view = match settings(console, viewer, req).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    let provider = match provider(viewer, req, &view, id) {
        Ok(provider) => provider,
        Err(response) => return response,
    };
    let partitions = match partitions(console, viewer, req).await {
        Ok(partitions) => partitions,
        Err(response) => return response,
    };
    let form =
        ProviderForm::of(provider, secret_stored(&view.secrets, id)).with_scopes(&partitions);
    provider_page(console, viewer, req, form, Some(preview), delete_error)
}

/// `POST /platform/sso/new`.
#[handler]
pub(crate) async fn create_provider(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(input): Form<ProviderInput>,
) -> Response {
    save_provider(&console, req, None, input).await
}

/// `POST /platform/sso/{id}`.
#[handler]
pub(crate) async fn update_provider(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(id): Path<String>,
    Form(input): Form<ProviderInput>,
) -> Response {
    save_provider(&console, req, Some(&id), input).await
}

/// Adds (`saved_id` None) or replaces a provider in the whole configuration, then stores the
/// client secret if one was typed. Refusals are shown on the form with what was submitted
/// (except the secret).
async fn save_provider(
    console: &Console,
    req: &Request,
    saved_id: Option<&str>,
    mut input: ProviderInput,
) -> Response {
    let viewer = match form_viewer(console, req, &input.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let view = match settings(console, &viewer, req).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    if let Some(id) = saved_id
        && let Err(response) = provider(&viewer, req, &view, id)
    {
        return response;
    }
    let partitions = match partitions(console, &viewer, req).await {
        Ok(partitions) => partitions,
        Err(response) => return response,
    };
    let is_new = saved_id.is_none();
    let id = saved_id.map_or_else(|| input.id().to_owned(), str::to_owned);
    let secret = input.take_secret();
    let stored = secret_stored(&view.secrets, &id);
    let again = |message: String| {
        let form = input
            .form(&id, is_new, stored)
            .with_scopes(&partitions)
            .with_error(message);
        let preview = (!is_new).then(PreviewView::default);
        provider_page(console, &viewer, req, form, preview, None)
    };
    let configured = match input.provider(&id) {
        Ok(configured) => configured,
        Err(message) => return again(message),
    };
    if secret
        .as_ref()
        .is_some_and(|secret| secret.char_count() > MAX_SECRET_CHARS)
    {
        return again(format!(
            "The client secret is at most {MAX_SECRET_CHARS} characters."
        ));
    }
    let mut config = view.config.clone();
    match config
        .providers
        .iter_mut()
        .find(|existing| existing.settings.id == id)
    {
        Some(_) if is_new => {
            return again(format!(
                "There is a provider \"{id}\" already: choose another id, or edit that one."
            ));
        }
        Some(existing) => *existing = configured,
        None => config.providers.push(configured),
    }
    let rid = http::request_id(req);
    if let Err(error) = console
        .app
        .update_sso_settings(&viewer.caller, &rid, config)
        .await
    {
        return match form_error(&error) {
            Some(message) => again(message),
            None => errors::app_error(&viewer, req, &error),
        };
    }
    let done = match secret {
        None => "sso_provider_saved",
        Some(secret) => match console
            .app
            .set_sso_client_secret(&viewer.caller, &rid, &id, &secret)
            .await
        {
            Ok(()) => "sso_provider_saved_secret",
            Err(error) => {
                tracing::warn!(%error, provider = %id, "provider saved, client secret refused");
                "sso_provider_saved_no_secret"
            }
        },
    };
    http::redirect(&format!("/platform/sso/{id}?done={done}{TO_NOTICES}"), &[])
}

/// `POST /platform/sso/{id}/preview`: what a sign-in with the typed groups and roles would get
/// under the saved mapping.
#[handler]
pub(crate) async fn preview_mapping(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(id): Path<String>,
    Form(input): Form<PreviewInput>,
) -> Response {
    let viewer = match form_viewer(&console, req, &input.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if !is_provider_id(&id) {
        return errors::app_error(&viewer, req, &AppError::NotFound { what: "provider" });
    }
    let rid = http::request_id(req);
    let groups = lines(&input.groups);
    let roles = lines(&input.roles);
    let decided = match console.app.sso_mapping_of(&viewer.caller, &rid, &id).await {
        Ok(mapping) => console
            .app
            .preview_sso_mapping(&viewer.caller, &rid, &mapping, &groups, &roles)
            .await
            .map(|decision| (mapping, decision)),
        Err(error) => Err(error),
    };
    let (mapping, decision) = match decided {
        Ok(decided) => decided,
        Err(error) => return errors::app_error(&viewer, req, &error),
    };
    let partitions = match partitions(&console, &viewer, req).await {
        Ok(partitions) => partitions,
        Err(response) => return response,
    };
    let preview = PreviewView {
        result: Some(PreviewResult::of(&decision, &mapping, &partitions)),
        groups: input.groups,
        roles: input.roles,
    };
    saved_provider_page(&console, &viewer, req, &id, preview, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeleteForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /platform/sso/{id}/delete`.
#[handler]
pub(crate) async fn delete_provider(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(id): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Response {
    let viewer = match form_viewer(&console, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let view = match settings(&console, &viewer, req).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    if let Err(response) = provider(&viewer, req, &view, &id) {
        return response;
    }
    let mut config = view.config.clone();
    config
        .providers
        .retain(|existing| existing.settings.id != id);
    match console
        .app
        .update_sso_settings(&viewer.caller, &http::request_id(req), config)
        .await
    {
        Ok(_) => http::redirect(
            &format!("/platform/sso?done=sso_provider_deleted{TO_NOTICES}"),
            &[],
        ),
        Err(error) => match form_error(&error) {
            Some(message) => {
                saved_provider_page(
                    &console,
                    &viewer,
                    req,
                    &id,
                    PreviewView::default(),
                    Some(message),
                )
                .await
            }
            None => errors::app_error(&viewer, req, &error),
        },
    }
}
