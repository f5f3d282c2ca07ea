//! `GET /keys/{label}/attestation.zip`: the HSM's attestation of a key of the current partition
//! (the current version, or `?version=N`), downloaded as the zip the HSM hands out. Refusals (a
//! destroyed version, an HSM without attestation) are error pages with the App's reason.

use std::sync::Arc;

use km_core::AppError;
use poem::http::{StatusCode, header};
use poem::web::{Data, Path};
use poem::{Request, Response, handler};

use crate::http;
use crate::pages::errors;
use crate::viewer::{self, Console, Need};

/// The zip, as an attachment named `<hsm label>-attestation.zip`.
#[handler]
pub(crate) async fn download(
    req: &Request,
    console: Data<&Arc<Console>>,
    Path(label): Path<String>,
) -> Response {
    let viewer = match viewer::viewer(&console, req, Need::Full).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let Some(tenant) = viewer.tenant().cloned() else {
        return errors::forbidden(&viewer, req);
    };
    let version = match viewer::query_param(req, "version").filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => match text.parse::<u32>() {
            Ok(number) => Some(number),
            Err(_) => {
                let error = AppError::invalid("invalid_version", "a version is a positive number");
                return errors::app_error(&viewer, req, &error);
            }
        },
    };
    match console
        .app
        .key_attestation(
            &viewer.caller,
            &http::request_id(req),
            &tenant,
            &label,
            version,
        )
        .await
    {
        Ok(attestation) => Response::builder()
            .status(StatusCode::OK)
            .content_type("application/zip")
            .header(
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", attestation.file_name),
            )
            .body(attestation.zip),
        Err(error) => errors::app_error(&viewer, req, &error),
    }
}
