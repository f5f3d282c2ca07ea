//! `keymanager serve --config FILE` against a TSB emulator started by the test, the way production
//! runs against a real TSB: mutual TLS with a private CA, a different API key for every TSB
//! key group, secrets from files and from `KM_*` variables. Checks readiness, the setup token,
//! failures that name their cause (wrong API key, unknown key, unreadable secret file) and that no
//! secret is ever printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use km_testkit::{EmulatorFixture, TestPki};
use km_tsb::{ApiKeys, TsbClient};
use km_tsb_emulator::{ApiKeyGroups, ClientAuth, EmulatorConfig, PartitionConfig, TlsConfig};
use secrecy::SecretString;

use crate::support::{Process, wait_for_status};

const START: Duration = Duration::from_secs(60);
const PARTITION: &str = "management";

/// One API key per TSB key group, so a key used for the wrong group would be refused.
fn group_keys(tag: &str) -> ApiKeyGroups {
    let key = |group: &str| format!("{tag}-{group}-9d1c77f0e2b34a55");
    ApiKeyGroups {
        key_management: vec![key("km")],
        key_operation: vec![key("ko")],
        approver: vec![key("ap")],
        service: vec![key("sv")],
        approver_key_management: vec![key("akm")],
    }
}

/// An emulator with mTLS required and API keys per group, plus the files a deployment would have.
struct World {
    fixture: EmulatorFixture,
    pki: TestPki,
    keys: ApiKeyGroups,
    dir: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let pki = TestPki::new("serve").unwrap();
        let keys = group_keys("mgmt");
        let fixture = EmulatorFixture::start(EmulatorConfig {
            partitions: vec![PartitionConfig::new(PARTITION, keys.clone())],
            tls: Some(TlsConfig {
                cert_chain_pem: pki.server.certificate_pem.clone(),
                private_key_pem: pki.server.private_key_pem.clone(),
                client_ca_pem: Some(pki.ca_pem.clone()),
                client_auth: ClientAuth::Need,
            }),
            ..EmulatorConfig::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let client = pki.client("keymanager").unwrap();
        std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
        std::fs::write(dir.path().join("client.crt"), &client.certificate_pem).unwrap();
        std::fs::write(dir.path().join("client.key"), &client.private_key_pem).unwrap();
        World {
            fixture,
            pki,
            keys,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Every secret of the world, to prove none is printed.
    fn secrets(&self) -> Vec<String> {
        let keys = &self.keys;
        let mut all: Vec<String> = [
            &keys.key_management,
            &keys.key_operation,
            &keys.approver,
            &keys.service,
            &keys.approver_key_management,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        let key_pem = std::fs::read_to_string(self.path("client.key")).unwrap();
        // The base64 body of the client's private key, line by line.
        all.extend(
            key_pem
                .lines()
                .filter(|l| !l.starts_with("-----") && l.len() > 20)
                .map(str::to_owned),
        );
        all
    }

    /// A configuration with mTLS, the key-management and service keys from files, the other
    /// groups inline; `extra` is appended (later tables may add keys).
    fn config(&self, extra: &str) -> PathBuf {
        let km_file = self.write(
            "key-management.key",
            &format!("{}\n", self.keys.key_management[0]),
        );
        let sv_file = self.write("service.key", &self.keys.service[0]);
        let text = format!(
            r#"[server]
listen = "127.0.0.1:0"

[management]
tsb_url = "{url}"
ca_file = "{ca}"
client_cert_file = "{cert}"
client_key_file = "{key}"
timeout_secs = 10

[management.api_keys]
key_management_file = "{km_file}"
service_file = "{sv_file}"
key_operation = "{ko}"
approver = ["{ap}"]
approver_key_management = "{akm}"

[identity]
bcrypt_cost = 10

[audit]
stream = "file"
file = "{audit}"
{extra}"#,
            url = self.fixture.partition_url(PARTITION),
            ca = self.path("ca.pem").display(),
            cert = self.path("client.crt").display(),
            key = self.path("client.key").display(),
            km_file = km_file.display(),
            sv_file = sv_file.display(),
            ko = self.keys.key_operation[0],
            ap = self.keys.approver[0],
            akm = self.keys.approver_key_management[0],
            audit = self.path("audit.jsonl").display(),
        );
        self.write("keymanager.toml", &text)
    }

    /// A TSB client for the management partition with the real credentials (the test's view).
    fn management_client(&self) -> TsbClient {
        let identity = self.pki.client("test").unwrap();
        let group =
            |keys: &Vec<String>| keys.iter().map(|k| SecretString::from(k.clone())).collect();
        TsbClient::builder(self.fixture.partition_url(PARTITION))
            .root_ca_pem(self.pki.ca_pem.as_bytes())
            .client_identity_pem(
                identity.certificate_pem.as_bytes(),
                identity.private_key_pem.as_bytes(),
            )
            .api_keys(ApiKeys {
                key_management: group(&self.keys.key_management),
                key_operation: group(&self.keys.key_operation),
                approver: group(&self.keys.approver),
                service: group(&self.keys.service),
                approver_key_management: group(&self.keys.approver_key_management),
            })
            .build()
            .unwrap()
    }
}

fn serve(config: &Path, envs: &[(&str, &str)]) -> Process {
    Process::start_capturing_all(&["serve", "--config", config.to_str().unwrap()], envs)
}

/// Starts `serve` and waits for its summary; returns the process and its control-plane URL.
fn start_serving(config: &Path) -> (Process, String) {
    let mut process = serve(config, &[]);
    process.wait_for_line("keymanager is serving", START);
    let url = process.url_after("control plane");
    (process, url)
}

fn setup_token(process: &Process) -> Option<String> {
    process
        .output
        .iter()
        .find_map(|line| line.split("setup token:").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
}

fn assert_no_secret(world: &World, output: &str) {
    for secret in world.secrets() {
        assert!(!output.contains(&secret), "a secret was printed:\n{output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_over_mtls_with_per_group_api_keys_is_ready_and_prints_a_setup_token() {
    let world = World::new().await;
    let config = world.config("");
    let (process, url) = start_serving(&config);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let ready = wait_for_status(&format!("{url}/readyz"), 200, START).await;
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    wait_for_status(&format!("{url}/healthz"), 200, START).await;

    // A fresh installation: a one-time setup token on stderr.
    let token = setup_token(&process).expect("a fresh installation prints a setup token");
    assert!(token.len() >= 32, "{token}");
    // What serve wrote to the management partition, with the per-group keys over mTLS.
    let objects = world.management_client().list_data_objects().await.unwrap();
    assert!(
        objects.iter().any(|o| o == "kms.install.main"),
        "{objects:?}"
    );
    assert!(objects.iter().any(|o| o == "kms.setup.main"), "{objects:?}");

    // The audit stream goes to the configured file (created at start; events come with use cases).
    assert!(world.path("audit.jsonl").exists());

    // SIGTERM: graceful shutdown, exit status 0.
    let (status, output) = process.terminate(START);
    assert!(
        status.success(),
        "serve must exit 0 on SIGTERM: {status:?}\n{output}"
    );
    assert_no_secret(&world, &output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_terminates_tls_itself_when_configured() {
    let world = World::new().await;
    world.write("server.crt", &world.pki.server.certificate_pem);
    world.write("server.key", &world.pki.server.private_key_pem);
    let config = world.config(&format!(
        "[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        world.path("server.crt").display(),
        world.path("server.key").display()
    ));
    let (_process, url) = start_serving(&config);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let ca = reqwest::Certificate::from_pem(world.pki.ca_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let response = client.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // The console and the API are served over the same listener.
    let response = client
        .get(format!("{url}/api/v1/auth/setup"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["complete"], false, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_prints_effective_values_without_secrets() {
    let world = World::new().await;
    let config = world.config("");
    let bearer = world.write(
        "bearer.jwt",
        "eyJhbGciOiJIUzI1NiJ9.e30.c2VjcmV0LWJlYXJlci1zaWduYXR1cmU\n",
    );
    let process = Process::start_capturing_all(
        &[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--check-config",
        ],
        &[
            ("KM_MANAGEMENT__BEARER_TOKEN_FILE", bearer.to_str().unwrap()),
            ("KM_STATE__CACHE_TTL_SECS", "5"),
        ],
    );
    let (status, output) = process.wait_for_exit(START);
    assert!(status.success(), "{output}");
    assert!(output.contains("is valid"), "{output}");
    assert!(
        output.contains("management.api_keys.key_management = [redacted] (1 key)"),
        "{output}"
    );
    assert!(
        output.contains(
            "management.bearer_token = [redacted]   (from KM_MANAGEMENT__BEARER_TOKEN_FILE)"
        ),
        "{output}"
    );
    assert!(
        output.contains("state.cache_ttl_secs = 5   (from KM_STATE__CACHE_TTL_SECS)"),
        "{output}"
    );
    assert!(
        !output.contains("c2VjcmV0LWJlYXJlci1zaWduYXR1cmU"),
        "{output}"
    );
    assert_no_secret(&world, &output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_api_key_stops_the_start_naming_the_tsb_error() {
    let world = World::new().await;
    let config = world.config("");
    let wrong = "wrong-key-management-key-5e0f3a";
    // The key-management key from the environment overrides (and here, contradicts) the file.
    let process = Process::start_capturing_all(
        &["serve", "--config", config.to_str().unwrap()],
        &[("KM_MANAGEMENT__API_KEYS__KEY_MANAGEMENT", wrong)],
    );
    let (status, output) = process.wait_for_exit(START);
    assert!(!status.success(), "serve must fail: {output}");
    assert!(
        output.contains(
            "both management.api_keys.key_management and management.api_keys.key_management_file"
        ),
        "{output}"
    );

    // A file holding a wrong key: the TSB refuses it, and the error says so with the TSB's code.
    world.write("key-management.key", wrong);
    let text = std::fs::read_to_string(&config).unwrap();
    let km_file = world.path("key-management.key");
    let wrong_config = world.write(
        "wrong.toml",
        &text.replace(
            &format!("key_management_file = \"{}\"", km_file.display()),
            &format!("key_management = \"{wrong}\""),
        ),
    );
    let process = serve(&wrong_config, &[]);
    let (status, output) = process.wait_for_exit(START);
    assert!(
        !status.success(),
        "serve must fail with a wrong API key: {output}"
    );
    assert!(output.contains("management partition"), "{output}");
    assert!(
        output.contains("631") && output.contains("invalid.api.key"),
        "the TSB error is named: {output}"
    );
    assert!(!output.contains(wrong), "{output}");
    assert_no_secret(&world, &output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_mistakes_stop_the_start_naming_the_key() {
    let world = World::new().await;

    let config = world.config("checkpoint_evry = 10\n");
    let (status, output) = serve(&config, &[]).wait_for_exit(START);
    assert!(!status.success());
    assert!(
        output.contains("checkpoint_evry") && output.contains("[audit]"),
        "{output}"
    );

    let config = world.config("");
    let (status, output) =
        serve(&config, &[("KM_MANAGEMENT__TSB_ULR", "https://x")]).wait_for_exit(START);
    assert!(!status.success());
    assert!(
        output.contains("KM_MANAGEMENT__TSB_ULR") && output.contains("tsb_ulr"),
        "{output}"
    );

    let missing = world.path("no-such-secret");
    let (status, output) = serve(
        &config,
        &[(
            "KM_MANAGEMENT__BEARER_TOKEN_FILE",
            missing.to_str().unwrap(),
        )],
    )
    .wait_for_exit(START);
    assert!(!status.success());
    assert!(
        output.contains("management.bearer_token_file") && output.contains("no-such-secret"),
        "{output}"
    );

    let config = world.config("[identity]\n");
    let (status, output) = serve(&config, &[]).wait_for_exit(START);
    assert!(!status.success());
    assert!(
        output.contains("identity"),
        "duplicate table is a TOML error naming it: {output}"
    );

    let config = world.config("");
    let (status, output) =
        serve(&config, &[("KM_IDENTITY__BCRYPT_COST", "4")]).wait_for_exit(START);
    assert!(!status.success());
    assert!(
        output.contains("identity.bcrypt_cost") && output.contains("10 or more"),
        "{output}"
    );
    assert_no_secret(&world, &output);
}

/// A REST API client that keeps the session cookie and CSRF token of its last sign-in.
struct Api {
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
    csrf: Option<String>,
}

impl Api {
    fn new(control_plane: &str) -> Api {
        Api {
            base: format!("{control_plane}/api/v1"),
            http: reqwest::Client::new(),
            cookie: None,
            csrf: None,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("{}={cookie}", km_api::SESSION_COOKIE));
        }
        if let Some(csrf) = &self.csrf {
            request = request.header(km_api::CSRF_HEADER, csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// Calls and expects `status`; returns the JSON body (`null` when empty).
    async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        status: u16,
    ) -> serde_json::Value {
        let response = self.call(method.clone(), path, body).await;
        let got = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(got, status, "{method} {path}: {text}");
        if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    fn keep_session(&mut self, response: &reqwest::Response) {
        let prefix = format!("{}=", km_api::SESSION_COOKIE);
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(|value| value.strip_prefix(&prefix))
            .map(|value| value.split(';').next().unwrap().to_owned())
            .expect("a session cookie");
        self.cookie = Some(cookie);
    }

    /// Signs in with the password, and with a TOTP code of `totp` when the server asks for one.
    async fn sign_in(
        &mut self,
        username: &str,
        password: &str,
        totp: Option<&km_core::identity::TotpSecret>,
    ) -> serde_json::Value {
        self.cookie = None;
        self.csrf = None;
        let response = self
            .call(
                reqwest::Method::POST,
                "/auth/login",
                Some(serde_json::json!({ "username": username, "password": password })),
            )
            .await;
        assert_eq!(response.status().as_u16(), 200);
        let has_cookie = response.headers().get_all("set-cookie").iter().count() > 0;
        if has_cookie {
            self.keep_session(&response);
        }
        let body: serde_json::Value = response.json().await.unwrap();
        let session = if body["status"] == "second_factor_required" {
            let secret = totp.expect("the server asks for a second factor");
            let pending = body["second_factor"]["pending_token"]
                .as_str()
                .unwrap()
                .to_owned();
            let response = self
                .call(
                    reqwest::Method::POST,
                    "/auth/login/second-factor",
                    Some(serde_json::json!({ "pending_token": pending, "kind": "totp", "code": totp_code(secret, 30) })),
                )
                .await;
            assert_eq!(response.status().as_u16(), 200);
            self.keep_session(&response);
            response.json::<serde_json::Value>().await.unwrap()
        } else {
            assert!(
                totp.is_none(),
                "a user with TOTP signed in with the password alone: {body}"
            );
            body["session"].clone()
        };
        self.csrf = Some(session["csrf_token"].as_str().unwrap().to_owned());
        session
    }
}

/// The TOTP code for `secret`, `ahead` seconds from now (a later time step than any code used
/// before, since each step's code is accepted once).
fn totp_code(secret: &km_core::identity::TotpSecret, ahead: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    km_auth::TotpRsProvider::new()
        .code_at(secret, now + ahead)
        .unwrap()
        .expose_secret()
        .to_owned()
}

const ADMIN_PASSWORD: &str = "lantern meadow copper thistle";
const ALICE_PASSWORD: &str = "harbour pebble saffron kite";

/// Issue #3 must-show: restart keymanager (same emulator state) and users, TOTP and settings are
/// still there — with `serve` twice against one emulator, everything done through the REST API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_users_totp_and_settings_are_still_there() {
    use reqwest::Method;
    use serde_json::json;
    let world = World::new().await;
    let config = world.config("");

    let (first, url) = start_serving(&config);
    let token = setup_token(&first).expect("setup token");
    let mut api = Api::new(&url);
    api.expect(
        Method::POST,
        "/auth/setup",
        Some(json!({ "setup_token": token, "username": "admin", "password": ADMIN_PASSWORD })),
        201,
    )
    .await;
    api.sign_in("admin", ADMIN_PASSWORD, None).await;
    // A user on a tenant, a TOTP enrolment, changed settings.
    api.expect(
        Method::POST,
        "/tenants/acme/users",
        Some(json!({ "username": "alice", "password": ALICE_PASSWORD, "role": "user", "must_change_password": false })),
        201,
    )
    .await;
    let enrolment = api
        .expect(Method::POST, "/account/totp/enrolment", None, 201)
        .await;
    let secret = km_auth::TotpRsProvider::new()
        .secret_from_base32(enrolment["secret_base32"].as_str().unwrap())
        .unwrap();
    api.expect(
        Method::POST,
        "/account/totp/enrolment/confirm",
        Some(json!({ "code": totp_code(&secret, 0) })),
        200,
    )
    .await;
    let mut settings = api
        .expect(Method::GET, "/platform/settings", None, 200)
        .await;
    settings["session_idle_minutes"] = json!(45);
    settings["lockout_threshold"] = json!(7);
    api.expect(
        Method::PUT,
        "/platform/settings",
        Some(settings.clone()),
        200,
    )
    .await;

    let (status, output) = first.terminate(START);
    assert!(status.success(), "{output}");

    // Same emulator state, a new keymanager process.
    let (second, url) = start_serving(&config);
    assert_eq!(
        setup_token(&second),
        None,
        "setup stays complete: {:#?}",
        second.output
    );
    let mut api = Api::new(&url);
    // The admin's TOTP enrolment survived: the password alone is not enough.
    api.sign_in("admin", ADMIN_PASSWORD, Some(&secret)).await;
    let me = api.expect(Method::GET, "/account", None, 200).await;
    assert_eq!(me["account"]["totp_enrolled"], true, "{me}");
    let alice = api
        .expect(Method::GET, "/tenants/acme/users/alice", None, 200)
        .await;
    assert_eq!(alice["username"], "alice", "{alice}");
    assert_eq!(
        api.expect(Method::GET, "/platform/settings", None, 200)
            .await,
        settings
    );
    // And alice can still sign in with her password.
    let mut alice_api = Api::new(&url);
    alice_api.sign_in("alice", ALICE_PASSWORD, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_cloud_vault_keeps_an_onboarded_partitions_mtls_credentials() {
    use reqwest::Method;
    use serde_json::json;
    let world = World::new().await;
    let gcp = km_testkit::gcp_secret_manager::FakeSecretManager::start()
        .await
        .unwrap();
    let config = world.config(&format!(
        r#"
[partitions]
default_vault = "gcp-test"

[vaults.gcp-test]
backend = "gcp"
project = "{project}"
endpoint = "{endpoint}"
credentials = {{ method = "anonymous" }}
"#,
        project = gcp.project(),
        endpoint = gcp.endpoint(),
    ));
    let (process, url) = start_serving(&config);
    let token = setup_token(&process).expect("setup token");
    let mut api = Api::new(&url);
    api.expect(
        Method::POST,
        "/auth/setup",
        Some(json!({ "setup_token": token, "username": "admin", "password": ADMIN_PASSWORD })),
        201,
    )
    .await;
    api.sign_in("admin", ADMIN_PASSWORD, None).await;
    let vaults = api.expect(Method::GET, "/platform/vaults", None, 200).await;
    assert_eq!(
        vaults,
        json!([{"id": "gcp-test", "kind": "gcp", "default": true}, {"id": "hsm", "kind": "hsm", "default": false}])
    );

    // A tenant reached over mutual TLS with per-group API keys; its credentials go to the
    // default vault (Google Secret Manager, here its protocol fake driven by the official client).
    let tenant_client = world.pki.client("tenant").unwrap();
    let keys = &world.keys;
    let connection = json!({
        "endpoint": world.fixture.partition_url(PARTITION),
        "auth": "mtls",
        "ca_pem": world.pki.ca_pem,
        "credentials": {
            "client_certificate_pem": tenant_client.certificate_pem,
            "client_key_pem": tenant_client.private_key_pem,
            "api_keys": {
                "key_management": keys.key_management[0],
                "key_operation": keys.key_operation[0],
                "service": keys.service[0],
                "approver": keys.approver[0],
                "approver_key_management": keys.approver_key_management[0],
            }
        }
    });
    let onboarded = api
        .expect(
            Method::POST,
            "/platform/partitions",
            Some(json!({"id": "tenant", "display_name": "Tenant over mTLS", "connection": connection})),
            201,
        )
        .await;
    assert_eq!(onboarded["vault"], "gcp-test");
    assert_eq!(onboarded["auth"], "mtls");
    assert_eq!(gcp.secret_ids(), ["km-partition-tenant"]);
    let status = api
        .expect(Method::GET, "/tenants/tenant/status", None, 200)
        .await;
    assert!(
        status["version"]
            .as_str()
            .unwrap()
            .contains("keymanager-emulator")
    );

    let (exit, output) = process.terminate(START);
    assert!(exit.success(), "{output}");
    assert_no_secret(&world, &output);
    assert!(!output.contains(tenant_client.private_key_pem.lines().nth(1).unwrap()));
}
