//! The HTTP/1.1 server loop: accepts connections and serves the router on each with a hyper connection configured
//! for many mostly idle keep-alive clients (bounded header and buffer sizes, a header read timeout), and drains
//! in-flight requests on shutdown.
//!
//! This replaces `axum::serve`, which fixes hyper's defaults (buffers up to ~400 KB per connection, no header
//! timeout) and rebuilds the router's route table for every connection (about 3.5 KB each), and which serves
//! HTTP/2 as well: the proxy speaks HTTP/1.1 only, behind TLS termination.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::BytesMut;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

/// Largest accepted request head (request line and headers); larger ones get 431. Access tokens are refused above
/// 8 KiB by the verifier, which answers 401 as the API promises, so the head limit sits well above that.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Largest read buffer of one connection (hyper's default is about 400 KB, which 1,000 slow clients could each
/// fill).
pub const MAX_BUFFER_BYTES: usize = 64 * 1024;

/// Time a client has to send a complete request head once it starts one.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause after an accept error that is not about one connection (e.g. too many open files), so the loop does not
/// spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The per-connection hyper settings.
fn http1() -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_BUFFER_BYTES)
        .keep_alive(true);
    builder
}

/// Whether an accept error concerns only the connection being accepted (try the next one at once).
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets every connection finish its
/// in-flight request, and returns when all are closed.
///
/// # Errors
/// Never at present; the `Result` leaves room for fatal listener errors.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let builder = http1();
    // Each connection task holds a receiver of `stop` (to learn about the shutdown) and of `open` (so the loop can
    // wait until all are gone).
    let (stop_tx, stop_rx) = watch::channel(false);
    let (open_tx, open_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    tracing::warn!(%error, "accept failed; pausing");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Responses are written in one go, so Nagle's algorithm would only add delay.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(app.clone().map_request(detach));
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop_rx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let stopping = async move {
                // An error means the loop is gone, which only happens after it asked to stop.
                let _ = stop.wait_for(|stopping| *stopping).await;
            };
            tokio::select! {
                result = connection.as_mut() => log_end(result),
                () = stopping => {
                    connection.as_mut().graceful_shutdown();
                    log_end(connection.await);
                }
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// Copies the request head out of hyper's read buffer before the request goes anywhere.
///
/// hyper hands out the URI and header values as slices of its per-connection read buffer, so while a request is
/// being served the whole buffer (8 KiB or more) stays allocated and hyper, reading ahead on the same connection,
/// allocates a second one. With 1,000 busy connections that doubles the largest part of the proxy's memory.
/// Copying the head (about a kilobyte with an access token) lets hyper reuse its buffer in place. The values and
/// the path are copied into one allocation that they then share, rather than one allocation each.
fn detach(request: hyper::Request<Incoming>) -> axum::extract::Request {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .filter(|_| parts.uri.scheme().is_none())
        .map(|path_and_query| path_and_query.as_str());
    let size = parts.headers.values().map(|v| v.len()).sum::<usize>() + path.map_or(0, str::len);
    let mut copy = BytesMut::with_capacity(size);
    for value in parts.headers.values() {
        copy.extend_from_slice(value.as_bytes());
    }
    if let Some(path) = path {
        copy.extend_from_slice(path.as_bytes());
    }
    let copy = copy.freeze();
    let mut headers = axum::http::HeaderMap::with_capacity(parts.headers.len());
    let mut offset = 0;
    let mut last_name = None;
    for (name, value) in parts.headers.drain() {
        let end = offset + value.len();
        let slice = copy.slice(offset..end);
        offset = end;
        // `drain` yields a name only for the first value of each header.
        let name = name.or_else(|| last_name.clone());
        let Some(name) = name else { continue };
        let copied = axum::http::HeaderValue::from_maybe_shared(slice).map(|mut copied| {
            copied.set_sensitive(value.is_sensitive());
            copied
        });
        if let Ok(copied) = copied {
            headers.append(name.clone(), copied);
        }
        last_name = Some(name);
    }
    if path.is_some()
        && let Ok(uri) = axum::http::Uri::from_maybe_shared(copy.slice(offset..))
    {
        parts.uri = uri;
    }
    parts.headers = headers;
    axum::extract::Request::from_parts(parts, Body::new(body))
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}
