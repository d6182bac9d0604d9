//! Tiny in-test HTTP servers on port 0: a token endpoint that counts its hits (for paused-time token tests, where
//! the dev tenant's wall-clock signing does not fit) and a replay of recorded Auth0 bodies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use tokio::net::TcpListener;

/// What the fallback handler sees of a request.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    /// Path and query exactly as sent (still percent-encoded).
    pub(crate) target: String,
    pub(crate) authorization: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) body: String,
}

/// A canned answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.to_owned(),
        }
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

pub(crate) type Responder = Arc<dyn Fn(&Seen) -> Answer + Send + Sync>;

#[derive(Clone)]
struct DoubleState {
    token_hits: Arc<AtomicU64>,
    token_forms: Arc<Mutex<Vec<HashMap<String, String>>>>,
    expires_in: u64,
    token_answer: Option<Arc<dyn Fn(u64) -> Answer + Send + Sync>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    responder: Responder,
}

/// A running double.
pub(crate) struct Double {
    pub(crate) base: String,
    token_hits: Arc<AtomicU64>,
    token_forms: Arc<Mutex<Vec<HashMap<String, String>>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Double {
    /// Requests to `/oauth/token` so far.
    pub(crate) fn token_hits(&self) -> u64 {
        self.token_hits.load(Ordering::SeqCst)
    }

    /// The form bodies posted to `/oauth/token`.
    pub(crate) fn token_forms(&self) -> Vec<HashMap<String, String>> {
        self.token_forms.lock().unwrap().clone()
    }

    /// Every other request so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Starts a double whose `/oauth/token` issues `token-<n>` tokens living `expires_in` seconds, and whose other
/// routes answer with `responder`.
pub(crate) async fn start(expires_in: u64, responder: Responder) -> Double {
    start_with_token(expires_in, None, responder).await
}

/// Like [`start`], with `token_answer(n)` answering the n-th token request instead.
pub(crate) async fn start_with_token(
    expires_in: u64,
    token_answer: Option<Arc<dyn Fn(u64) -> Answer + Send + Sync>>,
    responder: Responder,
) -> Double {
    let state = DoubleState {
        token_hits: Arc::default(),
        token_forms: Arc::default(),
        expires_in,
        token_answer,
        seen: Arc::default(),
        responder,
    };
    let app = Router::new()
        .route("/oauth/token", post(token))
        .fallback(other)
        .with_state(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Double {
        base: format!("http://127.0.0.1:{}", addr.port()),
        token_hits: state.token_hits,
        token_forms: state.token_forms,
        seen: state.seen,
    }
}

async fn token(State(state): State<DoubleState>, body: String) -> Response {
    let n = state.token_hits.fetch_add(1, Ordering::SeqCst) + 1;
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    state.token_forms.lock().unwrap().push(form);
    let answer = match &state.token_answer {
        Some(answer) => answer(n),
        None => Answer::json(
            200,
            &format!(
                r#"{{"access_token":"token-{n}","expires_in":{},"token_type":"Bearer"}}"#,
                state.expires_in
            ),
        ),
    };
    respond(answer)
}

async fn other(State(state): State<DoubleState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let seen = Seen {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default(),
        authorization: parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        user_agent: parts
            .headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let answer = (state.responder)(&seen);
    state.seen.lock().unwrap().push(seen);
    respond(answer)
}

fn respond(answer: Answer) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap();
    for (name, value) in answer.headers {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}
