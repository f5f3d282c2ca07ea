//! The JSON shapes of the API (request and response bodies) and their conversions from and to the
//! app layer's types. Request bodies refuse unknown fields, so a typo is an error rather than a
//! silently ignored setting.

use std::collections::BTreeMap;

use km_core::identity::{
    ApiTokenInfo, CreatedApiToken, NewSession, PendingLogin, SecondFactorState, TotpSetup,
    UserAccount, ValidSession,
};
use km_core::{AuditVerifySummary, Me, SecondFactorSetting, Settings};
use km_domain::{AuditEvent, Outcome, PrincipalKind, Role, RoleBinding};
use std::borrow::Cow;

use poem_openapi::registry::MetaSchemaRef;
use poem_openapi::types::{MaybeUndefined, ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use poem_openapi::{Enum, Object};
use serde_json::Value;

/// A JSON string, and only a string: poem-openapi's `String` also accepts numbers and booleans
/// (`5` → `"5"`), which would let a mistyped request through. Used for every string in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl Type for Text {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ParseFromJSON for Text {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(text) => Ok(Self(text)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ToJSON for Text {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// A secret string in a request (API key, token, private key): a JSON string like [`Text`], but
/// `Debug` never shows it and it is handed on as a [`km_core::SecretText`] at once.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretField(pub Text);

impl std::fmt::Debug for SecretField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretField(<redacted>)")
    }
}

impl SecretField {
    /// The secret, wrapped for the app layer.
    pub fn into_secret(self) -> km_core::SecretText {
        km_core::SecretText::new(self.0.0)
    }
}

impl Type for SecretField {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }

    fn is_empty(&self) -> bool {
        self.0.0.is_empty()
    }
}

impl ParseFromJSON for SecretField {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Text::parse_from_json(value)
            .map(Self)
            .map_err(ParseError::propagate)
    }
}

impl ToJSON for SecretField {
    /// Never serialised: secrets only travel inwards.
    fn to_json(&self) -> Option<Value> {
        Some(Value::String("<redacted>".to_owned()))
    }
}

/// A role, as in role bindings and API tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum RoleName {
    /// Everything on the scope, including users and configuration.
    Admin,
    /// Keys and certificates.
    User,
    /// Read only.
    Readonly,
}

impl From<RoleName> for Role {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Admin => Role::Admin,
            RoleName::User => Role::User,
            RoleName::Readonly => Role::Readonly,
        }
    }
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => RoleName::Admin,
            Role::User => RoleName::User,
            Role::Readonly => RoleName::Readonly,
        }
    }
}

/// One role on one scope: a tenant id, or `*` for every tenant (a platform operator).
#[derive(Debug, Clone, Object)]
pub struct Binding {
    /// Tenant id or `*`.
    pub scope: String,
    /// Role there.
    pub role: RoleName,
}

impl From<&RoleBinding> for Binding {
    fn from(binding: &RoleBinding) -> Self {
        Self {
            scope: binding.scope.to_string(),
            role: binding.role.into(),
        }
    }
}

fn bindings(list: &[RoleBinding]) -> Vec<Binding> {
    list.iter().map(Binding::from).collect()
}

/// A user account. Times are Unix seconds.
#[derive(Debug, Clone, Object)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Full name.
    pub display_name: Option<String>,
    /// Roles per tenant (`*` = platform operator).
    pub bindings: Vec<Binding>,
    /// Disabled accounts cannot sign in.
    pub disabled: bool,
    /// Creation time.
    pub created_at: u64,
    /// Last password change or reset.
    pub password_changed_at: u64,
    /// Must choose a new password at next sign-in.
    pub must_change_password: bool,
    /// Last complete sign-in.
    pub last_login_at: Option<u64>,
    /// Soft-locked until then.
    pub locked_until: Option<u64>,
    /// Consecutive failed sign-ins.
    pub failed_attempts: u32,
    /// TOTP enrolled.
    pub totp_enrolled: bool,
    /// The identity provider of an SSO account (its password and second factor are managed
    /// there).
    pub sso_provider: Option<String>,
}

impl From<UserAccount> for User {
    fn from(user: UserAccount) -> Self {
        Self {
            username: user.username.to_string(),
            display_name: user.display_name,
            bindings: bindings(&user.bindings),
            disabled: user.disabled,
            created_at: user.created_at,
            password_changed_at: user.password_changed_at,
            must_change_password: user.must_change_password,
            last_login_at: user.last_login_at,
            locked_until: user.locked_until,
            failed_attempts: user.failed_attempts,
            totp_enrolled: user.totp_enrolled,
            sso_provider: user.sso_provider,
        }
    }
}

/// A page of users.
#[derive(Debug, Clone, Object)]
pub struct UserPage {
    /// Users, by username.
    pub items: Vec<User>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl From<km_core::Page<UserAccount>> for UserPage {
    fn from(page: km_core::Page<UserAccount>) -> Self {
        Self {
            items: page.items.into_iter().map(User::from).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// Whether first-run setup is done.
#[derive(Debug, Clone, Object)]
pub struct SetupStatusBody {
    /// The first administrator exists.
    pub complete: bool,
}

/// Creates the first administrator.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct CompleteSetupRequest {
    /// The one-time setup token printed by the server at start.
    pub setup_token: Text,
    /// Login name of the first administrator.
    #[oai(validator(max_length = 64))]
    pub username: Text,
    /// Password (at least 12 characters).
    #[oai(validator(max_length = 1024))]
    pub password: Text,
    /// Full name.
    #[oai(validator(max_length = 200))]
    pub display_name: Option<Text>,
}

/// Username and password.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login name.
    #[oai(validator(max_length = 256))]
    pub username: Text,
    /// Password.
    #[oai(validator(max_length = 1024))]
    pub password: Text,
}

/// Where a session stands with the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum SecondFactorStatus {
    /// None enrolled, none required.
    NotEnrolled,
    /// Mandatory and not enrolled: enrol before anything else.
    EnrolmentRequired,
    /// Proven within the re-verification period.
    Verified,
    /// Must be proven again (`POST /auth/reverify`).
    ReverificationDue,
}

impl From<SecondFactorState> for SecondFactorStatus {
    fn from(state: SecondFactorState) -> Self {
        match state {
            SecondFactorState::NotEnrolled => Self::NotEnrolled,
            SecondFactorState::EnrolmentRequired => Self::EnrolmentRequired,
            SecondFactorState::Verified { .. } => Self::Verified,
            SecondFactorState::ReverificationDue { .. } => Self::ReverificationDue,
        }
    }
}

fn verified_at(state: SecondFactorState) -> Option<u64> {
    match state {
        SecondFactorState::Verified { at } => Some(at),
        SecondFactorState::ReverificationDue { last_verified_at } => last_verified_at,
        SecondFactorState::NotEnrolled | SecondFactorState::EnrolmentRequired => None,
    }
}

/// A new session (its cookie is in `Set-Cookie`).
#[derive(Debug, Clone, Object)]
pub struct SessionCreated {
    /// Who signed in.
    pub username: String,
    /// Send it as `X-CSRF-Token` with every state-changing request that uses the cookie.
    pub csrf_token: String,
    /// The session ends at this time at the latest.
    pub expires_at: u64,
    /// Second-factor standing.
    pub second_factor: SecondFactorStatus,
    /// A new password must be chosen first.
    pub must_change_password: bool,
}

impl From<&NewSession> for SessionCreated {
    fn from(session: &NewSession) -> Self {
        Self {
            username: session.username.to_string(),
            csrf_token: session.csrf_token.clone(),
            expires_at: session.absolute_expires_at,
            second_factor: session.second_factor.into(),
            must_change_password: session.must_change_password,
        }
    }
}

/// The password was right; a second factor is needed.
#[derive(Debug, Clone, Object)]
pub struct SecondFactorChallenge {
    /// Send it back with the code to `POST /auth/login/second-factor`. Secret.
    pub pending_token: String,
    /// Who is signing in.
    pub username: String,
    /// The code must come before this time.
    pub expires_at: u64,
}

impl From<&PendingLogin> for SecondFactorChallenge {
    fn from(pending: &PendingLogin) -> Self {
        Self {
            pending_token: pending.token.expose_secret().to_owned(),
            username: pending.username.to_string(),
            expires_at: pending.expires_at,
        }
    }
}

/// Which kind of second factor is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum FactorKind {
    /// A 6-digit code from the authenticator app.
    Totp,
    /// One of the recovery codes.
    RecoveryCode,
}

/// The second step of signing in.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct SecondFactorRequest {
    /// From the login answer.
    #[oai(validator(max_length = 256))]
    pub pending_token: Text,
    /// TOTP (default) or recovery code.
    #[oai(default = "default_factor_kind")]
    pub kind: FactorKind,
    /// The code.
    #[oai(validator(max_length = 64))]
    pub code: Text,
}

fn default_factor_kind() -> FactorKind {
    FactorKind::Totp
}

/// Proves the second factor again for the current session.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ReverifyRequest {
    /// TOTP (default) or recovery code.
    #[oai(default = "default_factor_kind")]
    pub kind: FactorKind,
    /// The code.
    #[oai(validator(max_length = 64))]
    pub code: Text,
}

/// The current session.
#[derive(Debug, Clone, Object)]
pub struct SessionInfo {
    /// A non-secret handle of the session.
    pub handle: String,
    /// Sign-in time.
    pub created_at: u64,
    /// Ends at this time unless a request comes first.
    pub idle_expires_at: u64,
    /// Ends at this time in any case.
    pub absolute_expires_at: u64,
    /// Second-factor standing.
    pub second_factor: SecondFactorStatus,
    /// Last proof of the second factor in this session.
    pub second_factor_verified_at: Option<u64>,
    /// A new password must be chosen first.
    pub must_change_password: bool,
}

impl From<&ValidSession> for SessionInfo {
    fn from(session: &ValidSession) -> Self {
        Self {
            handle: session.handle.clone(),
            created_at: session.created_at,
            idle_expires_at: session.idle_expires_at,
            absolute_expires_at: session.absolute_expires_at,
            second_factor: session.second_factor.into(),
            second_factor_verified_at: verified_at(session.second_factor),
            must_change_password: session.must_change_password,
        }
    }
}

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum CallerKind {
    /// A person (session).
    User,
    /// An API token.
    ApiToken,
    /// keymanager itself.
    System,
}

impl From<PrincipalKind> for CallerKind {
    fn from(kind: PrincipalKind) -> Self {
        match kind {
            PrincipalKind::User => Self::User,
            PrincipalKind::ApiToken => Self::ApiToken,
            PrincipalKind::System => Self::System,
        }
    }
}

/// The caller as it sees itself.
#[derive(Debug, Clone, Object)]
pub struct MeBody {
    /// User name or `token:<id>`.
    pub subject: String,
    /// How the caller authenticated.
    pub kind: CallerKind,
    /// Roles in force now.
    pub bindings: Vec<Binding>,
    /// The local account (sessions).
    pub account: Option<User>,
    /// The session (sessions).
    pub session: Option<SessionInfo>,
    /// The token (API tokens).
    pub token: Option<ApiToken>,
}

impl From<Me> for MeBody {
    fn from(me: Me) -> Self {
        Self {
            subject: me.principal.subject.to_string(),
            kind: me.principal.kind.into(),
            bindings: bindings(&me.principal.bindings),
            account: me.account.map(User::from),
            session: me.session.as_ref().map(SessionInfo::from),
            token: me.token.map(ApiToken::from),
        }
    }
}

/// Changes one's own password.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password.
    #[oai(validator(max_length = 1024))]
    pub current_password: Text,
    /// The new password.
    #[oai(validator(max_length = 1024))]
    pub new_password: Text,
}

/// Confirms a sensitive change with the current password.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct PasswordConfirmation {
    /// The current password.
    #[oai(validator(max_length = 1024))]
    pub password: Text,
}

/// A started TOTP enrolment. Every field embeds the seed: show once, never log.
#[derive(Debug, Clone, Object)]
pub struct TotpEnrolment {
    /// `otpauth://` URL.
    pub otpauth_url: String,
    /// The seed in base32.
    pub secret_base32: String,
    /// The URL as a QR code (`data:image/png;base64,...`).
    pub qr_png_data_url: String,
    /// Confirm before this time.
    pub expires_at: u64,
}

impl From<TotpSetup> for TotpEnrolment {
    fn from(setup: TotpSetup) -> Self {
        Self {
            otpauth_url: setup.artifacts.otpauth_url.expose_secret().to_owned(),
            secret_base32: setup.artifacts.secret_base32.expose_secret().to_owned(),
            qr_png_data_url: setup.artifacts.qr_png_data_url.expose_secret().to_owned(),
            expires_at: setup.expires_at,
        }
    }
}

/// A TOTP code.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct CodeRequest {
    /// 6 digits.
    #[oai(validator(max_length = 64))]
    pub code: Text,
}

/// Single-use recovery codes, shown once.
#[derive(Debug, Clone, Object)]
pub struct RecoveryCodes {
    /// The codes.
    pub recovery_codes: Vec<String>,
}

/// A user to create.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Login name (1–64 of a-z 0-9 . _ @ -).
    #[oai(validator(max_length = 64))]
    pub username: Text,
    /// Full name.
    #[oai(validator(max_length = 200))]
    pub display_name: Option<Text>,
    /// Initial password.
    #[oai(validator(max_length = 1024))]
    pub password: Text,
    /// Role on the tenant (or on `*` for platform users).
    pub role: RoleName,
    /// The user must choose a new password at first sign-in.
    #[oai(default)]
    pub must_change_password: bool,
}

/// Changes to an account; absent fields stay as they are.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// New full name; `null` clears it.
    #[oai(validator(max_length = 200))]
    pub display_name: MaybeUndefined<Text>,
    /// Disable (ends the user's sessions) or re-enable.
    pub disabled: Option<bool>,
}

/// An administrator sets a user's password.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The new password.
    #[oai(validator(max_length = 1024))]
    pub new_password: Text,
    /// The user must choose another at next sign-in.
    #[oai(default)]
    pub must_change_password: bool,
}

/// A role to set; `null` removes the binding.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct SetRoleRequest {
    /// The role, or `null` to remove.
    pub role: Option<RoleName>,
}

/// An API token (never its secret).
#[derive(Debug, Clone, Object)]
pub struct ApiToken {
    /// Public id.
    pub id: String,
    /// Label.
    pub name: String,
    /// Creator.
    pub owner: String,
    /// Tenant id or `*`.
    pub scope: String,
    /// Role there.
    pub role: RoleName,
    /// Creation time.
    pub created_at: u64,
    /// Expiry.
    pub expires_at: u64,
}

impl From<ApiTokenInfo> for ApiToken {
    fn from(info: ApiTokenInfo) -> Self {
        Self {
            id: info.id,
            name: info.name,
            owner: info.owner.to_string(),
            scope: info.scope.to_string(),
            role: info.role.into(),
            created_at: info.created_at,
            expires_at: info.expires_at,
        }
    }
}

/// A page of API tokens.
#[derive(Debug, Clone, Object)]
pub struct ApiTokenPage {
    /// Tokens, by id.
    pub items: Vec<ApiToken>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

impl From<km_core::Page<ApiTokenInfo>> for ApiTokenPage {
    fn from(page: km_core::Page<ApiTokenInfo>) -> Self {
        Self {
            items: page.items.into_iter().map(ApiToken::from).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// A token to create.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateApiTokenRequest {
    /// Label ("terraform-ci").
    #[oai(validator(max_length = 100))]
    pub name: Text,
    /// Tenant id or `*`.
    #[oai(validator(max_length = 64))]
    pub scope: Text,
    /// Role there (at most the creator's).
    pub role: RoleName,
    /// Lifetime in seconds.
    pub expires_in_secs: u64,
}

/// A created token: `token` is shown once.
#[derive(Debug, Clone, Object)]
pub struct CreatedApiTokenBody {
    /// `km_<id>_<secret>`: send as `Authorization: Bearer <token>`.
    pub token: String,
    /// What was stored.
    pub info: ApiToken,
}

impl From<CreatedApiToken> for CreatedApiTokenBody {
    fn from(created: CreatedApiToken) -> Self {
        Self {
            token: created.token.expose_secret().to_owned(),
            info: created.info.into(),
        }
    }
}

/// TOTP policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum SecondFactorMode {
    /// Users may enrol.
    Optional,
    /// Users must enrol.
    Mandatory,
}

/// The runtime settings (`kms.config.public`).
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct SettingsBody {
    /// TOTP optional or mandatory.
    pub second_factor: SecondFactorMode,
    /// Re-verify the second factor after this many hours (1–168).
    pub reverify_hours: u32,
    /// Idle session timeout in minutes (1–1440).
    pub session_idle_minutes: u32,
    /// Absolute session lifetime in hours (1–168).
    pub session_absolute_hours: u32,
    /// Failed sign-ins before the soft-lock (1–100).
    pub lockout_threshold: u32,
    /// Soft-lock duration in minutes (1–1440).
    pub lockout_minutes: u32,
}

impl From<Settings> for SettingsBody {
    fn from(settings: Settings) -> Self {
        Self {
            second_factor: match settings.second_factor {
                SecondFactorSetting::Optional => SecondFactorMode::Optional,
                SecondFactorSetting::Mandatory => SecondFactorMode::Mandatory,
            },
            reverify_hours: settings.reverify_hours,
            session_idle_minutes: settings.session_idle_minutes,
            session_absolute_hours: settings.session_absolute_hours,
            lockout_threshold: settings.lockout_threshold,
            lockout_minutes: settings.lockout_minutes,
        }
    }
}

impl From<SettingsBody> for Settings {
    fn from(body: SettingsBody) -> Self {
        Self {
            second_factor: match body.second_factor {
                SecondFactorMode::Optional => SecondFactorSetting::Optional,
                SecondFactorMode::Mandatory => SecondFactorSetting::Mandatory,
            },
            reverify_hours: body.reverify_hours,
            session_idle_minutes: body.session_idle_minutes,
            session_absolute_hours: body.session_absolute_hours,
            lockout_threshold: body.lockout_threshold,
            lockout_minutes: body.lockout_minutes,
        }
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum OutcomeName {
    /// Done (or, for a request event, admitted).
    Success,
    /// Refused.
    Denied,
    /// Allowed but failed.
    Failed,
}

impl From<OutcomeName> for Outcome {
    fn from(outcome: OutcomeName) -> Self {
        match outcome {
            OutcomeName::Success => Outcome::Success,
            OutcomeName::Denied => Outcome::Denied,
            OutcomeName::Failed => Outcome::Failed,
        }
    }
}

impl From<Outcome> for OutcomeName {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => OutcomeName::Success,
            Outcome::Denied => OutcomeName::Denied,
            Outcome::Failed => OutcomeName::Failed,
        }
    }
}

/// One audit event, exactly as stored (hash-chained).
#[derive(Debug, Clone, Object)]
pub struct AuditEventBody {
    /// Position in the log.
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    /// Who.
    pub actor: String,
    /// Which tenant.
    pub tenant: Option<String>,
    /// What.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: OutcomeName,
    /// Correlation id (`X-Request-Id`).
    pub request_id: String,
    /// Hash of the previous event.
    pub prev_hash: String,
    /// Extra context (never secrets).
    pub details: BTreeMap<String, String>,
}

impl From<AuditEvent> for AuditEventBody {
    fn from(event: AuditEvent) -> Self {
        Self {
            seq: event.seq,
            time: event.time,
            actor: event.actor,
            tenant: event.tenant.map(String::from),
            action: event.action,
            target: event.target,
            outcome: event.outcome.into(),
            request_id: event.request_id,
            prev_hash: event.prev_hash,
            details: event.details,
        }
    }
}

/// A page of audit events, newest first.
#[derive(Debug, Clone, Object)]
pub struct AuditEventPage {
    /// Events.
    pub items: Vec<AuditEventBody>,
    /// Pass as `cursor` for older events.
    pub next_cursor: Option<String>,
}

/// The result of verifying the audit log.
#[derive(Debug, Clone, Object)]
pub struct AuditVerification {
    /// Chain and checkpoints verified.
    pub valid: bool,
    /// Events checked.
    pub events: u64,
    /// First seq.
    pub first_seq: Option<u64>,
    /// Last seq.
    pub last_seq: Option<u64>,
    /// Checkpoints verified.
    pub checkpoints: u64,
    /// Highest seq covered by a checkpoint.
    pub last_checkpoint: Option<u64>,
    /// What is wrong.
    pub problem: Option<String>,
    /// The event the problem points at.
    pub problem_seq: Option<u64>,
}

impl From<AuditVerifySummary> for AuditVerification {
    fn from(summary: AuditVerifySummary) -> Self {
        Self {
            valid: summary.valid,
            events: summary.events,
            first_seq: summary.first_seq,
            last_seq: summary.last_seq,
            checkpoints: summary.checkpoints,
            last_checkpoint: summary.last_checkpoint,
            problem: summary.problem,
            problem_seq: summary.problem_seq,
        }
    }
}
