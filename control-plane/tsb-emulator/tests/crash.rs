//! Durability: the `tsb-emulator` binary is killed with SIGKILL while data objects are being
//! written; after a restart on the same state directory every acknowledged write is there,
//! intact, and nothing is corrupt.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

async fn spawn(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tsb-emulator"))
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(dir)
        .env_remove("TSB_EMULATOR_STATE_KEY_FILE")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("listening line within 60 s")
        .unwrap()
        .expect("a line");
    let url = line
        .strip_prefix("tsb-emulator listening on ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = spawn(dir.path()).await;
    let c = client();
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();

    // Four concurrent writers so that writes are in flight when the process dies.
    let mut writers = Vec::new();
    for w in 0..4 {
        let c = c.clone();
        let url = url.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let label = format!("obj.{w}.{i}");
                let value = b64(format!("value of {label} {}", "x".repeat(i % 300)).as_bytes());
                let res = c
                    .post(format!("{url}/v1/dataObject"))
                    .json(&json!({"label": label, "value": value}))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status().as_u16() == 201 => {
                        acked.lock().unwrap().insert(label, value);
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => break, // the server died mid-request: not acknowledged
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < 200 {
        assert!(Instant::now() < deadline, "writes too slow");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().unwrap(); // SIGKILL
    child.wait().await.unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 200);

    // Restart on the same directory: start-up itself fails on any corrupt file.
    let (mut child2, url2) = spawn(dir.path()).await;
    let list = get(&c, &format!("{url2}/v1/dataObject")).await;
    assert_eq!(list.status, 200);
    let labels: Vec<String> = serde_json::from_value(list.body).unwrap();
    for (label, value) in &acked {
        assert!(labels.contains(label), "acknowledged write {label} lost");
        let r = get(&c, &format!("{url2}/v1/dataObject/{label}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body["value"].as_str(),
            Some(value.as_str()),
            "content of {label}"
        );
    }
    // Objects written but not acknowledged may exist, but only with their full value.
    for label in labels.iter().filter(|l| !acked.contains_key(*l)) {
        let r = get(&c, &format!("{url2}/v1/dataObject/{label}")).await;
        let v = unb64(r.body["value"].as_str().unwrap());
        assert!(
            String::from_utf8(v)
                .unwrap()
                .starts_with(&format!("value of {label}"))
        );
    }
    // No plaintext on disk.
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let bytes = std::fs::read(e.path()).unwrap();
                assert!(
                    !bytes.windows(8).any(|w| w == b"value of"),
                    "plaintext in {:?}",
                    e.path()
                );
                assert!(
                    !e.file_name().to_string_lossy().contains(".tmp-"),
                    "temp file left over"
                );
            }
        }
    }
    child2.start_kill().unwrap();
    child2.wait().await.unwrap();
}
