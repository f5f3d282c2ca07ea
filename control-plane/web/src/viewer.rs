//! Who is looking at a page: the authenticated caller (from the `km_session` cookie, through
//! `App::authenticate` — the same path as the REST API), the partitions they may switch to, and
//! the page chrome built from that (sidebar, navigation filtered with `km_domain::authorize`).
//!
//! Hiding what a person may not do is only UX: every action still goes through an `App` use case,
//! which authorizes and audits on its own.

use km_core::identity::{Caller, SecondFactorState};
use km_core::{App, AppError, PartitionRecord, SecretText};
use km_domain::{Action, PartitionStatus, Principal, TenantId, authorize};
use poem::Request;
use poem::Response;

use crate::http::{self, PARTITION_COOKIE, SESSION_COOKIE};
use crate::icons;
use crate::pages::errors;
use crate::partitions::swatch_svg;

/// Shared state of the console's handlers.
#[derive(Debug)]
pub(crate) struct Console {
    pub app: App,
    pub password_min_chars: usize,
    /// `server.public_url` without a trailing `/`, if configured.
    pub public_url: Option<String>,
}

impl Console {
    /// Our origin for URLs handed to other parties (SSO redirect URIs): the configured public
    /// URL, else the request's scheme and host.
    pub(crate) fn origin(&self, req: &poem::Request) -> Option<String> {
        self.public_url
            .clone()
            .or_else(|| crate::http::request_origin(req))
    }
}

/// Version string appended to asset URLs so a new release is never served stale CSS/JS.
pub(crate) const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a page needs the session to have settled first (mirrors the app layer's gates, so the
/// console can send the person where they can settle it instead of showing an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Any valid session (sign-out, the re-verification page).
    Open,
    /// Enrolling TOTP or changing the password: allowed while either is owed.
    Onboarding,
    /// Everything settled.
    Full,
}

/// The signed-in person behind a request.
#[derive(Debug)]
pub(crate) struct Viewer {
    pub caller: Caller,
    /// The account's full name, when it has one.
    pub display_name: Option<String>,
    pub csrf: String,
    /// The registered partitions the viewer may switch to (`App::visible_partitions`).
    pub partitions: Vec<PartitionRecord>,
    /// The one they work in: the `km_partition` cookie if it names one of `partitions`, else
    /// the first of them.
    pub current: Option<PartitionRecord>,
}

impl Viewer {
    pub fn principal(&self) -> &Principal {
        self.caller.principal()
    }

    pub fn tenant(&self) -> Option<&TenantId> {
        self.current.as_ref().map(|partition| &partition.id)
    }

    /// Whether `authorize` would allow `action` on `tenant` (None = platform / own account).
    pub fn may(&self, action: Action, tenant: Option<&TenantId>) -> bool {
        authorize(self.principal(), tenant, action).is_ok()
    }

    /// Whether the viewer is a platform operator who may manage the partition registry.
    pub fn is_partition_operator(&self) -> bool {
        self.may(Action::OnboardPartition, None)
    }

    /// Whether `action` is allowed on the current partition.
    pub fn may_here(&self, action: Action) -> bool {
        self.tenant()
            .is_some_and(|tenant| self.may(action, Some(tenant)))
    }

    pub fn second_factor(&self) -> Option<SecondFactorState> {
        self.caller.session().map(|session| session.second_factor)
    }

    /// The page chrome for this viewer.
    pub fn layout(&self, page: PageMeta, req: &Request) -> Layout {
        let principal = self.principal();
        let username = principal.subject.as_str().to_owned();
        let display = self
            .display_name
            .clone()
            .unwrap_or_else(|| username.clone());
        let role_hint = if principal.is_platform_operator() {
            "platform operator"
        } else {
            "signed in"
        };
        let current = self
            .current
            .as_ref()
            .map(|partition| PartitionView::new(partition, principal));
        let partitions = self
            .partitions
            .iter()
            .map(|partition| PartitionView::new(partition, principal))
            .collect();
        Layout {
            title: page.title,
            subtitle: page.subtitle,
            section: page.section,
            active: page.active,
            csrf: self.csrf.clone(),
            asset_version: ASSET_VERSION,
            viewer: ViewerView {
                initials: initials(&display),
                display,
                username,
                role_hint,
            },
            partition: current,
            partitions,
            nav: self.nav(),
            notices: notices_from_query(req),
            return_to: return_path(req.uri().path()),
        }
    }

    /// Navigation: only the pages this viewer can open.
    fn nav(&self) -> Vec<NavItem> {
        let mut items = vec![NavItem::new(
            "home",
            "/".to_owned(),
            "Overview",
            icons::HOME,
            Some("Workspace"),
        )];
        let mut partition_items = Vec::new();
        if let Some(tenant) = self.tenant()
            && self.may_here(Action::ReadPartition)
        {
            partition_items.push((
                "partition",
                format!("/partitions/{tenant}"),
                "Status & credentials",
                icons::PARTITION,
            ));
        }
        if self.may_here(Action::ReadDashboard) {
            partition_items.push((
                "dashboard",
                "/dashboard".to_owned(),
                "Dashboard",
                crate::pages::dashboard::ICON,
            ));
        }
        if self.may_here(Action::ListKeys) {
            partition_items.push(("keys", "/keys".to_owned(), "Keys", icons::KEY));
        }
        if self.may_here(Action::ListUsers) {
            partition_items.push(("users", "/users".to_owned(), "Users & roles", icons::USERS));
        }
        if self.may_here(Action::ReadAudit) || self.may(Action::ReadPlatformAudit, None) {
            partition_items.push(("audit", "/audit".to_owned(), "Audit log", icons::AUDIT));
        }
        if self.may_here(Action::ReadSettings) || self.may(Action::ReadPlatformSettings, None) {
            partition_items.push((
                "settings",
                "/settings".to_owned(),
                "Settings",
                icons::SETTINGS,
            ));
        }
        if self.may_here(Action::ReadSettings) {
            partition_items.push((
                "notifications",
                "/settings/notifications".to_owned(),
                "Notifications",
                icons::ALERT,
            ));
        }
        for (index, (id, href, label, icon)) in partition_items.into_iter().enumerate() {
            let section = (index == 0).then_some("Partition");
            items.push(NavItem::new(id, href, label, icon, section));
        }
        let mut platform_items = Vec::new();
        if self.is_partition_operator() {
            platform_items.push((
                "platform-partitions",
                "/platform/partitions",
                "Partitions",
                icons::PARTITIONS,
            ));
        }
        if self.may(Action::ManageSso, None) {
            platform_items.push((
                "platform-sso",
                "/platform/sso",
                "Single sign-on",
                icons::SSO,
            ));
        }
        for (index, (id, href, label, icon)) in platform_items.into_iter().enumerate() {
            let section = (index == 0).then_some("Platform");
            items.push(NavItem::new(id, href.to_owned(), label, icon, section));
        }
        items.push(NavItem::new(
            "account",
            "/account".to_owned(),
            "Account & security",
            icons::ACCOUNT,
            Some("You"),
        ));
        items
    }
}

/// Title and position of a page.
#[derive(Debug)]
pub(crate) struct PageMeta {
    pub title: String,
    pub subtitle: String,
    pub section: &'static str,
    pub active: &'static str,
}

impl PageMeta {
    pub fn new(active: &'static str, section: &'static str, title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            subtitle: String::new(),
            section,
            active,
        }
    }

    pub fn subtitle(mut self, subtitle: impl Into<String>) -> Self {
        self.subtitle = subtitle.into();
        self
    }
}

/// The chrome every signed-in page renders (base.html).
#[derive(Debug)]
pub(crate) struct Layout {
    pub title: String,
    pub subtitle: String,
    pub section: &'static str,
    pub active: &'static str,
    pub csrf: String,
    pub asset_version: &'static str,
    pub viewer: ViewerView,
    pub partition: Option<PartitionView>,
    pub partitions: Vec<PartitionView>,
    pub nav: Vec<NavItem>,
    pub notices: Vec<Notice>,
    pub return_to: String,
}

impl Layout {
    pub fn notice(&mut self, kind: &'static str, message: impl Into<String>) {
        self.notices.push(Notice {
            kind,
            message: message.into(),
        });
    }
}

#[derive(Debug)]
pub(crate) struct ViewerView {
    pub username: String,
    pub display: String,
    pub initials: String,
    pub role_hint: &'static str,
}

#[derive(Debug)]
pub(crate) struct NavItem {
    pub id: &'static str,
    pub href: String,
    pub label: &'static str,
    pub icon: &'static str,
    pub section: &'static str,
    pub section_start: bool,
}

impl NavItem {
    fn new(
        id: &'static str,
        href: String,
        label: &'static str,
        icon: &'static str,
        section: Option<&'static str>,
    ) -> Self {
        Self {
            id,
            href,
            label,
            icon,
            section: section.unwrap_or_default(),
            section_start: section.is_some(),
        }
    }
}

/// A message at the top of the page.
#[derive(Debug)]
pub(crate) struct Notice {
    /// `success`, `error`, `info` or `warning` (a CSS class suffix).
    pub kind: &'static str,
    pub message: String,
}

impl Notice {
    pub fn icon(&self) -> &'static str {
        match self.kind {
            "success" => icons::SUCCESS,
            "error" | "warning" => icons::ALERT,
            _ => icons::INFO,
        }
    }
}

/// A partition as the templates draw it. Its colour is a validated `#rrggbb` and its initial an
/// ASCII letter or digit, so the SVG snippets below cannot carry markup.
#[derive(Debug, Clone)]
pub(crate) struct PartitionView {
    pub id: String,
    pub name: String,
    pub colour: km_domain::Colour,
    /// Registered but not served (nothing is sent to its HSM).
    pub suspended: bool,
    /// `admin`, `user`, `readonly` or `none` (also a CSS class suffix).
    pub role: &'static str,
    pub role_label: String,
}

impl PartitionView {
    pub fn new(record: &PartitionRecord, principal: &Principal) -> Self {
        Self {
            id: record.id.as_str().to_owned(),
            name: record.display_name.as_str().to_owned(),
            colour: record.colour.clone(),
            suspended: record.status == PartitionStatus::Suspended,
            role: principal
                .role_on(&record.id)
                .map_or("none", |role| role.as_str()),
            role_label: role_label(principal, &record.id),
        }
    }

    /// `active` or `suspended` (also a `data-status` value).
    pub fn status(&self) -> &'static str {
        if self.suspended {
            "suspended"
        } else {
            "active"
        }
    }

    fn initial(&self) -> char {
        self.name
            .chars()
            .find(char::is_ascii_alphanumeric)
            .map_or('?', |c| c.to_ascii_uppercase())
    }

    /// A round colour dot.
    pub fn swatch(&self, size: u32) -> String {
        swatch_svg(&self.colour, size)
    }

    /// A rounded square in the partition's colour with its initial.
    pub fn avatar(&self, size: u32) -> String {
        let font = size / 2;
        format!(
            "<svg class=\"partition-avatar\" width=\"{size}\" height=\"{size}\" viewBox=\"0 0 {size} {size}\" aria-hidden=\"true\" focusable=\"false\"><rect width=\"{size}\" height=\"{size}\" rx=\"8\" fill=\"{colour}\"/><text x=\"50%\" y=\"50%\" dy=\"0.35em\" text-anchor=\"middle\" fill=\"#ffffff\" font-size=\"{font}\" font-weight=\"700\" font-family=\"system-ui, sans-serif\">{initial}</text></svg>",
            colour = self.colour,
            initial = self.initial()
        )
    }

    /// A thin bar in the partition's colour (top of the sidebar card).
    pub fn strip(&self) -> String {
        format!(
            "<svg class=\"partition-strip\" viewBox=\"0 0 100 4\" preserveAspectRatio=\"none\" aria-hidden=\"true\" focusable=\"false\" data-colour=\"{c}\"><rect width=\"100\" height=\"4\" fill=\"{c}\"/></svg>",
            c = self.colour
        )
    }
}

fn role_label(principal: &Principal, tenant: &TenantId) -> String {
    match principal.role_on(tenant) {
        Some(role) if principal.platform_role() == Some(role) => format!("{role} · all partitions"),
        Some(role) => role.as_str().to_owned(),
        None => "no role".to_owned(),
    }
}

/// Where the partition switcher returns to: the same page where it does not depend on the
/// partition's data or is about the platform, the new partition's overview from a partition page,
/// the dashboard otherwise.
fn return_path(path: &str) -> String {
    match path {
        "/dashboard" | "/users" | "/audit" | "/settings" | "/settings/keys" | "/account" => {
            path.to_owned()
        }
        _ if path.starts_with("/partitions/") => "/partitions".to_owned(),
        _ if path == "/keys" || path.starts_with("/keys/") => "/keys".to_owned(),
        _ if path.starts_with("/platform/partitions") || path.starts_with("/platform/sso") => {
            // The list, the wizard or one partition's or provider's page (never a POST-only
            // sub-path).
            path.split('/').take(4).collect::<Vec<_>>().join("/")
        }
        _ => "/".to_owned(),
    }
}

/// Up to two initials of a name, for avatars.
pub(crate) fn initials(name: &str) -> String {
    let mut parts = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|part| !part.is_empty());
    let first = parts.next().and_then(|part| part.chars().next());
    let second = parts.next().and_then(|part| part.chars().next());
    let mut out: String = first.into_iter().chain(second).collect();
    if out.is_empty() {
        out.push('?');
    }
    out.to_uppercase()
}

/// Fixed messages selected by `?done=<code>` after a redirect; never text from the URL itself.
fn notices_from_query(req: &Request) -> Vec<Notice> {
    let Some(code) = query_param(req, "done") else {
        return Vec::new();
    };
    let mut kind = "success";
    let message = match code.as_str() {
        "setup" => {
            "keymanager is set up and you are signed in as its first administrator. Protect your account with two-step verification now."
        }
        "totp_removed" => "Two-step verification is off.",
        "user_created" => "User created.",
        "role_changed" => {
            "Role changed. The user's sessions were ended so the new role applies at their next sign-in."
        }
        "user_disabled" => "User disabled and signed out.",
        "user_enabled" => "User enabled.",
        "user_deleted" => "User deleted.",
        "settings_saved" => "Settings saved. They apply on every replica within seconds.",
        "partition" => "Switched partition.",
        "partition_onboarded" => {
            "Partition onboarded. Its credentials are in its vault; it is in everyone's partition switcher who has a role on it."
        }
        "partition_saved" => "Partition saved.",
        "partition_suspended" => {
            "Partition suspended: keymanager sends nothing to its HSM until it is resumed."
        }
        "partition_resumed" => "Partition resumed.",
        "credentials_rotated" => {
            "Credentials replaced. Every replica uses the new ones for its next request; requests in flight finish on the old ones."
        }
        "partition_offboarded" => {
            "Partition offboarded. keymanager forgot its registration and credentials; nothing in its HSM was deleted."
        }
        "own_credentials_removed" => {
            "Your own credentials are removed; your requests use the partition's credentials again."
        }
        "key_created" => "Key created.",
        "key_activated" => "Key activated: it is usable now.",
        "key_suspended" => "Key suspended: the HSM refuses to use it until it is reactivated.",
        "key_reactivated" => "Key reactivated: it is usable again.",
        "key_deactivated" => "Key deactivated: it may only process, no longer protect.",
        "key_compromised" => {
            kind = "warning";
            "Key marked compromised: it is blocked for good."
        }
        "key_destruction_scheduled" => {
            kind = "warning";
            "Destruction scheduled. It can be cancelled until it is due."
        }
        "key_destruction_cancelled" => "Destruction cancelled.",
        "key_rotated" => "Key rotated: a new version is current.",
        "key_metadata_saved" => "Metadata saved.",
        "key_settings_saved" => {
            "Key settings saved. New destruction schedules use the new waiting period."
        }
        "key_change_requested" => {
            kind = "warning";
            "The key's SKA rule asks for approvals: the change waits as a request in the HSM and happens once approved. Follow it under Policy & approvals."
        }
        "sso_saved" => "Single sign-on settings saved. The sign-in page shows them at once.",
        "sso_provider_saved" => "Provider saved.",
        "sso_provider_saved_secret" => "Provider saved, and its client secret stored.",
        "sso_provider_saved_no_secret" => {
            kind = "warning";
            "Provider saved, but its client secret was not stored: enter it again."
        }
        "sso_provider_deleted" => {
            "Provider deleted. Its button is gone from the sign-in page; sessions it opened run until they end."
        }
        _ => return Vec::new(),
    };
    vec![Notice {
        kind,
        message: message.to_owned(),
    }]
}

/// One query parameter (first occurrence), percent-decoded.
pub(crate) fn query_param(req: &Request, name: &str) -> Option<String> {
    query_value(req.uri().query()?, name)
}

/// One parameter (first occurrence) of a query string, percent-decoded.
pub(crate) fn query_value(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_decode(value))
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(index + 1..index + 3)
                    .and_then(|pair| std::str::from_utf8(pair).ok())
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok());
                match hex {
                    Some(decoded) => {
                        out.push(decoded);
                        index += 2;
                    }
                    None => out.push(byte),
                }
            }
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The session cookie of the request, if any.
pub(crate) fn session_token(req: &Request) -> Option<SecretText> {
    http::cookie(req, SESSION_COOKIE)
        .filter(|token| token.len() <= 256)
        .map(SecretText::new)
}

/// Authenticates the request's session. Anonymous or ended sessions are sent to the sign-in page
/// (the ended cookie removed); sessions that owe a second factor or a password change are sent
/// to where they can settle it, unless the page itself is that place (`need`).
pub(crate) async fn viewer(
    console: &Console,
    req: &Request,
    need: Need,
) -> Result<Viewer, Response> {
    let Some(token) = session_token(req) else {
        return Err(http::redirect("/login", &[]));
    };
    let caller = match console.app.authenticate(None, Some(token)).await {
        Ok(Some(caller)) => caller,
        Ok(None) => return Err(http::redirect("/login", &[])),
        Err(AppError::Unauthenticated { ended }) => {
            let location = match ended {
                Some(end) => format!("/login?ended={}", end.code()),
                None => "/login".to_owned(),
            };
            return Err(http::redirect(
                &location,
                &[http::clear_cookie(SESSION_COOKIE, "/")],
            ));
        }
        Err(error) => {
            return Err(errors::anonymous_error(&error, &http::request_id(req)));
        }
    };
    if let Some(session) = caller.session() {
        let due = matches!(
            session.second_factor,
            SecondFactorState::ReverificationDue { .. }
        );
        let enrol = session.second_factor == SecondFactorState::EnrolmentRequired;
        if need != Need::Open && due {
            return Err(http::redirect("/login/second-factor", &[]));
        }
        if need == Need::Full && enrol {
            return Err(http::redirect("/account/totp", &[]));
        }
        if need == Need::Full && session.must_change_password {
            return Err(http::redirect("/account#password", &[]));
        }
    }
    let csrf = console.app.csrf_token(&caller).unwrap_or_default();
    // For the user chip only; a failure here is not worth refusing the page.
    let display_name = match console.app.me(&caller, &http::request_id(req)).await {
        Ok(me) => me
            .account
            .and_then(|account| account.display_name)
            .filter(|name| !name.trim().is_empty()),
        Err(_) => None,
    };
    let partitions = match console
        .app
        .visible_partitions(&caller, &http::request_id(req))
        .await
    {
        Ok(partitions) => partitions,
        // Sessions that still owe a step (Need::Open/Onboarding pages) see no partitions yet.
        Err(
            AppError::SecondFactorRequired
            | AppError::SecondFactorEnrolmentRequired
            | AppError::PasswordChangeRequired,
        ) if need != Need::Full => Vec::new(),
        Err(error) => return Err(errors::anonymous_error(&error, &http::request_id(req))),
    };
    // A cookie naming a partition the viewer may not (or no longer) see is ignored.
    let wanted = http::cookie(req, PARTITION_COOKIE);
    let current = wanted
        .and_then(|id| partitions.iter().find(|p| p.id.as_str() == id).cloned())
        .or_else(|| partitions.first().cloned());
    Ok(Viewer {
        caller,
        display_name,
        csrf,
        partitions,
        current,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_take_two_words() {
        assert_eq!(initials("alice"), "A");
        assert_eq!(initials("alice.smith"), "AS");
        assert_eq!(initials("--"), "?");
    }

    #[test]
    fn query_params_are_decoded() {
        let req = Request::builder()
            .uri_str("/users?q=a%20b+c&role=admin")
            .finish();
        assert_eq!(query_param(&req, "q").as_deref(), Some("a b c"));
        assert_eq!(query_param(&req, "role").as_deref(), Some("admin"));
        assert_eq!(query_param(&req, "x"), None);
    }

    #[test]
    fn the_switcher_returns_to_pages_that_make_sense_in_another_partition() {
        assert_eq!(return_path("/users"), "/users");
        assert_eq!(return_path("/partitions/acme/credentials"), "/partitions");
        assert_eq!(return_path("/platform/partitions"), "/platform/partitions");
        assert_eq!(
            return_path("/platform/partitions/acme/offboard"),
            "/platform/partitions/acme"
        );
        assert_eq!(
            return_path("/platform/sso/corp/preview"),
            "/platform/sso/corp"
        );
        assert_eq!(return_path("/platform/sso"), "/platform/sso");
        assert_eq!(return_path("/keys/web-signing"), "/keys");
        assert_eq!(return_path("/account/totp"), "/");
    }
}
