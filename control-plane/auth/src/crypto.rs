//! Randomness and hashing for identity, from aws-lc-rs.

use aws_lc_rs::{constant_time, digest, hmac, rand};
use km_core::identity::{CryptoError, IdentityCrypto};

/// aws-lc-rs behind the [`IdentityCrypto`] port (the process's only crypto library).
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsLcCrypto;

impl IdentityCrypto for AwsLcCrypto {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        rand::fill(out).map_err(|_| CryptoError("the system random generator failed".to_owned()))
    }

    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
        out
    }

    fn hmac_sha256(&self, key: &[u8], message: &[u8]) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&key, message).as_ref());
        out
    }

    fn constant_time_eq(&self, a: &[u8], b: &[u8]) -> bool {
        constant_time::verify_slices_are_equal(a, b).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_and_hmac_match_published_vectors() {
        let crypto = AwsLcCrypto;
        assert_eq!(
            hex::encode(crypto.sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hex::encode(crypto.hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn random_fills_and_differs_and_comparison_is_exact() {
        let crypto = AwsLcCrypto;
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        crypto.fill_random(&mut a).unwrap();
        crypto.fill_random(&mut b).unwrap();
        assert_ne!(a, b);
        assert!(crypto.constant_time_eq(&a, &a));
        assert!(!crypto.constant_time_eq(&a, &b));
        assert!(!crypto.constant_time_eq(&a, &a[..31]));
    }
}
