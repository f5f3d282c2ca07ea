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
    /// Starts `keymanager <args>` with stdout captured (stderr goes to the test's output).
    pub fn start(args: &[&str]) -> Process {
        Self::spawn(args, &[], false)
    }

    /// Starts `keymanager <args>` with extra environment variables, capturing stdout and stderr
    /// into one stream of lines (`serve` prints its summary and errors on stderr).
    pub fn start_capturing_all(args: &[&str], envs: &[(&str, &str)]) -> Process {
        Self::spawn(args, envs, true)
    }

    fn spawn(args: &[&str], envs: &[(&str, &str)], capture_stderr: bool) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keymanager"));
        command
            .args(args)
            .env("RUST_LOG", "warn")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(if capture_stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            });
        let mut child = command.spawn().expect("keymanager starts");
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        forward_lines(stdout, sender.clone());
        if let Some(stderr) = child.stderr.take() {
            forward_lines(stderr, sender);
        }
        Process {
            child,
            lines,
            output: Vec::new(),
        }
    }

    /// Waits for the process to exit by itself (panics after `timeout`); returns its exit status
    /// and everything it printed.
    pub fn wait_for_exit(mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => self.output.push(line),
                Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {}
            }
            assert!(
                Instant::now() < deadline,
                "keymanager did not exit within {timeout:?}; printed {:#?}",
                self.output
            );
        };
        // The readers end when the pipes close.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.output.push(line);
        }
        (status, self.output.join("\n"))
    }

    /// Sends SIGTERM (what a container runtime sends) and waits for the exit status.
    pub fn terminate(self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        self.wait_for_exit(timeout)
    }

    /// Reads the captured output until a line contains `needle`; panics with everything read after `timeout`.
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
                Err(_) => panic!(
                    "no line containing {needle:?} within {timeout:?}; got {:#?}",
                    self.output
                ),
            }
        }
    }

    /// The first whitespace-separated word starting with `http` in the line containing `label`
    /// (already read by `wait_for_line`).
    pub fn url_after(&self, label: &str) -> String {
        self.output
            .iter()
            .find(|line| line.contains(label))
            .and_then(|line| {
                line.split_whitespace()
                    .find(|word| word.starts_with("http"))
            })
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

fn forward_lines(pipe: impl std::io::Read + Send + 'static, sender: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
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
