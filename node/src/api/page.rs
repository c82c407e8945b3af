//! Cursor pagination: `?limit=N&cursor=C`; answers carry `next_cursor` (null on the last page).

use serde::Deserialize;
use utoipa::IntoParams;

/// Largest page.
pub const LIMIT_MAX: usize = 1000;

/// Paging parameters of every list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The limit, clamped to 1..=1000.
    pub fn limit(&self) -> usize {
        limit_of(self.limit)
    }
}

/// A requested page size clamped to 1..=1000 (default 100).
pub fn limit_of(limit: Option<usize>) -> usize {
    limit.unwrap_or(100).clamp(1, LIMIT_MAX)
}

/// One page of `items` sorted by `key`: those after the cursor, at most `limit`, and the cursor
/// of the next page.
pub fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    query: &PageQuery,
) -> (Vec<T>, Option<String>) {
    let limit = query.limit();
    let mut out: Vec<T> = items
        .into_iter()
        .filter(|item| query.cursor.as_ref().is_none_or(|c| key(item) > *c))
        .take(limit + 1)
        .collect();
    let next = next_cursor(&mut out, limit, key);
    (out, next)
}

/// For a store query that asked for `limit + 1` items: keeps `limit` of them and returns the
/// cursor of the next page (the key of the last item kept), or `None` on the last page.
pub fn next_cursor<T>(
    items: &mut Vec<T>,
    limit: usize,
    key: impl Fn(&T) -> String,
) -> Option<String> {
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(key)
    } else {
        None
    }
}
