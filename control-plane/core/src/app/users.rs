//! User administration: per tenant (list, read, create, role) and platform-wide (every account,
//! display name, disable, unlock, resets, delete, platform role).

use km_domain::{Action, Role, TenantId, authorize};

use super::page::paginate;
use super::{App, AppError, Gate, Page, PageRequest, RequestId};
use crate::identity::{Caller, NewUser, SecretText, UserAccount};

/// A change to an account; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    /// `Some(None)` clears the display name.
    pub display_name: Option<Option<String>>,
    /// Disable (ends the user's sessions) or re-enable.
    pub disabled: Option<bool>,
}

fn by_username(user: &UserAccount) -> String {
    user.username.as_str().to_owned()
}

impl App {
    /// Users with a role on `tenant` (including platform operators), by username (`list_users`).
    pub async fn list_users(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<UserAccount>, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, Some(tenant), Action::ListUsers)
            .await?;
        page.limit()?;
        let users = self.inner.identity.users.list_users(&grant, tenant).await?;
        paginate(users, by_username, page)
    }

    /// One user with a role on `tenant` (`read_user`); others are "not found".
    pub async fn get_user(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        username: &str,
    ) -> Result<UserAccount, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, Some(tenant), Action::ReadUser)
            .await?;
        Ok(self
            .inner
            .identity
            .users
            .get_user(&grant, tenant, username)
            .await?)
    }

    /// Creates a local user with a role on `tenant` (`create_user`).
    pub async fn create_user(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        new: NewUser,
    ) -> Result<UserAccount, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, Some(tenant), Action::CreateUser)
            .await?;
        let target = new.username.trim().to_lowercase();
        let draft = Self::draft(&grant, rid, "create_user", Some(&target))
            .with_detail("role", new.role.as_str());
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .users
                .create_user(&grant, tenant, new)
                .await?)
        })
        .await
    }

    /// Sets (`Some`) or removes (`None`) a user's role on `tenant` (`manage_role_bindings`);
    /// ends the user's sessions.
    pub async fn set_tenant_role(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        username: &str,
        role: Option<Role>,
    ) -> Result<UserAccount, AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                Some(tenant),
                Action::ManageRoleBindings,
            )
            .await?;
        let draft = Self::draft(&grant, rid, "set_tenant_role", Some(username))
            .with_detail("role", role.map_or("none", Role::as_str));
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .users
                .set_tenant_role(&grant, tenant, username, role)
                .await?)
        })
        .await
    }

    /// Every local account, by username (`list_all_users`).
    pub async fn list_all_users(
        &self,
        caller: &Caller,
        rid: &RequestId,
        page: &PageRequest,
    ) -> Result<Page<UserAccount>, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::ListAllUsers)
            .await?;
        page.limit()?;
        let users = self.inner.identity.users.list_all_users(&grant).await?;
        paginate(users, by_username, page)
    }

    /// Any account (`list_all_users`).
    pub async fn get_any_user(
        &self,
        caller: &Caller,
        rid: &RequestId,
        username: &str,
    ) -> Result<UserAccount, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::ListAllUsers)
            .await?;
        Ok(self
            .inner
            .identity
            .users
            .get_any_user(&grant, username)
            .await?)
    }

    /// Creates a local platform operator with `role` on `*` (`manage_platform_bindings`).
    pub async fn create_platform_user(
        &self,
        caller: &Caller,
        rid: &RequestId,
        new: NewUser,
    ) -> Result<UserAccount, AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                None,
                Action::ManagePlatformBindings,
            )
            .await?;
        let target = new.username.trim().to_lowercase();
        let draft = Self::draft(&grant, rid, "create_platform_user", Some(&target))
            .with_detail("role", new.role.as_str());
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .users
                .create_platform_user(&grant, new)
                .await?)
        })
        .await
    }

    /// Changes display name and/or enabled state (`update_user`, platform-wide). Returns the
    /// account as it is afterwards.
    pub async fn update_user(
        &self,
        caller: &Caller,
        rid: &RequestId,
        username: &str,
        update: UserUpdate,
    ) -> Result<UserAccount, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::UpdateUser)
            .await?;
        let mut draft = Self::draft(&grant, rid, "update_user", Some(username));
        if let Some(disabled) = update.disabled {
            draft = draft.with_detail("disabled", disabled.to_string());
        }
        if update.display_name.is_some() {
            draft = draft.with_detail("display_name", "changed");
        }
        let users = &self.inner.identity.users;
        self.audited(draft, async {
            if let Some(display_name) = update.display_name.clone() {
                users
                    .set_display_name(&grant, username, display_name)
                    .await?;
            }
            if let Some(disabled) = update.disabled {
                users.set_disabled(&grant, username, disabled).await?;
            }
            Ok(())
        })
        .await?;
        // Same requirement (platform admin) as `update_user`, so this cannot be refused.
        let read = authorize(caller.principal(), None, Action::ListAllUsers)
            .map_err(|denied| AppError::from_denied(&denied))?;
        Ok(users.get_any_user(&read, username).await?)
    }

    /// Lifts a soft-lock early (`update_user`).
    pub async fn unlock_user(
        &self,
        caller: &Caller,
        rid: &RequestId,
        username: &str,
    ) -> Result<(), AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::UpdateUser)
            .await?;
        let draft = Self::draft(&grant, rid, "unlock_user", Some(username));
        self.audited(draft, async {
            Ok(self.inner.identity.users.unlock(&grant, username).await?)
        })
        .await
    }

    /// Sets a user's password (`reset_user_password`); ends their sessions, clears the lock.
    pub async fn reset_user_password(
        &self,
        caller: &Caller,
        rid: &RequestId,
        username: &str,
        new: &SecretText,
        must_change: bool,
    ) -> Result<(), AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::ResetUserPassword)
            .await?;
        let draft = Self::draft(&grant, rid, "reset_user_password", Some(username))
            .with_detail("must_change", must_change.to_string());
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .users
                .reset_password(&grant, username, new, must_change)
                .await?)
        })
        .await
    }

    /// Removes a user's second factor (lost phone and codes; `reset_user_password`).
    pub async fn reset_user_second_factor(
        &self,
        caller: &Caller,
        rid: &RequestId,
        username: &str,
    ) -> Result<(), AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::ResetUserPassword)
            .await?;
        let draft = Self::draft(&grant, rid, "reset_user_second_factor", Some(username));
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .totp
                .reset_for_user(&grant, username)
                .await?)
        })
        .await
    }

    /// Deletes an account with its credentials and tokens (`delete_user`).
    pub async fn delete_user(
        &self,
        caller: &Caller,
        rid: &RequestId,
        username: &str,
    ) -> Result<(), AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::DeleteUser)
            .await?;
        let draft = Self::draft(&grant, rid, "delete_user", Some(username));
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .users
                .delete_user(&grant, username)
                .await?)
        })
        .await
    }

    /// Sets or removes a user's role on `*` (`manage_platform_bindings`).
    pub async fn set_platform_role(
        &self,
        caller: &Caller,
        rid: &RequestId,
        username: &str,
        role: Option<Role>,
    ) -> Result<UserAccount, AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                None,
                Action::ManagePlatformBindings,
            )
            .await?;
        let draft = Self::draft(&grant, rid, "set_platform_role", Some(username))
            .with_detail("role", role.map_or("none", Role::as_str));
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .users
                .set_platform_role(&grant, username, role)
                .await?)
        })
        .await
    }
}
