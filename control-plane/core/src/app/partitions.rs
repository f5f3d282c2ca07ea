//! Partition registry use cases: what members see of their partitions, what operators do to
//! onboard, change, rotate credentials of and offboard them, and users' own credentials.
//!
//! Credentials pass through here as [`PartitionCredentials`] (secret fields redacted in `Debug`)
//! and never reach an audit event: events name the partition, endpoint, auth mode and vault only.

use km_domain::{Action, PartitionStatus, TenantId};

use super::{App, AppError, Gate, RequestId};
use crate::identity::Caller;
use crate::partitions::{
    ConnectionReport, NewPartition, PartitionCredentials, PartitionRecord, PartitionTarget,
    PartitionUpdate,
};
use crate::{Partitions, VaultKind};

impl App {
    /// The partition registry (for the console's sidebar directory; use cases go through `App`).
    pub fn partitions(&self) -> &Partitions {
        &self.inner.partitions
    }

    /// The partitions the caller can switch to: every registered one for a `*` binding, otherwise
    /// those it has a binding on (`list_partitions`).
    pub async fn visible_partitions(
        &self,
        caller: &Caller,
        rid: &RequestId,
    ) -> Result<Vec<PartitionRecord>, AppError> {
        self.permit(caller, rid, Gate::Full, None, Action::ListPartitions)
            .await?;
        let principal = caller.principal();
        let all = self.inner.partitions.list().await?;
        Ok(all
            .iter()
            .filter(|record| {
                principal
                    .bindings
                    .iter()
                    .any(|binding| binding.scope.covers(&record.value.id))
            })
            .map(|record| record.value.clone())
            .collect())
    }

    /// One partition's registration (`read_partition`; another tenant's is "not found").
    pub async fn get_partition(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
    ) -> Result<PartitionRecord, AppError> {
        self.permit(caller, rid, Gate::Full, Some(tenant), Action::ReadPartition)
            .await?;
        Ok(self.inner.partitions.get(tenant).await?.value.clone())
    }

    /// The partition's TSB version, licence and keystore statistics, asked with the partition's
    /// own credentials — or the caller's, if they keep their own (`read_partition`).
    pub async fn partition_status(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
    ) -> Result<ConnectionReport, AppError> {
        self.permit(caller, rid, Gate::Full, Some(tenant), Action::ReadPartition)
            .await?;
        let hsm = self
            .inner
            .partitions
            .hsm_for(tenant, Some(&caller.principal().subject))
            .await?;
        let service = hsm
            .service_info()
            .await
            .map_err(crate::PartitionError::Connection)?;
        let statistics = hsm
            .keystore_statistics()
            .await
            .map_err(crate::PartitionError::Connection)?;
        Ok(ConnectionReport {
            service,
            statistics,
        })
    }

    /// Every registered partition (`onboard_partition`: an operator's view, including suspended
    /// ones, with endpoints and vault references).
    pub async fn list_all_partitions(
        &self,
        caller: &Caller,
        rid: &RequestId,
    ) -> Result<Vec<PartitionRecord>, AppError> {
        self.permit(caller, rid, Gate::Full, None, Action::OnboardPartition)
            .await?;
        Ok(self
            .inner
            .partitions
            .list()
            .await?
            .iter()
            .map(|record| record.value.clone())
            .collect())
    }

    /// The configured credential vaults: id, kind, and which one is the default.
    pub async fn list_vaults(
        &self,
        caller: &Caller,
        rid: &RequestId,
    ) -> Result<(Vec<(String, VaultKind)>, Option<String>), AppError> {
        self.permit(caller, rid, Gate::Full, None, Action::OnboardPartition)
            .await?;
        let vaults = self.inner.partitions.vaults();
        Ok((vaults.list(), vaults.default_id().map(str::to_owned)))
    }

    /// "Test connection": version, licence and statistics of a partition that is not registered
    /// yet, with the given credentials; nothing is stored (`onboard_partition`).
    pub async fn test_partition_connection(
        &self,
        caller: &Caller,
        rid: &RequestId,
        target: &PartitionTarget,
        credentials: &PartitionCredentials,
    ) -> Result<ConnectionReport, AppError> {
        self.permit(caller, rid, Gate::Full, None, Action::OnboardPartition)
            .await?;
        Ok(self
            .inner
            .partitions
            .test_connection(target, credentials)
            .await?)
    }

    /// Registers a partition after testing the connection (`onboard_partition`, audited).
    pub async fn onboard_partition(
        &self,
        caller: &Caller,
        rid: &RequestId,
        new: NewPartition,
    ) -> Result<PartitionRecord, AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                Some(&new.id),
                Action::OnboardPartition,
            )
            .await?;
        let vault = new
            .vault
            .clone()
            .or_else(|| {
                self.inner
                    .partitions
                    .vaults()
                    .default_id()
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let draft = Self::draft(&grant, rid, "onboard_partition", Some(new.id.as_str()))
            .with_detail("endpoint", new.target.endpoint.as_str())
            .with_detail("auth", new.target.auth.as_str())
            .with_detail("vault", vault);
        let actor = caller.principal().subject.to_string();
        self.audited(draft, async {
            Ok(self.inner.partitions.onboard(new, &actor).await?)
        })
        .await
    }

    /// Changes a partition's name, colour or status (`update_partition`, audited).
    pub async fn update_partition(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        update: PartitionUpdate,
    ) -> Result<PartitionRecord, AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                Some(tenant),
                Action::UpdatePartition,
            )
            .await?;
        let mut draft = Self::draft(&grant, rid, "update_partition", Some(tenant.as_str()));
        if let Some(name) = &update.display_name {
            draft = draft.with_detail("display_name", name.as_str());
        }
        if let Some(colour) = &update.colour {
            draft = draft.with_detail("colour", colour.as_str());
        }
        if let Some(status) = update.status {
            draft = draft.with_detail(
                "status",
                match status {
                    PartitionStatus::Active => "active",
                    PartitionStatus::Suspended => "suspended",
                },
            );
        }
        let actor = caller.principal().subject.to_string();
        self.audited(draft, async {
            Ok(self.inner.partitions.update(tenant, update, &actor).await?)
        })
        .await
    }

    /// Replaces a partition's credentials (tested first; no downtime), optionally with a new
    /// endpoint or auth mode (`update_partition`, audited).
    pub async fn rotate_partition_credentials(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        target: Option<PartitionTarget>,
        credentials: PartitionCredentials,
    ) -> Result<PartitionRecord, AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                Some(tenant),
                Action::UpdatePartition,
            )
            .await?;
        let mut draft = Self::draft(
            &grant,
            rid,
            "rotate_partition_credentials",
            Some(tenant.as_str()),
        );
        if let Some(target) = &target {
            draft = draft
                .with_detail("endpoint", target.endpoint.as_str())
                .with_detail("auth", target.auth.as_str());
        }
        let actor = caller.principal().subject.to_string();
        self.audited(draft, async {
            Ok(self
                .inner
                .partitions
                .rotate_credentials(tenant, target, credentials, &actor)
                .await?)
        })
        .await
    }

    /// Removes a partition from keymanager — never anything in its HSM. `confirm` must repeat
    /// the partition's id (`offboard_partition`, audited).
    pub async fn offboard_partition(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        confirm: &str,
    ) -> Result<(), AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                Some(tenant),
                Action::OffboardPartition,
            )
            .await?;
        if confirm != tenant.as_str() {
            return Err(AppError::invalid(
                "confirmation_mismatch",
                format!("type the partition id {tenant} to confirm offboarding"),
            ));
        }
        // 404 before anything is recorded as admitted.
        self.inner.partitions.get(tenant).await?;
        let draft = Self::draft(&grant, rid, "offboard_partition", Some(tenant.as_str()));
        self.audited(draft, async {
            Ok(self.inner.partitions.offboard(tenant).await?)
        })
        .await
    }

    /// Keeps the caller's own credentials for `tenant` (tested first; stored in the partition's
    /// vault); the caller's requests on that partition then use them
    /// (`manage_own_partition_credentials`, audited).
    pub async fn set_own_partition_credentials(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
        credentials: PartitionCredentials,
    ) -> Result<ConnectionReport, AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                Some(tenant),
                Action::ManageOwnPartitionCredentials,
            )
            .await?;
        let user = caller.principal().subject.clone();
        let draft = Self::draft(
            &grant,
            rid,
            "set_own_partition_credentials",
            Some(tenant.as_str()),
        );
        self.audited(draft, async {
            Ok(self
                .inner
                .partitions
                .set_user_credentials(tenant, &user, credentials, user.as_str())
                .await?)
        })
        .await
    }

    /// Forgets the caller's own credentials for `tenant` (`manage_own_partition_credentials`,
    /// audited).
    pub async fn clear_own_partition_credentials(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
    ) -> Result<(), AppError> {
        let grant = self
            .permit(
                caller,
                rid,
                Gate::Full,
                Some(tenant),
                Action::ManageOwnPartitionCredentials,
            )
            .await?;
        let user = caller.principal().subject.clone();
        let draft = Self::draft(
            &grant,
            rid,
            "clear_own_partition_credentials",
            Some(tenant.as_str()),
        );
        self.audited(draft, async {
            Ok(self
                .inner
                .partitions
                .clear_user_credentials(tenant, &user)
                .await?)
        })
        .await
    }

    /// Whether the caller keeps own credentials for `tenant` (`read_partition`).
    pub async fn has_own_partition_credentials(
        &self,
        caller: &Caller,
        rid: &RequestId,
        tenant: &TenantId,
    ) -> Result<bool, AppError> {
        self.permit(caller, rid, Gate::Full, Some(tenant), Action::ReadPartition)
            .await?;
        Ok(self
            .inner
            .partitions
            .has_user_credentials(tenant, &caller.principal().subject)
            .await?)
    }
}
