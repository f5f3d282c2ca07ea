//! API tokens for automation: `km_<id>_<secret>`, shown once at creation. The record
//! `kms.apitoken.<id>` keeps only the SHA-256 of the secret; verification looks the id up and
//! compares digests in constant time.
//!
//! A token is scoped to one tenant (or `*`) with one role, never more than its creator holds there
//! when it is created, and at every use it is capped again by what the owner holds *now*: a token
//! stops working when its owner is deleted or disabled or loses the role on that scope.

use km_domain::{Action, Grant, Principal, PrincipalId, Role, RoleBinding, TenantScope};

use super::records::{API_TOKEN, ApiTokenRecord, UserRecord};
use super::{Ctx, IdentityError, SecretText};
use crate::{StoreError, Timestamp};

/// Prefix of every token, so secret scanners and humans recognise one.
const PREFIX: &str = "km_";
/// Random bytes of the id (hex in the token) and of the secret (base64url).
const ID_BYTES: usize = 12;
const SECRET_BYTES: usize = 32;
/// Longest token name.
const MAX_NAME_CHARS: usize = 100;

/// What to create.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// A label for humans ("terraform-ci").
    pub name: String,
    /// The tenant (or `*`) the token acts on.
    pub scope: TenantScope,
    /// Its role there; at most the creator's.
    pub role: Role,
    /// Lifetime in seconds (1 ..= configured maximum).
    pub expires_in_secs: u64,
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenInfo {
    /// The public id (the part after `km_`).
    pub id: String,
    /// Label.
    pub name: String,
    /// The user who created it.
    pub owner: PrincipalId,
    /// Scope.
    pub scope: TenantScope,
    /// Role.
    pub role: Role,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
}

/// A freshly created token: `token` is shown to the user once and never again.
#[derive(Debug, Clone)]
pub struct CreatedApiToken {
    /// `km_<id>_<secret>`.
    pub token: SecretText,
    /// The stored facts.
    pub info: ApiTokenInfo,
}

/// A token that passed verification.
#[derive(Debug, Clone)]
pub struct AuthenticatedToken {
    /// `Principal::api_token("token:<id>", [binding])`, the binding capped by the owner's
    /// current role. Pass it to `authorize`.
    pub principal: Principal,
    /// The token.
    pub info: ApiTokenInfo,
}

/// Creates, verifies, lists and revokes API tokens.
#[derive(Debug, Clone)]
pub struct ApiTokenService {
    pub(crate) ctx: Ctx,
}

impl ApiTokenService {
    /// Creates a token owned by the grant's principal (`manage_own_api_tokens`, interactive users
    /// only). The role is checked against the creator's current bindings in the store.
    pub async fn create(
        &self,
        grant: &Grant,
        request: NewApiToken,
    ) -> Result<CreatedApiToken, IdentityError> {
        grant.require(Action::ManageOwnApiTokens, None)?;
        let ctx = &self.ctx;
        let name = request.name.trim().to_owned();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(IdentityError::InvalidName(
                "a token name has 1 to 100 printable characters",
            ));
        }
        let max_secs = ctx.config().api_token_max_lifetime_secs;
        if request.expires_in_secs == 0 || request.expires_in_secs > max_secs {
            return Err(IdentityError::ApiTokenLifetime { max_secs });
        }
        let owner = ctx.require_user(grant.principal()).await?.value;
        let held = role_held(&owner, &request.scope);
        if !held.is_some_and(|held| held.includes(request.role)) {
            return Err(IdentityError::ApiTokenRoleTooHigh {
                scope: request.scope,
                requested: request.role,
                held,
            });
        }
        let id = super::hex(&ctx.random_bytes(ID_BYTES)?);
        let secret = ctx.random_token(SECRET_BYTES)?;
        let now = ctx.now();
        let record = ApiTokenRecord {
            id: id.clone(),
            name,
            owner: owner.username.clone(),
            scope: request.scope,
            role: request.role,
            secret_sha256: ctx.sha256_hex(secret.expose_secret().as_bytes()),
            created_at: now,
            expires_at: now.saturating_add(request.expires_in_secs),
        };
        ctx.create_plain(API_TOKEN, &id, record.clone(), owner.username.as_str())
            .await?;
        tracing::info!(token = %id, owner = %owner.username, scope = %record.scope,
            role = %record.role, "API token created");
        Ok(CreatedApiToken {
            token: SecretText::new(format!("{PREFIX}{id}_{}", secret.expose_secret())),
            info: info(&record),
        })
    }

    /// Checks a presented token (from `Authorization: Bearer km_…`). Every failure is the same
    /// [`IdentityError::ApiTokenInvalid`].
    pub async fn verify(
        &self,
        presented: &SecretText,
    ) -> Result<AuthenticatedToken, IdentityError> {
        let ctx = &self.ctx;
        let invalid = || IdentityError::ApiTokenInvalid;
        let text = presented.expose_secret();
        let (id, secret) = text
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .ok_or_else(invalid)?;
        if id.len() != ID_BYTES * 2
            || !id.chars().all(|c| c.is_ascii_hexdigit())
            || secret.len() > 128
        {
            return Err(invalid());
        }
        let record = ctx
            .get_plain::<ApiTokenRecord>(API_TOKEN, id)
            .await?
            .ok_or_else(invalid)?
            .value;
        let digest = ctx.sha256_hex(secret.as_bytes());
        if !ctx.ct_eq(&digest, &record.secret_sha256) {
            return Err(invalid());
        }
        if ctx.now() >= record.expires_at {
            return Err(invalid());
        }
        let owner = match ctx.get_user(&record.owner).await? {
            Some(owner) if !owner.value.disabled => owner.value,
            _ => return Err(invalid()),
        };
        let held = role_held(&owner, &record.scope).ok_or_else(invalid)?;
        let role = record.role.min(held);
        let subject = PrincipalId::parse(&format!("token:{}", record.id))?;
        Ok(AuthenticatedToken {
            principal: Principal::api_token(
                subject,
                vec![RoleBinding {
                    scope: record.scope.clone(),
                    role,
                }],
            ),
            info: info(&record),
        })
    }

    /// The grant principal's own tokens (`manage_own_api_tokens`).
    pub async fn list_own(&self, grant: &Grant) -> Result<Vec<ApiTokenInfo>, IdentityError> {
        grant.require(Action::ManageOwnApiTokens, None)?;
        let owner = grant.principal().clone();
        Ok(self
            .ctx
            .all_tokens()
            .await?
            .into_iter()
            .filter(|token| token.owner == owner)
            .map(|token| info(&token))
            .collect())
    }

    /// Every token of every user (`list_all_users`: platform administrators).
    pub async fn list_all(&self, grant: &Grant) -> Result<Vec<ApiTokenInfo>, IdentityError> {
        grant.require(Action::ListAllUsers, None)?;
        Ok(self.ctx.all_tokens().await?.iter().map(info).collect())
    }

    /// Revokes one of one's own tokens (`manage_own_api_tokens`).
    pub async fn revoke_own(&self, grant: &Grant, id: &str) -> Result<(), IdentityError> {
        grant.require(Action::ManageOwnApiTokens, None)?;
        self.revoke(grant.principal(), id, Some(grant.principal()))
            .await
    }

    /// Revokes anybody's token (`update_user`: platform administrators).
    pub async fn revoke_any(&self, grant: &Grant, id: &str) -> Result<(), IdentityError> {
        grant.require(Action::UpdateUser, None)?;
        self.revoke(grant.principal(), id, None).await
    }

    async fn revoke(
        &self,
        actor: &PrincipalId,
        id: &str,
        owner: Option<&PrincipalId>,
    ) -> Result<(), IdentityError> {
        let not_found = || IdentityError::ApiTokenInvalid;
        if id.len() != ID_BYTES * 2 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let stored = self
            .ctx
            .get_plain::<ApiTokenRecord>(API_TOKEN, id)
            .await?
            .ok_or_else(not_found)?;
        if owner.is_some_and(|owner| *owner != stored.value.owner) {
            return Err(not_found());
        }
        match self
            .ctx
            .store()
            .delete(API_TOKEN, id, stored.revision)
            .await
        {
            Ok(()) | Err(StoreError::NotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        tracing::info!(token = %id, by = %actor, "API token revoked");
        Ok(())
    }
}

impl Ctx {
    async fn all_tokens(&self) -> Result<Vec<ApiTokenRecord>, IdentityError> {
        let mut tokens = Vec::new();
        for id in self.store().list_ids(API_TOKEN).await? {
            if let Some(token) = self.get_plain::<ApiTokenRecord>(API_TOKEN, &id).await? {
                tokens.push(token.value);
            }
        }
        Ok(tokens)
    }

    /// Deletes every token owned by `username` (when the user is deleted).
    pub(crate) async fn delete_tokens_of(
        &self,
        username: &PrincipalId,
    ) -> Result<(), IdentityError> {
        for id in self.store().list_ids(API_TOKEN).await? {
            if let Some(token) = self.get_plain::<ApiTokenRecord>(API_TOKEN, &id).await?
                && &token.value.owner == username
            {
                self.delete_quietly(API_TOKEN, &id, token.revision).await;
            }
        }
        Ok(())
    }
}

/// The role `user` holds on `scope`: on a tenant, the best of its tenant and `*` bindings; on `*`,
/// its platform role.
fn role_held(user: &UserRecord, scope: &TenantScope) -> Option<Role> {
    let principal = Principal::user(user.username.clone(), user.bindings.clone());
    match scope {
        TenantScope::Tenant(tenant) => principal.role_on(tenant),
        TenantScope::AllTenants => principal.platform_role(),
    }
}

fn info(record: &ApiTokenRecord) -> ApiTokenInfo {
    ApiTokenInfo {
        id: record.id.clone(),
        name: record.name.clone(),
        owner: record.owner.clone(),
        scope: record.scope.clone(),
        role: record.role,
        created_at: record.created_at,
        expires_at: record.expires_at,
    }
}
