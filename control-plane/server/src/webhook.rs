//! The webhook adapter: km-core's [`WebhookSender`] port over reqwest 0.13 with rustls (the
//! aws-lc-rs provider; `main` installs it as the process default too) and the platform's trust
//! roots. Against server-side request forgery and stuck receivers: redirects are never followed
//! (a 3xx is handed back as the answer), each delivery gives up after [`WEBHOOK_TIMEOUT`], and
//! the response body is never read. Errors name the cause from the transport's chain, never the
//! URL (its path or query may hold a receiver's token) or a header.

use std::error::Error as _;
use std::fmt::Write as _;
use std::time::Duration;

use km_core::{WebhookError, WebhookSender};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// Longest a delivery may take, connection included.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the connection (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Posts notices with a shared connection pool.
#[derive(Debug, Clone)]
pub struct ReqwestWebhookSender {
    client: reqwest::Client,
}

impl ReqwestWebhookSender {
    /// The client: no redirects, [`WEBHOOK_TIMEOUT`], rustls with the platform's roots.
    pub fn new() -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(WEBHOOK_TIMEOUT)
            .user_agent(concat!(
                "keymanager/",
                env!("CARGO_PKG_VERSION"),
                " (webhook)"
            ))
            .build()
            .map_err(|error| {
                anyhow::anyhow!("building the webhook HTTP client: {}", error.without_url())
            })?;
        Ok(Self { client })
    }
}

/// The transport's error as a [`WebhookError`], with its cause chain and without the URL.
fn classify(error: reqwest::Error) -> WebhookError {
    if error.is_timeout() {
        return WebhookError::Timeout(WEBHOOK_TIMEOUT.as_secs());
    }
    let connect = error.is_connect();
    let error = error.without_url();
    let mut message = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        if !message.is_empty() {
            message.push_str(": ");
        }
        let _ = write!(message, "{cause}");
        source = cause.source();
    }
    if message.is_empty() {
        message = error.to_string();
    }
    if connect {
        WebhookError::Connect(message)
    } else {
        WebhookError::Failed(message)
    }
}

#[km_core::scheduler::async_trait]
impl WebhookSender for ReqwestWebhookSender {
    async fn send(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<u16, WebhookError> {
        let url = reqwest::Url::parse(url)
            .map_err(|error| WebhookError::Failed(format!("the URL is not usable: {error}")))?;
        let mut map = HeaderMap::with_capacity(headers.len());
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| WebhookError::Failed(format!("header name {name:?} is not valid")))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                WebhookError::Failed(format!("the value of header {name} is not valid"))
            })?;
            map.insert(name, value);
        }
        let response = self
            .client
            .post(url)
            .headers(map)
            .body(body.to_vec())
            .send()
            .await
            .map_err(classify)?;
        Ok(response.status().as_u16())
    }
}
