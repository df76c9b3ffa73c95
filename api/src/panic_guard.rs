//! The panic guard: a tower layer around the node's whole gRPC router that turns a panic in a
//! handler into an `INTERNAL` status for that one call.
//!
//! Without it a panic unwinds into the connection's task, which dies: the client sees its
//! stream reset (or waits for a long poll's answer that never comes) and every other call on
//! the connection fails with it. No handler is meant to panic (input never reaches an
//! `unwrap`; the gRPC storm test checks this); the guard bounds the damage of one that does.
//! Nothing is written by a panicking handler except through Raft, so no state is half-changed.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::codegen::http;

/// Wraps a gRPC router so that a panicking call answers `INTERNAL`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PanicGuardLayer;

impl<S> tower_layer::Layer<S> for PanicGuardLayer {
    type Service = PanicGuard<S>;

    fn layer(&self, inner: S) -> PanicGuard<S> {
        PanicGuard { inner }
    }
}

/// The service [`PanicGuardLayer`] produces.
#[derive(Clone, Debug)]
pub struct PanicGuard<S> {
    inner: S,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for PanicGuard<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Guarded<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        // A panic while the router starts the call is caught too.
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(call) => Guarded {
                call: Some(Box::pin(call)),
                path,
            },
            Err(panic) => {
                report(&path, &panic);
                Guarded { call: None, path }
            }
        }
    }
}

/// A call's future that answers `INTERNAL` if polling it panics.
pub struct Guarded<F> {
    /// `None` once it panicked (or if starting it did).
    call: Option<Pin<Box<F>>>,
    path: String,
}

impl<F, R, E> Future for Guarded<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
    R: Default,
{
    type Output = Result<http::Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(call) = this.call.as_mut() else {
            return Poll::Ready(Ok(internal_response()));
        };
        match catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => {
                this.call = None;
                report(&this.path, &panic);
                Poll::Ready(Ok(internal_response()))
            }
        }
    }
}

fn report(path: &str, panic: &Box<dyn std::any::Any + Send>) {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned());
    metrics::counter!("perdura_rpc_panics_total").increment(1);
    tracing::error!(path, panic = %what, "a gRPC handler panicked; the call answers INTERNAL");
}

/// A trailers-only gRPC response carrying `INTERNAL`.
fn internal_response<R: Default>() -> http::Response<R> {
    let mut response = http::Response::new(R::default());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", http::HeaderValue::from_static("13"));
    headers.insert(
        "grpc-message",
        http::HeaderValue::from_static("internal error: the server failed this call"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower_layer::Layer;
    use tower_service::Service;

    /// A router whose `/panic` call panics while it runs and `/panic-at-start` as it starts.
    #[derive(Clone)]
    struct Router;

    impl Service<http::Request<()>> for Router {
        type Response = http::Response<String>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<http::Response<String>, Infallible>>>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<()>) -> Self::Future {
            let path = request.uri().path().to_owned();
            if path == "/panic-at-start" {
                panic!("starting {path}");
            }
            Box::pin(async move {
                tokio::task::yield_now().await;
                if path == "/panic" {
                    panic!("running {path}");
                }
                Ok(http::Response::new(format!("answered {path}")))
            })
        }
    }

    async fn call(path: &str) -> http::Response<String> {
        let mut guarded = PanicGuardLayer.layer(Router);
        let request = http::Request::builder()
            .uri(path)
            .body(())
            .expect("request");
        match guarded.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    fn grpc_status(response: &http::Response<String>) -> Option<&str> {
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn a_panicking_call_answers_internal_and_the_next_call_is_served() {
        let panicked = call("/panic").await;
        assert_eq!(grpc_status(&panicked), Some("13"));
        assert_eq!(panicked.body(), "");
        let at_start = call("/panic-at-start").await;
        assert_eq!(grpc_status(&at_start), Some("13"));
        let fine = call("/fine").await;
        assert_eq!(grpc_status(&fine), None);
        assert_eq!(fine.body(), "answered /fine");
    }
}
