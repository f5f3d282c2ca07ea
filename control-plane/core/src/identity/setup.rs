//! First-run setup. While no administrator exists, every start issues a fresh one-time setup
//! token, stores only its SHA-256 in `kms.setup.main` and hands the token to the binary to print
//! (stdout/log of the operator). Creating the first administrator requires one of these tokens, so
//! a stranger who reaches the port first cannot claim the instance.
//!
//! Several replicas may start at once: each adds its token (the last eight are kept) and any
//! printed token works. The first valid `complete_setup` claims the setup under the record's lock
//! — consuming every token — creates the administrator with an admin binding on `*`, and marks
//! setup complete; it never runs twice. A claim abandoned by a crash expires after
//! `setup_claim_secs`, after which the next start issues a new token.

use km_domain::{Role, RoleBinding};

use super::records::{
    CredentialRecord, IssuedSetupToken, SETUP, SETUP_ACTOR, SETUP_ID, SetupRecord, USER, UserRecord,
};
use super::{Ctx, IdentityError, SecretText, UserAccount, account_view, parse_username};
use crate::{Sealing, Versioned};

/// Outstanding tokens kept (one per recent start).
const MAX_OUTSTANDING_TOKENS: usize = 8;
/// Random bytes in a setup token.
const SETUP_TOKEN_BYTES: usize = 32;

/// What a start found.
#[derive(Debug, Clone)]
pub enum SetupStart {
    /// Setup was done before; print nothing.
    AlreadyComplete,
    /// No administrator yet: print this token with instructions. It is valid until setup is done.
    TokenIssued(SecretText),
    /// Another request is creating the administrator right now; nothing to print.
    InProgress,
}

/// First-run setup.
#[derive(Debug, Clone)]
pub struct SetupService {
    pub(crate) ctx: Ctx,
}

impl SetupService {
    /// Call once at every start: issues a setup token while no administrator exists. `replica`
    /// names the caller in the record.
    pub async fn begin(&self, replica: &str) -> Result<SetupStart, IdentityError> {
        let ctx = &self.ctx;
        let current = ctx.get_plain::<SetupRecord>(SETUP, SETUP_ID).await?;
        if !matches!(
            current.as_ref().map(|v| &v.value),
            Some(SetupRecord::Complete { .. })
        ) {
            // Administrators already exist (setup finished but the record was not updated, or the
            // record was lost): the instance is set up.
            if let Some(admin) = ctx.platform_admins().await?.into_iter().next() {
                self.mark_complete(admin).await?;
                return Ok(SetupStart::AlreadyComplete);
            }
        }
        let token = ctx.random_token(SETUP_TOKEN_BYTES)?;
        let issued = IssuedSetupToken {
            sha256: ctx.sha256_hex(token.expose_secret().as_bytes()),
            issued_at: ctx.now(),
            issued_by: replica.to_owned(),
        };
        let now = ctx.now();
        let claim_secs = ctx.config().setup_claim_secs;
        let result = ctx
            .store()
            .modify(
                SETUP,
                SETUP_ID,
                Sealing::Plain,
                SETUP_ACTOR,
                |current: Option<Versioned<SetupRecord>>| {
                    let mut tokens = match current.map(|v| v.value) {
                        None => Vec::new(),
                        Some(SetupRecord::Complete { .. }) => {
                            return Err(IdentityError::SetupAlreadyComplete);
                        }
                        Some(SetupRecord::Claimed { claimed_at, .. })
                            if now < claimed_at.saturating_add(claim_secs) =>
                        {
                            return Err(IdentityError::SetupInProgress);
                        }
                        Some(
                            SetupRecord::Open { tokens } | SetupRecord::Claimed { tokens, .. },
                        ) => tokens,
                    };
                    tokens.push(issued.clone());
                    let excess = tokens.len().saturating_sub(MAX_OUTSTANDING_TOKENS);
                    tokens.drain(..excess);
                    Ok(SetupRecord::Open { tokens })
                },
            )
            .await;
        match result {
            Ok(_) => {
                tracing::info!(replica, "setup token issued: no administrator exists yet");
                Ok(SetupStart::TokenIssued(token))
            }
            Err(IdentityError::SetupAlreadyComplete) => Ok(SetupStart::AlreadyComplete),
            Err(IdentityError::SetupInProgress) => Ok(SetupStart::InProgress),
            Err(error) => Err(error),
        }
    }

    /// Whether setup has been completed (the console shows the setup page until then).
    pub async fn is_complete(&self) -> Result<bool, IdentityError> {
        Ok(matches!(
            self.ctx
                .get_plain::<SetupRecord>(SETUP, SETUP_ID)
                .await?
                .map(|v| v.value),
            Some(SetupRecord::Complete { .. })
        ))
    }

    /// Creates the first administrator (admin on `*`) if `token` is an outstanding setup token.
    /// Username and password are checked before the token is consumed, so a rejected password
    /// does not burn it. Exactly once per installation.
    pub async fn complete_setup(
        &self,
        token: &SecretText,
        username: &str,
        password: &SecretText,
        display_name: Option<String>,
    ) -> Result<UserAccount, IdentityError> {
        let ctx = &self.ctx;
        let username = parse_username(username)?;
        ctx.password_policy().check(password, username.as_str())?;
        let digest = ctx
            .token_digest(token)
            .ok_or(IdentityError::SetupTokenInvalid)?;
        let hash = ctx.ports().hasher.hash(password).await?;
        let claim = super::hex(&ctx.random_bytes(16)?);
        let now = ctx.now();
        let claim_secs = ctx.config().setup_claim_secs;
        ctx.store()
            .modify(
                SETUP,
                SETUP_ID,
                Sealing::Plain,
                SETUP_ACTOR,
                |current: Option<Versioned<SetupRecord>>| {
                    let tokens = match current.map(|v| v.value) {
                        None => return Err(IdentityError::SetupTokenInvalid),
                        Some(SetupRecord::Complete { .. }) => {
                            return Err(IdentityError::SetupAlreadyComplete);
                        }
                        Some(SetupRecord::Claimed { claimed_at, .. })
                            if now < claimed_at.saturating_add(claim_secs) =>
                        {
                            return Err(IdentityError::SetupInProgress);
                        }
                        Some(
                            SetupRecord::Open { tokens } | SetupRecord::Claimed { tokens, .. },
                        ) => tokens,
                    };
                    // Compare with every outstanding token so timing reveals nothing.
                    let mut valid = false;
                    for issued in &tokens {
                        valid |= ctx.ct_eq(&issued.sha256, &digest);
                    }
                    if !valid {
                        return Err(IdentityError::SetupTokenInvalid);
                    }
                    Ok(SetupRecord::Claimed {
                        tokens: Vec::new(),
                        claim: claim.clone(),
                        username: username.clone(),
                        claimed_at: now,
                    })
                },
            )
            .await?;

        let record = UserRecord {
            username: username.clone(),
            display_name: display_name
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty()),
            bindings: vec![RoleBinding::all_tenants(Role::Admin)],
            session_epoch: 1,
            disabled: false,
            created_at: now,
            created_by: SETUP_ACTOR.to_owned(),
            password_changed_at: now,
            must_change_password: false,
            failed_attempts: 0,
            locked_until: None,
            last_login_at: None,
            totp_enrolled: false,
            sso: None,
        };
        // A crashed earlier setup may have left this user behind; only such a record is replaced.
        ctx.store()
            .modify(
                USER,
                username.as_str(),
                Sealing::Plain,
                SETUP_ACTOR,
                |current: Option<Versioned<UserRecord>>| match current {
                    Some(existing) if existing.value.created_by != SETUP_ACTOR => {
                        Err(IdentityError::UserExists(username.to_string()))
                    }
                    _ => Ok(record.clone()),
                },
            )
            .await?;
        let credential = CredentialRecord {
            password_hash: hash,
            totp: None,
            pending_totp: None,
            recovery_codes: Vec::new(),
        };
        ctx.modify_credential(&username, SETUP_ACTOR, |_| Ok(credential.clone()))
            .await?;
        self.mark_complete(username.clone()).await?;
        tracing::info!(admin = %username, "setup complete: first administrator created");
        Ok(account_view(&record, now))
    }

    async fn mark_complete(&self, admin: km_domain::PrincipalId) -> Result<(), IdentityError> {
        let now = self.ctx.now();
        let result = self
            .ctx
            .store()
            .modify(
                SETUP,
                SETUP_ID,
                Sealing::Plain,
                SETUP_ACTOR,
                |current: Option<Versioned<SetupRecord>>| {
                    if let Some(SetupRecord::Complete { .. }) = current.map(|v| v.value) {
                        return Err(IdentityError::SetupAlreadyComplete);
                    }
                    Ok(SetupRecord::Complete {
                        admin: admin.clone(),
                        completed_at: now,
                    })
                },
            )
            .await;
        match result {
            Ok(_) | Err(IdentityError::SetupAlreadyComplete) => Ok(()),
            Err(error) => Err(error),
        }
    }
}
