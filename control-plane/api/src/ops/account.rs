//! `/account`: the caller's own account, password, TOTP and API tokens.

use km_core::App;
use km_core::AppError;
use km_core::identity::{NewApiToken, SecretText};
use km_domain::TenantScope;
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::{ApiTags, NoContent, fail, page};
use crate::context::{authenticate, cleared_cookie, request_id};
use crate::models::{
    ApiTokenPage, ChangePasswordRequest, CodeRequest, CreateApiTokenRequest, CreatedApiTokenBody,
    MeBody, PasswordConfirmation, RecoveryCodes, TotpEnrolment,
};
use crate::problem::ApiError;

pub(crate) struct AccountApi;

#[derive(Debug, ApiResponse)]
enum MeResponse {
    /// The caller.
    #[oai(status = 200)]
    Ok(Json<MeBody>),
}

#[derive(Debug, ApiResponse)]
enum PasswordChanged {
    /// Changed; every session of the account (this one included) has ended.
    #[oai(status = 204)]
    Done(
        /// Clears the session cookie.
        #[oai(header = "Set-Cookie")]
        String,
    ),
}

#[derive(Debug, ApiResponse)]
enum EnrolmentStarted {
    /// Show the QR code (or seed) once, then confirm with a first code.
    #[oai(status = 201)]
    Created(Json<TotpEnrolment>),
}

#[derive(Debug, ApiResponse)]
enum RecoveryCodesResponse {
    /// The recovery codes, shown once.
    #[oai(status = 200)]
    Ok(Json<RecoveryCodes>),
}

#[derive(Debug, ApiResponse)]
enum ApiTokenPageResponse {
    /// The page.
    #[oai(status = 200)]
    Ok(Json<ApiTokenPage>),
}

#[derive(Debug, ApiResponse)]
enum ApiTokenCreated {
    /// The token; its secret is shown only now.
    #[oai(status = 201)]
    Created(Json<CreatedApiTokenBody>),
}

fn codes(codes: Vec<SecretText>) -> RecoveryCodes {
    RecoveryCodes {
        recovery_codes: codes
            .iter()
            .map(|code| code.expose_secret().to_owned())
            .collect(),
    }
}

#[OpenApi(prefix_path = "/account", tag = "ApiTags::Account")]
impl AccountApi {
    /// The caller: principal, roles, account, session or token.
    #[oai(path = "/", method = "get", operation_id = "get_account")]
    async fn me(&self, app: Data<&App>, req: &Request) -> Result<MeResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let me = app.me(&caller, &rid).await.map_err(fail(&rid))?;
        Ok(MeResponse::Ok(Json(MeBody::from(me))))
    }

    /// Changes the caller's password; ends all its sessions.
    #[oai(
        path = "/password",
        method = "post",
        operation_id = "change_own_password"
    )]
    async fn change_password(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<ChangePasswordRequest>,
    ) -> Result<PasswordChanged, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let body = body.0;
        app.change_own_password(
            &caller,
            &rid,
            &SecretText::new(body.current_password.0),
            &SecretText::new(body.new_password.0),
        )
        .await
        .map_err(fail(&rid))?;
        Ok(PasswordChanged::Done(cleared_cookie()))
    }

    /// Starts TOTP enrolment.
    #[oai(
        path = "/totp/enrolment",
        method = "post",
        operation_id = "begin_totp_enrolment"
    )]
    async fn begin_enrolment(
        &self,
        app: Data<&App>,
        req: &Request,
    ) -> Result<EnrolmentStarted, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let setup = app
            .begin_totp_enrolment(&caller, &rid)
            .await
            .map_err(fail(&rid))?;
        Ok(EnrolmentStarted::Created(Json(TotpEnrolment::from(setup))))
    }

    /// Confirms TOTP enrolment with a first code; returns the recovery codes.
    #[oai(
        path = "/totp/enrolment/confirm",
        method = "post",
        operation_id = "confirm_totp_enrolment"
    )]
    async fn confirm_enrolment(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<CodeRequest>,
    ) -> Result<RecoveryCodesResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let list = app
            .confirm_totp_enrolment(&caller, &rid, &SecretText::new(body.0.code.0))
            .await
            .map_err(fail(&rid))?;
        Ok(RecoveryCodesResponse::Ok(Json(codes(list))))
    }

    /// Removes the caller's TOTP enrolment (needs the password).
    #[oai(
        path = "/totp/remove",
        method = "post",
        operation_id = "remove_own_totp"
    )]
    async fn remove_totp(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<PasswordConfirmation>,
    ) -> Result<NoContent, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        app.remove_own_totp(&caller, &rid, &SecretText::new(body.0.password.0))
            .await
            .map_err(fail(&rid))?;
        Ok(NoContent::Done)
    }

    /// Replaces the caller's recovery codes (needs the password).
    #[oai(
        path = "/totp/recovery-codes",
        method = "post",
        operation_id = "regenerate_recovery_codes"
    )]
    async fn regenerate_codes(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<PasswordConfirmation>,
    ) -> Result<RecoveryCodesResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let list = app
            .regenerate_recovery_codes(&caller, &rid, &SecretText::new(body.0.password.0))
            .await
            .map_err(fail(&rid))?;
        Ok(RecoveryCodesResponse::Ok(Json(codes(list))))
    }

    /// The caller's API tokens.
    #[oai(
        path = "/api-tokens",
        method = "get",
        operation_id = "list_own_api_tokens"
    )]
    async fn list_tokens(
        &self,
        app: Data<&App>,
        req: &Request,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Items per page (1–200, default 50).
        limit: Query<Option<u32>>,
    ) -> Result<ApiTokenPageResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let result = app
            .list_own_api_tokens(&caller, &rid, &page(cursor.0, limit.0))
            .await
            .map_err(fail(&rid))?;
        Ok(ApiTokenPageResponse::Ok(Json(ApiTokenPage::from(result))))
    }

    /// Creates an API token for the caller (interactive users only).
    #[oai(
        path = "/api-tokens",
        method = "post",
        operation_id = "create_api_token"
    )]
    async fn create_token(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<CreateApiTokenRequest>,
    ) -> Result<ApiTokenCreated, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let body = body.0;
        let scope = TenantScope::parse(&body.scope.0)
            .map_err(|error| fail(&rid)(AppError::invalid("invalid_scope", error.to_string())))?;
        let created = app
            .create_api_token(
                &caller,
                &rid,
                NewApiToken {
                    name: body.name.0,
                    scope,
                    role: body.role.into(),
                    expires_in_secs: body.expires_in_secs,
                },
            )
            .await
            .map_err(fail(&rid))?;
        Ok(ApiTokenCreated::Created(Json(CreatedApiTokenBody::from(
            created,
        ))))
    }

    /// Revokes one of the caller's API tokens.
    #[oai(
        path = "/api-tokens/:id",
        method = "delete",
        operation_id = "revoke_own_api_token"
    )]
    async fn revoke_token(
        &self,
        app: Data<&App>,
        req: &Request,
        /// The token id.
        id: Path<String>,
    ) -> Result<NoContent, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        app.revoke_own_api_token(&caller, &rid, &id.0)
            .await
            .map_err(fail(&rid))?;
        Ok(NoContent::Done)
    }
}
