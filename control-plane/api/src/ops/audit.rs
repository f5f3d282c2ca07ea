//! The audit log: per tenant and platform-wide, and its verification.

use km_core::{App, AuditFilter};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::{ApiTags, fail, page, tenant};
use crate::context::{authenticate, request_id};
use crate::models::{AuditEventBody, AuditEventPage, AuditVerification, OutcomeName};
use crate::problem::ApiError;

pub(crate) struct AuditApi;

#[derive(Debug, ApiResponse)]
enum AuditPageResponse {
    /// Events, newest first.
    #[oai(status = 200)]
    Ok(Json<AuditEventPage>),
}

#[derive(Debug, ApiResponse)]
enum VerifyResponse {
    /// The verification result (`valid: false` names the problem).
    #[oai(status = 200)]
    Ok(Json<AuditVerification>),
}

fn to_page(page: km_core::Page<km_domain::AuditEvent>) -> AuditEventPage {
    AuditEventPage {
        items: page.items.into_iter().map(AuditEventBody::from).collect(),
        next_cursor: page.next_cursor,
    }
}

#[OpenApi(tag = "ApiTags::Audit")]
impl AuditApi {
    /// Audit events about one tenant, newest first.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/tenants/:tenant/audit/events",
        method = "get",
        operation_id = "list_tenant_audit_events"
    )]
    async fn tenant_events(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// Only this actor.
        actor: Query<Option<String>>,
        /// Only this action.
        action: Query<Option<String>>,
        /// Only this outcome.
        outcome: Query<Option<OutcomeName>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Items per page (1–200, default 50).
        limit: Query<Option<u32>>,
    ) -> Result<AuditPageResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let filter = AuditFilter {
            actor: actor.0,
            action: action.0,
            outcome: outcome.0.map(Into::into),
            ..AuditFilter::default()
        };
        let result = app
            .list_tenant_audit_events(&caller, &rid, &tenant, filter, &page(cursor.0, limit.0))
            .await
            .map_err(fail(&rid))?;
        Ok(AuditPageResponse::Ok(Json(to_page(result))))
    }

    /// The whole audit log, newest first.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/platform/audit/events",
        method = "get",
        operation_id = "list_audit_events"
    )]
    async fn events(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Only events about this tenant.
        tenant: Query<Option<String>>,
        /// Only this actor.
        actor: Query<Option<String>>,
        /// Only this action.
        action: Query<Option<String>>,
        /// Only this outcome.
        outcome: Query<Option<OutcomeName>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Items per page (1–200, default 50).
        limit: Query<Option<u32>>,
    ) -> Result<AuditPageResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = match tenant.0 {
            Some(raw) => Some(self::tenant(&raw, &rid)?),
            None => None,
        };
        let filter = AuditFilter {
            tenant,
            actor: actor.0,
            action: action.0,
            outcome: outcome.0.map(Into::into),
            ..AuditFilter::default()
        };
        let result = app
            .list_audit_events(&caller, &rid, filter, &page(cursor.0, limit.0))
            .await
            .map_err(fail(&rid))?;
        Ok(AuditPageResponse::Ok(Json(to_page(result))))
    }

    /// Verifies the whole audit log: hash chain, checkpoint signatures, coverage.
    #[oai(
        path = "/platform/audit/verify",
        method = "post",
        operation_id = "verify_audit"
    )]
    async fn verify(&self, app: Data<&App>, req: &Request) -> Result<VerifyResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let summary = app.verify_audit(&caller, &rid).await.map_err(fail(&rid))?;
        Ok(VerifyResponse::Ok(Json(AuditVerification::from(summary))))
    }
}
