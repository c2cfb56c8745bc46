//! URLs in the configuration, parsed once when the file is read: the database URL names its backend,
//! and an HTTP URL is known to be `http://` or `https://`. A URL's password never reaches a log line or
//! an error message: both show it as `***`. An HTTP URL is shown without its credentials and query,
//! where webhook receivers put their tokens.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, de::Error};

/// The database backends this build speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `database.url`: `sqlite://PATH` or `postgres://USER@HOST/DATABASE` (`postgresql://` too).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    backend: Backend,
    url: String,
}

impl DatabaseUrl {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL as the driver opens it, password included: never log it.
    pub fn expose(&self) -> &str {
        &self.url
    }
}

impl Default for DatabaseUrl {
    fn default() -> Self {
        DatabaseUrl {
            backend: Backend::Sqlite,
            url: "sqlite://data/plant-monitor.db".into(),
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let backend = if text.starts_with("sqlite:") {
            Backend::Sqlite
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(format!(
                "unsupported database URL {:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE",
                redacted(text)
            ));
        };
        Ok(DatabaseUrl {
            backend,
            url: text.to_owned(),
        })
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted(&self.url))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(D::Error::custom)
    }
}

/// An `http://` or `https://` URL, such as a sink's endpoint or health probe.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpUrl(url::Url);

impl HttpUrl {
    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

impl FromStr for HttpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match url::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(HttpUrl(url)),
            Ok(_) => Err(format!(
                "{:?} must be an http:// or https:// URL",
                redacted(text)
            )),
            Err(error) => Err(format!("{:?} is not a URL: {error}", redacted(text))),
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.0;
        write!(f, "{}://{}", url.scheme(), url.host_str().unwrap_or(""))?;
        if let Some(port) = url.port() {
            write!(f, ":{port}")?;
        }
        f.write_str(url.path())
    }
}

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HttpUrl({self})")
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(D::Error::custom)
    }
}

/// `text` with the password of its `scheme://user:password@host` part replaced by `***`.
fn redacted(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_names_its_backend_and_hides_its_password() {
        let url: DatabaseUrl = "postgresql://pm:s3cret@db:5433/pm?sslmode=require"
            .parse()
            .expect("valid");
        assert_eq!(url.backend(), Backend::Postgres);
        assert_eq!(
            url.to_string(),
            "postgresql://pm:***@db:5433/pm?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(
            url.expose(),
            "postgresql://pm:s3cret@db:5433/pm?sslmode=require"
        );
        let url: DatabaseUrl = "sqlite://data/x.db".parse().expect("valid");
        assert_eq!(url.backend(), Backend::Sqlite);
        let error = "mysql://u:pw@x/db"
            .parse::<DatabaseUrl>()
            .expect_err("refused");
        assert!(
            error.contains("mysql://u:***@x/db") && !error.contains("pw"),
            "{error}"
        );
    }

    #[test]
    fn an_http_url_must_be_http_or_https() {
        assert!("https://example.test/hook".parse::<HttpUrl>().is_ok());
        assert!(
            "ftp://x"
                .parse::<HttpUrl>()
                .expect_err("refused")
                .contains("http://")
        );
        assert!("not a url".parse::<HttpUrl>().is_err());
        let url: HttpUrl = "http://user:token@receiver:81/x?key=k#f"
            .parse()
            .expect("valid");
        assert_eq!(url.to_string(), "http://receiver:81/x");
        assert!(!format!("{url:?}").contains("token") && !format!("{url:?}").contains("k#"));
    }
}
