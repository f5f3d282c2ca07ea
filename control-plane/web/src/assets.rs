//! The console's static files, compiled into the binary (no third-party assets, nothing fetched
//! at run time). URLs carry `?v=<version>`, so they may be cached for a day.

use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{IntoResponse, Response, handler};

/// (file name, content type, bytes)
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../static/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/console.js"),
    ),
    (
        "theme.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/theme.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../static/favicon.svg"),
    ),
];

/// `GET /static/<name>`.
#[handler]
pub(crate) fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, bytes)) => Response::builder()
            .status(StatusCode::OK)
            .content_type(*content_type)
            .header(header::CACHE_CONTROL, "public, max-age=86400")
            .body(*bytes),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
