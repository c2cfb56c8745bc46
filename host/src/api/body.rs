//! Reading JSON request bodies: the media type, the size limit and the syntax are checked here, each with
//! its own 4xx, before any handler sees the value; a body read as a type of its own is checked against
//! that type's shape too.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::problem::{FieldError, Problem};

/// The largest request body accepted; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// A request body that is syntactically valid JSON, not yet checked against any schema.
#[derive(Debug)]
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(Problem::unsupported_media_type());
        }
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => Problem::payload_too_large(MAX_BODY_BYTES),
                    _ => Problem::bad_request(rejection.body_text()),
                })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| Problem::bad_request(format!("the body is not valid JSON: {error}")))
    }
}

/// A request body read as `T`, which names what it accepts (its fields and their types, unknown fields
/// refused). JSON that does not fit is a 422 naming the place that does not.
#[derive(Debug)]
pub struct TypedBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for TypedBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBody(value) = JsonBody::from_request(request, state).await?;
        serde_path_to_error::deserialize(value)
            .map(TypedBody)
            .map_err(|error| {
                // The root's path reads ".": a missing field or a body of the wrong type.
                let field = Some(error.path().to_string()).filter(|path| path != ".");
                let message = error.into_inner().to_string();
                Problem::invalid(vec![FieldError::new(field.unwrap_or_default(), message)])
            })
    }
}

/// `application/json`, or any `application/*+json` such as `application/merge-patch+json`.
fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(essence) = content_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
    else {
        return false;
    };
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}
