//! `/platform`: every account, platform roles, every API token, and the runtime settings.

use km_core::identity::SecretText;
use km_core::{App, UserUpdate};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, OpenApi};

use super::users::new_user;
use super::{ApiTags, NoContent, UserCreated, UserPageResponse, UserResponse, fail, page};
use crate::context::{authenticate, request_id};
use crate::models::{
    ApiTokenPage, CreateUserRequest, ResetPasswordRequest, SetRoleRequest, SettingsBody,
    UpdateUserRequest, User, UserPage,
};
use crate::problem::ApiError;

pub(crate) struct PlatformApi;
pub(crate) struct SettingsApi;

#[derive(Debug, ApiResponse)]
enum ApiTokenPageResponse {
    /// The page.
    #[oai(status = 200)]
    Ok(Json<ApiTokenPage>),
}

#[derive(Debug, ApiResponse)]
enum SettingsResponse {
    /// The settings in force.
    #[oai(status = 200)]
    Ok(Json<SettingsBody>),
}

#[OpenApi(prefix_path = "/platform", tag = "ApiTags::Platform")]
impl PlatformApi {
    /// Every local account, by username.
    #[oai(path = "/users", method = "get", operation_id = "list_all_users")]
    async fn list_users(
        &self,
        app: Data<&App>,
        req: &Request,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Items per page (1–200, default 50).
        limit: Query<Option<u32>>,
    ) -> Result<UserPageResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let result = app
            .list_all_users(&caller, &rid, &page(cursor.0, limit.0))
            .await
            .map_err(fail(&rid))?;
        Ok(UserPageResponse::Ok(Json(UserPage::from(result))))
    }

    /// Creates a platform operator (a role on `*`).
    #[oai(
        path = "/users",
        method = "post",
        operation_id = "create_platform_user"
    )]
    async fn create_user(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<CreateUserRequest>,
    ) -> Result<UserCreated, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let user = app
            .create_platform_user(&caller, &rid, new_user(body.0))
            .await
            .map_err(fail(&rid))?;
        Ok(UserCreated::Created(Json(User::from(user))))
    }

    /// Any account.
    #[oai(
        path = "/users/:username",
        method = "get",
        operation_id = "get_any_user"
    )]
    async fn get_user(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Login name.
        username: Path<String>,
    ) -> Result<UserResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let user = app
            .get_any_user(&caller, &rid, &username.0)
            .await
            .map_err(fail(&rid))?;
        Ok(UserResponse::Ok(Json(User::from(user))))
    }

    /// Changes display name and/or enabled state.
    #[oai(
        path = "/users/:username",
        method = "patch",
        operation_id = "update_user"
    )]
    async fn update_user(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Login name.
        username: Path<String>,
        body: Json<UpdateUserRequest>,
    ) -> Result<UserResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let body = body.0;
        let update = UserUpdate {
            display_name: match body.display_name {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(name) => Some(Some(name.0)),
            },
            disabled: body.disabled,
        };
        let user = app
            .update_user(&caller, &rid, &username.0, update)
            .await
            .map_err(fail(&rid))?;
        Ok(UserResponse::Ok(Json(User::from(user))))
    }

    /// Deletes an account with its credentials and API tokens.
    #[oai(
        path = "/users/:username",
        method = "delete",
        operation_id = "delete_user"
    )]
    async fn delete_user(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Login name.
        username: Path<String>,
    ) -> Result<NoContent, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        app.delete_user(&caller, &rid, &username.0)
            .await
            .map_err(fail(&rid))?;
        Ok(NoContent::Done)
    }

    /// Lifts a soft-lock early.
    #[oai(
        path = "/users/:username/unlock",
        method = "post",
        operation_id = "unlock_user"
    )]
    async fn unlock_user(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Login name.
        username: Path<String>,
    ) -> Result<NoContent, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        app.unlock_user(&caller, &rid, &username.0)
            .await
            .map_err(fail(&rid))?;
        Ok(NoContent::Done)
    }

    /// Sets a user's password; ends the user's sessions.
    #[oai(
        path = "/users/:username/reset-password",
        method = "post",
        operation_id = "reset_user_password"
    )]
    async fn reset_password(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Login name.
        username: Path<String>,
        body: Json<ResetPasswordRequest>,
    ) -> Result<NoContent, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let body = body.0;
        app.reset_user_password(
            &caller,
            &rid,
            &username.0,
            &SecretText::new(body.new_password.0),
            body.must_change_password,
        )
        .await
        .map_err(fail(&rid))?;
        Ok(NoContent::Done)
    }

    /// Removes a user's second factor (lost authenticator); ends the user's sessions.
    #[oai(
        path = "/users/:username/reset-second-factor",
        method = "post",
        operation_id = "reset_user_second_factor"
    )]
    async fn reset_second_factor(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Login name.
        username: Path<String>,
    ) -> Result<NoContent, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        app.reset_user_second_factor(&caller, &rid, &username.0)
            .await
            .map_err(fail(&rid))?;
        Ok(NoContent::Done)
    }

    /// Sets (or, with `null`, removes) a user's role on `*`.
    #[oai(
        path = "/users/:username/platform-role",
        method = "put",
        operation_id = "set_platform_role"
    )]
    async fn set_platform_role(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Login name.
        username: Path<String>,
        body: Json<SetRoleRequest>,
    ) -> Result<UserResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let user = app
            .set_platform_role(&caller, &rid, &username.0, body.0.role.map(Into::into))
            .await
            .map_err(fail(&rid))?;
        Ok(UserResponse::Ok(Json(User::from(user))))
    }

    /// Every API token of every user.
    #[oai(
        path = "/api-tokens",
        method = "get",
        operation_id = "list_all_api_tokens"
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
            .list_all_api_tokens(&caller, &rid, &page(cursor.0, limit.0))
            .await
            .map_err(fail(&rid))?;
        Ok(ApiTokenPageResponse::Ok(Json(ApiTokenPage::from(result))))
    }

    /// Revokes anybody's API token.
    #[oai(
        path = "/api-tokens/:id",
        method = "delete",
        operation_id = "revoke_api_token"
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
        app.revoke_any_api_token(&caller, &rid, &id.0)
            .await
            .map_err(fail(&rid))?;
        Ok(NoContent::Done)
    }
}

#[OpenApi(prefix_path = "/platform/settings", tag = "ApiTags::Settings")]
impl SettingsApi {
    /// The runtime settings in force.
    #[oai(path = "/", method = "get", operation_id = "get_settings")]
    async fn get(&self, app: Data<&App>, req: &Request) -> Result<SettingsResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let settings = app.get_settings(&caller, &rid).await.map_err(fail(&rid))?;
        Ok(SettingsResponse::Ok(Json(SettingsBody::from(settings))))
    }

    /// Replaces the runtime settings; they apply to every session at once.
    #[oai(path = "/", method = "put", operation_id = "update_settings")]
    async fn update(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<SettingsBody>,
    ) -> Result<SettingsResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let settings = app
            .update_settings(&caller, &rid, body.0.into())
            .await
            .map_err(fail(&rid))?;
        Ok(SettingsResponse::Ok(Json(SettingsBody::from(settings))))
    }
}
