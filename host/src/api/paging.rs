//! Pages of a longer list: the `{"items": [...], "next": ...}` shape and the bounds on `limit`.

use serde::Serialize;

use super::problem::Problem;

/// Largest page a client may ask for, and the page size when it does not ask.
pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 100;

/// One page; `next` is what to pass as `after` for the following page, null on the last.
#[derive(Debug, Serialize)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// Builds a page from up to `limit + 1` rows: the extra row only proves that a next page exists,
    /// so a client never has to fetch an empty last page.
    pub fn of(mut rows: Vec<T>, limit: u32, cursor: impl Fn(&T) -> C) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if more { rows.last().map(cursor) } else { None };
        Page { items: rows, next }
    }
}

/// The page size a client asked for, within bounds.
pub fn limit(requested: Option<u32>) -> Result<u32, Problem> {
    match requested.unwrap_or(DEFAULT_LIMIT) {
        limit @ 1..=MAX_LIMIT => Ok(limit),
        _ => Err(Problem::bad_request(format!(
            "`limit` must be from 1 to {MAX_LIMIT}"
        ))),
    }
}
