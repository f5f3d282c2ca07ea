//! The committed OpenAPI document (`control-plane/api/openapi.json`) must equal what the code
//! serves, so API changes show up in review.

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    // Both test harnesses (keymanager's e2e suite, km-api's) live in a sibling of api/.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../api/openapi.json")
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let current = km_api::openapi_json();
    let path = committed_path();
    if std::env::var_os("KM_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, format!("{current}\n")).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed.trim_end() == current.trim_end(),
        "control-plane/api/openapi.json is out of date with the code. Review the API change, then \
         regenerate it with:\n  KM_UPDATE_OPENAPI=1 cargo test -p keymanager --test e2e -- api::drift"
    );
}
