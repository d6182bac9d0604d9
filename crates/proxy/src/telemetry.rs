//! Logging: structured JSON lines (or text for development) with the request span's fields, so every record
//! of a request carries its `request_id`. Authorization and Cookie headers are marked sensitive before the trace
//! layer sees them, and no code path logs a token.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// The default filter when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info";

/// A subscriber writing `format` lines to `writer`, filtered by `filter` (e.g. `info`).
pub fn subscriber<W>(
    format: LogFormat,
    writer: W,
    filter: &str,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    match format {
        LogFormat::Json => Box::new(
            tracing_subscriber::fmt()
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .with_target(true)
                .with_env_filter(filter)
                .with_writer(writer)
                .finish(),
        ),
        LogFormat::Text => Box::new(
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(writer)
                .finish(),
        ),
    }
}
