//! Optional settings written as strings, where an empty string means "none" as well as leaving the key
//! out, so `api_token = ""` in an existing file keeps meaning what it always meant.

use serde::{Deserialize, Deserializer};

use super::url::HttpUrl;

pub fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Some(String::deserialize(deserializer)?).filter(|text| !text.is_empty()))
}

pub fn http_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<HttpUrl>, D::Error> {
    match string(deserializer)? {
        Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
        None => Ok(None),
    }
}
