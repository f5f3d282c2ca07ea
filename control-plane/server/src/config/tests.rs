use std::path::PathBuf;

use secrecy::ExposeSecret as _;

use super::*;

const SECRET: &str = "kEy-9f8e7d6c5b4a-very-secret";

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = Dir::new();
    let path = dir.file("keymanager.toml", text);
    Config::load(&path, &env(vars))
}

const MINIMAL: &str = "[management]\ntsb_url = \"https://tsb.example:8080\"\n";

#[test]
fn a_minimal_file_gets_the_defaults() {
    let config = load(MINIMAL, &[("HOSTNAME", "pod-7")]).unwrap();
    assert_eq!(config.server.listen, "0.0.0.0:8080".parse().unwrap());
    assert!(config.server.tls.is_none());
    assert_eq!(
        config.management.tsb_url.as_str(),
        "https://tsb.example:8080/"
    );
    assert_eq!(config.management.timeout, Duration::from_secs(30));
    assert_eq!(config.identity.bcrypt_cost, 12);
    assert_eq!(config.identity.second_factor, SecondFactorPolicy::Optional);
    assert_eq!(config.audit.stream, AuditStream::Stdout);
    assert_eq!(config.audit.checkpoint_every, 100);
    assert_eq!(config.state.cache_ttl_secs, 2);
    assert_eq!(config.state.replica, "pod-7");
}

#[test]
fn the_committed_example_fits_the_schema() {
    let text = include_str!("../../../../deploy/keymanager.example.toml");
    toml::from_str::<RawConfig>(text).unwrap();
}

#[test]
fn environment_overrides_the_file_key_by_key() {
    let text = format!("{MINIMAL}timeout_secs = 5\n[server]\nlisten = \"127.0.0.1:1\"\n");
    let config = load(
        &text,
        &[
            (
                "KM_MANAGEMENT__TSB_URL",
                "https://other:9000/partitions/mgmt",
            ),
            ("KM_SERVER__LISTEN", "127.0.0.1:2"),
            ("KM_IDENTITY__SECOND_FACTOR", "mandatory"),
            ("KM_MANAGEMENT__API_KEYS__SERVICE", SECRET),
            ("KM_MANAGEMENT__API_KEYS__KEY_MANAGEMENT", r#"["k1", "k2"]"#),
            ("OTHER_VARIABLE", "ignored"),
        ],
    )
    .unwrap();
    assert_eq!(
        config.management.tsb_url.as_str(),
        "https://other:9000/partitions/mgmt"
    );
    assert_eq!(
        config.management.timeout,
        Duration::from_secs(5),
        "file value kept"
    );
    assert_eq!(config.server.listen, "127.0.0.1:2".parse().unwrap());
    assert_eq!(config.identity.second_factor, SecondFactorPolicy::Mandatory);
    assert_eq!(config.management.api_keys.service.len(), 1);
    assert_eq!(
        config.management.api_keys.service[0].expose_secret(),
        SECRET
    );
    assert_eq!(config.management.api_keys.key_management.len(), 2);
    let summary = config.summary();
    assert!(
        summary.contains("(from KM_MANAGEMENT__TSB_URL)"),
        "{summary}"
    );
    assert!(
        summary.contains("(from KM_MANAGEMENT__API_KEYS__SERVICE)"),
        "{summary}"
    );
}

#[test]
fn unknown_keys_are_refused_naming_the_key() {
    let error = load(&format!("{MINIMAL}[server]\nlisen = \"x\"\n"), &[]).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("lisen") && text.contains("line 4") && text.contains("[server]"),
        "{text}"
    );

    let error = load(&format!("{MINIMAL}[serverr]\n"), &[]).unwrap_err();
    assert!(error.to_string().contains("serverr"), "{error}");

    let error = load(MINIMAL, &[("KM_MANAGEMENT__TSB_ULR", "https://x")]).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("KM_MANAGEMENT__TSB_ULR") && text.contains("tsb_ulr"),
        "{text}"
    );

    let error = load(MINIMAL, &[("KM_DEBUG__LEVEL", "1")]).unwrap_err();
    assert!(error.to_string().contains("KM_DEBUG__LEVEL"), "{error}");
    let error = load(MINIMAL, &[("KM_STATE_CACHE_TTL_SECS", "1")]).unwrap_err();
    assert!(
        error.to_string().contains("KM_STATE__CACHE_TTL_SECS"),
        "{error}"
    );
    // Other tools' KM_ variables (no `__`, no section name) are not ours.
    load(MINIMAL, &[("KM_SKIP_BROWSER_TESTS", "1")]).unwrap();
}

#[test]
fn file_secrets_are_read_at_load() {
    let dir = Dir::new();
    let bearer = dir.file("bearer", &format!("{SECRET}\n"));
    let keys = dir.file(
        "keys",
        &format!("# current first\n{SECRET}-new\n\n{SECRET}-old\n"),
    );
    let path = dir.file(
        "keymanager.toml",
        &format!(
            "{MINIMAL}bearer_token_file = {:?}\n[management.api_keys]\nkey_operation_file = {:?}\n",
            bearer.display().to_string(),
            keys.display().to_string()
        ),
    );
    let config = Config::load(&path, &[]).unwrap();
    assert_eq!(
        config
            .management
            .bearer_token
            .as_ref()
            .unwrap()
            .expose_secret(),
        SECRET
    );
    let ring: Vec<&str> = config
        .management
        .api_keys
        .key_operation
        .iter()
        .map(|k| k.expose_secret())
        .collect();
    assert_eq!(ring, [format!("{SECRET}-new"), format!("{SECRET}-old")]);

    // The same through the environment.
    let path = dir.file("plain.toml", MINIMAL);
    let config = Config::load(
        &path,
        &env(&[("KM_MANAGEMENT__BEARER_TOKEN_FILE", bearer.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(
        config
            .management
            .bearer_token
            .as_ref()
            .unwrap()
            .expose_secret(),
        SECRET
    );
}

#[test]
fn unusable_secret_files_are_named() {
    let dir = Dir::new();
    let missing = dir.0.path().join("no-such-secret");
    let error = load(
        MINIMAL,
        &[(
            "KM_MANAGEMENT__BEARER_TOKEN_FILE",
            missing.to_str().unwrap(),
        )],
    )
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("management.bearer_token_file") && text.contains("no-such-secret"),
        "{text}"
    );

    let empty = dir.file("empty", "\n");
    let error = load(
        MINIMAL,
        &[(
            "KM_MANAGEMENT__API_KEYS__SERVICE_FILE",
            empty.to_str().unwrap(),
        )],
    )
    .unwrap_err();
    assert!(error.to_string().contains("empty"), "{error}");

    let not_pem = dir.file("cert.pem", "hello");
    let key = dir.file("key.pem", "hello");
    let error = load(
        MINIMAL,
        &[
            ("KM_MANAGEMENT__CLIENT_CERT_FILE", not_pem.to_str().unwrap()),
            ("KM_MANAGEMENT__CLIENT_KEY_FILE", key.to_str().unwrap()),
        ],
    )
    .unwrap_err();
    assert!(error.to_string().contains("cert.pem"), "{error}");
}

#[test]
fn a_secret_and_its_file_together_are_refused() {
    let dir = Dir::new();
    let bearer = dir.file("bearer", SECRET);
    let error = load(
        &format!("{MINIMAL}bearer_token = \"{SECRET}\"\n"),
        &[("KM_MANAGEMENT__BEARER_TOKEN_FILE", bearer.to_str().unwrap())],
    )
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("bearer_token_file") && text.contains("keep one"),
        "{text}"
    );
    assert!(!text.contains(SECRET), "{text}");
}

#[test]
fn validation_says_what_to_change() {
    let cases: &[(&str, &str)] = &[
        ("[management]\n", "management.tsb_url: is required"),
        (
            "[management]\ntsb_url = \"ftp://x\"\n",
            "not an http(s) URL",
        ),
        (
            &format!("{MINIMAL}[identity]\nbcrypt_cost = 4\n"),
            "use 10 or more",
        ),
        (
            &format!("{MINIMAL}[identity]\nsecond_factor = \"always\"\n"),
            "unknown variant",
        ),
        (
            &format!("{MINIMAL}[audit]\nstream = \"file\"\n"),
            "audit.file: is required",
        ),
        (
            &format!("{MINIMAL}[audit]\nfile = \"/x\"\n"),
            "only used with stream = \"file\"",
        ),
        (
            &format!("{MINIMAL}[server]\nlisten = \"localhost\"\n"),
            "server.listen",
        ),
        (
            &format!("{MINIMAL}[server.tls]\ncert_file = \"/x\"\n"),
            "needs both cert_file and key_file",
        ),
        (&format!("{MINIMAL}timeout_secs = 0\n"), "use 1 to 600"),
        (
            &format!("{MINIMAL}client_cert_file = \"/x\"\n"),
            "client_key_file: is required",
        ),
    ];
    for (text, expected) in cases {
        let error = load(text, &[]).unwrap_err().to_string();
        assert!(error.contains(expected), "{text:?} → {error}");
    }
}

#[test]
fn secrets_never_show_in_debug_summary_or_errors() {
    let text = format!(
        "{MINIMAL}bearer_token = \"{SECRET}\"\n[management.api_keys]\nkey_management = \"{SECRET}\"\nservice = [\"{SECRET}\", \"{SECRET}2\"]\n"
    );
    let config = load(&text, &[]).unwrap();
    let debug = format!("{config:?}");
    let summary = config.summary();
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(!summary.contains(SECRET), "{summary}");
    assert!(
        summary.contains("management.api_keys.service = [redacted] (2 keys"),
        "{summary}"
    );
    assert!(
        summary.contains("management.bearer_token = [redacted]"),
        "{summary}"
    );

    // A typo on a line holding a secret: the error names the key, not the value.
    let error = load(&format!("{MINIMAL}bearer_tokn = \"{SECRET}\"\n"), &[]).unwrap_err();
    assert!(error.to_string().contains("bearer_tokn"), "{error}");
    assert!(!error.to_string().contains(SECRET), "{error}");
    // A numeric secret of the wrong type is not echoed either.
    let error = load(&format!("{MINIMAL}bearer_token = 123456789\n"), &[]).unwrap_err();
    assert!(!error.to_string().contains("123456789"), "{error}");
    let error = load(MINIMAL, &[("KM_MANAGEMENT__BEARER_TOKN", SECRET)]).unwrap_err();
    assert!(!error.to_string().contains(SECRET), "{error}");
}

#[test]
fn cloud_vaults_are_configured_by_id_and_one_can_be_the_default() {
    let text = format!(
        "{MINIMAL}
[partitions]
default_vault = \"azure-prod\"

[vaults.azure-prod]
backend = \"azure\"
vault_url = \"https://contoso-km.vault.azure.net/\"
auth = {{ method = \"client_secret\", tenant_id = \"t-1\", client_id = \"c-1\", client_secret = \"{SECRET}\" }}

[vaults.gcp-eu]
backend = \"gcp\"
project = \"acme-keymanager\"
credentials = {{ method = \"application_default\" }}
"
    );
    let config = load(&text, &[]).unwrap();
    assert_eq!(config.default_vault.as_deref(), Some("azure-prod"));
    let backends: Vec<(&str, &str)> = config
        .vaults
        .iter()
        .map(|(id, spec)| (id.as_str(), spec.backend()))
        .collect();
    assert_eq!(backends, [("azure-prod", "azure"), ("gcp-eu", "gcp")]);
    let summary = config.summary();
    assert!(
        summary.contains("vaults.azure-prod.backend = \"azure\""),
        "{summary}"
    );
    assert!(
        summary.contains("partitions.default_vault = \"azure-prod\""),
        "{summary}"
    );
    assert!(!summary.contains(SECRET) && !format!("{config:?}").contains(SECRET));
}

#[test]
fn vault_mistakes_are_refused_naming_the_setting() {
    let reserved = format!(
        "{MINIMAL}[vaults.hsm]\nbackend = \"gcp\"\nproject = \"p\"\ncredentials = {{ method = \"anonymous\" }}\n"
    );
    let error = load(&reserved, &[]).unwrap_err().to_string();
    assert!(
        error.contains("vaults.hsm") && error.contains("built-in"),
        "{error}"
    );

    let unknown_default = format!("{MINIMAL}[partitions]\ndefault_vault = \"nowhere\"\n");
    let error = load(&unknown_default, &[]).unwrap_err().to_string();
    assert!(
        error.contains("partitions.default_vault") && error.contains("nowhere"),
        "{error}"
    );

    let typo = format!(
        "{MINIMAL}[vaults.gcp]\nbackend = \"gcp\"\nproject = \"p\"\ncredentials = {{ method = \"anonymous\" }}\nprojet = \"x\"\n"
    );
    let error = load(&typo, &[]).unwrap_err().to_string();
    assert!(error.contains("projet"), "{error}");

    let backend = format!("{MINIMAL}[vaults.x]\nbackend = \"vault\"\n");
    assert!(load(&backend, &[]).is_err());
}

#[test]
fn insecure_webhooks_are_off_unless_the_file_or_the_environment_allows_them() {
    let config = load(MINIMAL, &[]).unwrap();
    assert!(!config.notifications.allow_insecure_webhooks);
    assert!(!config.notification_config().allow_insecure_webhooks);
    assert!(
        config
            .summary()
            .contains("notifications.allow_insecure_webhooks = false"),
        "{}",
        config.summary()
    );

    let file = format!("{MINIMAL}[notifications]\nallow_insecure_webhooks = true\n");
    assert!(
        load(&file, &[])
            .unwrap()
            .notification_config()
            .allow_insecure_webhooks
    );

    let config = load(
        MINIMAL,
        &[("KM_NOTIFICATIONS__ALLOW_INSECURE_WEBHOOKS", "true")],
    )
    .unwrap();
    assert!(config.notifications.allow_insecure_webhooks);
    assert!(
        config
            .summary()
            .contains("(from KM_NOTIFICATIONS__ALLOW_INSECURE_WEBHOOKS)"),
        "{}",
        config.summary()
    );

    let error = load(
        MINIMAL,
        &[("KM_NOTIFICATIONS__ALLOW_INSECURE_WEBHOOKS", "sometimes")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("KM_NOTIFICATIONS__ALLOW_INSECURE_WEBHOOKS"),
        "{error}"
    );
    let error = load(
        &format!("{MINIMAL}[notifications]\nallow_http = true\n"),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("allow_http"), "{error}");
    // A single underscore after the section is a typo, not another tool's variable.
    let error = load(
        MINIMAL,
        &[("KM_NOTIFICATIONS_ALLOW_INSECURE_WEBHOOKS", "true")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("KM_NOTIFICATIONS__ALLOW_INSECURE_WEBHOOKS"),
        "{error}"
    );
}

#[test]
fn key_inventory_tunables_have_defaults_bounds_and_env_overrides() {
    let config = load(MINIMAL, &[]).unwrap();
    assert_eq!(config.keys, km_core::KeyServiceConfig::default());
    assert!(
        config
            .summary()
            .contains("keys.inventory_recheck_secs = 300"),
        "{}",
        config.summary()
    );

    let file = format!(
        "{MINIMAL}[keys]\ninventory_ttl_secs = 60\ninventory_recheck_secs = 900\ninventory_concurrency = 4\n"
    );
    let config = load(&file, &[("KM_KEYS__INVENTORY_CONCURRENCY", "32")]).unwrap();
    assert_eq!(config.keys.inventory_ttl_secs, 60);
    assert_eq!(config.keys.inventory_recheck_secs, 900);
    assert_eq!(
        config.keys.inventory_concurrency, 32,
        "the environment wins"
    );
    assert!(
        config
            .summary()
            .contains("(from KM_KEYS__INVENTORY_CONCURRENCY)"),
        "{}",
        config.summary()
    );

    // A TTL above the default recheck age raises the recheck age with it.
    let file = format!("{MINIMAL}[keys]\ninventory_ttl_secs = 600\n");
    assert_eq!(load(&file, &[]).unwrap().keys.inventory_recheck_secs, 600);

    for (body, key) in [
        ("inventory_ttl_secs = 1", "keys.inventory_ttl_secs"),
        ("inventory_recheck_secs = 10", "keys.inventory_recheck_secs"),
        ("inventory_concurrency = 0", "keys.inventory_concurrency"),
        ("inventory_concurrency = 5000", "keys.inventory_concurrency"),
    ] {
        let error = load(&format!("{MINIMAL}[keys]\n{body}\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains(key), "{body}: {error}");
    }
    assert!(load(&format!("{MINIMAL}[keys]\nttl = 5\n"), &[]).is_err());
}
