//! sovereign tracing itself: spans with structured attributes (the phase,
//! and each resource an apply changes), exported over OTLP/HTTP when the
//! standard `OTEL_*` variables ask for it, or to Logfire with
//! `LOGFIRE_TOKEN`; logs on stderr when `RUST_LOG` asks for them.
//!
//! Nothing is installed otherwise: no subscriber, no exporter, no thread,
//! so the spans are the `tracing` macros' disabled fast path.
//!
//! Facts: the OTLP exporter reads `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (`…/v1/traces` appended), `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as
//! is) and `OTEL_EXPORTER_OTLP_HEADERS` itself (opentelemetry-otlp 0.33);
//! `OTEL_SDK_DISABLED=true` and `OTEL_TRACES_EXPORTER=none` turn export off
//! (OpenTelemetry SDK environment variable specification). Logfire
//! (../shared/reference/targets-facts.md §6.2): OTLP/HTTP only, at
//! `https://logfire-<region>.pydantic.dev/v1/traces`, the region from the
//! write token `pylf_v<N>_<region>_…` (`us` or `eu`, else US), the token
//! itself as the `Authorization` header, without `Bearer`;
//! `LOGFIRE_BASE_URL` overrides the base.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How logs are written when `RUST_LOG` asks for them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Where traces go, from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Export {
    None,
    /// The OTLP exporter configures itself from `OTEL_EXPORTER_OTLP_*`.
    Otlp,
    /// Logfire: the traces endpoint and the write token.
    Logfire {
        endpoint: String,
        token: String,
    },
}

/// What the environment asks for (`env` reads a variable).
pub(crate) fn export(env: &dyn Fn(&str) -> Option<String>) -> Export {
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
    {
        return Export::None;
    }
    if set("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some() {
        return Export::Otlp;
    }
    let Some(token) = set("LOGFIRE_TOKEN") else { return Export::None };
    let token = token.trim().to_owned();
    let base = set("LOGFIRE_BASE_URL").unwrap_or_else(|| {
        let region = token.split('_').nth(2).filter(|r| *r == "eu").unwrap_or("us");
        format!("https://logfire-{region}.pydantic.dev")
    });
    Export::Logfire { endpoint: format!("{}/v1/traces", base.trim_end_matches('/')), token }
}

/// The installed tracing, flushed when dropped.
pub(crate) struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Installs what the environment asks for; a problem (a bad endpoint)
    /// is said once on stderr, and the command runs untraced.
    pub(crate) fn start(format: LogFormat) -> Telemetry {
        let env = |name: &str| std::env::var(name).ok();
        let export = export(&env);
        let logs = env("RUST_LOG").filter(|v| !v.trim().is_empty());
        if export == Export::None && logs.is_none() {
            return Telemetry { provider: None };
        }
        let provider = match &export {
            Export::None => None,
            Export::Otlp => build(opentelemetry_otlp::SpanExporter::builder().with_http().build()),
            Export::Logfire { endpoint, token } => {
                let headers = std::collections::HashMap::from([("Authorization".to_owned(), token.clone())]);
                build(
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_http()
                        .with_endpoint(endpoint.clone())
                        .with_headers(headers)
                        .build(),
                )
            }
        };
        // Logs only where RUST_LOG asks for them; the spans go to the exporter regardless.
        let filter = || tracing_subscriber::EnvFilter::new(logs.as_deref().unwrap_or("off"));
        // A line per span as it closes (with its time), and per event.
        let closed = tracing_subscriber::fmt::format::FmtSpan::CLOSE;
        let colour =
            std::io::IsTerminal::is_terminal(&std::io::stderr()) && env("NO_COLOR").is_none_or(|v| v.is_empty());
        let human = (format == LogFormat::Human).then(|| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(colour)
                .with_target(false)
                .with_span_events(closed.clone())
                .with_filter(filter())
        });
        let json = (format == LogFormat::Json).then(|| {
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .with_span_events(closed)
                .with_filter(filter())
        });
        // sovereign's own spans only: a dependency's (kube's HTTP client logs response bodies) never leave the process.
        let own = tracing_subscriber::filter::Targets::new()
            .with_target("sovereign", tracing::Level::INFO)
            .with_target("sovereign_check", tracing::Level::INFO)
            .with_target("sovereign_analyze", tracing::Level::INFO)
            .with_target("sovereign_kubernetes", tracing::Level::INFO)
            .with_target("sovereign_oci", tracing::Level::INFO);
        let otel = provider
            .as_ref()
            .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("sovereign")).with_filter(own));
        let _ = tracing_subscriber::registry().with(human).with(json).with(otel).try_init();
        Telemetry { provider }
    }
}

/// A provider over `exporter`, or `None` (said on stderr) when it could not be made.
fn build(
    exporter: Result<opentelemetry_otlp::SpanExporter, opentelemetry_otlp::ExporterBuildError>,
) -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    match exporter {
        Ok(exporter) => {
            let resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name()).build();
            Some(
                opentelemetry_sdk::trace::SdkTracerProvider::builder()
                    .with_resource(resource)
                    .with_batch_exporter(exporter)
                    .build(),
            )
        }
        Err(e) => {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("warning: traces are not exported: {e}\n").as_bytes(),
            );
            None
        }
    }
}

/// `OTEL_SERVICE_NAME`, else `sovereign`.
fn service_name() -> String {
    std::env::var("OTEL_SERVICE_NAME").ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| "sovereign".into())
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Sends what is batched; a receiver that is gone costs its timeout once.
            let _ = provider.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Export {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        export(&|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn the_environment_decides_where_traces_go() {
        assert_eq!(with(&[]), Export::None);
        assert_eq!(with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]), Export::Otlp);
        assert_eq!(with(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces")]), Export::Otlp);
        let disabled = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_SDK_DISABLED", "true")];
        assert_eq!(with(&disabled), Export::None);
        assert_eq!(
            with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"), ("OTEL_TRACES_EXPORTER", "none")]),
            Export::None
        );
        // An OTLP endpoint wins over Logfire.
        assert_eq!(
            with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"), ("LOGFIRE_TOKEN", "pylf_v1_eu_x")]),
            Export::Otlp
        );
    }

    #[test]
    fn logfire_is_reached_in_the_region_its_token_names() {
        let eu = with(&[("LOGFIRE_TOKEN", "pylf_v1_eu_abc")]);
        assert_eq!(
            eu,
            Export::Logfire {
                endpoint: "https://logfire-eu.pydantic.dev/v1/traces".into(),
                token: "pylf_v1_eu_abc".into()
            }
        );
        let Export::Logfire { endpoint, .. } = with(&[("LOGFIRE_TOKEN", "pylf_v1_us_abc")]) else { panic!() };
        assert_eq!(endpoint, "https://logfire-us.pydantic.dev/v1/traces");
        let Export::Logfire { endpoint, .. } = with(&[("LOGFIRE_TOKEN", "pylf_v2_ap_abc")]) else { panic!() };
        assert_eq!(endpoint, "https://logfire-us.pydantic.dev/v1/traces", "unknown regions fall back to US");
        let Export::Logfire { endpoint, .. } =
            with(&[("LOGFIRE_TOKEN", "pylf_v1_eu_abc"), ("LOGFIRE_BASE_URL", "http://127.0.0.1:9/")])
        else {
            panic!()
        };
        assert_eq!(endpoint, "http://127.0.0.1:9/v1/traces");
    }
}
