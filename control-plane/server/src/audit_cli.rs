//! `keymanager audit`: tools for the audit log that need neither a running keymanager nor an HSM.
//!
//! `keymanager audit verify FILE [--public-key PEM] [--strict]` checks an export (or a captured
//! JSON-lines stream) with km-core's `verify_export`, plugging in aws-lc-rs for the ECDSA P-256
//! checkpoint signatures. Exit status 0 with a summary on stdout when the log is intact; 1 with
//! the first problem, naming the event, on stderr otherwise (also 1, via the usual error report,
//! when the files cannot be read).

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use aws_lc_rs::digest;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use km_core::audit::{SignatureVerifier, VerifyOptions, verify_export};
use rustls::pki_types::SubjectPublicKeyInfoDer;
use rustls::pki_types::pem::PemObject as _;

/// `keymanager audit ...`
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Check an audit export offline: every event hash, every checkpoint signature, and that the
    /// signed checkpoints cover the events. Names the first altered, missing or reordered event.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The export or captured stream (JSON lines); `-` reads standard input.
    file: PathBuf,
    /// The checkpoint key's public key (PEM `PUBLIC KEY`, or DER), as known independently of the
    /// export. Without it the key inside the export is trusted, which cannot detect a log that
    /// was rewritten together with its key line.
    #[arg(long, value_name = "PEM")]
    public_key: Option<PathBuf>,
    /// Also fail when events follow the last signed checkpoint (a live stream has such a tail;
    /// an export made by keymanager never does).
    #[arg(long)]
    strict: bool,
}

/// aws-lc-rs behind km-core's verifier port.
#[derive(Debug, Clone, Copy)]
pub struct AwsLcVerifier;

impl SignatureVerifier for AwsLcVerifier {
    fn verify_ecdsa_p256_sha256(
        &self,
        public_key_spki_der: &[u8],
        message: &[u8],
        signature_der: &[u8],
    ) -> bool {
        // aws-lc-rs takes the SPKI DER directly and checks the key is on P-256.
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key_spki_der)
            .verify(message, signature_der)
            .is_ok()
    }
}

/// Runs `keymanager audit ...`.
pub fn run(args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        AuditCommand::Verify(args) => verify(&args),
    }
}

fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let text = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the export from standard input")?;
        text
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading the export {}", args.file.display()))?
    };
    let pinned_public_key = args
        .public_key
        .as_ref()
        .map(|path| read_public_key(path))
        .transpose()?;
    let options = VerifyOptions {
        pinned_public_key,
        require_full_coverage: args.strict,
    };
    let report = match verify_export(&text, &options, &AwsLcVerifier) {
        Ok(report) => report,
        Err(failure) => {
            // A verdict, not a crash: one line naming the problem, exit status 1.
            eprintln!("audit log verification FAILED: {failure}");
            std::process::exit(1);
        }
    };

    let mut summary = format!("audit log OK: {report}\n");
    if let Some(key) = &report.public_key {
        summary.push_str(&format!(
            "checkpoint key {} (SHA-256 of its public key {}), {}\n",
            report.key_label.as_deref().unwrap_or("(unnamed)"),
            hex::encode(digest::digest(&digest::SHA256, key)),
            if report.key_pinned {
                "pinned with --public-key"
            } else {
                "taken from the export: compare the fingerprint with the one you trust, or pin the key with --public-key"
            }
        ));
    }
    if report.exported_key_differs {
        summary.push_str(
            "note: the export carries a different public key than the pinned one; the pinned key was used\n",
        );
    }
    if let Some((first, last)) = report.uncovered {
        summary.push_str(&format!(
            "WARNING: events {first} to {last} come after the last signed checkpoint: they chain correctly, but nothing signed vouches for them\n"
        ));
    }
    print_out(&summary);
    Ok(())
}

/// A public key file: PEM `PUBLIC KEY` (SPKI) or raw DER.
fn read_public_key(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading the public key {}", path.display()))?;
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let spki = SubjectPublicKeyInfoDer::from_pem_slice(&bytes).map_err(|error| {
            anyhow::anyhow!("{} holds no PEM PUBLIC KEY block: {error}", path.display())
        })?;
        Ok(spki.as_ref().to_vec())
    } else {
        Ok(bytes)
    }
}

#[allow(clippy::print_stdout)] // the summary is the command's output
fn print_out(text: &str) {
    print!("{text}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};

    #[test]
    fn verifies_aws_lc_signatures_against_spki_and_rejects_others() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let spki = pair.public_key().as_der().unwrap();
        let signature = pair.sign(&rng, b"checkpoint").unwrap();
        let verifier = AwsLcVerifier;
        assert!(verifier.verify_ecdsa_p256_sha256(
            spki.as_ref(),
            b"checkpoint",
            signature.as_ref()
        ));
        assert!(!verifier.verify_ecdsa_p256_sha256(
            spki.as_ref(),
            b"checkpoinT",
            signature.as_ref()
        ));
        assert!(!verifier.verify_ecdsa_p256_sha256(b"junk", b"checkpoint", signature.as_ref()));
    }
}
