//! Cursor pagination for list use cases. A cursor is opaque to clients (base64url of the sort key
//! of the last item returned), so the ordering key can change without breaking them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::AppError;

/// Items per page when the client does not say.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;
/// Most items per page.
pub const MAX_PAGE_LIMIT: u32 = 200;
/// Longest cursor accepted (a sort key is an id of at most a few hundred bytes).
const MAX_CURSOR_CHARS: usize = 512;

/// Which page to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// `next_cursor` of the previous page; `None` for the first page.
    pub cursor: Option<String>,
    /// Items per page (1–[`MAX_PAGE_LIMIT`], default [`DEFAULT_PAGE_LIMIT`]).
    pub limit: Option<u32>,
}

impl PageRequest {
    /// The first page with the default size.
    pub fn first() -> Self {
        Self::default()
    }

    /// The page size to use, validated.
    pub(crate) fn limit(&self) -> Result<usize, AppError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE_LIMIT as usize),
            Some(limit) if (1..=MAX_PAGE_LIMIT).contains(&limit) => Ok(limit as usize),
            Some(limit) => Err(AppError::invalid(
                "invalid_limit",
                format!("limit must be 1 to {MAX_PAGE_LIMIT}, got {limit}"),
            )),
        }
    }

    /// The decoded sort key of the cursor.
    pub(crate) fn after(&self) -> Result<Option<String>, AppError> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        let bad = || AppError::invalid("invalid_cursor", "the cursor is not one this API issued");
        if cursor.is_empty() || cursor.len() > MAX_CURSOR_CHARS {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
        String::from_utf8(bytes).map(Some).map_err(|_| bad())
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Pass it back as [`PageRequest::cursor`] for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Maps the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// The cursor naming `key` as the last item returned.
pub(crate) fn cursor_for(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// One page of `items` in ascending order of `key` (keys must be unique).
pub(crate) fn paginate<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    page: &PageRequest,
) -> Result<Page<T>, AppError> {
    let limit = page.limit()?;
    let after = page.after()?;
    items.sort_by_key(|item| key(item));
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|item| after.as_ref().is_none_or(|after| key(item) > *after))
        .collect();
    let more = rest.len() > limit;
    rest.truncate(limit);
    let next_cursor = if more {
        rest.last().map(|item| cursor_for(&key(item)))
    } else {
        None
    };
    Ok(Page {
        items: rest,
        next_cursor,
    })
}
