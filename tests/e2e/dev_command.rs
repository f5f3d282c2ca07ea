//! `keymanager dev`: answers /readyz on a fresh state directory and keeps keys, credentials and its
//! installation record across a restart (including a kill -9); prints the console URL and a setup
//! token until the first administrator exists.

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
        "--bcrypt-cost",
        "4",
    ]);
    process.wait_for_line("Press Ctrl-C", START);
    let control_plane = process.url_after("control plane");
    let acme = process.url_after("acme ");
    (process, control_plane, acme)
}

/// The setup token printed in the banner, if any.
fn setup_token(process: &Process) -> Option<String> {
    process
        .output
        .iter()
        .find_map(|line| line.split("setup token:").nth(1))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .expect("a token after the label")
                .to_owned()
        })
}

fn dev_api_key(state_dir: &std::path::Path, partition: &str) -> SecretString {
    let text =
        std::fs::read_to_string(state_dir.join("dev-credentials.json")).expect("credentials");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let key = json["partitions"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == partition))
        .and_then(|p| p["api_key"].as_str())
        .expect("api key")
        .to_owned();
    SecretString::from(key)
}

/// Completes first-run setup with `token` through the REST API, as a first administrator would.
async fn complete_setup(control_plane: &str, token: &str) {
    let response = reqwest::Client::new()
        .post(format!("{control_plane}/api/v1/auth/setup"))
        .json(&serde_json::json!({
            "setup_token": token,
            "username": "admin",
            "password": "violet anchors drift quietly",
        }))
        .send()
        .await
        .expect("setup request");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(
        status.as_u16(),
        201,
        "the printed setup token completes setup: {body}"
    );
}

fn acme_client(state_dir: &std::path::Path, acme_url: &str) -> TsbClient {
    TsbClient::builder(acme_url)
        .api_keys(ApiKeys::all(vec![dev_api_key(state_dir, "acme")]))
        .build()
        .expect("client")
}

#[tokio::test]
async fn dev_is_ready_and_keeps_its_state_across_restarts() {
    let state = tempfile::tempdir().expect("tempdir");

    let (first, control_plane, acme_url) = start_dev(state.path());
    let ready = wait_for_status(&format!("{control_plane}/readyz"), 200, START).await;
    let body: serde_json::Value = ready.json().await.expect("readyz json");
    assert_eq!(body["status"], "ready");
    let version = body["management"]["version"].as_str().expect("version");
    assert!(
        version.contains("keymanager-emulator"),
        "emulator must say it is one: {version}"
    );
    wait_for_status(&format!("{control_plane}/healthz"), 200, START).await;
    let installation = first
        .output
        .iter()
        .find(|l| l.contains("installation"))
        .cloned()
        .expect("id");

    // A key made in a demo tenant partition through the SDK.
    let client = acme_client(state.path(), &acme_url);
    let attributes = km_tsb::KeyAttributes {
        sign: Some(true),
        ..Default::default()
    };
    let mut request = km_tsb::CreateKeyRequest::new("restart-proof", "EC", attributes);
    request.curve_oid = Some("1.2.840.10045.3.1.7".into());
    let created = client.create_key(&request).await.expect("create key");
    let public_key = created
        .json
        .public_key
        .clone()
        .expect("EC keys have a public key");

    // kill -9: whatever was acknowledged must already be durable.
    first.kill();

    let (second, control_plane, acme_url) = start_dev(state.path());
    wait_for_status(&format!("{control_plane}/readyz"), 200, START).await;
    let again = second
        .output
        .iter()
        .find(|l| l.contains("installation"))
        .cloned()
        .expect("id");
    assert_eq!(
        installation, again,
        "the installation record survives a restart"
    );

    let client = acme_client(state.path(), &acme_url);
    let labels = client.list_keys().await.expect("list");
    assert!(
        labels.iter().any(|l| l == "restart-proof"),
        "key survived: {labels:?}"
    );
    let attributes = client
        .key_attributes("restart-proof", None)
        .await
        .expect("attributes");
    assert_eq!(
        attributes.json.public_key.as_deref(),
        Some(public_key.as_slice())
    );
}

#[tokio::test]
async fn dev_prints_console_url_and_setup_token_until_setup_is_complete() {
    let state = tempfile::tempdir().expect("tempdir");

    let (first, control_plane, _) = start_dev(state.path());
    let console = first.url_after("console");
    assert_eq!(
        console,
        format!("{control_plane}/"),
        "the console is served by the control plane"
    );
    let token = setup_token(&first).expect("a fresh state directory prints a setup token");
    assert!(
        token.len() >= 32,
        "a setup token carries enough randomness: {token}"
    );
    wait_for_status(&format!("{control_plane}/readyz"), 200, START).await;
    let audit_line = first
        .output
        .iter()
        .find(|l| l.contains("audit stream"))
        .expect("audit line");
    assert!(audit_line.contains("audit.jsonl"), "{audit_line}");

    // The console is there (it shows the setup page on a fresh installation).
    let page = wait_for_status(&console, 200, START)
        .await
        .text()
        .await
        .expect("console page");
    assert!(page.contains("<html"), "{page}");
    complete_setup(&control_plane, &token).await;
    // Graceful stop (SIGTERM): the checkpoint signed at shutdown covers the streamed events.
    let (status, output) = first.terminate(START);
    assert!(status.success(), "dev exits 0 on SIGTERM: {output}");
    let stream = std::fs::read_to_string(state.path().join("audit.jsonl")).expect("audit stream");
    assert!(
        stream.contains("complete_setup"),
        "the setup is audited: {stream}"
    );
    assert!(
        !stream.contains("violet anchors"),
        "no password in the audit stream"
    );
    let snapshot = state.path().join("audit-snapshot.jsonl");
    std::fs::write(&snapshot, &stream).expect("snapshot");

    let (second, control_plane, _) = start_dev(state.path());
    wait_for_status(&format!("{control_plane}/readyz"), 200, START).await;
    assert_eq!(
        setup_token(&second),
        None,
        "no token once an administrator exists: {:#?}",
        second.output
    );
    assert!(
        second.output.iter().any(|l| l.contains("console")),
        "{:#?}",
        second.output
    );

    // The stream verifies offline against the checkpoint key as the HSM itself reports it.
    let management = TsbClient::builder(format!(
        "{}/partitions/management",
        second.url_after("TSB emulator")
    ))
    .api_keys(ApiKeys::all(vec![dev_api_key(state.path(), "management")]))
    .build()
    .expect("client");
    let key = management
        .key_attributes("kms.audit.checkpoint.v1", None)
        .await
        .expect("checkpoint key");
    let key_file = state.path().join("checkpoint-key.der");
    std::fs::write(
        &key_file,
        key.json.public_key.expect("an EC key has a public key"),
    )
    .expect("key file");
    let verified = std::process::Command::new(env!("CARGO_BIN_EXE_keymanager"))
        .args(["audit", "verify", "--strict", "--public-key"])
        .args([&key_file, &snapshot])
        .output()
        .expect("audit verify runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(verified.status.success(), "{report}");
    assert!(report.contains("pinned with --public-key"), "{report}");
}
