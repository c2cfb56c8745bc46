//! Configuration errors, each rendered as the one line an operator needs: which file or variable,
//! which key, what is wrong.

use std::path::{Path, PathBuf};

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}", path = path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {}{message}", key_prefix(key), path = path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
    #[error("environment variable {var}: {message}")]
    Env { var: &'static str, message: String },
    #[error("{source_name}: key `{key}`: {message}")]
    Invalid {
        source_name: String,
        key: String,
        message: String,
    },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() || key == "." {
        String::new()
    } else {
        format!("key `{key}`: ")
    }
}

impl ConfigError {
    pub(super) fn from_toml(path: &Path, text: &str, key: String, error: toml::de::Error) -> Self {
        let offset = error.span().map_or(0, |span| span.start);
        let (line, column) = line_and_column(text, offset);
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            key,
            // toml's messages may span lines; the contract is one line.
            message: error
                .message()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// One-based line and column of a byte offset, counting characters rather than bytes.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
