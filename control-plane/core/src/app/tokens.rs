//! API tokens: one's own (create, list, revoke) and, for platform administrators, everybody's.

use km_domain::Action;

use super::page::paginate;
use super::{App, AppError, Gate, Page, PageRequest, RequestId};
use crate::identity::{ApiTokenInfo, Caller, CreatedApiToken, IdentityError, NewApiToken};

fn by_id(token: &ApiTokenInfo) -> String {
    token.id.clone()
}

/// `revoke` answers an unknown or foreign token id with `ApiTokenInvalid`; to the caller of a
/// revocation that means "no such token", not "your credential is bad".
fn token_not_found(error: IdentityError) -> AppError {
    match error {
        IdentityError::ApiTokenInvalid => AppError::NotFound { what: "api_token" },
        other => other.into(),
    }
}

impl App {
    /// The caller's own tokens, by id (`manage_own_api_tokens`).
    pub async fn list_own_api_tokens(
        &self,
        caller: &Caller,
        rid: &RequestId,
        page: &PageRequest,
    ) -> Result<Page<ApiTokenInfo>, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::ManageOwnApiTokens)
            .await?;
        page.limit()?;
        let tokens = self.inner.identity.api_tokens.list_own(&grant).await?;
        paginate(tokens, by_id, page)
    }

    /// Creates a token for the caller (interactive users only; at most the caller's role on the
    /// scope). The secret is in the result, shown once.
    pub async fn create_api_token(
        &self,
        caller: &Caller,
        rid: &RequestId,
        request: NewApiToken,
    ) -> Result<CreatedApiToken, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::ManageOwnApiTokens)
            .await?;
        let draft = Self::draft(&grant, rid, "create_api_token", None)
            .with_detail("scope", request.scope.to_string())
            .with_detail("role", request.role.as_str());
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .api_tokens
                .create(&grant, request)
                .await?)
        })
        .await
    }

    /// Revokes one of the caller's tokens.
    pub async fn revoke_own_api_token(
        &self,
        caller: &Caller,
        rid: &RequestId,
        id: &str,
    ) -> Result<(), AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::ManageOwnApiTokens)
            .await?;
        let draft = Self::draft(&grant, rid, "revoke_own_api_token", Some(&token_target(id)));
        self.audited(draft, async {
            self.inner
                .identity
                .api_tokens
                .revoke_own(&grant, id)
                .await
                .map_err(token_not_found)
        })
        .await
    }

    /// Every token of every user, by id (`list_all_users`).
    pub async fn list_all_api_tokens(
        &self,
        caller: &Caller,
        rid: &RequestId,
        page: &PageRequest,
    ) -> Result<Page<ApiTokenInfo>, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::ListAllUsers)
            .await?;
        page.limit()?;
        let tokens = self.inner.identity.api_tokens.list_all(&grant).await?;
        paginate(tokens, by_id, page)
    }

    /// Revokes anybody's token (`update_user`).
    pub async fn revoke_any_api_token(
        &self,
        caller: &Caller,
        rid: &RequestId,
        id: &str,
    ) -> Result<(), AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::UpdateUser)
            .await?;
        let draft = Self::draft(&grant, rid, "revoke_api_token", Some(&token_target(id)));
        self.audited(draft, async {
            self.inner
                .identity
                .api_tokens
                .revoke_any(&grant, id)
                .await
                .map_err(token_not_found)
        })
        .await
    }
}

/// A token id for the audit target: only a plausible id (hex), never arbitrary path text.
fn token_target(id: &str) -> String {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        id.to_owned()
    } else {
        "invalid-id".to_owned()
    }
}
