//! Opaque pagination cursors. Clients must not build them, so the encoding can change without breaking
//! anyone; today a cursor is the last id of the page, base64url-encoded.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::problem::Problem;

pub fn encode(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_id)
}

pub fn decode(cursor: &str) -> Result<String, Problem> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| Problem::bad_request("`after` is not a cursor this server issued"))
}
