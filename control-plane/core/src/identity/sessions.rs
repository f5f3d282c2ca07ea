//! Browser sessions. The cookie carries 256 random bits; only their SHA-256 names the record
//! (`kms.session.<hex>`), so a copy of the store does not yield usable cookies. Any replica can
//! validate any session; revocation works by deleting the record (logout) or by bumping the user's
//! session epoch (password change, role change, reset, "sign out everywhere").
//!
//! Replicas read through the store's cache, so a revocation reaches other replicas within the
//! cache TTL (2 s by default).

use km_domain::{Principal, PrincipalId};

use super::login::SecondFactor;
use super::records::{AuthMethod, LOGIN, PendingLoginRecord, SESSION, SessionRecord, UserRecord};
use super::{Ctx, IdentityError, SecondFactorPolicy, SecretText, SessionEnd};
use crate::settings::EffectiveSettings;
use crate::{Sealing, Timestamp, Versioned};

/// Random bytes in a session cookie.
const SESSION_TOKEN_BYTES: usize = 32;
/// Longest cookie value considered at all (a real one has 43 characters).
const MAX_TOKEN_CHARS: usize = 128;
/// Domain separation of the CSRF derivation.
const CSRF_CONTEXT: &[u8] = b"keymanager/csrf/v1";

/// Where a session stands with the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactorState {
    /// No second factor enrolled and none required.
    NotEnrolled,
    /// The deployment requires TOTP and the user has none yet: allow only the enrolment pages.
    EnrolmentRequired,
    /// Proven at `at`, within the re-verification period.
    Verified {
        /// When.
        at: Timestamp,
    },
    /// Enrolled, but not proven within the re-verification period (or never in this session):
    /// ask for a code before anything else.
    ReverificationDue {
        /// Last proof in this session, if any.
        last_verified_at: Option<Timestamp>,
    },
}

impl SecondFactorState {
    /// Whether the session may be used for ordinary work without asking for a code first.
    pub fn satisfied(self) -> bool {
        matches!(self, Self::NotEnrolled | Self::Verified { .. })
    }
}

/// A session just created: the cookie value (set it HttpOnly, Secure, SameSite=Strict) and what
/// the page needs to know.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie value; shown to the browser only.
    pub token: SecretText,
    /// CSRF token to embed in forms of this session (also derivable later with
    /// [`SessionService::csrf_token`]).
    pub csrf_token: String,
    /// Who.
    pub username: PrincipalId,
    /// End of the absolute lifetime (cookie expiry).
    pub absolute_expires_at: Timestamp,
    /// Second-factor standing.
    pub second_factor: SecondFactorState,
    /// The password was set by an administrator and must be changed first.
    pub must_change_password: bool,
}

/// A session that passed validation.
#[derive(Debug, Clone)]
pub struct ValidSession {
    /// The user and the bindings in force now (read from the user record on every validation, so
    /// role changes apply at once).
    pub principal: Principal,
    /// A non-secret handle (prefix of the stored digest) for logs and "your sessions" lists.
    pub handle: String,
    /// How the session was established.
    pub method: AuthMethod,
    /// Sign-in time.
    pub created_at: Timestamp,
    /// Last request seen (to within the touch interval).
    pub last_seen_at: Timestamp,
    /// The session ends at this time unless a request comes first.
    pub idle_expires_at: Timestamp,
    /// The session ends at this time in any case.
    pub absolute_expires_at: Timestamp,
    /// Second-factor standing.
    pub second_factor: SecondFactorState,
    /// The user must change the password before anything else.
    pub must_change_password: bool,
}

/// Validates, refreshes and ends sessions.
#[derive(Debug, Clone)]
pub struct SessionService {
    pub(crate) ctx: Ctx,
}

impl Ctx {
    pub(crate) fn token_digest(&self, token: &SecretText) -> Option<String> {
        let text = token.expose_secret();
        (!text.is_empty() && text.len() <= MAX_TOKEN_CHARS)
            .then(|| self.sha256_hex(text.as_bytes()))
    }

    pub(crate) fn csrf_for(&self, token: &SecretText) -> String {
        use base64::Engine as _;
        let mac = self
            .ports()
            .crypto
            .hmac_sha256(token.expose_secret().as_bytes(), CSRF_CONTEXT);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
    }

    pub(crate) fn second_factor_state(
        effective: &EffectiveSettings,
        user: &UserRecord,
        verified_at: Option<Timestamp>,
        now: Timestamp,
    ) -> SecondFactorState {
        if user.sso.is_some() {
            // The identity provider proved the second factor (or its policy waived it) when it
            // issued the sign-in; there is no TOTP here to re-verify.
            return SecondFactorState::Verified {
                at: verified_at.unwrap_or(now),
            };
        }
        if user.totp_enrolled {
            match verified_at {
                Some(at) if now < at.saturating_add(effective.reverify_secs) => {
                    SecondFactorState::Verified { at }
                }
                last => SecondFactorState::ReverificationDue {
                    last_verified_at: last,
                },
            }
        } else if effective.second_factor == SecondFactorPolicy::Mandatory {
            SecondFactorState::EnrolmentRequired
        } else {
            SecondFactorState::NotEnrolled
        }
    }

    /// Creates a session for `user` (whose record was just read or written).
    pub(crate) async fn create_session(
        &self,
        user: &UserRecord,
        method: AuthMethod,
        second_factor_at: Option<Timestamp>,
    ) -> Result<NewSession, IdentityError> {
        let now = self.now();
        let effective = self.effective().await?;
        let token = self.random_token(SESSION_TOKEN_BYTES)?;
        let id = self
            .token_digest(&token)
            .ok_or_else(|| IdentityError::Inconsistent("session token".to_owned()))?;
        let absolute_expires_at = now.saturating_add(effective.session_absolute_secs);
        let record = SessionRecord {
            user: user.username.clone(),
            epoch: user.session_epoch,
            method,
            created_at: now,
            last_seen_at: now,
            absolute_expires_at,
            second_factor_at,
        };
        self.create_plain(SESSION, &id, record, user.username.as_str())
            .await?;
        tracing::info!(user = %user.username, session = &id[..16], ?method, "session created");
        Ok(NewSession {
            csrf_token: self.csrf_for(&token),
            token,
            username: user.username.clone(),
            absolute_expires_at,
            second_factor: Ctx::second_factor_state(&effective, user, second_factor_at, now),
            must_change_password: user.must_change_password,
        })
    }

    /// Marks the session `token` (if it belongs to `username`) as having proven the second
    /// factor now.
    pub(crate) async fn mark_second_factor(
        &self,
        token: &SecretText,
        username: &PrincipalId,
    ) -> Result<(), IdentityError> {
        let id = self
            .token_digest(token)
            .ok_or(IdentityError::SessionInvalid(SessionEnd::Unknown))?;
        let now = self.now();
        self.store()
            .modify(
                SESSION,
                &id,
                Sealing::Plain,
                username.as_str(),
                |current: Option<Versioned<SessionRecord>>| {
                    let mut session = current
                        .ok_or(IdentityError::SessionInvalid(SessionEnd::Unknown))?
                        .value;
                    if &session.user != username {
                        return Err(IdentityError::SessionInvalid(SessionEnd::Unknown));
                    }
                    session.second_factor_at = Some(now);
                    session.last_seen_at = session.last_seen_at.max(now);
                    Ok(session)
                },
            )
            .await?;
        Ok(())
    }
}

impl SessionService {
    /// Checks a session cookie: known, not idle, not past its absolute lifetime, account enabled,
    /// not revoked. Refreshes `last_seen` at most once per touch interval. The answer carries the
    /// principal with its current bindings and the second-factor standing; callers must refuse
    /// ordinary work unless `second_factor.satisfied()` and `!must_change_password`.
    pub async fn validate(&self, token: &SecretText) -> Result<ValidSession, IdentityError> {
        let ctx = &self.ctx;
        let unknown = IdentityError::SessionInvalid(SessionEnd::Unknown);
        let id = ctx.token_digest(token).ok_or(unknown)?;
        let Some(stored) = ctx.get_plain::<SessionRecord>(SESSION, &id).await? else {
            return Err(IdentityError::SessionInvalid(SessionEnd::Unknown));
        };
        let now = ctx.now();
        let effective = ctx.effective().await?;
        let mut session = stored.value;
        if now >= session.absolute_expires_at {
            ctx.delete_quietly(SESSION, &id, stored.revision).await;
            return Err(IdentityError::SessionInvalid(SessionEnd::Expired));
        }
        let idle = effective.session_idle_secs;
        if now >= session.last_seen_at.saturating_add(idle) {
            // Not deleted here: another replica may have touched it within the cache TTL.
            return Err(IdentityError::SessionInvalid(SessionEnd::Idle));
        }
        let user = match ctx.get_user(&session.user).await? {
            Some(user) if !user.value.disabled => user.value,
            _ => {
                ctx.delete_quietly(SESSION, &id, stored.revision).await;
                return Err(IdentityError::SessionInvalid(SessionEnd::AccountGone));
            }
        };
        if user.session_epoch != session.epoch {
            ctx.delete_quietly(SESSION, &id, stored.revision).await;
            return Err(IdentityError::SessionInvalid(SessionEnd::Revoked));
        }
        if now.saturating_sub(session.last_seen_at) >= ctx.config().session_touch_interval_secs {
            session = self.touch(&id, &session, now).await?;
        }
        Ok(ValidSession {
            principal: Principal::user(user.username.clone(), user.bindings.clone()),
            handle: id[..16].to_owned(),
            method: session.method,
            created_at: session.created_at,
            last_seen_at: session.last_seen_at,
            idle_expires_at: session
                .last_seen_at
                .saturating_add(idle)
                .min(session.absolute_expires_at),
            absolute_expires_at: session.absolute_expires_at,
            second_factor: Ctx::second_factor_state(
                &effective,
                &user,
                session.second_factor_at,
                now,
            ),
            must_change_password: user.must_change_password,
        })
    }

    async fn touch(
        &self,
        id: &str,
        seen: &SessionRecord,
        now: Timestamp,
    ) -> Result<SessionRecord, IdentityError> {
        let result = self
            .ctx
            .store()
            .modify(
                SESSION,
                id,
                Sealing::Plain,
                seen.user.as_str(),
                |current: Option<Versioned<SessionRecord>>| {
                    let mut session = current
                        .ok_or(IdentityError::SessionInvalid(SessionEnd::Unknown))?
                        .value;
                    session.last_seen_at = session.last_seen_at.max(now);
                    Ok(session)
                },
            )
            .await;
        match result {
            Ok(written) => Ok(written.value),
            Err(IdentityError::SessionInvalid(end)) => Err(IdentityError::SessionInvalid(end)),
            Err(error) => {
                // A busy store must not sign people out: serve this request, touch next time.
                tracing::warn!(%error, "could not refresh a session's last-seen time");
                let mut session = seen.clone();
                session.last_seen_at = now;
                Ok(session)
            }
        }
    }

    /// Proves the second factor again for a live session (every `reverify_secs`, or before a
    /// sensitive action such as approving). Failures count towards the soft-lock.
    pub async fn reverify_second_factor(
        &self,
        token: &SecretText,
        factor: SecondFactor,
    ) -> Result<ValidSession, IdentityError> {
        let session = self.validate(token).await?;
        let username = session.principal.subject.clone();
        let user = self.ctx.require_user(&username).await?.value;
        if let Some(until) = user.locked_at(self.ctx.now()) {
            return Err(IdentityError::Locked {
                until,
                retry_after_secs: until.saturating_sub(self.ctx.now()),
            });
        }
        self.ctx.consume_second_factor(&username, factor).await?;
        self.ctx.mark_second_factor(token, &username).await?;
        self.validate(token).await
    }

    /// Ends one session (logout). Unknown sessions are not an error.
    pub async fn logout(&self, token: &SecretText) -> Result<(), IdentityError> {
        let Some(id) = self.ctx.token_digest(token) else {
            return Ok(());
        };
        if let Some(stored) = self.ctx.get_plain::<SessionRecord>(SESSION, &id).await? {
            match self.ctx.store().delete(SESSION, &id, stored.revision).await {
                Ok(()) | Err(crate::StoreError::NotFound { .. }) => {}
                Err(crate::StoreError::Conflict { .. }) => {
                    // Touched meanwhile: read under the lock and delete that revision.
                    if let Some(fresh) = self.ctx.get_plain::<SessionRecord>(SESSION, &id).await? {
                        self.ctx.delete_quietly(SESSION, &id, fresh.revision).await;
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// Ends every session of the user who owns `token`, this one included.
    pub async fn sign_out_everywhere(&self, token: &SecretText) -> Result<(), IdentityError> {
        let session = self.validate(token).await?;
        let username = session.principal.subject;
        self.ctx
            .modify_user(&username, username.as_str(), |user| {
                Ctx::bump_epoch(user);
                Ok(())
            })
            .await?;
        self.logout(token).await
    }

    /// The CSRF token for forms of this session: HMAC-SHA-256 keyed with the session cookie, so it
    /// needs no storage, is the same on every replica, and cannot be computed without the cookie.
    pub fn csrf_token(&self, token: &SecretText) -> String {
        self.ctx.csrf_for(token)
    }

    /// Whether `presented` is the CSRF token of the session `token` (constant-time).
    pub fn verify_csrf(&self, token: &SecretText, presented: &str) -> bool {
        let expected = self.ctx.csrf_for(token);
        self.ctx.ct_eq(&expected, presented)
    }

    /// Deletes sessions and pending sign-ins that can no longer be used (expired, idle, revoked,
    /// account gone). Run it periodically from one replica; returns how many were removed.
    pub async fn purge_expired(&self) -> Result<usize, IdentityError> {
        let ctx = &self.ctx;
        let now = ctx.now();
        let idle = ctx.effective().await?.session_idle_secs;
        let mut removed = 0;
        for id in ctx.store().list_ids(SESSION).await? {
            let Some(stored) = ctx.get_plain::<SessionRecord>(SESSION, &id).await? else {
                continue;
            };
            let session = &stored.value;
            let user = ctx.get_user(&session.user).await?;
            let dead = now >= session.absolute_expires_at
                || now >= session.last_seen_at.saturating_add(idle)
                || user.is_none_or(|user| {
                    user.value.disabled || user.value.session_epoch != session.epoch
                });
            if dead {
                ctx.delete_quietly(SESSION, &id, stored.revision).await;
                removed += 1;
            }
        }
        for id in ctx.store().list_ids(LOGIN).await? {
            let Some(stored) = ctx.get_plain::<PendingLoginRecord>(LOGIN, &id).await? else {
                continue;
            };
            if now >= stored.value.expires_at {
                ctx.delete_quietly(LOGIN, &id, stored.revision).await;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
