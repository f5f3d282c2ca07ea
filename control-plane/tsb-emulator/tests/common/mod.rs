//! Shared helpers for the HTTP-level tests.
#![allow(dead_code)]

use km_tsb_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use serde_json::Value;

pub async fn start(config: EmulatorConfig) -> RunningEmulator {
    Emulator::start(config).await.expect("emulator starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> i64 {
        self.body["errorCode"].as_i64().unwrap_or(-1)
    }
    pub fn assert_error(&self, status: u16, code: i64) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "unexpected answer: {}",
            self.body
        );
        let reason = self.body["reason"].as_str().unwrap_or("");
        assert!(reason.starts_with("res.error."), "reason {reason}");
        assert!(self.body["message"].is_string());
    }
}

pub async fn send(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    api_key: Option<&str>,
    body: Option<Vec<u8>>,
) -> Resp {
    let mut rb = c.request(method, url);
    if let Some(k) = api_key {
        rb = rb.header("X-API-KEY", k);
    }
    if let Some(b) = body {
        rb = rb.header("Content-Type", "application/json").body(b);
    }
    let r = rb.send().await.expect("request sent");
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Resp { status, body }
}

pub async fn post(c: &reqwest::Client, url: &str, body: &Value) -> Resp {
    send(
        c,
        reqwest::Method::POST,
        url,
        None,
        Some(body.to_string().into_bytes()),
    )
    .await
}

pub async fn get(c: &reqwest::Client, url: &str) -> Resp {
    send(c, reqwest::Method::GET, url, None, None).await
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
