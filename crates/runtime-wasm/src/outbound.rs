//! Sends a guest's allowed outbound HTTP request: resolves the host here, refuses a name
//! that resolves to a private address (`gureum_manifest::destination`, audit finding
//! 15), and connects to exactly the addresses it checked, so a second lookup cannot
//! answer differently (DNS rebinding). Otherwise the same as wasmtime-wasi-http 48's
//! `default_send_request` (Apache-2.0), from which the connection and response-timeout
//! code is adapted: that function resolves the name itself and takes no stream.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use gureum_manifest::PrivateDestinations;
use http::uri::Scheme;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use crate::logs::LogCapture;

/// wasi-http's default when the guest sets no timeout of its own.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The future `send_request` hands back to wasmtime-wasi-http: the response and the
/// connection's completion.
pub(crate) type Sent = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
)>;

/// Whether the addresses a host resolves to are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Private addresses are refused (an entry allowed the host by name or wildcard).
    Public,
    /// Any address goes (an entry names the address or `localhost`, or the operator
    /// allowed private destinations).
    None,
}

impl Check {
    pub(crate) fn for_request(
        allowance: gureum_manifest::Allowance,
        private: PrivateDestinations,
    ) -> Self {
        match (allowance, private) {
            (gureum_manifest::Allowance::ByName, PrivateDestinations::Deny) => Check::Public,
            _ => Check::None,
        }
    }
}

/// Sends `request` (its URI absolute: scheme and authority set by wasmtime-wasi-http).
pub(crate) async fn send(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    check: Check,
    capture: LogCapture,
) -> Sent {
    let uri = request.uri().clone();
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
    let use_tls = uri.scheme() == Some(&Scheme::HTTPS);
    let port = uri.port_u16().unwrap_or(if use_tls { 443 } else { 80 });
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let options = options.unwrap_or_default();
    let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let first_byte_timeout = options.first_byte_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let between_bytes_timeout = options.between_bytes_timeout.unwrap_or(DEFAULT_TIMEOUT);

    let addresses: Vec<SocketAddr> =
        match tokio::time::timeout(connect_timeout, tokio::net::lookup_host((bare_host, port)))
            .await
        {
            Ok(Ok(addresses)) => addresses.collect(),
            Ok(Err(error)) => return Err(Error::Connect(error)),
            Err(_) => return Err(Error::DnsTimeout),
        };
    if check == Check::Public
        && let Err(prohibited) =
            gureum_manifest::check_resolved(&addresses, PrivateDestinations::Deny)
    {
        let origin = format!("{}://{host}:{port}", if use_tls { "https" } else { "http" });
        tracing::debug!(%origin, %prohibited, "outbound request to a private address refused");
        capture.platform_line(format!(
            "outbound request to {origin} refused: {bare_host} resolves to {}, {}; \
             functions reach private addresses only through an allowed_outbound_hosts entry \
             naming the address itself (e.g. \"{}://{}:{port}\") or localhost, or when the \
             server runs with --outbound-private allow",
            prohibited.address,
            prohibited.kind,
            if use_tls { "https" } else { "http" },
            match prohibited.address {
                std::net::IpAddr::V4(v4) => v4.to_string(),
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            },
        ));
        drain(request.into_body()).await;
        return Err(Error::DestinationIpProhibited);
    }

    // Exactly the addresses checked above, in resolver order (as `connect` would try).
    let stream =
        match tokio::time::timeout(connect_timeout, TcpStream::connect(&addresses[..])).await {
            Ok(stream) => stream.map_err(Error::Connect)?,
            Err(_) => return Err(Error::ConnectionTimeout),
        };
    let stream: Box<dyn Stream> = if use_tls {
        let name = server_name(bare_host)?;
        let connector = tokio_rustls::TlsConnector::from(tls_config());
        Box::new(connector.connect(name, stream).await.map_err(Error::Tls)?)
    } else {
        Box::new(stream)
    };
    let (mut sender, connection) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new()
            .handshake(wasmtime_wasi_http::io::TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // The request line carries only the path: scheme and authority are for proxies.
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(uri.path_and_query().map_or("/", |path| path.as_str()))
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;

    let send = async move {
        let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??;
        // Tokio panics on a zero interval; 1 ns is as good as zero.
        let between_bytes_timeout = between_bytes_timeout.max(Duration::from_nanos(1));
        let mut timeout = tokio::time::interval(between_bytes_timeout);
        timeout.reset();
        Ok::<_, Error>(response.map(|incoming| IncomingResponseBody { incoming, timeout }))
    };
    let mut send = std::pin::pin!(send);
    let mut connection = Some(connection);
    // Waits for the response while driving the connection's I/O.
    let response = std::future::poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result),
        Poll::Pending => {
            let Some(driving) = connection.as_mut() else {
                return Poll::Pending;
            };
            let result = ready!(Pin::new(driving).poll(cx));
            connection = None;
            match result {
                Ok(()) => send.as_mut().poll(cx),
                Err(error) => Poll::Ready(Err(Error::from(error))),
            }
        }
    })
    .await?;
    Ok((
        response.map(BodyExt::boxed_unsync),
        Box::new(async move {
            let Some(connection) = connection else {
                return Ok(());
            };
            match connection.await {
                Err(error) if error.is_timeout() => Err(Error::HttpResponseTimeout),
                Err(error) => Err(error.into()),
                Ok(()) => Ok(()),
            }
        }),
    ))
}

/// Reads a refused request's body to its end. Guests commonly write the body before
/// awaiting the response; dropping it at once would surface there as "stream closed"
/// and hide the reason.
pub(crate) async fn drain(mut body: WasiBody) {
    while let Some(Ok(_)) = body.frame().await {}
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T> Stream for T where T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}

/// The TLS client configuration (webpki roots, as wasi-http's default), built once.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
            )
        })
        .clone()
}

/// The name the certificate must carry: the host as the guest wrote it.
fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, Error> {
    if let Ok(address) = host.parse::<std::net::IpAddr>() {
        return Ok(rustls::pki_types::ServerName::from(address));
    }
    Ok(rustls::pki_types::ServerName::try_from(host)?.to_owned())
}

/// The upstream response body with wasi-http's between-bytes timeout.
struct IncomingResponseBody {
    incoming: hyper::body::Incoming,
    timeout: tokio::time::Interval,
}

impl http_body::Body for IncomingResponseBody {
    type Data = bytes::Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(if error.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(error)
            }))),
            Poll::Ready(Some(Ok(frame))) => {
                self.timeout.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timeout.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}
