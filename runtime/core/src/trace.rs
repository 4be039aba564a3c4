//! Trace context carried in messages. Spans are `tracing` spans of the
//! [`TARGET`] target, at TRACE level, so they cost a level check unless an
//! exporter asked for them; the node's telemetry turns them into
//! OpenTelemetry spans. A message remembers the span it was sent or called
//! from ([`TraceParent::current`]), and the receiving actor's span takes it as
//! its parent ([`TraceParent::adopt`]), across tasks and, later, nodes.

use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of every span the runtime opens for tracing (the exporter's
/// filter selects it).
pub const TARGET: &str = "anthill::trace";

/// The span a message was sent or called from (nothing when tracing is off).
#[derive(Clone, Default)]
pub struct TraceParent(Option<opentelemetry::Context>);

impl std::fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "TraceParent(some)"
        } else {
            "TraceParent(none)"
        })
    }
}

impl TraceParent {
    /// The current span's context, if tracing records it.
    pub fn current() -> TraceParent {
        let span = tracing::Span::current();
        if span.is_disabled() {
            return TraceParent(None);
        }
        TraceParent(Some(span.context()))
    }

    /// No parent: the receiver starts a trace of its own.
    pub fn none() -> TraceParent {
        TraceParent(None)
    }

    /// Makes `span` a child of this parent (a no-op without one).
    pub fn adopt(&self, span: &tracing::Span) {
        if let Some(cx) = &self.0
            && !span.is_disabled()
        {
            let _ = span.set_parent(cx.clone());
        }
    }
}
