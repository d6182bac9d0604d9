//! Enrollment-ticket pages: `ticket_url` opens a page that registers a WebAuthn credential and stores it as a
//! `webauthn-platform` or `webauthn-roaming` method.
//!
//! `GET /guardian/enroll?ticket=<id>` checks the ticket (unknown: 404, used or expired on the tenant clock: 410,
//! another factor: 400), starts a registration ([`crate::webauthn::Ceremonies::start_registration`]) and serves a
//! page whose inline script runs `navigator.credentials.create` and posts the result. `POST /guardian/enroll`
//! verifies it with `webauthn-rs`, then, in one store transaction, re-checks the ticket, stores the method and
//! marks the ticket used, so a double submit never creates two methods.

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use companion_protocol::auth0::{AuthenticationMethod, MethodType, TicketFactor};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::AppState;
use crate::clock::auth0_timestamp;
use crate::error::PageError;
use crate::pages::{escape, layout};
use crate::store::{MethodSecret, StoredMethod, TenantState, Ticket, User};
use crate::webauthn::{
    Attachment, JS_HELPERS, RegisteredCredential, WebauthnError, random_alphanumeric,
};

/// The path of the enrollment page; `ticket_url` is `<base>/guardian/enroll?ticket=<ticket_id>`.
pub const ENROLL_PATH: &str = "/guardian/enroll";

/// Longest `user_agent` kept on a method.
const MAX_USER_AGENT: usize = 512;

/// The enrollment page routes.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        ENROLL_PATH,
        axum::routing::get(enroll_page).post(enroll_finish),
    )
}

/// The ticket URL for `ticket_id` on a tenant at `base_url`.
pub fn ticket_url(base_url: &str, ticket_id: &str) -> String {
    let mut url = format!("{}{ENROLL_PATH}?", base_url.trim_end_matches('/'));
    url.push_str(
        &form_urlencoded::Serializer::new(String::new())
            .append_pair("ticket", ticket_id)
            .finish(),
    );
    url
}

/// Why a ticket cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// No such ticket.
    #[error("unknown ticket")]
    Unknown,
    /// Already used once.
    #[error("ticket already used")]
    Used,
    /// Past its expiry.
    #[error("ticket expired")]
    Expired,
    /// The ticket's user no longer exists.
    #[error("the ticket's user does not exist")]
    UnknownUser,
    /// The ticket is for a factor this page does not enroll.
    #[error("factor not enrollable here")]
    UnsupportedFactor(String),
    /// The user already has MFA and the ticket does not allow another enrollment.
    #[error("already enrolled")]
    AlreadyEnrolled,
    /// The ceremony registered another kind of authenticator than the ticket's factor.
    #[error("factor mismatch")]
    FactorMismatch,
    /// This authenticator is already registered.
    #[error("credential already registered")]
    CredentialTaken,
}

impl From<TicketError> for PageError {
    fn from(error: TicketError) -> Self {
        let (status, title, message) = match error {
            TicketError::Unknown => (
                StatusCode::NOT_FOUND,
                "Link not recognised",
                "This enrollment link is not valid. Ask for a new one from Passkey Companion.".to_owned(),
            ),
            TicketError::Used => (
                StatusCode::GONE,
                "Link already used",
                "This enrollment link was already used: each link works once. Return to Passkey Companion and start again to add another key.".to_owned(),
            ),
            TicketError::Expired => (
                StatusCode::GONE,
                "Link expired",
                "This enrollment link has expired (links last 5 days). Return to Passkey Companion and start again.".to_owned(),
            ),
            TicketError::UnknownUser => (
                StatusCode::NOT_FOUND,
                "Account not found",
                "The account this link was made for no longer exists.".to_owned(),
            ),
            TicketError::UnsupportedFactor(factor) => (
                StatusCode::BAD_REQUEST,
                "Cannot enroll here",
                format!(
                    "This link enrolls the \u{201c}{factor}\u{201d} factor, which this page does not support. It adds security keys and device biometrics only."
                ),
            ),
            TicketError::AlreadyEnrolled => (
                StatusCode::BAD_REQUEST,
                "Already enrolled",
                "This account already has multi-factor authentication and this link does not allow adding another method.".to_owned(),
            ),
            TicketError::FactorMismatch => (
                StatusCode::BAD_REQUEST,
                "Cannot enroll here",
                "This link enrolls a different kind of authenticator. Open the link again.".to_owned(),
            ),
            TicketError::CredentialTaken => (
                StatusCode::CONFLICT,
                "Already registered",
                "This security key or device is already registered. Use a different one.".to_owned(),
            ),
        };
        Self {
            status,
            title: title.to_owned(),
            message,
        }
    }
}

/// What a usable ticket enrolls.
#[derive(Debug, Clone)]
pub struct UsableTicket {
    /// The ticket's id.
    pub ticket_id: String,
    /// Its user.
    pub user: User,
    /// The authenticator kind, or `None` when the ticket lets the user choose.
    pub attachment: Option<Attachment>,
}

/// Checks that `ticket_id` can enroll now (Unix seconds `now`): it exists, is unused and unexpired, its user
/// exists, its factor is a WebAuthn one (or unset), and, unless it allows multiple enrollments, its user has no
/// MFA method yet.
///
/// # Errors
/// The [`TicketError`] saying why not.
pub fn check_ticket(
    state: &TenantState,
    ticket_id: &str,
    now: i64,
) -> Result<UsableTicket, TicketError> {
    let ticket = state.tickets.get(ticket_id).ok_or(TicketError::Unknown)?;
    check_ticket_record(ticket, now)?;
    let attachment = match &ticket.factor {
        None => None,
        Some(TicketFactor::WebauthnRoaming) => Some(Attachment::CrossPlatform),
        Some(TicketFactor::WebauthnPlatform) => Some(Attachment::Platform),
        Some(other) => return Err(TicketError::UnsupportedFactor(other.as_str().to_owned())),
    };
    let user = state
        .user(&ticket.user_id)
        .ok_or(TicketError::UnknownUser)?;
    if !ticket.allow_multiple_enrollments && has_mfa(user) {
        return Err(TicketError::AlreadyEnrolled);
    }
    Ok(UsableTicket {
        ticket_id: ticket.ticket_id.clone(),
        user: user.clone(),
        attachment,
    })
}

/// Checks a ticket's own state: unused, and `now` (Unix seconds) before its expiry.
///
/// # Errors
/// [`TicketError::Used`] or [`TicketError::Expired`].
pub fn check_ticket_record(ticket: &Ticket, now: i64) -> Result<(), TicketError> {
    if ticket.used_at.is_some() {
        return Err(TicketError::Used);
    }
    if now >= ticket.expires_at {
        return Err(TicketError::Expired);
    }
    Ok(())
}

/// Whether `user` already has a confirmed second factor.
fn has_mfa(user: &User) -> bool {
    user.methods.iter().any(|m| {
        m.method.confirmed != Some(false)
            && !matches!(
                m.method.kind,
                MethodType::Password
                    | MethodType::Passkey
                    | MethodType::EmailVerification
                    | MethodType::RecoveryCode
            )
    })
}

/// Stores `registered` as a new method of the ticket's user (type from the ceremony's attachment) and marks the
/// ticket used, after re-checking the ticket, all in the caller's single store transaction. Returns the new
/// method's id.
///
/// # Errors
/// A [`TicketError`] when the ticket became unusable meanwhile (e.g. a concurrent submit used it) or the
/// credential is already registered to anyone.
pub fn commit_enrollment(
    state: &mut TenantState,
    ticket_id: &str,
    registered: RegisteredCredential,
    user_agent: Option<String>,
    now: OffsetDateTime,
) -> Result<String, TicketError> {
    let usable = check_ticket(state, ticket_id, now.unix_timestamp())?;
    let attachment = registered.attachment;
    if usable.attachment.is_some_and(|a| a != attachment) {
        return Err(TicketError::FactorMismatch);
    }
    let taken = state.users.iter().flat_map(|u| &u.methods).any(|m| {
        m.method.key_id.as_deref() == Some(registered.key_id.as_str())
            && matches!(
                m.method.kind,
                MethodType::WebauthnRoaming | MethodType::WebauthnPlatform | MethodType::Passkey
            )
    });
    if taken {
        return Err(TicketError::CredentialTaken);
    }
    let id = format!("{}|dev_{}", attachment.type_str(), random_alphanumeric(16));
    let created = auth0_timestamp(now);
    let method = AuthenticationMethod {
        id: id.clone(),
        kind: attachment.method_type(),
        confirmed: Some(true),
        name: None,
        authentication_methods: None,
        preferred_authentication_method: None,
        link_id: None,
        phone_number: None,
        email: None,
        key_id: Some(registered.key_id),
        public_key: Some(registered.public_key),
        created_at: created.clone(),
        enrolled_at: Some(created),
        last_auth_at: None,
        credential_device_type: None,
        credential_backed_up: None,
        identity_user_id: None,
        user_agent,
        user_handle: None,
        transports: registered.transports,
        aaguid: registered.aaguid,
        relying_party_identifier: Some(registered.relying_party_identifier),
    };
    let user = state
        .user_mut(&usable.user.user_id)
        .ok_or(TicketError::UnknownUser)?;
    user.methods.push(StoredMethod {
        method,
        secret: Some(MethodSecret::Webauthn {
            credential: registered.credential,
        }),
    });
    if let Some(ticket) = state.tickets.get_mut(ticket_id) {
        ticket.used_at = Some(now.unix_timestamp());
    }
    Ok(id)
}

/// Query of the enrollment page.
#[derive(Debug, Deserialize)]
struct EnrollQuery {
    ticket: Option<String>,
    /// `platform` or `roaming`, when the ticket lets the user choose.
    kind: Option<String>,
}

/// Form posted by the enrollment page.
#[derive(Debug, Deserialize)]
struct EnrollForm {
    ticket: Option<String>,
    ceremony: Option<String>,
    credential: Option<String>,
    kind: Option<String>,
}

fn parse_kind(kind: Option<&str>) -> Option<Attachment> {
    match kind {
        Some("platform") => Some(Attachment::Platform),
        Some("roaming") => Some(Attachment::CrossPlatform),
        _ => None,
    }
}

fn kind_param(attachment: Attachment) -> &'static str {
    match attachment {
        Attachment::Platform => "platform",
        Attachment::CrossPlatform => "roaming",
    }
}

fn missing_ticket() -> PageError {
    PageError::bad_request(
        "Link incomplete",
        "This enrollment link has no ticket. Open the full link from Passkey Companion.",
    )
}

/// When the page was opened on another host name than the tenant's base URL (e.g. `127.0.0.1`, where
/// browsers refuse WebAuthn), the same page on the base URL.
fn canonical_redirect(state: &AppState, headers: &HeaderMap, query: &str) -> Option<Redirect> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let expected = state
        .base_url
        .split_once("://")
        .map_or(&*state.base_url, |(_, rest)| rest);
    (!host.eq_ignore_ascii_case(expected))
        .then(|| Redirect::to(&format!("{}{ENROLL_PATH}?{query}", state.base_url)))
}

async fn enroll_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
    Query(query): Query<EnrollQuery>,
) -> Response {
    if let Some(redirect) = canonical_redirect(&state, &headers, raw.as_deref().unwrap_or("")) {
        return redirect.into_response();
    }
    match render_enroll_page(&state, &query) {
        Ok(html) => no_store(Html(html).into_response()),
        Err(error) => no_store(error.into_response()),
    }
}

fn render_enroll_page(state: &AppState, query: &EnrollQuery) -> Result<String, PageError> {
    let ticket_id = query.ticket.as_deref().ok_or_else(missing_ticket)?;
    let now = state.clock.now();
    let usable = state
        .store
        .read(|s| check_ticket(s, ticket_id, now.unix_timestamp()))?;
    let Some(attachment) = usable
        .attachment
        .or_else(|| parse_kind(query.kind.as_deref()))
    else {
        return Ok(choice_page(&state.base_url, &usable));
    };
    let challenge = state
        .webauthn
        .start_registration(&usable.user, ticket_id, attachment, now)
        .map_err(|e| ceremony_error(&e))?;
    Ok(registration_page(
        &usable,
        attachment,
        &challenge.ceremony,
        &challenge.options_script_json,
    ))
}

fn choice_page(base_url: &str, usable: &UsableTicket) -> String {
    let url = ticket_url(base_url, &usable.ticket_id);
    let body = format!(
        r#"<h1 id="title">Add a second factor</h1>
<p>Choose what <strong>{email}</strong> will use to confirm sign-ins.</p>
<p><a id="choose-roaming" href="{roaming}">Add a security key</a></p>
<p><a id="choose-platform" href="{platform}">Set up this device (fingerprint, face or screen lock)</a></p>"#,
        email = escape(&usable.user.email),
        roaming = escape(&format!("{url}&kind=roaming")),
        platform = escape(&format!("{url}&kind=platform")),
    );
    layout("Add a second factor", &body)
}

fn registration_page(
    usable: &UsableTicket,
    attachment: Attachment,
    ceremony: &str,
    options_json: &str,
) -> String {
    let (title, explanation, button) = match attachment {
        Attachment::CrossPlatform => (
            "Add a security key",
            "When you press the button, your browser asks you to insert or touch your security key. It then becomes a second factor for your sign-ins.",
            "Add security key",
        ),
        Attachment::Platform => (
            "Set up this device",
            "When you press the button, your browser asks for this device's fingerprint, face or screen lock. This device then becomes a second factor for your sign-ins.",
            "Set up this device",
        ),
    };
    let body = format!(
        r#"<h1 id="title">{title}</h1>
<p>For <strong>{email}</strong>.</p>
<p>{explanation}</p>
<form method="post" action="{ENROLL_PATH}" id="enroll-form">
<input type="hidden" name="ticket" value="{ticket}">
<input type="hidden" name="ceremony" value="{ceremony}">
<input type="hidden" name="kind" value="{kind}">
<input type="hidden" name="credential" value="">
<button type="button" id="enroll">{button}</button>
<p class="error" role="alert" id="error" hidden></p>
</form>
<script>
{helpers}
(() => {{
  const options = {options};
  const form = document.getElementById("enroll-form");
  const button = document.getElementById("enroll");
  const error = document.getElementById("error");
  const fail = (text) => {{ error.textContent = text; error.hidden = false; button.disabled = false; }};
  button.addEventListener("click", async () => {{
    error.hidden = true;
    if (!window.PublicKeyCredential) {{
      fail("This browser does not support security keys or passkeys. Open this link in another browser.");
      return;
    }}
    button.disabled = true;
    try {{
      const pk = options.publicKey;
      const publicKey = Object.assign({{}}, pk, {{
        challenge: waFromB64u(pk.challenge),
        user: Object.assign({{}}, pk.user, {{ id: waFromB64u(pk.user.id) }}),
        excludeCredentials: (pk.excludeCredentials || []).map((c) => Object.assign({{}}, c, {{ id: waFromB64u(c.id) }})),
      }});
      const cred = await navigator.credentials.create({{ publicKey }});
      const r = cred.response;
      form.elements.credential.value = JSON.stringify({{
        id: cred.id,
        rawId: waToB64u(cred.rawId),
        type: cred.type,
        response: {{
          attestationObject: waToB64u(r.attestationObject),
          clientDataJSON: waToB64u(r.clientDataJSON),
          transports: r.getTransports ? r.getTransports() : undefined,
        }},
        extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {{}},
      }});
      form.submit();
    }} catch (e) {{
      if (e.name === "InvalidStateError") {{
        fail("This security key or device is already registered. Use a different one.");
      }} else if (e.name === "NotAllowedError") {{
        fail("The request was cancelled or timed out. Press the button to try again.");
      }} else {{
        fail("Registration failed (" + e.name + ": " + e.message + "). Press the button to try again.");
      }}
    }}
  }});
}})();
</script>"#,
        email = escape(&usable.user.email),
        ticket = escape(&usable.ticket_id),
        ceremony = escape(ceremony),
        kind = kind_param(attachment),
        helpers = JS_HELPERS,
        options = options_json,
    );
    layout(title, &body)
}

fn ceremony_error(error: &WebauthnError) -> PageError {
    PageError::bad_request("Something went wrong", error.to_string())
}

/// An error page with a link back to a fresh ceremony on the same ticket.
fn retry_page(
    ticket_id: &str,
    kind: Option<Attachment>,
    status: StatusCode,
    message: &str,
) -> Response {
    let mut href = format!(
        "{ENROLL_PATH}?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("ticket", ticket_id)
            .finish()
    );
    if let Some(kind) = kind {
        href.push_str("&kind=");
        href.push_str(kind_param(kind));
    }
    let body = format!(
        r#"<h1 id="title">Registration failed</h1>
<p class="error" role="alert" id="error">{message}</p>
<p><a id="retry" href="{href}">Try again</a></p>"#,
        message = escape(message),
        href = escape(&href),
    );
    no_store((status, Html(layout("Registration failed", &body))).into_response())
}

async fn enroll_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<EnrollForm>,
) -> Response {
    let Some(ticket_id) = form.ticket.as_deref().filter(|t| !t.is_empty()) else {
        return missing_ticket().into_response();
    };
    let now = state.clock.now();
    let usable = match state
        .store
        .read(|s| check_ticket(s, ticket_id, now.unix_timestamp()))
    {
        Ok(usable) => usable,
        Err(error) => return no_store(PageError::from(error).into_response()),
    };
    let Some(attachment) = usable
        .attachment
        .or_else(|| parse_kind(form.kind.as_deref()))
    else {
        return retry_page(
            ticket_id,
            None,
            StatusCode::BAD_REQUEST,
            "Choose a security key or this device first.",
        );
    };
    let (Some(ceremony), Some(credential)) = (
        form.ceremony.as_deref(),
        form.credential.as_deref().filter(|c| !c.is_empty()),
    ) else {
        return retry_page(
            ticket_id,
            Some(attachment),
            StatusCode::BAD_REQUEST,
            "The browser did not send a credential.",
        );
    };
    let registered = match state.webauthn.finish_registration(
        ceremony,
        ticket_id,
        &usable.user.user_id,
        credential,
        now,
    ) {
        Ok(registered) => registered,
        Err(error) => {
            tracing::info!(%error, "enrollment ceremony refused");
            return retry_page(
                ticket_id,
                Some(attachment),
                StatusCode::BAD_REQUEST,
                &format!("{}.", capitalise(&error.to_string())),
            );
        }
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect::<String>());
    let attachment = registered.attachment;
    let committed = state
        .store
        .write(|s| commit_enrollment(s, ticket_id, registered, user_agent, now));
    match committed {
        Ok(method_id) => {
            tracing::info!(%method_id, user_id = %usable.user.user_id, "WebAuthn method enrolled");
            no_store(Html(done_page(attachment, &usable.user.email)).into_response())
        }
        Err(error) => no_store(PageError::from(error).into_response()),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

fn done_page(attachment: Attachment, email: &str) -> String {
    let what = match attachment {
        Attachment::CrossPlatform => "Your security key is registered",
        Attachment::Platform => "This device is set up",
    };
    let body = format!(
        r#"<h1 id="done">Done</h1>
<p>{what} for <strong>{email}</strong>.</p>
<p>You can close this window and return to Passkey Companion.</p>"#,
        email = escape(email),
    );
    layout("Done", &body)
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::store::Store;
    use crate::world::World;

    const DAY: i64 = 24 * 3600;

    fn state_with_ticket(
        factor: Option<TicketFactor>,
        allow_multiple: bool,
        now: i64,
    ) -> (TenantState, String) {
        let mut state = TenantState::from_world(&World::demo());
        let user_id = state
            .user_by_email("alice@example.com")
            .expect("the demo world has alice")
            .user_id
            .clone();
        let ticket_id = random_alphanumeric(32);
        state.tickets.insert(
            ticket_id.clone(),
            Ticket {
                ticket_id: ticket_id.clone(),
                user_id,
                factor,
                allow_multiple_enrollments: allow_multiple,
                created_at: now,
                expires_at: now + 5 * DAY,
                used_at: None,
            },
        );
        (state, ticket_id)
    }

    fn fake_credential(key_id: &str, attachment: Attachment) -> RegisteredCredential {
        RegisteredCredential {
            attachment,
            key_id: key_id.to_owned(),
            public_key: "cHVibGlj".to_owned(),
            aaguid: Some("01020304-0506-0708-0102-030405060708".to_owned()),
            transports: Some(vec!["usb".to_owned()]),
            credential: serde_json::json!({"cred": {}}),
            relying_party_identifier: "localhost".to_owned(),
        }
    }

    #[test]
    fn tickets_are_checked_for_existence_use_expiry_and_factor() {
        let clock = ManualClock::new(time::macros::datetime!(2026-03-01 12:00 UTC));
        let now = clock.unix();
        let (state, id) = state_with_ticket(Some(TicketFactor::WebauthnRoaming), true, now);
        let usable = check_ticket(&state, &id, now).expect("a fresh ticket is usable");
        assert_eq!(usable.attachment, Some(Attachment::CrossPlatform));
        assert_eq!(
            check_ticket(&state, "nope", now).err(),
            Some(TicketError::Unknown)
        );
        clock.advance(std::time::Duration::from_secs(5 * 86_400 - 1));
        assert!(
            check_ticket(&state, &id, clock.unix()).is_ok(),
            "still valid one second before 5 days"
        );
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(
            check_ticket(&state, &id, clock.unix()).err(),
            Some(TicketError::Expired),
            "tickets expire after 5 days of tenant time"
        );

        let (state, id) = state_with_ticket(Some(TicketFactor::WebauthnPlatform), true, now);
        assert_eq!(
            check_ticket(&state, &id, now).expect("usable").attachment,
            Some(Attachment::Platform)
        );
        let (state, id) = state_with_ticket(Some(TicketFactor::Otp), true, now);
        assert_eq!(
            check_ticket(&state, &id, now).err(),
            Some(TicketError::UnsupportedFactor("otp".to_owned()))
        );
        let (state, id) = state_with_ticket(None, true, now);
        assert_eq!(
            check_ticket(&state, &id, now).expect("usable").attachment,
            None
        );
        let (state, id) = state_with_ticket(Some(TicketFactor::WebauthnRoaming), false, now);
        assert_eq!(
            check_ticket(&state, &id, now).err(),
            Some(TicketError::AlreadyEnrolled),
            "alice has TOTP, so a ticket without allow_multiple_enrollments cannot add more"
        );
    }

    #[test]
    fn enrollment_stores_the_method_and_uses_the_ticket_once() {
        let at = time::macros::datetime!(2026-03-01 12:00:00.250 UTC);
        let (mut state, id) = state_with_ticket(
            Some(TicketFactor::WebauthnRoaming),
            true,
            at.unix_timestamp(),
        );
        let before = state
            .user_by_email("alice@example.com")
            .expect("alice")
            .methods
            .len();
        let method_id = commit_enrollment(
            &mut state,
            &id,
            fake_credential("a2V5LTE", Attachment::CrossPlatform),
            Some("Test UA".to_owned()),
            at,
        )
        .expect("first use enrolls");
        let suffix = method_id
            .strip_prefix("webauthn-roaming|dev_")
            .expect("Auth0-style id");
        assert_eq!(suffix.len(), 16);
        assert!(suffix.chars().all(|c| c.is_ascii_alphanumeric()));
        let alice = state.user_by_email("alice@example.com").expect("alice");
        assert_eq!(alice.methods.len(), before + 1);
        let stored = alice.methods.last().expect("the new method");
        assert_eq!(stored.method.id, method_id);
        assert_eq!(stored.method.kind, MethodType::WebauthnRoaming);
        assert_eq!(stored.method.key_id.as_deref(), Some("a2V5LTE"));
        assert_eq!(stored.method.created_at, "2026-03-01T12:00:00.250Z");
        assert_eq!(
            stored.method.enrolled_at.as_deref(),
            Some("2026-03-01T12:00:00.250Z")
        );
        assert_eq!(stored.method.confirmed, Some(true));
        assert_eq!(stored.method.user_agent.as_deref(), Some("Test UA"));
        assert!(matches!(stored.secret, Some(MethodSecret::Webauthn { .. })));
        assert_eq!(
            state.tickets[&id].used_at,
            Some(at.unix_timestamp()),
            "the ticket is marked used"
        );
        let again = commit_enrollment(
            &mut state,
            &id,
            fake_credential("a2V5LTI", Attachment::CrossPlatform),
            None,
            at,
        );
        assert_eq!(again.err(), Some(TicketError::Used), "single use");
    }

    #[test]
    fn a_ceremony_of_another_kind_cannot_use_the_ticket() {
        let at = time::macros::datetime!(2026-03-01 12:00 UTC);
        let (mut state, id) = state_with_ticket(
            Some(TicketFactor::WebauthnRoaming),
            true,
            at.unix_timestamp(),
        );
        let error = commit_enrollment(
            &mut state,
            &id,
            fake_credential("eA", Attachment::Platform),
            None,
            at,
        );
        assert_eq!(error.err(), Some(TicketError::FactorMismatch));
        assert_eq!(state.tickets[&id].used_at, None);
    }

    #[test]
    fn a_credential_registered_anywhere_is_refused() {
        let at = time::macros::datetime!(2026-03-01 12:00 UTC);
        let (mut state, first) = state_with_ticket(
            Some(TicketFactor::WebauthnPlatform),
            true,
            at.unix_timestamp(),
        );
        commit_enrollment(
            &mut state,
            &first,
            fake_credential("c2FtZQ", Attachment::Platform),
            None,
            at,
        )
        .expect("enrolls");
        let second = "second".to_owned();
        let mut ticket = state.tickets[&first].clone();
        ticket.ticket_id.clone_from(&second);
        ticket.used_at = None;
        state.tickets.insert(second.clone(), ticket);
        let error = commit_enrollment(
            &mut state,
            &second,
            fake_credential("c2FtZQ", Attachment::Platform),
            None,
            at,
        );
        assert_eq!(error.err(), Some(TicketError::CredentialTaken));
        assert_eq!(
            state.tickets[&second].used_at, None,
            "a refused enrollment does not use the ticket"
        );
    }

    #[test]
    fn concurrent_submits_create_one_method() {
        let at = time::macros::datetime!(2026-03-01 12:00 UTC);
        let (state, id) = state_with_ticket(
            Some(TicketFactor::WebauthnRoaming),
            true,
            at.unix_timestamp(),
        );
        let store = Arc::new(Store::open(&World::demo(), None).expect("store"));
        store.write(|s| *s = state);
        let before = store.read(|s| {
            s.user_by_email("alice@example.com")
                .expect("alice")
                .methods
                .len()
        });
        let results: Vec<Result<String, TicketError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let store = Arc::clone(&store);
                    let id = id.clone();
                    scope.spawn(move || {
                        store.write(|s| {
                            commit_enrollment(
                                s,
                                &id,
                                fake_credential(&format!("a2V5{i}"), Attachment::CrossPlatform),
                                None,
                                at,
                            )
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no panic"))
                .collect()
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "exactly one submit wins"
        );
        assert!(
            results
                .iter()
                .filter_map(|r| r.as_ref().err())
                .all(|e| *e == TicketError::Used)
        );
        let after = store.read(|s| {
            s.user_by_email("alice@example.com")
                .expect("alice")
                .methods
                .len()
        });
        assert_eq!(after, before + 1);
    }

    #[test]
    fn ticket_errors_map_to_clear_statuses() {
        let cases = [
            (TicketError::Unknown, StatusCode::NOT_FOUND),
            (TicketError::Used, StatusCode::GONE),
            (TicketError::Expired, StatusCode::GONE),
            (
                TicketError::UnsupportedFactor("<otp>".to_owned()),
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (error, status) in cases {
            let page = PageError::from(error);
            assert_eq!(page.status, status);
        }
    }

    #[test]
    fn ticket_urls_encode_the_id() {
        assert_eq!(
            ticket_url("http://localhost:1/", "a b&c"),
            "http://localhost:1/guardian/enroll?ticket=a+b%26c"
        );
    }

    /// The pages over real HTTP on an in-process tenant with a manual clock.
    #[tokio::test]
    async fn pages_answer_for_each_ticket_state() {
        let clock = ManualClock::starting_now();
        let tenant = crate::start(crate::TenantOptions {
            clock: Arc::new(clock.clone()),
            key_bits: 1024,
            ..crate::TenantOptions::for_test()
        })
        .await
        .expect("tenant starts");
        let now = clock.unix();
        let (id, user_id) = tenant.state.store.write(|s| {
            let user_id = s
                .user_by_email("bob@example.com")
                .expect("bob")
                .user_id
                .clone();
            let id = random_alphanumeric(32);
            s.tickets.insert(
                id.clone(),
                Ticket {
                    ticket_id: id.clone(),
                    user_id: user_id.clone(),
                    factor: Some(TicketFactor::WebauthnRoaming),
                    allow_multiple_enrollments: false,
                    created_at: now,
                    expires_at: now + 5 * DAY,
                    used_at: None,
                },
            );
            (id, user_id)
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let url = ticket_url(tenant.base_url(), &id);

        let page = http.get(&url).send().await.expect("GET");
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.expect("body");
        assert!(html.contains("Add a security key"), "{html}");
        assert!(html.contains("navigator.credentials.create"));
        assert!(html.contains("bob@example.com"));

        let by_ip = http
            .get(url.replace("localhost", "127.0.0.1"))
            .send()
            .await
            .expect("GET by IP");
        assert!(
            by_ip.status().is_redirection(),
            "IP hosts are sent to localhost"
        );
        assert_eq!(
            by_ip.headers()[header::LOCATION].to_str().expect("ascii"),
            url
        );

        let unknown = http
            .get(ticket_url(tenant.base_url(), "nope"))
            .send()
            .await
            .expect("GET");
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

        let garbage = http
            .post(tenant.url(ENROLL_PATH))
            .form(&[
                ("ticket", id.as_str()),
                ("ceremony", "x"),
                ("credential", "{}"),
            ])
            .send()
            .await
            .expect("POST");
        assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
        let html = garbage.text().await.expect("body");
        assert!(
            html.contains("id=\"retry\""),
            "a failed ceremony offers a retry: {html}"
        );
        assert!(
            tenant
                .state
                .store
                .read(|s| s.tickets[&id].used_at.is_none()),
            "a failed ceremony does not use the ticket"
        );

        clock.advance(std::time::Duration::from_secs(5 * 86_400));
        let expired = http.get(&url).send().await.expect("GET");
        assert_eq!(expired.status(), StatusCode::GONE);
        assert!(expired.text().await.expect("body").contains("expired"));

        tenant.state.store.write(|s| {
            if let Some(t) = s.tickets.get_mut(&id) {
                t.used_at = Some(now);
                t.expires_at = i64::MAX;
            }
        });
        let used = http.get(&url).send().await.expect("GET");
        assert_eq!(used.status(), StatusCode::GONE);
        assert!(used.text().await.expect("body").contains("already used"));
        assert!(
            tenant
                .state
                .store
                .read(|s| s.user(&user_id).expect("bob").methods.is_empty()),
            "nothing was enrolled"
        );
        tenant.shutdown().await;
    }

    fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
        let from = text
            .find(start)
            .map(|i| i + start.len())
            .expect("start marker");
        let len = text[from..].find(end).expect("end marker");
        &text[from..from + len]
    }

    /// The whole page flow over HTTP with a software authenticator, including a concurrent double submit.
    #[tokio::test]
    async fn a_software_key_enrolls_over_http_once() {
        use crate::webauthn::soft::SoftAuthenticator;

        let tenant = crate::start(crate::TenantOptions {
            key_bits: 1024,
            ..crate::TenantOptions::for_test()
        })
        .await
        .expect("tenant starts");
        let now = tenant.state.clock.unix();
        let (id, user_id) = tenant.state.store.write(|s| {
            let user_id = s
                .user_by_email("bob@example.com")
                .expect("bob")
                .user_id
                .clone();
            let id = random_alphanumeric(32);
            s.tickets.insert(
                id.clone(),
                Ticket {
                    ticket_id: id.clone(),
                    user_id: user_id.clone(),
                    factor: Some(TicketFactor::WebauthnRoaming),
                    allow_multiple_enrollments: true,
                    created_at: now,
                    expires_at: now + 5 * DAY,
                    used_at: None,
                },
            );
            (id, user_id)
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("EnrollTest/1.0")
            .build()
            .expect("client");
        let url = ticket_url(tenant.base_url(), &id);
        let mut answers = Vec::new();
        for _ in 0..2 {
            let html = http
                .get(&url)
                .send()
                .await
                .expect("GET")
                .text()
                .await
                .expect("body");
            let options: serde_json::Value =
                serde_json::from_str(between(&html, "const options = ", ";\n")).expect("options");
            let ceremony = between(&html, r#"name="ceremony" value=""#, "\"").to_owned();
            let key = SoftAuthenticator::new(tenant.base_url());
            answers.push((ceremony, key.register(&options, false), key));
        }
        let post = |ceremony: &str, credential: &str| {
            http.post(tenant.url(ENROLL_PATH))
                .form(&[
                    ("ticket", id.as_str()),
                    ("ceremony", ceremony),
                    ("kind", "roaming"),
                    ("credential", credential),
                ])
                .send()
        };
        let (first, second) = tokio::join!(
            post(&answers[0].0, &answers[0].1),
            post(&answers[1].0, &answers[1].1)
        );
        let mut statuses = vec![
            first.expect("POST").status(),
            second.expect("POST").status(),
        ];
        statuses.sort();
        assert_eq!(
            statuses,
            vec![StatusCode::OK, StatusCode::GONE],
            "one submit enrolls, the other finds the ticket used"
        );
        let methods = tenant
            .state
            .store
            .read(|s| s.user(&user_id).map(|u| u.methods.clone()))
            .expect("bob");
        assert_eq!(methods.len(), 1, "exactly one method: {methods:?}");
        let method = &methods[0].method;
        assert_eq!(method.user_agent.as_deref(), Some("EnrollTest/1.0"));
        assert!(
            answers.iter().any(|(_, _, key)| method.key_id.as_deref()
                == Some(
                    base64::Engine::encode(
                        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                        &key.credential_id
                    )
                    .as_str()
                )),
            "the key_id is one of the two keys'"
        );
        let again = post(&answers[0].0, &answers[0].1).await.expect("POST");
        assert_eq!(
            again.status(),
            StatusCode::GONE,
            "a resubmit after success is refused"
        );
        tenant.shutdown().await;
    }

    /// A ticket without a factor lets the person choose, then runs the chosen registration.
    #[tokio::test]
    async fn a_ticket_without_factor_offers_a_choice() {
        let tenant = crate::start(crate::TenantOptions {
            key_bits: 1024,
            ..crate::TenantOptions::for_test()
        })
        .await
        .expect("tenant starts");
        let now = tenant.state.clock.unix();
        let id = tenant.state.store.write(|s| {
            let user_id = s
                .user_by_email("bob@example.com")
                .expect("bob")
                .user_id
                .clone();
            let id = random_alphanumeric(32);
            s.tickets.insert(
                id.clone(),
                Ticket {
                    ticket_id: id.clone(),
                    user_id,
                    factor: None,
                    allow_multiple_enrollments: false,
                    created_at: now,
                    expires_at: now + 5 * DAY,
                    used_at: None,
                },
            );
            id
        });
        let http = reqwest::Client::builder().build().expect("client");
        let url = ticket_url(tenant.base_url(), &id);
        let choice = http.get(&url).send().await.expect("GET");
        assert_eq!(choice.status(), StatusCode::OK);
        let html = choice.text().await.expect("body");
        assert!(
            html.contains(r#"id="choose-roaming""#) && html.contains(r#"id="choose-platform""#),
            "{html}"
        );
        assert!(
            !html.contains("navigator.credentials"),
            "no ceremony before a choice"
        );
        let platform = http
            .get(format!("{url}&kind=platform"))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("body");
        assert!(platform.contains("Set up this device"), "{platform}");
        assert!(platform.contains(r#"name="kind" value="platform""#));
        assert!(platform.contains(r#""authenticatorAttachment":"platform""#));
        tenant.shutdown().await;
    }
}
