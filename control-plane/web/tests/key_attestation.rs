//! The console's key attestation download (`/keys/{label}/attestation.zip`) served in-process over
//! the real app layer on the real TSB emulator (tests/support): the zip as an attachment, a
//! version by number, and refusals as error pages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use poem::http::{StatusCode, header};

mod support;

use support::*;

async fn download(world: &World, jar: &Jar, path: &str) -> (StatusCode, String, String, Vec<u8>) {
    let response = world
        .client
        .get(path)
        .header(header::COOKIE, jar.header())
        .send()
        .await
        .0;
    let text = |name| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (content_type, disposition) = (
        text(header::CONTENT_TYPE),
        text(header::CONTENT_DISPOSITION),
    );
    let status = response.status();
    let body = response.into_body().into_vec().await.unwrap();
    (status, content_type, disposition, body)
}

#[tokio::test]
async fn a_keys_attestation_is_downloaded_as_a_zip() {
    let world = world().await;
    let mut root = first_admin(&world).await;
    let wizard = world.get("/keys/new", &mut root).await;
    let form = [
        ("csrf", wizard.csrf()),
        ("label", "attested".to_owned()),
        ("algorithm", "EC".to_owned()),
        ("param_EC", "secp256r1".to_owned()),
        ("param_RSA", "3072".to_owned()),
        ("usage", "sign".to_owned()),
        ("destroyable", "true".to_owned()),
    ];
    let created = world.post("/keys/new", &pairs(&form), &mut root).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);

    for path in [
        "/keys/attested/attestation.zip",
        "/keys/attested/attestation.zip?version=1",
    ] {
        let (status, content_type, disposition, body) = download(&world, &root, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(content_type, "application/zip");
        assert_eq!(
            disposition,
            "attachment; filename=\"attested-attestation.zip\""
        );
        assert!(body.starts_with(b"PK\x03\x04"), "not a zip");
    }

    let unknown = world.get("/keys/nothing/attestation.zip", &mut root).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let bad_version = world
        .get("/keys/attested/attestation.zip?version=two", &mut root)
        .await;
    assert_eq!(bad_version.status, StatusCode::BAD_REQUEST);
    let no_such_version = world
        .get("/keys/attested/attestation.zip?version=7", &mut root)
        .await;
    assert_eq!(no_such_version.status, StatusCode::BAD_REQUEST);
}
