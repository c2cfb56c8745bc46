//! Optimistic concurrency: a plant's `ETag` is its version, and `If-Match` makes a write conditional on it
//! (RFC 9110 §13.1.1). Only strong tags match; `*` matches any existing plant.

use axum::http::{HeaderMap, HeaderValue, header};

use super::problem::Problem;

pub fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// What an `If-Match` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: the plant must exist.
    Any,
    /// The plant must be at one of these versions (weak tags never match, so they are dropped).
    Versions(Vec<u64>),
}

impl IfMatch {
    pub fn matches(&self, version: u64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(versions) => versions.contains(&version),
        }
    }
}

/// Parses every `If-Match` header of the request; `None` when there is none. A header with no tag, or
/// with a tag this server cannot have issued, is a bad request.
pub fn if_match(headers: &HeaderMap) -> Result<Option<IfMatch>, Problem> {
    let mut versions = Vec::new();
    let mut tagged = 0;
    let mut seen = false;
    for value in headers.get_all(header::IF_MATCH) {
        seen = true;
        let text = value
            .to_str()
            .map_err(|_| Problem::bad_request("If-Match is not ASCII"))?;
        // Tags are separated by commas and optional whitespace, which HTTP spells SP or HTAB.
        let tags = text.split(',').map(|tag| tag.trim_matches([' ', '\t']));
        for tag in tags.filter(|t| !t.is_empty()) {
            if tag == "*" {
                return Ok(Some(IfMatch::Any));
            }
            let (weak, quoted) = match tag.strip_prefix("W/") {
                Some(quoted) => (true, quoted),
                None => (false, tag),
            };
            let version: u64 = quoted
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| {
                    Problem::bad_request(format!(
                        "If-Match holds {tag:?}; send the ETag exactly as received, e.g. \"3\""
                    ))
                })?;
            tagged += 1;
            if !weak {
                versions.push(version);
            }
        }
    }
    match (seen, tagged) {
        (false, _) => Ok(None),
        (true, 0) => Err(Problem::bad_request(
            "If-Match is empty; send the ETag exactly as received, e.g. \"3\", or *",
        )),
        (true, _) => Ok(Some(IfMatch::Versions(versions))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Result<Option<IfMatch>, Problem> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                header::IF_MATCH,
                HeaderValue::from_str(value).expect("ascii"),
            );
        }
        if_match(&headers)
    }

    #[test]
    fn strong_tags_in_one_or_several_headers_are_all_collected() {
        let parsed = parse(&["\"3\", \"5\"", "\"8\""]).expect("valid");
        assert_eq!(parsed, Some(IfMatch::Versions(vec![3, 5, 8])));
    }

    #[test]
    fn a_star_matches_any_version_and_weak_tags_match_none() {
        assert_eq!(parse(&["*"]).expect("valid"), Some(IfMatch::Any));
        let weak = parse(&["W/\"3\""]).expect("valid").expect("present");
        assert!(!weak.matches(3));
    }

    #[test]
    fn an_unquoted_or_non_numeric_tag_is_a_bad_request() {
        assert!(parse(&["3"]).is_err());
        assert!(parse(&["\"abc\""]).is_err());
        assert!(parse(&["W/abc"]).is_err());
        assert!(parse(&[""]).is_err(), "a header without a tag");
        assert_eq!(parse(&[]).expect("valid"), None);
    }
}
