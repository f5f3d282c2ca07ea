//! Starting the real OpenID Connect provider of `tests/oidc-provider` (panva's `oidc-provider`
//! on Node.js) for a test, and signing in through its development login/consent pages without a
//! browser.
//!
//! Needs `node` on the PATH and `npm ci` run once in `tests/oidc-provider`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use url::Url;

/// How long the provider may take to print its ready line.
const READY_DEADLINE: Duration = Duration::from_secs(30);
const READY_PREFIX: &str = "oidc-provider listening on ";

/// Client id of [`OidcProviderConfig::standard`].
pub const CLIENT_ID: &str = "keymanager";
/// Client secret of [`OidcProviderConfig::standard`].
pub const CLIENT_SECRET: &str = "keymanager-test-secret";
/// Redirect URI registered by [`OidcProviderConfig::standard`] (never contacted: [`sign_in`]
/// stops at the redirect to it).
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/auth/sso/test/callback";

/// A client registered at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OidcClientConfig {
    /// OAuth2 client id.
    pub client_id: String,
    /// OAuth2 client secret.
    pub client_secret: String,
    /// Allowed redirect URIs.
    pub redirect_uris: Vec<String>,
    /// `client_secret_basic` (the provider script's default) or `client_secret_post`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
}

/// The provider's configuration, written as JSON for `provider.mjs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OidcProviderConfig {
    /// Listen port on 127.0.0.1 (0 = pick one).
    pub port: u16,
    /// Issuer URL override (default `http://127.0.0.1:<port>`), for a proxy in front.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Registered clients.
    pub clients: Vec<OidcClientConfig>,
    /// Accounts: login → claims (`name`, `email`, `preferred_username`, `groups`, `roles`, any
    /// other JSON). Unknown logins sign in with only a `sub`.
    pub accounts: BTreeMap<String, Value>,
    /// Private signing JWKs (`{"keys":[...]}`); `None` = a fresh RSA key at every start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// `false`: the ID token carries profile, email, groups and roles; `true`: only the
    /// userinfo endpoint does (oidc-provider's default behaviour).
    pub conform_id_token_claims: bool,
}

impl OidcProviderConfig {
    /// One client ([`CLIENT_ID`], [`CLIENT_SECRET`], [`REDIRECT_URI`]) and three accounts:
    /// - `alice`: groups `km-admins`, `km-operators`; roles `key-admin`; `realm_access.roles`
    ///   `realm-admin` (Keycloak shape);
    /// - `bob`: group `km-auditors`, no roles;
    /// - `carol`: Entra ID group overage (`_claim_names.groups` + `_claim_sources`, no groups).
    pub fn standard() -> Self {
        let mut accounts = BTreeMap::new();
        accounts.insert(
            "alice".to_owned(),
            json!({
                "name": "Alice Example",
                "email": "alice@example.test",
                "email_verified": true,
                "preferred_username": "alice",
                "groups": ["km-admins", "km-operators"],
                "roles": ["key-admin"],
                "realm_access": {"roles": ["realm-admin"]}
            }),
        );
        accounts.insert(
            "bob".to_owned(),
            json!({
                "name": "Bob Example",
                "email": "bob@example.test",
                "preferred_username": "bob",
                "groups": ["km-auditors"]
            }),
        );
        accounts.insert(
            "carol".to_owned(),
            json!({
                "name": "Carol Example",
                "preferred_username": "carol@example.test",
                "_claim_names": {"groups": "src1"},
                "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/carol/getMemberObjects"}}
            }),
        );
        Self {
            port: 0,
            issuer: None,
            clients: vec![OidcClientConfig {
                client_id: CLIENT_ID.to_owned(),
                client_secret: CLIENT_SECRET.to_owned(),
                redirect_uris: vec![REDIRECT_URI.to_owned()],
                token_endpoint_auth_method: None,
            }],
            accounts,
            jwks: None,
            conform_id_token_claims: false,
        }
    }
}

/// The `tests/oidc-provider` directory, found by walking up from this crate's manifest dir.
fn project_dir() -> anyhow::Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in manifest.ancestors() {
        let candidate = dir.join("tests").join("oidc-provider");
        if candidate.join("provider.mjs").is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "tests/oidc-provider/provider.mjs not found above {}",
        manifest.display()
    )
}

/// A running `node tests/oidc-provider/provider.mjs`, killed on drop.
#[derive(Debug)]
pub struct OidcProvider {
    child: Option<Child>,
    issuer: String,
    port: u16,
    config: OidcProviderConfig,
    config_dir: tempfile::TempDir,
    log: Arc<Mutex<String>>,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

impl OidcProvider {
    /// Starts the provider with `config` and waits (30 s at most) for its ready line.
    pub async fn start(config: OidcProviderConfig) -> anyhow::Result<Self> {
        let config_dir = tempfile::tempdir()?;
        let log = Arc::new(Mutex::new(String::new()));
        let (child, listen) = spawn(&config, config_dir.path(), &log).await?;
        let port = Url::parse(&listen)?
            .port()
            .context("the ready line has no port")?;
        let issuer = config.issuer.clone().unwrap_or(listen);
        Ok(Self {
            child: Some(child),
            issuer,
            port,
            config,
            config_dir,
            log,
        })
    }

    /// The provider's issuer URL (`http://127.0.0.1:<port>` unless overridden).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port the provider listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The configuration it runs with (after a restart: with the port fixed and the keys cleared).
    pub fn config(&self) -> &OidcProviderConfig {
        &self.config
    }

    /// What the provider wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Stops the provider and starts it again on the same port and issuer with a freshly
    /// generated signing key (all sessions, codes and grants are gone; clients and accounts
    /// stay), as a provider rotating its keys would look to a relying party.
    pub async fn restart_with_rotated_keys(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
        self.config.port = self.port;
        self.config.jwks = None;
        let (child, _) = spawn(&self.config, self.config_dir.path(), &self.log).await?;
        self.child = Some(child);
        Ok(())
    }
}

async fn spawn(
    config: &OidcProviderConfig,
    dir: &Path,
    log: &Arc<Mutex<String>>,
) -> anyhow::Result<(Child, String)> {
    let project = project_dir()?;
    if !project.join("node_modules").join("oidc-provider").is_dir() {
        bail!(
            "{}/node_modules is missing: run `npm ci` in tests/oidc-provider",
            project.display()
        );
    }
    let config_path = dir.join("provider-config.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(config)?)?;
    let mut child = Command::new("node")
        .arg(project.join("provider.mjs"))
        .arg(&config_path)
        .current_dir(&project)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting `node` (is Node.js installed?)")?;
    if let Some(stderr) = child.stderr.take() {
        let log = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut log) = log.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
    }
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(READY_DEADLINE, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.strip_prefix(READY_PREFIX) {
                return Ok::<_, std::io::Error>(Some(url.trim().to_owned()));
            }
        }
        Ok(None)
    })
    .await;
    let stderr_so_far = || log.lock().map(|l| l.clone()).unwrap_or_default();
    let listen = match ready {
        Ok(Ok(Some(listen))) => listen,
        Ok(Ok(None)) => {
            // Give the stderr reader a moment to collect the error.
            tokio::time::sleep(Duration::from_millis(200)).await;
            bail!(
                "the OIDC provider exited before it was ready; stderr:\n{}",
                stderr_so_far()
            )
        }
        Ok(Err(e)) => bail!("reading the OIDC provider's output: {e}"),
        Err(_) => {
            let _ = child.start_kill();
            bail!(
                "the OIDC provider was not ready within {READY_DEADLINE:?}; stderr:\n{}",
                stderr_so_far()
            )
        }
    };
    // Keep draining stdout so the provider never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, listen))
}

/// Cookies by (name, path), as a browser would keep them for one host.
#[derive(Debug, Default)]
struct CookieJar {
    cookies: HashMap<(String, String), String>,
}

impl CookieJar {
    fn store(&mut self, headers: &reqwest::header::HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
                continue;
            };
            let mut path = "/".to_owned();
            let mut expired = false;
            for attribute in parts {
                let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
                match key.trim().to_ascii_lowercase().as_str() {
                    "path" => path = val.trim().to_owned(),
                    "max-age" => {
                        expired |= val.trim().starts_with('0') || val.trim().starts_with('-')
                    }
                    "expires" => expired |= val.contains("1970"),
                    _ => {}
                }
            }
            let key = (name.trim().to_owned(), path);
            if expired {
                self.cookies.remove(&key);
            } else {
                self.cookies.insert(key, value.trim().to_owned());
            }
        }
    }

    fn header_for(&self, url: &Url) -> Option<String> {
        let path = url.path();
        let matching: Vec<String> = self
            .cookies
            .iter()
            .filter(|((_, cookie_path), _)| {
                path == cookie_path
                    || (path.starts_with(cookie_path.as_str())
                        && (cookie_path.ends_with('/')
                            || path[cookie_path.len()..].starts_with('/')))
            })
            .map(|((name, _), value)| format!("{name}={value}"))
            .collect();
        (!matching.is_empty()).then(|| matching.join("; "))
    }
}

/// The `action` of the first form on an HTML page.
fn form_action(html: &str) -> Option<String> {
    let start = html.find("<form")?;
    let rest = &html[start..];
    let at = rest.find("action=\"")? + "action=\"".len();
    let end = rest[at..].find('"')?;
    Some(rest[at..at + end].replace("&amp;", "&"))
}

/// Plays the browser through oidc-provider's devInteractions: opens `authorization_url`, signs
/// in as `login` (any password), approves the consent page and returns the URL the provider
/// finally redirects to under `redirect_uri` (with `code` and `state`, or `error`). Follows
/// redirects itself and keeps the provider's cookies.
pub async fn sign_in(
    authorization_url: &str,
    login: &str,
    redirect_uri: &str,
) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut jar = CookieJar::default();
    let mut url = Url::parse(authorization_url).context("the authorization URL")?;
    let mut form: Option<Vec<(&str, &str)>> = None;
    for _ in 0..20 {
        let mut request = match form.take() {
            Some(fields) => client
                .post(url.clone())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(fields)
                        .finish(),
                ),
            None => client.get(url.clone()),
        };
        if let Some(cookies) = jar.header_for(&url) {
            request = request.header(COOKIE, cookies);
        }
        let response = request.send().await.with_context(|| format!("{url}"))?;
        jar.store(response.headers());
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .context("a redirect without Location")?;
            let next = url.join(location)?;
            if next.as_str().starts_with(redirect_uri) {
                return Ok(next.to_string());
            }
            url = next;
            continue;
        }
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("HTTP {status} from {url}: {body}");
        }
        let action = form_action(&body).with_context(|| format!("no form on {url}: {body}"))?;
        form = Some(if body.contains("name=\"prompt\" value=\"login\"") {
            vec![("prompt", "login"), ("login", login), ("password", "any")]
        } else if body.contains("name=\"prompt\" value=\"consent\"") {
            vec![("prompt", "consent")]
        } else {
            bail!("an unexpected page at {url}: {body}");
        });
        url = url.join(&action)?;
    }
    bail!("sign-in did not reach {redirect_uri} within 20 steps")
}

/// `code` and `state` of a callback URL (fails if the provider sent `error=` instead).
pub fn code_and_state(callback_url: &str) -> anyhow::Result<(String, String)> {
    let url = Url::parse(callback_url)?;
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    if let Some(error) = q.get("error") {
        bail!(
            "the provider answered error={error} ({})",
            q.get("error_description").map(String::as_str).unwrap_or("")
        );
    }
    match (q.get("code"), q.get("state")) {
        (Some(code), Some(state)) => Ok((code.clone(), state.clone())),
        _ => bail!("no code/state in {callback_url}"),
    }
}
