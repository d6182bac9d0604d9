//! A full run (every route, errors included) with the production JSON log format captured: no token, no client
//! secret and no ticket URL appears, every record of a request carries its request id, and each change leaves one
//! audit record.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use companion_devtenant::faults::FaultSpec;
use companion_devtenant::world::demo;
use companion_proxy::config::LogFormat;
use companion_proxy::telemetry;

use crate::harness::{ALICE, ALICE_KEY, ALICE_TOTP, BOB, World, enc};

thread_local! {
    /// Where this thread's log lines go, if anywhere.
    static CAPTURE: RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { RefCell::new(None) };
}

/// Writes a log line into the current thread's capture buffer, or drops it.
struct Routed;

impl Write for Routed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|capture| {
            if let Some(buffer) = capture.borrow().as_ref() {
                buffer.lock().expect("capture lock").extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct RoutedWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RoutedWriter {
    type Writer = Routed;

    fn make_writer(&'a self) -> Self::Writer {
        Routed
    }
}

/// Installs the production JSON subscriber as the global default (once per test binary), writing each line to the
/// emitting thread's capture buffer. A global subscriber, unlike a scoped one, keeps callsite interest stable while
/// other tests run in parallel; a current-thread runtime keeps all of one test's events on its thread.
fn capture_this_thread() -> Arc<Mutex<Vec<u8>>> {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(telemetry::subscriber(
            LogFormat::Json,
            RoutedWriter,
            "debug,hyper=info,hyper_util=info,reqwest=info,h2=info,rustls=info",
        ));
    });
    let buffer = Arc::new(Mutex::new(Vec::new()));
    CAPTURE.with(|capture| *capture.borrow_mut() = Some(buffer.clone()));
    buffer
}

#[tokio::test]
async fn logs_of_a_full_run_hold_no_secrets() {
    let capture = capture_this_thread();
    let world = World::start().await;
    let alice_plain = world.token(ALICE, None);
    let alice_mfa = world.token(ALICE, Some(0));
    let bob = world.token(BOB, None);
    let mut tokens = vec![alice_plain.clone(), alice_mfa.clone(), bob.clone()];

    assert_eq!(world.list(&alice_plain).await.status, 200);
    assert_eq!(
        world
            .rename(&alice_plain, &enc(ALICE_KEY), "Lost key")
            .await
            .status,
        200
    );
    assert_eq!(
        world.delete(&alice_plain, &enc(ALICE_KEY)).await.status,
        403
    );
    assert_eq!(world.delete(&alice_mfa, &enc(ALICE_KEY)).await.status, 204);
    assert_eq!(world.delete(&bob, "totp%7C..").await.status, 400);
    assert_eq!(world.delete(&alice_mfa, &enc(ALICE_TOTP)).await.status, 204);
    let enroll = world.enroll(&bob, "webauthn-roaming").await;
    assert_eq!(enroll.status, 201);
    let ticket_url = enroll.body["ticket_url"]
        .as_str()
        .expect("ticket url")
        .to_owned();
    assert_eq!(
        world.enroll(&alice_plain, "webauthn-platform").await.status,
        403
    );
    let expired = {
        let mut claims = world.claims(ALICE, None);
        claims["exp"] = serde_json::json!(world.now() - 600);
        world.sign(&claims)
    };
    tokens.push(expired.clone());
    assert_eq!(world.list(&expired).await.status, 401);
    assert_eq!(world.list(&format!("{alice_plain}x")).await.status, 401);
    world.fault(FaultSpec::status("/api/v2/users/", 500));
    let fresh = world.token(ALICE, Some(2));
    tokens.push(fresh.clone());
    assert_eq!(world.list(&fresh).await.status, 503);
    world.clear_faults();
    assert_eq!(
        world
            .send(reqwest::Method::GET, "/readyz", None, None)
            .await
            .status,
        200
    );
    assert_eq!(
        world
            .send(reqwest::Method::GET, "/metrics", None, None)
            .await
            .status,
        200
    );
    world.stop().await;

    let logs = String::from_utf8(capture.lock().expect("capture").clone()).expect("utf-8 logs");
    assert!(logs.lines().count() > 20, "the run was logged:\n{logs}");
    for token in &tokens {
        assert!(
            !logs.contains(token.as_str()),
            "a user token leaked into the logs"
        );
        let signature = token.rsplit('.').next().expect("signature");
        assert!(
            !logs.contains(signature),
            "a token signature leaked into the logs"
        );
    }
    assert!(
        !logs.contains("eyJ"),
        "no JWT of any kind (user or M2M) in the logs"
    );
    assert!(
        !logs.contains(demo::PROXY_CLIENT_SECRET),
        "the client secret leaked"
    );
    assert!(
        !logs.contains(&ticket_url),
        "the single-use ticket URL leaked"
    );

    let records: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let audits: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["target"] == "audit").collect();
    let actions: Vec<(String, String)> = audits
        .iter()
        .map(|r| {
            (
                r["fields"]["action"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                r["fields"]["result"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("rename_authenticator".to_owned(), "success".to_owned()),
            ("remove_authenticator".to_owned(), "refused".to_owned()),
            ("remove_authenticator".to_owned(), "success".to_owned()),
            ("remove_authenticator".to_owned(), "success".to_owned()),
            ("create_enrollment_ticket".to_owned(), "success".to_owned()),
            ("create_enrollment_ticket".to_owned(), "refused".to_owned()),
        ],
        "one audit record per attempted change"
    );
    for audit in &audits {
        let fields = &audit["fields"];
        assert!(
            fields["sub"]
                .as_str()
                .is_some_and(|s| s.starts_with("auth0|")),
            "{audit}"
        );
        let request_id = fields["request_id"].as_str().expect("request id");
        assert!(request_id.len() >= 16, "{audit}");
        let spans = audit["spans"].as_array().expect("span list");
        assert!(
            spans.iter().any(|s| s["request_id"] == request_id),
            "the request span carries the same id: {audit}"
        );
    }
    assert!(
        records.iter().any(|r| r["level"] == "ERROR"
            && r["fields"]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("500"))),
        "5xx details are logged"
    );
}
