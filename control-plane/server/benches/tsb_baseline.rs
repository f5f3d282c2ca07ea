//! Baselines for later ratios (DESIGN.md §9, P1/P2/P7): TSB emulator throughput and latency through
//! km-tsb on loopback, and the SDK's own per-call overhead against a bare reqwest call.
//!
//! Run: `cargo bench -p keymanager --bench tsb_baseline` (release build). Knobs:
//! `KM_BENCH_SECONDS` (per workload, default 5), `KM_BENCH_CONCURRENCY` (default 8),
//! `KM_BENCH_SEQUENTIAL_CALLS` (overhead samples, default 3000).
//! The emulator runs as its own process (`keymanager tsb-emulator --ephemeral`), as a real TSB
//! would; both share the machine's cores, so read the numbers as ratios within one run.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use km_tsb::{CreateKeyRequest, EncryptRequest, KeyAttributes, SignRequest, TsbClient};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Stats {
    ops_per_second: f64,
    p50: Duration,
    p99: Duration,
    samples: usize,
}

fn stats(mut latencies: Vec<Duration>, wall: Duration) -> Stats {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        ops_per_second: latencies.len() as f64 / wall.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        samples: latencies.len(),
    }
}

/// Runs `operation` from `concurrency` tasks for `seconds`, recording each call's latency.
async fn load<F, Fut>(concurrency: u64, seconds: u64, operation: F) -> Stats
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let operation = operation.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < end {
                let began = Instant::now();
                operation().await;
                latencies.push(began.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    stats(all, start.elapsed())
}

/// Sequential calls of two variants, interleaved call by call so that machine noise hits both
/// alike; returns (stats of `first`, stats of `second`).
async fn interleaved<A, FA, B, FB>(calls: u64, first: A, second: B) -> (Stats, Stats)
where
    A: Fn() -> FA,
    FA: std::future::Future<Output = ()>,
    B: Fn() -> FB,
    FB: std::future::Future<Output = ()>,
{
    for _ in 0..calls / 10 {
        first().await;
        second().await;
    }
    let (mut a, mut b) = (
        Vec::with_capacity(calls as usize),
        Vec::with_capacity(calls as usize),
    );
    let (mut a_time, mut b_time) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..calls {
        let began = Instant::now();
        first().await;
        let took = began.elapsed();
        a.push(took);
        a_time += took;
        let began = Instant::now();
        second().await;
        let took = began.elapsed();
        b.push(took);
        b_time += took;
    }
    (stats(a, a_time), stats(b, b_time))
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn row(name: &str, s: &Stats) {
    println!(
        "| {name} | {:.0} | {} | {} | {} |",
        s.ops_per_second,
        micros(s.p50),
        micros(s.p99),
        s.samples
    );
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let seconds = env_number("KM_BENCH_SECONDS", 5);
    let concurrency = env_number("KM_BENCH_CONCURRENCY", 8);
    let calls = env_number("KM_BENCH_SEQUENTIAL_CALLS", 3000);

    let mut emulator = Command::new(env!("CARGO_BIN_EXE_keymanager"))
        .args(["tsb-emulator", "--ephemeral", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the emulator");
    let mut lines = BufReader::new(emulator.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("emulator printed its URL").unwrap();
        if let Some(word) = line.split_whitespace().find(|w| w.starts_with("http")) {
            break word.trim_end_matches(['(', ',']).to_owned();
        }
    };

    let client = TsbClient::builder(&url).build().unwrap();
    let create =
        |label: &str, algorithm: &str, size: Option<u32>, curve: Option<&str>, sign: bool| {
            let attributes = KeyAttributes {
                sign: Some(sign),
                decrypt: Some(!sign),
                encrypt: Some(!sign),
                ..KeyAttributes::default()
            };
            let mut request = CreateKeyRequest::new(label, algorithm, attributes);
            request.key_size = size;
            request.curve_oid = curve.map(str::to_owned);
            request
        };
    for request in [
        create("bench-ec", "EC", None, Some("1.2.840.10045.3.1.7"), true),
        create("bench-rsa", "RSA", Some(2048), None, true),
        create("bench-aes", "AES", Some(256), None, false),
    ] {
        client.create_key(&request).await.unwrap();
    }
    let payload = vec![7u8; 256];

    println!(
        "## TSB emulator through km-tsb (loopback, {concurrency} concurrent callers, {seconds} s each)\n"
    );
    println!("| workload | ops/s | p50 | p99 | samples |\n|---|---|---|---|---|");
    let ec = {
        let (client, payload) = (client.clone(), payload.clone());
        load(concurrency, seconds, move || {
            let (client, payload) = (client.clone(), payload.clone());
            async move {
                client
                    .sign(&SignRequest::new("bench-ec", "SHA256_WITH_ECDSA", payload))
                    .await
                    .unwrap();
            }
        })
        .await
    };
    row("sign EC P-256 (SHA256_WITH_ECDSA)", &ec);
    let rsa = {
        let (client, payload) = (client.clone(), payload.clone());
        load(concurrency, seconds, move || {
            let (client, payload) = (client.clone(), payload.clone());
            async move {
                client
                    .sign(&SignRequest::new("bench-rsa", "SHA256_WITH_RSA", payload))
                    .await
                    .unwrap();
            }
        })
        .await
    };
    row("sign RSA-2048 (SHA256_WITH_RSA)", &rsa);
    let aes = {
        let (client, payload) = (client.clone(), payload.clone());
        load(concurrency, seconds, move || {
            let (client, payload) = (client.clone(), payload.clone());
            async move {
                client
                    .encrypt(&EncryptRequest::new("bench-aes", "AES_GCM", payload))
                    .await
                    .unwrap();
            }
        })
        .await
    };
    row("encrypt AES-256-GCM (256 B)", &aes);

    // SDK overhead: the same request through km-tsb and through a bare reqwest client.
    let raw = reqwest::Client::new();
    let version_url = format!("{url}/v1/versionInfo");
    let sign_url = format!("{url}/v1/synchronousSign");
    let sign_body = serde_json::json!({ "signRequest": {
        "payload": base64::engine::general_purpose::STANDARD.encode(&payload),
        "signKeyName": "bench-ec", "signatureAlgorithm": "SHA256_WITH_ECDSA" } });

    let (sdk_version, raw_version) = interleaved(
        calls,
        || async {
            client.version_info().await.unwrap();
        },
        || async {
            let r = raw.get(&version_url).send().await.unwrap();
            let _: serde_json::Value = r.json().await.unwrap();
        },
    )
    .await;
    let (sdk_sign, raw_sign) = interleaved(
        calls,
        || async {
            let request = SignRequest::new("bench-ec", "SHA256_WITH_ECDSA", payload.clone());
            client.sign(&request).await.unwrap();
        },
        || async {
            let r = raw.post(&sign_url).json(&sign_body).send().await.unwrap();
            let _: serde_json::Value = r.json().await.unwrap();
        },
    )
    .await;

    println!("\n## km-tsb per-call overhead (sequential, {calls} calls each, interleaved)\n");
    println!(
        "| call | km-tsb p50 | bare reqwest p50 | added p50 | km-tsb p99 | bare p99 |\n|---|---|---|---|---|---|"
    );
    for (name, sdk, bare) in [
        ("versionInfo", &sdk_version, &raw_version),
        ("synchronousSign EC", &sdk_sign, &raw_sign),
    ] {
        let added = sdk.p50.as_secs_f64() - bare.p50.as_secs_f64();
        println!(
            "| {name} | {} | {} | {:.1} µs | {} | {} |",
            micros(sdk.p50),
            micros(bare.p50),
            added * 1e6,
            micros(sdk.p99),
            micros(bare.p99)
        );
    }

    let _ = emulator.kill();
    let _ = emulator.wait();
}
