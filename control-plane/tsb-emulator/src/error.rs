//! Errors: [`EmulatorError`] for start-up, configuration and storage; `TsbError` for the wire
//! (`{errorCode, reason, message}` with the status mapping of the wire decisions).

use poem::http::StatusCode;

/// Start-up, configuration and storage failures of the emulator itself.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The configuration (programmatic, TOML or CLI) is invalid.
    #[error("configuration error: {0}")]
    Config(String),
    /// The state directory cannot be read or written, or its content is unreadable.
    #[error("storage error: {0}")]
    Storage(String),
    /// Binding or serving failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// TLS material could not be loaded.
    #[error("TLS error: {0}")]
    Tls(String),
}

/// A TSB business error as sent on the wire.
#[derive(Debug, Clone)]
pub(crate) struct TsbError {
    pub code: u32,
    pub message: String,
    /// Used only for non-business answers (unknown route → 404, method → 405) and injected faults.
    pub status_override: Option<StatusCode>,
}

impl TsbError {
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status_override: None,
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status_override = Some(status);
        self
    }

    /// HTTP status for an error code, per the wire decisions.
    pub fn status(&self) -> StatusCode {
        if let Some(s) = self.status_override {
            return s;
        }
        status_for_code(self.code)
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "errorCode": self.code,
            "reason": format!("res.error.{}", reason_suffix(self.code)),
            "message": self.message,
        })
    }

    // Frequently used constructors.
    pub fn invalid_json(msg: impl Into<String>) -> Self {
        Self::new(621, msg)
    }
    pub fn validation(msg: impl Into<String>) -> Self {
        Self::new(600, msg)
    }
    pub fn missing(field: &str) -> Self {
        Self::new(600, format!("missing required field '{field}'"))
    }
    pub fn key_not_found(name: &str) -> Self {
        Self::new(650, format!("key '{name}' does not exist"))
    }
    pub fn forbidden_for_key(msg: impl Into<String>) -> Self {
        Self::new(614, msg)
    }
    /// Key usage refused by the "HSM" (attribute not set, key blocked).
    pub fn key_function_not_permitted(detail: &str) -> Self {
        Self::new(701, format!("KEY_FUNCTION_NOT_PERMITTED: {detail}"))
    }
    pub fn io(msg: impl Into<String>) -> Self {
        Self::new(703, msg)
    }
    pub fn route_not_found() -> Self {
        Self::new(611, "no such endpoint").with_status(StatusCode::NOT_FOUND)
    }
    pub fn not_implemented(what: &str) -> Self {
        Self::new(101, format!("{what} is not implemented by the emulator"))
    }
}

pub(crate) fn status_for_code(code: u32) -> StatusCode {
    match code {
        631 | 406 | 617 => StatusCode::UNAUTHORIZED,
        400 | 451 => StatusCode::FORBIDDEN,
        650..=654 => StatusCode::NOT_FOUND,
        700..=704 => StatusCode::INTERNAL_SERVER_ERROR,
        101 => StatusCode::NOT_IMPLEMENTED,
        100..=103 => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// `res.error.<suffix>` for a code (the Securosys `BusinessReason` catalogue).
pub(crate) fn reason_suffix(code: u32) -> &'static str {
    match code {
        100 => "impl",
        101 => "not.implemented",
        102 => "operation.unreachable",
        103 => "general",
        200 => "init",
        300 => "config.not.existent",
        301 => "config.not.valid",
        302 => "invalid.config.input",
        400 => "security.not.allowed",
        401 => "missing.approval",
        402 => "invalid.certificate",
        403 => "input.invalid.signature",
        404 => "input.timestamp.off",
        405 => "timestamp.signer.not.allowed",
        406 => "missing.access.token",
        407 => "parsing.key",
        408 => "reading.pem",
        409 => "parsing.certificate",
        410 => "decrypt.failed",
        411 => "invalid.certificate.request",
        412 => "invalid.onetimepassword",
        450 => "client.subscription",
        451 => "client.endpoint.not.licensed",
        500 => "data.invalid.constellation",
        501 => "invalid.value.for.enum",
        600 => "input.validation.failed",
        601 => "unsupported.approver.key.type",
        602 => "unsupported.combination.of.approval.types",
        603 => "input.keysize",
        604 => "input.no.name.for.certificate.approver",
        605 => "unsupported.cryptocurrency",
        606 => "key.attributes.invalid",
        607 => "algorithm.not.supported.by.key",
        608 => "key.already.existing",
        609 => "invalid.uuid",
        610 => "invalid.key.name",
        611 => "unsupported.operation",
        612 => "invalid.payload",
        613 => "invalid.key.type",
        614 => "operation.forbidden.for.key",
        615 => "data.object.already.existing",
        616 => "data.object.invalid.value",
        617 => "invalid.access.token",
        618 => "insufficient.login.information",
        619 => "invalid.number.range",
        620 => "key.password.mismatch",
        621 => "invalid.json",
        623 => "invalid.file.header",
        624 => "key.invalid.tagLength",
        625 => "key.invalid.encoding",
        626 => "certificate.invalid.encoding",
        627 => "invalid.key.id",
        628 => "csr.invalid.format",
        629 => "unsupported.cipher",
        630 => "invalid.address.on.non.ska.key",
        631 => "invalid.api.key",
        632 => "approver.already.existing",
        650 => "key.not.existent",
        651 => "request.not.existent",
        652 => "task.not.existent",
        653 => "data.object.not.existent",
        654 => "approver.not.existent",
        700 => "in.subystem",
        701 => "in.hsm",
        702 => "creation.integrity.key",
        703 => "io",
        704 => "file.not.found",
        _ => "general",
    }
}

impl From<crate::crypto::CryptoError> for TsbError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        TsbError::new(e.error_code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        assert_eq!(status_for_code(631), StatusCode::UNAUTHORIZED);
        assert_eq!(status_for_code(451), StatusCode::FORBIDDEN);
        assert_eq!(status_for_code(650), StatusCode::NOT_FOUND);
        assert_eq!(status_for_code(653), StatusCode::NOT_FOUND);
        assert_eq!(status_for_code(701), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status_for_code(101), StatusCode::NOT_IMPLEMENTED);
        assert_eq!(status_for_code(608), StatusCode::BAD_REQUEST);
        assert_eq!(status_for_code(401), StatusCode::BAD_REQUEST);
        assert_eq!(status_for_code(501), StatusCode::BAD_REQUEST);
        let b = TsbError::new(608, "x").body();
        assert_eq!(b["reason"], "res.error.key.already.existing");
    }
}
