//! The read cache: raw stored bytes per data object, fresh for a short TTL measured on the
//! [`Clock`](crate::Clock) port, plus — for plain records read through
//! [`StateStore::get_shared`](crate::StateStore::get_shared) — the record decoded from exactly
//! those bytes, so hot paths (every session check) do not parse JSON on every request.
//!
//! It holds exactly what the HSM holds — sealed bodies stay sealed and are never kept decoded, so
//! no plaintext secret sits in it. Own writes replace their entry with the read-back bytes; other replicas' writes become
//! visible when the entry expires, which bounds how long replicas can disagree.
//!
//! **Refresh-ahead**: a hit on an entry past half its TTL lets the caller claim one background
//! re-read ([`ReadCache::claim_refresh`]), so hot records (sessions, users, key records) are
//! renewed off the request path instead of costing some request an HSM round trip when they
//! expire. A refreshed read replaces the entry only if nothing replaced it meanwhile (an own
//! write's read-back is never overwritten by an older read), and entries are never served past
//! their TTL, so the bound on staleness is unchanged.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{DataObjectName, Timestamp};

/// Entries beyond which expired ones are dropped (and, if that is not enough, all of them).
const MAX_ENTRIES: usize = 10_000;

/// A stored value (`None` = known to be absent), when it was fetched, and what was decoded from it.
#[derive(Debug, Clone)]
struct Entry {
    fetched_at: Timestamp,
    value: Option<Arc<[u8]>>,
    decoded: Option<Decoded>,
    /// Which put made it (a refresh only replaces the entry it was claimed on).
    generation: u64,
    /// A background refresh of it is running.
    refreshing: bool,
}

/// A record decoded from an entry's bytes, with the type it was decoded as.
#[derive(Clone)]
struct Decoded {
    type_id: TypeId,
    value: Arc<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded").finish_non_exhaustive()
    }
}

/// A fresh entry: its bytes, and the record decoded from them as the asked type, if known.
pub(crate) type CachedWithDecoded<T> = Option<(Option<Arc<[u8]>>, Option<Arc<T>>)>;

#[derive(Debug)]
pub(crate) struct ReadCache {
    ttl: u64,
    entries: Mutex<HashMap<DataObjectName, Entry>>,
    generations: std::sync::atomic::AtomicU64,
}

/// A cache answer: `Some(None)` = known absent, `None` = ask the HSM.
pub(crate) type Cached = Option<Option<Arc<[u8]>>>;

impl ReadCache {
    pub(crate) fn new(ttl: u64) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            generations: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn fresh(&self, entry: &Entry, now: Timestamp) -> bool {
        // A clock that went backwards makes every entry suspect.
        now >= entry.fetched_at && now - entry.fetched_at < self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DataObjectName, Entry>> {
        // The map holds no invariant a panicking holder could break half-way.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn get(&self, name: &DataObjectName, now: Timestamp) -> Cached {
        let entries = self.lock();
        let entry = entries.get(name)?;
        self.fresh(entry, now).then(|| entry.value.clone())
    }

    pub(crate) fn put(&self, name: &DataObjectName, value: Option<&[u8]>, now: Timestamp) {
        if self.ttl == 0 {
            return;
        }
        let mut entries = self.lock();
        self.insert(&mut entries, name, value, now);
    }

    fn insert(
        &self,
        entries: &mut HashMap<DataObjectName, Entry>,
        name: &DataObjectName,
        value: Option<&[u8]>,
        now: Timestamp,
    ) {
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(name) {
            entries.retain(|_, entry| now >= entry.fetched_at && now - entry.fetched_at < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        entries.insert(
            name.clone(),
            Entry {
                fetched_at: now,
                value: value.map(Arc::from),
                decoded: None,
                generation,
                refreshing: false,
            },
        );
    }

    /// When a fresh entry is past half its TTL and nobody refreshes it yet: marks it as being
    /// refreshed and returns its generation, for [`ReadCache::put_refreshed`]. TTLs under two
    /// seconds are not refreshed ahead.
    pub(crate) fn claim_refresh(&self, name: &DataObjectName, now: Timestamp) -> Option<u64> {
        if self.ttl < 2 {
            return None;
        }
        let mut entries = self.lock();
        let entry = entries.get_mut(name)?;
        let due = self.fresh(entry, now) && now - entry.fetched_at >= self.ttl / 2;
        if !due || entry.refreshing {
            return None;
        }
        entry.refreshing = true;
        Some(entry.generation)
    }

    /// The outcome of a claimed refresh: the re-read value replaces the entry only if it is still
    /// the one the refresh was claimed on (`None` = the read failed: the entry just ages out).
    pub(crate) fn put_refreshed(
        &self,
        name: &DataObjectName,
        generation: u64,
        value: Option<Option<&[u8]>>,
        now: Timestamp,
    ) {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(name) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        match value {
            Some(value) => self.insert(&mut entries, name, value, now),
            None => entry.refreshing = false,
        }
    }

    /// Like [`ReadCache::get`], plus the record already decoded from those bytes as `T`.
    pub(crate) fn get_with_decoded<T: Any + Send + Sync>(
        &self,
        name: &DataObjectName,
        now: Timestamp,
    ) -> CachedWithDecoded<T> {
        let entries = self.lock();
        let entry = entries.get(name).filter(|entry| self.fresh(entry, now))?;
        let decoded = entry
            .decoded
            .as_ref()
            .filter(|decoded| decoded.type_id == TypeId::of::<T>())
            .and_then(|decoded| decoded.value.clone().downcast::<T>().ok());
        Some((entry.value.clone(), decoded))
    }

    /// Keeps `decoded` beside the entry — only if the entry still holds exactly `raw` (the same
    /// allocation), so a decoded record can never outlive or disagree with its bytes.
    pub(crate) fn remember_decoded<T: Any + Send + Sync>(
        &self,
        name: &DataObjectName,
        raw: &Arc<[u8]>,
        decoded: Arc<T>,
    ) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(name)
            && entry
                .value
                .as_ref()
                .is_some_and(|value| Arc::ptr_eq(value, raw))
        {
            entry.decoded = Some(Decoded {
                type_id: TypeId::of::<T>(),
                value: decoded,
            });
        }
    }

    pub(crate) fn invalidate(&self, name: &DataObjectName) {
        self.lock().remove(name);
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> DataObjectName {
        DataObjectName::new(s).unwrap()
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = ReadCache::new(2);
        cache.put(&name("a"), Some(b"1"), 100);
        cache.put(&name("b"), None, 100);
        assert_eq!(
            cache.get(&name("a"), 101).unwrap().as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(
            cache.get(&name("b"), 101),
            Some(None),
            "absence is cached too"
        );
        assert_eq!(
            cache.get(&name("a"), 102),
            None,
            "expired at fetched_at + ttl"
        );
        assert_eq!(cache.get(&name("a"), 99), None, "clock moved backwards");
    }

    #[test]
    fn entries_past_half_their_ttl_are_refreshed_once_and_never_over_a_newer_write() {
        let cache = ReadCache::new(4);
        cache.put(&name("a"), Some(b"1"), 100);
        assert_eq!(cache.claim_refresh(&name("a"), 101), None, "young");
        let claimed = cache.claim_refresh(&name("a"), 102).unwrap();
        assert_eq!(cache.claim_refresh(&name("a"), 102), None, "one at a time");
        cache.put_refreshed(&name("a"), claimed, Some(Some(b"2")), 103);
        assert_eq!(
            cache.get(&name("a"), 106).unwrap().as_deref(),
            Some(&b"2"[..]),
            "renewed: fresh until 103 + ttl"
        );

        // An own write lands while a refresh is in flight: the older read is dropped.
        let claimed = cache.claim_refresh(&name("a"), 105).unwrap();
        cache.put(&name("a"), Some(b"3"), 105);
        cache.put_refreshed(&name("a"), claimed, Some(Some(b"stale")), 105);
        assert_eq!(
            cache.get(&name("a"), 105).unwrap().as_deref(),
            Some(&b"3"[..])
        );

        // A failed refresh lets another one be claimed; expired entries are not claimed.
        let claimed = cache.claim_refresh(&name("a"), 107).unwrap();
        cache.put_refreshed(&name("a"), claimed, None, 107);
        assert!(cache.claim_refresh(&name("a"), 108).is_some());
        assert_eq!(cache.claim_refresh(&name("a"), 109), None, "expired");
        assert_eq!(ReadCache::new(1).claim_refresh(&name("a"), 100), None);
    }

    #[test]
    fn decoded_records_follow_their_bytes() {
        let cache = ReadCache::new(5);
        cache.put(&name("a"), Some(b"1"), 0);
        let (raw, decoded) = cache.get_with_decoded::<u32>(&name("a"), 0).unwrap();
        assert!(decoded.is_none());
        let raw = raw.unwrap();
        cache.remember_decoded(&name("a"), &raw, Arc::new(1u32));
        let (_, decoded) = cache.get_with_decoded::<u32>(&name("a"), 1).unwrap();
        assert_eq!(decoded.as_deref(), Some(&1));
        assert!(
            cache
                .get_with_decoded::<String>(&name("a"), 1)
                .unwrap()
                .1
                .is_none(),
            "another type never sees it"
        );
        cache.put(&name("a"), Some(b"2"), 2);
        assert!(
            cache
                .get_with_decoded::<u32>(&name("a"), 2)
                .unwrap()
                .1
                .is_none(),
            "new bytes"
        );
        cache.remember_decoded(&name("a"), &raw, Arc::new(1u32));
        assert!(
            cache
                .get_with_decoded::<u32>(&name("a"), 2)
                .unwrap()
                .1
                .is_none(),
            "stale bytes are not attached to the new entry"
        );
        assert!(
            cache.get_with_decoded::<u32>(&name("a"), 7).is_none(),
            "expired"
        );
    }

    #[test]
    fn ttl_zero_disables_caching() {
        let cache = ReadCache::new(0);
        cache.put(&name("a"), Some(b"1"), 100);
        assert_eq!(cache.get(&name("a"), 100), None);
    }

    #[test]
    fn invalidation_and_bounded_size() {
        let cache = ReadCache::new(5);
        cache.put(&name("a"), Some(b"1"), 0);
        cache.invalidate(&name("a"));
        assert_eq!(cache.get(&name("a"), 0), None);
        for i in 0..MAX_ENTRIES + 10 {
            cache.put(&name(&format!("n{i}")), None, 0);
        }
        assert!(cache.lock().len() <= MAX_ENTRIES);
        cache.clear();
        assert!(cache.lock().is_empty());
    }
}
