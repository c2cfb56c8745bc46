//! Pages of a longer list: the `{"items": [...], "next": ...}` shape, the bounds on `limit`, and a bound
//! on a page's size in bytes, since items (a change carries two plant images) vary in size.

use serde::Serialize;

use super::problem::Problem;

/// Largest page a client may ask for, and the page size when it does not ask.
pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 100;

/// A page ends early, with a `next` cursor, once its items reach this many bytes of JSON.
pub const MAX_PAGE_BYTES: usize = 4 << 20;

/// One page; `next` is what to pass as `after` for the following page, null on the last.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    #[schema(schema_with = nullable::<C>)]
    pub next: Option<C>,
}

/// `C` or null: utoipa does not make a generic `Option` nullable by itself.
fn nullable<C: utoipa::PartialSchema>() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(C::schema())
        .item(utoipa::openapi::schema::Object::with_type(
            utoipa::openapi::schema::Type::Null,
        ))
        .into()
}

impl<T: Serialize, C> Page<T, C> {
    /// Builds a page from up to `limit + 1` rows: the extra row only proves that a next page exists,
    /// so a client never has to fetch an empty last page. The page stops before the item that would
    /// take it past [`MAX_PAGE_BYTES`] (it always holds one).
    pub fn of(mut rows: Vec<T>, limit: u32, cursor: impl Fn(&T) -> C) -> Self {
        let mut bytes = 0;
        let fitting = rows
            .iter()
            .take_while(|row| {
                bytes += serde_json::to_vec(row).map_or(0, |json| json.len());
                bytes <= MAX_PAGE_BYTES
            })
            .count()
            .max(1);
        let limit = (limit as usize).min(fitting);
        let more = rows.len() > limit;
        rows.truncate(limit);
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
