use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::Status;
use tower::{Layer, Service};

/// Health checks stay open so orchestrators can probe an authenticated server.
const OPEN_PATH_PREFIX: &str = "/grpc.health.v1.Health/";

/// Requires `authorization: Bearer <token>` on every gRPC call (health checks
/// excepted) when a token is configured; passes everything through otherwise.
#[derive(Clone, Default)]
pub struct BearerAuthLayer {
    token: Option<Arc<str>>,
}

impl BearerAuthLayer {
    /// A layer checking for `token`; `None` disables authentication.
    pub fn new(token: Option<String>) -> Self {
        Self {
            token: token.map(Arc::from),
        }
    }
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            token: self.token.clone(),
        }
    }
}

/// The service [`BearerAuthLayer`] wraps around each route.
#[derive(Clone)]
pub struct BearerAuth<S> {
    inner: S,
    token: Option<Arc<str>>,
}

impl<S> BearerAuth<S> {
    fn allows<B>(&self, request: &http::Request<B>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        if request.uri().path().starts_with(OPEN_PATH_PREFIX) {
            return true;
        }
        request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
    }
}

impl<S, ReqBody> Service<http::Request<ReqBody>> for BearerAuth<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        if self.allows(&request) {
            Box::pin(self.inner.call(request))
        } else {
            tracing::warn!(
                path = request.uri().path(),
                "rejected unauthenticated gRPC call"
            );
            let status = Status::unauthenticated("missing or wrong bearer token");
            Box::pin(std::future::ready(Ok(status.into_http())))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, auth: Option<&str>) -> http::Request<()> {
        let mut builder = http::Request::builder().uri(path);
        if let Some(auth) = auth {
            builder = builder.header(http::header::AUTHORIZATION, auth);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn checks_bearer_tokens_except_for_health() {
        let auth = BearerAuthLayer::new(Some("s3cret".into())).layer(());
        let call = "/ssdit.sampler.v1.SamplerService/Generate";
        assert!(auth.allows(&request(call, Some("Bearer s3cret"))));
        assert!(!auth.allows(&request(call, Some("Bearer wrong"))));
        assert!(!auth.allows(&request(call, Some("s3cret"))));
        assert!(!auth.allows(&request(call, None)));
        assert!(auth.allows(&request("/grpc.health.v1.Health/Check", None)));
    }

    #[test]
    fn no_token_means_open() {
        let auth = BearerAuthLayer::new(None).layer(());
        assert!(auth.allows(&request("/any/Method", None)));
    }
}
