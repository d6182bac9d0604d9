//! The loopback redirect listener of the sign-in (RFC 8252 §7.3): `127.0.0.1` at the first free port of the
//! configured list, exactly `GET /callback`.
//!
//! Only a request to `/callback` whose `state` matches the sign-in in progress is accepted; anything else (another
//! path, another method, a wrong or missing `state`, a stray connection) gets an error page and is otherwise
//! ignored, so no token exchange happens for it. The first valid callback ends the wait and the listener closes.
//! The wait has a timeout and a cancellation token.
//!
//! RFC 9207 mix-up protection: a callback with the right `state` must also name the provider the sign-in was
//! sent to in its `iss` parameter ([`IssuerCheck`]). When the provider advertises
//! `authorization_response_iss_parameter_supported`, a missing `iss` is refused too; otherwise `iss` is compared
//! when present. A refused response ends the sign-in with [`LoopbackError::IssuerMismatch`], its code unused.
//!
//! The browser always gets a finished page before the caller sees the outcome: refusals and provider errors are
//! written before the wait returns, and a valid callback's page is answered by the caller once it knows the
//! outcome ([`Callback::finish`], which waits until the page is written), so a failed token exchange is not shown
//! as a success and a caller that exits right after (the CLI) does not cut the page off.

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
/// How long writing a page (and waiting for the browser to close the connection after it) may take.
const PAGE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long, after the page is written, the browser has to close its side before the connection is dropped
/// (a lingering close: closing with unread input would reset the connection and could lose the page).
const LINGER: Duration = Duration::from_secs(1);
/// Longest `iss` value repeated in an error message.
const MAX_SHOWN_ISSUER: usize = 200;

/// What the callback's RFC 9207 `iss` parameter must be: the provider's issuer, exactly (simple string
/// comparison, RFC 9207 §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerCheck {
    /// The provider advertises `authorization_response_iss_parameter_supported`: `iss` must be present and equal.
    Required(String),
    /// The provider does not advertise it (Auth0): `iss` must be equal when present.
    IfPresent(String),
}

impl IssuerCheck {
    /// The expected issuer.
    pub fn expected(&self) -> &str {
        match self {
            Self::Required(issuer) | Self::IfPresent(issuer) => issuer,
        }
    }

    /// Whether a callback's `iss` (if any) passes.
    pub fn accepts(&self, found: Option<&str>) -> bool {
        match (self, found) {
            (Self::Required(_), None) => false,
            (Self::IfPresent(_), None) => true,
            (_, Some(found)) => constant_time_eq(found.as_bytes(), self.expected().as_bytes()),
        }
    }
}

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
    /// The response does not name the expected issuer in `iss` (RFC 9207): it may come from another provider
    /// (a mix-up attack). Its code was not used.
    #[error("{}", issuer_mismatch_message(expected, found.as_deref()))]
    IssuerMismatch {
        /// The issuer the sign-in was sent to.
        expected: String,
        /// The `iss` the response named (shortened), or `None` when it named none.
        found: Option<String>,
    },
    /// The provider answered with an error (for example the user declined).
    #[error("the identity provider refused the sign-in: {error}")]
    Denied {
        /// The OAuth `error` code.
        error: String,
        /// The provider's `error_description`, if any.
        description: Option<String>,
    },
}

fn issuer_mismatch_message(expected: &str, found: Option<&str>) -> String {
    match found {
        None => format!(
            "the sign-in response has no `iss` although {expected} promises one (RFC 9207): refused"
        ),
        Some(found) => format!(
            "the sign-in response names issuer {found:?}, not {expected} (RFC 9207): refused"
        ),
    }
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

    /// Waits for the one valid callback carrying `expected_state` and passing `issuer`, at most `timeout`, or
    /// until `cancel`. Consumes the listener: it is closed when this returns. When this returns an error for a
    /// response that arrived (refused issuer, provider error), the browser's page has been written already.
    ///
    /// # Errors
    /// [`LoopbackError::TimedOut`], [`LoopbackError::Cancelled`], [`LoopbackError::IssuerMismatch`],
    /// [`LoopbackError::Denied`] or [`LoopbackError::Accept`].
    pub async fn wait_for_callback(
        self,
        expected_state: &CsrfToken,
        issuer: &IssuerCheck,
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
                        Found::Refused(error) => Err(error),
                    };
                }
                accepted = self.listener.accept() => {
                    let (stream, _) = accepted.map_err(LoopbackError::Accept)?;
                    let state = expected_state.secret().clone();
                    let issuer = issuer.clone();
                    let found_tx = found_tx.clone();
                    tokio::spawn(async move {
                        if let Err(error) = serve(stream, &state, &issuer, found_tx).await {
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
    /// A valid callback; its connection waits for the page (and acknowledges it once written).
    Code {
        code: AuthorizationCode,
        page: oneshot::Sender<(Page, oneshot::Sender<()>)>,
    },
    /// A response for this sign-in that ends it with an error; its page is written already.
    Refused(LoopbackError),
}

/// The page shown in the browser after the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// Signed in: "you can close this tab".
    Success,
    /// Something failed after the callback; the text is shown (it must hold no secret). See [`Page::failed`].
    Failure(String),
}

/// A valid callback: the authorization code, and the browser's connection waiting for its page.
pub struct Callback {
    /// The authorization code (redacted in `Debug`).
    pub code: AuthorizationCode,
    page: Option<oneshot::Sender<(Page, oneshot::Sender<()>)>>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl Callback {
    /// Answers the browser with `page` and waits until it is written and the connection closed (at most a few
    /// seconds), so the caller may exit right after. Returns whether the page was delivered (`false` when the
    /// browser went away or the wait timed out; the sign-in's outcome does not depend on it).
    pub async fn finish(mut self, page: Page) -> bool {
        let Some(sender) = self.page.take() else {
            return false;
        };
        let (done_tx, done_rx) = oneshot::channel();
        if sender.send((page, done_tx)).is_err() {
            return false;
        }
        matches!(
            tokio::time::timeout(PAGE_TIMEOUT + LINGER, done_rx).await,
            Ok(Ok(()))
        )
    }
}

impl Drop for Callback {
    /// Not finished (the caller failed or was cancelled): the browser is told, without waiting.
    fn drop(&mut self) {
        if let Some(sender) = self.page.take() {
            let (done, _) = oneshot::channel();
            let _ = sender.send((Page::failed("the sign-in did not complete"), done));
        }
    }
}

impl Page {
    /// A failure page for `reason`, a short lower-case phrase that holds no secret.
    pub fn failed(reason: &str) -> Self {
        Self::Failure(format!(
            "Sign-in failed: {reason}. Return to the app for details. You can close this tab."
        ))
    }
}

async fn serve(
    mut stream: TcpStream,
    expected_state: &str,
    issuer: &IssuerCheck,
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
    // RFC 9207 §2.4: checked before anything else of the response is used, error responses included.
    let iss = params.remove("iss");
    if !issuer.accepts(iss.as_deref()) {
        let written = respond(
            &mut stream,
            400,
            "Sign-in refused",
            "Sign-in failed: this response did not come from the identity provider the app sent you to, so it \
             was not used. Start the sign-in again from the app. You can close this tab.",
        )
        .await;
        let error = LoopbackError::IssuerMismatch {
            expected: issuer.expected().to_owned(),
            found: iss.map(|found| found.chars().take(MAX_SHOWN_ISSUER).collect()),
        };
        let _ = found.send(Found::Refused(error)).await;
        return written;
    }
    if let Some(error) = params.remove("error") {
        let description = params.remove("error_description");
        let text = format!(
            "The sign-in was refused ({}). Return to the app to try again. You can close this tab.",
            description.as_deref().unwrap_or(&error)
        );
        // The page first: the caller may exit as soon as it hears of the refusal.
        let written = respond(&mut stream, 200, "Sign-in failed", &text).await;
        let _ = found
            .send(Found::Refused(LoopbackError::Denied { error, description }))
            .await;
        return written;
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
    let (page, done) = match page_rx.await {
        Ok((page, done)) => (page, Some(done)),
        Err(_) => (Page::failed("the sign-in did not complete"), None),
    };
    let written = match page {
        Page::Success => {
            respond(
                &mut stream,
                200,
                "Signed in",
                "You are signed in to Passkey Companion. You can close this tab.",
            )
            .await
        }
        Page::Failure(text) => respond(&mut stream, 200, "Sign-in failed", &text).await,
    };
    if written.is_ok()
        && let Some(done) = done
    {
        let _ = done.send(());
    }
    written
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
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    };
    tokio::time::timeout(PAGE_TIMEOUT, write)
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "writing the page timed out")
        })??;
    // A lingering close: wait (briefly) for the browser to close its side, so that closing ours with input
    // still unread cannot reset the connection before the browser has read the page.
    let mut sink = [0_u8; 512];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(stream.read(&mut sink).await, Ok(read) if read > 0) {}
    })
    .await;
    Ok(())
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
