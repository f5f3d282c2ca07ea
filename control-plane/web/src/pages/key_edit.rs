//! Editing a key's metadata (owner, description, tags, end of crypto-period, rotation schedule)
//! and the partition's key settings (the destruction waiting period). Both go through the same
//! App use cases as the REST API; the pages only offer the forms to viewers who may use them.

use std::sync::Arc;

use askama::Template;
use km_core::keys::{DEFAULT_ROTATION_GRACE_SECS, RotationPolicy};
use km_core::{AppError, KeyMetadataUpdate};
use km_domain::{Action, MIN_WAITING_PERIOD_SECS, WaitingPeriod};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::keys::{current_tenant, explainable, explained_status, key_href, parse_when};
use super::{errors, form_viewer};
use crate::fmt;
use crate::http;
use crate::viewer::{self, Console, Layout, Need, PageMeta, Viewer};

const DAY: u64 = 24 * 60 * 60;

/// The metadata form, as typed (kept on errors).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct MetadataForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    expires_at: String,
    #[serde(default)]
    rotation_days: String,
    #[serde(default)]
    grace_days: String,
}

/// Whole days from a form field; empty is `None`.
fn days(what: &str, text: &str) -> Result<Option<u64>, String> {
    match text.trim() {
        "" => Ok(None),
        text => text
            .parse::<u64>()
            .map(|days| Some(days.saturating_mul(DAY)))
            .map_err(|_| format!("{what}: enter a whole number of days, or leave it empty.")),
    }
}

impl MetadataForm {
    /// Every field, as a full replacement of the key's metadata.
    fn update(&self) -> Result<KeyMetadataUpdate, String> {
        let text = |value: &str| Some(value.trim().to_owned()).filter(|value| !value.is_empty());
        let rotation = match days("Rotation interval", &self.rotation_days)? {
            None => None,
            Some(interval_secs) => Some(RotationPolicy {
                interval_secs,
                grace_secs: days("Grace period", &self.grace_days)?
                    .unwrap_or(DEFAULT_ROTATION_GRACE_SECS),
            }),
        };
        Ok(KeyMetadataUpdate {
            owner: Some(text(&self.owner)),
            description: Some(text(&self.description)),
            tags: Some(
                self.tags
                    .split(',')
                    .map(str::trim)
                    .filter(|tag| !tag.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            expires_at: Some(parse_when("Expiry", &self.expires_at)?),
            rotation: Some(rotation),
        })
    }
}

#[derive(Template)]
#[template(path = "pages/key_edit.html")]
struct KeyEditPage {
    layout: Layout,
    label: String,
    href: String,
    form: MetadataForm,
    error: Option<String>,
}

async fn edit_page(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    label: &str,
    typed: Option<(MetadataForm, StatusCode, String)>,
) -> Response {
    let tenant = match current_tenant(viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let key = match console
        .app
        .get_key(&viewer.caller, &http::request_id(req), &tenant, label)
        .await
    {
        Ok(key) => key,
        Err(error) => return errors::app_error(viewer, req, &error),
    };
    let (form, status, error) = match typed {
        Some((form, status, error)) => (form, status, Some(error)),
        None => {
            let s = &key.summary;
            let form = MetadataForm {
                owner: s.owner.clone().unwrap_or_default(),
                description: s.description.clone().unwrap_or_default(),
                tags: s.tags.join(", "),
                expires_at: s.expires_at.map(fmt::datetime_local).unwrap_or_default(),
                rotation_days: key
                    .rotation
                    .map(|r| (r.interval_secs / DAY).to_string())
                    .unwrap_or_default(),
                grace_days: key
                    .rotation
                    .map(|r| (r.grace_secs / DAY).to_string())
                    .unwrap_or_default(),
                ..MetadataForm::default()
            };
            (form, StatusCode::OK, None)
        }
    };
    let layout = viewer.layout(
        PageMeta::new("keys", "Keys", format!("Edit {label}"))
            .subtitle("Owner, description, tags, crypto-period and rotation schedule."),
        req,
    );
    http::html(
        status,
        &KeyEditPage {
            layout,
            label: key.summary.label.clone(),
            href: key_href(&key.summary.label),
            form,
            error,
        },
    )
}

/// `GET /keys/{label}/edit`.
#[handler]
pub(crate) async fn edit_form(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(label): Path<String>,
) -> Response {
    match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => edit_page(&console, &viewer, req, &label, None).await,
        Err(response) => response,
    }
}

/// `POST /keys/{label}/edit`: replaces the key's metadata (adopting an unmanaged key).
#[handler]
pub(crate) async fn edit_submit(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(label): Path<String>,
    Form(form): Form<MetadataForm>,
) -> Response {
    let viewer = match form_viewer(&console, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let tenant = match current_tenant(&viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let update = match form.update() {
        Ok(update) => update,
        Err(message) => {
            let typed = (form, StatusCode::UNPROCESSABLE_ENTITY, message);
            return edit_page(&console, &viewer, req, &label, Some(typed)).await;
        }
    };
    match console
        .app
        .update_key_metadata(
            &viewer.caller,
            &http::request_id(req),
            &tenant,
            &label,
            update,
        )
        .await
    {
        Ok(_) => http::redirect(
            &format!("{}?done=key_metadata_saved#notices", key_href(&label)),
            &[],
        ),
        Err(error) if explainable(&error) => {
            let typed = (form, explained_status(&error), error.to_string());
            edit_page(&console, &viewer, req, &label, Some(typed)).await
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

// ----- the partition's key settings -----

#[derive(Debug, Default, Deserialize)]
pub(crate) struct KeySettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    waiting_days: String,
}

#[derive(Template)]
#[template(path = "pages/key_settings.html")]
struct KeySettingsPage {
    layout: Layout,
    waiting_days: String,
    min_days: u64,
    can_edit: bool,
    error: Option<String>,
}

async fn settings_page(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    typed: Option<(String, StatusCode, String)>,
) -> Response {
    let tenant = match current_tenant(viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let settings = match console
        .app
        .get_tenant_key_settings(&viewer.caller, &http::request_id(req), &tenant)
        .await
    {
        Ok(settings) => settings,
        Err(error) => return errors::app_error(viewer, req, &error),
    };
    let (waiting_days, status, error) = match typed {
        Some((days, status, error)) => (days, status, Some(error)),
        None => (
            (settings.waiting_period.as_secs() / DAY).to_string(),
            StatusCode::OK,
            None,
        ),
    };
    let layout = viewer.layout(
        PageMeta::new("keys", "Keys", "Key settings")
            .subtitle("How this partition's keys are destroyed."),
        req,
    );
    http::html(
        status,
        &KeySettingsPage {
            layout,
            waiting_days,
            min_days: MIN_WAITING_PERIOD_SECS / DAY,
            can_edit: viewer.may(Action::UpdateSettings, Some(&tenant)),
            error,
        },
    )
}

/// `GET /settings/keys`.
#[handler]
pub(crate) async fn show_key_settings(req: &Request, console: Data<&Arc<Console>>) -> Response {
    match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => settings_page(&console, &viewer, req, None).await,
        Err(response) => response,
    }
}

/// `POST /settings/keys`.
#[handler]
pub(crate) async fn update_key_settings(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<KeySettingsForm>,
) -> Response {
    let viewer = match form_viewer(&console, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let tenant = match current_tenant(&viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let refuse = |status, message: String| Some((form.waiting_days.clone(), status, message));
    let period = days("Waiting period", &form.waiting_days)
        .and_then(|secs| {
            secs.ok_or_else(|| "Waiting period: enter a whole number of days.".to_owned())
        })
        .and_then(|secs| WaitingPeriod::from_secs(secs).map_err(|error| error.to_string()));
    let period = match period {
        Ok(period) => period,
        Err(message) => {
            let typed = refuse(StatusCode::UNPROCESSABLE_ENTITY, message);
            return settings_page(&console, &viewer, req, typed).await;
        }
    };
    match console
        .app
        .update_tenant_key_settings(
            &viewer.caller,
            &http::request_id(req),
            &tenant,
            km_core::TenantKeySettings {
                waiting_period: period,
            },
        )
        .await
    {
        Ok(_) => http::redirect("/settings/keys?done=key_settings_saved#notices", &[]),
        Err(error @ AppError::InvalidInput { .. }) => {
            let typed = refuse(StatusCode::UNPROCESSABLE_ENTITY, error.to_string());
            settings_page(&console, &viewer, req, typed).await
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_form_replaces_every_field() {
        let form = MetadataForm {
            owner: " team-payments ".into(),
            description: String::new(),
            tags: "prod, web,, ".into(),
            expires_at: "2030-01-02T03:04".into(),
            rotation_days: "90".into(),
            grace_days: String::new(),
            ..MetadataForm::default()
        };
        let update = form.update().unwrap();
        assert_eq!(update.owner, Some(Some("team-payments".into())));
        assert_eq!(update.description, Some(None));
        assert_eq!(update.tags, Some(vec!["prod".into(), "web".into()]));
        assert_eq!(update.expires_at, Some(Some(1_893_553_440)));
        assert_eq!(
            update.rotation,
            Some(Some(RotationPolicy {
                interval_secs: 90 * DAY,
                grace_secs: DEFAULT_ROTATION_GRACE_SECS,
            }))
        );
        assert_eq!(fmt::datetime_local(1_893_553_440), "2030-01-02T03:04");

        let cleared = MetadataForm::default().update().unwrap();
        assert_eq!(cleared.expires_at, Some(None));
        assert_eq!(cleared.rotation, Some(None));
    }

    #[test]
    fn bad_numbers_and_dates_are_named() {
        let form = MetadataForm {
            rotation_days: "ninety".into(),
            ..MetadataForm::default()
        };
        assert!(form.update().unwrap_err().starts_with("Rotation interval"));
        let form = MetadataForm {
            expires_at: "next year".into(),
            ..MetadataForm::default()
        };
        assert!(form.update().unwrap_err().starts_with("Expiry"));
    }
}
