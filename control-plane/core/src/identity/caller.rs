//! Who is making the current request. The HTTP layer authenticates a request once (session cookie
//! or `Authorization: Bearer km_…`) and hands the result to every handler — REST and console alike —
//! as a [`Caller`], so both interfaces authorize the same principal through the same `authorize()`.

use km_domain::Principal;

use super::{AuthenticatedToken, SecretText, ValidSession};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A person signed in through the console or the REST login.
    Session {
        /// The validated session (principal with its current bindings, 2FA state, expiries).
        session: Box<ValidSession>,
        /// The session token from the cookie: needed to check CSRF tokens, re-verify the second
        /// factor and log out. Never logged.
        token: SecretText,
    },
    /// Automation with an API token.
    ApiToken(Box<AuthenticatedToken>),
}

impl Caller {
    /// The principal to pass to `authorize`.
    pub fn principal(&self) -> &Principal {
        match self {
            Caller::Session { session, .. } => &session.principal,
            Caller::ApiToken(token) => &token.principal,
        }
    }

    /// The session, for callers that signed in interactively.
    pub fn session(&self) -> Option<&ValidSession> {
        match self {
            Caller::Session { session, .. } => Some(session),
            Caller::ApiToken(_) => None,
        }
    }
}
