//! What a command can fail with, and the exit code each failure means.

use crate::state_file::StateFileError;
use crate::targets::TargetError;
use thiserror::Error;

/// Exit code for an operation that failed, or a data plane that did not acknowledge.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for a usage error or invalid input (clap uses 2 for usage too).
pub const EXIT_INVALID: u8 = 2;

#[derive(Debug, Error)]
pub enum CtlError {
    #[error(transparent)]
    StateFile(#[from] StateFileError),
    #[error(transparent)]
    Targets(#[from] TargetError),
    /// The input is wrong: a rule the state breaks, a peer that does not exist.
    #[error("{0}")]
    Invalid(String),
    /// The operation was tried and did not succeed everywhere.
    #[error("{0}")]
    Failed(String),
}

impl CtlError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::StateFile(_) | CtlError::Targets(_) | CtlError::Invalid(_) => EXIT_INVALID,
            CtlError::Failed(_) => EXIT_FAILED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(CtlError::Invalid("x".into()).exit_code(), 2);
        assert_eq!(CtlError::Targets(TargetError::NoDataplane).exit_code(), 2);
        assert_eq!(CtlError::Failed("x".into()).exit_code(), 1);
    }
}
