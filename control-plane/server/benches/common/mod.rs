//! What the control-plane benches share: the ECDSA verifier the binary wires, and latency
//! statistics with their formatting.

use std::time::Duration;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use km_core::SignatureVerifier;

/// aws-lc-rs behind the verifier port (as the binary wires it).
pub struct Verifier;

impl SignatureVerifier for Verifier {
    fn verify_ecdsa_p256_sha256(&self, spki: &[u8], message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, spki)
            .verify(message, signature)
            .is_ok()
    }
}

/// Latency percentiles of one series.
#[derive(Clone, Copy)]
pub struct Stats {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub samples: usize,
}

/// The percentiles of `latencies`.
pub fn stats(mut latencies: Vec<Duration>) -> Stats {
    assert!(!latencies.is_empty(), "no samples");
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: at(1.0),
        samples: latencies.len(),
    }
}

/// A duration for a table cell.
pub fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 100_000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.0} ms", us / 1000.0)
    }
}
