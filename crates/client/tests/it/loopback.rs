//! Loopback listener hardening: only `GET /callback` with the right `state` (and, RFC 9207, the right `iss`) is
//! accepted, once; the browser's page is written before the caller hears the outcome.

use std::time::Duration;

use companion_client::loopback::{
    CALLBACK_PATH, Callback, IssuerCheck, LoopbackError, LoopbackListener, Page,
};
use openidconnect::CsrfToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Sends raw bytes to the listener and returns the whole response.
async fn raw(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

async fn get(port: u16, target: &str) -> String {
    raw(
        port,
        &format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
    )
    .await
}

fn status(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or_default()
}

/// The issuer the sign-ins of these tests were sent to.
const ISSUER: &str = "https://tenant.example/";

fn if_present() -> IssuerCheck {
    IssuerCheck::IfPresent(ISSUER.to_owned())
}

/// Asserts that `response` is a whole HTTP response: a body exactly as long as its `Content-Length`, a finished
/// HTML document.
fn assert_complete(response: &str) {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response head: {response:?}"));
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .unwrap_or_else(|| panic!("no Content-Length: {head}"))
        .parse()
        .expect("a numeric Content-Length");
    assert_eq!(body.len(), length, "the whole body arrived: {response}");
    assert!(body.ends_with("</html>"), "a finished page: {body}");
}

#[tokio::test]
async fn only_the_right_state_on_the_callback_path_is_accepted() {
    let listener = LoopbackListener::bind(&[0]).await.expect("bind");
    let port = listener.port();
    assert_eq!(
        listener.redirect_uri(),
        format!("http://127.0.0.1:{port}/callback")
    );
    let state = CsrfToken::new("expected-state".into());
    let cancel = CancellationToken::new();
    let wait = tokio::spawn(async move {
        listener
            .wait_for_callback(&state, &if_present(), Duration::from_secs(30), &cancel)
            .await
    });

    // An idle connection that never sends anything must not block the others.
    let _idle = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("idle connect");

    let wrong_state = get(port, "/callback?code=c1&state=other-state").await;
    assert_eq!(status(&wrong_state), "400", "{wrong_state}");
    assert!(wrong_state.contains("does not belong"), "{wrong_state}");
    let no_state = get(port, "/callback?code=c1").await;
    assert_eq!(status(&no_state), "400", "{no_state}");
    let wrong_path = get(port, "/favicon.ico").await;
    assert_eq!(status(&wrong_path), "404", "{wrong_path}");
    let prefix_path = get(port, "/callbackx?code=c1&state=expected-state").await;
    assert_eq!(status(&prefix_path), "404", "{prefix_path}");
    let post = raw(
        port,
        &format!("POST {CALLBACK_PATH}?code=c1&state=expected-state HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
    )
    .await;
    assert_eq!(status(&post), "405", "{post}");
    let duplicate = get(
        port,
        "/callback?code=c1&state=expected-state&state=expected-state",
    )
    .await;
    assert_eq!(status(&duplicate), "400", "{duplicate}");
    let garbage = raw(port, "\u{1}\u{2}garbage\r\n\r\n").await;
    assert_eq!(status(&garbage), "404", "{garbage}");
    assert!(!wait.is_finished(), "none of those ends the wait");

    let valid = tokio::spawn(get(port, "/callback?code=the-code&state=expected-state"));
    let callback = wait.await.expect("join").expect("a valid callback");
    assert_eq!(callback.code.secret(), "the-code");
    assert!(
        callback.finish(Page::Success).await,
        "the page is delivered by the time finish returns"
    );
    let page = valid.await.expect("join");
    assert_eq!(status(&page), "200", "{page}");
    assert!(
        page.contains("You are signed in") && page.contains("You can close this tab"),
        "{page}"
    );
    assert_complete(&page);
    assert!(page.contains("Cache-Control: no-store"), "{page}");

    let after = TcpStream::connect(("127.0.0.1", port)).await;
    assert!(
        after.is_err(),
        "the listener is closed after one valid callback"
    );
}

#[tokio::test]
async fn a_failed_exchange_is_not_shown_as_success() {
    let listener = LoopbackListener::bind(&[0]).await.expect("bind");
    let port = listener.port();
    let state = CsrfToken::new("s".into());
    let cancel = CancellationToken::new();
    let wait = tokio::spawn(async move {
        listener
            .wait_for_callback(&state, &if_present(), Duration::from_secs(30), &cancel)
            .await
    });
    let browser = tokio::spawn(get(port, "/callback?code=x&state=s"));
    let callback = wait.await.expect("join").expect("callback");
    drop(callback);
    let page = browser.await.expect("join");
    assert!(
        page.contains("Sign-in failed: the sign-in did not complete")
            && !page.contains("You are signed in"),
        "{page}"
    );
    assert_complete(&page);
}

#[tokio::test]
async fn a_provider_error_with_the_right_state_ends_the_wait() {
    let listener = LoopbackListener::bind(&[0]).await.expect("bind");
    let port = listener.port();
    let state = CsrfToken::new("s".into());
    let cancel = CancellationToken::new();
    let wait = tokio::spawn(async move {
        listener
            .wait_for_callback(&state, &if_present(), Duration::from_secs(30), &cancel)
            .await
    });
    let forged = get(port, "/callback?error=access_denied&state=forged").await;
    assert_eq!(
        status(&forged),
        "400",
        "an error with a wrong state is ignored: {forged}"
    );
    let page = get(
        port,
        "/callback?error=access_denied&error_description=User%20said%20no&state=s",
    )
    .await;
    assert!(page.contains("User said no"), "{page}");
    assert_complete(&page);
    let result = wait.await.expect("join");
    assert!(
        matches!(&result, Err(LoopbackError::Denied { error, .. }) if error == "access_denied"),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_wait_times_out_and_can_be_cancelled() {
    let state = CsrfToken::new("s".into());
    let listener = LoopbackListener::bind(&[0]).await.expect("bind");
    let result = listener
        .wait_for_callback(
            &state,
            &if_present(),
            Duration::from_millis(200),
            &CancellationToken::new(),
        )
        .await;
    assert!(
        matches!(result, Err(LoopbackError::TimedOut { .. })),
        "{result:?}"
    );

    let listener = LoopbackListener::bind(&[0]).await.expect("bind");
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let wait = tokio::spawn(async move {
        listener
            .wait_for_callback(&state, &if_present(), Duration::from_secs(60), &cancel)
            .await
    });
    trigger.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("cancel ends the wait promptly")
        .expect("join");
    assert!(
        matches!(result, Err(LoopbackError::Cancelled)),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_busy_port_moves_on_to_the_next_one() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("occupy a port");
    let busy_port = busy.local_addr().expect("addr").port();
    let free_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let listener = LoopbackListener::bind(&[busy_port, free_port])
        .await
        .expect("second port is free");
    assert_eq!(listener.port(), free_port, "the first free port in order");

    let result = LoopbackListener::bind(&[busy_port]).await;
    assert!(
        matches!(&result, Err(LoopbackError::NoFreePort { ports, .. }) if ports == &[busy_port]),
        "{result:?}"
    );
    let result = LoopbackListener::bind(&[]).await;
    assert!(
        matches!(result, Err(LoopbackError::NoFreePort { .. })),
        "{result:?}"
    );
}

/// Binds a listener, sends `query` to its callback, and returns the browser's page and the wait's result (a valid
/// callback is finished as a success).
async fn answer(check: IssuerCheck, query: &str) -> (String, Result<String, LoopbackError>) {
    let listener = LoopbackListener::bind(&[0]).await.expect("bind");
    let port = listener.port();
    let state = CsrfToken::new("s".into());
    let wait = tokio::spawn(async move {
        listener
            .wait_for_callback(
                &state,
                &check,
                Duration::from_secs(30),
                &CancellationToken::new(),
            )
            .await
    });
    let target = format!("/callback?{query}");
    let browser = tokio::spawn(async move { get(port, &target).await });
    let result = match wait.await.expect("join") {
        Ok(callback) => {
            let code = callback.code.secret().clone();
            callback.finish(Page::Success).await;
            Ok(code)
        }
        Err(error) => Err(error),
    };
    (browser.await.expect("join"), result)
}

#[tokio::test]
async fn rfc9207_an_advertised_iss_must_be_present_and_exact() {
    let required = || IssuerCheck::Required(ISSUER.to_owned());
    let (page, result) = answer(required(), "code=c&state=s").await;
    assert!(
        matches!(&result, Err(LoopbackError::IssuerMismatch { expected, found: None }) if expected == ISSUER),
        "a missing iss is refused when the provider advertises it: {result:?}"
    );
    assert_eq!(status(&page), "400", "{page}");
    assert!(
        page.contains("Sign-in failed")
            && page.contains("did not come from")
            && page.contains("close this tab"),
        "{page}"
    );
    assert_complete(&page);

    let (page, result) = answer(
        required(),
        "code=c&state=s&iss=https%3A%2F%2Fattacker.example%2F",
    )
    .await;
    assert!(
        matches!(&result, Err(LoopbackError::IssuerMismatch { found: Some(found), .. }) if found == "https://attacker.example/"),
        "another issuer is refused: {result:?}"
    );
    assert_eq!(status(&page), "400", "{page}");
    let message = result.expect_err("refused").to_string();
    assert!(
        message.contains("attacker.example") && message.contains(ISSUER),
        "the error says which issuer was expected and which came: {message}"
    );

    let (_, result) = answer(
        required(),
        "code=c&state=s&iss=https%3A%2F%2Ftenant.example",
    )
    .await;
    assert!(
        matches!(result, Err(LoopbackError::IssuerMismatch { .. })),
        "simple string comparison: no trailing-slash leniency: {result:?}"
    );

    let (page, result) = answer(
        required(),
        "code=the-code&state=s&iss=https%3A%2F%2Ftenant.example%2F",
    )
    .await;
    assert_eq!(
        result.expect("the provider's own iss is accepted"),
        "the-code"
    );
    assert!(page.contains("You are signed in"), "{page}");
}

#[tokio::test]
async fn rfc9207_an_unadvertised_iss_is_still_compared_when_present() {
    let (_, result) = answer(if_present(), "code=the-code&state=s").await;
    assert_eq!(
        result.expect("no iss from a provider that never promised one (Auth0)"),
        "the-code"
    );
    let (_, result) = answer(if_present(), &format!("code=the-code&state=s&iss={ISSUER}")).await;
    assert_eq!(result.expect("the right iss"), "the-code");
    let (page, result) = answer(if_present(), "code=c&state=s&iss=https://attacker.example/").await;
    assert!(
        matches!(&result, Err(LoopbackError::IssuerMismatch { .. })),
        "a wrong iss is refused even when not advertised: {result:?}"
    );
    assert_eq!(status(&page), "400", "{page}");
    assert_complete(&page);
}

#[tokio::test]
async fn rfc9207_error_responses_are_checked_too_and_a_wrong_state_is_still_ignored() {
    // An error response naming another issuer is not the provider's refusal: its text is not shown as such.
    let (page, result) = answer(
        if_present(),
        "error=access_denied&error_description=Mixed%20up&state=s&iss=https://attacker.example/",
    )
    .await;
    assert!(
        matches!(&result, Err(LoopbackError::IssuerMismatch { .. })),
        "{result:?}"
    );
    assert!(!page.contains("Mixed up"), "{page}");
    let (_, result) = answer(
        IssuerCheck::Required(ISSUER.to_owned()),
        &format!("error=access_denied&state=s&iss={ISSUER}"),
    )
    .await;
    assert!(
        matches!(&result, Err(LoopbackError::Denied { error, .. }) if error == "access_denied"),
        "{result:?}"
    );

    // A wrong state is a stray request whatever its iss: it does not end the sign-in.
    let listener = LoopbackListener::bind(&[0]).await.expect("bind");
    let port = listener.port();
    let state = CsrfToken::new("s".into());
    let wait = tokio::spawn(async move {
        listener
            .wait_for_callback(
                &state,
                &IssuerCheck::Required(ISSUER.to_owned()),
                Duration::from_secs(30),
                &CancellationToken::new(),
            )
            .await
    });
    let stray = get(
        port,
        "/callback?code=c&state=other&iss=https://attacker.example/",
    )
    .await;
    assert!(stray.contains("does not belong"), "{stray}");
    assert!(!wait.is_finished(), "a stray request does not end the wait");
    wait.abort();
}

/// Waits for one callback and finishes it with `page` on a runtime of its own, which is dropped as soon as
/// `finish` returns, as when the CLI exits right after a sign-in; `port` receives the bound port.
fn finish_then_exit(
    page: Page,
    port: tokio::sync::oneshot::Sender<u16>,
) -> Result<bool, LoopbackError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let delivered = runtime.block_on(async {
        let listener = LoopbackListener::bind(&[0]).await?;
        port.send(listener.port())
            .expect("the test waits for the port");
        let callback: Callback = listener
            .wait_for_callback(
                &CsrfToken::new("s".into()),
                &if_present(),
                Duration::from_secs(30),
                &CancellationToken::new(),
            )
            .await?;
        Ok(callback.finish(page).await)
    });
    // Every task of this runtime (the browser's connection among them) ends here.
    drop(runtime);
    delivered
}

#[tokio::test]
async fn the_failure_page_is_complete_before_the_caller_returns() {
    let (port_tx, port_rx) = tokio::sync::oneshot::channel();
    let caller = tokio::task::spawn_blocking(move || {
        finish_then_exit(
            Page::failed("the identity provider refused to issue the tokens (invalid_grant)"),
            port_tx,
        )
    });
    let port = port_rx.await.expect("the listener is bound");
    let browser = tokio::spawn(get(port, "/callback?code=c&state=s"));
    let delivered = caller.await.expect("join").expect("a callback arrived");
    assert!(delivered, "finish reports the page as delivered");
    let page = tokio::time::timeout(Duration::from_secs(10), browser)
        .await
        .expect("the browser is answered")
        .expect("join");
    assert_complete(&page);
    assert!(
        page.contains(
            "Sign-in failed: the identity provider refused to issue the tokens (invalid_grant)."
        ) && page.contains("You can close this tab"),
        "{page}"
    );
    assert!(!page.contains("You are signed in"), "{page}");
}
