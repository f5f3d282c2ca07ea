//! RFC 6238 TOTP with totp-rs: SHA-1, 6 digits, 30-second steps, ±1 step — the parameters every
//! authenticator app understands. QR codes are rendered here (PNG, as a data URL) so the seed
//! never leaves the server for a third-party QR service.

use km_core::identity::{TotpEnrolmentArtifacts, TotpError, TotpProvider, TotpSecret};
use km_core::{SecretText, Timestamp};
use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroizing;

/// Seed length: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
const DIGITS: u8 = 6;
const STEP_SECS: u64 = 30;
const SKEW_STEPS: u16 = 1;

/// The totp-rs adapter of the [`TotpProvider`] port.
#[derive(Debug, Clone, Copy, Default)]
pub struct TotpRsProvider;

impl TotpRsProvider {
    /// The provider (stateless).
    pub fn new() -> Self {
        Self
    }

    fn build(secret: &TotpSecret, issuer: Option<&str>, account: &str) -> Result<Totp, TotpError> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_step_duration(STEP_SECS)
            .with_skew(SKEW_STEPS)
            .with_secret(secret.as_bytes().to_vec())
            .with_issuer(issuer)
            .with_account_name(account)
            .build()
            .map_err(|error| TotpError::Invalid(error.to_string()))
    }

    /// The code an authenticator shows at `at` for `secret` — for tests and tooling (e.g. a
    /// headless browser test that must pass the second factor).
    pub fn code_at(&self, secret: &TotpSecret, at: Timestamp) -> Result<SecretText, TotpError> {
        Ok(SecretText::new(
            Self::build(secret, None, "")?.generate(at).to_string(),
        ))
    }

    /// Decodes the base32 seed shown for manual entry (what a user types into an app).
    pub fn secret_from_base32(&self, base32: &str) -> Result<TotpSecret, TotpError> {
        let decoded = Secret::try_from_base32(base32.trim())
            .map_err(|error| TotpError::Invalid(error.to_string()))?;
        Ok(TotpSecret::from_bytes(decoded.as_bytes().to_vec()))
    }
}

impl TotpProvider for TotpRsProvider {
    fn generate_secret(&self) -> Result<TotpSecret, TotpError> {
        let mut bytes = vec![0u8; SECRET_BYTES];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| TotpError::Failed("the system random generator failed".to_owned()))?;
        Ok(TotpSecret::from_bytes(bytes))
    }

    fn enrolment(
        &self,
        secret: &TotpSecret,
        issuer: &str,
        account: &str,
    ) -> Result<TotpEnrolmentArtifacts, TotpError> {
        let totp = Self::build(secret, Some(issuer), account)?;
        let url = Zeroizing::new(
            totp.to_url()
                .map_err(|error| TotpError::Invalid(error.to_string()))?,
        );
        let png = Zeroizing::new(
            totp.to_qr_base64()
                .map_err(|error| TotpError::Failed(format!("QR rendering failed: {error}")))?,
        );
        Ok(TotpEnrolmentArtifacts {
            otpauth_url: SecretText::new(url.to_string()),
            secret_base32: SecretText::new(totp.secret().to_base32()),
            qr_png_data_url: SecretText::new(format!("data:image/png;base64,{}", png.as_str())),
        })
    }

    fn verify(&self, secret: &TotpSecret, code: &str, at: Timestamp) -> Option<u64> {
        if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // A seed totp-rs refuses (e.g. too short) can only come from a corrupted record: it
        // simply never verifies.
        Self::build(secret, None, "")
            .ok()
            .and_then(|totp| totp.check(code, at))
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::hmac;
    use base64::Engine as _;

    use super::*;

    /// RFC 4226 §5.3 HOTP, written out from the RFC with aws-lc-rs HMAC-SHA1: an independent
    /// generator to check the adapter against (not used outside tests).
    fn reference_code(secret: &[u8], time: u64) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
        let counter = (time / 30).to_be_bytes();
        let mac = hmac::sign(&key, &counter);
        let mac = mac.as_ref();
        let offset = usize::from(mac[19] & 0x0f);
        let binary = (u32::from(mac[offset]) & 0x7f) << 24
            | u32::from(mac[offset + 1]) << 16
            | u32::from(mac[offset + 2]) << 8
            | u32::from(mac[offset + 3]);
        format!("{:06}", binary % 1_000_000)
    }

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn matches_the_rfc_6238_sha1_test_vectors() {
        // Appendix B gives 8-digit codes; a 6-digit code is the last six digits of the same value.
        let vectors = [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        let provider = TotpRsProvider::new();
        for (time, eight) in vectors {
            let six = &eight[2..];
            assert_eq!(
                provider
                    .code_at(&rfc_secret(), time)
                    .unwrap()
                    .expose_secret(),
                six
            );
            assert_eq!(reference_code(b"12345678901234567890", time), six);
            assert_eq!(provider.verify(&rfc_secret(), six, time), Some(time / 30));
        }
    }

    #[test]
    fn agrees_with_the_independent_generator_on_random_seeds() {
        let provider = TotpRsProvider::new();
        for round in 0..50u64 {
            let secret = provider.generate_secret().unwrap();
            assert_eq!(secret.as_bytes().len(), 20);
            let time = 1_700_000_000 + round * 7_919;
            let expected = reference_code(secret.as_bytes(), time);
            assert_eq!(
                provider.code_at(&secret, time).unwrap().expose_secret(),
                expected
            );
            assert_eq!(provider.verify(&secret, &expected, time), Some(time / 30));
        }
    }

    #[test]
    fn accepts_one_step_of_skew_and_reports_the_matched_step() {
        let provider = TotpRsProvider::new();
        let secret = provider.generate_secret().unwrap();
        let now = 1_700_000_010u64; // step 56_666_667
        let step = now / 30;
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let at = (now as i64 + offset * 30) as u64;
            let code = reference_code(secret.as_bytes(), at);
            let expected = accepted.then_some((step as i64 + offset) as u64);
            // A code from another step might collide by chance (1 in 10^6); that is not what
            // this test is about, so only check when it is unambiguous.
            if expected.is_none() && provider.verify(&secret, &code, now).is_some() {
                continue;
            }
            assert_eq!(
                provider.verify(&secret, &code, now),
                expected,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn refuses_malformed_codes() {
        let provider = TotpRsProvider::new();
        let secret = rfc_secret();
        for bad in ["", "28708", "2870822", "28708a", " 287082", "２８７０８２"] {
            assert_eq!(provider.verify(&secret, bad, 59), None, "{bad:?}");
        }
    }

    #[test]
    fn enrolment_gives_an_otpauth_url_a_base32_seed_and_a_png_qr_code() {
        let provider = TotpRsProvider::new();
        let secret = provider.generate_secret().unwrap();
        let artifacts = provider
            .enrolment(&secret, "keymanager", "alice@example.com")
            .unwrap();
        let url = artifacts.otpauth_url.expose_secret();
        assert!(
            url.starts_with("otpauth://totp/keymanager:alice%40example.com?"),
            "{url}"
        );
        assert!(url.contains("issuer=keymanager"), "{url}");
        let seed = artifacts.secret_base32.expose_secret();
        assert!(url.contains(&format!("secret={seed}")), "{url}");
        assert_eq!(provider.secret_from_base32(seed).unwrap(), secret);
        let data_url = artifacts.qr_png_data_url.expose_secret();
        let png = data_url.strip_prefix("data:image/png;base64,").unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(png)
            .unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(!format!("{artifacts:?}").contains(seed));
    }

    #[test]
    fn an_issuer_with_a_colon_is_refused() {
        let provider = TotpRsProvider::new();
        let secret = provider.generate_secret().unwrap();
        assert!(matches!(
            provider.enrolment(&secret, "key:manager", "alice"),
            Err(TotpError::Invalid(_))
        ));
    }
}
