//! `POST /v1/key/keyAttestation`: a zip of the key's attestation XML (the same XML the key
//! descriptor carries), its signature by the attestation key, that key's public key and
//! certificate, and a README — the files a real TSB hands out (reference §4.3).

use std::io::{Cursor, Write as _};

use serde::Deserialize;
use time::OffsetDateTime;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::{ATTESTATION_KEY_NAME, attestation_xml, check_password, sign_attestation, snapshot};
use crate::error::TsbError;
use crate::server::{Ctx, Reply};
use crate::wire::{self, Password, parse_body, required_str};

/// The attestation key's certificate in the zip (the name a Primus HSM gives it).
const CERTIFICATE_FILE: &str = "PrimusHSM_Attestation.crt";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttestationReq {
    label: Option<String>,
    password: Option<Password>,
}

/// Attests a key: 650 for an unknown key, 620 for a wrong or missing key password.
pub(crate) async fn key_attestation(ctx: &Ctx<'_>) -> Result<Reply, TsbError> {
    let req: AttestationReq = parse_body(ctx.body)?;
    let label = required_str(req.label, "label")?;
    let key = {
        let st = ctx.part.state.lock().await;
        let key = snapshot(&st, &label)?;
        check_password(&key, req.password.as_ref(), true)?;
        key
    };
    let now = ctx.shared.clock.now();
    let xml = attestation_xml(&key, now);
    let signature = sign_attestation(ctx.shared, &xml)?;
    let public_key = ctx
        .shared
        .attestation
        .public_key_der()
        .ok_or_else(|| TsbError::new(701, "the attestation key has no public key"))?;
    let entries = [
        (format!("{label}.xml"), xml.into_bytes()),
        (format!("{label}.sig"), signature),
        (
            format!("{label}.pem"),
            wire::pem_encode("PUBLIC KEY", &public_key).into_bytes(),
        ),
        (
            CERTIFICATE_FILE.to_owned(),
            ctx.shared.attestation_certificate.clone().into_bytes(),
        ),
        ("README".to_owned(), readme(&label).into_bytes()),
    ];
    Ok(Reply::File {
        content_type: "application/zip",
        filename: format!("{}-attestation.zip", file_name_part(&label)),
        body: zip(&entries, now)?,
    })
}

fn readme(label: &str) -> String {
    format!(
        "Key attestation of '{label}' (TSB emulator)\n\
         \n\
         {label}.xml  the key's attributes as the HSM attests them\n\
         {label}.sig  signature of {label}.xml by the attestation key '{ATTESTATION_KEY_NAME}'\n\
         \x20            (ECDSA P-256 over SHA-256, DER)\n\
         {label}.pem  the attestation key's public key\n\
         {CERTIFICATE_FILE}  the attestation key's certificate; the emulator signs it itself\n\
         \x20            (a Primus HSM's chains to the Securosys root)\n\
         \n\
         Verify the signature:\n\
         \x20 openssl dgst -sha256 -verify '{label}.pem' -signature '{label}.sig' '{label}.xml'\n"
    )
}

/// `label` as a download file name: characters outside `[A-Za-z0-9._-]` become `_`, so the
/// `Content-Disposition` header never needs quoting rules.
fn file_name_part(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A zip of `entries` (stored, not compressed: a few kilobytes of text), dated `now`.
fn zip(entries: &[(String, Vec<u8>)], now: OffsetDateTime) -> Result<Vec<u8>, TsbError> {
    let failed = |e: &dyn std::fmt::Display| TsbError::io(format!("cannot build the zip: {e}"));
    let date = DateTime::from_date_and_time(
        u16::try_from(now.year()).unwrap_or(1980),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
    )
    .unwrap_or_default();
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(date);
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        writer
            .start_file(name.as_str(), options)
            .map_err(|e| failed(&e))?;
        writer.write_all(data).map_err(|e| failed(&e))?;
    }
    Ok(writer.finish().map_err(|e| failed(&e))?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_plain() {
        assert_eq!(file_name_part("web-signing_1.v2"), "web-signing_1.v2");
        assert_eq!(file_name_part("a \"b\"/ä"), "a__b___");
    }
}
