//! `/tenants/{tenant}/users`: users and role bindings of one tenant.

use km_core::App;
use km_core::identity::{NewUser, SecretText};
use poem::Request;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;

use super::{ApiTags, UserCreated, UserPageResponse, UserResponse, fail, page, tenant};
use crate::context::{authenticate, request_id};
use crate::models::{CreateUserRequest, SetRoleRequest, User, UserPage};
use crate::problem::ApiError;

pub(crate) struct UsersApi;

pub(crate) fn new_user(body: CreateUserRequest) -> NewUser {
    NewUser {
        username: body.username.0,
        display_name: body.display_name.map(|name| name.0),
        password: SecretText::new(body.password.0),
        role: body.role.into(),
        must_change_password: body.must_change_password,
    }
}

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Users with a role on the tenant (platform operators included), by username.
    #[oai(
        path = "/tenants/:tenant/users",
        method = "get",
        operation_id = "list_tenant_users"
    )]
    async fn list(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Items per page (1–200, default 50).
        limit: Query<Option<u32>>,
    ) -> Result<UserPageResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let result = app
            .list_users(&caller, &rid, &tenant, &page(cursor.0, limit.0))
            .await
            .map_err(fail(&rid))?;
        Ok(UserPageResponse::Ok(Json(UserPage::from(result))))
    }

    /// Creates a local user with a role on the tenant.
    #[oai(
        path = "/tenants/:tenant/users",
        method = "post",
        operation_id = "create_tenant_user"
    )]
    async fn create(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        body: Json<CreateUserRequest>,
    ) -> Result<UserCreated, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let user = app
            .create_user(&caller, &rid, &tenant, new_user(body.0))
            .await
            .map_err(fail(&rid))?;
        Ok(UserCreated::Created(Json(User::from(user))))
    }

    /// One user with a role on the tenant.
    #[oai(
        path = "/tenants/:tenant/users/:username",
        method = "get",
        operation_id = "get_tenant_user"
    )]
    async fn get(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// Login name.
        username: Path<String>,
    ) -> Result<UserResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let user = app
            .get_user(&caller, &rid, &tenant, &username.0)
            .await
            .map_err(fail(&rid))?;
        Ok(UserResponse::Ok(Json(User::from(user))))
    }

    /// Sets (or, with `null`, removes) a user's role on the tenant; ends the user's sessions.
    #[oai(
        path = "/tenants/:tenant/users/:username/role",
        method = "put",
        operation_id = "set_tenant_role"
    )]
    async fn set_role(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// Login name.
        username: Path<String>,
        body: Json<SetRoleRequest>,
    ) -> Result<UserResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let user = app
            .set_tenant_role(
                &caller,
                &rid,
                &tenant,
                &username.0,
                body.0.role.map(Into::into),
            )
            .await
            .map_err(fail(&rid))?;
        Ok(UserResponse::Ok(Json(User::from(user))))
    }
}
