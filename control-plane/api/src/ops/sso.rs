//! Single sign-on: the sign-in options (anonymous) and the operators' configuration with its
//! mapping preview. The browser flow itself (redirect to the provider, callback, session cookie)
//! is the console's (`/login/sso/{provider}`), because it needs a browser.

use km_core::{
    App, AppError, RequestId, SsoConfig, SsoProviderConfig, SsoProviderKind, SsoProviderSettings,
};
use km_domain::{ClaimKind, MappingDecision, MappingRule, SsoMapping, TenantScope};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::{ApiTags, NoContent, fail};
use crate::context::{authenticate, request_id};
use crate::models::{Binding, RoleName, SecretField, Text};
use crate::problem::ApiError;

pub(crate) struct SsoApi;

/// A provider on the sign-in page.
#[derive(Debug, Clone, Object)]
pub struct LoginProvider {
    /// Provider id (the console's sign-in URL is `/login/sso/{id}`).
    pub id: String,
    /// Button text.
    pub display_name: String,
}

/// What the sign-in page offers.
#[derive(Debug, Clone, Object)]
pub struct LoginOptionsBody {
    /// Whether username/password sign-in is offered (platform administrators may always use it).
    pub local_login: bool,
    /// Enabled identity providers.
    pub providers: Vec<LoginProvider>,
}

/// Protocol and defaults of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Any OpenID Connect provider.
    Oidc,
    /// Microsoft Entra ID.
    EntraId,
    /// Keycloak.
    Keycloak,
    /// GitHub (OAuth2; organisations and teams as groups).
    Github,
}

impl From<ProviderKind> for SsoProviderKind {
    fn from(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::Oidc => SsoProviderKind::Oidc,
            ProviderKind::EntraId => SsoProviderKind::EntraId,
            ProviderKind::Keycloak => SsoProviderKind::Keycloak,
            ProviderKind::Github => SsoProviderKind::Github,
        }
    }
}

impl From<SsoProviderKind> for ProviderKind {
    fn from(kind: SsoProviderKind) -> Self {
        match kind {
            SsoProviderKind::Oidc => ProviderKind::Oidc,
            SsoProviderKind::EntraId => ProviderKind::EntraId,
            SsoProviderKind::Keycloak => ProviderKind::Keycloak,
            SsoProviderKind::Github => ProviderKind::Github,
        }
    }
}

/// Which claim a mapping rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ClaimName {
    /// The groups claim.
    Group,
    /// The roles claim.
    Role,
}

/// One line of the mapping table.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct MappingRuleBody {
    /// Which claim.
    pub claim: ClaimName,
    /// Exact group id/name or role name.
    #[oai(validator(max_length = 256))]
    pub value: Text,
    /// Tenant id, or `*` for platform operators.
    #[oai(validator(max_length = 63))]
    pub scope: Text,
    /// Role granted there.
    pub role: RoleName,
}

/// Who may sign in and what they get.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct MappingBody {
    /// If not empty, only members of one of these groups may sign in.
    #[oai(validator(max_items = 100))]
    pub allowed_group_ids: Vec<Text>,
    /// The mapping table.
    #[oai(validator(max_items = 500))]
    pub rules: Vec<MappingRuleBody>,
}

/// One provider.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ProviderBody {
    /// Slug (1–32 of a-z, 0-9, -).
    #[oai(validator(max_length = 32))]
    pub id: Text,
    /// Sign-in button text.
    #[oai(validator(max_length = 64))]
    pub display_name: Text,
    /// Protocol and defaults.
    pub kind: ProviderKind,
    /// OIDC issuer URL (GitHub: `https://github.com`).
    #[oai(validator(max_length = 2048))]
    pub issuer_url: Text,
    /// GitHub only: API base (`https://api.github.com` when absent).
    #[oai(validator(max_length = 2048))]
    pub api_url: Option<Text>,
    /// OAuth2 client id.
    #[oai(validator(max_length = 256))]
    pub client_id: Text,
    /// Scopes beyond the kind's defaults.
    #[oai(default, validator(max_items = 20))]
    pub extra_scopes: Vec<Text>,
    /// Claim with groups (default `groups`).
    #[oai(validator(max_length = 128))]
    pub groups_claim: Option<Text>,
    /// Claim with roles (dotted path; default per kind).
    #[oai(validator(max_length = 128))]
    pub roles_claim: Option<Text>,
    /// Offered on the sign-in page.
    pub enabled: bool,
    /// Access rules.
    pub mapping: MappingBody,
    /// Read only: whether a client secret is stored (ignored on input).
    #[oai(default)]
    pub client_secret_set: bool,
}

/// The SSO configuration.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct SsoSettingsBody {
    /// Offer username/password sign-in to everybody (platform administrators may always use
    /// it, as break-glass).
    pub local_login: bool,
    /// Providers in sign-in page order.
    #[oai(validator(max_items = 20))]
    pub providers: Vec<ProviderBody>,
}

/// A client secret to store (sealed; never returned).
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ClientSecretBody {
    /// The OAuth2 client secret.
    #[oai(validator(max_length = 1024))]
    pub client_secret: SecretField,
}

/// Claims to try against a mapping.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct PreviewRequest {
    /// A saved provider whose mapping to use.
    #[oai(validator(max_length = 32))]
    pub provider: Option<Text>,
    /// Or an unsaved mapping to try.
    pub mapping: Option<MappingBody>,
    /// Group claim values.
    #[oai(default, validator(max_items = 500))]
    pub groups: Vec<Text>,
    /// Role claim values.
    #[oai(default, validator(max_items = 500))]
    pub roles: Vec<Text>,
}

/// What a set of claims yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum PreviewOutcome {
    /// Sign-in allowed with `bindings`.
    Granted,
    /// Not in any allowed group: sign-in refused.
    NotInAllowedGroup,
    /// No rule matches: sign-in refused.
    NoPartitionMapping,
}

/// The preview's answer.
#[derive(Debug, Clone, Object)]
pub struct PreviewBody {
    /// The decision a sign-in with these claims would get.
    pub outcome: PreviewOutcome,
    /// Bindings granted (highest role per scope).
    pub bindings: Vec<Binding>,
    /// Indexes of the rules that matched.
    pub matched_rules: Vec<u32>,
}

#[derive(Debug, ApiResponse)]
enum LoginOptionsResponse {
    /// What the sign-in page offers.
    #[oai(status = 200)]
    Ok(Json<LoginOptionsBody>),
}

#[derive(Debug, ApiResponse)]
enum SsoSettingsResponse {
    /// The configuration.
    #[oai(status = 200)]
    Ok(Json<SsoSettingsBody>),
}

#[derive(Debug, ApiResponse)]
enum PreviewResponse {
    /// The decision.
    #[oai(status = 200)]
    Ok(Json<PreviewBody>),
}

fn invalid(rid: &RequestId, message: String) -> ApiError {
    ApiError::from_app(&AppError::invalid("invalid_sso_config", message), rid)
}

fn texts(values: Vec<Text>) -> Vec<String> {
    values.into_iter().map(|text| text.0).collect()
}

fn mapping(body: MappingBody, rid: &RequestId) -> Result<SsoMapping, ApiError> {
    let rules = body
        .rules
        .into_iter()
        .map(|rule| {
            Ok(MappingRule {
                claim: match rule.claim {
                    ClaimName::Group => ClaimKind::Group,
                    ClaimName::Role => ClaimKind::Role,
                },
                value: rule.value.0,
                scope: TenantScope::parse(&rule.scope.0).map_err(|error| {
                    invalid(rid, format!("mapping scope {:?}: {error}", rule.scope.0))
                })?,
                role: rule.role.into(),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(SsoMapping {
        allowed_group_ids: texts(body.allowed_group_ids),
        rules,
    })
}

fn mapping_body(mapping: &SsoMapping) -> MappingBody {
    MappingBody {
        allowed_group_ids: mapping
            .allowed_group_ids
            .iter()
            .map(|id| Text(id.clone()))
            .collect(),
        rules: mapping
            .rules
            .iter()
            .map(|rule| MappingRuleBody {
                claim: match rule.claim {
                    ClaimKind::Group => ClaimName::Group,
                    ClaimKind::Role => ClaimName::Role,
                },
                value: Text(rule.value.clone()),
                scope: Text(rule.scope.to_string()),
                role: rule.role.into(),
            })
            .collect(),
    }
}

fn config(body: SsoSettingsBody, rid: &RequestId) -> Result<SsoConfig, ApiError> {
    let providers = body
        .providers
        .into_iter()
        .map(|p| {
            Ok(SsoProviderConfig {
                settings: SsoProviderSettings {
                    id: p.id.0,
                    display_name: p.display_name.0,
                    kind: p.kind.into(),
                    issuer_url: p.issuer_url.0,
                    api_url: p.api_url.map(|url| url.0),
                    client_id: p.client_id.0,
                    extra_scopes: texts(p.extra_scopes),
                    groups_claim: p.groups_claim.map(|claim| claim.0),
                    roles_claim: p.roles_claim.map(|claim| claim.0),
                },
                enabled: p.enabled,
                mapping: mapping(p.mapping, rid)?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(SsoConfig {
        local_login: body.local_login,
        providers,
    })
}

fn settings_body(config: &SsoConfig, secrets: &[(String, bool)]) -> SsoSettingsBody {
    SsoSettingsBody {
        local_login: config.local_login,
        providers: config
            .providers
            .iter()
            .map(|p| {
                let s = &p.settings;
                ProviderBody {
                    id: Text(s.id.clone()),
                    display_name: Text(s.display_name.clone()),
                    kind: s.kind.into(),
                    issuer_url: Text(s.issuer_url.clone()),
                    api_url: s.api_url.clone().map(Text),
                    client_id: Text(s.client_id.clone()),
                    extra_scopes: s.extra_scopes.iter().cloned().map(Text).collect(),
                    groups_claim: s.groups_claim.clone().map(Text),
                    roles_claim: s.roles_claim.clone().map(Text),
                    enabled: p.enabled,
                    mapping: mapping_body(&p.mapping),
                    client_secret_set: secrets.iter().any(|(id, stored)| id == &s.id && *stored),
                }
            })
            .collect(),
    }
}

#[OpenApi(tag = "ApiTags::Auth")]
impl SsoApi {
    /// What the sign-in page offers: local sign-in and the enabled identity providers.
    #[oai(
        path = "/auth/login-options",
        method = "get",
        operation_id = "get_login_options"
    )]
    async fn login_options(
        &self,
        app: Data<&App>,
        req: &Request,
    ) -> Result<LoginOptionsResponse, ApiError> {
        let rid = request_id(req);
        let options = app.login_options().await.map_err(fail(&rid))?;
        Ok(LoginOptionsResponse::Ok(Json(LoginOptionsBody {
            local_login: options.local_login,
            providers: options
                .providers
                .into_iter()
                .map(|(id, display_name)| LoginProvider { id, display_name })
                .collect(),
        })))
    }

    /// The single sign-on configuration (operators).
    #[oai(
        path = "/platform/sso",
        method = "get",
        operation_id = "get_sso_settings",
        tag = "ApiTags::Platform"
    )]
    async fn get_settings(
        &self,
        app: Data<&App>,
        req: &Request,
    ) -> Result<SsoSettingsResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let view = app
            .get_sso_settings(&caller, &rid)
            .await
            .map_err(fail(&rid))?;
        Ok(SsoSettingsResponse::Ok(Json(settings_body(
            &view.config,
            &view.secrets,
        ))))
    }

    /// Replaces the single sign-on configuration (operators). Client secrets are set separately.
    #[oai(
        path = "/platform/sso",
        method = "put",
        operation_id = "update_sso_settings",
        tag = "ApiTags::Platform"
    )]
    async fn update_settings(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<SsoSettingsBody>,
    ) -> Result<SsoSettingsResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let config = config(body.0, &rid)?;
        app.update_sso_settings(&caller, &rid, config)
            .await
            .map_err(fail(&rid))?;
        let view = app
            .get_sso_settings(&caller, &rid)
            .await
            .map_err(fail(&rid))?;
        Ok(SsoSettingsResponse::Ok(Json(settings_body(
            &view.config,
            &view.secrets,
        ))))
    }

    /// Stores a provider's OAuth2 client secret, sealed by the HSM (operators). Never returned.
    #[oai(
        path = "/platform/sso/providers/:provider/client-secret",
        method = "put",
        operation_id = "set_sso_client_secret",
        tag = "ApiTags::Platform"
    )]
    async fn set_client_secret(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Provider id.
        provider: Path<String>,
        body: Json<ClientSecretBody>,
    ) -> Result<NoContent, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let secret = body.0.client_secret.into_secret();
        app.set_sso_client_secret(&caller, &rid, &provider.0, &secret)
            .await
            .map_err(fail(&rid))?;
        Ok(NoContent::Done)
    }

    /// What a person with these groups and roles would get — the same decision a sign-in makes
    /// (operators). Uses a saved provider's mapping or an unsaved one.
    #[oai(
        path = "/platform/sso/preview",
        method = "post",
        operation_id = "preview_sso_mapping",
        tag = "ApiTags::Platform"
    )]
    async fn preview(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<PreviewRequest>,
    ) -> Result<PreviewResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let body = body.0;
        let rules = match (body.mapping, body.provider) {
            (Some(mapping_body), None) => mapping(mapping_body, &rid)?,
            (None, Some(provider)) => app
                .sso_mapping_of(&caller, &rid, &provider.0)
                .await
                .map_err(fail(&rid))?,
            _ => {
                return Err(invalid(
                    &rid,
                    "give either `provider` or `mapping`".to_owned(),
                ));
            }
        };
        let decision = app
            .preview_sso_mapping(
                &caller,
                &rid,
                &rules,
                &texts(body.groups),
                &texts(body.roles),
            )
            .await
            .map_err(fail(&rid))?;
        let (outcome, bindings, matched) = match decision {
            MappingDecision::Granted { bindings, matched } => {
                (PreviewOutcome::Granted, bindings, matched)
            }
            MappingDecision::NotInAllowedGroup => {
                (PreviewOutcome::NotInAllowedGroup, Vec::new(), Vec::new())
            }
            MappingDecision::NoMatchingRule => {
                (PreviewOutcome::NoPartitionMapping, Vec::new(), Vec::new())
            }
        };
        Ok(PreviewResponse::Ok(Json(PreviewBody {
            outcome,
            bindings: bindings.iter().map(Binding::from).collect(),
            matched_rules: matched
                .into_iter()
                .map(|index| u32::try_from(index).unwrap_or(u32::MAX))
                .collect(),
        })))
    }
}
