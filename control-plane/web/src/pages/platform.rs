//! The partition registry for platform operators: the list of every registered partition, the
//! onboarding wizard (test the connection, then onboard), and one partition's edit page (name and
//! colour, suspend/resume, credential rotation, offboarding).
//!
//! Every page asks an operator-only use case first (`list_all_partitions`, `list_vaults`), so the
//! app layer refuses — and audits — anyone else; the console only hides the navigation entry.

use std::sync::Arc;

use askama::Template;
use km_core::{AppError, NewPartition, PartitionRecord, PartitionUpdate, VaultKind};
use km_domain::{Colour, DisplayName, PartitionStatus, TenantId};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::http;
use crate::pages::partitions::TargetSummary;
use crate::pages::{TO_NOTICES, errors, form_viewer, path_tenant};
use crate::partitions::{
    ColourInput, ColourPicker, CredentialForm, CredentialInput, Feedback, TargetInput,
};
use crate::viewer::{self, Console, Layout, Need, PageMeta, PartitionView, Viewer};

/// Nav entry of every page here.
const ACTIVE: &str = "platform-partitions";
/// Breadcrumb of every page here.
const SECTION: &str = "Platform";
/// Hint under the colour picker.
const COLOUR_HINT: &str = "Shown in the partition switcher and on every page of the partition.";

/// One row of the registry table.
pub(crate) struct PartitionRow {
    partition: PartitionView,
    target: TargetSummary,
}

#[derive(Template)]
#[template(path = "pages/platform_partitions.html")]
struct PartitionsPage {
    layout: Layout,
    rows: Vec<PartitionRow>,
}

/// `GET /platform/partitions`.
#[handler]
pub(crate) async fn show_partitions(req: &Request, console: Data<&Arc<Console>>) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let records = match console
        .app
        .list_all_partitions(&viewer.caller, &http::request_id(req))
        .await
    {
        Ok(records) => records,
        Err(error) => return errors::app_error(&viewer, req, &error),
    };
    let rows = records
        .iter()
        .map(|record| PartitionRow {
            partition: PartitionView::new(record, viewer.principal()),
            target: TargetSummary::of(record),
        })
        .collect();
    let layout = viewer.layout(
        PageMeta::new(ACTIVE, SECTION, "Partitions")
            .subtitle("The HSM partitions keymanager serves as tenants."),
        req,
    );
    http::html(StatusCode::OK, &PartitionsPage { layout, rows })
}

/// A vault in the wizard's select.
pub(crate) struct VaultOption {
    id: String,
    kind: VaultKind,
    selected: bool,
}

/// The wizard's own (non-credential) fields, as shown.
#[derive(Default)]
pub(crate) struct OnboardFields {
    id: String,
    display_name: String,
    vault: String,
}

#[derive(Template)]
#[template(path = "pages/onboard.html")]
struct OnboardPage {
    layout: Layout,
    form: OnboardFields,
    colours: ColourPicker,
    fields: CredentialForm,
    vaults: Vec<VaultOption>,
    feedback: Feedback,
}

/// Renders the wizard (after asking the app for the vaults, which only operators may list).
async fn onboard_page(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    page: OnboardPage,
) -> Response {
    let (vaults, default) = match console
        .app
        .list_vaults(&viewer.caller, &http::request_id(req))
        .await
    {
        Ok(vaults) => vaults,
        Err(error) => return errors::app_error(viewer, req, &error),
    };
    let chosen = Some(page.form.vault.as_str())
        .filter(|id| vaults.iter().any(|(vault, _)| vault == id))
        .map(str::to_owned)
        .or(default);
    let vaults = vaults
        .into_iter()
        .map(|(id, kind)| VaultOption {
            selected: chosen.as_deref() == Some(id.as_str()),
            id,
            kind,
        })
        .collect();
    let status = if page.feedback.failed() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    http::html(status, &OnboardPage { vaults, ..page })
}

fn onboard_layout(viewer: &Viewer, req: &Request) -> Layout {
    viewer.layout(
        PageMeta::new(ACTIVE, SECTION, "Onboard a partition").subtitle(
            "Register an HSM partition as a tenant: how to reach its TSB, and the credentials keymanager uses.",
        ),
        req,
    )
}

/// `GET /platform/partitions/new`.
#[handler]
pub(crate) async fn onboard_form(req: &Request, console: Data<&Arc<Console>>) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let page = OnboardPage {
        layout: onboard_layout(&viewer, req),
        form: OnboardFields::default(),
        colours: ColourPicker::new(None, COLOUR_HINT),
        fields: CredentialForm::blank(),
        vaults: Vec::new(),
        feedback: Feedback::default(),
    };
    onboard_page(&console, &viewer, req, page).await
}

/// Which button submitted a form with a connection test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    /// "Test connection": nothing is stored.
    Test,
    /// "Onboard" / "Replace credentials".
    Save,
}

impl Intent {
    /// Anything but an explicit save (a form submitted without its button, say) only tests.
    fn of(text: &str) -> Self {
        match text {
            "onboard" | "rotate" => Self::Save,
            _ => Self::Test,
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct OnboardForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    intent: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    vault: String,
    #[serde(flatten)]
    colour: ColourInput,
    #[serde(flatten)]
    target: TargetInput,
    #[serde(flatten)]
    credentials: CredentialInput,
}

impl OnboardForm {
    /// Id, name and colour of the new partition, or what to fix.
    fn registration(&self) -> Result<(TenantId, DisplayName, Option<Colour>), String> {
        let id = TenantId::parse(self.id.trim())
            .map_err(|invalid| format!("The partition id: {invalid}."))?;
        let display_name =
            DisplayName::parse(&self.display_name).map_err(|invalid| format!("The {invalid}."))?;
        Ok((id, display_name, self.colour.parse()?))
    }
}

/// `POST /platform/partitions/new`: "Test connection" re-renders the wizard with the TSB's report
/// or its error explained; "Onboard" registers the partition and returns to the list.
#[handler]
pub(crate) async fn onboard_submit(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(form): Form<OnboardForm>,
) -> Response {
    let viewer = match form_viewer(&console, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let mut page = OnboardPage {
        layout: onboard_layout(&viewer, req),
        form: OnboardFields {
            id: form.id.trim().to_owned(),
            display_name: form.display_name.clone(),
            vault: form.vault.clone(),
        },
        colours: form.colour.picker(COLOUR_HINT),
        fields: CredentialForm::resubmitted(&form.target, &form.credentials),
        vaults: Vec::new(),
        feedback: Feedback::default(),
    };
    let target = match form.target.parse() {
        Ok(target) => target,
        Err(message) => {
            page.feedback = Feedback::rejected(message);
            return onboard_page(&console, &viewer, req, page).await;
        }
    };
    let rid = http::request_id(req);
    let result = if Intent::of(&form.intent) == Intent::Test {
        let credentials = form.credentials.into_credentials(target.auth);
        console
            .app
            .test_partition_connection(&viewer.caller, &rid, &target, &credentials)
            .await
            .map(Some)
    } else {
        let (id, display_name, colour) = match form.registration() {
            Ok(registration) => registration,
            Err(message) => {
                page.feedback = Feedback::rejected(message);
                return onboard_page(&console, &viewer, req, page).await;
            }
        };
        let new = NewPartition {
            id,
            display_name,
            colour,
            vault: Some(form.vault.clone()).filter(|vault| !vault.is_empty()),
            credentials: form.credentials.into_credentials(target.auth),
            target,
        };
        console
            .app
            .onboard_partition(&viewer.caller, &rid, new)
            .await
            .map(|_| None)
    };
    match Feedback::of(result) {
        Ok(None) => http::redirect(&notice_on_list("partition_onboarded"), &[]),
        Ok(Some(feedback)) => {
            page.feedback = feedback;
            onboard_page(&console, &viewer, req, page).await
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

#[derive(Template)]
#[template(path = "pages/edit_partition.html")]
struct EditPage {
    layout: Layout,
    partition: PartitionView,
    target: TargetSummary,
    display_name: String,
    colours: ColourPicker,
    fields: CredentialForm,
    /// Of the credential rotation form.
    feedback: Feedback,
    details_error: Option<String>,
    offboard_error: Option<String>,
}

/// What a re-rendered edit page shows instead of the registration's values.
#[derive(Default)]
struct EditState {
    display_name: Option<String>,
    colour: Option<ColourInput>,
    fields: Option<CredentialForm>,
    feedback: Feedback,
    details_error: Option<String>,
    offboard_error: Option<String>,
}

impl EditState {
    fn failed(&self) -> bool {
        self.details_error.is_some() || self.offboard_error.is_some() || self.feedback.failed()
    }
}

/// The registration of `tenant`, read through the operators' list (so anyone else is refused
/// by the app, and an unknown id is "not found").
async fn registration(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    tenant: &TenantId,
) -> Result<PartitionRecord, Response> {
    let records = console
        .app
        .list_all_partitions(&viewer.caller, &http::request_id(req))
        .await
        .map_err(|error| errors::app_error(viewer, req, &error))?;
    records
        .into_iter()
        .find(|record| &record.id == tenant)
        .ok_or_else(|| errors::app_error(viewer, req, &AppError::NotFound { what: "partition" }))
}

async fn edit_page(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    tenant: &TenantId,
    state: EditState,
) -> Response {
    let record = match registration(console, viewer, req, tenant).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let status = if state.failed() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let partition = PartitionView::new(&record, viewer.principal());
    let layout = viewer.layout(
        PageMeta::new(ACTIVE, SECTION, format!("Edit {}", partition.name))
            .subtitle("Appearance, status, credentials and offboarding of this partition."),
        req,
    );
    let colours = match &state.colour {
        Some(input) => input.picker(COLOUR_HINT),
        None => ColourPicker::new(Some(&record.colour), COLOUR_HINT),
    };
    let page = EditPage {
        layout,
        target: TargetSummary::of(&record),
        display_name: state
            .display_name
            .unwrap_or_else(|| record.display_name.to_string()),
        colours,
        fields: state
            .fields
            .unwrap_or_else(|| CredentialForm::for_target(&record.target, true)),
        feedback: state.feedback,
        details_error: state.details_error,
        offboard_error: state.offboard_error,
        partition,
    };
    http::html(status, &page)
}

/// `GET /platform/partitions/{id}`.
#[handler]
pub(crate) async fn show_edit(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(id): Path<String>,
) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    match path_tenant(&viewer, req, &id) {
        Ok(tenant) => edit_page(&console, &viewer, req, &tenant, EditState::default()).await,
        Err(response) => response,
    }
}

/// The viewer and partition of a POST to an edit-page form.
async fn edit_context(
    console: &Console,
    req: &Request,
    csrf: &str,
    id: &str,
) -> Result<(Viewer, TenantId), Response> {
    let viewer = form_viewer(console, req, csrf).await?;
    let tenant = path_tenant(&viewer, req, id)?;
    Ok((viewer, tenant))
}

/// Where an edit-page change returns to, with its notice.
fn edited(tenant: &TenantId, done: &str) -> Response {
    http::redirect(
        &format!("/platform/partitions/{tenant}?done={done}{TO_NOTICES}"),
        &[],
    )
}

/// The registry list with a notice.
fn notice_on_list(done: &str) -> String {
    format!("/platform/partitions?done={done}{TO_NOTICES}")
}

#[derive(Deserialize)]
pub(crate) struct DetailsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    display_name: String,
    #[serde(flatten)]
    colour: ColourInput,
}

/// `POST /platform/partitions/{id}`: name and colour.
#[handler]
pub(crate) async fn update_details(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(id): Path<String>,
    Form(form): Form<DetailsForm>,
) -> Response {
    let (viewer, tenant) = match edit_context(&console, req, &form.csrf, &id).await {
        Ok(context) => context,
        Err(response) => return response,
    };
    let parsed = DisplayName::parse(&form.display_name)
        .map_err(|invalid| format!("The {invalid}."))
        .and_then(|name| Ok((name, form.colour.parse()?)));
    let message = match parsed {
        Ok((display_name, colour)) => {
            let update = PartitionUpdate {
                display_name: Some(display_name),
                colour,
                status: None,
            };
            match console
                .app
                .update_partition(&viewer.caller, &http::request_id(req), &tenant, update)
                .await
            {
                Ok(_) => return edited(&tenant, "partition_saved"),
                Err(error @ AppError::InvalidInput { .. }) => error.to_string(),
                Err(error) => return errors::app_error(&viewer, req, &error),
            }
        }
        Err(message) => message,
    };
    let state = EditState {
        display_name: Some(form.display_name),
        colour: Some(form.colour),
        details_error: Some(message),
        ..EditState::default()
    };
    edit_page(&console, &viewer, req, &tenant, state).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
}

/// `POST /platform/partitions/{id}/status`: suspend or resume.
#[handler]
pub(crate) async fn set_status(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(id): Path<String>,
    Form(form): Form<StatusForm>,
) -> Response {
    let (viewer, tenant) = match edit_context(&console, req, &form.csrf, &id).await {
        Ok(context) => context,
        Err(response) => return response,
    };
    let (status, done) = match form.status.as_str() {
        "suspended" => (PartitionStatus::Suspended, "partition_suspended"),
        "active" => (PartitionStatus::Active, "partition_resumed"),
        _ => return http::bad_request(),
    };
    let update = PartitionUpdate {
        status: Some(status),
        ..PartitionUpdate::default()
    };
    match console
        .app
        .update_partition(&viewer.caller, &http::request_id(req), &tenant, update)
        .await
    {
        Ok(_) => edited(&tenant, done),
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

#[derive(Deserialize)]
pub(crate) struct RotateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    intent: String,
    #[serde(flatten)]
    target: TargetInput,
    #[serde(flatten)]
    credentials: CredentialInput,
}

/// `POST /platform/partitions/{id}/credentials`: "Test connection" with new credentials (and
/// possibly a new endpoint or auth mode), or replace them.
#[handler]
pub(crate) async fn rotate_credentials(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(id): Path<String>,
    Form(form): Form<RotateForm>,
) -> Response {
    let (viewer, tenant) = match edit_context(&console, req, &form.csrf, &id).await {
        Ok(context) => context,
        Err(response) => return response,
    };
    let mut state = EditState {
        fields: Some(CredentialForm::resubmitted(&form.target, &form.credentials)),
        ..EditState::default()
    };
    let target = match form.target.parse() {
        Ok(target) => target,
        Err(message) => {
            state.feedback = Feedback::rejected(message);
            return edit_page(&console, &viewer, req, &tenant, state).await;
        }
    };
    let current = match registration(&console, &viewer, req, &tenant).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let rid = http::request_id(req);
    let credentials = form.credentials.into_credentials(target.auth);
    let result = match Intent::of(&form.intent) {
        Intent::Test => console
            .app
            .test_partition_connection(&viewer.caller, &rid, &target, &credentials)
            .await
            .map(Some),
        Intent::Save => {
            let changed = (target != current.target).then_some(target);
            console
                .app
                .rotate_partition_credentials(&viewer.caller, &rid, &tenant, changed, credentials)
                .await
                .map(|_| None)
        }
    };
    match Feedback::of(result) {
        Ok(None) => edited(&tenant, "credentials_rotated"),
        Ok(Some(feedback)) => {
            state.feedback = feedback;
            edit_page(&console, &viewer, req, &tenant, state).await
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct OffboardForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /platform/partitions/{id}/offboard`: the operator typed the id to confirm.
#[handler]
pub(crate) async fn offboard(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(id): Path<String>,
    Form(form): Form<OffboardForm>,
) -> Response {
    let (viewer, tenant) = match edit_context(&console, req, &form.csrf, &id).await {
        Ok(context) => context,
        Err(response) => return response,
    };
    match console
        .app
        .offboard_partition(
            &viewer.caller,
            &http::request_id(req),
            &tenant,
            form.confirm.trim(),
        )
        .await
    {
        Ok(()) => http::redirect(&notice_on_list("partition_offboarded"), &[]),
        Err(error @ AppError::InvalidInput { .. }) => {
            let state = EditState {
                offboard_error: Some(error.to_string()),
                ..EditState::default()
            };
            edit_page(&console, &viewer, req, &tenant, state).await
        }
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}
