//! How the console draws and collects partition registrations, shared by the member pages
//! (overview, own credentials) and the operator pages (list, onboarding wizard, edit): the
//! colour picker, the endpoint and credential fields, and the report of a connection test.
//!
//! Secret form fields are read straight into [`FormSecret`] (a [`SecretText`]: wiped on drop,
//! redacted in `Debug`), and the views the templates render have no place for them, so a
//! re-rendered form can never echo a submitted secret.

use km_core::{
    ApiKeyCredentials, AppError, ConnectionReport, PartitionCredentials, PartitionTarget,
    SecretText,
};
use km_domain::{AuthMode, Colour, TsbEndpoint};
use serde::{Deserialize, Deserializer};

/// The auth modes the forms offer: (form value, label).
const AUTH_MODES: [(AuthMode, &str); 3] = [
    (AuthMode::ApiKeys, "API keys"),
    (AuthMode::Jwt, "Bearer token (JWT)"),
    (AuthMode::Mtls, "Client certificate (mTLS)"),
];

/// A round colour dot as inline SVG (`fill` is an SVG attribute, not an inline style, so the CSP
/// allows it). `colour` is a validated `#rrggbb`, so the markup cannot be broken out of.
pub(crate) fn swatch_svg(colour: &Colour, size: u32) -> String {
    let r = size / 2;
    format!(
        "<svg class=\"swatch\" width=\"{size}\" height=\"{size}\" viewBox=\"0 0 {size} {size}\" aria-hidden=\"true\" focusable=\"false\"><circle cx=\"{r}\" cy=\"{r}\" r=\"{r}\" fill=\"{}\"/></svg>",
        colour.as_str()
    )
}

/// The name of an auth mode in forms and tables (`api_keys`, `jwt`, `mtls`).
pub(crate) fn parse_auth_mode(text: &str) -> Option<AuthMode> {
    AUTH_MODES
        .iter()
        .map(|(mode, _)| *mode)
        .find(|mode| mode.as_str() == text)
}

/// A secret form field, wrapped as it is read; empty (or blank) = not given.
#[derive(Debug, Default)]
pub(crate) struct FormSecret(Option<SecretText>);

impl<'de> Deserialize<'de> for FormSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let secret = SecretText::new(String::deserialize(deserializer)?);
        let trimmed = secret.expose_secret().trim();
        Ok(Self(if trimmed.is_empty() {
            None
        } else if trimmed.len() == secret.expose_secret().len() {
            Some(secret)
        } else {
            Some(SecretText::from(trimmed))
        }))
    }
}

impl FormSecret {
    /// The secret, if one was given.
    pub fn take(self) -> Option<SecretText> {
        self.0
    }
}

/// The colour picker's fields: a palette colour, `custom` (then `custom_colour` from the
/// `<input type=color>`), or nothing (the id's palette colour).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ColourInput {
    #[serde(default)]
    colour: String,
    #[serde(default)]
    custom_colour: String,
}

impl ColourInput {
    /// The chosen colour; `None` when none was picked.
    pub fn parse(&self) -> Result<Option<Colour>, String> {
        let text = match self.colour.as_str() {
            "" => return Ok(None),
            "custom" => self.custom_colour.trim(),
            palette => palette,
        };
        Colour::parse(text)
            .map(Some)
            .map_err(|invalid| format!("The {invalid}."))
    }

    /// The picker showing what this input chose (for a re-rendered form).
    pub fn picker(&self, hint: &'static str) -> ColourPicker {
        let custom = Colour::parse(self.custom_colour.trim()).ok();
        if self.colour == "custom" {
            ColourPicker::build(None, custom, hint)
        } else {
            ColourPicker::build(Colour::parse(&self.colour).ok(), custom, hint)
        }
    }
}

/// One palette swatch of the picker.
#[derive(Debug)]
pub(crate) struct ColourOption {
    pub value: &'static str,
    pub checked: bool,
}

impl ColourOption {
    /// The swatch drawn in the radio's label.
    pub fn swatch(&self) -> String {
        Colour::parse(self.value)
            .map(|colour| swatch_svg(&colour, 28))
            .unwrap_or_default()
    }
}

/// The colour picker (partials/colour_picker.html): the ten palette swatches as radio buttons
/// plus a custom colour.
#[derive(Debug)]
pub(crate) struct ColourPicker {
    pub options: Vec<ColourOption>,
    pub custom_checked: bool,
    /// `#rrggbb` for the `<input type=color>` (always valid, or the browser shows black).
    pub custom_value: String,
    pub hint: &'static str,
}

impl ColourPicker {
    /// A picker with `selected` checked: a palette swatch, or the custom colour when it is not
    /// in the palette; nothing checked for `None`.
    pub fn new(selected: Option<&Colour>, hint: &'static str) -> Self {
        let in_palette = selected.filter(|colour| Colour::PALETTE.contains(&colour.as_str()));
        match in_palette {
            Some(colour) => Self::build(Some(colour.clone()), None, hint),
            None => {
                let custom = selected.cloned();
                let mut picker = Self::build(None, custom.clone(), hint);
                picker.custom_checked = custom.is_some();
                picker
            }
        }
    }

    fn build(palette: Option<Colour>, custom: Option<Colour>, hint: &'static str) -> Self {
        let options = Colour::PALETTE
            .iter()
            .map(|value| ColourOption {
                value,
                checked: palette.as_ref().is_some_and(|c| c.as_str() == *value),
            })
            .collect::<Vec<_>>();
        let custom_checked = palette.is_none() && custom.is_some();
        Self {
            options,
            custom_checked,
            custom_value: custom
                .map_or_else(|| Colour::PALETTE[0].to_owned(), |c| c.as_str().to_owned()),
            hint,
        }
    }
}

/// Endpoint, auth mode and private CA as submitted.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TargetInput {
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    auth: String,
    #[serde(default)]
    ca_pem: String,
}

impl TargetInput {
    /// The target, or what to fix.
    pub fn parse(&self) -> Result<PartitionTarget, String> {
        let endpoint =
            TsbEndpoint::parse(&self.endpoint).map_err(|invalid| format!("The TSB {invalid}."))?;
        let auth = parse_auth_mode(&self.auth)
            .ok_or_else(|| "Choose how keymanager authenticates to the TSB.".to_owned())?;
        let ca_pem = Some(self.ca_pem.trim())
            .filter(|pem| !pem.is_empty())
            .map(str::to_owned);
        if ca_pem
            .as_deref()
            .is_some_and(|pem| !pem.contains("-----BEGIN CERTIFICATE-----"))
        {
            return Err(
                "The CA certificate must be PEM (-----BEGIN CERTIFICATE----- ...).".to_owned(),
            );
        }
        Ok(PartitionTarget {
            endpoint,
            auth,
            ca_pem,
        })
    }
}

/// The credential fields as submitted. Every secret is a [`FormSecret`]; the client certificate
/// is public.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CredentialInput {
    #[serde(default)]
    api_key: FormSecret,
    #[serde(default)]
    key_management: FormSecret,
    #[serde(default)]
    key_operation: FormSecret,
    #[serde(default)]
    service: FormSecret,
    #[serde(default)]
    approver: FormSecret,
    #[serde(default)]
    approver_key_management: FormSecret,
    #[serde(default)]
    bearer_token: FormSecret,
    #[serde(default)]
    client_certificate_pem: String,
    #[serde(default)]
    client_key_pem: FormSecret,
}

impl CredentialInput {
    /// The credentials `mode` uses (fields of other modes, shown but not chosen, are dropped):
    /// API keys for `api_keys` and, optionally, `mtls`; the token for `jwt`; certificate and key
    /// for `mtls`.
    pub fn into_credentials(self, mode: AuthMode) -> PartitionCredentials {
        let api_keys = ApiKeyCredentials {
            default: self.api_key.take(),
            key_management: self.key_management.take(),
            key_operation: self.key_operation.take(),
            service: self.service.take(),
            approver: self.approver.take(),
            approver_key_management: self.approver_key_management.take(),
        };
        let certificate = Some(self.client_certificate_pem.trim())
            .filter(|pem| !pem.is_empty())
            .map(str::to_owned);
        match mode {
            AuthMode::ApiKeys => PartitionCredentials {
                api_keys,
                ..PartitionCredentials::default()
            },
            AuthMode::Jwt => PartitionCredentials {
                bearer_token: self.bearer_token.take(),
                ..PartitionCredentials::default()
            },
            AuthMode::Mtls => PartitionCredentials {
                api_keys,
                client_certificate_pem: certificate,
                client_key_pem: self.client_key_pem.take(),
                ..PartitionCredentials::default()
            },
        }
    }

    /// The public part, for a re-rendered form.
    pub fn client_certificate_pem(&self) -> &str {
        &self.client_certificate_pem
    }
}

/// What the credential fields (partials/credential_fields.html) show. Secret fields are always
/// rendered empty: there is nowhere to put a secret here.
#[derive(Debug)]
pub(crate) struct CredentialForm {
    /// Endpoint, auth mode and CA can be changed (onboarding, rotation); otherwise they are the
    /// partition's and only the credentials of its auth mode are asked for (own credentials).
    pub target_editable: bool,
    pub endpoint: String,
    /// `api_keys`, `jwt` or `mtls`.
    pub auth: &'static str,
    pub ca_pem: String,
    pub client_certificate_pem: String,
}

/// A radio button of the auth mode choice.
#[derive(Debug)]
pub(crate) struct AuthChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

impl CredentialForm {
    /// Empty fields for a new partition (API keys preselected).
    pub fn blank() -> Self {
        Self {
            target_editable: true,
            endpoint: String::new(),
            auth: AuthMode::ApiKeys.as_str(),
            ca_pem: String::new(),
            client_certificate_pem: String::new(),
        }
    }

    /// Fields prefilled with a registered target (rotation), or fixed to it (own credentials).
    pub fn for_target(target: &PartitionTarget, editable: bool) -> Self {
        Self {
            target_editable: editable,
            endpoint: target.endpoint.as_str().to_owned(),
            auth: target.auth.as_str(),
            ca_pem: target.ca_pem.clone().unwrap_or_default(),
            client_certificate_pem: String::new(),
        }
    }

    /// The submitted public values again (secrets stay blank).
    pub fn resubmitted(target: &TargetInput, credentials: &CredentialInput) -> Self {
        Self {
            target_editable: true,
            endpoint: target.endpoint.clone(),
            auth: parse_auth_mode(&target.auth).map_or("api_keys", AuthMode::as_str),
            ca_pem: target.ca_pem.clone(),
            client_certificate_pem: credentials.client_certificate_pem().to_owned(),
        }
    }

    /// Keeps the submitted client certificate (own credentials: the target is fixed).
    pub fn with_certificate(mut self, credentials: &CredentialInput) -> Self {
        self.client_certificate_pem = credentials.client_certificate_pem().to_owned();
        self
    }

    /// The auth mode radio buttons.
    pub fn auth_choices(&self) -> Vec<AuthChoice> {
        AUTH_MODES
            .iter()
            .map(|(mode, label)| AuthChoice {
                value: mode.as_str(),
                label,
                checked: mode.as_str() == self.auth,
            })
            .collect()
    }

    /// Whether a section of fields is drawn: every section while the mode can be changed (CSS
    /// shows the chosen mode's), otherwise only the partition's mode's.
    pub fn shows(&self, section: &str) -> bool {
        self.target_editable
            || match section {
                "api_keys" => matches!(self.auth, "api_keys" | "mtls"),
                other => other == self.auth,
            }
    }
}

/// One keystore count.
#[derive(Debug)]
pub(crate) struct Statistic {
    pub label: &'static str,
    pub count: u64,
}

/// What a TSB reported (partials/connection_report.html).
#[derive(Debug)]
pub(crate) struct ConnectionView {
    pub version: String,
    pub licences: Vec<String>,
    pub statistics: Vec<Statistic>,
}

impl From<&ConnectionReport> for ConnectionView {
    fn from(report: &ConnectionReport) -> Self {
        let stats = &report.statistics;
        Self {
            version: report.service.version.clone(),
            licences: report.service.licenses.clone(),
            statistics: vec![
                Statistic {
                    label: "Private keys",
                    count: stats.private_keys,
                },
                Statistic {
                    label: "Public keys",
                    count: stats.public_keys,
                },
                Statistic {
                    label: "Secret keys",
                    count: stats.secret_keys,
                },
                Statistic {
                    label: "Certificates",
                    count: stats.certificates,
                },
                Statistic {
                    label: "Data objects",
                    count: stats.data_objects,
                },
            ],
        }
    }
}

/// The result of a connection test (partials/connection_outcome.html).
#[derive(Debug)]
pub(crate) enum ConnectionOutcome {
    /// The TSB answered with these credentials.
    Passed(ConnectionView),
    /// The TSB refused or could not be reached: its error, explained.
    Failed(String),
}

impl ConnectionOutcome {
    /// The TSB answered.
    pub fn passed(report: &ConnectionReport) -> Self {
        Self::Passed(ConnectionView::from(report))
    }

    /// The outcome of a use case that connects to a TSB: a report, the explained connection
    /// failure, or (`Err`) any other error for the caller to handle.
    pub fn of(result: Result<ConnectionReport, AppError>) -> Result<Self, AppError> {
        match result {
            Ok(report) => Ok(Self::passed(&report)),
            Err(AppError::PartitionConnection { message }) => Ok(Self::Failed(message)),
            Err(other) => Err(other),
        }
    }

    /// Whether the test failed.
    pub fn failed(&self) -> bool {
        matches!(self, Self::Failed(_))
    }
}

/// What a form with a connection test shows after a submission: the TSB's report or its
/// explained refusal, or a rule the input broke.
#[derive(Debug, Default)]
pub(crate) struct Feedback {
    pub outcome: Option<ConnectionOutcome>,
    pub error: Option<String>,
}

impl Feedback {
    /// Input refused before anything was asked.
    pub fn rejected(message: String) -> Self {
        Self {
            outcome: None,
            error: Some(message),
        }
    }

    /// Sorts the result of a connection test (`Ok(Some(report))`) or of a change that tested the
    /// connection first (`Ok(None)` when it was made, which needs no feedback): what to show on
    /// the form, or (`Err`) an error for an error page.
    pub fn of(
        result: Result<Option<ConnectionReport>, AppError>,
    ) -> Result<Option<Self>, AppError> {
        let outcome = |outcome| {
            Ok(Some(Self {
                outcome: Some(outcome),
                error: None,
            }))
        };
        match result {
            Ok(None) => Ok(None),
            Ok(Some(report)) => outcome(ConnectionOutcome::passed(&report)),
            Err(AppError::PartitionConnection { message }) => {
                outcome(ConnectionOutcome::Failed(message))
            }
            Err(error @ (AppError::InvalidInput { .. } | AppError::Conflict { .. })) => {
                Ok(Some(Self::rejected(error.to_string())))
            }
            Err(other) => Err(other),
        }
    }

    /// Whether the page answers 422.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.outcome.as_ref().is_some_and(ConnectionOutcome::failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrapped {
        #[serde(flatten)]
        target: TargetInput,
        #[serde(flatten)]
        credentials: CredentialInput,
        #[serde(flatten)]
        colour: ColourInput,
    }

    /// Reads `body` as poem reads a posted form.
    async fn form(body: &str) -> Wrapped {
        use poem::FromRequest as _;
        let request = poem::Request::builder()
            .method(poem::http::Method::POST)
            .content_type("application/x-www-form-urlencoded")
            .body(body.to_owned());
        let (request, mut body) = request.split();
        let poem::web::Form(wrapped) =
            poem::web::Form::<Wrapped>::from_request(&request, &mut body)
                .await
                .unwrap();
        wrapped
    }

    #[tokio::test]
    async fn flattened_fields_are_read_and_secrets_are_redacted() {
        let wrapped = form(
            "endpoint=http%3A%2F%2F127.0.0.1%3A9%2Fpartitions%2Fx&auth=api_keys&api_key=+s3cret+&service=&colour=custom&custom_colour=%23AABBCC",
        )
        .await;
        let target = wrapped.target.parse().unwrap();
        assert_eq!(target.auth, AuthMode::ApiKeys);
        assert!(!format!("{:?}", wrapped.credentials).contains("s3cret"));
        let credentials = wrapped.credentials.into_credentials(AuthMode::ApiKeys);
        assert_eq!(
            credentials.api_keys.default.unwrap().expose_secret(),
            "s3cret"
        );
        assert!(credentials.api_keys.service.is_none());
        assert_eq!(wrapped.colour.parse().unwrap().unwrap().as_str(), "#aabbcc");
    }

    #[tokio::test]
    async fn only_the_chosen_modes_credentials_are_kept() {
        let wrapped = form("auth=jwt&api_key=k&bearer_token=t&client_key_pem=p").await;
        let credentials = wrapped.credentials.into_credentials(AuthMode::Jwt);
        assert!(credentials.api_keys.default.is_none());
        assert!(credentials.client_key_pem.is_none());
        assert_eq!(credentials.bearer_token.unwrap().expose_secret(), "t");
    }

    #[tokio::test]
    async fn targets_and_colours_are_validated() {
        for body in [
            "endpoint=tsb.example&auth=api_keys",
            "endpoint=https%3A%2F%2Ftsb&auth=other",
            "endpoint=https%3A%2F%2Ftsb&auth=jwt&ca_pem=nope",
        ] {
            assert!(form(body).await.target.parse().is_err(), "{body}");
        }
        assert!(form("colour=red").await.colour.parse().is_err());
        assert!(form("").await.colour.parse().unwrap().is_none());
    }

    #[test]
    fn the_picker_checks_palette_or_custom_colours() {
        let palette = Colour::parse(Colour::PALETTE[3]).unwrap();
        let picker = ColourPicker::new(Some(&palette), "");
        assert!(picker.options[3].checked && !picker.custom_checked);
        let custom = Colour::parse("#123456").unwrap();
        let picker = ColourPicker::new(Some(&custom), "");
        assert!(picker.custom_checked);
        assert_eq!(picker.custom_value, "#123456");
        assert!(picker.options.iter().all(|option| !option.checked));
        let picker = ColourPicker::new(None, "");
        assert!(!picker.custom_checked && picker.options.iter().all(|o| !o.checked));
    }
}
