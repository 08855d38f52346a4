//! The load generator arrives with its own issue; until then this binary says so
//! instead of pretending to measure anything.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("riptide-loadgen: not built yet; see the load generator issue");
    ExitCode::from(2)
}
