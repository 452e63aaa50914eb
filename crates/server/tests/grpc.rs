//! A real server on loopback: health, reflection, bearer auth, TLS, shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ssdit_server::grpc::{GrpcOptions, serve};
use tokio::net::TcpListener;
use tonic::Code;
use tonic::service::Routes;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

const SERVICE: &str = "ssdit.test.v1.Test";
/// A method of [`SERVICE`] no route serves: guarded by auth, then UNIMPLEMENTED.
const METHOD: &str = "/ssdit.test.v1.Test/Method";
/// How long a call may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(10);

/// A server on a free loopback port, stopped by sending on the returned sender.
struct Running {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<ssdit_server::Result<()>>,
}

impl Running {
    async fn start(options: GrpcOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            Routes::default(),
            &[SERVICE],
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            listener,
            options,
            async {
                let _ = stopped.await;
            },
        ));
        Self { addr, stop, server }
    }

    /// A plain-text (h2c) channel to the server.
    async fn plain(&self) -> Result<Channel, tonic::transport::Error> {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
    }

    async fn shut_down(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(PATIENCE, self.server)
            .await
            .expect("the server stops on shutdown")
            .unwrap()
            .unwrap();
    }
}

async fn health(channel: Channel, service: &str) -> Result<i32, tonic::Status> {
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?;
    Ok(reply.into_inner().status)
}

/// Calls [`METHOD`], with `token` as the bearer token when given.
async fn call_method(channel: Channel, token: Option<&str>) -> tonic::Status {
    let mut request = tonic::Request::new(());
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    client
        .unary::<(), (), _>(
            request,
            http::uri::PathAndQuery::from_static(METHOD),
            EmptyCodec,
        )
        .await
        .unwrap_err()
}

#[tokio::test]
async fn reports_health_and_stops_on_shutdown() {
    let server = Running::start(GrpcOptions::default()).await;
    let channel = server.plain().await.unwrap();
    assert_eq!(
        health(channel.clone(), SERVICE).await.unwrap(),
        ServingStatus::Serving as i32
    );
    let unknown = health(channel, "nope").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    server.shut_down().await;
}

#[tokio::test]
async fn token_guards_calls_but_not_health() {
    let server = Running::start(GrpcOptions {
        auth_token: Some("s3cret".into()),
        tls: None,
    })
    .await;
    let channel = server.plain().await.unwrap();
    assert_eq!(
        health(channel.clone(), SERVICE).await.unwrap(),
        ServingStatus::Serving as i32
    );
    let err = call_method(channel.clone(), None).await;
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");
    let err = call_method(channel, Some("s3cret")).await;
    assert_eq!(
        err.code(),
        Code::Unimplemented,
        "authenticated calls reach the router: {err}"
    );
    server.shut_down().await;
}

/// A self-signed certificate for `localhost` and its key, as PEM files in a
/// temporary directory.
struct SelfSigned {
    dir: tempfile::TempDir,
    cert_pem: String,
}

impl SelfSigned {
    fn new() -> Self {
        let certified = rcgen::generate_simple_self_signed(["localhost".to_string()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert_pem = certified.cert.pem();
        std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
        std::fs::write(
            dir.path().join("key.pem"),
            certified.signing_key.serialize_pem(),
        )
        .unwrap();
        Self { dir, cert_pem }
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    fn options(&self, auth_token: Option<&str>) -> GrpcOptions {
        GrpcOptions {
            auth_token: auth_token.map(str::to_string),
            tls: Some((self.cert(), self.key())),
        }
    }

    /// A TLS channel to `addr` that trusts only this certificate.
    async fn channel(&self, addr: SocketAddr) -> Channel {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.cert_pem))
            .domain_name("localhost");
        let endpoint = Endpoint::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(tls)
            .unwrap();
        tokio::time::timeout(PATIENCE, endpoint.connect())
            .await
            .expect("the TLS handshake completes")
            .unwrap()
    }
}

#[tokio::test]
async fn serves_health_over_tls_and_refuses_plain_text() {
    let tls = SelfSigned::new();
    let server = Running::start(tls.options(None)).await;
    let channel = tls.channel(server.addr).await;
    assert_eq!(
        health(channel, SERVICE).await.unwrap(),
        ServingStatus::Serving as i32
    );
    let plain = tokio::time::timeout(PATIENCE, async {
        let channel = server
            .plain()
            .await
            .map_err(|e| tonic::Status::from_error(Box::new(e)))?;
        health(channel, SERVICE).await
    })
    .await
    .expect("a plain-text client is refused, not left waiting");
    assert!(plain.is_err(), "a plain-text client is served: {plain:?}");
    server.shut_down().await;
}

#[tokio::test]
async fn token_guards_calls_over_tls() {
    let tls = SelfSigned::new();
    let server = Running::start(tls.options(Some("s3cret"))).await;
    let channel = tls.channel(server.addr).await;
    let err = call_method(channel.clone(), None).await;
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");
    let err = call_method(channel, Some("s3cret")).await;
    assert_eq!(err.code(), Code::Unimplemented, "{err}");
    server.shut_down().await;
}

/// The error `serve` returns at once for `options`.
async fn start_error(options: GrpcOptions) -> String {
    let server = Running::start(options).await;
    tokio::time::timeout(PATIENCE, server.server)
        .await
        .expect("a bad TLS configuration fails at start")
        .unwrap()
        .unwrap_err()
        .to_string()
}

#[tokio::test]
async fn unusable_tls_files_are_errors_naming_them() {
    let tls = SelfSigned::new();
    let missing = tls.dir.path().join("missing.pem");
    let err = start_error(GrpcOptions {
        auth_token: None,
        tls: Some((missing.clone(), tls.key())),
    })
    .await;
    assert!(
        err.contains("certificate") && err.contains(&missing.display().to_string()),
        "{err}"
    );
    let err = start_error(GrpcOptions {
        auth_token: None,
        tls: Some((tls.cert(), missing.clone())),
    })
    .await;
    assert!(
        err.contains("private key") && err.contains(&missing.display().to_string()),
        "{err}"
    );
    let garbage = tls.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let err = start_error(GrpcOptions {
        auth_token: None,
        tls: Some((garbage.clone(), tls.key())),
    })
    .await;
    assert!(err.contains(&garbage.display().to_string()), "{err}");
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
