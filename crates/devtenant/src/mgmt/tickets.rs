//! `POST /api/v2/guardian/enrollments/ticket`: a single-use MFA enrollment ticket that expires 5 days later (on the
//! tenant clock), answered as `{ticket_id, ticket_url}` with `ticket_url = <base>/guardian/enroll?ticket=<id>`.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use companion_protocol::auth0::{EnrollmentTicket, EnrollmentTicketRequest, TicketFactor};
use rand::Rng as _;
use rand::distributions::Alphanumeric;

use super::auth::Caller;
use super::body;
use super::methods::inexistent_user;
use crate::AppState;
use crate::error::MgmtError;
use crate::store::Ticket;

/// `create:guardian_enrollment_tickets`.
pub const CREATE: &str = "create:guardian_enrollment_tickets";

/// How long a ticket lives: "Tickets expire after 5 days and are single-use".
pub const TICKET_LIFETIME_SECONDS: i64 = 5 * 24 * 3600;

/// Prefix of ticket ids, as in Auth0's documented sample (`gten_...`).
pub const TICKET_ID_PREFIX: &str = "gten_";

/// A fresh, unguessable, URL-safe ticket id: `gten_` and 32 random alphanumerics.
pub fn new_ticket_id() -> String {
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("{TICKET_ID_PREFIX}{random}")
}

const FIELDS: [&str; 6] = [
    "user_id",
    "email",
    "send_mail",
    "email_locale",
    "factor",
    "allow_multiple_enrollments",
];

fn parse_request(bytes: &[u8]) -> Result<EnrollmentTicketRequest, MgmtError> {
    let map = body::object(bytes, &FIELDS, &["user_id"])?;
    for key in ["user_id", "email", "email_locale", "factor"] {
        body::string(&map, key)?;
    }
    for key in ["send_mail", "allow_multiple_enrollments"] {
        body::boolean(&map, key)?;
    }
    let request: EnrollmentTicketRequest =
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|_| body::invalid("'Invalid request payload'."))?;
    if let Some(factor) = request.factor.as_ref().filter(|f| !f.is_known()) {
        return Err(body::invalid(&format!(
            "'No enum match for: \"{factor}\"' on property factor."
        )));
    }
    Ok(request)
}

/// Creates a ticket for `request` at Unix second `now` in the store and returns it.
///
/// # Errors
/// 404 `inexistent_user` when the user does not exist.
pub fn create_ticket(
    state: &AppState,
    request: &EnrollmentTicketRequest,
    now: i64,
) -> Result<Ticket, MgmtError> {
    state.store.write(|s| {
        if s.user(&request.user_id).is_none() {
            return Err(inexistent_user());
        }
        let ticket = Ticket {
            ticket_id: new_ticket_id(),
            user_id: request.user_id.clone(),
            factor: request.factor.clone(),
            allow_multiple_enrollments: request.allow_multiple_enrollments.unwrap_or(false),
            created_at: now,
            expires_at: now + TICKET_LIFETIME_SECONDS,
            used_at: None,
        };
        s.tickets.insert(ticket.ticket_id.clone(), ticket.clone());
        Ok(ticket)
    })
}

/// `POST /api/v2/guardian/enrollments/ticket`.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    bytes: Bytes,
) -> Result<Json<EnrollmentTicket>, MgmtError> {
    caller.require(&[CREATE])?;
    let request = parse_request(&bytes)?;
    let ticket = create_ticket(&state, &request, state.clock.unix())?;
    tracing::info!(
        user_id = %ticket.user_id,
        factor = ticket.factor.as_ref().map_or("any", TicketFactor::as_str),
        "enrollment ticket created"
    );
    Ok(Json(EnrollmentTicket {
        ticket_url: crate::enroll::ticket_url(&state.base_url, &ticket.ticket_id),
        ticket_id: ticket.ticket_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_ids_are_url_safe_and_distinct() {
        let a = new_ticket_id();
        let b = new_ticket_id();
        assert_ne!(a, b);
        let random = a.strip_prefix(TICKET_ID_PREFIX).expect("prefix");
        assert_eq!(random.len(), 32);
        assert!(random.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn ticket_requests_follow_the_spec() {
        let ok = parse_request(
            br#"{"user_id":"auth0|1","email":"jon@example.com","factor":"push-notification","allow_multiple_enrollments":true}"#,
        )
        .expect("the recorded request is valid");
        assert_eq!(ok.factor, Some(TicketFactor::PushNotification));
        for bad in [
            r#"{}"#,
            r#"{"user_id":"auth0|1","send_email":true}"#,
            r#"{"user_id":"auth0|1","factor":"oob"}"#,
            r#"{"user_id":5}"#,
            r#"{"user_id":"auth0|1","send_mail":"yes"}"#,
        ] {
            let error = parse_request(bad.as_bytes()).expect_err(bad);
            assert_eq!(error.error_code, Some("invalid_body"), "{bad}");
        }
    }
}
