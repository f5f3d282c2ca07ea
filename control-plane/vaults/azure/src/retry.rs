//! A short, bounded retry policy for every SDK pipeline (vault and token endpoint).
//!
//! The SDK default (8 retries, exponential backoff up to 30 s, honouring `Retry-After`) turns an
//! unreachable vault into a hang of a minute or more. keymanager calls the vault while a user
//! waits, so a transient failure gets two quick retries and then surfaces as
//! `VaultError::Unavailable`; callers may try again later. `Retry-After` is ignored on purpose
//! (a throttled vault asking for 30 s must not block a request for 30 s).

use azure_core::http::StatusCode;
use azure_core::http::policies::{RetryHeaders, RetryPolicy};
use azure_core::time::Duration;

/// At most [`MAX_RETRIES`] retries, none once [`MAX_ELAPSED`] has passed since the first answer.
#[derive(Debug, Default)]
pub(crate) struct BoundedRetry;

/// Retries after the first attempt.
pub(crate) const MAX_RETRIES: u32 = 2;
/// No retry starts later than this after the first attempt ended.
const MAX_ELAPSED: Duration = Duration::seconds(1);
/// First backoff; doubles for each retry.
const FIRST_DELAY_MS: i64 = 150;

impl RetryPolicy for BoundedRetry {
    fn is_expired(&self, duration_since_start: Duration, retry_count: u32) -> bool {
        retry_count >= MAX_RETRIES || duration_since_start >= MAX_ELAPSED
    }

    fn retry_headers(&self) -> Option<&RetryHeaders> {
        None
    }

    fn retry_status_codes(&self) -> &[StatusCode] {
        &[
            StatusCode::RequestTimeout,
            StatusCode::TooManyRequests,
            StatusCode::InternalServerError,
            StatusCode::BadGateway,
            StatusCode::ServiceUnavailable,
            StatusCode::GatewayTimeout,
        ]
    }

    fn sleep_duration(&self, retry_count: u32) -> Duration {
        let doublings = retry_count.saturating_sub(1).min(4);
        Duration::milliseconds(FIRST_DELAY_MS << doublings)
    }
}
