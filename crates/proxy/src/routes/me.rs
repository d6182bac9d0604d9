//! `/v1/me/*`: the caller's authenticators and enrollments. Handlers are thin: parse, call
//! [`Authenticators`](crate::service::Authenticators), audit, answer.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use companion_protocol::api::{
    AUTHENTICATORS_PATH, Authenticator, ENROLLMENTS_PATH, EnrollmentRequest, EnrollmentResponse,
    RenameRequest,
};
use companion_protocol::ids::MethodId;

use super::request_id;
use crate::AppState;
use crate::audit::{self, Action};
use crate::auth::AuthenticatedUser;
use crate::error::ApiError;
use crate::policy::{self, StepUp};

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(AUTHENTICATORS_PATH, get(list))
        .route(
            &format!("{AUTHENTICATORS_PATH}/{{id}}"),
            patch(rename).delete(remove),
        )
        .route(ENROLLMENTS_PATH, post(enroll))
}

fn method_id(path: Result<Path<String>, PathRejection>) -> Result<MethodId, ApiError> {
    let Path(raw) =
        path.map_err(|_| ApiError::InvalidId(companion_protocol::ids::IdError::InvalidValue))?;
    Ok(MethodId::parse(&raw)?)
}

fn json_error(rejection: &JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::BodyTooLarge;
    }
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::InvalidRequest(
            "the body must be JSON (Content-Type: application/json)".to_owned(),
        ),
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::InvalidRequest("the body is not valid JSON".to_owned())
        }
        _ => ApiError::InvalidRequest(format!("invalid body: {}", rejection.body_text())),
    }
}

fn step_up(state: &AppState, user: &AuthenticatedUser) -> StepUp {
    policy::step_up(
        user.claims.mfa_time,
        state.clock.now_utc().unix_timestamp(),
        state.settings.step_up_max_age,
        state.settings.clock_leeway,
    )
}

#[tracing::instrument(skip_all, fields(sub = %user.user_id))]
async fn list(
    State(state): State<AppState>,
    user: AuthenticatedUser,
) -> Result<impl IntoResponse, ApiError> {
    let list = state.authenticators.list_shared(&user.user_id).await?;
    let body = state.authenticators.list_body(&list)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    ))
}

#[tracing::instrument(skip_all, fields(sub = %user.user_id))]
async fn rename(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: AuthenticatedUser,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<RenameRequest>, JsonRejection>,
) -> Result<Json<Authenticator>, ApiError> {
    let id = method_id(path)?;
    let Json(request) = body.map_err(|r| json_error(&r))?;
    request
        .validate()
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let result = state
        .authenticators
        .rename(&user.user_id, &id, &request.name)
        .await;
    audit::record(
        &user.user_id,
        Action::Rename,
        Some(&id),
        None,
        &result,
        request_id(&headers),
    );
    result.map(Json)
}

#[tracing::instrument(skip_all, fields(sub = %user.user_id))]
async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: AuthenticatedUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = method_id(path)?;
    let result = state
        .authenticators
        .remove(
            &user.user_id,
            &id,
            step_up(&state, &user),
            state.settings.step_up_max_age,
        )
        .await;
    audit::record(
        &user.user_id,
        Action::Remove,
        Some(&id),
        None,
        &result,
        request_id(&headers),
    );
    result.map(|()| StatusCode::NO_CONTENT)
}

#[tracing::instrument(skip_all, fields(sub = %user.user_id))]
async fn enroll(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: AuthenticatedUser,
    body: Result<Json<EnrollmentRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<EnrollmentResponse>), ApiError> {
    let Json(request) = body.map_err(|r| json_error(&r))?;
    let result = state
        .authenticators
        .enroll(
            &user.user_id,
            request.kind,
            step_up(&state, &user),
            state.settings.step_up_max_age,
            state.clock.now_utc(),
        )
        .await;
    audit::record(
        &user.user_id,
        Action::Enroll,
        None,
        Some(request.kind.as_str()),
        &result,
        request_id(&headers),
    );
    result.map(|response| (StatusCode::CREATED, Json(response)))
}
