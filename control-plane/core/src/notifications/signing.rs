//! The signature of a delivery (format in the module docs of `notifications`), computed with the
//! HMAC of the crypto port (aws-lc-rs in km-auth), never by hand.

use crate::Timestamp;
use crate::identity::{IdentityCrypto, SecretText};

/// Header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "Keymanager-Signature";
/// Header carrying the delivery id (also `id` in the body).
pub const DELIVERY_HEADER: &str = "Keymanager-Delivery";
/// Prefix of every signing secret, so a leaked one is recognisable (e.g. by secret scanners).
pub const SECRET_PREFIX: &str = "kmwhsec_";

/// The `Keymanager-Signature` value of `body` sent at `t`: HMAC-SHA256 keyed with the secret's
/// characters over `"<t>.<body>"`.
pub fn signature_header(
    crypto: &dyn IdentityCrypto,
    secret: &SecretText,
    t: Timestamp,
    body: &[u8],
) -> String {
    let prefix = format!("{t}.");
    let mut message = Vec::with_capacity(prefix.len() + body.len());
    message.extend_from_slice(prefix.as_bytes());
    message.extend_from_slice(body);
    let mac = crypto.hmac_sha256(secret.expose_secret().as_bytes(), &message);
    format!("t={t},v1={}", crate::identity::hex(&mac))
}
