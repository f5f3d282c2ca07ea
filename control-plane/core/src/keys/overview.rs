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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use km_domain::{KeyAttributes, KeyState};

    use super::*;
    use crate::HsmKeyInfo;
    use crate::keys::KeySummary;

    const NOW: u64 = 1_000_000;
    const DAY: u64 = 86_400;

    /// A row as the inventory holds it: built like an unmanaged key's, then given the state,
    /// dates and owner of the case.
    fn row(
        label: &str,
        algorithm: &str,
        state: KeyState,
        expires_at: Option<u64>,
        destruction_at: Option<u64>,
    ) -> Arc<KeySummary> {
        let info = HsmKeyInfo {
            label: label.to_owned(),
            algorithm: algorithm.to_owned(),
            key_size: None,
            curve_oid: None,
            attributes: KeyAttributes::default(),
            always_sensitive: None,
            never_extractable: None,
            blocked: state != KeyState::Active,
            policy: None,
            public_key_spki_der: None,
            created_at: None,
            usage_count: None,
        };
        let mut row = KeySummary::unmanaged(&info);
        row.managed = true;
        row.state = state;
        row.expires_at = expires_at;
        row.destruction_at = destruction_at;
        row.owner = Some(format!("owner-of-{label}"));
        Arc::new(row)
    }

    fn index(rows: Vec<Arc<KeySummary>>) -> InventoryIndex {
        let mut index = InventoryIndex::default();
        for row in rows {
            index.upsert(row, Vec::new());
        }
        index
    }

    fn upcoming(overview: &InventoryOverview) -> Vec<(&str, UpcomingKind, u64)> {
        overview
            .upcoming
            .iter()
            .map(|e| (e.label.as_str(), e.kind, e.at))
            .collect()
    }

    #[test]
    fn counts_every_row_by_state_and_algorithm() {
        let mut unmanaged = (*row("foreign", "AES", KeyState::Suspended, None, None)).clone();
        unmanaged.managed = false;
        let index = index(vec![
            row("a", "EC", KeyState::Active, None, None),
            row("b", "EC", KeyState::Active, None, None),
            row("c", "RSA", KeyState::PreActive, None, None),
            row("d", "ML-DSA-65", KeyState::Destroyed, None, None),
            Arc::new(unmanaged),
        ]);
        let overview = InventoryOverview::of(&index, NOW);
        assert_eq!(overview.total, 5);
        assert_eq!(overview.managed, 4);
        assert_eq!(
            overview.by_state,
            BTreeMap::from([
                (KeyState::PreActive, 1),
                (KeyState::Active, 2),
                (KeyState::Suspended, 1),
                (KeyState::Destroyed, 1),
            ])
        );
        assert_eq!(
            overview.by_algorithm,
            BTreeMap::from([
                ("AES".to_owned(), 1),
                ("EC".to_owned(), 2),
                ("ML-DSA-65".to_owned(), 1),
                ("RSA".to_owned(), 1),
            ])
        );
        assert!(overview.upcoming.is_empty());
    }

    #[test]
    fn an_empty_inventory_has_nothing() {
        assert_eq!(
            InventoryOverview::of(&InventoryIndex::default(), NOW),
            InventoryOverview::default()
        );
    }

    #[test]
    fn only_events_up_to_the_horizon_count_and_overdue_ones_stay() {
        let until = NOW + 30 * DAY;
        let index = index(vec![
            row(
                "in-10-days",
                "EC",
                KeyState::Active,
                Some(NOW + 10 * DAY),
                None,
            ),
            row("at-horizon", "EC", KeyState::Active, Some(until), None),
            row(
                "after-horizon",
                "EC",
                KeyState::Active,
                Some(until + 1),
                None,
            ),
            row(
                "in-40-days",
                "EC",
                KeyState::Active,
                Some(NOW + 40 * DAY),
                None,
            ),
            row("overdue", "EC", KeyState::Suspended, Some(NOW - DAY), None),
            row("no-expiry", "EC", KeyState::Active, None, None),
        ]);
        let overview = InventoryOverview::of(&index, until);
        assert_eq!(
            upcoming(&overview),
            vec![
                ("overdue", UpcomingKind::Expiry, NOW - DAY),
                ("in-10-days", UpcomingKind::Expiry, NOW + 10 * DAY),
                ("at-horizon", UpcomingKind::Expiry, until),
            ]
        );
        let overdue = &overview.upcoming[0];
        assert_eq!(overdue.state, KeyState::Suspended);
        assert_eq!(overdue.owner.as_deref(), Some("owner-of-overdue"));
    }

    #[test]
    fn expiry_counts_only_for_usable_keys_and_destructions_for_any() {
        let soon = NOW + DAY;
        let index = index(vec![
            row("active", "EC", KeyState::Active, Some(soon), None),
            row("suspended", "EC", KeyState::Suspended, Some(soon), None),
            row("pre-active", "EC", KeyState::PreActive, Some(soon), None),
            row("deactivated", "EC", KeyState::Deactivated, Some(soon), None),
            row("compromised", "EC", KeyState::Compromised, Some(soon), None),
            row("destroyed", "EC", KeyState::Destroyed, Some(soon), None),
            // Expired long ago and now waiting for its destruction: only the destruction counts.
            row(
                "doomed",
                "EC",
                KeyState::DestroyScheduled,
                Some(NOW - 9 * DAY),
                Some(NOW + 2 * DAY),
            ),
        ]);
        let overview = InventoryOverview::of(&index, NOW + 30 * DAY);
        assert_eq!(
            upcoming(&overview),
            vec![
                ("active", UpcomingKind::Expiry, soon),
                ("suspended", UpcomingKind::Expiry, soon),
                ("doomed", UpcomingKind::Destruction, NOW + 2 * DAY),
            ]
        );
        assert_eq!(overview.upcoming[2].state, KeyState::DestroyScheduled);
    }

    #[test]
    fn events_are_ordered_by_time_then_label_then_kind() {
        let at = NOW + 5 * DAY;
        let index = index(vec![
            row("zeta", "EC", KeyState::Active, Some(at), None),
            row("alpha", "EC", KeyState::Active, Some(at), None),
            row("mid", "EC", KeyState::DestroyScheduled, None, Some(at)),
            row("late", "EC", KeyState::Active, Some(at + 1), None),
            row(
                "early",
                "EC",
                KeyState::DestroyScheduled,
                None,
                Some(at - 1),
            ),
        ]);
        let overview = InventoryOverview::of(&index, NOW + 30 * DAY);
        assert_eq!(
            upcoming(&overview),
            vec![
                ("early", UpcomingKind::Destruction, at - 1),
                ("alpha", UpcomingKind::Expiry, at),
                ("mid", UpcomingKind::Destruction, at),
                ("zeta", UpcomingKind::Expiry, at),
                ("late", UpcomingKind::Expiry, at + 1),
            ]
        );
    }
}
