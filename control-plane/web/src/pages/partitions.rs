//! A partition as its members see it — name, colour, status, what its TSB reports (version,
//! licence, keystore statistics) — and the member's own credentials for it. A partition the
//! viewer has no role on is "not found", exactly as the app layer answers.

use std::sync::Arc;

use askama::Template;
use km_core::{AppError, PartitionRecord};
use km_domain::{Action, PartitionStatus};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::http;
use crate::pages::{errors, form_viewer, path_tenant};
use crate::partitions::{ConnectionOutcome, CredentialForm, CredentialInput, Feedback};
use crate::viewer::{self, Console, Layout, Need, PageMeta, PartitionView, Viewer};

/// How the partition is reached (shown to platform operators only).
pub(crate) struct TargetSummary {
    pub endpoint: String,
    pub auth: &'static str,
    pub vault: String,
    pub private_ca: bool,
}

impl TargetSummary {
    pub(crate) fn of(record: &PartitionRecord) -> Self {
        Self {
            endpoint: record.target.endpoint.as_str().to_owned(),
            auth: record.target.auth.as_str(),
            vault: record.credentials.vault.clone(),
            private_ca: record.target.ca_pem.is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "pages/partition.html")]
struct PartitionPage {
    layout: Layout,
    partition: PartitionView,
    target: Option<TargetSummary>,
    /// `None` while the partition is suspended (nothing is asked of its HSM).
    outcome: Option<ConnectionOutcome>,
    own_credentials: bool,
    can_manage_own: bool,
    can_edit: bool,
}

/// The nav entry a partition page lights up: the partition entry when it is the current one.
fn active_for(viewer: &Viewer, record: &PartitionRecord) -> &'static str {
    if viewer.tenant() == Some(&record.id) {
        "partition"
    } else {
        ""
    }
}

/// `GET /partitions`: the current partition's page (the switcher returns here).
#[handler]
pub(crate) async fn show_current(req: &Request, console: Data<&Arc<Console>>) -> Response {
    match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => match viewer.tenant() {
            Some(tenant) => http::redirect(&format!("/partitions/{tenant}"), &[]),
            None => http::redirect("/", &[]),
        },
        Err(response) => response,
    }
}

/// `GET /partitions/{id}`.
#[handler]
pub(crate) async fn show_partition(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(id): Path<String>,
) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let tenant = match path_tenant(&viewer, req, &id) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let rid = http::request_id(req);
    let app = &console.app;
    let record = match app.get_partition(&viewer.caller, &rid, &tenant).await {
        Ok(record) => record,
        Err(error) => return errors::app_error(&viewer, req, &error),
    };
    let outcome = if record.status == PartitionStatus::Suspended {
        None
    } else {
        let status = app.partition_status(&viewer.caller, &rid, &tenant).await;
        match ConnectionOutcome::of(status) {
            Ok(outcome) => Some(outcome),
            // The page still shows the registration; the status card says what is wrong.
            Err(
                error @ (AppError::Conflict { .. }
                | AppError::VaultUnavailable { .. }
                | AppError::InvalidInput { .. }),
            ) => Some(ConnectionOutcome::Failed(error.to_string())),
            Err(error) => return errors::app_error(&viewer, req, &error),
        }
    };
    let own_credentials = match app
        .has_own_partition_credentials(&viewer.caller, &rid, &tenant)
        .await
    {
        Ok(kept) => kept,
        Err(error) => return errors::app_error(&viewer, req, &error),
    };
    let partition = PartitionView::new(&record, viewer.principal());
    let layout = viewer.layout(
        PageMeta::new(
            active_for(&viewer, &record),
            "Partition",
            partition.name.clone(),
        )
        .subtitle("What the partition's TSB reports, and how you connect to it."),
        req,
    );
    let operator = viewer.is_partition_operator();
    http::html(
        StatusCode::OK,
        &PartitionPage {
            target: operator.then(|| TargetSummary::of(&record)),
            can_edit: viewer.may(Action::UpdatePartition, Some(&record.id)),
            can_manage_own: viewer.may(Action::ManageOwnPartitionCredentials, Some(&record.id)),
            layout,
            partition,
            outcome,
            own_credentials,
        },
    )
}

#[derive(Template)]
#[template(path = "pages/own_credentials.html")]
struct OwnCredentialsPage {
    layout: Layout,
    partition: PartitionView,
    kept: bool,
    fields: CredentialForm,
    feedback: Feedback,
}

/// What a re-rendered own-credentials page shows besides the registration.
#[derive(Default)]
struct OwnCredentialsState {
    fields: Option<CredentialForm>,
    feedback: Feedback,
}

async fn own_credentials_page(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    id: &str,
    state: OwnCredentialsState,
) -> Response {
    let tenant = match path_tenant(viewer, req, id) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let rid = http::request_id(req);
    let record = match console
        .app
        .get_partition(&viewer.caller, &rid, &tenant)
        .await
    {
        Ok(record) => record,
        Err(error) => return errors::app_error(viewer, req, &error),
    };
    let kept = match console
        .app
        .has_own_partition_credentials(&viewer.caller, &rid, &tenant)
        .await
    {
        Ok(kept) => kept,
        Err(error) => return errors::app_error(viewer, req, &error),
    };
    let status = if state.feedback.failed() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let partition = PartitionView::new(&record, viewer.principal());
    let layout = viewer.layout(
        PageMeta::new(active_for(viewer, &record), "Partition", "Your credentials").subtitle(
            format!(
                "Your own credentials for {}: your requests on it then authenticate as you.",
                partition.name
            ),
        ),
        req,
    );
    http::html(
        status,
        &OwnCredentialsPage {
            layout,
            partition,
            kept,
            fields: state
                .fields
                .unwrap_or_else(|| CredentialForm::for_target(&record.target, false)),
            feedback: state.feedback,
        },
    )
}

/// `GET /partitions/{id}/credentials`.
#[handler]
pub(crate) async fn show_own_credentials(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(id): Path<String>,
) -> Response {
    match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => {
            own_credentials_page(&console, &viewer, req, &id, OwnCredentialsState::default()).await
        }
        Err(response) => response,
    }
}

#[derive(Deserialize)]
pub(crate) struct OwnCredentialsForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    credentials: CredentialInput,
}

/// `POST /partitions/{id}/credentials`: tests and keeps the viewer's own credentials, then shows
/// what the TSB reported with them.
#[handler]
pub(crate) async fn set_own_credentials(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(id): Path<String>,
    Form(form): Form<OwnCredentialsForm>,
) -> Response {
    let viewer = match form_viewer(&console, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let tenant = match path_tenant(&viewer, req, &id) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let rid = http::request_id(req);
    let record = match console
        .app
        .get_partition(&viewer.caller, &rid, &tenant)
        .await
    {
        Ok(record) => record,
        Err(error) => return errors::app_error(&viewer, req, &error),
    };
    let fields =
        CredentialForm::for_target(&record.target, false).with_certificate(&form.credentials);
    let credentials = form.credentials.into_credentials(record.target.auth);
    let result = console
        .app
        .set_own_partition_credentials(&viewer.caller, &rid, &tenant, credentials)
        .await;
    // Saved or not, the page shows what the TSB said (success is not a redirect: the report is
    // the answer).
    match Feedback::of(result.map(Some)) {
        Ok(feedback) => {
            let state = OwnCredentialsState {
                fields: Some(fields),
                feedback: feedback.unwrap_or_default(),
            };
            own_credentials_page(&console, &viewer, req, &id, state).await
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfOnlyForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /partitions/{id}/credentials/remove`.
#[handler]
pub(crate) async fn remove_own_credentials(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnlyForm>,
) -> Response {
    let viewer = match form_viewer(&console, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let tenant = match path_tenant(&viewer, req, &id) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    match console
        .app
        .clear_own_partition_credentials(&viewer.caller, &http::request_id(req), &tenant)
        .await
    {
        Ok(()) => http::redirect(
            &format!("/partitions/{tenant}/credentials?done=own_credentials_removed"),
            &[],
        ),
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}
