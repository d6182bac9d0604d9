//! Loopback listener hardening: only `GET /callback` with the right `state` is accepted, once.

use std::time::Duration;

use companion_client::loopback::{CALLBACK_PATH, LoopbackError, LoopbackListener, Page};
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
            .wait_for_callback(&state, Duration::from_secs(30), &cancel)
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
    callback.finish(Page::Success);
    let page = valid.await.expect("join");
    assert_eq!(status(&page), "200", "{page}");
    assert!(page.contains("You can close this tab"), "{page}");
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
            .wait_for_callback(&state, Duration::from_secs(30), &cancel)
            .await
    });
    let browser = tokio::spawn(get(port, "/callback?code=x&state=s"));
    let callback = wait.await.expect("join").expect("callback");
    drop(callback);
    let page = browser.await.expect("join");
    assert!(
        page.contains("did not complete") && !page.contains("close this tab"),
        "{page}"
    );
}

#[tokio::test]
async fn a_provider_error_with_the_right_state_ends_the_wait() {
    let listener = LoopbackListener::bind(&[0]).await.expect("bind");
    let port = listener.port();
    let state = CsrfToken::new("s".into());
    let cancel = CancellationToken::new();
    let wait = tokio::spawn(async move {
        listener
            .wait_for_callback(&state, Duration::from_secs(30), &cancel)
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
            .wait_for_callback(&state, Duration::from_secs(60), &cancel)
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
