//! Shared helpers: start the real `keymanager` binary and read what it prints.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `keymanager` process; killed when dropped.
pub struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Everything read from stdout so far.
    pub output: Vec<String>,
}

impl Process {
    /// Starts `keymanager <args>` with stdout captured.
    pub fn start(args: &[&str]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_keymanager"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("keymanager starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Process { child, lines, output: Vec::new() }
    }

    /// Reads stdout until a line contains `needle`; panics with everything read after `timeout`.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.output.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line containing {needle:?} within {timeout:?}; got {:#?}", self.output),
            }
        }
    }

    /// The first whitespace-separated word starting with `http` in the line containing `label`
    /// (already read by `wait_for_line`).
    pub fn url_after(&self, label: &str) -> String {
        self.output
            .iter()
            .find(|line| line.contains(label))
            .and_then(|line| line.split_whitespace().find(|word| word.starts_with("http")))
            .unwrap_or_else(|| panic!("no URL after {label:?} in {:#?}", self.output))
            .to_owned()
    }

    /// SIGKILL: no chance to flush anything that was not already durable.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `url` until it answers `expected`, or panics after `timeout`.
pub async fn wait_for_status(url: &str, expected: u16, timeout: Duration) -> reqwest::Response {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no response yet");
    while Instant::now() < deadline {
        match client.get(url).send().await {
            Ok(response) if response.status().as_u16() == expected => return response,
            Ok(response) => last = format!("status {}", response.status()),
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not answer {expected} within {timeout:?}: {last}");
}
