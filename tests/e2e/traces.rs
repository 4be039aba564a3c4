//! Traces: a node given an OTLP endpoint exports the spans of a nested call
//! with the structure of the messages (admin call → the caller's message → its
//! `call` → the callee's message), to a receiver this test runs.

use anthill_tests::{Node, eventually};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Received = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP (protobuf) trace receiver on a loopback port.
async fn receiver() -> anyhow::Result<(String, Received)> {
    let spans: Received = Arc::default();
    let keep = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                match ExportTraceServiceRequest::decode(body) {
                    Ok(req) => {
                        let mut kept = keep.lock().expect("spans lock");
                        for rs in req.resource_spans {
                            for ss in rs.scope_spans {
                                kept.extend(ss.spans);
                            }
                        }
                        (
                            axum::http::StatusCode::OK,
                            [("content-type", "application/x-protobuf")],
                            ExportTraceServiceResponse::default().encode_to_vec(),
                        )
                    }
                    Err(e) => (
                        axum::http::StatusCode::BAD_REQUEST,
                        [("content-type", "text/plain")],
                        e.to_string().into_bytes(),
                    ),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, spans))
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            Value::StringValue(s) => s.clone(),
            other => format!("{other:?}"),
        })
}

fn find<'a>(spans: &'a [Span], name: &str, key: &str, value: &str) -> Option<&'a Span> {
    spans
        .iter()
        .find(|s| s.name == name && attr(s, key).as_deref() == Some(value))
}

#[tokio::test]
async fn a_nested_call_exports_spans_parented_like_its_messages() -> anyhow::Result<()> {
    let (url, received) = receiver().await?;
    let node = Node::start_with_config(&format!(
        "[traces]\notlp_endpoint = \"{url}\"\nexport_interval_ms = 100\n"
    ))
    .await?;
    assert!(
        node.output()
            .contains(&format!("traces: OTLP/HTTP to {url}/v1/traces")),
        "the banner says where traces go:\n{}",
        node.output()
    );
    let admin = node.admin();
    admin.deploy("probe", "probe", "kind=keyed").await?;
    admin.call_text("probe/b", "state").await?;
    admin
        .call_text("probe/a", "call probe/b 2000 state")
        .await?;

    let spans = eventually(
        Duration::from_secs(15),
        "the nested call's spans",
        || async {
            let spans = received.lock().expect("spans lock").clone();
            let done = find(&spans, "actor.message", "actor", "probe/b").is_some()
                && spans.iter().any(|s| s.name == "call")
                && find(&spans, "admin.call", "to", "probe/a").is_some();
            Ok(done.then_some(spans))
        },
    )
    .await?;

    let outer = find(&spans, "admin.call", "to", "probe/a").expect("checked above");
    assert!(
        outer.parent_span_id.is_empty(),
        "the admin call starts the trace"
    );
    let caller = spans
        .iter()
        .find(|s| {
            s.name == "actor.message"
                && attr(s, "actor").as_deref() == Some("probe/a")
                && s.parent_span_id == outer.span_id
        })
        .expect("probe/a's message is a child of the admin call");
    let call = spans
        .iter()
        .find(|s| s.name == "call" && s.parent_span_id == caller.span_id)
        .expect("the nested call is a child of probe/a's message");
    assert_eq!(attr(call, "to").as_deref(), Some("probe/b"));
    let callee = spans
        .iter()
        .find(|s| {
            s.name == "actor.message"
                && attr(s, "actor").as_deref() == Some("probe/b")
                && s.parent_span_id == call.span_id
        })
        .expect("probe/b's message is a child of the call");
    for s in [caller, call, callee] {
        assert_eq!(
            s.trace_id, outer.trace_id,
            "{} is in the same trace",
            s.name
        );
    }
    // Nested in time too: the callee ran inside the call, inside the caller.
    assert!(call.start_time_unix_nano <= callee.start_time_unix_nano);
    assert!(callee.end_time_unix_nano <= call.end_time_unix_nano);
    assert!(caller.start_time_unix_nano <= call.start_time_unix_nano);
    assert!(call.end_time_unix_nano <= caller.end_time_unix_nano);
    // The earlier direct call was a trace of its own, not part of this one.
    let direct = spans
        .iter()
        .find(|s| s.name == "admin.call" && attr(s, "to").as_deref() == Some("probe/b"))
        .expect("the direct call's span");
    assert_ne!(direct.trace_id, outer.trace_id);
    Ok(())
}
