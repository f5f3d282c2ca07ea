//! Encryption and decryption with the TSB `cipherAlgorithm` names.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    self as awc, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext,
    PaddedBlockDecryptingKey, PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
    OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, Pkcs1PrivateDecryptingKey,
    Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use cbc::cipher::block_padding::{NoPadding, Pkcs7};
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit, StreamCipher};

use super::keys::Kind;
use super::{CryptoError, Encrypted, KeyMaterial};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Aes,
    Camellia,
    Tdea,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    CbcPkcs7,
    CbcNoPadding,
    Ecb,
}

#[derive(Debug, Clone, Copy)]
enum CipherAlg {
    Block(Block, Mode),
    AesGcm,
    AesCtr,
    RsaPkcs1,
    RsaOaep(&'static OaepAlgorithm),
    ChaCha20,
    ChaCha20Aead,
}

fn parse(name: &str) -> Result<CipherAlg, CryptoError> {
    let unsupported =
        || CryptoError::UnsupportedCipher(format!("cipher algorithm {name} is not supported"));
    Ok(match name.trim().to_ascii_uppercase().as_str() {
        // JCE defaults: "AES" = AES/CBC/PKCS5Padding; ECB variants are without padding (PKCS#11 style).
        "AES" | "AES_CBC" => CipherAlg::Block(Block::Aes, Mode::CbcPkcs7),
        "AES_CBC_NO_PADDING" => CipherAlg::Block(Block::Aes, Mode::CbcNoPadding),
        "AES_ECB" => CipherAlg::Block(Block::Aes, Mode::Ecb),
        "AES_GCM" => CipherAlg::AesGcm,
        "AES_CTR" => CipherAlg::AesCtr,
        "CAMELLIA" | "CAMELLIA_CBC" => CipherAlg::Block(Block::Camellia, Mode::CbcPkcs7),
        "CAMELLIA_CBC_NO_PADDING" => CipherAlg::Block(Block::Camellia, Mode::CbcNoPadding),
        "CAMELLIA_ECB" => CipherAlg::Block(Block::Camellia, Mode::Ecb),
        "TDEA_CBC" => CipherAlg::Block(Block::Tdea, Mode::CbcPkcs7),
        "TDEA_CBC_NO_PADDING" => CipherAlg::Block(Block::Tdea, Mode::CbcNoPadding),
        "TDEA_ECB" => CipherAlg::Block(Block::Tdea, Mode::Ecb),
        "CHACHA20" => CipherAlg::ChaCha20,
        "CHACHA20_AEAD" => CipherAlg::ChaCha20Aead,
        "RSA" | "RSA_PADDING_PKCS" => CipherAlg::RsaPkcs1,
        "RSA_PADDING_OAEP" | "RSA_PADDING_OAEP_WITH_SHA1" => {
            CipherAlg::RsaOaep(&OAEP_SHA1_MGF1SHA1)
        }
        "RSA_PADDING_OAEP_WITH_SHA256" => CipherAlg::RsaOaep(&OAEP_SHA256_MGF1SHA256),
        "RSA_PADDING_OAEP_WITH_SHA384" => CipherAlg::RsaOaep(&OAEP_SHA384_MGF1SHA384),
        "RSA_PADDING_OAEP_WITH_SHA512" => CipherAlg::RsaOaep(&OAEP_SHA512_MGF1SHA512),
        // RSA_PADDING_OAEP_WITH_SHA224 and RSA_NO_PADDING: aws-lc-rs offers neither.
        _ => return Err(unsupported()),
    })
}

fn required_kind(alg: CipherAlg) -> Kind {
    match alg {
        CipherAlg::Block(Block::Aes, _) | CipherAlg::AesGcm | CipherAlg::AesCtr => Kind::Aes,
        CipherAlg::Block(Block::Camellia, _) => Kind::Camellia,
        CipherAlg::Block(Block::Tdea, _) => Kind::Tdea,
        CipherAlg::RsaPkcs1 | CipherAlg::RsaOaep(_) => Kind::Rsa,
        CipherAlg::ChaCha20 | CipherAlg::ChaCha20Aead => Kind::ChaCha20,
    }
}

fn parse_for(key: &KeyMaterial, name: &str) -> Result<CipherAlg, CryptoError> {
    let alg = parse(name)?;
    if Kind::of(key)? != required_kind(alg) {
        return Err(CryptoError::AlgorithmNotSupportedByKey(format!(
            "{name} cannot be used with a {} key",
            key.algorithm()
        )));
    }
    Ok(alg)
}

/// Tag length in bytes: GCM allows 64, 96..=128 bits (0/None = 128); other AEADs only 128.
fn tag_len(tag_length_bits: Option<u32>, gcm: bool) -> Result<usize, CryptoError> {
    match tag_length_bits {
        None | Some(0) | Some(128) => Ok(16),
        Some(b @ (64 | 96 | 104 | 112 | 120)) if gcm => Ok((b / 8) as usize),
        Some(b) => Err(CryptoError::TagLength(format!(
            "tag length {b} is not supported"
        ))),
    }
}

fn random(len: usize) -> Result<Vec<u8>, CryptoError> {
    super::random_bytes(len)
}

fn failed() -> CryptoError {
    CryptoError::Hsm("encryption failed".into())
}

fn aes_key(secret: &[u8]) -> Result<UnboundCipherKey, CryptoError> {
    let alg = match secret.len() {
        16 => &awc::AES_128,
        24 => &awc::AES_192,
        32 => &awc::AES_256,
        _ => return Err(CryptoError::KeySize("AES key length".into())),
    };
    UnboundCipherKey::new(alg, secret).map_err(|_| failed())
}

fn gcm_key(secret: &[u8]) -> Result<LessSafeKey, CryptoError> {
    let alg = match secret.len() {
        16 => &aead::AES_128_GCM,
        24 => &aead::AES_192_GCM,
        32 => &aead::AES_256_GCM,
        _ => return Err(CryptoError::KeySize("AES key length".into())),
    };
    Ok(LessSafeKey::new(
        UnboundKey::new(alg, secret).map_err(|_| failed())?,
    ))
}

fn iv16(iv: Option<&[u8]>) -> Result<FixedLength<16>, CryptoError> {
    let iv =
        iv.ok_or_else(|| CryptoError::InvalidPayload("initializationVector is required".into()))?;
    let arr: [u8; 16] = iv
        .try_into()
        .map_err(|_| CryptoError::InvalidPayload("initializationVector must be 16 bytes".into()))?;
    Ok(FixedLength::from(arr))
}

fn need_iv(iv: Option<&[u8]>, len: usize) -> Result<&[u8], CryptoError> {
    match iv {
        Some(v) if v.len() == len => Ok(v),
        Some(_) => Err(CryptoError::InvalidPayload(format!(
            "initializationVector must be {len} bytes"
        ))),
        None => Err(CryptoError::InvalidPayload(
            "initializationVector is required".into(),
        )),
    }
}

fn plain(ciphertext: Vec<u8>, iv: Option<Vec<u8>>) -> Encrypted {
    Encrypted {
        encrypted_payload: ciphertext.clone(),
        without_mac: ciphertext,
        iv,
        mac: None,
    }
}

pub(crate) fn encrypt(
    key: &KeyMaterial,
    name: &str,
    payload: &[u8],
    tag_length_bits: Option<u32>,
    aad: Option<&[u8]>,
) -> Result<Encrypted, CryptoError> {
    let alg = parse_for(key, name)?;
    if !matches!(alg, CipherAlg::AesGcm | CipherAlg::ChaCha20Aead)
        && aad.is_some_and(|a| !a.is_empty())
    {
        return Err(CryptoError::InvalidPayload(format!(
            "{name} takes no additional authentication data"
        )));
    }
    match alg {
        CipherAlg::RsaPkcs1 | CipherAlg::RsaOaep(_) => {
            let pk = PublicEncryptingKey::from_der(key.public_bytes()?)
                .map_err(|e| CryptoError::KeyEncoding(e.to_string()))?;
            let out = match alg {
                CipherAlg::RsaOaep(oaep) => {
                    let k = OaepPublicEncryptingKey::new(pk).map_err(|_| failed())?;
                    if payload.len() > k.max_plaintext_size(oaep) {
                        return Err(CryptoError::InvalidPayload(
                            "payload too long for RSA-OAEP".into(),
                        ));
                    }
                    let mut out = vec![0u8; k.ciphertext_size()];
                    let n = k
                        .encrypt(oaep, payload, &mut out, None)
                        .map_err(|_| failed())?
                        .len();
                    out.truncate(n);
                    out
                }
                _ => {
                    let k = Pkcs1PublicEncryptingKey::new(pk).map_err(|_| failed())?;
                    if payload.len() > k.max_plaintext_size() {
                        return Err(CryptoError::InvalidPayload(
                            "payload too long for RSA PKCS#1".into(),
                        ));
                    }
                    let mut out = vec![0u8; k.ciphertext_size()];
                    let n = k.encrypt(payload, &mut out).map_err(|_| failed())?.len();
                    out.truncate(n);
                    out
                }
            };
            Ok(plain(out, None))
        }
        CipherAlg::AesGcm | CipherAlg::ChaCha20Aead => {
            let gcm = matches!(alg, CipherAlg::AesGcm);
            let tlen = tag_len(tag_length_bits, gcm)?;
            let secret = key.private_bytes()?;
            let k = if gcm {
                gcm_key(secret)?
            } else {
                LessSafeKey::new(
                    UnboundKey::new(&aead::CHACHA20_POLY1305, secret).map_err(|_| failed())?,
                )
            };
            let iv = random(12)?;
            let nonce = Nonce::try_assume_unique_for_key(&iv).map_err(|_| failed())?;
            let mut buf = payload.to_vec();
            let tag = k
                .seal_in_place_separate_tag(nonce, Aad::from(aad.unwrap_or_default()), &mut buf)
                .map_err(|_| failed())?;
            let mac = tag.as_ref()[..tlen].to_vec();
            let mut full = buf.clone();
            full.extend_from_slice(&mac);
            Ok(Encrypted {
                encrypted_payload: full,
                without_mac: buf,
                iv: Some(iv),
                mac: Some(mac),
            })
        }
        CipherAlg::AesCtr => {
            let iv = random(16)?;
            let k = EncryptingKey::ctr(aes_key(key.private_bytes()?)?).map_err(|_| failed())?;
            let mut buf = payload.to_vec();
            k.less_safe_encrypt(&mut buf, EncryptionContext::Iv128(iv16(Some(&iv))?))
                .map_err(|_| failed())?;
            Ok(plain(buf, Some(iv)))
        }
        CipherAlg::ChaCha20 => {
            let iv = random(12)?;
            let mut c = chacha20::ChaCha20::new_from_slices(key.private_bytes()?, &iv)
                .map_err(|_| failed())?;
            let mut buf = payload.to_vec();
            c.apply_keystream(&mut buf);
            Ok(plain(buf, Some(iv)))
        }
        CipherAlg::Block(block, mode) => {
            let secret = key.private_bytes()?;
            let bs = if block == Block::Tdea { 8 } else { 16 };
            if mode != Mode::CbcPkcs7 && !payload.len().is_multiple_of(bs) {
                return Err(CryptoError::InvalidPayload(format!(
                    "{name} needs a payload that is a multiple of {bs} bytes"
                )));
            }
            let iv = if mode == Mode::Ecb {
                None
            } else {
                Some(random(bs)?)
            };
            let out = block_encrypt(block, mode, secret, iv.as_deref(), payload)?;
            Ok(plain(out, iv))
        }
    }
}

pub(crate) fn decrypt(
    key: &KeyMaterial,
    name: &str,
    ciphertext: &[u8],
    iv: Option<&[u8]>,
    tag_length_bits: Option<u32>,
    aad: Option<&[u8]>,
) -> Result<Vec<u8>, CryptoError> {
    let alg = parse_for(key, name)?;
    match alg {
        CipherAlg::RsaPkcs1 | CipherAlg::RsaOaep(_) => {
            let sk = PrivateDecryptingKey::from_pkcs8(key.private_bytes()?)
                .map_err(|e| CryptoError::KeyEncoding(e.to_string()))?;
            match alg {
                CipherAlg::RsaOaep(oaep) => {
                    let k = OaepPrivateDecryptingKey::new(sk)
                        .map_err(|_| CryptoError::DecryptFailed)?;
                    let mut out = vec![0u8; k.min_output_size()];
                    let n = k
                        .decrypt(oaep, ciphertext, &mut out, None)
                        .map_err(|_| CryptoError::DecryptFailed)?
                        .len();
                    out.truncate(n);
                    Ok(out)
                }
                _ => {
                    let k = Pkcs1PrivateDecryptingKey::new(sk)
                        .map_err(|_| CryptoError::DecryptFailed)?;
                    let mut out = vec![0u8; k.min_output_size()];
                    let n = k
                        .decrypt(ciphertext, &mut out)
                        .map_err(|_| CryptoError::DecryptFailed)?
                        .len();
                    out.truncate(n);
                    Ok(out)
                }
            }
        }
        CipherAlg::AesGcm | CipherAlg::ChaCha20Aead => {
            let gcm = matches!(alg, CipherAlg::AesGcm);
            let tlen = tag_len(tag_length_bits, gcm)?;
            let iv = need_iv(iv, 12)?;
            if ciphertext.len() < tlen {
                return Err(CryptoError::DecryptFailed);
            }
            let secret = key.private_bytes()?;
            let k = if gcm {
                gcm_key(secret)?
            } else {
                LessSafeKey::new(
                    UnboundKey::new(&aead::CHACHA20_POLY1305, secret).map_err(|_| failed())?,
                )
            };
            let aad = aad.unwrap_or_default();
            let nonce =
                || Nonce::try_assume_unique_for_key(iv).map_err(|_| CryptoError::DecryptFailed);
            if tlen == 16 {
                let mut buf = ciphertext.to_vec();
                let n = k
                    .open_in_place(nonce()?, Aad::from(aad), &mut buf)
                    .map_err(|_| CryptoError::DecryptFailed)?
                    .len();
                buf.truncate(n);
                return Ok(buf);
            }
            gcm_open_truncated(secret, &k, iv, aad, ciphertext, tlen)
        }
        CipherAlg::AesCtr => {
            let k = DecryptingKey::ctr(aes_key(key.private_bytes()?)?).map_err(|_| failed())?;
            let mut buf = ciphertext.to_vec();
            let n = k
                .decrypt(&mut buf, DecryptionContext::Iv128(iv16(iv)?))
                .map_err(|_| CryptoError::DecryptFailed)?
                .len();
            buf.truncate(n);
            Ok(buf)
        }
        CipherAlg::ChaCha20 => {
            let iv = need_iv(iv, 12)?;
            let mut c = chacha20::ChaCha20::new_from_slices(key.private_bytes()?, iv)
                .map_err(|_| failed())?;
            let mut buf = ciphertext.to_vec();
            c.apply_keystream(&mut buf);
            Ok(buf)
        }
        CipherAlg::Block(block, mode) => {
            let bs = if block == Block::Tdea { 8 } else { 16 };
            if !ciphertext.len().is_multiple_of(bs)
                || (mode == Mode::CbcPkcs7 && ciphertext.is_empty())
            {
                return Err(CryptoError::DecryptFailed);
            }
            let iv = if mode == Mode::Ecb {
                None
            } else {
                Some(need_iv(iv, bs)?)
            };
            block_decrypt(block, mode, key.private_bytes()?, iv, ciphertext)
        }
    }
}

/// GCM with a truncated tag: aws-lc-rs only opens full 128-bit tags, so decrypt with the
/// GCM keystream (AES-CTR from counter block IV||2), re-seal the plaintext with the same
/// key/nonce/AAD (GCM is deterministic) and compare the tag prefix in constant time.
fn gcm_open_truncated(
    secret: &[u8],
    k: &LessSafeKey,
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tlen: usize,
) -> Result<Vec<u8>, CryptoError> {
    let (ct, tag) = ciphertext.split_at(ciphertext.len() - tlen);
    let mut counter = [0u8; 16];
    counter[..12].copy_from_slice(iv);
    counter[15] = 2;
    let ctr = EncryptingKey::ctr(aes_key(secret)?).map_err(|_| failed())?;
    let mut plaintext = ct.to_vec();
    ctr.less_safe_encrypt(
        &mut plaintext,
        EncryptionContext::Iv128(FixedLength::from(counter)),
    )
    .map_err(|_| CryptoError::DecryptFailed)?;
    let mut check = plaintext.clone();
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| CryptoError::DecryptFailed)?;
    let full = k
        .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut check)
        .map_err(|_| CryptoError::DecryptFailed)?;
    let same_ct = aws_lc_rs::constant_time::verify_slices_are_equal(&check, ct).is_ok();
    let same_tag =
        aws_lc_rs::constant_time::verify_slices_are_equal(&full.as_ref()[..tlen], tag).is_ok();
    if same_ct && same_tag {
        Ok(plaintext)
    } else {
        Err(CryptoError::DecryptFailed)
    }
}

fn block_encrypt(
    block: Block,
    mode: Mode,
    secret: &[u8],
    iv: Option<&[u8]>,
    payload: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    match block {
        Block::Aes => {
            let key = aes_key(secret)?;
            let mut buf = payload.to_vec();
            match mode {
                Mode::CbcPkcs7 => {
                    let k = PaddedBlockEncryptingKey::cbc_pkcs7(key).map_err(|_| failed())?;
                    k.less_safe_encrypt(&mut buf, EncryptionContext::Iv128(iv16(iv)?))
                        .map_err(|_| failed())?;
                }
                Mode::CbcNoPadding => {
                    let k = EncryptingKey::cbc(key).map_err(|_| failed())?;
                    k.less_safe_encrypt(&mut buf, EncryptionContext::Iv128(iv16(iv)?))
                        .map_err(|_| failed())?;
                }
                Mode::Ecb => {
                    let k = EncryptingKey::ecb(key).map_err(|_| failed())?;
                    k.less_safe_encrypt(&mut buf, EncryptionContext::None)
                        .map_err(|_| failed())?;
                }
            }
            Ok(buf)
        }
        Block::Camellia => match secret.len() {
            16 => rc_encrypt::<camellia::Camellia128>(mode, secret, iv, payload),
            24 => rc_encrypt::<camellia::Camellia192>(mode, secret, iv, payload),
            32 => rc_encrypt::<camellia::Camellia256>(mode, secret, iv, payload),
            _ => Err(CryptoError::KeySize("Camellia key length".into())),
        },
        Block::Tdea => rc_encrypt::<des::TdesEde3>(mode, secret, iv, payload),
    }
}

fn block_decrypt(
    block: Block,
    mode: Mode,
    secret: &[u8],
    iv: Option<&[u8]>,
    ct: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    match block {
        Block::Aes => {
            let key = aes_key(secret)?;
            let mut buf = ct.to_vec();
            let n = match mode {
                Mode::CbcPkcs7 => {
                    let k = PaddedBlockDecryptingKey::cbc_pkcs7(key).map_err(|_| failed())?;
                    k.decrypt(&mut buf, DecryptionContext::Iv128(iv16(iv)?))
                        .map_err(|_| CryptoError::DecryptFailed)?
                        .len()
                }
                Mode::CbcNoPadding => {
                    let k = DecryptingKey::cbc(key).map_err(|_| failed())?;
                    k.decrypt(&mut buf, DecryptionContext::Iv128(iv16(iv)?))
                        .map_err(|_| CryptoError::DecryptFailed)?
                        .len()
                }
                Mode::Ecb => {
                    let k = DecryptingKey::ecb(key).map_err(|_| failed())?;
                    k.decrypt(&mut buf, DecryptionContext::None)
                        .map_err(|_| CryptoError::DecryptFailed)?
                        .len()
                }
            };
            buf.truncate(n);
            Ok(buf)
        }
        Block::Camellia => match secret.len() {
            16 => rc_decrypt::<camellia::Camellia128>(mode, secret, iv, ct),
            24 => rc_decrypt::<camellia::Camellia192>(mode, secret, iv, ct),
            32 => rc_decrypt::<camellia::Camellia256>(mode, secret, iv, ct),
            _ => Err(CryptoError::KeySize("Camellia key length".into())),
        },
        Block::Tdea => rc_decrypt::<des::TdesEde3>(mode, secret, iv, ct),
    }
}

/// CBC/ECB over a RustCrypto block cipher (Camellia, TDEA).
fn rc_encrypt<C>(
    mode: Mode,
    secret: &[u8],
    iv: Option<&[u8]>,
    payload: &[u8],
) -> Result<Vec<u8>, CryptoError>
where
    C: cbc::cipher::BlockCipherEncrypt + KeyInit,
{
    let key_err = |_| CryptoError::KeySize("block cipher key length".into());
    Ok(match mode {
        Mode::CbcPkcs7 => cbc::Encryptor::<C>::new_from_slices(secret, iv.unwrap_or_default())
            .map_err(key_err)?
            .encrypt_padded_vec::<Pkcs7>(payload),
        Mode::CbcNoPadding => cbc::Encryptor::<C>::new_from_slices(secret, iv.unwrap_or_default())
            .map_err(key_err)?
            .encrypt_padded_vec::<NoPadding>(payload),
        Mode::Ecb => ecb::Encryptor::<C>::new_from_slice(secret)
            .map_err(key_err)?
            .encrypt_padded_vec::<NoPadding>(payload),
    })
}

fn rc_decrypt<C>(
    mode: Mode,
    secret: &[u8],
    iv: Option<&[u8]>,
    ct: &[u8],
) -> Result<Vec<u8>, CryptoError>
where
    C: cbc::cipher::BlockCipherDecrypt + KeyInit,
{
    let key_err = |_| CryptoError::KeySize("block cipher key length".into());
    let res = match mode {
        Mode::CbcPkcs7 => cbc::Decryptor::<C>::new_from_slices(secret, iv.unwrap_or_default())
            .map_err(key_err)?
            .decrypt_padded_vec::<Pkcs7>(ct),
        Mode::CbcNoPadding => cbc::Decryptor::<C>::new_from_slices(secret, iv.unwrap_or_default())
            .map_err(key_err)?
            .decrypt_padded_vec::<NoPadding>(ct),
        Mode::Ecb => ecb::Decryptor::<C>::new_from_slice(secret)
            .map_err(key_err)?
            .decrypt_padded_vec::<NoPadding>(ct),
    };
    res.map_err(|_| CryptoError::DecryptFailed)
}
