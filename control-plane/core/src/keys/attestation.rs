//! Key attestation: the HSM's signed statement about a key version (its attributes, public key,
//! creation time), handed on exactly as the HSM produced it — for the TSB a zip of the
//! attestation XML, its signature, the attestation key and that key's certificate. keymanager
//! neither parses nor re-signs it: its worth is that only the HSM could have made it.

use km_domain::{KeyState, TenantId};

use super::{KeyError, KeyService, Located};
use crate::Hsm;

/// A key version's attestation, ready to download.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyAttestation {
    /// A download name: `<hsm label>-attestation.zip`, every character of the label outside
    /// `[A-Za-z0-9._-]` replaced by `_` (so it needs no quoting in a `Content-Disposition`).
    pub file_name: String,
    /// The zip as the HSM handed it out.
    pub zip: Vec<u8>,
}

impl std::fmt::Debug for KeyAttestation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyAttestation")
            .field("file_name", &self.file_name)
            .field("zip_bytes", &self.zip.len())
            .finish()
    }
}

impl KeyService {
    /// The HSM's attestation of `label` (the current version unless `version` says otherwise;
    /// an unmanaged key by its own label). Destroyed versions have nothing left to attest.
    pub async fn attestation(
        &self,
        hsm: &dyn Hsm,
        tenant: &TenantId,
        label: &str,
        version: Option<u32>,
    ) -> Result<KeyAttestation, KeyError> {
        let hsm_label = match self.locate(tenant, label, version).await? {
            Located::Managed { record, version } => {
                let v = record.value.version(version).ok_or(KeyError::NotFound)?;
                if v.state == KeyState::Destroyed {
                    return Err(KeyError::conflict(
                        "key_destroyed",
                        format!(
                            "version {version} of {label} is destroyed; nothing is left to attest"
                        ),
                    ));
                }
                v.label.clone()
            }
            Located::Unmanaged if version.is_some_and(|v| v != 1) => {
                return Err(KeyError::invalid(
                    "unknown_version",
                    format!("{label} is not managed and has only version 1"),
                ));
            }
            Located::Unmanaged => label.to_owned(),
        };
        let zip = hsm.key_attestation(&hsm_label).await?;
        Ok(KeyAttestation {
            file_name: format!("{}-attestation.zip", file_name_part(&hsm_label)),
            zip,
        })
    }
}

/// `label` with every character outside `[A-Za-z0-9._-]` replaced by `_`.
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

#[cfg(test)]
mod tests {
    use super::file_name_part;

    #[test]
    fn download_names_need_no_quoting() {
        assert_eq!(file_name_part("web-signing_v2.1"), "web-signing_v2.1");
        assert_eq!(file_name_part("a \"b\";ä"), "a__b___");
    }
}
