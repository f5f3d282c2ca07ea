//! Key attestation download (`/tenants/{tenant}/keys/{label}/attestation`): the HSM's signed
//! statement about a key version, as a zip exactly as the HSM handed it out.

use km_core::App;
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Binary;
use poem_openapi::{ApiResponse, OpenApi};

use super::{ApiTags, fail, tenant};
use crate::context::{authenticate, request_id};
use crate::problem::ApiError;

/// The key attestation operation.
pub(crate) struct KeyAttestationApi;

#[derive(Debug, ApiResponse)]
enum AttestationResponse {
    /// The attestation zip.
    #[oai(status = 200, content_type = "application/zip")]
    Ok(
        Binary<Vec<u8>>,
        /// `attachment; filename="<hsm label>-attestation.zip"`.
        #[oai(header = "Content-Disposition")]
        String,
    ),
}

#[OpenApi(tag = "ApiTags::Keys")]
impl KeyAttestationApi {
    /// The HSM's attestation of a key version, a zip as the TSB hands it out: `<label>.xml`
    /// (the key's attributes, public key and times as the HSM attests them), `<label>.sig` (the
    /// HSM attestation key's signature over the XML), `<label>.pem` (that key's public key),
    /// `PrimusHSM_Attestation.crt` (its certificate) and a `README`. Check it offline with
    /// `openssl dgst -sha256 -verify <label>.pem -signature <label>.sig <label>.xml`. A destroyed
    /// version answers 409 `key_destroyed`; an HSM that offers no attestation 409
    /// `hsm_refused`.
    #[oai(
        path = "/tenants/:tenant/keys/:label/attestation",
        method = "get",
        operation_id = "download_key_attestation"
    )]
    async fn attestation(
        &self,
        app: Data<&App>,
        req: &Request,
        /// Tenant id.
        tenant: Path<String>,
        /// Key label.
        label: Path<String>,
        /// Version (default: the current one).
        version: Query<Option<u32>>,
    ) -> Result<AttestationResponse, ApiError> {
        let rid = request_id(req);
        let caller = authenticate(&app, req, &rid).await?;
        let tenant = self::tenant(&tenant.0, &rid)?;
        let attestation = app
            .key_attestation(&caller, &rid, &tenant, &label.0, version.0)
            .await
            .map_err(fail(&rid))?;
        Ok(AttestationResponse::Ok(
            Binary(attestation.zip),
            format!("attachment; filename=\"{}\"", attestation.file_name),
        ))
    }
}
