//! The RPC latency histogram: a tower layer around the node's whole gRPC router (both the
//! WorkflowService and the OperatorService), so every call is timed in one place.
//!
//! `perdura_rpc_seconds{service, method, code}` is the time from the request's arrival at the
//! router to its response headers. Labels only ever take bounded values: `method` is a method
//! of the served protos (`pb::methods::GRPC_METHODS`) or `unknown`, and `code` is a gRPC
//! status name. The code is read from the response headers, where tonic puts the status of a
//! failed unary call; a response without one is a success whose status follows in the
//! trailers (all Temporal RPCs are unary, so a failure after the headers is not expected).

use crate::pb::methods::GRPC_METHODS;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::Code;
use tonic::codegen::http;

/// Histogram: gRPC call latency in seconds, labels `service`, `method`, `code`.
pub const RPC_SECONDS: &str = "perdura_rpc_seconds";

/// Wraps a gRPC router so that every call records [`RPC_SECONDS`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RpcMetricsLayer;

impl<S> tower_layer::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics { inner }
    }
}

/// The service [`RpcMetricsLayer`] produces.
#[derive(Clone, Debug)]
pub struct RpcMetrics<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> tower_service::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (service, method) = method_labels(request.uri().path());
        let started = Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = call.await;
            let code = match &result {
                Ok(response) => code_label(response_code(response.headers())),
                // The router itself failed (not a gRPC status): count it as UNKNOWN.
                Err(_) => code_label(Code::Unknown),
            };
            metrics::histogram!(
                RPC_SECONDS,
                "service" => service,
                "method" => method,
                "code" => code,
            )
            .record(started.elapsed().as_secs_f64());
            result
        })
    }
}

/// `(service, method)` of a request path, or `("unknown", "unknown")` for a path that names
/// no served method (the label set stays bounded whatever clients send).
pub fn method_labels(path: &str) -> (&'static str, &'static str) {
    match GRPC_METHODS.binary_search_by(|(known, _, _)| (*known).cmp(path)) {
        Ok(i) => (GRPC_METHODS[i].1, GRPC_METHODS[i].2),
        Err(_) => ("unknown", "unknown"),
    }
}

/// The gRPC status in the response headers; none there means OK (see the module docs), an
/// unreadable one UNKNOWN.
fn response_code(headers: &http::HeaderMap) -> Code {
    headers.get("grpc-status").map_or(Code::Ok, |value| {
        value
            .to_str()
            .ok()
            .and_then(|value| value.parse::<i32>().ok())
            .map_or(Code::Unknown, Code::from)
    })
}

/// The status names gRPC's own Prometheus middleware uses (`OK`, `NotFound`, …).
pub fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_get_their_method_and_others_unknown() {
        assert_eq!(
            method_labels(
                "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"
            ),
            ("WorkflowService", "StartWorkflowExecution")
        );
        assert_eq!(
            method_labels("/temporal.api.operatorservice.v1.OperatorService/ListSearchAttributes"),
            ("OperatorService", "ListSearchAttributes")
        );
        assert_eq!(
            method_labels("/temporal.api.workflowservice.v1.WorkflowService/NoSuchCall"),
            ("unknown", "unknown")
        );
        assert_eq!(method_labels("/"), ("unknown", "unknown"));
        assert!(GRPC_METHODS.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
    }

    #[test]
    fn status_header_decides_the_code() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(response_code(&headers), Code::Ok);
        headers.insert("grpc-status", http::HeaderValue::from_static("14"));
        assert_eq!(code_label(response_code(&headers)), "Unavailable");
        headers.insert("grpc-status", http::HeaderValue::from_static("junk"));
        assert_eq!(response_code(&headers), Code::Unknown);
    }
}
