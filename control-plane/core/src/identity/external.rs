//! Sign-in through an identity provider: the account that represents an SSO person, and its
//! session. The provider has already authenticated the person (and enforced its own MFA); the
//! caller (the App's SSO use case) has already decided the role bindings from the claims.
//!
//! An SSO account is a user record named `<provider>:<subject>` (local usernames cannot contain
//! `:`, so the two never collide) with no credential record — it can never sign in with a
//! password. Its bindings are replaced at every sign-in, so a group change at the provider applies
//! at the next sign-in; when they change, the account's other sessions end (as for any role
//! change).

use km_domain::{PrincipalId, RoleBinding};
use serde::{Deserialize, Serialize};

use super::records::{AuthMethod, USER, UserRecord};
use super::sessions::NewSession;
use super::{IdentityError, LoginService, normalise_bindings};
use crate::{Sealing, Versioned};

/// Which provider account an SSO user record stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoLink {
    /// Provider id.
    pub provider: String,
    /// The provider's subject id.
    pub subject: String,
    /// Login name or e-mail the provider released, for display.
    #[serde(default)]
    pub login: Option<String>,
}

/// A person the provider vouched for, with the bindings the mapping granted.
#[derive(Debug, Clone)]
pub struct ExternalSignIn {
    /// Provider id (slug).
    pub provider: String,
    /// The provider's subject id.
    pub subject: String,
    /// Login name or e-mail.
    pub login: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// The bindings the mapping granted (replace the account's bindings).
    pub bindings: Vec<RoleBinding>,
}

/// Longest subject used verbatim in a username; longer or unusual ones are hashed.
const MAX_VERBATIM_SUBJECT: usize = 120;

impl LoginService {
    /// The username of the SSO account for `subject` at `provider`.
    pub fn sso_username(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<PrincipalId, IdentityError> {
        let plain = !subject.is_empty()
            && subject.len() <= MAX_VERBATIM_SUBJECT
            && subject
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
        let subject = if plain {
            subject.to_owned()
        } else {
            let digest = self.ctx.sha256_hex(subject.as_bytes());
            format!("h{}", &digest[..40])
        };
        Ok(PrincipalId::parse(&format!("{provider}:{subject}"))?)
    }

    /// Creates or refreshes the SSO account of `person` and opens a session for it.
    pub async fn sign_in_external(
        &self,
        person: ExternalSignIn,
    ) -> Result<NewSession, IdentityError> {
        let ctx = &self.ctx;
        let username = self.sso_username(&person.provider, &person.subject)?;
        let now = ctx.now();
        let bindings = normalise_bindings(person.bindings.clone());
        let link = SsoLink {
            provider: person.provider.clone(),
            subject: person.subject.clone(),
            login: person.login.clone(),
        };
        let actor = format!("sso:{}", person.provider);
        let written = ctx
            .store()
            .modify(
                USER,
                username.as_str(),
                Sealing::Plain,
                &actor,
                |current: Option<Versioned<UserRecord>>| {
                    let mut record = match current {
                        Some(existing) => {
                            let mut record = existing.value;
                            if record.sso.as_ref().map(|l| (&l.provider, &l.subject))
                                != Some((&link.provider, &link.subject))
                            {
                                return Err(IdentityError::Inconsistent(format!(
                                    "user {username} is not the SSO account of this subject"
                                )));
                            }
                            if record.disabled {
                                return Err(IdentityError::AccountDisabled);
                            }
                            if record.bindings != bindings {
                                record.session_epoch += 1;
                            }
                            record
                        }
                        None => UserRecord {
                            username: username.clone(),
                            display_name: None,
                            bindings: Vec::new(),
                            session_epoch: 1,
                            disabled: false,
                            created_at: now,
                            created_by: actor.clone(),
                            password_changed_at: now,
                            must_change_password: false,
                            failed_attempts: 0,
                            locked_until: None,
                            last_login_at: None,
                            totp_enrolled: false,
                            sso: None,
                        },
                    };
                    record.bindings = bindings.clone();
                    record.display_name = person
                        .display_name
                        .clone()
                        .or_else(|| person.login.clone())
                        .or(record.display_name);
                    record.sso = Some(link.clone());
                    record.last_login_at = Some(now);
                    Ok::<_, IdentityError>(record)
                },
            )
            .await?;
        ctx.create_session(&written.value, AuthMethod::Sso, Some(now))
            .await
    }
}

impl LoginService {
    /// Whether `username` is a local account with an admin binding on `*` — the break-glass
    /// accounts that may still sign in with a password when local sign-in is turned off.
    pub async fn is_local_platform_admin(&self, username: &str) -> Result<bool, IdentityError> {
        let Ok(username) = super::parse_username(username) else {
            return Ok(false);
        };
        Ok(self
            .ctx
            .get_user(&username)
            .await?
            .is_some_and(|user| user.value.sso.is_none() && user.value.platform_admin()))
    }
}
