//! Keys of the current partition: the inventory (filters, cursor pages), the creation wizard, a
//! key's detail with its lifecycle actions, rotation and public-key export. Every read and change
//! is an `App` use case; the page only decides which controls to draw: an action appears when the
//! domain allows the transition from the key's state (`km_domain::transition`) and the viewer's
//! role allows the event's permission.

use std::sync::Arc;

use askama::Template;
use km_core::keys::{
    DEFAULT_ROTATION_GRACE_SECS, HistoryEntry, KeyEvent, KeyVersion, PendingChange, PendingRequest,
    PublicKeyMaterial, RotationPolicy, StoredSpec,
};
use km_core::{
    AppError, KeyDetail, KeyFilter, KeyQuery, KeySort, KeySummary, NewKey, PageRequest,
    PublicKeyFormat, StateChange,
};
use km_domain::{
    Action, Algorithm, Curve, KeyAttributes, KeySpec, KeyState, LifecycleEvent, SkaPolicy,
    TenantId, TransitionContext, WaitingPeriod, transition,
};
use poem::http::{StatusCode, header};
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};
use serde::Deserialize;
use time::PrimitiveDateTime;
use time::macros::format_description;

use crate::fmt;
use crate::http;
use crate::pages::{TO_NOTICES, errors, form_viewer};
use crate::viewer::{self, Console, Layout, Need, PageMeta, Viewer};

/// Keys per inventory page.
const PAGE_SIZE: u32 = 50;

// ----- shared helpers -----

/// Percent-encodes a path segment or query value (labels of unmanaged keys are the HSM's).
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The page of one key.
pub(super) fn key_href(label: &str) -> String {
    format!("/keys/{}", encode(label))
}

/// `EC secp256r1`, `RSA 2048`, `ML-DSA-65`: the algorithm with its size or curve.
fn spec_text(spec: &StoredSpec) -> String {
    spec.to_spec().map_or_else(
        |_| match spec.key_size {
            Some(size) => format!("{} {size}", spec.algorithm),
            None => spec.algorithm.clone(),
        },
        |spec| spec.to_string(),
    )
}

/// The viewer's current partition (the keys pages are about it).
#[allow(
    clippy::result_large_err,
    reason = "the error is the page to answer, like the async helpers' (built once per request)"
)]
pub(super) fn current_tenant(viewer: &Viewer, req: &Request) -> Result<TenantId, Response> {
    viewer
        .tenant()
        .cloned()
        .ok_or_else(|| errors::forbidden(viewer, req))
}

/// A refusal the person can act on (shown next to the form or the actions): the App's message.
pub(super) fn explainable(error: &AppError) -> bool {
    matches!(
        error,
        AppError::InvalidInput { .. } | AppError::Conflict { .. }
    )
}

pub(super) fn explained_status(error: &AppError) -> StatusCode {
    match error {
        AppError::Conflict { .. } => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

// ----- the inventory -----

pub(crate) struct KeyRow {
    label: String,
    href: String,
    spec: String,
    state: &'static str,
    managed: bool,
    tags: Vec<String>,
    expires: String,
}

impl KeyRow {
    fn of(key: &KeySummary) -> Self {
        Self {
            label: key.label.clone(),
            href: key_href(&key.label),
            spec: spec_text(&key.spec),
            state: key.state.as_str(),
            managed: key.managed,
            tags: key.tags.clone(),
            expires: key.expires_at.map(fmt::datetime).unwrap_or_default(),
        }
    }
}

/// The filters of the inventory, as the GET form sends them.
#[derive(Default)]
pub(crate) struct ListFilters {
    prefix: String,
    algorithm: String,
    state: String,
    tag: String,
    /// `30` = keys whose crypto-period ends within 30 days (or already ended).
    expiring: String,
    /// `label` (default), `created` or `expiry`.
    sort: String,
}

/// The list's sort orders, as the GET form offers them.
const SORTS: [(&str, &str); 3] = [
    ("label", "Label"),
    ("created", "Created, oldest first"),
    ("expiry", "Expiry, soonest first"),
];

/// The "expiring within" choices, in days.
const EXPIRING_WITHIN: [(&str, &str); 3] = [
    ("7", "Expiring within 7 days"),
    ("30", "Expiring within 30 days"),
    ("90", "Expiring within 90 days"),
];

impl ListFilters {
    fn from_query(req: &Request) -> Self {
        let get = |name| {
            viewer::query_param(req, name)
                .map(|value| value.trim().to_owned())
                .unwrap_or_default()
        };
        Self {
            prefix: get("prefix"),
            algorithm: get("algorithm"),
            state: get("state"),
            tag: get("tag"),
            expiring: get("expiring"),
            sort: get("sort"),
        }
    }

    /// The sort asked for (unknown names sort by label).
    fn sort(&self) -> KeySort {
        match self.sort.as_str() {
            "created" => KeySort::Created,
            "expiry" => KeySort::Expiry,
            _ => KeySort::Label,
        }
    }

    fn to_filter(&self, now: u64) -> KeyFilter {
        let some = |text: &str| Some(text.to_owned()).filter(|text| !text.is_empty());
        KeyFilter {
            prefix: some(&self.prefix),
            tag: some(&self.tag),
            algorithm: some(&self.algorithm),
            state: KeyState::ALL
                .into_iter()
                .find(|state| state.as_str() == self.state),
            expiring_before: EXPIRING_WITHIN
                .iter()
                .find(|(days, _)| *days == self.expiring)
                .and_then(|(days, _)| days.parse::<u64>().ok())
                .map(|days| now.saturating_add(days * 24 * 60 * 60)),
        }
    }

    fn is_empty(&self) -> bool {
        [
            &self.prefix,
            &self.algorithm,
            &self.state,
            &self.tag,
            &self.expiring,
        ]
        .iter()
        .all(|value| value.is_empty())
    }

    /// The list's URL with these filters and `cursor`.
    fn href(&self, cursor: &str) -> String {
        let pairs = [
            ("prefix", self.prefix.as_str()),
            ("algorithm", self.algorithm.as_str()),
            ("state", self.state.as_str()),
            ("tag", self.tag.as_str()),
            ("expiring", self.expiring.as_str()),
            ("sort", self.sort.as_str()),
            ("cursor", cursor),
        ];
        let query: Vec<String> = pairs
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect();
        format!("/keys?{}", query.join("&"))
    }
}

#[derive(Template)]
#[template(path = "pages/keys.html")]
struct KeysPage {
    layout: Layout,
    keys: Vec<KeyRow>,
    filters: ListFilters,
    algorithms: Vec<&'static str>,
    states: [KeyState; 7],
    sorts: &'static [(&'static str, &'static str)],
    expiring_within: &'static [(&'static str, &'static str)],
    next_href: Option<String>,
    first_href: Option<String>,
    can_create: bool,
    expiry_alert: Option<super::dashboard::ExpiryAlert>,
}

/// `GET /keys`: one page of the current partition's keys.
#[handler]
pub(crate) async fn show_keys(req: &Request, console: Data<&Arc<Console>>) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let tenant = match current_tenant(&viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let filters = ListFilters::from_query(req);
    let cursor = viewer::query_param(req, "cursor").filter(|cursor| !cursor.is_empty());
    let query = KeyQuery {
        filter: filters.to_filter(console.app.clock().now()),
        sort: filters.sort(),
        page: PageRequest {
            cursor: cursor.clone(),
            limit: Some(PAGE_SIZE),
        },
    };
    let page = match console
        .app
        .list_keys(&viewer.caller, &http::request_id(req), &tenant, &query)
        .await
    {
        Ok(page) => page,
        Err(error) => return errors::app_error(&viewer, req, &error),
    };
    let layout = viewer.layout(
        PageMeta::new("keys", "Partition", "Keys")
            .subtitle("The keys of this partition's HSM, managed by keymanager or not."),
        req,
    );
    let mut algorithms: Vec<&'static str> = Algorithm::all()
        .into_iter()
        .map(Algorithm::as_tsb_str)
        .collect();
    algorithms.dedup();
    http::html(
        StatusCode::OK,
        &KeysPage {
            layout,
            keys: page.items.iter().map(KeyRow::of).collect(),
            next_href: page.next_cursor.map(|next| filters.href(&next)),
            first_href: cursor.map(|_| filters.href("")),
            filters,
            algorithms,
            states: KeyState::ALL,
            sorts: &SORTS,
            expiring_within: &EXPIRING_WITHIN,
            can_create: viewer.may(Action::CreateKey, Some(&tenant)),
            expiry_alert: super::dashboard::expiry_alert(&console, &viewer, &http::request_id(req))
                .await,
        },
    )
}

// ----- the creation wizard -----

/// A usage checkbox: the private operation with its public counterpart.
struct UsageChoice {
    value: &'static str,
    label: &'static str,
}

const USAGES: [UsageChoice; 4] = [
    UsageChoice {
        value: "sign",
        label: "Sign / verify",
    },
    UsageChoice {
        value: "encrypt",
        label: "Encrypt / decrypt",
    },
    UsageChoice {
        value: "wrap",
        label: "Wrap / unwrap",
    },
    UsageChoice {
        value: "derive",
        label: "Derive",
    },
];

/// The usages an algorithm supports, in [`USAGES`] order.
fn supported_usages(algorithm: Algorithm) -> Vec<&'static str> {
    let c = algorithm.capabilities();
    [
        (c.sign, "sign"),
        (c.decrypt, "encrypt"),
        (c.unwrap, "wrap"),
        (c.derive, "derive"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| name)
    .collect()
}

/// The usage ticked by default: the family's main one (signing, else encryption, else wrapping).
fn default_usage(algorithm: Algorithm) -> &'static str {
    supported_usages(algorithm)
        .first()
        .copied()
        .unwrap_or("sign")
}

/// The family an algorithm is listed under in the wizard.
fn family(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::Rsa
        | Algorithm::Dsa
        | Algorithm::Ec
        | Algorithm::Ed
        | Algorithm::Bls
        | Algorithm::Iss => 0,
        Algorithm::MlKem512 | Algorithm::MlKem768 | Algorithm::MlKem1024 => 1,
        Algorithm::Aes
        | Algorithm::Camellia
        | Algorithm::ChaCha20
        | Algorithm::Tdea
        | Algorithm::HmacSha256 => 2,
        Algorithm::MlDsa44
        | Algorithm::MlDsa65
        | Algorithm::MlDsa87
        | Algorithm::SlhDsa(_)
        | Algorithm::Lms
        | Algorithm::XmssSha256
        | Algorithm::XmssShake256 => 3,
    }
}

const FAMILIES: [&str; 4] = [
    "Asymmetric signing (RSA and EC also encrypt, EC derives)",
    "Key agreement & encryption (post-quantum KEM)",
    "Symmetric",
    "Post-quantum signing",
];

pub(crate) struct AlgorithmOption {
    name: &'static str,
    usages: String,
    default_usage: &'static str,
}

pub(crate) struct AlgorithmGroup {
    label: &'static str,
    options: Vec<AlgorithmOption>,
}

/// The size or curve choice of one algorithm (shown only while it is the chosen algorithm).
pub(crate) struct ParamSection {
    algorithm: &'static str,
    field: String,
    label: &'static str,
    choices: Vec<(String, String)>,
}

fn algorithm_groups() -> Vec<AlgorithmGroup> {
    let mut groups: Vec<AlgorithmGroup> = FAMILIES
        .iter()
        .map(|label| AlgorithmGroup {
            label,
            options: Vec::new(),
        })
        .collect();
    for algorithm in Algorithm::all() {
        if let Some(group) = groups.get_mut(family(algorithm)) {
            group.options.push(AlgorithmOption {
                name: algorithm.as_tsb_str(),
                usages: supported_usages(algorithm).join(" "),
                default_usage: default_usage(algorithm),
            });
        }
    }
    groups
}

fn param_field(algorithm: Algorithm) -> String {
    format!("param_{}", algorithm.as_tsb_str())
}

fn param_sections() -> Vec<ParamSection> {
    Algorithm::all()
        .into_iter()
        .filter_map(|algorithm| {
            let (label, choices): (_, Vec<(String, String)>) = if algorithm.needs_curve() {
                let edwards = algorithm == Algorithm::Ed;
                let curves = Curve::ALL
                    .iter()
                    .filter(|curve| curve.is_edwards() == edwards)
                    .map(|curve| (curve.name().to_owned(), curve.name().to_owned()))
                    .collect();
                ("Curve", curves)
            } else if !algorithm.key_sizes().is_empty() {
                let unit = if algorithm == Algorithm::Iss {
                    "security level"
                } else {
                    "bits"
                };
                let sizes = algorithm
                    .key_sizes()
                    .iter()
                    .map(|size| (size.to_string(), format!("{size} {unit}")))
                    .collect();
                ("Key size", sizes)
            } else {
                return None;
            };
            Some(ParamSection {
                algorithm: algorithm.as_tsb_str(),
                field: param_field(algorithm),
                label,
                choices,
            })
        })
        .collect()
}

/// What the wizard shows in its fields (the defaults, or what was entered).
pub(crate) struct KeyForm {
    label: String,
    algorithm: String,
    /// `(field, value)` of the size/curve selects.
    params: Vec<(String, String)>,
    usages: Vec<String>,
    extractable: bool,
    destroyable: bool,
    activation: String,
    expiry: String,
    owner: String,
    description: String,
    tags: String,
    rotation_days: String,
}

impl Default for KeyForm {
    fn default() -> Self {
        Self {
            label: String::new(),
            algorithm: Algorithm::Ec.as_tsb_str().to_owned(),
            params: vec![
                (param_field(Algorithm::Ec), Curve::P256.name().to_owned()),
                (param_field(Algorithm::Rsa), "3072".to_owned()),
                (param_field(Algorithm::Aes), "256".to_owned()),
            ],
            usages: vec![default_usage(Algorithm::Ec).to_owned()],
            extractable: false,
            destroyable: true,
            activation: String::new(),
            expiry: String::new(),
            owner: String::new(),
            description: String::new(),
            tags: String::new(),
            rotation_days: String::new(),
        }
    }
}

impl KeyForm {
    /// The form as posted (every field is read by name: the size/curve selects are one per
    /// algorithm, the usages a repeated checkbox).
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        Self {
            label: get("label").trim().to_owned(),
            algorithm: get("algorithm"),
            params: pairs
                .iter()
                .filter(|(key, _)| key.starts_with("param_"))
                .cloned()
                .collect(),
            usages: pairs
                .iter()
                .filter(|(key, _)| key == "usage")
                .map(|(_, value)| value.clone())
                .collect(),
            extractable: !get("extractable").is_empty(),
            destroyable: !get("destroyable").is_empty(),
            activation: get("activation_at"),
            expiry: get("expires_at"),
            owner: get("owner"),
            description: get("description"),
            tags: get("tags"),
            rotation_days: get("rotation_days"),
        }
    }

    fn param(&self, field: &str) -> &str {
        self.params
            .iter()
            .find(|(key, _)| key == field)
            .map_or("", |(_, value)| value.as_str())
    }

    fn uses(&self, usage: &str) -> bool {
        self.usages.iter().any(|u| u == usage)
    }

    /// The App's input, or what to correct in the form.
    fn to_new_key(&self) -> Result<NewKey, String> {
        let algorithm = Algorithm::parse(&self.algorithm).map_err(|error| error.to_string())?;
        let param = self.param(&param_field(algorithm)).trim();
        let param = Some(param).filter(|param| !param.is_empty());
        let spec = if algorithm.needs_curve() {
            KeySpec::new(algorithm, None, param)
        } else {
            let size = param
                .map(|size| size.parse::<u32>())
                .transpose()
                .map_err(|_| "Choose a key size from the list.".to_owned())?;
            KeySpec::new(algorithm, size, None)
        }
        .map_err(|error| error.to_string())?;
        let sign = self.uses("sign");
        let encrypt = self.uses("encrypt");
        let wrap = self.uses("wrap");
        let attributes = KeyAttributes {
            sign,
            verify: sign,
            decrypt: encrypt,
            encrypt,
            unwrap: wrap,
            wrap,
            derive: self.uses("derive"),
            extractable: self.extractable,
            destroyable: self.destroyable,
            modifiable: true,
            sensitive: true,
            ..KeyAttributes::default()
        };
        let rotation = match self.rotation_days.trim() {
            "" => None,
            days => {
                let days: u64 = days.parse().map_err(|_| {
                    "Rotation interval: enter a whole number of days, or leave it empty.".to_owned()
                })?;
                Some(RotationPolicy {
                    interval_secs: days.saturating_mul(86_400),
                    grace_secs: DEFAULT_ROTATION_GRACE_SECS,
                })
            }
        };
        let text = |value: &str| Some(value.trim().to_owned()).filter(|value| !value.is_empty());
        Ok(NewKey {
            label: self.label.clone(),
            spec,
            attributes,
            policy: SkaPolicy::default(),
            activation_at: parse_when("Activation", &self.activation)?,
            expires_at: parse_when("Expiry", &self.expiry)?,
            owner: text(&self.owner),
            description: text(&self.description),
            tags: self
                .tags
                .split(',')
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .map(str::to_owned)
                .collect(),
            rotation,
        })
    }
}

/// A `datetime-local` value (`2026-05-01T12:30`, read as UTC) as unix seconds.
pub(super) fn parse_when(what: &str, text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    PrimitiveDateTime::parse(text, minutes)
        .or_else(|_| PrimitiveDateTime::parse(text, seconds))
        .ok()
        .and_then(|at| u64::try_from(at.assume_utc().unix_timestamp()).ok())
        .map(Some)
        .ok_or_else(|| format!("{what}: enter a date and time like 2026-05-01T12:30 (UTC)."))
}

#[derive(Template)]
#[template(path = "pages/key_new.html")]
struct NewKeyPage {
    layout: Layout,
    groups: Vec<AlgorithmGroup>,
    params: Vec<ParamSection>,
    usages: [UsageChoice; 4],
    form: KeyForm,
    error: Option<String>,
}

fn new_key_page(
    viewer: &Viewer,
    req: &Request,
    status: StatusCode,
    form: KeyForm,
    error: Option<String>,
) -> Response {
    let layout = viewer.layout(
        PageMeta::new("keys", "Keys", "Create a key").subtitle(
            "Created in the partition's HSM with an SKA policy; keymanager keeps its metadata and lifecycle.",
        ),
        req,
    );
    http::html(
        status,
        &NewKeyPage {
            layout,
            groups: algorithm_groups(),
            params: param_sections(),
            usages: USAGES,
            form,
            error,
        },
    )
}

/// `GET /keys/new`.
#[handler]
pub(crate) async fn new_key(req: &Request, console: Data<&Arc<Console>>) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if !viewer.may_here(Action::CreateKey) {
        return errors::forbidden(&viewer, req);
    }
    new_key_page(&viewer, req, StatusCode::OK, KeyForm::default(), None)
}

/// `POST /keys/new`: creates the key, then shows it; a refusal keeps what was entered (422).
#[handler]
pub(crate) async fn create_key(
    req: &Request,
    console: Data<&Arc<Console>>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let csrf = pairs
        .iter()
        .find(|(key, _)| key == "csrf")
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    let viewer = match form_viewer(&console, req, csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let tenant = match current_tenant(&viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let form = KeyForm::from_pairs(&pairs);
    let new = match form.to_new_key() {
        Ok(new) => new,
        Err(message) => {
            return new_key_page(
                &viewer,
                req,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                Some(message),
            );
        }
    };
    match console
        .app
        .create_key(&viewer.caller, &http::request_id(req), &tenant, new)
        .await
    {
        Ok(detail) => http::redirect(
            &format!(
                "{}?done=key_created{TO_NOTICES}",
                key_href(&detail.summary.label)
            ),
            &[],
        ),
        Err(error) if explainable(&error) => new_key_page(
            &viewer,
            req,
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            Some(error.to_string()),
        ),
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}

// ----- a key's detail and lifecycle -----

/// The lifecycle events a person may ask for, in the order the page offers them, with how the
/// form names them.
const EVENTS: [(&str, KeyEvent); 7] = [
    ("activate", KeyEvent::Activate),
    ("suspend", KeyEvent::Suspend),
    ("reactivate", KeyEvent::Reactivate),
    ("deactivate", KeyEvent::Deactivate),
    ("compromise", KeyEvent::Compromise),
    (
        "schedule_destruction",
        KeyEvent::ScheduleDestruction { at: None },
    ),
    ("cancel_destruction", KeyEvent::CancelDestruction),
];

/// The domain event a person's event stands for (destruction at the earliest allowed time).
fn domain_event(event: KeyEvent, earliest_destruction: u64) -> LifecycleEvent {
    match event {
        KeyEvent::Activate => LifecycleEvent::Activate,
        KeyEvent::Suspend => LifecycleEvent::Suspend,
        KeyEvent::Reactivate => LifecycleEvent::Resume,
        KeyEvent::Deactivate => LifecycleEvent::Deactivate,
        KeyEvent::Compromise => LifecycleEvent::MarkCompromised,
        KeyEvent::ScheduleDestruction { at } => LifecycleEvent::ScheduleDestruction {
            at: at.unwrap_or(earliest_destruction),
        },
        KeyEvent::CancelDestruction => LifecycleEvent::CancelDestruction,
    }
}

/// One lifecycle button with its confirmation.
pub(crate) struct ActionView {
    event: &'static str,
    label: &'static str,
    confirm: String,
    detail: String,
    /// Compromise and destruction ask why.
    needs_reason: bool,
    danger: bool,
}

fn action_view(event: &'static str, key: &str, destruction_at: &str) -> ActionView {
    let (label, detail, needs_reason, danger) = match event {
        "activate" => (
            "Activate",
            "The key becomes usable for everything its attributes allow.".to_owned(),
            false,
            false,
        ),
        "suspend" => (
            "Suspend",
            "The key is blocked in the HSM until it is reactivated.".to_owned(),
            false,
            false,
        ),
        "reactivate" => (
            "Reactivate",
            "The key is unblocked and usable again.".to_owned(),
            false,
            false,
        ),
        "deactivate" => (
            "Deactivate",
            "The key's crypto-period ends: it is blocked and cannot be activated again.".to_owned(),
            false,
            true,
        ),
        "compromise" => (
            "Mark compromised",
            "The key is blocked for good and can never be trusted or unblocked again. This cannot be undone.".to_owned(),
            true,
            true,
        ),
        "schedule_destruction" => (
            "Schedule destruction",
            format!(
                "The key material will be deleted from the HSM on {destruction_at}, unless the destruction is cancelled before. After that it cannot be recovered."
            ),
            true,
            true,
        ),
        _ => (
            "Cancel destruction",
            "The key returns to the state it was in when destruction was scheduled.".to_owned(),
            false,
            false,
        ),
    };
    ActionView {
        event,
        label,
        confirm: format!("{label}: {key}?"),
        detail,
        needs_reason,
        danger,
    }
}

pub(crate) struct VersionRow {
    number: u32,
    label: String,
    state: &'static str,
    current: bool,
    created: String,
    note: String,
}

impl VersionRow {
    fn of(version: &KeyVersion, current: Option<u32>) -> Self {
        let note = match (version.schedule, version.destroyed_at) {
            (_, Some(at)) => format!("destroyed {}", fmt::datetime(at)),
            (Some(schedule), None) => format!("destruction due {}", fmt::datetime(schedule.at)),
            (None, None) => version
                .deactivate_after
                .map(|at| format!("deactivated after {}", fmt::datetime(at)))
                .unwrap_or_default(),
        };
        Self {
            number: version.number,
            label: version.label.clone(),
            state: version.state.as_str(),
            current: current == Some(version.number),
            created: fmt::datetime(version.created_at),
            note,
        }
    }
}

pub(crate) struct HistoryRow {
    at: String,
    actor: String,
    event: String,
    version: u32,
    from: &'static str,
    to: &'static str,
    reason: String,
}

impl HistoryRow {
    fn of(entry: &HistoryEntry) -> Self {
        Self {
            at: fmt::datetime(entry.at),
            actor: entry.actor.clone(),
            event: entry.event.clone(),
            version: entry.version,
            from: entry.from.map_or("", KeyState::as_str),
            to: entry.to.as_str(),
            reason: entry.reason.clone().unwrap_or_default(),
        }
    }
}

/// Yes/no/unknown for facts the HSM may no longer report.
fn yes_no(fact: Option<bool>) -> &'static str {
    match fact {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown (the HSM key is gone)",
    }
}

/// What the detail page shows of a key.
pub(crate) struct KeyView {
    label: String,
    href: String,
    spec: String,
    state: &'static str,
    managed: bool,
    adopted: bool,
    usages: String,
    protection: String,
    blocked: &'static str,
    policy: &'static str,
    owner: String,
    description: String,
    tags: Vec<String>,
    created: String,
    created_by: String,
    activation: String,
    expires: String,
    next_rotation: String,
    rotation: String,
    destruction: String,
}

impl KeyView {
    fn of(key: &KeyDetail) -> Self {
        let s = &key.summary;
        let a = s.attributes;
        let flags = |list: &[(bool, &str)]| {
            let on: Vec<&str> = list
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, name)| *name)
                .collect();
            if on.is_empty() {
                "none".to_owned()
            } else {
                on.join(", ")
            }
        };
        let when = |at: Option<u64>| at.map(fmt::datetime).unwrap_or_default();
        Self {
            label: s.label.clone(),
            href: key_href(&s.label),
            spec: spec_text(&s.spec),
            state: s.state.as_str(),
            managed: s.managed,
            adopted: key.adopted,
            usages: flags(&[
                (a.sign, "sign"),
                (a.verify, "verify"),
                (a.encrypt, "encrypt"),
                (a.decrypt, "decrypt"),
                (a.wrap, "wrap"),
                (a.unwrap, "unwrap"),
                (a.derive, "derive"),
            ]),
            protection: flags(&[
                (a.extractable, "extractable"),
                (a.destroyable, "destroyable"),
                (a.modifiable, "modifiable"),
                (a.sensitive, "sensitive"),
                (a.copyable, "copyable"),
            ]),
            blocked: yes_no(s.blocked),
            policy: yes_no(s.has_policy),
            owner: s.owner.clone().unwrap_or_default(),
            description: s.description.clone().unwrap_or_default(),
            tags: s.tags.clone(),
            created: when(s.created_at),
            created_by: key.created_by.clone().unwrap_or_default(),
            activation: when(s.activation_at),
            expires: when(s.expires_at),
            next_rotation: when(s.next_rotation_at),
            rotation: key.rotation.map_or_else(String::new, |r| {
                format!(
                    "every {}, old versions usable {} more",
                    fmt::duration(r.interval_secs),
                    fmt::duration(r.grace_secs)
                )
            }),
            destruction: when(s.destruction_at),
        }
    }
}

#[derive(Template)]
#[template(path = "pages/key.html")]
struct KeyPage {
    layout: Layout,
    key: KeyView,
    versions: Vec<VersionRow>,
    history: Vec<HistoryRow>,
    actions: Vec<ActionView>,
    can_rotate: bool,
    public_key: bool,
    can_edit: bool,
    attestation: bool,
    pending: Vec<PendingView>,
}

/// A change of the key waiting for approvals in the HSM, as the detail page lists it.
struct PendingView {
    change: String,
    version: u32,
    requested_by: String,
    requested_at: String,
    request_id: String,
}

impl PendingView {
    fn of(pending: &PendingRequest) -> Self {
        Self {
            change: pending.change.name().replace(['-', '_'], " "),
            version: pending.version,
            requested_by: pending.requested_by.clone(),
            requested_at: fmt::datetime(pending.requested_at),
            request_id: pending.request_id.clone(),
        }
    }
}

/// Whether the key has a public half keymanager can export (asymmetric, not destroyed).
fn has_public_key(summary: &KeySummary) -> bool {
    summary.current_label.is_some()
        && summary.spec.known_algorithm().is_some_and(|algorithm| {
            matches!(algorithm, Algorithm::Rsa | Algorithm::Ec | Algorithm::Ed)
        })
}

async fn key_page(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    label: &str,
    refusal: Option<(StatusCode, String)>,
) -> Response {
    let tenant = match current_tenant(viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let rid = http::request_id(req);
    let app = &console.app;
    let key = match app.get_key(&viewer.caller, &rid, &tenant, label).await {
        Ok(key) => key,
        Err(error) => return errors::app_error(viewer, req, &error),
    };
    let state = key.summary.state;
    let current = key
        .versions
        .iter()
        .find(|v| Some(v.number) == key.summary.current_version);
    let may_destroy = viewer.may(Action::ScheduleKeyDestruction, Some(&tenant));
    let waiting = if may_destroy {
        app.get_tenant_key_settings(&viewer.caller, &rid, &tenant)
            .await
            .map(|settings| settings.waiting_period)
            .unwrap_or_default()
    } else {
        WaitingPeriod::default()
    };
    let ctx = TransitionContext {
        now: app.clock().now(),
        destroyable: key.summary.attributes.destroyable,
        waiting_period: waiting,
        schedule: current.and_then(|v| v.schedule),
    };
    let destruction_at = format!(
        "{} (the partition's waiting period of {})",
        fmt::datetime(ctx.earliest_destruction()),
        fmt::duration(waiting.as_secs())
    );
    // A version whose lifecycle change waits for approvals refuses further changes.
    let lifecycle_waits = key.summary.current_version.is_some_and(|number| {
        key.pending
            .iter()
            .any(|p| p.version == number && matches!(p.change, PendingChange::Lifecycle { .. }))
    });
    let actions = EVENTS
        .iter()
        .filter(|_| !lifecycle_waits)
        .filter(|(_, event)| viewer.may(event.action(), Some(&tenant)))
        .filter(|(_, event)| {
            transition(
                state,
                &domain_event(*event, ctx.earliest_destruction()),
                &ctx,
            )
            .is_ok()
        })
        .map(|(name, _)| action_view(name, &key.summary.label, &destruction_at))
        .collect();
    let view = KeyView::of(&key);
    let mut layout = viewer.layout(
        PageMeta::new("keys", "Keys", view.label.clone()).subtitle(format!(
            "{}{}",
            view.spec,
            if view.managed {
                ", managed by keymanager"
            } else {
                ", not managed by keymanager (adopted by its first change)"
            }
        )),
        req,
    );
    let status = match refusal {
        Some((status, message)) => {
            layout.notice("error", message);
            status
        }
        None => StatusCode::OK,
    };
    http::html(
        status,
        &KeyPage {
            layout,
            can_rotate: state == KeyState::Active
                && key.summary.has_policy == Some(true)
                && viewer.may(Action::RotateKey, Some(&tenant)),
            public_key: has_public_key(&key.summary)
                && viewer.may(Action::ExportPublicKey, Some(&tenant)),
            can_edit: state != KeyState::Destroyed
                && viewer.may(Action::UpdateKeyMetadata, Some(&tenant)),
            attestation: key.summary.current_label.is_some(),
            versions: key
                .versions
                .iter()
                .map(|v| VersionRow::of(v, key.summary.current_version))
                .collect(),
            history: key.history.iter().rev().map(HistoryRow::of).collect(),
            pending: key.pending.iter().map(PendingView::of).collect(),
            key: view,
            actions,
        },
    )
}

/// `GET /keys/{label}`.
#[handler]
pub(crate) async fn show_key(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(label): Path<String>,
) -> Response {
    match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => key_page(&console, &viewer, req, &label, None).await,
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct StateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    reason: String,
}

/// What a change did, for the notice after the redirect.
fn done_code(event: &str) -> &'static str {
    match event {
        "activate" => "key_activated",
        "suspend" => "key_suspended",
        "reactivate" => "key_reactivated",
        "deactivate" => "key_deactivated",
        "compromise" => "key_compromised",
        "schedule_destruction" => "key_destruction_scheduled",
        "cancel_destruction" => "key_destruction_cancelled",
        _ => "key_rotated",
    }
}

/// The answer to a key change: back to the key with a notice, or its page with the App's reason.
async fn after_change(
    console: &Console,
    viewer: &Viewer,
    req: &Request,
    label: &str,
    event: &str,
    result: Result<KeyDetail, AppError>,
) -> Response {
    match result {
        Ok(detail) => {
            let waits = detail.summary.current_version.is_some_and(|number| {
                detail.pending.iter().any(|p| {
                    p.version == number && matches!(p.change, PendingChange::Lifecycle { .. })
                })
            });
            let done = if waits && event != "rotate" {
                "key_change_requested"
            } else {
                done_code(event)
            };
            http::redirect(&format!("{}?done={done}{TO_NOTICES}", key_href(label)), &[])
        }
        Err(error) if explainable(&error) => {
            let refusal = (explained_status(&error), error.to_string());
            key_page(console, viewer, req, label, Some(refusal)).await
        }
        Err(error) => errors::app_error(viewer, req, &error),
    }
}

/// `POST /keys/{label}/state`: a lifecycle change (compromise and destruction need a reason).
#[handler]
pub(crate) async fn change_state(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(label): Path<String>,
    Form(form): Form<StateForm>,
) -> Response {
    let viewer = match form_viewer(&console, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let tenant = match current_tenant(&viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let Some(&(name, event)) = EVENTS.iter().find(|(name, _)| *name == form.event) else {
        return http::bad_request();
    };
    let reason = Some(form.reason.trim().to_owned()).filter(|reason| !reason.is_empty());
    let reason_needed = matches!(
        event,
        KeyEvent::Compromise | KeyEvent::ScheduleDestruction { .. }
    );
    if reason_needed && reason.is_none() && viewer.may(event.action(), Some(&tenant)) {
        let refusal = (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Give a reason: it is kept in the key's history and the audit log.".to_owned(),
        );
        return key_page(&console, &viewer, req, &label, Some(refusal)).await;
    }
    let change = StateChange {
        event,
        reason,
        version: None,
    };
    let result = console
        .app
        .change_key_state(
            &viewer.caller,
            &http::request_id(req),
            &tenant,
            &label,
            change,
        )
        .await;
    after_change(&console, &viewer, req, &label, name, result).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct RotateForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /keys/{label}/rotate`.
#[handler]
pub(crate) async fn rotate(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(label): Path<String>,
    Form(form): Form<RotateForm>,
) -> Response {
    let viewer = match form_viewer(&console, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let tenant = match current_tenant(&viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let result = console
        .app
        .rotate_key(&viewer.caller, &http::request_id(req), &tenant, &label)
        .await;
    after_change(&console, &viewer, req, &label, "rotate", result).await
}

// ----- public-key export -----

/// A JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

async fn export(
    req: &Request,
    console: &Console,
    label: &str,
    format: PublicKeyFormat,
) -> Response {
    let viewer = match viewer::viewer(console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let tenant = match current_tenant(&viewer, req) {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let export = match console
        .app
        .export_public_key(
            &viewer.caller,
            &http::request_id(req),
            &tenant,
            label,
            None,
            format,
        )
        .await
    {
        Ok(export) => export,
        Err(error) if explainable(&error) => {
            let refusal = (explained_status(&error), error.to_string());
            return key_page(console, &viewer, req, label, Some(refusal)).await;
        }
        Err(error) => return errors::app_error(&viewer, req, &error),
    };
    match export.material {
        PublicKeyMaterial::Pem(pem) => Response::builder()
            .status(StatusCode::OK)
            .content_type("application/x-pem-file")
            .header(
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.pem\"", encode(&export.label)),
            )
            .body(pem),
        PublicKeyMaterial::Jwk(jwk) => {
            let fields = [
                ("kty", Some(jwk.kty.to_owned())),
                ("crv", jwk.crv.map(str::to_owned)),
                ("x", jwk.x),
                ("y", jwk.y),
                ("n", jwk.n),
                ("e", jwk.e),
                ("kid", Some(jwk.kid)),
            ];
            let members: Vec<String> = fields
                .iter()
                .filter_map(|(name, value)| {
                    value
                        .as_deref()
                        .map(|value| format!("  \"{name}\": {}", json_string(value)))
                })
                .collect();
            Response::builder()
                .status(StatusCode::OK)
                .content_type("application/json")
                .body(format!("{{\n{}\n}}\n", members.join(",\n")))
        }
    }
}

/// `GET /keys/{label}/public.pem`: the current version's public key, as a download.
#[handler]
pub(crate) async fn public_pem(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(label): Path<String>,
) -> Response {
    export(req, &console, &label, PublicKeyFormat::Pem).await
}

/// `GET /keys/{label}/public.jwk`: the current version's public key as a JWK.
#[handler]
pub(crate) async fn public_jwk(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(label): Path<String>,
) -> Response {
    export(req, &console, &label, PublicKeyFormat::Jwk).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_filters_are_encoded() {
        assert_eq!(encode("web-signing_1.v2"), "web-signing_1.v2");
        assert_eq!(encode("a b/c&d"), "a%20b%2Fc%26d");
        let filters = ListFilters {
            prefix: "web".to_owned(),
            tag: "team a".to_owned(),
            ..ListFilters::default()
        };
        assert_eq!(
            filters.href("c1"),
            "/keys?prefix=web&tag=team%20a&cursor=c1"
        );
    }

    #[test]
    fn every_algorithm_is_offered_once_with_its_sizes_or_curves() {
        let offered: usize = algorithm_groups().iter().map(|g| g.options.len()).sum();
        assert_eq!(offered, Algorithm::all().len());
        let sections = param_sections();
        let ec = sections.iter().find(|s| s.algorithm == "EC").unwrap();
        assert!(ec.choices.iter().any(|(value, _)| value == "secp256r1"));
        assert!(sections.iter().all(|s| s.algorithm != "ML-DSA-65"));
        assert_eq!(default_usage(Algorithm::Aes), "encrypt");
        assert_eq!(default_usage(Algorithm::MlKem768), "wrap");
    }

    #[test]
    fn the_wizard_builds_the_apps_input() {
        let pairs: Vec<(String, String)> = [
            ("label", " web-signing "),
            ("algorithm", "EC"),
            ("param_EC", "secp256r1"),
            ("param_RSA", "2048"),
            ("usage", "sign"),
            ("destroyable", "true"),
            ("tags", "web, prod ,"),
            ("expires_at", "2030-01-02T03:04"),
            ("rotation_days", "90"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let new = KeyForm::from_pairs(&pairs).to_new_key().unwrap();
        assert_eq!(new.label, "web-signing");
        assert_eq!(new.spec.to_string(), "EC secp256r1");
        assert!(new.attributes.sign && new.attributes.verify && !new.attributes.decrypt);
        assert!(new.attributes.destroyable && !new.attributes.extractable);
        assert_eq!(new.tags, ["web", "prod"]);
        assert_eq!(new.expires_at, Some(1_893_553_440));
        assert_eq!(new.rotation.unwrap().interval_secs, 90 * 86_400);
        let mut bad = KeyForm::from_pairs(&pairs);
        bad.activation = "tomorrow".to_owned();
        assert!(bad.to_new_key().unwrap_err().contains("Activation"));
    }
}
