//! Readiness: may this replica take traffic? Only if its management partition answers, because
//! every request needs state kept there.

use std::sync::Arc;

use crate::{Hsm, HsmError, ServiceInfo};

/// The outcome of one readiness probe.
#[derive(Debug)]
pub enum ReadinessReport {
    /// The management partition answered.
    Ready {
        /// What answered.
        management: ServiceInfo,
    },
    /// It did not; the error says why.
    NotReady {
        /// The failure.
        reason: HsmError,
    },
}

/// Probes the dependencies a replica needs before it takes traffic.
#[derive(Clone)]
pub struct Readiness {
    management: Arc<dyn Hsm>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness").finish_non_exhaustive()
    }
}

impl Readiness {
    /// Probes `management`, the management partition.
    pub fn new(management: Arc<dyn Hsm>) -> Self {
        Self { management }
    }

    /// One probe; cheap enough for a load balancer to call every few seconds.
    pub async fn check(&self) -> ReadinessReport {
        match self.management.service_info().await {
            Ok(management) => ReadinessReport::Ready { management },
            Err(reason) => ReadinessReport::NotReady { reason },
        }
    }
}
