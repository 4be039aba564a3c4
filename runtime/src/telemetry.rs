//! What the node tells the outside about itself while it runs, besides
//! `/metrics`: its log (text or JSON, on stdout) and, when an OTLP endpoint is
//! configured, its traces. The runtime's spans (target
//! [`anthill_core::trace::TARGET`], TRACE level) are only recorded when the
//! exporter is on, so a node without one pays a level check per span.

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How the node writes its log.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[traces]`: OpenTelemetry export over OTLP/HTTP (protobuf).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct TraceSettings {
    /// The collector, e.g. `http://127.0.0.1:4318` (`/v1/traces` is added
    /// when the URL has no path). Unset: no traces.
    pub otlp_endpoint: Option<String>,
    /// Share of traces kept (0.0–1.0), decided where a trace starts; a
    /// message carries its trace's decision to every actor it reaches.
    pub sample_ratio: f64,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// How often buffered spans are sent.
    pub export_interval_ms: u64,
}

impl Default for TraceSettings {
    fn default() -> Self {
        TraceSettings {
            otlp_endpoint: None,
            sample_ratio: 1.0,
            service_name: "anthill".into(),
            export_interval_ms: 5_000,
        }
    }
}

impl TraceSettings {
    fn traces_url(&self) -> Option<String> {
        let url = self.otlp_endpoint.as_deref()?.trim_end_matches('/');
        let has_path = url
            .split_once("://")
            .is_some_and(|(_, rest)| rest.contains('/'));
        Some(if has_path {
            url.to_owned()
        } else {
            format!("{url}/v1/traces")
        })
    }
}

/// The installed telemetry; [`Telemetry::shutdown`] sends the spans still
/// buffered.
pub(crate) struct Telemetry {
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    /// Where traces go, for the start banner.
    pub(crate) traces_to: Option<String>,
}

/// Installs the log (filter `log`, format `format`) and the trace exporter.
pub(crate) fn init(
    log: &str,
    format: LogFormat,
    traces: &TraceSettings,
) -> anyhow::Result<Telemetry> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(log).context("parsing --log")?;
    let fmt = tracing_subscriber::fmt::layer().with_target(false);
    // Escape codes only where a terminal will render them: a file or a pipe
    // gets plain text.
    let fmt: Box<dyn Layer<_> + Send + Sync> = match format {
        LogFormat::Text => fmt.with_ansi(std::io::stdout().is_terminal()).boxed(),
        LogFormat::Json => fmt.json().with_current_span(false).boxed(),
    };
    let (provider, otel) = match traces.traces_url() {
        None => (None, None),
        Some(url) => {
            anyhow::ensure!(
                (0.0..=1.0).contains(&traces.sample_ratio),
                "traces.sample_ratio must be between 0.0 and 1.0 (got {})",
                traces.sample_ratio
            );
            let provider = tracer_provider(&url, traces)?;
            let tracer = provider.tracer("anthill");
            // The runtime's spans, and warnings and errors inside them as span events.
            let wanted = Targets::new()
                .with_target(anthill_core::trace::TARGET, LevelFilter::TRACE)
                .with_default(LevelFilter::WARN);
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(wanted);
            (Some(provider), Some(layer))
        }
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init()
        .context("installing the log")?;
    Ok(Telemetry {
        traces_to: provider.as_ref().and(traces.traces_url()),
        traces: provider,
    })
}

fn tracer_provider(
    url: &str,
    traces: &TraceSettings,
) -> anyhow::Result<opentelemetry_sdk::trace::SdkTracerProvider> {
    use opentelemetry_sdk::trace::Sampler;
    // The exporter's HTTP client is reqwest's blocking one (the batch
    // processor exports from a thread of its own), which must not be built
    // inside the async runtime.
    let endpoint = url.to_owned();
    let exporter = std::thread::spawn(move || {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(5))
            .build()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("building the OTLP exporter panicked"))?
    .with_context(|| format!("setting up the OTLP trace exporter for {url}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(traces.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let batch = opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            opentelemetry_sdk::trace::BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(traces.export_interval_ms.max(10)))
                .build(),
        )
        .build();
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_span_processor(batch)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            traces.sample_ratio,
        ))))
        .with_resource(resource)
        .build())
}

impl Telemetry {
    /// Exports what is buffered (at most a few seconds: a collector that is
    /// gone must not hold the node's exit).
    pub(crate) fn shutdown(self) {
        if let Some(provider) = self.traces {
            let done = std::thread::spawn(move || provider.shutdown());
            match done.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("traces: the last spans were not exported: {e}"),
                Err(_) => eprintln!("traces: exporting the last spans panicked"),
            }
        }
    }
}
