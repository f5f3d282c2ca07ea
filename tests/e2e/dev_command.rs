//! `keymanager dev`: answers /readyz on a fresh state directory and keeps keys, credentials and its
//! installation record across a restart (including a kill -9).

use std::time::Duration;

use km_tsb::{ApiKeys, TsbClient};
use secrecy::SecretString;

use crate::support::{Process, wait_for_status};

const START: Duration = Duration::from_secs(60);

fn start_dev(state_dir: &std::path::Path) -> (Process, String, String) {
    let mut process = Process::start(&[
        "dev",
        "--state-dir",
        state_dir.to_str().expect("utf-8 path"),
        "--listen",
        "127.0.0.1:0",
        "--emulator-listen",
        "127.0.0.1:0",
    ]);
    process.wait_for_line("Press Ctrl-C", START);
    let control_plane = process.url_after("control plane");
    let acme = process.url_after("acme ");
    (process, control_plane, acme)
}

fn acme_client(state_dir: &std::path::Path, acme_url: &str) -> TsbClient {
    let text = std::fs::read_to_string(state_dir.join("dev-credentials.json")).expect("credentials");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let key = json["partitions"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "acme"))
        .and_then(|p| p["api_key"].as_str())
        .expect("acme api key")
        .to_owned();
    TsbClient::builder(acme_url).api_keys(ApiKeys::all(vec![SecretString::from(key)])).build().expect("client")
}

#[tokio::test]
async fn dev_is_ready_and_keeps_its_state_across_restarts() {
    let state = tempfile::tempdir().expect("tempdir");

    let (first, control_plane, acme_url) = start_dev(state.path());
    let ready = wait_for_status(&format!("{control_plane}/readyz"), 200, START).await;
    let body: serde_json::Value = ready.json().await.expect("readyz json");
    assert_eq!(body["status"], "ready");
    let version = body["management"]["version"].as_str().expect("version");
    assert!(version.contains("keymanager-emulator"), "emulator must say it is one: {version}");
    wait_for_status(&format!("{control_plane}/healthz"), 200, START).await;
    let installation = first.output.iter().find(|l| l.contains("installation")).cloned().expect("id");

    // A key made in a demo tenant partition through the SDK.
    let client = acme_client(state.path(), &acme_url);
    let attributes = km_tsb::KeyAttributes { sign: Some(true), ..Default::default() };
    let mut request = km_tsb::CreateKeyRequest::new("restart-proof", "EC", attributes);
    request.curve_oid = Some("1.2.840.10045.3.1.7".into());
    let created = client.create_key(&request).await.expect("create key");
    let public_key = created.json.public_key.clone().expect("EC keys have a public key");

    // kill -9: whatever was acknowledged must already be durable.
    first.kill();

    let (second, control_plane, acme_url) = start_dev(state.path());
    wait_for_status(&format!("{control_plane}/readyz"), 200, START).await;
    let again = second.output.iter().find(|l| l.contains("installation")).cloned().expect("id");
    assert_eq!(installation, again, "the installation record survives a restart");

    let client = acme_client(state.path(), &acme_url);
    let labels = client.list_keys().await.expect("list");
    assert!(labels.iter().any(|l| l == "restart-proof"), "key survived: {labels:?}");
    let attributes = client.key_attributes("restart-proof", None).await.expect("attributes");
    assert_eq!(attributes.json.public_key.as_deref(), Some(public_key.as_slice()));
}
