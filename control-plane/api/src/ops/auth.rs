//! `/auth`: first-run setup, sign-in (password, second factor), re-verification, sign-out.

use km_core::identity::{LoginOutcome, NewSession, SecondFactor, SecretText};
use km_core::{App, CompleteSetup};
use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::{ApiTags, UserCreated, fail};
use crate::context::{authenticate, cleared_cookie, request_id, session_cookie};
use crate::models::{
    CompleteSetupRequest, FactorKind, LoginRequest, ReverifyRequest, SecondFactorChallenge,
    SecondFactorRequest, SessionCreated, SessionInfo, SetupStatusBody, User,
};
use crate::problem::ApiError;

pub(crate) struct AuthApi;

/// Where a sign-in stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum LoginStatus {
    /// Signed in: the session cookie is set.
    SignedIn,
    /// Send the second factor with `pending_token`.
    SecondFactorRequired,
}

/// The answer to the password step.
#[derive(Debug, Clone, Object)]
pub struct LoginResult {
    /// Where the sign-in stands.
    pub status: LoginStatus,
    /// The session, when signed in.
    pub session: Option<SessionCreated>,
    /// The challenge, when a second factor is needed.
    pub second_factor: Option<SecondFactorChallenge>,
}

#[derive(Debug, ApiResponse)]
enum SetupStatusResponse {
    /// Whether setup is complete.
    #[oai(status = 200)]
    Ok(Json<SetupStatusBody>),
}

#[derive(Debug, ApiResponse)]
enum LoginResponse {
    /// Signed in (cookie set), or a second factor is needed.
    #[oai(status = 200)]
    Ok(
        Json<LoginResult>,
        /// The session cookie (`km_session`, HttpOnly, Secure, SameSite=Strict).
        #[oai(header = "Set-Cookie")]
        Option<String>,
    ),
}

#[derive(Debug, ApiResponse)]
enum SessionResponse {
    /// Signed in.
    #[oai(status = 200)]
    Ok(
        Json<SessionCreated>,
        /// The session cookie.
        #[oai(header = "Set-Cookie")]
        String,
    ),
}

#[derive(Debug, ApiResponse)]
enum ReverifyResponse {
    /// The session, second factor verified now.
    #[oai(status = 200)]
    Ok(Json<SessionInfo>),
}

#[derive(Debug, ApiResponse)]
enum SignedOut {
    /// Signed out; the cookie is cleared.
    #[oai(status = 204)]
    Done(
        /// Clears the session cookie.
        #[oai(header = "Set-Cookie")]
        String,
    ),
}

fn factor(kind: FactorKind, code: String) -> SecondFactor {
    match kind {
        FactorKind::Totp => SecondFactor::Totp(SecretText::new(code)),
        FactorKind::RecoveryCode => SecondFactor::RecoveryCode(SecretText::new(code)),
    }
}

fn cookie_for(app: &App, session: &NewSession) -> String {
    let now = app.clock().now();
    session_cookie(
        &session.token,
        session.absolute_expires_at.saturating_sub(now),
    )
}

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Whether first-run setup is complete.
    #[oai(path = "/setup", method = "get", operation_id = "get_setup_status")]
    async fn setup_status(
        &self,
        app: Data<&App>,
        req: &Request,
    ) -> Result<SetupStatusResponse, ApiError> {
        let rid = request_id(req);
        let status = app.setup_status().await.map_err(fail(&rid))?;
        Ok(SetupStatusResponse::Ok(Json(SetupStatusBody {
            complete: status.complete,
        })))
    }

    /// Creates the first administrator (admin on `*`) with the one-time setup token.
    #[oai(path = "/setup", method = "post", operation_id = "complete_setup")]
    async fn complete_setup(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<CompleteSetupRequest>,
    ) -> Result<UserCreated, ApiError> {
        let rid = request_id(req);
        let body = body.0;
        let user = app
            .complete_setup(
                &rid,
                CompleteSetup {
                    setup_token: SecretText::new(body.setup_token.0),
                    username: body.username.0,
                    password: SecretText::new(body.password.0),
                    display_name: body.display_name.map(|name| name.0),
                },
            )
            .await
            .map_err(fail(&rid))?;
        Ok(UserCreated::Created(Json(User::from(user))))
    }

    /// Signs in with username and password. Sets the session cookie, or asks for the second
    /// factor.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<LoginRequest>,
    ) -> Result<LoginResponse, ApiError> {
        let rid = request_id(req);
        let body = body.0;
        let outcome = app
            .login_password(&rid, &body.username.0, &SecretText::new(body.password.0))
            .await
            .map_err(fail(&rid))?;
        Ok(match outcome {
            LoginOutcome::SignedIn(session) => LoginResponse::Ok(
                Json(LoginResult {
                    status: LoginStatus::SignedIn,
                    session: Some(SessionCreated::from(&session)),
                    second_factor: None,
                }),
                Some(cookie_for(&app, &session)),
            ),
            LoginOutcome::SecondFactorRequired(pending) => LoginResponse::Ok(
                Json(LoginResult {
                    status: LoginStatus::SecondFactorRequired,
                    session: None,
                    second_factor: Some(SecondFactorChallenge::from(&pending)),
                }),
                None,
            ),
        })
    }

    /// Completes a sign-in with a TOTP or recovery code. A TOTP code is accepted once, even when
    /// sent twice at the same moment.
    #[oai(
        path = "/login/second-factor",
        method = "post",
        operation_id = "login_second_factor"
    )]
    async fn login_second_factor(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<SecondFactorRequest>,
    ) -> Result<SessionResponse, ApiError> {
        let rid = request_id(req);
        let body = body.0;
        let session = app
            .login_second_factor(
                &rid,
                &SecretText::new(body.pending_token.0),
                factor(body.kind, body.code.0),
            )
            .await
            .map_err(fail(&rid))?;
        let cookie = cookie_for(&app, &session);
        Ok(SessionResponse::Ok(
            Json(SessionCreated::from(&session)),
            cookie,
        ))
    }

    /// Proves the second factor again for the current session (due every `reverify_hours`).
    #[oai(
        path = "/reverify",
        method = "post",
        operation_id = "reverify_second_factor"
    )]
    async fn reverify(
        &self,
        app: Data<&App>,
        req: &Request,
        body: Json<ReverifyRequest>,
    ) -> Result<ReverifyResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let body = body.0;
        let session = app
            .reverify_second_factor(&caller, &rid, factor(body.kind, body.code.0))
            .await
            .map_err(fail(&rid))?;
        Ok(ReverifyResponse::Ok(Json(SessionInfo::from(&session))))
    }

    /// Ends the current session.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, app: Data<&App>, req: &Request) -> Result<SignedOut, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        app.logout(&caller, &rid).await.map_err(fail(&rid))?;
        Ok(SignedOut::Done(cleared_cookie()))
    }

    /// Ends every session of the caller's account, this one included.
    #[oai(
        path = "/sign-out-everywhere",
        method = "post",
        operation_id = "sign_out_everywhere"
    )]
    async fn sign_out_everywhere(
        &self,
        app: Data<&App>,
        req: &Request,
    ) -> Result<SignedOut, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        app.sign_out_everywhere(&caller, &rid)
            .await
            .map_err(fail(&rid))?;
        Ok(SignedOut::Done(cleared_cookie()))
    }
}
