//! The port through which notices leave the process. km-core names no HTTP client; the binary
//! wires an adapter (reqwest, no redirects, 10 s timeout).

use async_trait::async_trait;

/// Why a delivery got no HTTP answer. Messages name the cause (never the URL's path or query,
/// which may carry a receiver's token, and never a header value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// This process has no webhook client (a test or tool that did not wire one).
    #[error("webhook delivery is not available in this process")]
    Unavailable,
    /// No answer in time.
    #[error("the receiver did not answer within {0} seconds")]
    Timeout(u64),
    /// No connection (DNS, refused, TLS handshake or certificate).
    #[error("cannot reach the receiver: {0}")]
    Connect(String),
    /// Anything else on the way.
    #[error("the delivery failed: {0}")]
    Failed(String),
}

/// Posts a signed notice to a receiver.
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// `POST url` with `headers` and `body`; the receiver's status code, whatever it is (a
    /// redirect is returned, not followed).
    async fn send(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<u16, WebhookError>;
}

/// A sender for processes without a webhook client: every delivery fails with
/// [`WebhookError::Unavailable`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWebhookSender;

#[async_trait]
impl WebhookSender for NoWebhookSender {
    async fn send(
        &self,
        _url: &str,
        _headers: &[(String, String)],
        _body: &[u8],
    ) -> Result<u16, WebhookError> {
        Err(WebhookError::Unavailable)
    }
}
