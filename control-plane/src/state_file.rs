//! The desired state as an operator writes it: the state part of a data plane's
//! configuration (`assets`, `peers`, `wallets`, `rates`, optionally `version`) plus a
//! `[control]` table that says where the data planes are. Validated with the data
//! plane's own rules, so a file `riptidectl` accepts is one every data plane accepts,
//! and every error names the field and its line.

use riptide_proto::state::{
    line_of, locate, AssetConfig, FieldPath, PathSegment, PeerConfig, RatesConfig, StateDocument,
    WalletConfig,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StateFileError {
    #[error("{file}: cannot read: {message}")]
    Read { file: String, message: String },
    /// Syntax, type, unknown-key or rule errors, with the line of the field.
    #[error("{file} line {line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
}

/// The file's layout. Keys are listed rather than flattened from `StateDocument`:
/// serde's flatten loses the positions that name the line of an error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layout {
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    assets: Vec<AssetConfig>,
    #[serde(default)]
    peers: Vec<PeerConfig>,
    #[serde(default)]
    wallets: Vec<WalletConfig>,
    #[serde(default)]
    rates: RatesConfig,
    #[serde(default)]
    control: ControlSection,
}

/// `[control]`: where the data planes are and how to authenticate to them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ControlSection {
    #[serde(default)]
    pub dataplanes: Vec<DataplaneEntry>,
    /// Token for every data plane without its own; `--admin-token` and
    /// `RIPTIDE_ADMIN_TOKEN` come first.
    #[serde(default)]
    pub admin_token: Option<String>,
    /// A file whose first line is the token, to keep the token out of this file.
    #[serde(default)]
    pub admin_token_file: Option<PathBuf>,
}

#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DataplaneEntry {
    /// Base URL of the admin API, e.g. `http://10.0.0.5:3003`.
    pub url: String,
    /// This data plane's own token, when data planes have different ones.
    #[serde(default)]
    pub admin_token: Option<String>,
}

// Written by hand so that a token never reaches a log through `{:?}`.
impl std::fmt::Debug for DataplaneEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataplaneEntry")
            .field("url", &self.url)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A valid state file.
#[derive(Debug, Clone, PartialEq)]
pub struct StateFile {
    /// The state to push; its `version` is the file's or 0.
    pub state: StateDocument,
    /// Whether the file names a version; if not, `riptidectl` picks one.
    pub version: Option<u64>,
    pub control: ControlSection,
}

impl StateFile {
    pub fn load(path: &Path) -> Result<StateFile, StateFileError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| StateFileError::Read {
            file: file.clone(),
            message: e.to_string(),
        })?;
        StateFile::parse(&text, &file)
    }

    pub fn parse(text: &str, file: &str) -> Result<StateFile, StateFileError> {
        let invalid = |line: usize, message: String| StateFileError::Invalid {
            file: file.to_owned(),
            line,
            message,
        };
        let layout: Layout = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| line_of(text, span.start)).unwrap_or(1);
            invalid(line, e.message().trim().to_owned())
        })?;
        let state = StateDocument {
            version: layout.version.unwrap_or(0),
            assets: layout.assets,
            peers: layout.peers,
            wallets: layout.wallets,
            rates: layout.rates,
        };
        let checked = state
            .validate_rules()
            .and_then(|()| validate_control(&layout.control));
        if let Err(error) = checked {
            let line = locate(text, &error.path);
            return Err(invalid(line, format!("{}: {}", error.path, error.message)));
        }
        Ok(StateFile {
            state,
            version: layout.version,
            control: layout.control,
        })
    }
}

fn control_path(segments: &[PathSegment]) -> FieldPath {
    let mut path = vec![PathSegment::Key("control".to_owned())];
    path.extend_from_slice(segments);
    FieldPath(path)
}

fn validate_control(control: &ControlSection) -> Result<(), riptide_proto::state::FieldError> {
    let error = |segments: &[PathSegment], message: &str| riptide_proto::state::FieldError {
        path: control_path(segments),
        message: message.to_owned(),
    };
    for (index, entry) in control.dataplanes.iter().enumerate() {
        let at = [
            PathSegment::Key("dataplanes".to_owned()),
            PathSegment::Index(index),
        ];
        if let Err(message) = crate::targets::normalize_url(&entry.url) {
            let path = [&at[..], &[PathSegment::Key("url".to_owned())]].concat();
            return Err(error(&path, &message));
        }
        if entry.admin_token.as_deref().is_some_and(str::is_empty) {
            let path = [&at[..], &[PathSegment::Key("admin_token".to_owned())]].concat();
            return Err(error(&path, "must not be empty"));
        }
    }
    if control.admin_token.as_deref().is_some_and(str::is_empty) {
        return Err(error(
            &[PathSegment::Key("admin_token".to_owned())],
            "must not be empty",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = r#"
[control]
dataplanes = [{ url = "http://127.0.0.1:3003" }, { url = "127.0.0.1:4003", admin_token = "other-token-0123456789" }]

[[assets]]
code = "USD"
scale = 2
ledger = 1

[[peers]]
id = "alice"
asset = "USD"
incoming_tokens = ["alice-token-0123456789"]
max_packet_amount = 100
"#;

    fn error_of(text: &str) -> String {
        StateFile::parse(text, "state.toml")
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn a_valid_file_keeps_state_and_control_apart() {
        let file = StateFile::parse(STATE, "state.toml").expect("valid");
        assert_eq!(file.version, None);
        assert_eq!(file.state.version, 0);
        assert_eq!(file.state.peers[0].max_packet_amount, Some(100));
        assert_eq!(file.control.dataplanes.len(), 2);
        assert_eq!(
            file.control.dataplanes[1].admin_token.as_deref(),
            Some("other-token-0123456789")
        );
        let versioned = format!("version = 7\n{STATE}");
        let file = StateFile::parse(&versioned, "state.toml").expect("valid");
        assert_eq!((file.version, file.state.version), (Some(7), 7));
    }

    #[test]
    fn rule_errors_name_field_and_line() {
        let text = STATE.replace("max_packet_amount = 100", "max_packet_amount = 0");
        assert_eq!(
            error_of(&text),
            "state.toml line 14: peers[0].max_packet_amount: must be greater than 0 (leave it out for no limit)"
        );
        let text = STATE.replace("asset = \"USD\"", "asset = \"EUR\"");
        assert_eq!(
            error_of(&text),
            "state.toml line 12: peers[0].asset: unknown asset \"EUR\""
        );
    }

    #[test]
    fn syntax_type_and_unknown_keys_name_the_line() {
        let text = STATE.replace("scale = 2", "scale = \"two\"");
        assert!(
            error_of(&text).starts_with("state.toml line 7:"),
            "{}",
            error_of(&text)
        );
        let text = STATE.replace("ledger = 1", "ledger = 1\nledgr = 2");
        let error = error_of(&text);
        assert!(
            error.starts_with("state.toml line 9: unknown field `ledgr`"),
            "{error}"
        );
        let node = format!("{STATE}\n[node]\nilp_address = \"test.x\"\n");
        assert!(error_of(&node).contains("unknown field `node`"));
    }

    #[test]
    fn control_errors_name_field_and_line() {
        let text = STATE.replace("\"127.0.0.1:4003\"", "\"ftp://x\"");
        assert_eq!(
            error_of(&text),
            "state.toml line 3: control.dataplanes[1].url: must be an http:// or https:// URL with a host"
        );
        let text = STATE.replace("dataplanes = [", "admin_token = \"\"\ndataplanes = [");
        assert_eq!(
            error_of(&text),
            "state.toml line 3: control.admin_token: must not be empty"
        );
    }

    #[test]
    fn the_example_state_file_is_valid() {
        let text = include_str!("../../riptide-state.example.toml");
        StateFile::parse(text, "riptide-state.example.toml")
            .expect("riptide-state.example.toml must stay valid");
    }

    #[test]
    fn debug_never_shows_a_token() {
        let file = StateFile::parse(STATE, "state.toml").expect("valid");
        let printed = format!("{:?}", file.control);
        assert!(!printed.contains("other-token"), "{printed}");
    }
}
