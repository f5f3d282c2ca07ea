//! Own-account use cases: who am I, password, TOTP enrolment, recovery codes.

use km_domain::{Action, Principal};

use super::{App, AppError, Gate, RequestId};
use crate::identity::{
    ApiTokenInfo, Caller, IdentityError, SecretText, TotpSetup, UserAccount, ValidSession,
};

/// The caller as it sees itself.
#[derive(Debug, Clone)]
pub struct Me {
    /// The principal `authorize` decides on (subject, kind, bindings in force now).
    pub principal: Principal,
    /// The local account, for interactive users.
    pub account: Option<UserAccount>,
    /// The session, when signed in interactively (second-factor standing, expiries).
    pub session: Option<ValidSession>,
    /// The API token, when the caller is one.
    pub token: Option<ApiTokenInfo>,
}

impl App {
    /// The caller's own account, session or token (`read_own_account`). Reachable in every
    /// session state, so the console can show what is owed.
    pub async fn me(&self, caller: &Caller, rid: &RequestId) -> Result<Me, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Open, None, Action::ReadOwnAccount)
            .await?;
        let (account, session, token) = match caller {
            Caller::Session { session, .. } => {
                let account = self.inner.identity.users.own_account(&grant).await?;
                (Some(account), Some((**session).clone()), None)
            }
            Caller::ApiToken(token) => (None, None, Some(token.info.clone())),
        };
        Ok(Me {
            principal: caller.principal().clone(),
            account,
            session,
            token,
        })
    }

    /// Changes the caller's password (`change_own_password`); ends all their sessions, this one
    /// included. Allowed while a password change or TOTP enrolment is due.
    pub async fn change_own_password(
        &self,
        caller: &Caller,
        rid: &RequestId,
        current: &SecretText,
        new: &SecretText,
    ) -> Result<(), AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Onboarding,
                None,
                Action::ChangeOwnPassword,
            )
            .await?;
        let draft = Self::draft(
            &grant,
            rid,
            "change_own_password",
            Some(grant.principal().as_str()),
        );
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .users
                .change_own_password(&grant, current, new)
                .await?)
        })
        .await
    }

    /// Starts TOTP enrolment (`manage_own_totp`): QR code and seed, shown once.
    pub async fn begin_totp_enrolment(
        &self,
        caller: &Caller,
        rid: &RequestId,
    ) -> Result<TotpSetup, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Onboarding, None, Action::ManageOwnTotp)
            .await?;
        let draft = Self::draft(
            &grant,
            rid,
            "begin_totp_enrolment",
            Some(grant.principal().as_str()),
        );
        self.audited(draft, async {
            Ok(self.inner.identity.totp.begin_enrolment(&grant).await?)
        })
        .await
    }

    /// Confirms TOTP enrolment with a first code; returns the recovery codes (shown once). The
    /// caller's session counts as verified from now.
    pub async fn confirm_totp_enrolment(
        &self,
        caller: &Caller,
        rid: &RequestId,
        code: &SecretText,
    ) -> Result<Vec<SecretText>, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Onboarding, None, Action::ManageOwnTotp)
            .await?;
        let session_token = match caller {
            Caller::Session { token, .. } => Some(token),
            Caller::ApiToken(_) => None,
        };
        let draft = Self::draft(
            &grant,
            rid,
            "confirm_totp_enrolment",
            Some(grant.principal().as_str()),
        );
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .totp
                .confirm_enrolment(&grant, code, session_token)
                .await?)
        })
        .await
    }

    /// Removes the caller's TOTP enrolment (needs the current password).
    pub async fn remove_own_totp(
        &self,
        caller: &Caller,
        rid: &RequestId,
        password: &SecretText,
    ) -> Result<(), AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::ManageOwnTotp)
            .await?;
        let draft = Self::draft(
            &grant,
            rid,
            "remove_own_totp",
            Some(grant.principal().as_str()),
        );
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .totp
                .remove_own(&grant, password)
                .await?)
        })
        .await
    }

    /// Replaces the caller's recovery codes (needs the current password); returns the new ones.
    pub async fn regenerate_recovery_codes(
        &self,
        caller: &Caller,
        rid: &RequestId,
        password: &SecretText,
    ) -> Result<Vec<SecretText>, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Full, None, Action::ManageOwnTotp)
            .await?;
        let draft = Self::draft(
            &grant,
            rid,
            "regenerate_recovery_codes",
            Some(grant.principal().as_str()),
        );
        self.audited(draft, async {
            Ok(self
                .inner
                .identity
                .totp
                .regenerate_recovery_codes(&grant, password)
                .await?)
        })
        .await
    }

    /// How many unused recovery codes the caller has left.
    pub async fn recovery_codes_left(
        &self,
        caller: &Caller,
        rid: &RequestId,
    ) -> Result<usize, AppError> {
        let grant = self
            .permit(caller, rid, Gate::Open, None, Action::ManageOwnTotp)
            .await?;
        Ok(self
            .inner
            .identity
            .totp
            .recovery_codes_left(&grant)
            .await
            .map_err(|error| match error {
                IdentityError::UserNotFound(_) => IdentityError::SecondFactorNotEnrolled,
                other => other,
            })?)
    }
}
