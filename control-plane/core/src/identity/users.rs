//! User administration. Every method takes a [`Grant`] from `km_domain::authorize` and checks with
//! `grant.require` that it is for exactly this action (and tenant), so no caller can skip the
//! authorization decision. Platform-wide actions must be authorized without a tenant
//! (`authorize(principal, None, action)`); tenant actions with the tenant they name.
//!
//! Every change of password, bindings, enabled state or second factor bumps the user's session
//! epoch, which ends all their sessions on every replica.

use km_domain::{Action, Grant, PrincipalId, Role, RoleBinding, TenantId, TenantScope};

use super::records::{CREDENTIAL, CredentialRecord, USER, UserRecord};
use super::{Ctx, IdentityError, SecretText, account_view, normalise_bindings, parse_username};
use crate::{Sealing, StoreError, Timestamp};

/// A user account as shown to administrators and to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAccount {
    /// Login name (lower-case).
    pub username: PrincipalId,
    /// Optional full name.
    pub display_name: Option<String>,
    /// Roles per tenant (`*` = platform operator).
    pub bindings: Vec<RoleBinding>,
    /// Disabled accounts cannot sign in and have no sessions.
    pub disabled: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last password change or reset.
    pub password_changed_at: Timestamp,
    /// Set by an administrator's reset: the user must choose a new password first.
    pub must_change_password: bool,
    /// Last complete sign-in.
    pub last_login_at: Option<Timestamp>,
    /// Soft-locked until then (only when in the future).
    pub locked_until: Option<Timestamp>,
    /// Consecutive failures so far.
    pub failed_attempts: u32,
    /// Whether TOTP is enrolled.
    pub totp_enrolled: bool,
    /// The identity provider this account signs in through (SSO accounts have no password or
    /// TOTP here).
    pub sso_provider: Option<String>,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name; case-insensitive, 1–64 of `a-z 0-9 . _ @ -`.
    pub username: String,
    /// Optional full name.
    pub display_name: Option<String>,
    /// Initial password (checked against the password rules).
    pub password: SecretText,
    /// Role on the tenant (or on `*` for [`UserService::create_platform_user`]).
    pub role: Role,
    /// Make the user choose a new password at first sign-in.
    pub must_change_password: bool,
}

/// User administration and own-account changes.
#[derive(Debug, Clone)]
pub struct UserService {
    pub(crate) ctx: Ctx,
}

impl UserService {
    /// Creates a local user with `role` on `tenant` (`create_user` on that tenant).
    pub async fn create_user(
        &self,
        grant: &Grant,
        tenant: &TenantId,
        new: NewUser,
    ) -> Result<UserAccount, IdentityError> {
        grant.require(Action::CreateUser, Some(tenant))?;
        let binding = RoleBinding::tenant(tenant.clone(), new.role);
        self.ctx
            .create_local_user(new, vec![binding], grant.principal().as_str())
            .await
    }

    /// Creates a local platform operator with `role` on `*` (`manage_platform_bindings`).
    pub async fn create_platform_user(
        &self,
        grant: &Grant,
        new: NewUser,
    ) -> Result<UserAccount, IdentityError> {
        grant.require(Action::ManagePlatformBindings, None)?;
        let binding = RoleBinding::all_tenants(new.role);
        self.ctx
            .create_local_user(new, vec![binding], grant.principal().as_str())
            .await
    }

    /// Users with a role on `tenant`, including platform operators (`list_users`).
    pub async fn list_users(
        &self,
        grant: &Grant,
        tenant: &TenantId,
    ) -> Result<Vec<UserAccount>, IdentityError> {
        grant.require(Action::ListUsers, Some(tenant))?;
        Ok(self
            .all()
            .await?
            .into_iter()
            .filter(|user| user.bindings.iter().any(|b| b.scope.covers(tenant)))
            .collect())
    }

    /// Every local user (`list_all_users`).
    pub async fn list_all_users(&self, grant: &Grant) -> Result<Vec<UserAccount>, IdentityError> {
        grant.require(Action::ListAllUsers, None)?;
        self.all().await
    }

    /// One user with a role on `tenant` (`read_user`); others are "not found".
    pub async fn get_user(
        &self,
        grant: &Grant,
        tenant: &TenantId,
        username: &str,
    ) -> Result<UserAccount, IdentityError> {
        grant.require(Action::ReadUser, Some(tenant))?;
        let username = parse_username(username)?;
        let user = self.ctx.require_user(&username).await?.value;
        if !user.bindings.iter().any(|b| b.scope.covers(tenant)) {
            return Err(IdentityError::UserNotFound(username.to_string()));
        }
        Ok(account_view(&user, self.ctx.now()))
    }

    /// Any local user, with or without bindings (`list_all_users`: platform administrators).
    pub async fn get_any_user(
        &self,
        grant: &Grant,
        username: &str,
    ) -> Result<UserAccount, IdentityError> {
        grant.require(Action::ListAllUsers, None)?;
        let username = parse_username(username)?;
        let user = self.ctx.require_user(&username).await?.value;
        Ok(account_view(&user, self.ctx.now()))
    }

    /// The grant's principal's own account (`read_own_account`).
    pub async fn own_account(&self, grant: &Grant) -> Result<UserAccount, IdentityError> {
        grant.require(Action::ReadOwnAccount, None)?;
        let user = self.ctx.require_user(grant.principal()).await?.value;
        Ok(account_view(&user, self.ctx.now()))
    }

    /// Changes one's own password (`change_own_password`); needs the current one (a wrong one
    /// counts towards the soft-lock). Ends all of the user's sessions, this one included: sign in
    /// again with the new password.
    pub async fn change_own_password(
        &self,
        grant: &Grant,
        current: &SecretText,
        new: &SecretText,
    ) -> Result<(), IdentityError> {
        grant.require(Action::ChangeOwnPassword, None)?;
        let username = grant.principal().clone();
        self.ctx.check_own_password(&username, current).await?;
        self.ctx.password_policy().check(new, username.as_str())?;
        self.ctx
            .set_password(&username, new, username.as_str(), false)
            .await
    }

    /// An administrator sets a user's password (`reset_user_password`), clears the soft-lock
    /// and ends the user's sessions. With `must_change`, the user must pick a new one at next
    /// sign-in.
    pub async fn reset_password(
        &self,
        grant: &Grant,
        username: &str,
        new: &SecretText,
        must_change: bool,
    ) -> Result<(), IdentityError> {
        grant.require(Action::ResetUserPassword, None)?;
        let username = parse_username(username)?;
        self.ctx.require_user(&username).await?;
        self.ctx.password_policy().check(new, username.as_str())?;
        self.ctx
            .set_password(&username, new, grant.principal().as_str(), must_change)
            .await
    }

    /// Lifts a soft-lock early (`update_user`).
    pub async fn unlock(&self, grant: &Grant, username: &str) -> Result<(), IdentityError> {
        grant.require(Action::UpdateUser, None)?;
        let username = parse_username(username)?;
        self.ctx
            .modify_user(&username, grant.principal().as_str(), |user| {
                user.locked_until = None;
                user.failed_attempts = 0;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Disables or re-enables an account (`update_user`). Disabling ends its sessions; the last
    /// platform administrator and one's own account cannot be disabled.
    pub async fn set_disabled(
        &self,
        grant: &Grant,
        username: &str,
        disabled: bool,
    ) -> Result<(), IdentityError> {
        grant.require(Action::UpdateUser, None)?;
        let username = parse_username(username)?;
        if disabled && &username == grant.principal() {
            return Err(IdentityError::NotOnSelf(
                "you cannot disable your own account",
            ));
        }
        let user = self.ctx.require_user(&username).await?.value;
        if disabled && user.platform_admin() {
            self.ensure_other_platform_admin(&username).await?;
        }
        self.ctx
            .modify_user(&username, grant.principal().as_str(), |user| {
                if disabled && !user.disabled {
                    Ctx::bump_epoch(user);
                }
                user.disabled = disabled;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Changes the display name (`update_user`).
    pub async fn set_display_name(
        &self,
        grant: &Grant,
        username: &str,
        display_name: Option<String>,
    ) -> Result<(), IdentityError> {
        grant.require(Action::UpdateUser, None)?;
        let display_name = display_name
            .map(|name| name.trim().to_owned())
            .filter(|n| !n.is_empty());
        if display_name
            .as_ref()
            .is_some_and(|name| name.chars().count() > 200)
        {
            return Err(IdentityError::InvalidName(
                "a display name has at most 200 characters",
            ));
        }
        let username = parse_username(username)?;
        self.ctx
            .modify_user(&username, grant.principal().as_str(), |user| {
                user.display_name = display_name.clone();
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Deletes an account with its credentials and API tokens (`delete_user`). Not one's own, not
    /// the last platform administrator. Its sessions die with the record.
    pub async fn delete_user(&self, grant: &Grant, username: &str) -> Result<(), IdentityError> {
        grant.require(Action::DeleteUser, None)?;
        let username = parse_username(username)?;
        if &username == grant.principal() {
            return Err(IdentityError::NotOnSelf(
                "you cannot delete your own account",
            ));
        }
        let user = self.ctx.require_user(&username).await?;
        if user.value.platform_admin() {
            self.ensure_other_platform_admin(&username).await?;
        }
        self.ctx.delete_tokens_of(&username).await?;
        if let Some(credential) = self
            .ctx
            .get_plain::<CredentialRecord>(CREDENTIAL, username.as_str())
            .await?
        {
            self.delete_record(CREDENTIAL, &username, credential.revision)
                .await?;
        }
        self.delete_record(USER, &username, user.revision).await?;
        tracing::info!(user = %username, by = %grant.principal(), "user deleted");
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) the user's role on `tenant` (`manage_role_bindings` on
    /// that tenant). Ends the user's sessions so the new role applies to a fresh sign-in.
    pub async fn set_tenant_role(
        &self,
        grant: &Grant,
        tenant: &TenantId,
        username: &str,
        role: Option<Role>,
    ) -> Result<UserAccount, IdentityError> {
        grant.require(Action::ManageRoleBindings, Some(tenant))?;
        let scope = TenantScope::Tenant(tenant.clone());
        self.set_binding(grant, username, scope, role).await
    }

    /// Sets or removes the user's role on `*` (`manage_platform_bindings`). The last platform
    /// administrator cannot be demoted.
    pub async fn set_platform_role(
        &self,
        grant: &Grant,
        username: &str,
        role: Option<Role>,
    ) -> Result<UserAccount, IdentityError> {
        grant.require(Action::ManagePlatformBindings, None)?;
        let target = parse_username(username)?;
        let user = self.ctx.require_user(&target).await?.value;
        if user.platform_admin() && role != Some(Role::Admin) {
            self.ensure_other_platform_admin(&target).await?;
        }
        self.set_binding(grant, username, TenantScope::AllTenants, role)
            .await
    }

    async fn set_binding(
        &self,
        grant: &Grant,
        username: &str,
        scope: TenantScope,
        role: Option<Role>,
    ) -> Result<UserAccount, IdentityError> {
        let username = parse_username(username)?;
        let user = self
            .ctx
            .modify_user(&username, grant.principal().as_str(), |user| {
                let mut bindings = user.bindings.clone();
                bindings.retain(|binding| binding.scope != scope);
                if let Some(role) = role {
                    bindings.push(RoleBinding {
                        scope: scope.clone(),
                        role,
                    });
                }
                let bindings = normalise_bindings(bindings);
                if bindings != user.bindings {
                    user.bindings = bindings;
                    Ctx::bump_epoch(user);
                }
                Ok(())
            })
            .await?;
        tracing::info!(user = %username, %scope, role = role.map_or("none", Role::as_str),
            by = %grant.principal(), "role binding changed");
        Ok(account_view(&user, self.ctx.now()))
    }

    async fn ensure_other_platform_admin(
        &self,
        username: &PrincipalId,
    ) -> Result<(), IdentityError> {
        let admins = self.ctx.platform_admins().await?;
        if admins.iter().any(|admin| admin != username) {
            Ok(())
        } else {
            Err(IdentityError::LastPlatformAdmin)
        }
    }

    async fn all(&self) -> Result<Vec<UserAccount>, IdentityError> {
        let now = self.ctx.now();
        let mut users = Vec::new();
        for id in self.ctx.store().list_ids(USER).await? {
            if let Some(user) = self.ctx.get_plain::<UserRecord>(USER, &id).await? {
                users.push(account_view(&user.value, now));
            }
        }
        Ok(users)
    }

    async fn delete_record(
        &self,
        kind: &str,
        username: &PrincipalId,
        revision: u64,
    ) -> Result<(), IdentityError> {
        match self
            .ctx
            .store()
            .delete(kind, username.as_str(), revision)
            .await
        {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

impl Ctx {
    /// Creates the user record (atomic: exactly one creator of a name wins), then its credential.
    /// A credential left behind by a crashed creation is overwritten; a user record without a
    /// credential (crash in between) cannot sign in until an administrator resets the password.
    pub(crate) async fn create_local_user(
        &self,
        new: NewUser,
        bindings: Vec<RoleBinding>,
        actor: &str,
    ) -> Result<UserAccount, IdentityError> {
        let username = parse_username(&new.username)?;
        self.password_policy()
            .check(&new.password, username.as_str())?;
        let display_name = new
            .display_name
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty());
        let hash = self.ports().hasher.hash(&new.password).await?;
        let now = self.now();
        let record = UserRecord {
            username: username.clone(),
            display_name,
            bindings: normalise_bindings(bindings),
            session_epoch: 1,
            disabled: false,
            created_at: now,
            created_by: actor.to_owned(),
            password_changed_at: now,
            must_change_password: new.must_change_password,
            failed_attempts: 0,
            locked_until: None,
            last_login_at: None,
            totp_enrolled: false,
            sso: None,
        };
        match self
            .store()
            .create(
                USER,
                username.as_str(),
                record.clone(),
                actor,
                Sealing::Plain,
            )
            .await
        {
            Ok(_) => {}
            Err(StoreError::AlreadyExists { .. }) => {
                return Err(IdentityError::UserExists(username.to_string()));
            }
            Err(error) => return Err(error.into()),
        }
        let credential = CredentialRecord {
            password_hash: hash,
            totp: None,
            pending_totp: None,
            recovery_codes: Vec::new(),
        };
        if let Err(error) = self
            .modify_credential(&username, actor, |_| Ok(credential.clone()))
            .await
        {
            if let Ok(Some(user)) = self.get_user(&username).await {
                self.delete_quietly(USER, username.as_str(), user.revision)
                    .await;
            }
            return Err(error);
        }
        tracing::info!(user = %username, by = actor, "user created");
        Ok(account_view(&record, now))
    }

    /// Stores a new password hash and ends all sessions (epoch bump); clears the soft-lock.
    pub(crate) async fn set_password(
        &self,
        username: &PrincipalId,
        password: &SecretText,
        actor: &str,
        must_change: bool,
    ) -> Result<(), IdentityError> {
        let hash = self.ports().hasher.hash(password).await?;
        self.modify_credential(username, actor, |current| {
            Ok(match current {
                Some(existing) => {
                    let mut credential = existing.value;
                    credential.password_hash = hash.clone();
                    credential
                }
                None => CredentialRecord {
                    password_hash: hash.clone(),
                    totp: None,
                    pending_totp: None,
                    recovery_codes: Vec::new(),
                },
            })
        })
        .await?;
        let now = self.now();
        self.modify_user(username, actor, |user| {
            user.password_changed_at = now;
            user.must_change_password = must_change;
            user.failed_attempts = 0;
            user.locked_until = None;
            Ctx::bump_epoch(user);
            Ok(())
        })
        .await?;
        tracing::info!(user = %username, by = actor, "password changed; sessions ended");
        Ok(())
    }
}
