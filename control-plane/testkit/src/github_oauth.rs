//! A protocol-level fake of GitHub's OAuth app flow and the REST endpoints keymanager's GitHub
//! sign-in reads, for driving km-auth's relying party in tests (no GitHub is reachable here).
//!
//! | What | HTTP |
//! |---|---|
//! | authorize (auto-approves) | `GET /login/oauth/authorize?client_id&redirect_uri&scope&state&code_challenge&code_challenge_method[&login]` → `302 <redirect_uri>?code=..&state=..` |
//! | exchange the code | `POST /login/oauth/access_token` (form: `client_id`, `client_secret`, `code`, `redirect_uri`, `code_verifier`) |
//! | the user | `GET /user` |
//! | organisation memberships | `GET /user/orgs?per_page&page` |
//! | team memberships | `GET /user/teams?per_page&page` |
//!
//! Like GitHub it answers token errors with **HTTP 200** and `{"error": "...",
//! "error_description": "...", "error_uri": "..."}` (`incorrect_client_credentials`,
//! `bad_verification_code`, `redirect_uri_mismatch`), answers form-encoded unless the client
//! sends `Accept: application/json`, makes codes single use, checks the PKCE S256 verifier when
//! a challenge was sent, accepts `Authorization: Bearer <token>` or `token <token>` on the API
//! (`401 {"message":"Bad credentials"}` otherwise), and paginates lists with `per_page` (default
//! 30, max 100; lower with [`GithubFakeConfig::max_page_size`]) and `page`, with a
//! `Link: <...>; rel="next", <...>; rel="last"` header when there are more pages.
//!
//! The person signing in is chosen by the fake-only `login` query parameter of the authorization
//! URL (see [`FakeGithub::approve`]) or [`GithubFakeConfig::default_login`]; with neither, or an
//! unknown login, it redirects with `error=access_denied`. One server serves both the web and
//! the API paths, so a provider's `issuer_url` and `api_url` are both [`FakeGithub::base_url`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use poem::http::{Method, StatusCode, header};
use poem::listener::TcpAcceptor;
use poem::web::Data;
use poem::{Body, EndpointExt as _, Request, Response, handler};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

/// A team membership of a [`GithubUser`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubTeam {
    /// The organisation's login.
    pub org: String,
    /// The team's slug.
    pub slug: String,
}

/// A GitHub account the fake knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubUser {
    /// Numeric user id (the stable subject).
    pub id: u64,
    /// Login name.
    pub login: String,
    /// Display name.
    pub name: Option<String>,
    /// Public email.
    pub email: Option<String>,
    /// Organisation logins the user belongs to.
    pub orgs: Vec<String>,
    /// Team memberships.
    pub teams: Vec<GithubTeam>,
}

/// What the fake accepts and whom it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubFakeConfig {
    /// The OAuth app's client id.
    pub client_id: String,
    /// The OAuth app's client secret.
    pub client_secret: String,
    /// Known accounts.
    pub users: Vec<GithubUser>,
    /// Who signs in when the authorization URL has no `login` parameter.
    pub default_login: Option<String>,
    /// Upper bound on `per_page` (GitHub's is 100); lower it to force pagination.
    pub max_page_size: usize,
}

/// Client id of [`GithubFakeConfig::example`].
pub const EXAMPLE_CLIENT_ID: &str = "Iv1.keymanager-test";
/// Client secret of [`GithubFakeConfig::example`].
pub const EXAMPLE_CLIENT_SECRET: &str = "github-test-secret";

impl GithubFakeConfig {
    /// An app ([`EXAMPLE_CLIENT_ID`], [`EXAMPLE_CLIENT_SECRET`]) with two accounts:
    /// `octocat` (id 583231; orgs `acme` and `widgets`; 5 teams in `acme`: `platform`, `security`,
    /// `sre`, `dba`, `oncall`, plus `widgets/admins`) and `hubot` (id 7; no memberships).
    /// Pages are capped at 2 items so the team and org lists take several pages.
    pub fn example() -> Self {
        let acme = |slug: &str| GithubTeam {
            org: "acme".into(),
            slug: slug.into(),
        };
        Self {
            client_id: EXAMPLE_CLIENT_ID.into(),
            client_secret: EXAMPLE_CLIENT_SECRET.into(),
            users: vec![
                GithubUser {
                    id: 583231,
                    login: "octocat".into(),
                    name: Some("The Octocat".into()),
                    email: Some("octocat@github.example".into()),
                    orgs: vec!["acme".into(), "widgets".into()],
                    teams: vec![
                        acme("platform"),
                        acme("security"),
                        acme("sre"),
                        acme("dba"),
                        acme("oncall"),
                        GithubTeam {
                            org: "widgets".into(),
                            slug: "admins".into(),
                        },
                    ],
                },
                GithubUser {
                    id: 7,
                    login: "hubot".into(),
                    name: None,
                    email: None,
                    orgs: vec![],
                    teams: vec![],
                },
            ],
            default_login: None,
            max_page_size: 2,
        }
    }
}

#[derive(Debug)]
struct PendingCode {
    client_id: String,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    login: String,
}

#[derive(Debug, Default)]
struct State {
    codes: HashMap<String, PendingCode>,
    tokens: HashMap<String, String>,
    api_calls: Vec<String>,
}

#[derive(Debug)]
struct Shared {
    config: GithubFakeConfig,
    base: Url,
    state: Mutex<State>,
    counter: AtomicU64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn random(&self, prefix: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let digest = Sha256::digest(format!("{n}:{nanos}:{prefix}").as_bytes());
        format!("{prefix}{}", URL_SAFE_NO_PAD.encode(&digest[..20]))
    }

    fn user(&self, login: &str) -> Option<&GithubUser> {
        self.config.users.iter().find(|u| u.login == login)
    }
}

/// A running fake, stopped on drop.
#[derive(Debug)]
pub struct FakeGithub {
    base: Url,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server.abort();
    }
}

impl FakeGithub {
    /// Starts the fake on 127.0.0.1, port 0.
    pub async fn start(config: GithubFakeConfig) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("binding the fake GitHub")?;
        let local_addr = listener.local_addr()?;
        let base = Url::parse(&format!("http://{local_addr}/"))?;
        let shared = Arc::new(Shared {
            config,
            base: base.clone(),
            state: Mutex::new(State::default()),
            counter: AtomicU64::new(0),
        });
        let acceptor = TcpAcceptor::from_tokio(listener)?;
        let app = handle.data(shared.clone());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async move {
                        let _ = stop_rx.await;
                    },
                    Some(Duration::from_secs(1)),
                )
                .await;
        });
        Ok(Self {
            base,
            shared,
            stop: Some(stop_tx),
            server,
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash): the web base and the API base.
    pub fn base_url(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// Plays the browser: opens `authorization_url` as `login` (adds the fake-only `login`
    /// parameter) and returns the callback URL the fake redirects to (with `code` and `state`,
    /// or `error`).
    pub async fn approve(&self, authorization_url: &str, login: &str) -> anyhow::Result<String> {
        let mut url = Url::parse(authorization_url).context("the authorization URL")?;
        url.query_pairs_mut().append_pair("login", login);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        let response = client.get(url).send().await?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        match location {
            Some(location) if status.is_redirection() => Ok(location),
            _ => {
                let body = response.text().await.unwrap_or_default();
                anyhow::bail!("the fake GitHub did not redirect (HTTP {status}): {body}")
            }
        }
    }

    /// The API requests served so far (`/user/teams?per_page=2&page=2`, ...), oldest first.
    pub fn api_calls(&self) -> Vec<String> {
        self.shared.state().api_calls.clone()
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(value.to_string())
}

fn query_map(req: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

#[handler]
async fn handle(req: &Request, body: Body, Data(shared): Data<&Arc<Shared>>) -> Response {
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/login/oauth/authorize") => authorize(shared, &query_map(req)),
        (&Method::POST, "/login/oauth/access_token") => {
            let body = body.into_vec().await.unwrap_or_default();
            let accept_json = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .is_some_and(|a| a.contains("json"));
            access_token(shared, &body, accept_json)
        }
        (&Method::GET, "/user" | "/user/orgs" | "/user/teams") => api(shared, req, &path),
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        ),
    }
}

fn redirect(to: &Url) -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, to.as_str())
        .finish()
}

fn authorize(shared: &Shared, q: &HashMap<String, String>) -> Response {
    let client_id = q.get("client_id").map(String::as_str).unwrap_or_default();
    if client_id != shared.config.client_id {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("text/html")
            .body("<h1>404: the OAuth application was not found</h1>");
    }
    let Some(redirect_uri) = q.get("redirect_uri").and_then(|r| Url::parse(r).ok()) else {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .content_type("text/html")
            .body("<h1>The redirect_uri is missing or not a URL</h1>");
    };
    let mut back = redirect_uri.clone();
    let state = q.get("state").cloned();
    let add_state = |url: &mut Url| {
        if let Some(state) = &state {
            url.query_pairs_mut().append_pair("state", state);
        }
    };
    if let Some(method) = q.get("code_challenge_method")
        && method != "S256"
    {
        back.query_pairs_mut()
            .append_pair("error", "invalid_request")
            .append_pair("error_description", "code_challenge_method must be S256");
        add_state(&mut back);
        return redirect(&back);
    }
    let login = q
        .get("login")
        .cloned()
        .or_else(|| shared.config.default_login.clone());
    let Some(login) = login.filter(|l| shared.user(l).is_some()) else {
        back.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair(
                "error_description",
                "The user has denied your application access.",
            );
        add_state(&mut back);
        return redirect(&back);
    };
    let code = shared.random("");
    shared.state().codes.insert(
        code.clone(),
        PendingCode {
            client_id: client_id.to_owned(),
            redirect_uri: q.get("redirect_uri").cloned(),
            code_challenge: q.get("code_challenge").cloned(),
            login,
        },
    );
    back.query_pairs_mut().append_pair("code", &code);
    add_state(&mut back);
    redirect(&back)
}

fn token_answer(accept_json: bool, fields: &[(&str, &str)]) -> Response {
    if accept_json {
        let map: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        json_response(StatusCode::OK, &Value::Object(map))
    } else {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter())
            .finish();
        Response::builder()
            .status(StatusCode::OK)
            .content_type("application/x-www-form-urlencoded; charset=utf-8")
            .body(body)
    }
}

fn token_error(accept_json: bool, error: &str, description: &str) -> Response {
    token_answer(
        accept_json,
        &[
            ("error", error),
            ("error_description", description),
            (
                "error_uri",
                "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors",
            ),
        ],
    )
}

fn access_token(shared: &Shared, body: &[u8], accept_json: bool) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("client_id") != shared.config.client_id
        || field("client_secret") != shared.config.client_secret
    {
        return token_error(
            accept_json,
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let bad_code = || {
        token_error(
            accept_json,
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        )
    };
    let Some(pending) = shared.state().codes.remove(field("code")) else {
        return bad_code();
    };
    if pending.client_id != field("client_id") {
        return bad_code();
    }
    if let Some(registered) = &pending.redirect_uri
        && form.get("redirect_uri").is_some_and(|r| r != registered)
    {
        return token_error(
            accept_json,
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        );
    }
    if let Some(challenge) = &pending.code_challenge {
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(field("code_verifier").as_bytes()));
        if !form.contains_key("code_verifier") || &computed != challenge {
            return bad_code();
        }
    }
    let token = shared.random("gho_");
    shared
        .state()
        .tokens
        .insert(token.clone(), pending.login.clone());
    token_answer(
        accept_json,
        &[
            ("access_token", &token),
            ("token_type", "bearer"),
            ("scope", "read:org,read:user"),
        ],
    )
}

fn org_json(base: &Url, login: &str, id: u64) -> Value {
    let api = base.as_str().trim_end_matches('/');
    json!({
        "login": login,
        "id": id,
        "node_id": format!("O_{id}"),
        "url": format!("{api}/orgs/{login}"),
        "repos_url": format!("{api}/orgs/{login}/repos"),
        "events_url": format!("{api}/orgs/{login}/events"),
        "hooks_url": format!("{api}/orgs/{login}/hooks"),
        "issues_url": format!("{api}/orgs/{login}/issues"),
        "members_url": format!("{api}/orgs/{login}/members{{/member}}"),
        "public_members_url": format!("{api}/orgs/{login}/public_members{{/member}}"),
        "avatar_url": format!("https://avatars.example/{login}"),
        "description": null
    })
}

fn stable_id(text: &str) -> u64 {
    let digest = Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&digest[..4]);
    u64::from(u32::from_be_bytes(bytes))
}

fn api(shared: &Shared, req: &Request, path: &str) -> Response {
    let full = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    shared.state().api_calls.push(full);
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|a| a.to_str().ok())
        .and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("token "))
        })
        .map(str::to_owned);
    let login = token.and_then(|t| shared.state().tokens.get(&t).cloned());
    let Some(user) = login.as_deref().and_then(|l| shared.user(l)) else {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        );
    };
    let base = &shared.base;
    let api_root = base.as_str().trim_end_matches('/');
    match path {
        "/user" => json_response(
            StatusCode::OK,
            &json!({
                "login": user.login,
                "id": user.id,
                "node_id": format!("U_{}", user.id),
                "avatar_url": format!("https://avatars.example/u/{}", user.id),
                "url": format!("{api_root}/users/{}", user.login),
                "html_url": format!("{api_root}/{}", user.login),
                "type": "User",
                "site_admin": false,
                "name": user.name,
                "company": null,
                "blog": "",
                "location": null,
                "email": user.email,
                "bio": null,
                "public_repos": 0,
                "followers": 0,
                "following": 0,
                "created_at": "2011-01-25T18:44:36Z",
                "updated_at": "2026-01-01T00:00:00Z"
            }),
        ),
        "/user/orgs" => {
            let items: Vec<Value> = user
                .orgs
                .iter()
                .map(|o| org_json(base, o, stable_id(o)))
                .collect();
            paginated(shared, req, path, items)
        }
        _ => {
            let items: Vec<Value> = user
                .teams
                .iter()
                .map(|t| {
                    let id = stable_id(&format!("{}/{}", t.org, t.slug));
                    json!({
                        "id": id,
                        "node_id": format!("T_{id}"),
                        "url": format!("{api_root}/teams/{id}"),
                        "html_url": format!("{api_root}/orgs/{}/teams/{}", t.org, t.slug),
                        "name": t.slug,
                        "slug": t.slug,
                        "description": null,
                        "privacy": "closed",
                        "notification_setting": "notifications_enabled",
                        "permission": "pull",
                        "members_url": format!("{api_root}/teams/{id}/members{{/member}}"),
                        "repositories_url": format!("{api_root}/teams/{id}/repos"),
                        "parent": null,
                        "members_count": 1,
                        "repos_count": 0,
                        "created_at": "2020-01-01T00:00:00Z",
                        "updated_at": "2026-01-01T00:00:00Z",
                        "organization": org_json(base, &t.org, stable_id(&t.org))
                    })
                })
                .collect();
            paginated(shared, req, path, items)
        }
    }
}

fn paginated(shared: &Shared, req: &Request, path: &str, items: Vec<Value>) -> Response {
    let q = query_map(req);
    let per_page = q
        .get("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100)
        .min(shared.config.max_page_size.max(1));
    let page = q
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let pages = items.len().div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let link_to = |n: usize| {
        let mut url = shared.base.clone();
        url.set_path(path);
        url.query_pairs_mut()
            .append_pair("per_page", &per_page.to_string())
            .append_pair("page", &n.to_string());
        url
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", link_to(page - 1)));
    }
    if page < pages {
        links.push(format!("<{}>; rel=\"next\"", link_to(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", link_to(pages)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"first\"", link_to(1)));
    }
    let mut response = json_response(StatusCode::OK, &Value::Array(slice));
    if !links.is_empty()
        && let Ok(value) = links.join(", ").parse()
    {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}
