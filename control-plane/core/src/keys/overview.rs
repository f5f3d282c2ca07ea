//! The inventory at a glance (for the dashboard, the console's alerts and the expiry notices):
//! counts by state and algorithm, and what falls due within a horizon — ends of crypto-periods
//! and scheduled destructions. Answered from the tenant's inventory cache, never from the HSM.

use std::collections::BTreeMap;

use km_domain::{KeyState, TenantId};

use super::index::InventoryIndex;
use super::{KeyError, KeyService};

/// What is coming up for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpcomingKind {
    /// The key's crypto-period ends (the scheduler deactivates it).
    Expiry,
    /// The key's material is deleted (its destruction is scheduled).
    Destruction,
}

impl UpcomingKind {
    /// Stable name, as the API spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            UpcomingKind::Expiry => "expiry",
            UpcomingKind::Destruction => "destruction",
        }
    }
}

/// One key with an expiry or a destruction inside the horizon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpcomingEvent {
    /// The key's alias (or label).
    pub label: String,
    /// What happens.
    pub kind: UpcomingKind,
    /// When (Unix seconds); may already be past when the scheduler has not run yet.
    pub at: u64,
    /// The key's state now.
    pub state: KeyState,
    /// Who is responsible for the key, if recorded.
    pub owner: Option<String>,
}

/// Counts and upcoming events of one tenant's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryOverview {
    /// Rows (managed aliases plus unmanaged keys).
    pub total: u64,
    /// Rows keymanager manages.
    pub managed: u64,
    /// Rows per lifecycle state.
    pub by_state: BTreeMap<KeyState, u64>,
    /// Rows per algorithm (TSB names).
    pub by_algorithm: BTreeMap<String, u64>,
    /// Expiries and destructions from now to the horizon (and overdue ones), soonest first.
    pub upcoming: Vec<UpcomingEvent>,
}

impl InventoryOverview {
    /// Counts every row of `index` and collects the events due before `until`.
    pub fn of(index: &InventoryIndex, until: u64) -> Self {
        let mut overview = Self::default();
        for row in index.rows() {
            overview.total += 1;
            overview.managed += u64::from(row.managed);
            *overview.by_state.entry(row.state).or_default() += 1;
            *overview
                .by_algorithm
                .entry(row.spec.algorithm.clone())
                .or_default() += 1;
            let usable = matches!(row.state, KeyState::Active | KeyState::Suspended);
            let events = [
                (UpcomingKind::Expiry, row.expires_at.filter(|_| usable)),
                (UpcomingKind::Destruction, row.destruction_at),
            ];
            for (kind, at) in events {
                if let Some(at) = at.filter(|at| *at <= until) {
                    overview.upcoming.push(UpcomingEvent {
                        label: row.label.clone(),
                        kind,
                        at,
                        state: row.state,
                        owner: row.owner.clone(),
                    });
                }
            }
        }
        overview
            .upcoming
            .sort_by(|a, b| (a.at, &a.label, a.kind).cmp(&(b.at, &b.label, b.kind)));
        overview
    }
}

impl KeyService {
    /// The tenant's keys at a glance, with the expiries and destructions due within
    /// `horizon_secs` from now.
    pub async fn overview(
        &self,
        tenant: &TenantId,
        horizon_secs: u64,
    ) -> Result<InventoryOverview, KeyError> {
        let until = self.now().saturating_add(horizon_secs);
        self.with_inventory(tenant, |index| InventoryOverview::of(index, until))
            .await
    }
}
