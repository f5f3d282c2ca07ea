//! Sign-in use cases: first-run setup, password, second factor, re-verification, sign-out.

use km_domain::{EventDraft, Outcome};

use super::{ANONYMOUS_ACTOR, App, AppError, Gate, RequestId};
use crate::identity::{
    Caller, LoginOutcome, NewSession, SecondFactor, SecretText, UserAccount, ValidSession,
    parse_username,
};

/// Whether first-run setup still has to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupStatus {
    /// The first administrator exists; setup cannot run again.
    pub complete: bool,
}

/// The first administrator, created with the one-time setup token printed at start.
#[derive(Debug, Clone)]
pub struct CompleteSetup {
    /// The setup token from the server's output.
    pub setup_token: SecretText,
    /// Login name of the first administrator.
    pub username: String,
    /// Their password.
    pub password: SecretText,
    /// Optional full name.
    pub display_name: Option<String>,
}

/// An anonymous audit draft naming `target` only when it is a valid username (so a password
/// typed into the username field never reaches the log).
fn anonymous_draft(rid: &RequestId, action: &str, username: Option<&str>) -> EventDraft {
    let draft = EventDraft::new(ANONYMOUS_ACTOR, action, Outcome::Success, rid.as_str());
    match username.and_then(|name| parse_username(name).ok()) {
        Some(name) => draft.with_target(name.as_str()),
        None => draft,
    }
}

impl App {
    /// Whether setup is complete (the console shows the setup page until it is).
    pub async fn setup_status(&self) -> Result<SetupStatus, AppError> {
        Ok(SetupStatus {
            complete: self.inner.identity.setup.is_complete().await?,
        })
    }

    /// Creates the first administrator (admin on `*`). Anonymous, audited.
    pub async fn complete_setup(
        &self,
        rid: &RequestId,
        request: CompleteSetup,
    ) -> Result<UserAccount, AppError> {
        let draft = anonymous_draft(rid, "complete_setup", Some(&request.username));
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .setup
                .complete_setup(
                    &request.setup_token,
                    &request.username,
                    &request.password,
                    request.display_name.clone(),
                )
                .await?)
        })
        .await
    }

    /// The password step of signing in. Audited (actor `anonymous`, target the username).
    pub async fn login_password(
        &self,
        rid: &RequestId,
        username: &str,
        password: &SecretText,
    ) -> Result<LoginOutcome, AppError> {
        let draft = anonymous_draft(rid, "login_password", Some(username));
        self.audited(draft, async {
            let login = &self.inner.identity.login;
            if !self.inner.sso.config().await?.value.local_login
                && !login.is_local_platform_admin(username).await?
            {
                // Same answer whether or not the account exists.
                return Err(AppError::Forbidden {
                    reason: "local_login_disabled",
                    message: "sign-in with a password is turned off: use single sign-on".to_owned(),
                });
            }
            Ok(login.login_password(username, password).await?)
        })
        .await
    }

    /// The second-factor step (TOTP code or recovery code) of a pending sign-in. A TOTP code is
    /// accepted once, even when two requests carry it at the same moment. Audited.
    pub async fn login_second_factor(
        &self,
        rid: &RequestId,
        pending_token: &SecretText,
        factor: SecondFactor,
    ) -> Result<NewSession, AppError> {
        let method = match factor {
            SecondFactor::Totp(_) => "totp",
            SecondFactor::RecoveryCode(_) => "recovery_code",
        };
        let draft = anonymous_draft(rid, "login_second_factor", None).with_detail("method", method);
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .login
                .complete_second_factor(pending_token, factor)
                .await?)
        })
        .await
    }

    /// Abandons a pending sign-in. Not audited: nothing that exists changes for anybody.
    pub async fn cancel_login(&self, pending_token: &SecretText) -> Result<(), AppError> {
        Ok(self
            .inner
            .identity
            .login
            .cancel_pending(pending_token)
            .await?)
    }

    /// Proves the second factor again for the caller's session (re-verification). Audited.
    pub async fn reverify_second_factor(
        &self,
        caller: &Caller,
        rid: &RequestId,
        factor: SecondFactor,
    ) -> Result<ValidSession, AppError> {
        let Caller::Session { session, token } = caller else {
            return Err(AppError::invalid(
                "session_required",
                "only a signed-in session has a second factor to re-verify",
            ));
        };
        let draft = EventDraft::new(
            session.principal.subject.as_str(),
            "reverify_second_factor",
            Outcome::Success,
            rid.as_str(),
        );
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .sessions
                .reverify_second_factor(token, factor)
                .await?)
        })
        .await
    }

    /// Ends the caller's session. Audited. For API tokens there is nothing to end.
    pub async fn logout(&self, caller: &Caller, rid: &RequestId) -> Result<(), AppError> {
        self.gate(caller, Gate::Open)?;
        let Caller::Session { session, token } = caller else {
            return Err(AppError::invalid(
                "session_required",
                "API tokens do not sign in; revoke the token instead",
            ));
        };
        let draft = EventDraft::new(
            session.principal.subject.as_str(),
            "logout",
            Outcome::Success,
            rid.as_str(),
        );
        self.audited(draft, async {
            Ok(self.inner.identity.sessions.logout(token).await?)
        })
        .await
    }

    /// Ends every session of the caller's account, this one included. Audited.
    pub async fn sign_out_everywhere(
        &self,
        caller: &Caller,
        rid: &RequestId,
    ) -> Result<(), AppError> {
        self.gate(caller, Gate::Open)?;
        let Caller::Session { session, token } = caller else {
            return Err(AppError::invalid(
                "session_required",
                "API tokens do not sign in; revoke the token instead",
            ));
        };
        let draft = EventDraft::new(
            session.principal.subject.as_str(),
            "sign_out_everywhere",
            Outcome::Success,
            rid.as_str(),
        );
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .sessions
                .sign_out_everywhere(token)
                .await?)
        })
        .await
    }
}
