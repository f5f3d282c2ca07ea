//! Hostile and broken input: malformed, mistyped, oversized and deeply nested JSON, unknown
//! fields, bad tokens and cookies, bad path and query parameters, unknown routes and methods.
//! Every answer is a 4xx problem+json with a stable code and the request id — never a 5xx.

use reqwest::{Method, StatusCode};

use super::{ApiWorld, Auth, ROOT_PASSWORD};

/// The answer is the expected 4xx, as problem+json carrying its request id.
fn check(answer: &super::Answer, status: u16, code: &str, what: &str) {
    assert_eq!(answer.status.as_u16(), status, "{what}: {}", answer.text);
    assert_eq!(answer.code(), code, "{what}: {}", answer.text);
    assert!(
        answer
            .header("content-type")
            .starts_with("application/problem+json"),
        "{what}: {:?}",
        answer.headers
    );
    let rid = answer.header("x-request-id");
    assert!(!rid.is_empty(), "{what}: no X-Request-Id");
    assert_eq!(answer.body["request_id"], rid, "{what}");
    assert_eq!(answer.body["status"], status, "{what}");
    assert!(
        answer.body["type"].is_string() && answer.body["title"].is_string(),
        "{what}"
    );
}

#[tokio::test]
async fn bad_input_is_a_4xx_problem_never_a_5xx() {
    let world = ApiWorld::start().await;
    world.set_up().await;
    let root = world.login("root", ROOT_PASSWORD).await;
    let anon = Auth::Anonymous;
    let login = "/api/v1/auth/login";
    let raw = |body: &str| Some(body.to_owned());

    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        (
            "malformed JSON",
            raw("{\"username\": \"root\", "),
            400,
            "invalid_input",
        ),
        ("not an object", raw("[1, 2, 3]"), 400, "invalid_input"),
        (
            "wrong types",
            raw(r#"{"username": 5, "password": true}"#),
            400,
            "invalid_input",
        ),
        (
            "missing field",
            raw(r#"{"username": "root"}"#),
            400,
            "invalid_input",
        ),
        (
            "unknown field",
            raw(r#"{"username": "root", "password": "x", "admin": true}"#),
            400,
            "invalid_input",
        ),
        ("empty body", raw(""), 400, "invalid_input"),
        (
            "deep nesting",
            Some(format!(
                "{{\"username\": {}1{}, \"password\": \"x\"}}",
                "[".repeat(5000),
                "]".repeat(5000)
            )),
            400,
            "invalid_input",
        ),
        (
            "oversized body",
            Some(format!(
                "{{\"username\": \"{}\", \"password\": \"x\"}}",
                "a".repeat(200_000)
            )),
            413,
            "payload_too_large",
        ),
        (
            "overlong username",
            Some(format!(
                "{{\"username\": \"{}\", \"password\": \"x\"}}",
                "a".repeat(5000)
            )),
            400,
            "invalid_input",
        ),
        (
            "invalid UTF-8 escape",
            raw(r#"{"username": "\ud800", "password": "x"}"#),
            400,
            "invalid_input",
        ),
    ];
    for (what, body, status, code) in cases {
        let answer = world.send(Method::POST, login, &anon, body, None).await;
        check(&answer, status, code, what);
    }

    // Wrong content type.
    let answer = world
        .http
        .post(format!("{}{login}", world.base))
        .header("content-type", "text/plain")
        .body("username=root")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Bad credentials of every kind.
    let bearer_cases = [
        (
            "garbage bearer",
            Auth::Bearer("garbage".to_owned()),
            "invalid_token",
        ),
        (
            "forged km_ token",
            Auth::Bearer(format!("km_{}_{}", "ab".repeat(12), "x".repeat(43))),
            "invalid_token",
        ),
        (
            "huge bearer",
            Auth::Bearer(format!("km_{}", "a".repeat(4000))),
            "invalid_token",
        ),
        (
            "basic auth",
            Auth::RawAuthorization("Basic cm9vdDpyb290".to_owned()),
            "invalid_token",
        ),
        (
            "empty bearer",
            Auth::RawAuthorization("Bearer ".to_owned()),
            "invalid_token",
        ),
        (
            "unknown cookie",
            Auth::Session {
                cookie: "x".repeat(43),
                csrf: "x".to_owned(),
            },
            "unauthenticated",
        ),
        (
            "overlong cookie",
            Auth::Session {
                cookie: "x".repeat(3000),
                csrf: "x".to_owned(),
            },
            "unauthenticated",
        ),
        ("anonymous", Auth::Anonymous, "unauthenticated"),
    ];
    for (what, auth, code) in bearer_cases {
        let answer = world
            .call(Method::GET, "/api/v1/account", &auth, None)
            .await;
        check(&answer, 401, code, what);
    }

    // Bad path and query parameters, unknown routes and methods.
    let routed: [(Method, &str, u16, &str); 8] = [
        (
            Method::GET,
            "/api/v1/tenants/Not%20A%20Tenant/users",
            400,
            "invalid_input",
        ),
        (
            Method::GET,
            "/api/v1/tenants/acme/users?limit=abc",
            400,
            "invalid_input",
        ),
        (
            Method::GET,
            "/api/v1/tenants/acme/users?limit=0",
            400,
            "invalid_input",
        ),
        (
            Method::GET,
            "/api/v1/tenants/acme/users?limit=100000",
            400,
            "invalid_input",
        ),
        (
            Method::GET,
            "/api/v1/tenants/acme/users?cursor=%21%21%21",
            400,
            "invalid_input",
        ),
        (
            Method::GET,
            "/api/v1/platform/audit/events?outcome=maybe",
            400,
            "invalid_input",
        ),
        (Method::GET, "/api/v1/no/such/route", 404, "not_found"),
        (
            Method::DELETE,
            "/api/v1/auth/login",
            405,
            "method_not_allowed",
        ),
    ];
    for (method, path, status, code) in routed {
        let answer = world.call(method, path, &root, None).await;
        check(&answer, status, code, path);
    }
    let answer = world
        .call(
            Method::PUT,
            "/api/v1/platform/settings",
            &root,
            Some(serde_json::json!({"second_factor": "sometimes"})),
        )
        .await;
    check(&answer, 400, "invalid_input", "bad settings enum");
    let answer = world
        .call(
            Method::PUT,
            "/api/v1/platform/settings",
            &root,
            Some(
                serde_json::json!({"second_factor": "optional", "reverify_hours": "12",
                "session_idle_minutes": 30, "session_absolute_hours": 12,
                "lockout_threshold": 5, "lockout_minutes": 15}),
            ),
        )
        .await;
    check(&answer, 400, "invalid_input", "number as a string");
    let answer = world
        .call(
            Method::PUT,
            "/api/v1/platform/settings",
            &root,
            Some(
                serde_json::json!({"second_factor": "optional", "reverify_hours": -1,
                "session_idle_minutes": 30, "session_absolute_hours": 12,
                "lockout_threshold": 5, "lockout_minutes": 1e300}),
            ),
        )
        .await;
    check(&answer, 400, "invalid_input", "negative and huge numbers");
    let answer = world
        .call(
            Method::GET,
            "/api/v1/platform/users/NOT%20a%20user",
            &root,
            None,
        )
        .await;
    check(&answer, 400, "invalid_input", "bad username");

    // A client request id is echoed when it is plain, replaced when it is not.
    let echoed = world
        .send(
            Method::GET,
            "/api/v1/auth/setup",
            &anon,
            None,
            Some("client-id-1"),
        )
        .await;
    assert_eq!(echoed.header("x-request-id"), "client-id-1");
    let replaced = world
        .send(
            Method::GET,
            "/api/v1/auth/setup",
            &anon,
            None,
            Some("bad id\twith tab"),
        )
        .await;
    let rid = replaced.header("x-request-id");
    assert!(!rid.is_empty() && !rid.contains(' '), "{rid:?}");

    // Swagger UI and the document are served.
    let docs = world
        .http
        .get(format!("{}/api/docs", world.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let served: serde_json::Value = world
        .http
        .get(format!("{}/api/v1/openapi.json", world.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expected: serde_json::Value = serde_json::from_str(&km_api::openapi_json()).unwrap();
    assert_eq!(served, expected);
}
