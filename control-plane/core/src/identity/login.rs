//! Signing in: password, then (when enrolled) a second factor, then a session.
//!
//! Soft-lock: every failed step — wrong password, wrong or replayed TOTP code, wrong recovery
//! code — counts in the user record; at `lockout_threshold` consecutive failures the account is
//! locked for `lockout_secs` and sign-in is refused without checking anything, with a message
//! saying when to retry. Only a *complete* sign-in resets the counter: a correct password alone
//! does not, or the password holder could guess TOTP codes forever.
//!
//! Unknown usernames cost the same bcrypt time as wrong passwords and give the same message.

use km_domain::PrincipalId;

use super::records::{AuthMethod, LOGIN, PendingLoginRecord};
use super::sessions::NewSession;
use super::{Ctx, IdentityError, SecretText, parse_username};
use crate::{StoreError, Timestamp};

/// Random bytes of a pending sign-in token.
const PENDING_TOKEN_BYTES: usize = 32;

/// A second factor as typed by the user.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    /// A 6-digit code from the authenticator app (spaces allowed).
    Totp(SecretText),
    /// One of the recovery codes (case and dashes do not matter).
    RecoveryCode(SecretText),
}

/// The password was right and a second factor is needed. Keep `token` in a short-lived HttpOnly
/// cookie (or hidden field) and send it back with the code.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    /// Names this pending sign-in; not a session.
    pub token: SecretText,
    /// Who is signing in.
    pub username: PrincipalId,
    /// The code must come before this time.
    pub expires_at: Timestamp,
}

/// Result of the password step.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// Signed in (no second factor enrolled).
    SignedIn(NewSession),
    /// Ask for the second factor, then call [`LoginService::complete_second_factor`].
    SecondFactorRequired(PendingLogin),
}

/// Sign-in with local credentials.
#[derive(Debug, Clone)]
pub struct LoginService {
    pub(crate) ctx: Ctx,
}

impl LoginService {
    /// The password step.
    pub async fn login_password(
        &self,
        username: &str,
        password: &SecretText,
    ) -> Result<LoginOutcome, IdentityError> {
        let ctx = &self.ctx;
        let Ok(username) = parse_username(username) else {
            ctx.burn_password_check(password).await;
            return Err(IdentityError::InvalidCredentials);
        };
        let Some(user) = ctx.get_user(&username).await? else {
            ctx.burn_password_check(password).await;
            return Err(IdentityError::InvalidCredentials);
        };
        let user = user.value;
        let now = ctx.now();
        if let Some(until) = user.locked_at(now) {
            return Err(locked(until, now));
        }
        let Some(credential) = ctx.get_credential(&username).await? else {
            ctx.burn_password_check(password).await;
            return Err(IdentityError::InvalidCredentials);
        };
        if !ctx
            .ports()
            .hasher
            .verify(password, &credential.password_hash)
            .await?
        {
            tracing::info!(user = %username, "sign-in refused: wrong password");
            return Err(ctx
                .record_failure(&username, IdentityError::InvalidCredentials)
                .await);
        }
        if user.disabled {
            return Err(IdentityError::AccountDisabled);
        }
        if credential.totp.is_some() {
            let token = ctx.random_token(PENDING_TOKEN_BYTES)?;
            let id = ctx
                .token_digest(&token)
                .ok_or_else(|| IdentityError::Inconsistent("pending token".to_owned()))?;
            let expires_at = now.saturating_add(ctx.config().pending_login_secs);
            let record = PendingLoginRecord {
                user: username.clone(),
                epoch: user.session_epoch,
                created_at: now,
                expires_at,
            };
            ctx.create_plain(LOGIN, &id, record, username.as_str())
                .await?;
            return Ok(LoginOutcome::SecondFactorRequired(PendingLogin {
                token,
                username,
                expires_at,
            }));
        }
        let user = ctx.finish_sign_in(&username).await?;
        Ok(LoginOutcome::SignedIn(
            ctx.create_session(&user, AuthMethod::Password, None)
                .await?,
        ))
    }

    /// The second-factor step: a TOTP code (accepted once, even when two requests carry it at the
    /// same moment) or a recovery code (consumed). Returns the session.
    pub async fn complete_second_factor(
        &self,
        pending: &SecretText,
        factor: SecondFactor,
    ) -> Result<NewSession, IdentityError> {
        let ctx = &self.ctx;
        let id = ctx
            .token_digest(pending)
            .ok_or(IdentityError::LoginExpired)?;
        let Some(stored) = ctx.get_plain::<PendingLoginRecord>(LOGIN, &id).await? else {
            return Err(IdentityError::LoginExpired);
        };
        let now = ctx.now();
        if now >= stored.value.expires_at {
            ctx.delete_quietly(LOGIN, &id, stored.revision).await;
            return Err(IdentityError::LoginExpired);
        }
        let username = stored.value.user.clone();
        let user = match ctx.get_user(&username).await? {
            Some(user) if user.value.session_epoch == stored.value.epoch => user.value,
            _ => return Err(IdentityError::LoginExpired),
        };
        if let Some(until) = user.locked_at(now) {
            return Err(locked(until, now));
        }
        if user.disabled {
            return Err(IdentityError::AccountDisabled);
        }
        let method = ctx.consume_second_factor(&username, factor).await?;
        // The pending sign-in is single-use: whoever deletes it gets the session.
        match ctx.store().delete(LOGIN, &id, stored.revision).await {
            Ok(()) => {}
            Err(StoreError::NotFound { .. } | StoreError::Conflict { .. }) => {
                return Err(IdentityError::LoginExpired);
            }
            Err(error) => return Err(error.into()),
        }
        let user = ctx.finish_sign_in(&username).await?;
        ctx.create_session(&user, method, Some(now)).await
    }

    /// Abandons a pending sign-in (the "cancel" link on the code page).
    pub async fn cancel_pending(&self, pending: &SecretText) -> Result<(), IdentityError> {
        if let Some(id) = self.ctx.token_digest(pending)
            && let Some(stored) = self.ctx.get_plain::<PendingLoginRecord>(LOGIN, &id).await?
        {
            self.ctx.delete_quietly(LOGIN, &id, stored.revision).await;
        }
        Ok(())
    }
}

fn locked(until: Timestamp, now: Timestamp) -> IdentityError {
    IdentityError::Locked {
        until,
        retry_after_secs: until.saturating_sub(now),
    }
}

/// Normalises a recovery code as typed: lower-case, no spaces or dashes, and the letters that
/// look like digits read as those digits (Crockford base32).
pub(crate) fn normalise_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'i' | 'l' => '1',
            'o' => '0',
            other => other,
        })
        .collect()
}

impl Ctx {
    /// The complete sign-in: under the user's lock, re-checks lock and disabled state (a
    /// concurrent failure may have locked it since the password check), resets the failure
    /// counter and records the sign-in time.
    pub(crate) async fn finish_sign_in(
        &self,
        username: &PrincipalId,
    ) -> Result<super::records::UserRecord, IdentityError> {
        let now = self.now();
        self.modify_user(username, username.as_str(), |user| {
            if let Some(until) = user.locked_at(now) {
                return Err(locked(until, now));
            }
            if user.disabled {
                return Err(IdentityError::AccountDisabled);
            }
            user.failed_attempts = 0;
            user.locked_until = None;
            user.last_login_at = Some(now);
            Ok(())
        })
        .await
    }

    /// Checks and consumes a second factor for `username`. A TOTP code is accepted only if its
    /// time step is newer than the last accepted one; the check and the update happen in one
    /// read-modify-write under the credential's lock, so of two concurrent requests with the same
    /// code exactly one succeeds. Failures count towards the soft-lock.
    pub(crate) async fn consume_second_factor(
        &self,
        username: &PrincipalId,
        factor: SecondFactor,
    ) -> Result<AuthMethod, IdentityError> {
        let now = self.now();
        let totp = self.ports().totp.clone();
        let result = match &factor {
            SecondFactor::Totp(code) => {
                let code = code.expose_secret().replace(' ', "");
                self.modify_credential(username, username.as_str(), |current| {
                    let mut credential =
                        current.ok_or(IdentityError::SecondFactorNotEnrolled)?.value;
                    let enrolment = credential
                        .totp
                        .as_mut()
                        .ok_or(IdentityError::SecondFactorNotEnrolled)?;
                    match totp.verify(&enrolment.secret, &code, now) {
                        Some(step) if step > enrolment.last_step => {
                            enrolment.last_step = step;
                            Ok(credential)
                        }
                        _ => Err(IdentityError::SecondFactorInvalid),
                    }
                })
                .await
                .map(|_| AuthMethod::PasswordTotp)
            }
            SecondFactor::RecoveryCode(code) => {
                let digest =
                    self.sha256_hex(normalise_recovery_code(code.expose_secret()).as_bytes());
                self.modify_credential(username, username.as_str(), |current| {
                    let mut credential =
                        current.ok_or(IdentityError::SecondFactorNotEnrolled)?.value;
                    if credential.totp.is_none() {
                        return Err(IdentityError::SecondFactorNotEnrolled);
                    }
                    // Compare against every code so timing does not reveal which one matched.
                    let mut matched = None;
                    for (index, stored) in credential.recovery_codes.iter().enumerate() {
                        if self.ct_eq(&stored.sha256, &digest) && stored.used_at.is_none() {
                            matched = Some(index);
                        }
                    }
                    let index = matched.ok_or(IdentityError::SecondFactorInvalid)?;
                    if let Some(stored) = credential.recovery_codes.get_mut(index) {
                        stored.used_at = Some(now);
                    }
                    Ok(credential)
                })
                .await
                .map(|_| AuthMethod::PasswordRecoveryCode)
            }
        };
        match result {
            Err(IdentityError::SecondFactorInvalid) => {
                tracing::info!(user = %username, "second factor refused");
                Err(self
                    .record_failure(username, IdentityError::SecondFactorInvalid)
                    .await)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalise_recovery_code;

    #[test]
    fn recovery_codes_forgive_case_dashes_spaces_and_lookalikes() {
        assert_eq!(normalise_recovery_code("AB1CD-EF0GH"), "ab1cdef0gh");
        assert_eq!(normalise_recovery_code(" ab1cd efOgh "), "ab1cdef0gh");
        assert_eq!(normalise_recovery_code("IL-o0"), "1100");
    }
}
