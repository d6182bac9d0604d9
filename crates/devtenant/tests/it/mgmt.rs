//! The Management API subset over real HTTP: authentication methods (both list shapes, pagination, get, patch,
//! delete), bearer authentication and scopes, tickets, guardian factors and policies, `x-ratelimit-*` headers and
//! the optional token bucket, the Management call log, and golden-fixture shape checks.

use std::sync::Arc;
use std::time::Duration;

use companion_devtenant::clock::{Clock as _, ManualClock};
use companion_devtenant::config::RateLimit;
use companion_devtenant::world::demo;
use companion_devtenant::{RunningTenant, TenantOptions};
use companion_protocol::auth0::{
    AuthenticationMethod, AuthenticationMethodsResponse, EnrollmentTicket, GuardianFactor,
    GuardianFactorUpdate, MethodType, MgmtErrorBody, TicketFactor,
};
use companion_protocol::fixtures;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::support;

/// Every scope the Management endpoints here need.
pub(crate) const ALL_SCOPES: [&str; 9] = [
    "read:authentication_methods",
    "update:authentication_methods",
    "delete:authentication_methods",
    "create:guardian_enrollment_tickets",
    "read:guardian_factors",
    "update:guardian_factors",
    "read:mfa_policies",
    "update:mfa_policies",
    "read:users",
];

/// Alice's methods in the demo world, in enrollment order.
const ALICE_METHODS: [&str; 4] = [
    "totp|dev_aliceTotp0000001",
    "webauthn-roaming|dev_aliceYubiKey0001",
    "webauthn-platform|dev_aliceMacBook0001",
    "recovery-code|dev_aliceRecovery001",
];

/// Test options: ephemeral port, demo world, dev controls, small (fast) keys.
pub(crate) fn options() -> TenantOptions {
    TenantOptions {
        key_bits: 1024,
        ..TenantOptions::for_test()
    }
}

/// A tenant with [`options`] and a plain HTTP client.
pub(crate) async fn spawn() -> (RunningTenant, reqwest::Client) {
    support::spawn_with(options()).await
}

/// A tenant with [`options`] on a manual clock.
pub(crate) async fn spawn_manual(
    limit: Option<RateLimit>,
) -> (RunningTenant, reqwest::Client, ManualClock) {
    let clock = ManualClock::starting_now();
    let (tenant, http) = support::spawn_with(TenantOptions {
        clock: Arc::new(clock.clone()),
        mgmt_rate_limit: limit,
        ..options()
    })
    .await;
    (tenant, http, clock)
}

/// A Management API token signed by the tenant's current key, with `scopes`, for `audience`, valid `ttl` seconds
/// of tenant time.
pub(crate) fn mint_for(
    tenant: &RunningTenant,
    scopes: &[&str],
    audience: &str,
    ttl: i64,
) -> String {
    let now = tenant.state.clock.unix();
    let claims = json!({
        "iss": tenant.issuer(),
        "sub": "test-m2m@clients",
        "aud": audience,
        "azp": "test-m2m",
        "iat": now,
        "exp": now + ttl,
        "scope": scopes.join(" "),
        "gty": "client-credentials",
    });
    tenant
        .state
        .keys
        .sign("JWT", &claims)
        .expect("signing works")
}

/// A Management API token with `scopes`, valid for an hour.
pub(crate) fn mint(tenant: &RunningTenant, scopes: &[&str]) -> String {
    mint_for(
        tenant,
        scopes,
        &format!("{}/api/v2/", tenant.base_url()),
        3600,
    )
}

/// `s` with `|` percent-encoded, as Auth0's SDKs send ids.
pub(crate) fn enc(s: &str) -> String {
    s.replace('|', "%7C")
}

/// The authentication-methods path of `user_id` (encoded).
pub(crate) fn methods_path(user_id: &str) -> String {
    format!("/api/v2/users/{}/authentication-methods", enc(user_id))
}

/// Sends `method` to `path` on the tenant with an optional bearer token and JSON body.
pub(crate) async fn call(
    http: &reqwest::Client,
    tenant: &RunningTenant,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Response {
    let url = format!("{}{path}", tenant.base_url());
    let mut request = http.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("the tenant answers")
}

/// Asserts `x-ratelimit-limit`, `-remaining` and `-reset` are present and numeric; returns them.
pub(crate) fn ratelimit_headers(response: &Response) -> (u64, u64, i64) {
    let get = |name: &str| {
        response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("{name} on {} {}", response.status(), response.url()))
            .to_str()
            .expect("ascii header")
            .to_owned()
    };
    (
        get("x-ratelimit-limit")
            .parse()
            .expect("limit is an integer"),
        get("x-ratelimit-remaining")
            .parse()
            .expect("remaining is an integer"),
        get("x-ratelimit-reset")
            .parse()
            .expect("reset is epoch seconds"),
    )
}

/// The Management error body of `response`, checked to be Auth0's shape.
pub(crate) async fn error_body(response: Response, status: StatusCode) -> MgmtErrorBody {
    assert_eq!(response.status(), status, "status of {}", response.url());
    let value: Value = response.json().await.expect("a JSON error body");
    let body: MgmtErrorBody =
        serde_json::from_value(value.clone()).expect("Auth0's Management error shape");
    assert_eq!(
        value["statusCode"],
        status.as_u16(),
        "statusCode repeats the status"
    );
    assert_eq!(
        body.error,
        status.canonical_reason().expect("reason"),
        "error is the reason phrase"
    );
    body
}

fn shape(fixture: &str, actual: &Value, optional: &[&str]) {
    let expected: Value = serde_json::from_str(fixture).expect("fixture is JSON");
    let mismatches = fixtures::shape_mismatches(&expected, actual, optional);
    assert!(
        mismatches.is_empty(),
        "shape differs from the recording: {mismatches:?} in {actual}"
    );
}

/// Fields a method may carry beyond the recorded email method.
const METHOD_OPTIONAL: [&str; 17] = [
    "name",
    "email",
    "confirmed",
    "enrolled_at",
    "last_auth_at",
    "aaguid",
    "key_id",
    "public_key",
    "user_agent",
    "phone_number",
    "preferred_authentication_method",
    "authentication_methods",
    "transports",
    "relying_party_identifier",
    "credential_device_type",
    "credential_backed_up",
    "total",
];

#[tokio::test]
async fn lists_alice_in_both_shapes_with_the_proxy_clients_token() {
    let (tenant, http) = spawn().await;
    let token = support::mgmt_token(&tenant, &http).await;
    let path = methods_path(demo::ALICE_USER_ID);

    let bare = call(&http, &tenant, Method::GET, &path, Some(&token), None).await;
    assert_eq!(bare.status(), StatusCode::OK);
    let value: Value = bare.json().await.expect("json");
    assert!(
        value.is_array(),
        "include_totals=false answers a bare array"
    );
    let methods: Vec<AuthenticationMethod> =
        serde_json::from_value(value.clone()).expect("protocol type");
    let ids: Vec<&str> = methods.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ALICE_METHODS, "enrollment order");
    assert!(
        methods.iter().all(|m| m.confirmed == Some(true)),
        "GET shows confirmed"
    );
    assert_eq!(methods[1].kind, MethodType::WebauthnRoaming);
    assert_eq!(methods[1].name.as_deref(), Some("YubiKey 5C"));
    for item in value.as_array().expect("array") {
        shape(fixtures::MGMT_METHOD_GET_EMAIL, item, &METHOD_OPTIONAL);
    }

    let paged = call(
        &http,
        &tenant,
        Method::GET,
        &format!("{path}?include_totals=true"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(paged.status(), StatusCode::OK);
    let value: Value = paged.json().await.expect("json");
    shape(fixtures::MGMT_METHODS_LIST_PAGED, &value, &METHOD_OPTIONAL);
    assert_eq!(
        (
            value["start"].as_u64(),
            value["limit"].as_u64(),
            value["total"].as_u64()
        ),
        (Some(0), Some(50), Some(4))
    );
    let parsed: AuthenticationMethodsResponse =
        serde_json::from_value(value).expect("protocol type");
    assert_eq!(parsed.into_methods().len(), 4);

    // Bob has no methods: Auth0 omits `total` (recorded byte for byte).
    let empty = call(
        &http,
        &tenant,
        Method::GET,
        &format!("{}?include_totals=true", methods_path(demo::BOB_USER_ID)),
        Some(&token),
        None,
    )
    .await;
    let value: Value = empty.json().await.expect("json");
    let recorded: Value =
        serde_json::from_str(fixtures::MGMT_METHODS_LIST_PAGED_EMPTY).expect("fixture");
    assert_eq!(
        value, recorded,
        "the empty paged list is exactly the recording"
    );
    tenant.shutdown().await;
}

#[tokio::test]
async fn paginates_with_page_and_per_page_and_refuses_bad_queries() {
    let (tenant, http) = spawn().await;
    let token = mint(&tenant, &ALL_SCOPES);
    let path = methods_path(demo::ALICE_USER_ID);
    let page = |query: &'static str| {
        let (http, tenant, token, path) = (&http, &tenant, &token, &path);
        async move {
            let response = call(
                http,
                tenant,
                Method::GET,
                &format!("{path}?{query}"),
                Some(token),
                None,
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK, "{query}");
            response.json::<Value>().await.expect("json")
        }
    };
    let first = page("per_page=3&page=0&include_totals=true").await;
    assert_eq!(first["authenticators"].as_array().expect("array").len(), 3);
    assert_eq!(
        (
            first["start"].as_u64(),
            first["limit"].as_u64(),
            first["total"].as_u64()
        ),
        (Some(0), Some(3), Some(4))
    );
    let second = page("per_page=3&page=1&include_totals=true").await;
    let items = second["authenticators"].as_array().expect("array");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], ALICE_METHODS[3]);
    assert_eq!(
        (second["start"].as_u64(), second["total"].as_u64()),
        (Some(3), Some(4))
    );
    let bare = page("per_page=2&page=1").await;
    let ids: Vec<&str> = bare
        .as_array()
        .expect("bare array")
        .iter()
        .map(|m| m["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, &ALICE_METHODS[2..4], "the bare shape is paginated too");
    assert_eq!(page("per_page=0").await, json!([]), "per_page=0 is allowed");
    let beyond = page("page=7&include_totals=true").await;
    assert_eq!(beyond["authenticators"], json!([]));
    assert_eq!(
        beyond["total"], 4,
        "total counts every method even past the end"
    );
    assert_eq!(
        page("include_totals=false&per_page=100")
            .await
            .as_array()
            .map(Vec::len),
        Some(4)
    );

    for bad in [
        "page=-1",
        "per_page=101",
        "per_page=ten",
        "include_totals=maybe",
        "page=0.5",
    ] {
        let response = call(
            &http,
            &tenant,
            Method::GET,
            &format!("{path}?{bad}"),
            Some(&token),
            None,
        )
        .await;
        let body = error_body(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(
            body.error_code.as_deref(),
            Some("invalid_query_string"),
            "{bad}"
        );
    }
    tenant.shutdown().await;
}

#[tokio::test]
async fn gets_one_method_by_encoded_or_literal_id_and_answers_404s() {
    let (tenant, http) = spawn().await;
    let token = mint(&tenant, &ALL_SCOPES);
    let base = methods_path(demo::ALICE_USER_ID);
    let encoded = format!("{base}/{}", enc(ALICE_METHODS[1]));
    let response = call(&http, &tenant, Method::GET, &encoded, Some(&token), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let method: AuthenticationMethod = response.json().await.expect("protocol type");
    assert_eq!(method.id, ALICE_METHODS[1]);
    assert_eq!(method.confirmed, Some(true));
    assert_eq!(
        method.aaguid.as_deref(),
        Some("cb69481e-8ff7-4039-93ec-0a2729a154a8")
    );

    let literal = format!(
        "/api/v2/users/{}/authentication-methods/{}",
        demo::ALICE_USER_ID,
        ALICE_METHODS[0]
    );
    let response = call(&http, &tenant, Method::GET, &literal, Some(&token), None).await;
    assert_eq!(response.status(), StatusCode::OK, "a literal | works too");
    let method: AuthenticationMethod = response.json().await.expect("protocol type");
    assert_eq!(method.kind, MethodType::Totp);

    let unknown_user = call(
        &http,
        &tenant,
        Method::GET,
        &methods_path("auth0|nobody"),
        Some(&token),
        None,
    )
    .await;
    let value: Value = {
        assert_eq!(unknown_user.status(), StatusCode::NOT_FOUND);
        ratelimit_headers(&unknown_user);
        unknown_user.json().await.expect("json")
    };
    let recorded: Value =
        serde_json::from_str(fixtures::MGMT_ERROR_INEXISTENT_USER).expect("fixture");
    assert_eq!(value, recorded, "Auth0's recorded 404 for an unknown user");

    let unknown_method = call(
        &http,
        &tenant,
        Method::GET,
        &format!("{base}/{}", enc("totp|dev_doesNotExist00")),
        Some(&token),
        None,
    )
    .await;
    let body = error_body(unknown_method, StatusCode::NOT_FOUND).await;
    assert_eq!(
        body.error_code.as_deref(),
        Some("authentication_method_not_found")
    );

    // An encoded slash stays inside its segment: it names no method and never reaches another route.
    for sneaky in [
        format!(
            "{base}/{}%2F..%2F..%2Fguardian%2Ffactors",
            enc(ALICE_METHODS[0])
        ),
        format!("{base}/..%2F..%2F..%2Fguardian%2Ffactors"),
    ] {
        let response = call(&http, &tenant, Method::GET, &sneaky, Some(&token), None).await;
        let body = error_body(response, StatusCode::NOT_FOUND).await;
        assert_eq!(
            body.error_code.as_deref(),
            Some("authentication_method_not_found"),
            "{sneaky}"
        );
    }
    let slash_user = call(
        &http,
        &tenant,
        Method::GET,
        &format!(
            "/api/v2/users/{}%2F..%2Fx/authentication-methods",
            enc(demo::ALICE_USER_ID)
        ),
        Some(&token),
        None,
    )
    .await;
    let body = error_body(slash_user, StatusCode::NOT_FOUND).await;
    assert_eq!(body.error_code.as_deref(), Some("inexistent_user"));

    let no_route = call(
        &http,
        &tenant,
        Method::GET,
        "/api/v2/users",
        Some(&token),
        None,
    )
    .await;
    let body = error_body(no_route, StatusCode::NOT_FOUND).await;
    assert_eq!(body.message, "Not Found");
    tenant.shutdown().await;
}

#[tokio::test]
async fn patches_the_name_only_and_answers_without_confirmed() {
    let (tenant, http) = spawn().await;
    let token = mint(&tenant, &ALL_SCOPES);
    let path = format!(
        "{}/{}",
        methods_path(demo::ALICE_USER_ID),
        enc(ALICE_METHODS[1])
    );

    let response = call(
        &http,
        &tenant,
        Method::PATCH,
        &path,
        Some(&token),
        Some(json!({"name": "Work key"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    ratelimit_headers(&response);
    let value: Value = response.json().await.expect("json");
    assert!(
        value.get("confirmed").is_none(),
        "PATCH answers without confirmed, as recorded: {value}"
    );
    assert_eq!(value["name"], "Work key");
    assert_eq!(value["id"], ALICE_METHODS[1]);
    let _: AuthenticationMethod = serde_json::from_value(value).expect("protocol type");
    let after: AuthenticationMethod = call(&http, &tenant, Method::GET, &path, Some(&token), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        after.name.as_deref(),
        Some("Work key"),
        "the new name is stored"
    );
    assert_eq!(after.confirmed, Some(true), "GET still shows confirmed");

    let exactly_20 = call(
        &http,
        &tenant,
        Method::PATCH,
        &path,
        Some(&token),
        Some(json!({"name": "x".repeat(20)})),
    )
    .await;
    assert_eq!(
        exactly_20.status(),
        StatusCode::OK,
        "20 characters are allowed"
    );
    let too_long = call(
        &http,
        &tenant,
        Method::PATCH,
        &path,
        Some(&token),
        Some(json!({"name": "é".repeat(21)})),
    )
    .await;
    let body = error_body(too_long, StatusCode::BAD_REQUEST).await;
    assert_eq!(body.error_code.as_deref(), Some("invalid_body"));
    assert!(body.message.contains("maximum 20"), "{}", body.message);
    let unknown = call(
        &http,
        &tenant,
        Method::PATCH,
        &path,
        Some(&token),
        Some(json!({"name": "ok", "confirmed": false})),
    )
    .await;
    let body = error_body(unknown, StatusCode::BAD_REQUEST).await;
    assert_eq!(body.error_code.as_deref(), Some("invalid_body"));
    assert!(
        body.message.contains("confirmed"),
        "names the unknown field: {}",
        body.message
    );
    let not_json = http
        .patch(format!("{}{path}", tenant.base_url()))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{name:")
        .send()
        .await
        .expect("send");
    let body = error_body(not_json, StatusCode::BAD_REQUEST).await;
    assert_eq!(body.error_code.as_deref(), Some("invalid_body"));

    let missing = call(
        &http,
        &tenant,
        Method::PATCH,
        &format!(
            "{}/{}",
            methods_path(demo::ALICE_USER_ID),
            enc("totp|dev_gone")
        ),
        Some(&token),
        Some(json!({"name": "x"})),
    )
    .await;
    error_body(missing, StatusCode::NOT_FOUND).await;
    tenant.shutdown().await;
}

#[tokio::test]
async fn masks_email_and_phone_like_the_recordings() {
    let (tenant, http) = spawn().await;
    let token = mint(&tenant, &ALL_SCOPES);
    let recorded_email: AuthenticationMethod =
        serde_json::from_str(fixtures::MGMT_METHOD_GET_EMAIL).expect("fixture");
    let recorded_phone: AuthenticationMethod =
        serde_json::from_str(fixtures::MGMT_METHOD_GET_PHONE).expect("fixture");
    tenant.state.store.write(|s| {
        let bob = s.user_mut(demo::BOB_USER_ID).expect("bob");
        for (method, email, phone) in [
            (recorded_email.clone(), Some("chuck334@example.com"), None),
            (recorded_phone.clone(), None, Some("+1 212 555 5044")),
        ] {
            let mut method = method;
            method.email = email.map(str::to_owned);
            method.phone_number = phone.map(str::to_owned);
            bob.methods.push(companion_devtenant::store::StoredMethod {
                method,
                secret: None,
            });
        }
    });
    let list: Vec<Value> = call(
        &http,
        &tenant,
        Method::GET,
        &methods_path(demo::BOB_USER_ID),
        Some(&token),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    let recorded_email_json: Value =
        serde_json::from_str(fixtures::MGMT_METHOD_GET_EMAIL).expect("fixture");
    let recorded_phone_json: Value =
        serde_json::from_str(fixtures::MGMT_METHOD_GET_PHONE).expect("fixture");
    assert_eq!(
        list[0], recorded_email_json,
        "the stored email method is served exactly as recorded"
    );
    assert_eq!(
        list[1]["phone_number"], "XXXXXXXXXXX5044",
        "phone masked to its last four digits"
    );
    assert_eq!(list[1], recorded_phone_json);

    let patched: Value = call(
        &http,
        &tenant,
        Method::PATCH,
        &format!(
            "{}/{}",
            methods_path(demo::BOB_USER_ID),
            enc(&recorded_email.id)
        ),
        Some(&token),
        Some(json!({"name": "Test2"})),
    )
    .await
    .json()
    .await
    .expect("json");
    let recorded_patch: Value =
        serde_json::from_str(fixtures::MGMT_METHOD_PATCH_EMAIL).expect("fixture");
    assert_eq!(
        patched, recorded_patch,
        "PATCH answers exactly like the recording"
    );
    let stored = tenant.state.store.read(|s| {
        s.user(demo::BOB_USER_ID).expect("bob").methods[0]
            .method
            .email
            .clone()
    });
    assert_eq!(
        stored.as_deref(),
        Some("chuck334@example.com"),
        "masking is applied when served, not stored"
    );
    tenant.shutdown().await;
}

#[tokio::test]
async fn deletes_one_method_then_all_with_empty_204s() {
    let (tenant, http) = spawn().await;
    let token = support::mgmt_token(&tenant, &http).await;
    let base = methods_path(demo::ALICE_USER_ID);
    let one = format!("{base}/{}", enc(ALICE_METHODS[1]));
    let response = call(&http, &tenant, Method::DELETE, &one, Some(&token), None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    ratelimit_headers(&response);
    assert!(
        response.bytes().await.expect("body").is_empty(),
        "204 has an empty body"
    );
    let again = call(&http, &tenant, Method::DELETE, &one, Some(&token), None).await;
    error_body(again, StatusCode::NOT_FOUND).await;
    let left: Vec<AuthenticationMethod> =
        call(&http, &tenant, Method::GET, &base, Some(&token), None)
            .await
            .json()
            .await
            .expect("json");
    let ids: Vec<&str> = left.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, [ALICE_METHODS[0], ALICE_METHODS[2], ALICE_METHODS[3]]);

    let all = call(&http, &tenant, Method::DELETE, &base, Some(&token), None).await;
    assert_eq!(all.status(), StatusCode::NO_CONTENT);
    assert!(all.bytes().await.expect("body").is_empty());
    let left: Value = call(&http, &tenant, Method::GET, &base, Some(&token), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(left, json!([]));
    let nobody = call(
        &http,
        &tenant,
        Method::DELETE,
        &methods_path("auth0|nobody"),
        Some(&token),
        None,
    )
    .await;
    let body = error_body(nobody, StatusCode::NOT_FOUND).await;
    assert_eq!(body.error_code.as_deref(), Some("inexistent_user"));
    tenant.shutdown().await;
}

#[tokio::test]
async fn answers_401_for_missing_invalid_foreign_and_expired_tokens() {
    let (tenant, http, clock) = spawn_manual(None).await;
    let path = methods_path(demo::ALICE_USER_ID);

    let missing = call(&http, &tenant, Method::GET, &path, None, None).await;
    ratelimit_headers(&missing);
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let value: Value = missing.json().await.expect("json");
    assert_eq!(
        value,
        json!({"statusCode": 401, "error": "Unauthorized", "message": "Missing authentication"})
    );

    let garbage = call(&http, &tenant, Method::GET, &path, Some("not-a-jwt"), None).await;
    ratelimit_headers(&garbage);
    assert_eq!(
        error_body(garbage, StatusCode::UNAUTHORIZED).await.message,
        "Invalid token"
    );

    let basic = http
        .get(format!("{}{path}", tenant.base_url()))
        .basic_auth("companion-proxy", Some("demo-proxy-secret"))
        .send()
        .await
        .expect("send");
    error_body(basic, StatusCode::UNAUTHORIZED).await;

    // A user's token for the proxy API is not a Management token.
    let proxy_api = mint_for(&tenant, &ALL_SCOPES, demo::API_AUDIENCE, 3600);
    let response = call(&http, &tenant, Method::GET, &path, Some(&proxy_api), None).await;
    assert_eq!(
        error_body(response, StatusCode::UNAUTHORIZED).await.message,
        "Invalid token"
    );

    // Signed by a key this tenant never published.
    let other = companion_devtenant::keys::SigningKeys::generate(1024, 0).expect("keys");
    let now = clock.unix();
    let forged = other
        .sign(
            "JWT",
            &json!({"iss": tenant.issuer(), "sub": "x@clients", "aud": format!("{}/api/v2/", tenant.base_url()),
                    "iat": now, "exp": now + 3600, "scope": ALL_SCOPES.join(" ")}),
        )
        .expect("sign");
    let response = call(&http, &tenant, Method::GET, &path, Some(&forged), None).await;
    assert_eq!(
        error_body(response, StatusCode::UNAUTHORIZED).await.message,
        "Invalid token"
    );

    // Algorithm confusion: HS256 with the current kid is refused.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(tenant.state.keys.current_kid());
    let hs256 = jsonwebtoken::encode(
        &header,
        &json!({"iss": tenant.issuer(), "sub": "x@clients", "aud": format!("{}/api/v2/", tenant.base_url()),
                "iat": now, "exp": now + 3600, "scope": ALL_SCOPES.join(" ")}),
        &jsonwebtoken::EncodingKey::from_secret(b"guessable"),
    )
    .expect("encode");
    let response = call(&http, &tenant, Method::GET, &path, Some(&hs256), None).await;
    assert_eq!(
        error_body(response, StatusCode::UNAUTHORIZED).await.message,
        "Invalid token"
    );

    // Another issuer is refused; an `aud` array containing the Management audience is accepted.
    let now = clock.unix();
    let claims = |iss: String, aud: Value| {
        json!({"iss": iss, "sub": "x@clients", "aud": aud, "iat": now, "exp": now + 3600,
               "scope": ALL_SCOPES.join(" ")})
    };
    let mgmt_aud = format!("{}/api/v2/", tenant.base_url());
    let foreign_iss = tenant
        .state
        .keys
        .sign(
            "JWT",
            &claims("https://other.example/".to_owned(), json!(mgmt_aud)),
        )
        .expect("sign");
    let response = call(&http, &tenant, Method::GET, &path, Some(&foreign_iss), None).await;
    assert_eq!(
        error_body(response, StatusCode::UNAUTHORIZED).await.message,
        "Invalid token"
    );
    let array_aud = tenant
        .state
        .keys
        .sign(
            "JWT",
            &claims(
                tenant.issuer(),
                json!([mgmt_aud, format!("{}/userinfo", tenant.base_url())]),
            ),
        )
        .expect("sign");
    let response = call(&http, &tenant, Method::GET, &path, Some(&array_aud), None).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "aud may be an array containing the audience"
    );

    // Expiry follows the tenant clock.
    let short = mint_for(
        &tenant,
        &ALL_SCOPES,
        &format!("{}/api/v2/", tenant.base_url()),
        60,
    );
    let fresh = call(&http, &tenant, Method::GET, &path, Some(&short), None).await;
    assert_eq!(fresh.status(), StatusCode::OK);
    clock.advance(Duration::from_secs(61));
    let expired = call(&http, &tenant, Method::GET, &path, Some(&short), None).await;
    ratelimit_headers(&expired);
    assert_eq!(
        error_body(expired, StatusCode::UNAUTHORIZED).await.message,
        "Expired token"
    );
    tenant.shutdown().await;
}

#[tokio::test]
async fn answers_403_insufficient_scope_for_minted_and_granted_tokens() {
    let (tenant, http) = spawn().await;
    let path = methods_path(demo::ALICE_USER_ID);
    let delete_only = mint(&tenant, &["delete:authentication_methods"]);
    let response = call(&http, &tenant, Method::GET, &path, Some(&delete_only), None).await;
    ratelimit_headers(&response);
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let value: Value = response.json().await.expect("json");
    assert_eq!(
        value,
        json!({"statusCode": 403, "error": "Forbidden",
               "message": "Insufficient scope, expected any of: read:authentication_methods",
               "errorCode": "insufficient_scope"})
    );
    shape(fixtures::MGMT_ERROR_INSUFFICIENT_SCOPE, &value, &[]);

    let read_only = mint(&tenant, &["read:authentication_methods"]);
    let cases = [
        (
            Method::DELETE,
            format!("{path}/{}", enc(ALICE_METHODS[0])),
            None,
            "delete:authentication_methods",
        ),
        (
            Method::DELETE,
            path.clone(),
            None,
            "delete:authentication_methods",
        ),
        (
            Method::PATCH,
            format!("{path}/{}", enc(ALICE_METHODS[0])),
            Some(json!({"name": "x"})),
            "update:authentication_methods",
        ),
        (
            Method::POST,
            "/api/v2/guardian/enrollments/ticket".to_owned(),
            Some(json!({"user_id": demo::ALICE_USER_ID})),
            "create:guardian_enrollment_tickets",
        ),
        (
            Method::GET,
            "/api/v2/guardian/factors".to_owned(),
            None,
            "read:guardian_factors",
        ),
        (
            Method::PUT,
            "/api/v2/guardian/factors/otp".to_owned(),
            Some(json!({"enabled": true})),
            "update:guardian_factors",
        ),
        (
            Method::GET,
            "/api/v2/guardian/policies".to_owned(),
            None,
            "read:mfa_policies",
        ),
        (
            Method::PUT,
            "/api/v2/guardian/policies".to_owned(),
            Some(json!([])),
            "update:mfa_policies",
        ),
    ];
    for (method, path, body, scope) in cases {
        let response = call(
            &http,
            &tenant,
            method.clone(),
            &path,
            Some(&read_only),
            body,
        )
        .await;
        let body = error_body(response, StatusCode::FORBIDDEN).await;
        assert_eq!(
            body.message,
            format!("Insufficient scope, expected any of: {scope}"),
            "{method} {path}"
        );
        assert_eq!(body.error_code.as_deref(), Some("insufficient_scope"));
    }
    assert_eq!(
        tenant
            .state
            .store
            .read(|s| s.user(demo::ALICE_USER_ID).expect("alice").methods.len()),
        4,
        "nothing changed"
    );

    // The proxy's real client grant has exactly the §12 scopes: no guardian factor access.
    let granted = support::mgmt_token(&tenant, &http).await;
    let response = call(
        &http,
        &tenant,
        Method::GET,
        "/api/v2/guardian/factors",
        Some(&granted),
        None,
    )
    .await;
    let body = error_body(response, StatusCode::FORBIDDEN).await;
    assert_eq!(
        body.message,
        "Insufficient scope, expected any of: read:guardian_factors"
    );
    tenant.shutdown().await;
}

#[tokio::test]
async fn creates_single_use_tickets_that_expire_in_five_days() {
    let (tenant, http, clock) = spawn_manual(None).await;
    let token = support::mgmt_token(&tenant, &http).await;
    let mut request: Value =
        serde_json::from_str(fixtures::GUARDIAN_TICKET_REQUEST).expect("fixture");
    request["user_id"] = json!(demo::ALICE_USER_ID);
    request["factor"] = json!("webauthn-roaming");
    let response = call(
        &http,
        &tenant,
        Method::POST,
        "/api/v2/guardian/enrollments/ticket",
        Some(&token),
        Some(request),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    ratelimit_headers(&response);
    let value: Value = response.json().await.expect("json");
    shape(fixtures::GUARDIAN_TICKET_RESPONSE, &value, &[]);
    let ticket: EnrollmentTicket = serde_json::from_value(value).expect("protocol type");
    assert!(
        ticket.ticket_id.starts_with("gten_") && ticket.ticket_id.len() == 37,
        "{}",
        ticket.ticket_id
    );
    assert_eq!(
        ticket.ticket_url,
        format!(
            "{}/guardian/enroll?ticket={}",
            tenant.base_url(),
            ticket.ticket_id
        )
    );
    let stored = tenant
        .state
        .store
        .read(|s| s.tickets.get(&ticket.ticket_id).cloned())
        .expect("the ticket is stored");
    assert_eq!(stored.user_id, demo::ALICE_USER_ID);
    assert_eq!(stored.factor, Some(TicketFactor::WebauthnRoaming));
    assert!(stored.allow_multiple_enrollments);
    assert_eq!(
        stored.created_at,
        clock.unix(),
        "created on the tenant clock"
    );
    assert_eq!(
        stored.expires_at - stored.created_at,
        5 * 24 * 3600,
        "5 days"
    );
    assert_eq!(stored.used_at, None);

    let page = http.get(&ticket.ticket_url).send().await.expect("page");
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the ticket URL opens the enrollment page"
    );

    let platform = call(
        &http,
        &tenant,
        Method::POST,
        "/api/v2/guardian/enrollments/ticket",
        Some(&token),
        Some(json!({"user_id": demo::BOB_USER_ID, "factor": "webauthn-platform"})),
    )
    .await;
    let second: EnrollmentTicket = platform.json().await.expect("json");
    assert_ne!(second.ticket_id, ticket.ticket_id, "ids are random");
    let stored = tenant
        .state
        .store
        .read(|s| s.tickets[&second.ticket_id].clone());
    assert_eq!(stored.factor, Some(TicketFactor::WebauthnPlatform));
    assert!(!stored.allow_multiple_enrollments, "defaults to false");

    let nobody = call(
        &http,
        &tenant,
        Method::POST,
        "/api/v2/guardian/enrollments/ticket",
        Some(&token),
        Some(json!({"user_id": "auth0|nobody"})),
    )
    .await;
    let body = error_body(nobody, StatusCode::NOT_FOUND).await;
    assert_eq!(body.error_code.as_deref(), Some("inexistent_user"));
    for bad in [
        json!({"user_id": demo::ALICE_USER_ID, "send_email": true}),
        json!({"factor": "webauthn-roaming"}),
        json!({"user_id": demo::ALICE_USER_ID, "factor": "oob"}),
    ] {
        let response = call(
            &http,
            &tenant,
            Method::POST,
            "/api/v2/guardian/enrollments/ticket",
            Some(&token),
            Some(bad.clone()),
        )
        .await;
        let body = error_body(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(body.error_code.as_deref(), Some("invalid_body"), "{bad}");
    }
    assert_eq!(
        tenant.state.store.read(|s| s.tickets.len()),
        2,
        "refused requests create nothing"
    );
    tenant.shutdown().await;
}

#[tokio::test]
async fn guardian_factors_and_policies_follow_the_recordings() {
    let (tenant, http) = spawn().await;
    let token = mint(&tenant, &ALL_SCOPES);
    let response = call(
        &http,
        &tenant,
        Method::GET,
        "/api/v2/guardian/factors",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let value: Value = response.json().await.expect("json");
    shape(fixtures::GUARDIAN_FACTORS_LIST, &value, &[]);
    let factors: Vec<GuardianFactor> = serde_json::from_value(value).expect("protocol type");
    let recorded: Vec<GuardianFactor> =
        serde_json::from_str(fixtures::GUARDIAN_FACTORS_LIST).expect("fixture");
    let names = |list: &[GuardianFactor]| list.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&factors), names(&recorded), "Auth0's order");
    let enabled: Vec<&str> = factors
        .iter()
        .filter(|f| f.enabled)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(
        enabled,
        [
            "otp",
            "webauthn-roaming",
            "webauthn-platform",
            "recovery-code"
        ],
        "demo world"
    );

    let put = call(
        &http,
        &tenant,
        Method::PUT,
        "/api/v2/guardian/factors/webauthn-roaming",
        Some(&token),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(put.status(), StatusCode::OK);
    let value: Value = put.json().await.expect("json");
    shape(fixtures::GUARDIAN_FACTOR_PUT_RESPONSE, &value, &[]);
    assert_eq!(
        serde_json::from_value::<GuardianFactorUpdate>(value).expect("type"),
        GuardianFactorUpdate { enabled: false }
    );
    let factors: Vec<GuardianFactor> = call(
        &http,
        &tenant,
        Method::GET,
        "/api/v2/guardian/factors",
        Some(&token),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    assert!(
        !factors
            .iter()
            .any(|f| f.name == "webauthn-roaming" && f.enabled),
        "disabled now"
    );

    for (path, body) in [
        ("/api/v2/guardian/factors/fax", json!({"enabled": true})),
        ("/api/v2/guardian/factors/otp", json!({"enabled": "yes"})),
        ("/api/v2/guardian/factors/otp", json!({})),
        (
            "/api/v2/guardian/factors/otp",
            json!({"enabled": true, "x": 1}),
        ),
    ] {
        let response = call(
            &http,
            &tenant,
            Method::PUT,
            path,
            Some(&token),
            Some(body.clone()),
        )
        .await;
        error_body(response, StatusCode::BAD_REQUEST).await;
    }

    let policies = call(
        &http,
        &tenant,
        Method::GET,
        "/api/v2/guardian/policies",
        Some(&token),
        None,
    )
    .await;
    let value: Value = policies.json().await.expect("json");
    assert_eq!(
        value,
        serde_json::from_str::<Value>(fixtures::GUARDIAN_POLICIES_EMPTY).expect("fixture")
    );
    let all_apps: Value =
        serde_json::from_str(fixtures::GUARDIAN_POLICIES_ALL_APPLICATIONS).expect("fixture");
    let put = call(
        &http,
        &tenant,
        Method::PUT,
        "/api/v2/guardian/policies",
        Some(&token),
        Some(all_apps.clone()),
    )
    .await;
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(put.json::<Value>().await.expect("json"), all_apps);
    let value: Value = call(
        &http,
        &tenant,
        Method::GET,
        "/api/v2/guardian/policies",
        Some(&token),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(value, all_apps, "stored");
    assert_eq!(
        tenant.state.store.read(|s| s.settings.mfa_policies.clone()),
        ["all-applications"]
    );
    for bad in [json!(["sometimes"]), json!({"policies": []}), json!([1])] {
        let response = call(
            &http,
            &tenant,
            Method::PUT,
            "/api/v2/guardian/policies",
            Some(&token),
            Some(bad),
        )
        .await;
        error_body(response, StatusCode::BAD_REQUEST).await;
    }
    tenant.shutdown().await;
}

#[tokio::test]
async fn every_management_response_carries_ratelimit_headers() {
    let (tenant, http) = spawn().await;
    let token = mint(&tenant, &ALL_SCOPES);
    let weak = mint(&tenant, &[]);
    let path = methods_path(demo::ALICE_USER_ID);
    type Case<'a> = (Method, String, Option<&'a str>, Option<Value>, StatusCode);
    let cases: Vec<Case<'_>> = vec![
        (
            Method::GET,
            path.clone(),
            Some(&token),
            None,
            StatusCode::OK,
        ),
        (
            Method::GET,
            path.clone(),
            None,
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            path.clone(),
            Some(&weak),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            Method::GET,
            methods_path("auth0|nobody"),
            Some(&token),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            format!("{path}?per_page=500"),
            Some(&token),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v2/nothing-here".to_owned(),
            Some(&token),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            format!("{path}/{}", enc(ALICE_METHODS[3])),
            Some(&token),
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::GET,
            "/api/v2/guardian/factors".to_owned(),
            Some(&token),
            None,
            StatusCode::OK,
        ),
    ];
    let now = tenant.state.clock.unix();
    for (method, path, token, body, status) in cases {
        let response = call(&http, &tenant, method.clone(), &path, token, body).await;
        assert_eq!(response.status(), status, "{method} {path}");
        let (limit, remaining, reset) = ratelimit_headers(&response);
        assert!(
            remaining <= limit,
            "{method} {path}: remaining {remaining} ≤ limit {limit}"
        );
        assert!(
            reset >= now,
            "{method} {path}: reset {reset} is not in the past"
        );
    }
    let outside = http
        .get(tenant.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("send");
    assert!(
        outside.headers().get("x-ratelimit-limit").is_none(),
        "only Management responses carry them"
    );
    tenant.shutdown().await;
}

#[tokio::test]
async fn the_optional_bucket_answers_429_and_refills_on_the_tenant_clock() {
    let limit: RateLimit = "2/s".parse().expect("limit");
    let (tenant, http, clock) = spawn_manual(Some(limit)).await;
    let token = mint(&tenant, &ALL_SCOPES);
    let path = methods_path(demo::ALICE_USER_ID);
    let first = call(&http, &tenant, Method::GET, &path, Some(&token), None).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(ratelimit_headers(&first).0, 2);
    assert_eq!(ratelimit_headers(&first).1, 1);
    let second = call(&http, &tenant, Method::GET, &path, None, None).await;
    assert_eq!(
        second.status(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated calls count too"
    );
    assert_eq!(ratelimit_headers(&second).1, 0);

    let limited = call(&http, &tenant, Method::GET, &path, Some(&token), None).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let (limit, remaining, reset) = ratelimit_headers(&limited);
    let now = clock.unix();
    assert_eq!((limit, remaining), (2, 0));
    assert!(
        reset > now && reset <= now + 2,
        "reset {reset} within the refill time of now {now}"
    );
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert_eq!(
        retry_after, 1,
        "one request refills in half a second, rounded up"
    );
    let body = error_body(limited, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(
        body.message.starts_with("Too many requests."),
        "{}",
        body.message
    );
    assert_eq!(
        tenant
            .state
            .store
            .read(|s| s.user(demo::ALICE_USER_ID).map(|u| u.methods.len())),
        Some(4)
    );

    clock.advance(Duration::from_millis(500));
    let one_more = call(&http, &tenant, Method::GET, &path, Some(&token), None).await;
    assert_eq!(
        one_more.status(),
        StatusCode::OK,
        "half a second refills one request"
    );
    let again = call(&http, &tenant, Method::GET, &path, Some(&token), None).await;
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    clock.advance(Duration::from_secs(5));
    for _ in 0..2 {
        let ok = call(&http, &tenant, Method::GET, &path, Some(&token), None).await;
        assert_eq!(
            ok.status(),
            StatusCode::OK,
            "the bucket is full again, not more than full"
        );
    }
    let over = call(&http, &tenant, Method::GET, &path, Some(&token), None).await;
    assert_eq!(
        over.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "burst is capped at the bucket size"
    );
    let calls = tenant.state.faults.mgmt_calls();
    assert_eq!(
        calls[2].client_id.as_deref(),
        Some("test-m2m"),
        "a 429 still names its client in the log"
    );
    let statuses: Vec<u16> = tenant
        .state
        .faults
        .mgmt_calls()
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(
        statuses,
        [200, 401, 429, 200, 429, 200, 200, 429],
        "the call log sees 429s too"
    );
    tenant.shutdown().await;
}

#[tokio::test]
async fn the_call_log_counts_management_calls_by_client() {
    let (tenant, http) = spawn().await;
    let token = support::mgmt_token(&tenant, &http).await;
    let path = methods_path(demo::ALICE_USER_ID);
    for _ in 0..3 {
        call(&http, &tenant, Method::GET, &path, Some(&token), None).await;
    }
    call(
        &http,
        &tenant,
        Method::GET,
        &format!("{path}?include_totals=true"),
        None,
        None,
    )
    .await;
    call(
        &http,
        &tenant,
        Method::DELETE,
        &format!("{path}/{}", enc(ALICE_METHODS[2])),
        Some(&token),
        None,
    )
    .await;
    http.get(tenant.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks");

    let faults = &tenant.state.faults;
    assert_eq!(faults.count_mgmt_calls("GET", "/api/v2/users/"), 4);
    assert_eq!(faults.count_mgmt_calls("DELETE", "/api/v2/users/"), 1);
    assert_eq!(
        faults.mgmt_calls().len(),
        5,
        "only Management calls are logged"
    );
    let calls: Value = http
        .get(tenant.url("/__dev/mgmt-calls"))
        .send()
        .await
        .expect("log")
        .json()
        .await
        .expect("json");
    let calls = calls.as_array().expect("array");
    assert_eq!(calls.len(), 5);
    assert_eq!(calls[0]["method"], "GET");
    assert_eq!(calls[0]["path"], path, "the path as sent, still encoded");
    assert_eq!(calls[0]["status"], 200);
    assert_eq!(calls[0]["client_id"], demo::PROXY_CLIENT_ID);
    assert_eq!(
        calls[0]["sub"],
        format!("{}@clients", demo::PROXY_CLIENT_ID)
    );
    assert_eq!(calls[3]["status"], 401);
    assert_eq!(calls[3]["client_id"], Value::Null, "no verified caller");
    assert_eq!(calls[3]["query"], "include_totals=true");
    assert_eq!(calls[4]["status"], 204);

    let cleared = http
        .delete(tenant.url("/__dev/mgmt-calls"))
        .send()
        .await
        .expect("clear");
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert!(faults.mgmt_calls().is_empty());
    tenant.shutdown().await;
}

/// Violations of the Management spec schema `name` (from the protocol crate's `spec_schemas.json` excerpt of
/// Auth0's OpenAPI spec) by `value`: `$ref`, `type`, `enum`, `required`, `properties`,
/// `additionalProperties: false`, `items`, `minLength`/`maxLength` and `format: date-time`.
pub(crate) fn spec_violations(name: &str, value: &Value) -> Vec<String> {
    let all: Value = serde_json::from_str(fixtures::SPEC_SCHEMAS).expect("spec excerpt");
    let schemas = &all["management"]["components"]["schemas"];
    let mut out = Vec::new();
    validate(
        schemas,
        &schemas[name],
        value,
        &format!("{name}$"),
        &mut out,
    );
    out
}

fn validate(schemas: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().expect("ref name");
        let target = &schemas[name];
        assert!(target.is_object(), "schema {name} is in the excerpt");
        return validate(schemas, target, value, at, out);
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        out.push(format!("{at}: {value} not in {options:?}"));
    }
    let type_ok = match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some("number") => value.is_number(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("array") => value.is_array(),
        Some("object") => value.is_object(),
        Some(other) => panic!("unexpected schema type {other}"),
    };
    if !type_ok {
        out.push(format!("{at}: {value} is not a {}", schema["type"]));
        return;
    }
    if let Some(text) = value.as_str() {
        let chars = u64::try_from(text.chars().count()).expect("length");
        if schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|max| chars > max)
        {
            out.push(format!("{at}: longer than maxLength"));
        }
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|min| chars < min)
        {
            out.push(format!("{at}: shorter than minLength"));
        }
        if schema.get("format").and_then(Value::as_str) == Some("date-time")
            && time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .is_err()
        {
            out.push(format!("{at}: {text} is not an RFC 3339 date-time"));
        }
    }
    if let Some(items) = value.as_array() {
        for (index, item) in items.iter().enumerate() {
            validate(
                schemas,
                &schema["items"],
                item,
                &format!("{at}[{index}]"),
                out,
            );
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = required.as_str().expect("required names are strings");
            if !object.contains_key(key) {
                out.push(format!("{at}.{key}: required but missing"));
            }
        }
        for (key, member) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(property) => validate(schemas, property, member, &format!("{at}.{key}"), out),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    out.push(format!(
                        "{at}.{key}: not allowed (additionalProperties: false)"
                    ));
                }
                None => {}
            }
        }
    }
}

#[tokio::test]
async fn responses_validate_against_auth0s_openapi_schemas() {
    let (tenant, http) = spawn().await;
    let token = mint(&tenant, &ALL_SCOPES);
    let check = |name: &str, value: &Value| {
        let violations = spec_violations(name, value);
        assert!(violations.is_empty(), "{name}: {violations:?}");
    };
    // A phone method with a linked sms method, so every optional member the tenant can serve is exercised.
    let phone: AuthenticationMethod =
        serde_json::from_str(fixtures::MGMT_METHOD_GET_PHONE).expect("fixture");
    tenant.state.store.write(|s| {
        let alice = s.user_mut(demo::ALICE_USER_ID).expect("alice");
        alice
            .methods
            .push(companion_devtenant::store::StoredMethod {
                method: AuthenticationMethod {
                    phone_number: Some("+44 7700 900123".to_owned()),
                    ..phone
                },
                secret: None,
            });
    });
    let path = methods_path(demo::ALICE_USER_ID);
    let bare: Value = call(&http, &tenant, Method::GET, &path, Some(&token), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(bare.as_array().map(Vec::len), Some(5));
    for item in bare.as_array().expect("array") {
        check("UserAuthenticationMethod", item);
    }
    let paged: Value = call(
        &http,
        &tenant,
        Method::GET,
        &format!("{path}?include_totals=true&per_page=2&page=1"),
        Some(&token),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    check(
        "ListUserAuthenticationMethodsOffsetPaginatedResponseContent",
        &paged,
    );
    let one: Value = call(
        &http,
        &tenant,
        Method::GET,
        &format!("{path}/{}", enc(ALICE_METHODS[2])),
        Some(&token),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    check("UserAuthenticationMethod", &one);
    let patched: Value = call(
        &http,
        &tenant,
        Method::PATCH,
        &format!("{path}/{}", enc(ALICE_METHODS[2])),
        Some(&token),
        Some(json!({"name": "MacBook"})),
    )
    .await
    .json()
    .await
    .expect("json");
    check("UserAuthenticationMethod", &patched);
    let ticket: Value = call(
        &http,
        &tenant,
        Method::POST,
        "/api/v2/guardian/enrollments/ticket",
        Some(&token),
        Some(json!({"user_id": demo::ALICE_USER_ID, "factor": "webauthn-platform"})),
    )
    .await
    .json()
    .await
    .expect("json");
    check("CreateGuardianEnrollmentTicketResponseContent", &ticket);
    let factors: Value = call(
        &http,
        &tenant,
        Method::GET,
        "/api/v2/guardian/factors",
        Some(&token),
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    for factor in factors.as_array().expect("array") {
        check("GuardianFactor", factor);
    }
    let put: Value = call(
        &http,
        &tenant,
        Method::PUT,
        "/api/v2/guardian/factors/email",
        Some(&token),
        Some(json!({"enabled": true})),
    )
    .await
    .json()
    .await
    .expect("json");
    check("SetGuardianFactorResponseContent", &put);
    let policies: Value = call(
        &http,
        &tenant,
        Method::PUT,
        "/api/v2/guardian/policies",
        Some(&token),
        Some(json!(["all-applications", "confidence-score"])),
    )
    .await
    .json()
    .await
    .expect("json");
    for policy in policies.as_array().expect("array") {
        check("MFAPolicyEnum", policy);
    }

    // The validator itself can fail.
    assert!(
        !spec_violations(
            "UserAuthenticationMethod",
            &json!({"id": "x", "type": "otp", "created_at": "yesterday", "extra": 1})
        )
        .is_empty()
    );
    tenant.shutdown().await;
}

#[tokio::test]
async fn webauthn_factor_settings_follow_the_recordings() {
    let (tenant, http) = spawn().await;
    let token = mint(&tenant, &ALL_SCOPES);
    let roaming = "/api/v2/guardian/factors/webauthn-roaming/settings";
    let platform = "/api/v2/guardian/factors/webauthn-platform/settings";
    let get = |path: &'static str| {
        let (http, tenant, token) = (&http, &tenant, &token);
        async move {
            let response = call(http, tenant, Method::GET, path, Some(token), None).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            response.json::<Value>().await.expect("json")
        }
    };
    let fixture = |text: &str| serde_json::from_str::<Value>(text).expect("fixture");
    assert_eq!(
        get(roaming).await,
        fixture(fixtures::WEBAUTHN_ROAMING_SETTINGS_GET)
    );
    assert_eq!(
        get(platform).await,
        fixture(fixtures::WEBAUTHN_PLATFORM_SETTINGS_GET)
    );

    let put = call(
        &http,
        &tenant,
        Method::PUT,
        roaming,
        Some(&token),
        Some(json!({"userVerification": "preferred"})),
    )
    .await;
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(
        put.json::<Value>().await.expect("json"),
        fixture(fixtures::WEBAUTHN_ROAMING_SETTINGS_PUT_RESPONSE)
    );
    assert_eq!(
        get(roaming).await,
        json!({"userVerification": "preferred", "overrideRelyingParty": false}),
        "merged"
    );

    for (path, body) in [
        (roaming, json!({"userVerification": "always"})),
        (platform, json!({"userVerification": "required"})),
        (roaming, json!({"overrideRelyingParty": "no"})),
    ] {
        let response = call(&http, &tenant, Method::PUT, path, Some(&token), Some(body)).await;
        error_body(response, StatusCode::BAD_REQUEST).await;
    }
    let other = call(
        &http,
        &tenant,
        Method::GET,
        "/api/v2/guardian/factors/otp/settings",
        Some(&token),
        None,
    )
    .await;
    error_body(other, StatusCode::NOT_FOUND).await;
    let weak = mint(&tenant, &["read:guardian_factors"]);
    let denied = call(
        &http,
        &tenant,
        Method::PUT,
        platform,
        Some(&weak),
        Some(json!({"overrideRelyingParty": true})),
    )
    .await;
    error_body(denied, StatusCode::FORBIDDEN).await;
    tenant.shutdown().await;
}
