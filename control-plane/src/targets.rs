//! Which data planes a command talks to, and with which admin token. The token is
//! wrapped so that it cannot reach a log or an error message by accident.

use crate::state_file::ControlSection;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The admin API's bearer token. `Debug` prints a placeholder; only
/// [`AdminToken::authorization`] exposes it, for the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// One data plane: its admin API's base URL and token.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub token: AdminToken,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TargetError {
    #[error("no data plane: give --dataplane URL (or RIPTIDE_DATAPLANES), or list them in the state file's [control] dataplanes")]
    NoDataplane,
    #[error("data plane {url:?}: {message}")]
    BadUrl { url: String, message: String },
    #[error("no admin token for {url}: give --admin-token, RIPTIDE_ADMIN_TOKEN, --admin-token-file, or [control] admin_token")]
    NoToken { url: String },
    // The file's content is never quoted: it is the token.
    #[error("admin token file {path}: {message}")]
    TokenFile { path: String, message: String },
}

/// Where tokens come from on the command line, first match wins after a data plane's
/// own token in the file.
#[derive(Debug, Clone, Default)]
pub struct TokenSources {
    /// `--admin-token` or `RIPTIDE_ADMIN_TOKEN`.
    pub token: Option<String>,
    /// `--admin-token-file`.
    pub token_file: Option<PathBuf>,
}

/// `http://host:port` from `http://host:port/`, `https://host`, or `host:port`;
/// anything else is refused with a reason.
pub fn normalize_url(text: &str) -> Result<String, String> {
    let reason = "must be an http:// or https:// URL with a host".to_owned();
    let trimmed = text.trim();
    let (scheme, rest) = match trimmed.split_once("://") {
        Some((scheme @ ("http" | "https"), rest)) => (scheme, rest),
        Some(_) => return Err(reason),
        None => ("http", trimmed),
    };
    let host = rest.trim_end_matches('/');
    let host_ok = !host.is_empty()
        && !host.contains(['/', '?', '#', '@'])
        && host.bytes().all(|b| b.is_ascii_graphic());
    if host_ok {
        Ok(format!("{scheme}://{host}"))
    } else {
        Err(reason)
    }
}

fn read_token_file(path: &Path) -> Result<String, TargetError> {
    let error = |message: String| TargetError::TokenFile {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        return Err(error("the first line is empty".to_owned()));
    }
    Ok(token)
}

/// The token for data planes without their own: the command line's, then the file's.
fn global_token(
    sources: &TokenSources,
    control: Option<&ControlSection>,
) -> Result<Option<String>, TargetError> {
    if let Some(token) = sources.token.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(token.clone()));
    }
    if let Some(path) = &sources.token_file {
        return read_token_file(path).map(Some);
    }
    let Some(control) = control else {
        return Ok(None);
    };
    if let Some(path) = &control.admin_token_file {
        return read_token_file(path).map(Some);
    }
    Ok(control.admin_token.clone())
}

/// The data planes to talk to: `--dataplane` URLs when given, else the file's list.
/// A data plane listed in the file with its own token uses it.
pub fn resolve(
    urls: &[String],
    sources: &TokenSources,
    control: Option<&ControlSection>,
) -> Result<Vec<Target>, TargetError> {
    let global = global_token(sources, control)?;
    let listed: Vec<(String, Option<String>)> = if urls.is_empty() {
        control
            .map(|c| &c.dataplanes)
            .into_iter()
            .flatten()
            .map(|entry| (entry.url.clone(), entry.admin_token.clone()))
            .collect()
    } else {
        urls.iter().map(|url| (url.clone(), None)).collect()
    };
    if listed.is_empty() {
        return Err(TargetError::NoDataplane);
    }
    let mut targets = Vec::with_capacity(listed.len());
    for (raw, own_token) in listed {
        let url = normalize_url(&raw).map_err(|message| TargetError::BadUrl {
            url: raw.clone(),
            message,
        })?;
        let token = own_token
            .or_else(|| global.clone())
            .ok_or_else(|| TargetError::NoToken { url: url.clone() })?;
        if !targets.iter().any(|t: &Target| t.url == url) {
            targets.push(Target {
                url,
                token: AdminToken(token),
            });
        }
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_file::DataplaneEntry;

    #[test]
    fn urls_are_normalized_or_refused() {
        assert_eq!(
            normalize_url("127.0.0.1:3003").as_deref(),
            Ok("http://127.0.0.1:3003")
        );
        assert_eq!(
            normalize_url("https://dp.example:443/").as_deref(),
            Ok("https://dp.example:443")
        );
        assert!(normalize_url("ftp://x").is_err());
        assert!(normalize_url("http://").is_err());
        assert!(normalize_url("http://host/path").is_err());
        assert!(normalize_url("http://user@host").is_err());
    }

    fn control() -> ControlSection {
        ControlSection {
            dataplanes: vec![
                DataplaneEntry {
                    url: "127.0.0.1:1".into(),
                    admin_token: Some("own-token".into()),
                },
                DataplaneEntry {
                    url: "127.0.0.1:2".into(),
                    admin_token: None,
                },
            ],
            admin_token: Some("file-token".into()),
            admin_token_file: None,
        }
    }

    #[test]
    fn tokens_follow_their_precedence() {
        let targets = resolve(&[], &TokenSources::default(), Some(&control())).expect("ok");
        assert_eq!(targets[0].token.authorization(), "Bearer own-token");
        assert_eq!(targets[1].token.authorization(), "Bearer file-token");
        let sources = TokenSources {
            token: Some("flag-token".into()),
            token_file: None,
        };
        let targets = resolve(&[], &sources, Some(&control())).expect("ok");
        assert_eq!(targets[0].token.authorization(), "Bearer own-token");
        assert_eq!(targets[1].token.authorization(), "Bearer flag-token");
        let urls = vec!["http://127.0.0.1:9".to_owned()];
        let targets = resolve(&urls, &sources, Some(&control())).expect("ok");
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].url, "http://127.0.0.1:9");
    }

    #[test]
    fn missing_pieces_are_usage_errors_without_the_token() {
        assert_eq!(
            resolve(&[], &TokenSources::default(), None).expect_err("none"),
            TargetError::NoDataplane
        );
        let urls = vec!["127.0.0.1:9".to_owned()];
        assert_eq!(
            resolve(&urls, &TokenSources::default(), None).expect_err("no token"),
            TargetError::NoToken {
                url: "http://127.0.0.1:9".into()
            }
        );
        let token = AdminToken("secret-value".into());
        assert!(!format!("{token:?}").contains("secret-value"));
    }

    #[test]
    fn token_files_give_their_first_line_and_errors_never_quote_them() {
        let dir = std::env::temp_dir().join(format!("riptidectl-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let good = dir.join("token");
        std::fs::write(&good, "  file-secret-token \nsecond line\n").expect("write");
        let empty = dir.join("empty");
        std::fs::write(&empty, "\nfile-secret-token\n").expect("write");
        assert_eq!(read_token_file(&good).as_deref(), Ok("file-secret-token"));
        let error = read_token_file(&empty).expect_err("empty first line");
        assert!(!error.to_string().contains("file-secret-token"), "{error}");
        let missing = read_token_file(&dir.join("missing")).expect_err("missing");
        assert!(matches!(missing, TargetError::TokenFile { .. }));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
