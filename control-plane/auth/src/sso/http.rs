//! The one HTTP client of the relying party: reqwest 0.13 with redirects off, timeouts and a cap
//! on response sizes, usable directly (GitHub) and as openidconnect's [`AsyncHttpClient`].

use std::error::Error as _;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use km_core::SsoError;

use super::HttpSsoConfig;

/// Why an HTTP exchange failed before an answer could be read. Never carries request bodies
/// (they hold codes and secrets); URLs are left out too.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// Connecting, sending or reading failed (message from the transport, URL removed).
    #[error("{0}")]
    Transport(String),
    /// The answer was larger than the configured cap.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The request could not be turned into a reqwest request.
    #[error("the request could not be built: {0}")]
    Build(String),
}

impl HttpError {
    fn from_reqwest(err: reqwest::Error) -> Self {
        let timeout = err.is_timeout();
        let connect = err.is_connect();
        let err = err.without_url();
        let mut message = if timeout {
            String::from("timed out")
        } else if connect {
            String::from("could not connect")
        } else {
            err.to_string()
        };
        // reqwest's own message is generic ("error sending request"); the cause is in the chain.
        let mut source = err.source();
        while let Some(cause) = source {
            let _ = write!(message, ": {cause}");
            source = cause.source();
        }
        HttpError::Transport(message)
    }

    /// As an [`SsoError::Unavailable`] naming what was being fetched.
    pub(crate) fn unavailable(&self, what: &str) -> SsoError {
        SsoError::Unavailable(format!("{what} failed: {self}"))
    }
}

/// An answer read in full (within the size cap).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// reqwest client plus the response size cap.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    max_body: usize,
}

impl Http {
    /// Builds the client from `config` (no redirects, timeouts, user agent, extra roots).
    pub(crate) fn new(config: &HttpSsoConfig) -> Result<Self, SsoError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.clone());
        if !config.extra_root_certificates_pem.is_empty() {
            let mut certs = Vec::new();
            for pem in &config.extra_root_certificates_pem {
                let cert = reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| {
                    SsoError::Misconfigured(format!(
                        "an extra root certificate is not usable: {}",
                        e.without_url()
                    ))
                })?;
                certs.push(cert);
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|e| {
            SsoError::Misconfigured(format!(
                "the HTTP client could not be built: {}",
                e.without_url()
            ))
        })?;
        Ok(Self {
            client,
            max_body: config.max_response_bytes,
        })
    }

    /// A request builder on the shared client.
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        url: url::Url,
    ) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    /// Sends `request` and reads the answer, refusing bodies over the cap.
    pub(crate) async fn execute(&self, request: reqwest::Request) -> Result<Answer, HttpError> {
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(HttpError::from_reqwest)?;
        if response
            .content_length()
            .is_some_and(|len| len > self.max_body as u64)
        {
            return Err(HttpError::TooLarge(self.max_body));
        }
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(HttpError::from_reqwest)? {
            if body.len() + chunk.len() > self.max_body {
                return Err(HttpError::TooLarge(self.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    async fn call_oidc(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request)
            .map_err(|e| HttpError::Build(e.without_url().to_string()))?;
        let answer = self.execute(request).await?;
        let mut response = HttpResponse::new(answer.body);
        *response.status_mut() = answer.status;
        *response.headers_mut() = answer.headers;
        Ok(response)
    }
}

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.call_oidc(request))
    }
}

/// Shortens and cleans a provider-supplied text (error descriptions) before it goes into a message.
pub(crate) fn sanitize(text: &str) -> String {
    const MAX: usize = 200;
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX)
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}
