//! The browser's SSO session cookie, `GET /userinfo`, `GET /v2/logout` and `GET /oidc/logout`.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::PageError;
use crate::pages::{escape, layout};

use super::tokens::userinfo_audience;
use super::{BrowserSession, SESSION_TTL_SECONDS};

/// Name of the SSO session cookie (Auth0 uses the same name).
pub const SESSION_COOKIE: &str = "auth0";

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The live SSO session of this request, with its cookie value.
pub fn current(state: &AppState, headers: &HeaderMap) -> Option<(String, BrowserSession)> {
    let value = cookie(headers, SESSION_COOKIE)?;
    let session = state.oidc.session(&value, state.clock.unix())?;
    Some((value, session))
}

/// A `Set-Cookie` value that stores session cookie `value`.
pub fn set_cookie(value: &str) -> HeaderValue {
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_TTL_SECONDS}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A `Set-Cookie` value that deletes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("auth0=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// A `302 Found` to `location`, as Auth0 redirects.
pub fn found(location: &str, cookie: Option<HeaderValue>) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = cookie {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

fn unauthorized() -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

#[derive(Debug, Deserialize)]
struct UserinfoClaims {
    sub: String,
    #[serde(default)]
    scope: Option<String>,
}

/// `GET /userinfo` (and `POST`): the profile of the access token's user, for tokens whose `aud` includes
/// `<base>/userinfo`; 401 otherwise.
pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
    else {
        return unauthorized();
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    validation.set_issuer(&[state.issuer()]);
    validation.set_audience(&[userinfo_audience(&state)]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let Ok(claims) = state
        .keys
        .verify::<UserinfoClaims>(&token, &validation, state.clock.unix())
    else {
        return unauthorized();
    };
    let Some(user) = state.store.read(|s| s.user(&claims.sub).cloned()) else {
        return unauthorized();
    };
    let scopes: Vec<&str> = claims
        .scope
        .as_deref()
        .unwrap_or_default()
        .split_ascii_whitespace()
        .collect();
    let mut body = Map::new();
    body.insert("sub".into(), json!(user.user_id));
    if scopes.contains(&"profile") {
        body.insert(
            "nickname".into(),
            json!(user.email.split('@').next().unwrap_or_default()),
        );
        body.insert("name".into(), json!(user.name));
    }
    if scopes.contains(&"email") {
        body.insert("email".into(), json!(user.email));
        body.insert("email_verified".into(), json!(true));
    }
    axum::Json(Value::Object(body)).into_response()
}

/// Query of `GET /v2/logout`.
#[derive(Debug, Deserialize)]
pub struct LogoutQuery {
    #[serde(rename = "returnTo")]
    return_to: Option<String>,
    client_id: Option<String>,
}

/// `GET /v2/logout`: ends the SSO session, then redirects to `returnTo` when it is an allowed logout URL (of
/// `client_id`, or of any application when no client is named), or shows a signed-out page.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LogoutQuery>,
) -> Response {
    if let Some(return_to) = query.return_to.as_deref().filter(|r| !r.is_empty()) {
        let allowed = state.store.read(|s| match query.client_id.as_deref() {
            Some(id) => s
                .client(id)
                .is_some_and(|c| c.allowed_logout_urls.iter().any(|u| u == return_to)),
            None => s
                .clients
                .iter()
                .any(|c| c.allowed_logout_urls.iter().any(|u| u == return_to)),
        });
        if !allowed {
            return PageError::bad_request(
                "Invalid logout URL",
                "The \"returnTo\" querystring parameter is not defined as a valid URL in \"Allowed Logout URLs\".",
            )
            .into_response();
        }
        end_session(&state, &headers);
        return found(return_to, Some(clear_cookie()));
    }
    end_session(&state, &headers);
    signed_out_page()
}

/// Query of `GET /oidc/logout` (OpenID Connect RP-initiated logout).
#[derive(Debug, Deserialize)]
pub struct OidcLogoutQuery {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    client_id: Option<String>,
    state: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HintClaims {
    aud: String,
}

/// `GET /oidc/logout`: ends the SSO session, then redirects to `post_logout_redirect_uri` (with `state`) when it
/// is an allowed logout URL of the client named by `client_id` or by the `aud` of `id_token_hint`; otherwise
/// shows a signed-out page. An unknown redirect is refused with an error page.
pub async fn oidc_logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<OidcLogoutQuery>,
) -> Response {
    let hinted = query.id_token_hint.as_deref().and_then(|hint| {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[state.issuer()]);
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "aud"]);
        state
            .keys
            .verify::<HintClaims>(hint, &validation, state.clock.unix())
            .ok()
            .map(|c| c.aud)
    });
    let client_id = query.client_id.clone().or(hinted);
    if let Some(target) = query
        .post_logout_redirect_uri
        .as_deref()
        .filter(|r| !r.is_empty())
    {
        let allowed = client_id.as_deref().is_some_and(|id| {
            state.store.read(|s| {
                s.client(id)
                    .is_some_and(|c| c.allowed_logout_urls.iter().any(|u| u == target))
            })
        });
        if !allowed {
            return PageError::bad_request(
                "Invalid logout URL",
                "The \"post_logout_redirect_uri\" parameter is not one of the application's \"Allowed Logout URLs\".",
            )
            .into_response();
        }
        end_session(&state, &headers);
        let location = match query.state.as_deref() {
            Some(client_state) => {
                super::authorize::redirect_with(target, &[("state", client_state)])
            }
            None => target.to_owned(),
        };
        return found(&location, Some(clear_cookie()));
    }
    end_session(&state, &headers);
    signed_out_page()
}

fn signed_out_page() -> Response {
    let mut response = Html(layout(
        "Signed out",
        "<h1>You are signed out</h1><p>You can close this window.</p>",
    ))
    .into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_cookie());
    response
}

fn end_session(state: &AppState, headers: &HeaderMap) {
    if let Some(value) = cookie(headers, SESSION_COOKIE) {
        state.oidc.remove_session(&value);
    }
}

/// An HTML-escaped `<a>` to `href`.
pub fn link(href: &str, text: &str) -> String {
    format!(r#"<a href="{}">{}</a>"#, escape(href), escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; auth0=xyz; auth0_compat=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
