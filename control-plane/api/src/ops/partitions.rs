//! Partitions: what members see of their tenants (`/partitions`, `/tenants/{tenant}`), their own
//! credentials, and the operators' registry (`/platform/partitions`, `/platform/vaults`).

use km_core::{
    ApiKeyCredentials, App, AppError, ConnectionReport, NewPartition, PartitionCredentials,
    PartitionRecord, PartitionTarget, PartitionUpdate, RequestId,
};
use km_domain::{AuthMode, Colour, DisplayName, PartitionStatus, TsbEndpoint};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::{ApiTags, NoContent, fail, tenant};
use crate::context::{authenticate, request_id};
use crate::models::{SecretField, Text};
use crate::problem::ApiError;

pub(crate) struct PartitionsApi;

/// How keymanager authenticates to a partition's TSB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum AuthModeName {
    /// `X-API-KEY` per API-key group.
    ApiKeys,
    /// Bearer JWT.
    Jwt,
    /// TLS client certificate.
    Mtls,
}

impl From<AuthModeName> for AuthMode {
    fn from(mode: AuthModeName) -> Self {
        match mode {
            AuthModeName::ApiKeys => AuthMode::ApiKeys,
            AuthModeName::Jwt => AuthMode::Jwt,
            AuthModeName::Mtls => AuthMode::Mtls,
        }
    }
}

impl From<AuthMode> for AuthModeName {
    fn from(mode: AuthMode) -> Self {
        match mode {
            AuthMode::ApiKeys => AuthModeName::ApiKeys,
            AuthMode::Jwt => AuthModeName::Jwt,
            AuthMode::Mtls => AuthModeName::Mtls,
        }
    }
}

/// Whether keymanager serves a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum StatusName {
    /// Served.
    Active,
    /// Registered, but nothing is sent to its HSM.
    Suspended,
}

impl From<StatusName> for PartitionStatus {
    fn from(status: StatusName) -> Self {
        match status {
            StatusName::Active => PartitionStatus::Active,
            StatusName::Suspended => PartitionStatus::Suspended,
        }
    }
}

impl From<PartitionStatus> for StatusName {
    fn from(status: PartitionStatus) -> Self {
        match status {
            PartitionStatus::Active => StatusName::Active,
            PartitionStatus::Suspended => StatusName::Suspended,
        }
    }
}

/// A partition as its members see it.
#[derive(Debug, Clone, Object)]
pub struct PartitionSummary {
    /// Tenant id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// `#rrggbb`.
    pub colour: String,
    /// Served or suspended.
    pub status: StatusName,
}

impl From<&PartitionRecord> for PartitionSummary {
    fn from(record: &PartitionRecord) -> Self {
        Self {
            id: record.id.to_string(),
            display_name: record.display_name.to_string(),
            colour: record.colour.to_string(),
            status: record.status.into(),
        }
    }
}

/// A partition's registration as operators see it (never its credentials).
#[derive(Debug, Clone, Object)]
pub struct Partition {
    /// Tenant id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// `#rrggbb`.
    pub colour: String,
    /// Served or suspended.
    pub status: StatusName,
    /// TSB REST base URL.
    pub endpoint: String,
    /// How keymanager authenticates.
    pub auth: AuthModeName,
    /// Whether a private CA is pinned for the endpoint.
    pub private_ca: bool,
    /// Id of the vault keeping the credentials.
    pub vault: String,
    /// Name of the credentials' secret in that vault.
    pub secret_name: String,
    /// Grows by one per credential rotation.
    pub credentials_version: u64,
}

impl From<&PartitionRecord> for Partition {
    fn from(record: &PartitionRecord) -> Self {
        Self {
            id: record.id.to_string(),
            display_name: record.display_name.to_string(),
            colour: record.colour.to_string(),
            status: record.status.into(),
            endpoint: record.target.endpoint.to_string(),
            auth: record.target.auth.into(),
            private_ca: record.target.ca_pem.is_some(),
            vault: record.credentials.vault.clone(),
            secret_name: record.credentials.name.to_string(),
            credentials_version: record.credentials_version,
        }
    }
}

/// What the partition's TSB reports.
#[derive(Debug, Clone, Object)]
pub struct ConnectionReportBody {
    /// TSB version (`versionInfo`).
    pub version: String,
    /// Licence flags (`licenseInfo`).
    pub licenses: Vec<String>,
    /// Keystore object counts.
    pub statistics: KeystoreStatisticsBody,
}

/// Keystore object counts.
#[derive(Debug, Clone, Object)]
pub struct KeystoreStatisticsBody {
    /// Private keys.
    pub private_keys: u64,
    /// Public keys.
    pub public_keys: u64,
    /// Secret keys.
    pub secret_keys: u64,
    /// Certificates.
    pub certificates: u64,
    /// Data objects.
    pub data_objects: u64,
}

impl From<ConnectionReport> for ConnectionReportBody {
    fn from(report: ConnectionReport) -> Self {
        let stats = report.statistics;
        Self {
            version: report.service.version,
            licenses: report.service.licenses,
            statistics: KeystoreStatisticsBody {
                private_keys: stats.private_keys,
                public_keys: stats.public_keys,
                secret_keys: stats.secret_keys,
                certificates: stats.certificates,
                data_objects: stats.data_objects,
            },
        }
    }
}

/// Per-group API keys, for TSBs that use different keys per group.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ApiKeyGroupsBody {
    /// `keyManagementToken`.
    pub key_management: Option<SecretField>,
    /// `keyOperationToken`.
    pub key_operation: Option<SecretField>,
    /// `serviceToken`.
    pub service: Option<SecretField>,
    /// `approverToken`.
    pub approver: Option<SecretField>,
    /// `approverKeyManagementToken`.
    pub approver_key_management: Option<SecretField>,
}

/// Credentials for a partition. Write-only: never returned by any operation.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct CredentialsBody {
    /// API key for every group without its own (auth `api_keys`).
    #[oai(validator(max_length = 4096))]
    pub api_key: Option<SecretField>,
    /// Per-group API keys (override `api_key`).
    pub api_keys: Option<ApiKeyGroupsBody>,
    /// Bearer JWT (auth `jwt`).
    #[oai(validator(max_length = 8192))]
    pub bearer_token: Option<SecretField>,
    /// Client certificate chain, PEM (auth `mtls`).
    #[oai(validator(max_length = 8192))]
    pub client_certificate_pem: Option<Text>,
    /// Client private key, PEM (auth `mtls`).
    #[oai(validator(max_length = 8192))]
    pub client_key_pem: Option<SecretField>,
}

impl From<CredentialsBody> for PartitionCredentials {
    fn from(body: CredentialsBody) -> Self {
        let secret = |field: Option<SecretField>| field.map(SecretField::into_secret);
        let groups = body.api_keys;
        let (key_management, key_operation, service, approver, approver_key_management) =
            match groups {
                Some(g) => (
                    secret(g.key_management),
                    secret(g.key_operation),
                    secret(g.service),
                    secret(g.approver),
                    secret(g.approver_key_management),
                ),
                None => (None, None, None, None, None),
            };
        Self {
            api_keys: ApiKeyCredentials {
                default: secret(body.api_key),
                key_management,
                key_operation,
                service,
                approver,
                approver_key_management,
            },
            bearer_token: secret(body.bearer_token),
            client_certificate_pem: body.client_certificate_pem.map(|pem| pem.0),
            client_key_pem: secret(body.client_key_pem),
        }
    }
}

/// Where a partition's TSB is and how to authenticate, with credentials.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ConnectionBody {
    /// TSB REST base URL (`https://…`; `http://` for local emulators).
    #[oai(validator(max_length = 2048))]
    pub endpoint: Text,
    /// How keymanager authenticates.
    pub auth: AuthModeName,
    /// PEM of a private CA that issued the TSB's certificate.
    #[oai(validator(max_length = 65536))]
    pub ca_pem: Option<Text>,
    /// The credentials.
    pub credentials: CredentialsBody,
}

/// A partition to register.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct OnboardRequest {
    /// Tenant id: 1–63 of `[a-z0-9-]`, starting with a letter.
    #[oai(validator(max_length = 63))]
    pub id: Text,
    /// Display name (1–64 characters).
    #[oai(validator(max_length = 256))]
    pub display_name: Text,
    /// `#rrggbb`; a palette colour derived from the id when absent.
    #[oai(validator(max_length = 7))]
    pub colour: Option<Text>,
    /// Vault for the credentials (see `GET /platform/vaults`); the default vault when absent.
    #[oai(validator(max_length = 64))]
    pub vault: Option<Text>,
    /// Endpoint, auth mode and credentials.
    pub connection: ConnectionBody,
}

/// A change of a registration; absent fields stay.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdatePartitionRequest {
    /// New display name.
    #[oai(validator(max_length = 256))]
    pub display_name: Option<Text>,
    /// New colour.
    #[oai(validator(max_length = 7))]
    pub colour: Option<Text>,
    /// Suspend or resume.
    pub status: Option<StatusName>,
}

/// One configured vault.
#[derive(Debug, Clone, Object)]
pub struct Vault {
    /// Vault id (what `vault` fields name).
    pub id: String,
    /// `hsm`, `azure` or `gcp`.
    pub kind: String,
    /// New partitions use it unless another is chosen.
    pub default: bool,
}

/// Whether the caller keeps own credentials for the tenant.
#[derive(Debug, Clone, Object)]
pub struct OwnCredentialsStatus {
    /// True when the caller's requests on this partition use the caller's own credentials.
    pub own_credentials: bool,
}

#[derive(Debug, ApiResponse)]
enum SummariesResponse {
    /// The partitions.
    #[oai(status = 200)]
    Ok(Json<Vec<PartitionSummary>>),
}

#[derive(Debug, ApiResponse)]
enum SummaryResponse {
    /// The partition.
    #[oai(status = 200)]
    Ok(Json<PartitionSummary>),
}

#[derive(Debug, ApiResponse)]
enum PartitionsResponse {
    /// Every registered partition.
    #[oai(status = 200)]
    Ok(Json<Vec<Partition>>),
}

#[derive(Debug, ApiResponse)]
enum PartitionResponse {
    /// The registration.
    #[oai(status = 200)]
    Ok(Json<Partition>),
    /// Registered.
    #[oai(status = 201)]
    Created(Json<Partition>),
}

#[derive(Debug, ApiResponse)]
enum ReportResponse {
    /// What the TSB reports.
    #[oai(status = 200)]
    Ok(Json<ConnectionReportBody>),
}

#[derive(Debug, ApiResponse)]
enum VaultsResponse {
    /// The configured vaults.
    #[oai(status = 200)]
    Ok(Json<Vec<Vault>>),
}

#[derive(Debug, ApiResponse)]
enum OwnCredentialsResponse {
    /// Whether own credentials are kept.
    #[oai(status = 200)]
    Ok(Json<OwnCredentialsStatus>),
}

fn target(body: &ConnectionBody, rid: &RequestId) -> Result<PartitionTarget, ApiError> {
    Ok(PartitionTarget {
        endpoint: TsbEndpoint::parse(&body.endpoint.0).map_err(invalid(rid))?,
        auth: body.auth.into(),
        ca_pem: body.ca_pem.as_ref().map(|pem| pem.0.clone()),
    })
}

fn invalid(rid: &RequestId) -> impl Fn(km_domain::InvalidRegistration) -> ApiError + '_ {
    move |error| {
        ApiError::from_app(
            &AppError::invalid("invalid_partition", error.to_string()),
            rid,
        )
    }
}

#[OpenApi(tag = "ApiTags::Partitions")]
impl PartitionsApi {
    /// The partitions the caller can switch to (every registered one for a platform operator).
    #[oai(
        path = "/partitions",
        method = "get",
        operation_id = "list_my_partitions"
    )]
    async fn list_mine(
        &self,
        app: Data<&App>,
        req: &Request,
    ) -> Result<SummariesResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let records = app
            .visible_partitions(&caller, &rid)
            .await
            .map_err(fail(&rid))?;
        Ok(SummariesResponse::Ok(Json(
            records.iter().map(PartitionSummary::from).collect(),
        )))
    }

    /// One partition the caller has a role on.
    #[oai(
        path = "/tenants/:tenant",
        method = "get",
        operation_id = "get_partition"
    )]
    async fn get(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
    ) -> Result<SummaryResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = super::tenant(&tenant.0, &rid)?;
        let record = app
            .get_partition(&caller, &rid, &tenant)
            .await
            .map_err(fail(&rid))?;
        Ok(SummaryResponse::Ok(Json(PartitionSummary::from(&record))))
    }

    /// The partition's TSB version, licence flags and keystore statistics, asked with the
    /// partition's credentials (or the caller's own, when kept).
    #[oai(
        path = "/tenants/:tenant/status",
        method = "get",
        operation_id = "get_partition_status"
    )]
    async fn status(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
    ) -> Result<ReportResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = super::tenant(&tenant.0, &rid)?;
        let report = app
            .partition_status(&caller, &rid, &tenant)
            .await
            .map_err(fail(&rid))?;
        Ok(ReportResponse::Ok(Json(report.into())))
    }

    /// Whether the caller keeps own credentials for the partition.
    #[oai(
        path = "/tenants/:tenant/credentials",
        method = "get",
        operation_id = "get_own_partition_credentials"
    )]
    async fn own_credentials(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
    ) -> Result<OwnCredentialsResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = super::tenant(&tenant.0, &rid)?;
        let own_credentials = app
            .has_own_partition_credentials(&caller, &rid, &tenant)
            .await
            .map_err(fail(&rid))?;
        Ok(OwnCredentialsResponse::Ok(Json(OwnCredentialsStatus {
            own_credentials,
        })))
    }

    /// Keeps the caller's own credentials for the partition (tested first; stored in the
    /// partition's vault). The caller's requests on the partition then use them.
    #[oai(
        path = "/tenants/:tenant/credentials",
        method = "put",
        operation_id = "set_own_partition_credentials"
    )]
    async fn set_own_credentials(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        body: Json<CredentialsBody>,
    ) -> Result<ReportResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = super::tenant(&tenant.0, &rid)?;
        let report = app
            .set_own_partition_credentials(&caller, &rid, &tenant, body.0.into())
            .await
            .map_err(fail(&rid))?;
        Ok(ReportResponse::Ok(Json(report.into())))
    }

    /// Forgets the caller's own credentials for the partition.
    #[oai(
        path = "/tenants/:tenant/credentials",
        method = "delete",
        operation_id = "clear_own_partition_credentials"
    )]
    async fn clear_own_credentials(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
    ) -> Result<NoContent, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = super::tenant(&tenant.0, &rid)?;
        app.clear_own_partition_credentials(&caller, &rid, &tenant)
            .await
            .map_err(fail(&rid))?;
        Ok(NoContent::Done)
    }

    /// Every registered partition (operators).
    #[oai(
        path = "/platform/partitions",
        method = "get",
        operation_id = "list_partitions"
    )]
    async fn list_all(
        &self,
        app: Data<&App>,
        req: &Request,
    ) -> Result<PartitionsResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let records = app
            .list_all_partitions(&caller, &rid)
            .await
            .map_err(fail(&rid))?;
        Ok(PartitionsResponse::Ok(Json(
            records.iter().map(Partition::from).collect(),
        )))
    }

    /// The configured credential vaults (operators).
    #[oai(
        path = "/platform/vaults",
        method = "get",
        operation_id = "list_vaults"
    )]
    async fn vaults(&self, app: Data<&App>, req: &Request) -> Result<VaultsResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let (vaults, default) = app.list_vaults(&caller, &rid).await.map_err(fail(&rid))?;
        Ok(VaultsResponse::Ok(Json(
            vaults
                .into_iter()
                .map(|(id, kind)| Vault {
                    default: default.as_deref() == Some(id.as_str()),
                    kind: kind.to_string(),
                    id,
                })
                .collect(),
        )))
    }

    /// Tests a connection before onboarding: the TSB's version, licence flags and keystore
    /// statistics, or 422 `partition_connection_failed` with the TSB's error explained. Nothing is
    /// stored.
    #[oai(
        path = "/platform/partitions/test-connection",
        method = "post",
        operation_id = "test_partition_connection"
    )]
    async fn test_connection(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<ConnectionBody>,
    ) -> Result<ReportResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let body = body.0;
        let target = target(&body, &rid)?;
        let report = app
            .test_partition_connection(&caller, &rid, &target, &body.credentials.into())
            .await
            .map_err(fail(&rid))?;
        Ok(ReportResponse::Ok(Json(report.into())))
    }

    /// Registers a partition as a tenant (the connection is tested first; the credentials go to
    /// the chosen vault).
    #[oai(
        path = "/platform/partitions",
        method = "post",
        operation_id = "onboard_partition"
    )]
    async fn onboard(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<OnboardRequest>,
    ) -> Result<PartitionResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let body = body.0;
        let new = NewPartition {
            id: tenant(&body.id.0, &rid)?,
            display_name: DisplayName::parse(&body.display_name.0).map_err(invalid(&rid))?,
            colour: body
                .colour
                .map(|colour| Colour::parse(&colour.0))
                .transpose()
                .map_err(invalid(&rid))?,
            target: target(&body.connection, &rid)?,
            vault: body.vault.map(|vault| vault.0),
            credentials: body.connection.credentials.into(),
        };
        let record = app
            .onboard_partition(&caller, &rid, new)
            .await
            .map_err(fail(&rid))?;
        Ok(PartitionResponse::Created(Json(Partition::from(&record))))
    }

    /// Changes a partition's display name, colour or status.
    #[oai(
        path = "/platform/partitions/:tenant",
        method = "patch",
        operation_id = "update_partition"
    )]
    async fn update(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        body: Json<UpdatePartitionRequest>,
    ) -> Result<PartitionResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = super::tenant(&tenant.0, &rid)?;
        let body = body.0;
        let update = PartitionUpdate {
            display_name: body
                .display_name
                .map(|name| DisplayName::parse(&name.0))
                .transpose()
                .map_err(invalid(&rid))?,
            colour: body
                .colour
                .map(|colour| Colour::parse(&colour.0))
                .transpose()
                .map_err(invalid(&rid))?,
            status: body.status.map(Into::into),
        };
        let record = app
            .update_partition(&caller, &rid, &tenant, update)
            .await
            .map_err(fail(&rid))?;
        Ok(PartitionResponse::Ok(Json(Partition::from(&record))))
    }

    /// Replaces a partition's credentials (and optionally endpoint and auth mode) without
    /// downtime: tested first, then stored, then used by every replica.
    #[oai(
        path = "/platform/partitions/:tenant/credentials",
        method = "put",
        operation_id = "rotate_partition_credentials"
    )]
    async fn rotate(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        body: Json<ConnectionBody>,
    ) -> Result<PartitionResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = super::tenant(&tenant.0, &rid)?;
        let body = body.0;
        let target = target(&body, &rid)?;
        let record = app
            .rotate_partition_credentials(
                &caller,
                &rid,
                &tenant,
                Some(target),
                body.credentials.into(),
            )
            .await
            .map_err(fail(&rid))?;
        Ok(PartitionResponse::Ok(Json(Partition::from(&record))))
    }

    /// Removes a partition from keymanager (registration and stored credentials). Nothing in the
    /// partition's HSM is deleted. `confirm` must repeat the tenant id.
    #[oai(
        path = "/platform/partitions/:tenant",
        method = "delete",
        operation_id = "offboard_partition"
    )]
    async fn offboard(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// The tenant id again, to confirm.
        confirm: Query<Option<String>>,
    ) -> Result<NoContent, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = super::tenant(&tenant.0, &rid)?;
        app.offboard_partition(&caller, &rid, &tenant, confirm.0.as_deref().unwrap_or(""))
            .await
            .map_err(fail(&rid))?;
        Ok(NoContent::Done)
    }
}
