//! The path and query extractors every handler uses. They are axum's, with two differences: a request
//! they cannot read is answered with a problem+json 400 naming what is wrong, like every other error,
//! instead of axum's plain-text rejection; and a value holding U+0000 is refused, since no id, name or
//! region can hold it (PostgreSQL text cannot).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::problem::Problem;

/// The URL path's parameters.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        refuse_nul("path", Some(parts.uri.path()))?;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(Problem::bad_request(rejection.body_text())),
        }
    }
}

/// The query string's parameters.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        refuse_nul("query", parts.uri.query())?;
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(Problem::bad_request(rejection.body_text())),
        }
    }
}

/// A URL cannot carry U+0000 but percent-encoded, as `%00`.
fn refuse_nul(part: &str, raw: Option<&str>) -> Result<(), Problem> {
    match raw {
        Some(raw) if raw.contains("%00") => Err(Problem::bad_request(format!(
            "the {part} holds U+0000 (%00), which no value may"
        ))),
        _ => Ok(()),
    }
}
