//! Opaque pagination cursors. Clients must not build them, so the encoding can change without breaking
//! anyone; today a cursor is the last id of the page, base64url-encoded. Any base64url text reads as
//! some position, so a cursor this server did not issue starts a page somewhere rather than failing.

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};

use super::problem::Problem;

/// Reads what [`URL_SAFE_NO_PAD`] writes, and any other base64url text too.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub fn encode(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_id)
}

pub fn decode(cursor: &str) -> Result<String, Problem> {
    let bytes = LENIENT
        .decode(cursor)
        .map_err(|_| Problem::bad_request("`after` is not a cursor: it is not base64url"))?;
    // An id never holds U+0000, and PostgreSQL text cannot.
    Ok(String::from_utf8_lossy(&bytes).replace('\0', ""))
}
