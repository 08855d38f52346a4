//! `[telemetry]`: OpenTelemetry metrics pushed to collectors over OTLP/HTTP (env
//! `OPEN_TELEMETRY_COLLECTOR_URLS`, comma separated, and
//! `OPEN_TELEMETRY_EXPORT_INTERVAL`, as Rafiki names them). Prometheus on the
//! admin port stays whatever this says.

use super::{FieldError, FieldPath};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Collectors' OTLP/HTTP endpoints (`http://host:4318`); metrics go to
    /// `<url>/v1/metrics`. None exports nothing.
    pub otlp_urls: Vec<String>,
    /// How often metrics are pushed.
    pub export_interval_ms: u64,
    /// The `service.name` of the exported resource.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_urls: Vec::new(),
            export_interval_ms: 15_000,
            service_name: "riptide".into(),
        }
    }
}

impl TelemetryConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        let path = FieldPath::root("telemetry");
        for (index, url) in self.otlp_urls.iter().enumerate() {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(FieldError::new(
                    path.key("otlp_urls").index(index),
                    "must be http[s]://host[:port]",
                ));
            }
        }
        if self.export_interval_ms < 100 {
            return Err(FieldError::new(
                path.key("export_interval_ms"),
                "must be at least 100",
            ));
        }
        Ok(())
    }
}
