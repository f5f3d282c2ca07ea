//! The in-memory inventory of one tenant: every row ([`KeySummary`]) in a map sorted by label,
//! plus ordered sets for the other sort orders and for the scheduler's due times. A query walks
//! one ordered structure from its cursor, filters, and stops after `limit + 1` matches, so a page
//! out of 100 000 keys touches about a page of entries (more only when a filter is selective) and
//! clones nothing but the page's `Arc`s.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use km_domain::KeyState;

use super::summary::KeySummary;

/// Sort orders of the inventory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum KeySort {
    /// By label, ascending.
    #[default]
    Label,
    /// By creation time, oldest first (unknown times first), then label.
    Created,
    /// By expiry, soonest first (keys without expiry last), then label.
    Expiry,
}

impl KeySort {
    /// Stable name (`label`, `created`, `expiry`).
    pub const fn as_str(self) -> &'static str {
        match self {
            KeySort::Label => "label",
            KeySort::Created => "created",
            KeySort::Expiry => "expiry",
        }
    }
}

/// Which rows a query wants; absent criteria match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    /// Label (alias) prefix.
    pub prefix: Option<String>,
    /// A tag the key must carry.
    pub tag: Option<String>,
    /// TSB algorithm name (case-insensitive: `EC`, `ml-dsa-65`).
    pub algorithm: Option<String>,
    /// Lifecycle state.
    pub state: Option<KeyState>,
    /// Only keys expiring before this time (unix seconds).
    pub expiring_before: Option<u64>,
}

impl KeyFilter {
    /// Whether `row` matches.
    pub fn matches(&self, row: &KeySummary) -> bool {
        self.prefix
            .as_deref()
            .is_none_or(|prefix| row.label.starts_with(prefix))
            && self
                .tag
                .as_deref()
                .is_none_or(|tag| row.tags.iter().any(|t| t == tag))
            && self
                .algorithm
                .as_deref()
                .is_none_or(|algorithm| row.spec.algorithm.eq_ignore_ascii_case(algorithm))
            && self.state.is_none_or(|state| row.state == state)
            && self
                .expiring_before
                .is_none_or(|before| row.expires_at.is_some_and(|at| at < before))
    }
}

/// A position in a sort order: the last row of a page. `value` is the time for the time orders
/// (0 for label order).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortKey {
    /// Sort time.
    pub value: u64,
    /// Label (tie-breaker, and the whole key in label order).
    pub label: String,
}

impl SortKey {
    /// The sort key of `row` in `sort`.
    pub fn of(row: &KeySummary, sort: KeySort) -> Self {
        Self {
            value: sort_value(row, sort),
            label: row.label.clone(),
        }
    }

    /// The text form used in cursors: `<value>:<label>`.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.value, self.label)
    }

    /// Parses [`SortKey::encode`]'s form.
    pub fn decode(text: &str) -> Option<Self> {
        let (value, label) = text.split_once(':')?;
        Some(Self {
            value: value.parse().ok()?,
            label: label.to_owned(),
        })
    }
}

fn sort_value(row: &KeySummary, sort: KeySort) -> u64 {
    match sort {
        KeySort::Label => 0,
        KeySort::Created => row.created_at.unwrap_or(0),
        KeySort::Expiry => row.expires_at.unwrap_or(u64::MAX),
    }
}

type Ordered = BTreeSet<(u64, Arc<str>)>;

/// A value rows are filtered by exactly, with the labels of the rows that have it (so that a
/// selective filter walks its matches, not every row).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Facet {
    State(KeyState),
    /// Lower-cased TSB algorithm name.
    Algorithm(String),
    Tag(String),
}

impl Facet {
    /// The facets of a row.
    fn of(row: &KeySummary) -> Vec<Facet> {
        let mut facets = vec![
            Facet::State(row.state),
            Facet::Algorithm(row.spec.algorithm.to_ascii_lowercase()),
        ];
        facets.extend(row.tags.iter().cloned().map(Facet::Tag));
        facets
    }

    /// The facets a filter asks for.
    fn wanted(filter: &KeyFilter) -> Vec<Facet> {
        let mut facets = Vec::new();
        facets.extend(filter.state.map(Facet::State));
        facets.extend(
            filter
                .algorithm
                .as_deref()
                .map(|a| Facet::Algorithm(a.to_ascii_lowercase())),
        );
        facets.extend(filter.tag.clone().map(Facet::Tag));
        facets
    }
}

/// A facet set smaller than this share of all rows is walked instead of the whole order.
const FACET_SHARE: usize = 4;

/// One row with the HSM labels of its other versions.
#[derive(Debug)]
struct Entry {
    row: Arc<KeySummary>,
    other_labels: Vec<String>,
}

/// One tenant's rows.
#[derive(Debug, Default)]
pub struct InventoryIndex {
    rows: BTreeMap<Arc<str>, Entry>,
    by_created: Ordered,
    by_expiry: Ordered,
    by_due: Ordered,
    /// HSM labels of versions other than the row label → their row (alias).
    version_labels: HashMap<String, Arc<str>>,
    /// Labels per state, algorithm and tag, in label order.
    by_facet: HashMap<Facet, BTreeSet<Arc<str>>>,
}

impl InventoryIndex {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row whose current HSM key is `label` (an unmanaged key's row, or the alias whose
    /// current version has that label).
    pub(crate) fn row_of_hsm_label(&self, label: &str) -> Option<&Arc<KeySummary>> {
        let alias = self.alias_of(label).unwrap_or(label);
        self.get(alias)
            .filter(|row| row.current_label.as_deref() == Some(label))
    }

    /// Every row, in label order.
    pub fn rows(&self) -> impl Iterator<Item = &KeySummary> {
        self.rows.values().map(|entry| &*entry.row)
    }

    /// The row `label` (an alias or an unmanaged key's label).
    pub fn get(&self, label: &str) -> Option<&Arc<KeySummary>> {
        self.rows.get(label).map(|entry| &entry.row)
    }

    /// The alias owning the version label `label`, if it is one.
    pub fn alias_of(&self, label: &str) -> Option<&str> {
        self.version_labels.get(label).map(|alias| &**alias)
    }

    /// Inserts or replaces a row; `other_labels` are HSM labels of its other versions (folded
    /// into this row rather than listed).
    pub fn upsert(&mut self, row: Arc<KeySummary>, other_labels: Vec<String>) {
        self.remove(&row.label);
        let label: Arc<str> = Arc::from(row.label.as_str());
        self.by_created
            .insert((sort_value(&row, KeySort::Created), label.clone()));
        self.by_expiry
            .insert((sort_value(&row, KeySort::Expiry), label.clone()));
        if let Some(due) = row.next_due_at {
            self.by_due.insert((due, label.clone()));
        }
        for facet in Facet::of(&row) {
            self.by_facet
                .entry(facet)
                .or_default()
                .insert(label.clone());
        }
        for other in &other_labels {
            // A row of its own (an unmanaged key) under a label that is now a version of this
            // alias is folded in.
            self.remove(other);
            self.version_labels.insert(other.clone(), label.clone());
        }
        self.rows.insert(label, Entry { row, other_labels });
    }

    /// Removes the row `label` and the version labels pointing at it.
    pub fn remove(&mut self, label: &str) {
        let Some((key, entry)) = self.rows.remove_entry(label) else {
            return;
        };
        let row = entry.row;
        self.by_created
            .remove(&(sort_value(&row, KeySort::Created), key.clone()));
        self.by_expiry
            .remove(&(sort_value(&row, KeySort::Expiry), key.clone()));
        if let Some(due) = row.next_due_at {
            self.by_due.remove(&(due, key.clone()));
        }
        for facet in Facet::of(&row) {
            if let Some(labels) = self.by_facet.get_mut(&facet) {
                labels.remove(&key);
                if labels.is_empty() {
                    self.by_facet.remove(&facet);
                }
            }
        }
        for other in entry.other_labels {
            if self
                .version_labels
                .get(&other)
                .is_some_and(|alias| *alias == key)
            {
                self.version_labels.remove(&other);
            }
        }
    }

    /// Up to `limit` matching rows after `after` in `sort`, and the sort key to continue from
    /// when more match.
    pub fn page(
        &self,
        filter: &KeyFilter,
        sort: KeySort,
        after: Option<&SortKey>,
        limit: usize,
    ) -> (Vec<Arc<KeySummary>>, Option<SortKey>) {
        let mut items = Vec::with_capacity(limit.min(256) + 1);
        let mut take = |row: &Arc<KeySummary>| {
            if filter.matches(row) {
                items.push(row.clone());
            }
            items.len() > limit
        };
        // The smallest set of rows an exact criterion allows (none matching: an empty page).
        let narrowest = Facet::wanted(filter)
            .iter()
            .map(|facet| self.by_facet.get(facet))
            .min_by_key(|labels| labels.map_or(0, BTreeSet::len));
        let narrowest = match narrowest {
            Some(None) => return (Vec::new(), None),
            Some(Some(labels)) if labels.len() * FACET_SHARE < self.rows.len() => Some(labels),
            _ => None,
        };
        match (sort, narrowest) {
            (KeySort::Label, Some(labels)) => {
                let start = label_start(filter.prefix.as_deref(), after);
                for label in labels.range::<str, _>((start, Bound::Unbounded)) {
                    let past_prefix = filter
                        .prefix
                        .as_deref()
                        .is_some_and(|prefix| !label.starts_with(prefix));
                    if past_prefix {
                        break;
                    }
                    if let Some(entry) = self.rows.get(label)
                        && take(&entry.row)
                    {
                        break;
                    }
                }
            }
            (KeySort::Label, None) => {
                let start = label_start(filter.prefix.as_deref(), after);
                for (label, entry) in self.rows.range::<str, _>((start, Bound::Unbounded)) {
                    let past_prefix = filter
                        .prefix
                        .as_deref()
                        .is_some_and(|prefix| !label.starts_with(prefix));
                    if past_prefix || take(&entry.row) {
                        break;
                    }
                }
            }
            (KeySort::Created | KeySort::Expiry, Some(labels)) => {
                // Few candidates: order them by the sort key and page through them.
                let mut candidates: Vec<(SortKey, &Arc<KeySummary>)> = labels
                    .iter()
                    .filter_map(|label| self.rows.get(label))
                    .map(|entry| (SortKey::of(&entry.row, sort), &entry.row))
                    .filter(|(key, _)| after.is_none_or(|after| key > after))
                    .collect();
                candidates.sort_by(|a, b| a.0.cmp(&b.0));
                for (_, row) in candidates {
                    if take(row) {
                        break;
                    }
                }
            }
            (KeySort::Created | KeySort::Expiry, None) => {
                let ordered = if sort == KeySort::Created {
                    &self.by_created
                } else {
                    &self.by_expiry
                };
                let start = match after {
                    Some(after) => Bound::Excluded((after.value, Arc::from(after.label.as_str()))),
                    None => Bound::Unbounded,
                };
                // In expiry order, nothing after the bound can expire before it.
                let before = filter.expiring_before.filter(|_| sort == KeySort::Expiry);
                for (value, label) in ordered.range((start, Bound::Unbounded)) {
                    if before.is_some_and(|before| *value >= before) {
                        break;
                    }
                    if let Some(entry) = self.rows.get(label)
                        && take(&entry.row)
                    {
                        break;
                    }
                }
            }
        }
        let next = (items.len() > limit).then(|| {
            items.truncate(limit);
            items.last().map(|row| SortKey::of(row, sort))
        });
        (items, next.flatten())
    }

    /// Labels of rows with scheduled work due at or before `now`, soonest first.
    pub fn due(&self, now: u64) -> Vec<String> {
        self.by_due
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, label)| label.to_string())
            .collect()
    }
}

/// Where a label-ordered walk starts: after the cursor, and not before the prefix.
fn label_start<'a>(prefix: Option<&'a str>, after: Option<&'a SortKey>) -> Bound<&'a str> {
    match (prefix, after) {
        (Some(prefix), Some(after)) if prefix > after.label.as_str() => Bound::Included(prefix),
        (_, Some(after)) => Bound::Excluded(after.label.as_str()),
        (Some(prefix), None) => Bound::Included(prefix),
        (None, None) => Bound::Unbounded,
    }
}
