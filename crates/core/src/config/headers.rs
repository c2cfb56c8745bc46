//! Extra request headers of a sink, checked once as the file is read: each name must be a header name
//! and each value a header value. Values are marked sensitive (they often carry credentials), so they
//! never show in debug output.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer, de::Error};

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<HeaderMap, D::Error> {
    let written = BTreeMap::<String, String>::deserialize(deserializer)?;
    let mut headers = HeaderMap::new();
    for (name, value) in written {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| D::Error::custom(format!("{name:?} is not a header name")))?;
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            D::Error::custom(format!("the value of {name} is not a valid header value"))
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}
