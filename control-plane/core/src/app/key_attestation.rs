//! Key attestation download: the HSM's signed statement about a key version, as the HSM hands it
//! out. A read (`read_key`): allowed to anyone on the tenant, not audited, like the key detail;
//! another tenant's key is "not found".

use km_domain::{Action, TenantId};

use super::{App, AppError, Gate, RequestId};
use crate::identity::Caller;
use crate::keys::KeyAttestation;

impl App {
    /// The HSM's attestation of a key's version (`read_key`): the current version unless
    /// `version` says otherwise. A conflict `key_destroyed` for a destroyed version, and
    /// `hsm_refused` when the tenant's HSM offers no attestation.
    pub async fn key_attestation(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        label: &str,
        version: Option<u32>,
    ) -> Result<KeyAttestation, AppError> {
        self.permit(caller, rid, Gate::Full, Some(tenant), Action::ReadKey)
            .await?;
        let hsm = self
            .inner
            .partitions
            .hsm_for(tenant, Some(&caller.principal().subject))
            .await?;
        Ok(self
            .inner
            .keys
            .attestation(&*hsm, tenant, label, version)
            .await?)
    }
}
