//! `HTTP_PROXY` / `HTTPS_PROXY` from the environment are honoured (the client never disables system proxies).
//!
//! The environment is process-wide and cannot be changed safely inside a multi-threaded test binary, so the
//! parent test re-runs this binary with the proxy variables set, filtered to the child test below.

use std::process::Command;
use std::sync::Arc;

use companion_mgmt::MgmtClient;

use crate::doubles::{self, Answer};
use crate::harness::config_for;

const CHILD_MARKER: &str = "COMPANION_MGMT_TEST_PROXY_CHILD";
/// A tenant URL where nothing listens: only the proxy can answer for it.
const UNREACHABLE_TENANT: &str = "http://127.0.0.1:9";

#[tokio::test]
async fn proxy_from_the_environment_is_used() {
    // The "proxy" is a double: it receives the absolute-form request and answers as the tenant would.
    let proxy = doubles::start(3600, Arc::new(|_| Answer::json(200, "[]"))).await;
    let exe = std::env::current_exe().unwrap();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(exe)
            .args(["proxy_env::child_uses_the_proxy", "--exact", "--nocapture"])
            .env(CHILD_MARKER, "1")
            .env("HTTP_PROXY", &proxy.base)
            .env("http_proxy", &proxy.base)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .map(|output| (output, proxy))
    })
    .await
    .unwrap()
    .unwrap();
    let (output, proxy) = output;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 passed"), "the child test ran:\n{stdout}");
    assert_eq!(
        proxy.token_hits(),
        1,
        "the token request went through the proxy"
    );
    assert_eq!(
        proxy.seen().len(),
        1,
        "the management call went through the proxy"
    );
}

/// Runs only inside the child process started above.
#[tokio::test]
async fn child_uses_the_proxy() {
    if std::env::var_os(CHILD_MARKER).is_none() {
        return;
    }
    let client = MgmtClient::new(config_for(UNREACHABLE_TENANT)).unwrap();
    let methods = client
        .list_methods("auth0|x")
        .await
        .expect("the proxy answered for the unreachable tenant");
    assert!(methods.is_empty());
}
