//! The loopback redirect listener of the sign-in (RFC 8252 §7.3): `127.0.0.1` at the first free port of the
//! configured list, exactly `GET /callback`.
//!
//! Only a request to `/callback` whose `state` matches the sign-in in progress is accepted; anything else (another
//! path, another method, a wrong or missing `state`, a stray connection) gets an error page and is otherwise
//! ignored, so no token exchange happens for it. The first valid callback ends the wait and the listener closes.
//! The wait has a timeout and a cancellation token. The browser's page is answered only once the caller knows the
//! outcome ([`Callback::finish`]), so a failed token exchange is not shown as a success.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use openidconnect::{AuthorizationCode, CsrfToken};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// The callback path, registered as `http://127.0.0.1:<port>/callback`.
pub const CALLBACK_PATH: &str = "/callback";
/// How long one connection may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// Why waiting for the callback failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoopbackError {
    /// Every configured port is taken.
    #[error("no free loopback port among {ports:?}")]
    NoFreePort {
        /// The ports tried.
        ports: Vec<u16>,
        /// The last error.
        #[source]
        source: std::io::Error,
    },
    /// Accepting a connection failed.
    #[error("the loopback listener failed")]
    Accept(#[source] std::io::Error),
    /// No valid callback arrived in time.
    #[error("no sign-in response arrived within {}s", after.as_secs())]
    TimedOut {
        /// The timeout.
        after: Duration,
    },
    /// The sign-in was cancelled.
    #[error("the sign-in was cancelled")]
    Cancelled,
    /// The provider answered with an error (for example the user declined).
    #[error("the identity provider refused the sign-in: {error}")]
    Denied {
        /// The OAuth `error` code.
        error: String,
        /// The provider's `error_description`, if any.
        description: Option<String>,
    },
}

/// A bound loopback listener.
#[derive(Debug)]
pub struct LoopbackListener {
    listener: TcpListener,
    port: u16,
}

impl LoopbackListener {
    /// Binds `127.0.0.1` at the first port of `ports` that is free.
    ///
    /// # Errors
    /// [`LoopbackError::NoFreePort`] when none is (or the list is empty).
    pub async fn bind(ports: &[u16]) -> Result<Self, LoopbackError> {
        let mut last = std::io::Error::new(std::io::ErrorKind::InvalidInput, "no port configured");
        for &port in ports {
            match TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await {
                Ok(listener) => {
                    let port = listener.local_addr().map_err(LoopbackError::Accept)?.port();
                    return Ok(Self { listener, port });
                }
                Err(error) => {
                    tracing::debug!(port, %error, "loopback port not available");
                    last = error;
                }
            }
        }
        Err(LoopbackError::NoFreePort {
            ports: ports.to_vec(),
            source: last,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.port)
    }

    /// Waits for the one valid callback carrying `expected_state`, at most `timeout`, or until `cancel`.
    /// Consumes the listener: it is closed when this returns.
    ///
    /// # Errors
    /// [`LoopbackError::TimedOut`], [`LoopbackError::Cancelled`], [`LoopbackError::Denied`] or
    /// [`LoopbackError::Accept`].
    pub async fn wait_for_callback(
        self,
        expected_state: &CsrfToken,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Callback, LoopbackError> {
        let (found_tx, mut found_rx) = mpsc::channel::<Found>(1);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(LoopbackError::Cancelled),
                () = &mut deadline => return Err(LoopbackError::TimedOut { after: timeout }),
                Some(found) = found_rx.recv() => {
                    return match found {
                        Found::Code { code, page } => Ok(Callback { code, page: Some(page) }),
                        Found::Denied { error, description } => Err(LoopbackError::Denied { error, description }),
                    };
                }
                accepted = self.listener.accept() => {
                    let (stream, _) = accepted.map_err(LoopbackError::Accept)?;
                    let state = expected_state.secret().clone();
                    let found_tx = found_tx.clone();
                    tokio::spawn(async move {
                        if let Err(error) = serve(stream, &state, found_tx).await {
                            tracing::debug!(%error, "loopback connection ended");
                        }
                    });
                }
            }
        }
    }
}

/// What a connection task found.
enum Found {
    Code {
        code: AuthorizationCode,
        page: oneshot::Sender<Page>,
    },
    Denied {
        error: String,
        description: Option<String>,
    },
}

/// The page shown in the browser after the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// Signed in: "you can close this tab".
    Success,
    /// Something failed after the callback; the text is shown (it must hold no secret).
    Failure(String),
}

/// A valid callback: the authorization code, and the browser's connection waiting for its page.
pub struct Callback {
    /// The authorization code (redacted in `Debug`).
    pub code: AuthorizationCode,
    page: Option<oneshot::Sender<Page>>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl Callback {
    /// Answers the browser with `page`.
    pub fn finish(mut self, page: Page) {
        if let Some(sender) = self.page.take() {
            let _ = sender.send(page);
        }
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        if let Some(sender) = self.page.take() {
            let _ = sender.send(Page::Failure("The sign-in did not complete.".to_owned()));
        }
    }
}

async fn serve(
    mut stream: TcpStream,
    expected_state: &str,
    found: mpsc::Sender<Found>,
) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Ok(()),
    };
    let Some(head) = head else {
        return respond(
            &mut stream,
            400,
            "Bad request",
            "This is not a sign-in response.",
        )
        .await;
    };
    let mut parts = head.lines().next().unwrap_or_default().split(' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != CALLBACK_PATH {
        return respond(
            &mut stream,
            404,
            "Not found",
            "This is not the sign-in callback.",
        )
        .await;
    }
    if method != "GET" {
        return respond(
            &mut stream,
            405,
            "Method not allowed",
            "This is not a sign-in response.",
        )
        .await;
    }
    let mut params = std::collections::HashMap::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if params
            .insert(key.into_owned(), value.into_owned())
            .is_some()
        {
            return respond(
                &mut stream,
                400,
                "Bad request",
                "This sign-in response is malformed.",
            )
            .await;
        }
    }
    let state_ok = params
        .get("state")
        .is_some_and(|state| constant_time_eq(state.as_bytes(), expected_state.as_bytes()));
    if !state_ok {
        return respond(
            &mut stream,
            400,
            "Sign-in not recognized",
            "This sign-in response does not belong to the sign-in in progress. Start the sign-in again from the app.",
        )
        .await;
    }
    if let Some(error) = params.remove("error") {
        let description = params.remove("error_description");
        let text = format!(
            "The sign-in was refused ({}). Return to the app to try again.",
            description.as_deref().unwrap_or(&error)
        );
        let _ = found.send(Found::Denied { error, description }).await;
        return respond(&mut stream, 200, "Sign-in failed", &text).await;
    }
    let Some(code) = params.remove("code").filter(|code| !code.is_empty()) else {
        return respond(
            &mut stream,
            400,
            "Bad request",
            "The sign-in response has no code.",
        )
        .await;
    };
    let (page_tx, page_rx) = oneshot::channel();
    if found
        .send(Found::Code {
            code: AuthorizationCode::new(code),
            page: page_tx,
        })
        .await
        .is_err()
    {
        return respond(
            &mut stream,
            409,
            "Already done",
            "This sign-in has already finished.",
        )
        .await;
    }
    match page_rx.await {
        Ok(Page::Success) => {
            respond(
                &mut stream,
                200,
                "Signed in",
                "You are signed in to Passkey Companion. You can close this tab.",
            )
            .await
        }
        Ok(Page::Failure(text)) => respond(&mut stream, 200, "Sign-in failed", &text).await,
        Err(_) => {
            respond(
                &mut stream,
                200,
                "Sign-in failed",
                "The sign-in did not complete.",
            )
            .await
        }
    }
}

/// Reads up to the end of the request head; `None` when it is not HTTP-like or too long.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0_u8; 1024];
    loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            buffer.truncate(end);
            return Ok(String::from_utf8(buffer).ok());
        }
        if buffer.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    title: &str,
    text: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Conflict",
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} - Passkey Companion</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}</style>\
         </head><body><h1>{title}</h1><p>{text}</p></body></html>",
        title = escape(title),
        text = escape(text),
    );
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_and_escaping() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }

    #[test]
    fn callback_debug_hides_the_code() {
        let callback = Callback {
            code: AuthorizationCode::new("code-secret-123".into()),
            page: None,
        };
        assert!(!format!("{callback:?}").contains("code-secret-123"));
    }
}
