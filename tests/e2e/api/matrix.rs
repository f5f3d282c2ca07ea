//! The authorization matrix: every operation of the OpenAPI document × {anonymous, readonly, user,
//! admin, operator} × {own tenant, other tenant} → the expected HTTP status, executed over HTTP.
//!
//! The operations are read from `km_api::openapi_json()`: an operation without a row here (a new
//! endpoint) fails the test, and so does a row for an operation that no longer exists. Method and
//! path come from the document too, so a row cannot silently test another endpoint. Every
//! refusal (403/404) must be in the audit log under the request id of its request.
//!
//! Callers: `rob` readonly, `uma` user, `ann` admin — all on tenant `acme` (the "own" tenant) —
//! and `opa`, admin on `*` (a platform operator). "Other tenant" is `globex`, where none of the
//! tenant users has a role. Operations that end the caller's sessions (logout, sign-out
//! everywhere, password change) or need a fresh TOTP enrolment run with a fresh caller of the same
//! role; operations that consume something (delete, revoke) get a fresh target per cell.

use std::collections::{BTreeMap, BTreeSet};

use km_core::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{ApiWorld, Auth, PASSWORD, ROOT_PASSWORD, seed_of, totp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Readonly,
    User,
    Admin,
    Operator,
}

const WHO: [Who; 5] = [
    Who::Anonymous,
    Who::Readonly,
    Who::User,
    Who::Admin,
    Who::Operator,
];

impl Who {
    /// (tenant or `*`, role) of users playing this part.
    fn binding(self) -> Option<(&'static str, &'static str)> {
        match self {
            Who::Anonymous => None,
            Who::Readonly => Some(("acme", "readonly")),
            Who::User => Some(("acme", "user")),
            Who::Admin => Some(("acme", "admin")),
            Who::Operator => Some(("*", "admin")),
        }
    }
}

/// Expected statuses, in the order of [`WHO`], on the own tenant (`acme`) and on another one.
struct Row {
    op: &'static str,
    own: [u16; 5],
    other: [u16; 5],
}

/// Same answer regardless of tenant (account, platform and anonymous operations).
const fn any(op: &'static str, statuses: [u16; 5]) -> Row {
    Row {
        op,
        own: statuses,
        other: statuses,
    }
}

const fn tenant(op: &'static str, own: [u16; 5], other: [u16; 5]) -> Row {
    Row { op, own, other }
}

/// anonymous, readonly, user, admin, operator
const ROWS: &[Row] = &[
    // --- anonymous operations ---
    any("get_setup_status", [200, 200, 200, 200, 200]),
    any("complete_setup", [409, 409, 409, 409, 409]),
    any("login", [200, 200, 200, 200, 200]),
    any("login_second_factor", [401, 401, 401, 401, 401]),
    // --- session and own account: any authenticated person ---
    any("reverify_second_factor", [401, 409, 409, 409, 409]),
    any("logout", [401, 204, 204, 204, 204]),
    any("sign_out_everywhere", [401, 204, 204, 204, 204]),
    any("get_account", [401, 200, 200, 200, 200]),
    any("change_own_password", [401, 204, 204, 204, 204]),
    any("begin_totp_enrolment", [401, 201, 201, 201, 201]),
    any("confirm_totp_enrolment", [401, 200, 200, 200, 200]),
    any("remove_own_totp", [401, 204, 204, 204, 204]),
    any("regenerate_recovery_codes", [401, 409, 409, 409, 409]),
    any("list_own_api_tokens", [401, 200, 200, 200, 200]),
    // A token on the other tenant exceeds what tenant users hold there.
    tenant(
        "create_api_token",
        [401, 201, 201, 201, 201],
        [401, 403, 403, 403, 201],
    ),
    any("revoke_own_api_token", [401, 204, 204, 204, 204]),
    // --- users of a tenant: tenant admins; nobody sees another tenant ---
    tenant(
        "list_tenant_users",
        [401, 403, 403, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "create_tenant_user",
        [401, 403, 403, 201, 201],
        [401, 404, 404, 404, 201],
    ),
    tenant(
        "get_tenant_user",
        [401, 403, 403, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "set_tenant_role",
        [401, 403, 403, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    // --- platform administration: platform admins only ---
    any("list_all_users", [401, 403, 403, 403, 200]),
    any("create_platform_user", [401, 403, 403, 403, 201]),
    any("get_any_user", [401, 403, 403, 403, 200]),
    any("update_user", [401, 403, 403, 403, 200]),
    any("delete_user", [401, 403, 403, 403, 204]),
    any("unlock_user", [401, 403, 403, 403, 204]),
    any("reset_user_password", [401, 403, 403, 403, 204]),
    any("reset_user_second_factor", [401, 403, 403, 403, 204]),
    any("set_platform_role", [401, 403, 403, 403, 200]),
    any("list_all_api_tokens", [401, 403, 403, 403, 200]),
    any("revoke_api_token", [401, 403, 403, 403, 204]),
    // --- runtime settings: platform readonly reads, platform admin writes ---
    any("get_settings", [401, 403, 403, 403, 200]),
    any("update_settings", [401, 403, 403, 403, 200]),
    // --- audit: a tenant's events for anyone on it; the whole log for operators ---
    tenant(
        "list_tenant_audit_events",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    any("list_audit_events", [401, 403, 403, 403, 200]),
    any("verify_audit", [401, 403, 403, 403, 200]),
    // --- partitions: members see theirs (others are "not found"); operators run the registry ---
    any("list_my_partitions", [401, 200, 200, 200, 200]),
    tenant(
        "get_partition",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "get_partition_status",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "get_own_partition_credentials",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "set_own_partition_credentials",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "clear_own_partition_credentials",
        [401, 204, 204, 204, 204],
        [401, 404, 404, 404, 204],
    ),
    any("list_partitions", [401, 403, 403, 403, 200]),
    any("list_vaults", [401, 403, 403, 403, 200]),
    any("test_partition_connection", [401, 403, 403, 403, 200]),
    any("onboard_partition", [401, 403, 403, 403, 201]),
    any("update_partition", [401, 403, 403, 403, 200]),
    any("rotate_partition_credentials", [401, 403, 403, 403, 200]),
    any("offboard_partition", [401, 403, 403, 403, 204]),
    // --- single sign-on: the sign-in options are public; the configuration is the operators' ---
    any("get_login_options", [200, 200, 200, 200, 200]),
    any("get_sso_settings", [401, 403, 403, 403, 200]),
    any("update_sso_settings", [401, 403, 403, 403, 200]),
    any("set_sso_client_secret", [401, 403, 403, 403, 204]),
    any("preview_sso_mapping", [401, 403, 403, 403, 200]),
    // --- keys: readonly reads and exports, users change, admins set the key settings ---
    tenant(
        "list_keys",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "get_key",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "export_public_key",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "download_key_attestation",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "create_key",
        [401, 403, 201, 201, 201],
        [401, 404, 404, 404, 201],
    ),
    tenant(
        "update_key_metadata",
        [401, 403, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "get_key_policy",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "update_key_policy",
        [401, 403, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "list_key_requests",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    // Past authorization, the request id is unknown to the key: 400 `unknown_request`.
    tenant(
        "cancel_key_request",
        [401, 403, 400, 400, 400],
        [401, 404, 404, 404, 400],
    ),
    tenant(
        "list_pending_requests",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "list_onboarded_approvers",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "change_key_state",
        [401, 403, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "rotate_key",
        [401, 403, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "get_key_settings",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "update_key_settings",
        [401, 403, 403, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    // --- expiry notifications: anyone on the tenant reads the settings, admins change and test ---
    tenant(
        "get_notification_settings",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "update_notification_settings",
        [401, 403, 403, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "rotate_notification_secret",
        [401, 403, 403, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    tenant(
        "send_test_notification",
        [401, 403, 403, 200, 200],
        [401, 404, 404, 404, 200],
    ),
    // --- the dashboard: anyone on the tenant, readonly included ---
    tenant(
        "get_dashboard",
        [401, 200, 200, 200, 200],
        [401, 404, 404, 404, 200],
    ),
];

/// `operationId` → (method, path template) from the document.
fn operations() -> BTreeMap<String, (Method, String)> {
    let doc: Value = serde_json::from_str(&km_api::openapi_json()).unwrap();
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap().to_owned();
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            assert!(
                out.insert(id.clone(), (method, path.clone())).is_none(),
                "duplicate {id}"
            );
        }
    }
    out
}

#[test]
fn every_operation_of_the_document_has_a_row() {
    let documented: BTreeSet<String> = operations().into_keys().collect();
    let rows: BTreeSet<String> = ROWS.iter().map(|row| row.op.to_owned()).collect();
    let missing: Vec<&String> = documented.difference(&rows).collect();
    let stale: Vec<&String> = rows.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "operations without a row in the authorization matrix: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "rows for operations that do not exist: {stale:?}"
    );
    assert_eq!(rows.len(), ROWS.len(), "an operation has two rows");
}

struct Matrix {
    world: ApiWorld,
    root: Auth,
    callers: BTreeMap<&'static str, Auth>,
    fresh: u32,
}

impl Matrix {
    async fn new() -> Self {
        let world = ApiWorld::start().await;
        world.set_up().await;
        let root = world.login("root", ROOT_PASSWORD).await;
        for (name, tenant, role) in [
            ("rob", "acme", "readonly"),
            ("uma", "acme", "user"),
            ("ann", "acme", "admin"),
            ("opa", "*", "admin"),
            ("pawn", "acme", "readonly"),
            ("both", "acme", "user"),
            ("prober", "acme", "readonly"),
        ] {
            world.create_user(&root, tenant, name, role).await;
        }
        let both = world
            .call(
                Method::PUT,
                "/api/v1/tenants/globex/users/both/role",
                &root,
                Some(json!({"role": "user"})),
            )
            .await;
        assert_eq!(both.status, StatusCode::OK, "{}", both.text);
        let mut callers = BTreeMap::new();
        for name in ["rob", "uma", "ann", "opa"] {
            callers.insert(name, world.login(name, PASSWORD).await);
        }
        Self {
            world,
            root,
            callers,
            fresh: 0,
        }
    }

    fn caller(&self, who: Who) -> Auth {
        match who {
            Who::Anonymous => Auth::Anonymous,
            Who::Readonly => self.callers["rob"].clone(),
            Who::User => self.callers["uma"].clone(),
            Who::Admin => self.callers["ann"].clone(),
            Who::Operator => self.callers["opa"].clone(),
        }
    }

    /// A new user playing `who`, signed in.
    async fn fresh_caller(&mut self, who: Who) -> Auth {
        let Some((tenant, role)) = who.binding() else {
            return Auth::Anonymous;
        };
        self.fresh += 1;
        let name = format!("fresh{}", self.fresh);
        self.world
            .create_user(&self.root, tenant, &name, role)
            .await;
        self.world.login(&name, PASSWORD).await
    }

    /// A new user for `who` to act on.
    async fn victim(&mut self) -> String {
        self.fresh += 1;
        let name = format!("victim{}", self.fresh);
        self.world
            .create_user(&self.root, "acme", &name, "readonly")
            .await;
        name
    }

    /// An API token of `owner` (or of root), returns its id.
    async fn token_of(&self, owner: &Auth, scope: &str) -> String {
        let created = self
            .world
            .call(Method::POST, "/api/v1/account/api-tokens", owner,
                Some(json!({"name": "m", "scope": scope, "role": "readonly", "expires_in_secs": 600})))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        created.body["info"]["id"].as_str().unwrap().to_owned()
    }

    /// A connection body for `tenant`'s emulator partition with its right API key.
    fn connection(&self, tenant: &str) -> Value {
        json!({
            "endpoint": self.world.emulator.partition_url(tenant),
            "auth": "api_keys",
            "credentials": {"api_key": super::tenant_api_key(tenant)},
        })
    }

    /// A key `label` on `tenant` (created by root once), for operations that read or change one.
    async fn key(&mut self, tenant: &str, label: &str) -> String {
        let path = format!("/api/v1/tenants/{tenant}/keys/{label}");
        if self
            .world
            .call(Method::GET, &path, &self.root, None)
            .await
            .status
            == StatusCode::OK
        {
            return label.to_owned();
        }
        let created = self
            .world
            .call(
                Method::POST,
                &format!("/api/v1/tenants/{tenant}/keys"),
                &self.root,
                Some(json!({"label": label, "algorithm": "EC", "curve": "P-256",
                    "attributes": {"sign": true, "verify": true}})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        label.to_owned()
    }

    /// The caller, path parameters and body of one cell.
    async fn prepare(
        &mut self,
        op: &str,
        who: Who,
        tenant: &str,
        cell: u32,
    ) -> (Auth, BTreeMap<&'static str, String>, Option<Value>) {
        let mut params = BTreeMap::from([
            ("tenant", tenant.to_owned()),
            ("username", "pawn".to_owned()),
        ]);
        let mut caller = self.caller(who);
        let body = match op {
            "complete_setup" => {
                Some(json!({"setup_token": "x", "username": "late", "password": PASSWORD}))
            }
            "login" => Some(json!({"username": "prober", "password": PASSWORD})),
            "login_second_factor" => {
                Some(json!({"pending_token": "not-a-pending-sign-in", "code": "123456"}))
            }
            "reverify_second_factor" => Some(json!({"code": "123456"})),
            "logout" | "sign_out_everywhere" => {
                caller = self.fresh_caller(who).await;
                None
            }
            "change_own_password" => {
                caller = self.fresh_caller(who).await;
                Some(
                    json!({"current_password": PASSWORD, "new_password": "granite orchard falcon three"}),
                )
            }
            "confirm_totp_enrolment" => {
                caller = self.fresh_caller(who).await;
                let mut code = "000000".to_owned();
                if who != Who::Anonymous {
                    let enrolment = self
                        .world
                        .call(
                            Method::POST,
                            "/api/v1/account/totp/enrolment",
                            &caller,
                            None,
                        )
                        .await;
                    assert_eq!(enrolment.status, StatusCode::CREATED, "{}", enrolment.text);
                    code = totp(&seed_of(&enrolment.body), self.world.clock.now());
                }
                Some(json!({"code": code}))
            }
            "remove_own_totp" | "regenerate_recovery_codes" => Some(json!({"password": PASSWORD})),
            "create_api_token" => {
                let scope = if tenant == "acme" { "acme" } else { "globex" };
                Some(
                    json!({"name": format!("t{cell}"), "scope": scope, "role": "readonly", "expires_in_secs": 600}),
                )
            }
            "revoke_own_api_token" => {
                let id = if who == Who::Anonymous {
                    "0".repeat(24)
                } else {
                    let scope = if who == Who::Operator { "*" } else { "acme" };
                    self.token_of(&caller, scope).await
                };
                params.insert("id", id);
                None
            }
            "revoke_api_token" => {
                let id = self.token_of(&self.root.clone(), "*").await;
                params.insert("id", id);
                None
            }
            "create_tenant_user" | "create_platform_user" => Some(
                json!({"username": format!("new{cell}"), "password": PASSWORD, "role": "readonly"}),
            ),
            "get_tenant_user" => {
                params.insert("username", "both".to_owned());
                None
            }
            "delete_user" => {
                params.insert("username", self.victim().await);
                None
            }
            "set_tenant_role" => Some(json!({"role": "readonly"})),
            "set_platform_role" => Some(json!({"role": null})),
            "update_user" => Some(json!({"display_name": "Pawn"})),
            "reset_user_password" => Some(json!({"new_password": "granite orchard falcon three"})),
            "set_own_partition_credentials" => {
                Some(json!({"api_key": super::tenant_api_key(tenant)}))
            }
            "test_partition_connection" | "rotate_partition_credentials" => {
                Some(self.connection(tenant))
            }
            "onboard_partition" => Some(json!({
                "id": format!("onboarded{cell}"),
                "display_name": format!("Onboarded {cell}"),
                "connection": self.connection(tenant),
            })),
            "update_partition" => Some(json!({"display_name": "Renamed", "colour": "#10b981"})),
            "offboard_partition" => {
                // Always a partition of its own, so a wrong answer cannot take a tenant away.
                let victim = format!("leaving{cell}");
                let onboarded = self
                    .world
                    .call(
                        Method::POST,
                        "/api/v1/platform/partitions",
                        &self.root,
                        Some(json!({
                            "id": victim,
                            "display_name": "Leaving",
                            "connection": self.connection(tenant),
                        })),
                    )
                    .await;
                assert_eq!(onboarded.status, StatusCode::CREATED, "{}", onboarded.text);
                params.insert("tenant", victim.clone());
                params.insert("query", format!("?confirm={victim}"));
                None
            }
            "update_sso_settings" => Some(json!({"local_login": true, "providers": []})),
            "set_sso_client_secret" => {
                let provider = json!({"local_login": true, "providers": [{
                    "id": "corp", "display_name": "Corp", "kind": "oidc",
                    "issuer_url": "https://idp.example", "client_id": "km", "enabled": false,
                    "mapping": {"allowed_group_ids": [], "rules": []}
                }]});
                let saved = self
                    .world
                    .call(
                        Method::PUT,
                        "/api/v1/platform/sso",
                        &self.root,
                        Some(provider),
                    )
                    .await;
                assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
                params.insert("provider", "corp".to_owned());
                Some(json!({"client_secret": "s3cret-value"}))
            }
            "preview_sso_mapping" => Some(json!({
                "mapping": {"allowed_group_ids": [], "rules": [
                    {"claim": "group", "value": "g", "scope": "acme", "role": "user"}
                ]},
                "groups": ["g"]
            })),
            "download_key_attestation" => {
                params.insert("label", self.key(tenant, "matrix-key").await);
                None
            }
            "get_key"
            | "export_public_key"
            | "update_key_metadata"
            | "rotate_key"
            | "get_key_policy"
            | "update_key_policy"
            | "list_key_requests"
            | "cancel_key_request" => {
                params.insert("label", self.key(tenant, "matrix-key").await);
                params.insert(
                    "request_id",
                    "7b0c0d5e-0000-4000-8000-000000000000".to_owned(),
                );
                match op {
                    "update_key_metadata" => Some(json!({"owner": format!("owner{cell}")})),
                    "update_key_policy" => Some(json!({"policy": {}, "reason": "matrix"})),
                    _ => None,
                }
            }
            "change_key_state" => {
                // A key of its own per cell: a suspended key cannot be suspended again.
                params.insert("label", self.key(tenant, &format!("cell{cell}")).await);
                Some(json!({"event": "suspend", "reason": "matrix"}))
            }
            "create_key" => Some(json!({"label": format!("new{cell}"), "algorithm": "EC",
                "curve": "P-256", "attributes": {"sign": true}})),
            "update_key_settings" => Some(json!({"destruction_waiting_period_secs": 604800})),
            "update_notification_settings" => Some(json!({"enabled": false,
                "url": "https://hooks.example.com/km", "lead_days": [30, 7, 1]})),
            "send_test_notification" => {
                // A URL and a secret to test with (this world wires no webhook client, so the
                // delivery itself reports "unavailable": still a 200).
                let saved = self
                    .world
                    .call(
                        Method::PUT,
                        &format!("/api/v1/tenants/{tenant}/notifications"),
                        &self.root,
                        Some(json!({"enabled": true, "url": "https://hooks.example.com/km"})),
                    )
                    .await;
                assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
                None
            }
            "update_settings" => Some(json!({"second_factor": "optional", "reverify_hours": 12,
                "session_idle_minutes": 30, "session_absolute_hours": 12,
                "lockout_threshold": 5, "lockout_minutes": 15})),
            _ => None,
        };
        (caller, params, body)
    }
}

#[tokio::test]
async fn every_endpoint_by_every_role_on_own_and_other_tenant() {
    let operations = operations();
    let mut matrix = Matrix::new().await;
    let mut mismatches = Vec::new();
    let mut refusals = Vec::new();
    let mut cell = 0u32;
    for row in ROWS {
        let (method, template) = operations
            .get(row.op)
            .unwrap_or_else(|| panic!("{} is not in the document", row.op))
            .clone();
        for (side, tenant, expected) in [("own", "acme", row.own), ("other", "globex", row.other)] {
            for (who, expected) in WHO.into_iter().zip(expected) {
                cell += 1;
                let (caller, params, body) = matrix.prepare(row.op, who, tenant, cell).await;
                let mut path = format!("/api/v1{template}");
                for (name, value) in &params {
                    path = path.replace(&format!("{{{name}}}"), value);
                }
                if let Some(query) = params.get("query") {
                    path.push_str(query);
                }
                let rid = format!("matrix-{cell}");
                let answer = matrix
                    .world
                    .send(
                        method.clone(),
                        &path,
                        &caller,
                        body.map(|b| b.to_string()),
                        Some(&rid),
                    )
                    .await;
                assert_eq!(answer.header("x-request-id"), rid);
                if answer.status.as_u16() != expected {
                    mismatches.push(format!(
                        "{} {method} {path} as {who:?} ({side} tenant): expected {expected}, got {} {}",
                        row.op, answer.status, answer.text
                    ));
                } else if matches!(expected, 403 | 404) {
                    refusals.push((rid.clone(), row.op));
                }
                if answer.status.is_client_error() || answer.status.is_server_error() {
                    assert!(
                        answer
                            .header("content-type")
                            .starts_with("application/problem+json"),
                        "{} {path}: {}",
                        row.op,
                        answer.text
                    );
                    assert_eq!(answer.body["request_id"], rid);
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} cells differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );

    // Every refusal is in the audit log: `denied` from authorize (a token beyond the creator's
    // own role is refused by the service after admission: `failed`).
    let events = matrix
        .world
        .app
        .audit_log()
        .read(1..=u64::MAX)
        .await
        .unwrap();
    for (rid, op) in &refusals {
        let outcome = if *op == "create_api_token" {
            "failed"
        } else {
            "denied"
        };
        assert!(
            events
                .iter()
                .any(|e| e.request_id == *rid && e.outcome.as_str() == outcome),
            "refusal {rid} ({op}) has no `{outcome}` audit event"
        );
    }
    assert!(
        refusals.len() > 60,
        "only {} refusals checked",
        refusals.len()
    );
}
