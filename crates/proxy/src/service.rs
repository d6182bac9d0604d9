//! The authenticator operations behind the routes: list (single flight per user, plus a short freshness window),
//! rename, remove (per-user serialisation and the lockout guard) and enroll. Every upstream call is made for the
//! caller's own user id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use companion_mgmt::{Clock, MgmtClient, MgmtError};
use companion_protocol::api::{
    Authenticator, AuthenticatorList, EnrollmentResponse, EnrollmentType,
};
use companion_protocol::auth0::{AuthenticationMethod, EnrollmentTicketRequest};
use companion_protocol::ids::{MethodId, UserId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::OnceCell;

use crate::error::ApiError;
use crate::policy::{self, StepUp};
use crate::present::{self, AaguidDb};

/// How long an Auth0 enrollment ticket lives.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(5 * 24 * 3600);

/// One read of a user's methods, shared by every list request that joined it, with the rendered answer made once.
/// Dereferences to the methods.
#[derive(Debug)]
pub struct SharedList {
    /// The methods as the Management API listed them.
    pub methods: Vec<AuthenticationMethod>,
    /// The `GET /v1/me/authenticators` body for them, rendered by the first request that needs it.
    body: std::sync::OnceLock<axum::body::Bytes>,
}

impl std::ops::Deref for SharedList {
    type Target = [AuthenticationMethod];

    fn deref(&self) -> &Self::Target {
        &self.methods
    }
}

type Shared = Result<Arc<SharedList>, Arc<MgmtError>>;

/// One user's list read: in flight until the cell is set, then a result with the time it arrived.
type Flight = Arc<OnceCell<(Shared, OffsetDateTime)>>;

/// Flights kept before finished ones are swept whatever the time.
const SWEEP_ABOVE: usize = 1024;

/// The flights by user, and when finished ones were last swept out.
struct Flights {
    by_user: HashMap<String, Flight>,
    swept_at: OffsetDateTime,
}

/// The authenticator operations.
pub struct Authenticators {
    mgmt: MgmtClient,
    aaguids: AaguidDb,
    clock: Arc<dyn Clock>,
    share_window: Duration,
    flights: Mutex<Flights>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    joined_reads: AtomicU64,
}

impl std::fmt::Debug for Authenticators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticators")
            .field("mgmt", &self.mgmt)
            .field("aaguids", &self.aaguids.len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Authenticators {
    /// Operations through `mgmt`, naming providers from `aaguids`. A successful list read is shared with the same
    /// user's reads that start within `share_window` after it arrived (zero: only with reads that overlap it);
    /// `clock` measures that window.
    pub fn new(
        mgmt: MgmtClient,
        aaguids: AaguidDb,
        clock: Arc<dyn Clock>,
        share_window: Duration,
    ) -> Self {
        Self {
            mgmt,
            aaguids,
            clock,
            share_window,
            flights: Mutex::new(Flights {
                by_user: HashMap::new(),
                swept_at: OffsetDateTime::UNIX_EPOCH,
            }),
            locks: Mutex::new(HashMap::new()),
            joined_reads: AtomicU64::new(0),
        }
    }

    /// The Management client.
    pub fn mgmt(&self) -> &MgmtClient {
        &self.mgmt
    }

    /// Users whose list read is held: in flight, or finished and not yet swept out after its window.
    pub fn flights_held(&self) -> usize {
        lock(&self.flights).by_user.len()
    }

    /// List reads that joined another caller's in-flight upstream call.
    pub fn joined_reads(&self) -> u64 {
        self.joined_reads.load(Ordering::Relaxed)
    }

    /// Whether a flight may still be joined at `now`: in flight, or succeeded less than the share window ago.
    fn joinable(&self, flight: &Flight, now: OffsetDateTime) -> bool {
        match flight.get() {
            None => true,
            Some((Err(_), _)) => false,
            Some((Ok(_), arrived)) => {
                // A clock that went backwards ends the window too.
                let age = now - *arrived;
                !age.is_negative() && age < self.share_window
            }
        }
    }

    /// The user's methods. Concurrent calls for the same user share one upstream call, and so do calls that start
    /// within the share window after a successful one arrived. The flight is registered before anything is awaited,
    /// so every caller that arrives while it runs joins it. Changes made through this proxy end the user's window.
    ///
    /// # Errors
    /// [`ApiError`] mapped from the Management failure.
    pub async fn list_shared(&self, user: &UserId) -> Result<Arc<SharedList>, ApiError> {
        let key = user.as_str();
        let now = self.clock.now_utc();
        let (flight, joined) = {
            let mut flights = lock(&self.flights);
            match flights.by_user.get(key) {
                Some(flight) if self.joinable(flight, now) => (flight.clone(), true),
                _ => {
                    // Finished reads past their window are dropped about once per window, so the map holds
                    // the users read recently, not every user ever read (each entry keeps a list and its body).
                    let since_sweep = now - flights.swept_at;
                    if flights.by_user.len() >= SWEEP_ABOVE
                        || since_sweep.is_negative()
                        || since_sweep >= self.share_window
                    {
                        flights
                            .by_user
                            .retain(|_, flight| self.joinable(flight, now));
                        flights.swept_at = now;
                    }
                    let flight = Flight::default();
                    flights.by_user.insert(key.to_owned(), flight.clone());
                    (flight, false)
                }
            }
        };
        if joined {
            self.joined_reads.fetch_add(1, Ordering::Relaxed);
        }
        // If the caller running the call is cancelled, a waiter takes over (`OnceCell` semantics).
        let (result, _) = flight
            .get_or_init(|| async {
                let result = self
                    .mgmt
                    .list_methods(key)
                    .await
                    .map(|methods| {
                        Arc::new(SharedList {
                            methods,
                            body: std::sync::OnceLock::new(),
                        })
                    })
                    .map_err(Arc::new);
                (result, self.clock.now_utc())
            })
            .await
            .clone();
        if result.is_err() || self.share_window.is_zero() {
            self.forget_flight(user, Some(&flight));
        }
        result.map_err(|error| ApiError::from_mgmt(&error))
    }

    /// Drops the user's flight (only `flight` when given), so the next read goes upstream.
    fn forget_flight(&self, user: &UserId, flight: Option<&Flight>) {
        let mut flights = lock(&self.flights);
        if flights
            .by_user
            .get(user.as_str())
            .is_some_and(|current| flight.is_none_or(|f| Arc::ptr_eq(current, f)))
        {
            flights.by_user.remove(user.as_str());
        }
    }

    /// The user's methods read now, never shared (for decisions that must not use an older read).
    ///
    /// # Errors
    /// [`ApiError`] mapped from the Management failure.
    pub async fn list_fresh(&self, user: &UserId) -> Result<Vec<AuthenticationMethod>, ApiError> {
        self.mgmt
            .list_methods(user.as_str())
            .await
            .map_err(|error| ApiError::from_mgmt(&error))
    }

    /// The JSON body of `GET /v1/me/authenticators` for `list`, rendered once per shared read: requests that joined
    /// the same read answer with the same bytes.
    ///
    /// # Errors
    /// [`ApiError::Internal`] if the list cannot be serialised.
    pub fn list_body(&self, list: &SharedList) -> Result<axum::body::Bytes, ApiError> {
        if let Some(body) = list.body.get() {
            return Ok(body.clone());
        }
        let body = present::list_json(&list.methods, &self.aaguids)
            .map(axum::body::Bytes::from)
            .map_err(|e| ApiError::Internal(format!("cannot serialise the list: {e}")))?;
        Ok(list.body.get_or_init(|| body).clone())
    }

    /// The proxy's view of all `methods`.
    pub fn present(&self, methods: &[AuthenticationMethod]) -> AuthenticatorList {
        AuthenticatorList {
            authenticators: methods
                .iter()
                .map(|m| present::authenticator(m, methods, &self.aaguids))
                .collect(),
        }
    }

    async fn user_lock(&self, user: &UserId) -> tokio::sync::OwnedMutexGuard<()> {
        let mutex = {
            let mut locks = lock(&self.locks);
            if locks.len() > 1024 {
                locks.retain(|_, m| Arc::strong_count(m) > 1);
            }
            locks.entry(user.as_str().to_owned()).or_default().clone()
        };
        mutex.lock_owned().await
    }

    /// Renames one of the user's methods. Ownership is checked against the user's own list before the PATCH, and
    /// the PATCH answer must name the same method.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] when the method is not the user's; others mapped from the Management failure.
    pub async fn rename(
        &self,
        user: &UserId,
        id: &MethodId,
        name: &str,
    ) -> Result<Authenticator, ApiError> {
        let methods = self.list_fresh(user).await?;
        let Some(index) = methods.iter().position(|m| m.id == id.as_str()) else {
            return Err(ApiError::NotFound);
        };
        self.forget_flight(user, None);
        let updated = self
            .mgmt
            .rename_method(user.as_str(), id.as_str(), name)
            .await;
        // A read that started during the PATCH may hold the old name.
        self.forget_flight(user, None);
        let updated = updated.map_err(|error| match error {
            MgmtError::Rejected { status: 400, .. } => {
                ApiError::InvalidRequest("the name was not accepted".to_owned())
            }
            other => ApiError::from_mgmt(&other),
        })?;
        if updated.id != id.as_str() {
            return Err(ApiError::Internal(
                "the management api answered a rename with another method".to_owned(),
            ));
        }
        let mut methods = methods;
        methods[index].name = updated.name.or_else(|| Some(name.to_owned()));
        Ok(present::authenticator(
            &methods[index],
            &methods,
            &self.aaguids,
        ))
    }

    /// Removes one of the user's methods after the step-up and lockout checks. Removals of one user are serialised,
    /// and each reads the list afresh, so two concurrent removals cannot both pass the guard.
    ///
    /// # Errors
    /// [`ApiError::StepUpRequired`], [`ApiError::NotFound`], [`ApiError::LastAuthenticator`], or mapped from the
    /// Management failure.
    pub async fn remove(
        &self,
        user: &UserId,
        id: &MethodId,
        step_up: StepUp,
        max_age: Duration,
    ) -> Result<(), ApiError> {
        if step_up != StepUp::Fresh {
            return Err(ApiError::StepUpRequired {
                max_age: max_age.as_secs(),
            });
        }
        let _serialised = self.user_lock(user).await;
        let methods = self.list_fresh(user).await?;
        let Some(target) = methods.iter().find(|m| m.id == id.as_str()) else {
            return Err(ApiError::NotFound);
        };
        if !policy::removable(&methods, target) {
            return Err(ApiError::LastAuthenticator);
        }
        self.forget_flight(user, None);
        let deleted = self
            .mgmt
            .delete_method(user.as_str(), id.as_str())
            .await
            .map_err(|error| ApiError::from_mgmt(&error));
        // A read that started during the DELETE may hold the old list.
        self.forget_flight(user, None);
        deleted
    }

    /// Creates an enrollment ticket for the user. Needs a fresh step-up when the user already has MFA.
    ///
    /// # Errors
    /// [`ApiError::StepUpRequired`] or mapped from the Management failure.
    pub async fn enroll(
        &self,
        user: &UserId,
        kind: EnrollmentType,
        step_up: StepUp,
        max_age: Duration,
        now: OffsetDateTime,
    ) -> Result<EnrollmentResponse, ApiError> {
        if step_up != StepUp::Fresh {
            let list = self.list_shared(user).await?;
            if policy::has_mfa(&list.methods) {
                return Err(ApiError::StepUpRequired {
                    max_age: max_age.as_secs(),
                });
            }
        }
        let request = EnrollmentTicketRequest {
            user_id: user.as_str().to_owned(),
            email: None,
            send_mail: Some(false),
            email_locale: None,
            factor: Some(kind.ticket_factor()),
            allow_multiple_enrollments: Some(true),
        };
        let ticket = self
            .mgmt
            .create_enrollment_ticket(&request)
            .await
            .map_err(|error| ApiError::from_mgmt(&error))?;
        // The app polls the list for the new method next: let the first poll go upstream.
        self.forget_flight(user, None);
        let expires_at = (now + TICKET_LIFETIME)
            .format(&Rfc3339)
            .map_err(|e| ApiError::Internal(format!("cannot format the expiry: {e}")))?;
        Ok(EnrollmentResponse {
            kind,
            ticket_url: ticket.ticket_url,
            expires_at,
        })
    }
}
