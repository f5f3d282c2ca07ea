//! Managed-identity sign-in through the real `ManagedIdentityCredential`, against the fake's
//! App Service endpoint.
//!
//! The SDK picks the App Service flavour when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set
//! in the process environment, and `std::env::set_var` is `unsafe` in edition 2024 (the
//! workspace forbids `unsafe`). So this test binary (`harness = false`) starts the fake, then runs
//! itself as a child process with those variables set; the child drives the vault contract and
//! the user-assigned cases and reports through its exit status.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use km_core::{SecretVault, VaultError};
use km_testkit::azure_key_vault::FakeKeyVault;
use km_vault_azure::{AzureAuth, AzureKeyVault, AzureVaultConfig};

const TEST_NAME: &str = "managed_identity_via_the_app_service_endpoint";
const CHILD: &str = "KM_TEST_AZURE_MI_CHILD";
const VAULT_URL: &str = "KM_TEST_AZURE_VAULT_URL";
const CA_PEM_FILE: &str = "KM_TEST_AZURE_CA_PEM_FILE";
const USER_ASSIGNED_ID: &str = "KM_TEST_AZURE_MI_CLIENT_ID";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{TEST_NAME}: test");
        return ExitCode::SUCCESS;
    }
    if !selected(&args) {
        println!(
            "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out\n"
        );
        return ExitCode::SUCCESS;
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::var_os(CHILD).is_some() {
        match runtime.block_on(child()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("child failed: {e:#}");
                ExitCode::FAILURE
            }
        }
    } else {
        println!("\nrunning 1 test");
        runtime.block_on(parent());
        println!(
            "test {TEST_NAME} ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
        );
        ExitCode::SUCCESS
    }
}

/// Whether libtest-style arguments (filters, `--exact`, `--skip`, `--ignored`) select this test.
fn selected(args: &[String]) -> bool {
    const WITH_VALUE: &[&str] = &[
        "--color",
        "--format",
        "--test-threads",
        "--logfile",
        "--shuffle-seed",
        "-Z",
    ];
    let exact = args.iter().any(|a| a == "--exact");
    let matches = |filter: &str| {
        if exact {
            filter == TEST_NAME
        } else {
            TEST_NAME.contains(filter)
        }
    };
    let mut filters = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // This test is not ignored.
            "--ignored" => return false,
            "--skip" => {
                if args.next().is_some_and(|f| matches(f)) {
                    return false;
                }
            }
            flag if WITH_VALUE.contains(&flag) => {
                args.next();
            }
            flag if flag.starts_with('-') => {}
            filter => filters.push(filter),
        }
    }
    filters.is_empty() || filters.into_iter().any(matches)
}

/// Starts the fake and runs the child with the App Service managed-identity environment.
async fn parent() {
    km_testkit::install_crypto_provider();
    let fake = FakeKeyVault::start().await.unwrap();
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    ca_file.write_all(fake.ca_pem().as_bytes()).unwrap();

    let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
    command
        .arg("--exact")
        .arg(TEST_NAME)
        .env(CHILD, "1")
        .env("IDENTITY_ENDPOINT", fake.identity_endpoint())
        .env("IDENTITY_HEADER", fake.identity_header())
        .env(VAULT_URL, fake.vault_url().as_str())
        .env(CA_PEM_FILE, ca_file.path())
        .env(USER_ASSIGNED_ID, fake.managed_identity_client_id())
        // Other managed-identity flavours the SDK would prefer.
        .env_remove("IDENTITY_SERVER_THUMBPRINT")
        .env_remove("IMDS_ENDPOINT")
        .env_remove("MSI_ENDPOINT")
        .env_remove("MSI_SECRET")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the child did not finish within 120 s")
        .unwrap();
    assert!(
        output.status.success(),
        "child failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    let requests = fake.requests();
    let identity_calls: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/msi/token")
        .collect();
    // System-assigned, user-assigned, and the refused unknown user-assigned identity.
    assert!(identity_calls.len() >= 3, "{identity_calls:?}");
    assert!(
        identity_calls
            .iter()
            .any(|r| r.status == 200 && !r.query.contains("client_id"))
    );
    assert!(identity_calls.iter().any(|r| {
        r.status == 200
            && r.query
                .contains(&format!("client_id={}", fake.managed_identity_client_id()))
    }));
    assert!(identity_calls.iter().any(|r| r.status == 400));
    assert!(
        requests.iter().all(|r| !r.path.contains("oauth2")),
        "a managed identity must not use the client-credentials endpoint"
    );
}

/// In the child: managed identity end to end.
async fn child() -> anyhow::Result<()> {
    km_testkit::install_crypto_provider();
    let config = |client_id: Option<String>| -> anyhow::Result<AzureVaultConfig> {
        let mut config = AzureVaultConfig::new(
            std::env::var(VAULT_URL)?.parse()?,
            AzureAuth::ManagedIdentity { client_id },
        );
        config.ca_pem_file = Some(std::env::var(CA_PEM_FILE)?.into());
        config.verify_challenge_resource = false;
        Ok(config)
    };

    // System-assigned identity: the whole contract.
    let vault = AzureKeyVault::connect(&config(None)?).await?;
    km_testkit::vault_contract::run(&vault, "azure-mi").await?;

    // A user-assigned identity the host has.
    let vault = AzureKeyVault::connect(&config(Some(std::env::var(USER_ASSIGNED_ID)?))?).await?;
    vault.check().await?;

    // A user-assigned identity the host does not have.
    let vault = AzureKeyVault::connect(&config(Some("not-assigned-here".to_owned()))?).await?;
    match vault.check().await {
        Err(VaultError::Denied { detail, .. })
            if detail.contains("managed identity") && detail.contains("not been assigned") =>
        {
            Ok(())
        }
        other => anyhow::bail!("expected Denied for an unknown identity, got {other:?}"),
    }
}
