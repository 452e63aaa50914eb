//! A real server on loopback: health, reflection, bearer auth, shutdown.

use std::time::Duration;

use ssdit_server::grpc::{GrpcOptions, serve};
use tokio::net::TcpListener;
use tonic::Code;
use tonic::service::Routes;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

const SERVICE: &str = "ssdit.test.v1.Test";

async fn start(
    token: Option<&str>,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = GrpcOptions {
        auth_token: token.map(str::to_string),
        tls: None,
    };
    let server = tokio::spawn(async move {
        serve(
            Routes::default(),
            &[SERVICE],
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            listener,
            options,
            async {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
    });
    (url, stop, server)
}

async fn health(url: &str, service: &str) -> Result<i32, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let reply = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?;
    Ok(reply.into_inner().status)
}

#[tokio::test]
async fn reports_health_and_stops_on_shutdown() {
    let (url, stop, server) = start(None).await;
    assert_eq!(
        health(&url, SERVICE).await.unwrap(),
        ServingStatus::Serving as i32
    );
    let unknown = health(&url, "nope").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn token_guards_calls_but_not_health() {
    let (url, stop, server) = start(Some("s3cret")).await;
    assert_eq!(
        health(&url, SERVICE).await.unwrap(),
        ServingStatus::Serving as i32
    );

    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut unauthenticated = tonic::client::Grpc::new(channel.clone());
    unauthenticated.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/ssdit.test.v1.Test/Method");
    let err = unauthenticated
        .unary::<(), (), _>(tonic::Request::new(()), path.clone(), EmptyCodec)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");

    let mut request = tonic::Request::new(());
    request
        .metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    let mut authenticated = tonic::client::Grpc::new(channel);
    authenticated.ready().await.unwrap();
    let err = authenticated
        .unary::<(), (), _>(request, path, EmptyCodec)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unimplemented,
        "authenticated calls reach the router: {err}"
    );

    stop.send(()).unwrap();
    server.await.unwrap();
}

/// A codec for `()` messages: enough to reach the server's routing.
#[derive(Default, Clone)]
struct EmptyCodec;

impl tonic::codec::Codec for EmptyCodec {
    type Encode = ();
    type Decode = ();
    type Encoder = EmptyCodec;
    type Decoder = EmptyCodec;

    fn encoder(&mut self) -> Self::Encoder {
        EmptyCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        EmptyCodec
    }
}

impl tonic::codec::Encoder for EmptyCodec {
    type Item = ();
    type Error = tonic::Status;

    fn encode(&mut self, _: (), _: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl tonic::codec::Decoder for EmptyCodec {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, _: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<()>, Self::Error> {
        Ok(Some(()))
    }
}
