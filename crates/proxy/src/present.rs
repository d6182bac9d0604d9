//! Turning Auth0's methods into the proxy's [`Authenticator`]s: provider names from the bundled AAGUID snapshot,
//! browser/OS from the user agent, and a `display_name` that is never just "Passkey".

use std::borrow::Cow;
use std::collections::HashMap;

use companion_protocol::api::Authenticator;
use companion_protocol::auth0::{AuthenticationMethod, MethodType};
use serde::Serialize;

use crate::policy;

/// The bundled snapshot of the community passkey AAGUID list (see `data/README.md`).
const BUNDLED_AAGUIDS: &str = include_str!("../data/aaguids.json");

/// AAGUID → provider name.
#[derive(Debug, Clone, Default)]
pub struct AaguidDb {
    names: HashMap<String, String>,
}

impl AaguidDb {
    /// The bundled snapshot.
    ///
    /// # Errors
    /// When the bundled file is not a JSON object of strings (a build defect, caught by a unit test).
    pub fn bundled() -> Result<Self, serde_json::Error> {
        Self::from_json(BUNDLED_AAGUIDS)
    }

    /// A map from JSON `{ "<aaguid>": "<name>" }`.
    ///
    /// # Errors
    /// When `json` is not an object of strings.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        let raw: HashMap<String, String> = serde_json::from_str(json)?;
        Ok(Self {
            names: raw
                .into_iter()
                .map(|(aaguid, name)| (aaguid.to_ascii_lowercase(), name))
                .collect(),
        })
    }

    /// The provider of `aaguid` (any case). The all-zero AAGUID (no attestation) has none.
    pub fn provider(&self, aaguid: &str) -> Option<&str> {
        let aaguid = aaguid.trim();
        let found = if aaguid.bytes().any(|b| b.is_ascii_uppercase()) {
            self.names.get(&aaguid.to_ascii_lowercase())
        } else {
            // Auth0 writes AAGUIDs in lower case: look them up without a copy.
            self.names.get(aaguid)
        };
        found.map(String::as_str)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// "Chrome on macOS" from a browser user agent; `None` when neither browser nor OS is recognisable.
pub fn describe_user_agent(user_agent: &str) -> Option<String> {
    let ua = user_agent;
    // Order matters: Edge and Opera contain "Chrome", Chrome contains "Safari".
    let browser = if ua.contains("Edg/") || ua.contains("Edge/") {
        Some("Edge")
    } else if ua.contains("OPR/") || ua.contains("Opera") {
        Some("Opera")
    } else if ua.contains("Firefox/") || ua.contains("FxiOS/") {
        Some("Firefox")
    } else if ua.contains("Chrome/") || ua.contains("CriOS/") || ua.contains("Chromium/") {
        Some("Chrome")
    } else if ua.contains("Safari/") && ua.contains("Version/") {
        Some("Safari")
    } else {
        None
    };
    let os = if ua.contains("iPhone") || ua.contains("iPad") || ua.contains("iOS") {
        Some("iOS")
    } else if ua.contains("Android") {
        Some("Android")
    } else if ua.contains("CrOS") {
        Some("ChromeOS")
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") || ua.contains("Darwin") {
        Some("macOS")
    } else if ua.contains("Windows") {
        Some("Windows")
    } else if ua.contains("Linux") || ua.contains("X11") {
        Some("Linux")
    } else {
        None
    };
    match (browser, os) {
        (Some(browser), Some(os)) => Some(format!("{browser} on {os}")),
        (Some(browser), None) => Some(browser.to_owned()),
        (None, Some(os)) => Some(os.to_owned()),
        (None, None) => None,
    }
}

/// A label for a method with no name, provider or user agent; passkeys say what kind they are.
fn type_label(method: &AuthenticationMethod) -> String {
    match method.kind {
        MethodType::Passkey => match method.credential_device_type.as_deref() {
            Some("multi_device") => "Synced passkey".to_owned(),
            Some("single_device") => "Device-bound passkey".to_owned(),
            _ => "Passkey (unknown device)".to_owned(),
        },
        MethodType::Phone => method
            .phone_number
            .as_deref()
            .map_or_else(|| "Phone".to_owned(), |n| format!("Phone {n}")),
        MethodType::Email => method
            .email
            .as_deref()
            .map_or_else(|| "Email".to_owned(), |e| format!("Email {e}")),
        ref other => other.label().to_owned(),
    }
}

/// What the UI shows: the user's name, else the provider, else browser/OS, else a type label.
pub fn display_name(method: &AuthenticationMethod, provider: Option<&str>) -> String {
    display_name_of(method, provider).into_owned()
}

/// [`display_name`], borrowed from `method` or `provider` when it is one of them.
fn display_name_of<'a>(
    method: &'a AuthenticationMethod,
    provider: Option<&'a str>,
) -> Cow<'a, str> {
    if let Some(name) = method
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        return Cow::Borrowed(name);
    }
    if let Some(provider) = provider {
        return Cow::Borrowed(provider);
    }
    if let Some(described) = method.user_agent.as_deref().and_then(describe_user_agent) {
        return Cow::Owned(described);
    }
    Cow::Owned(type_label(method))
}

/// The proxy's view of `method`, with `removable` decided against all of the user's `methods`.
pub fn authenticator(
    method: &AuthenticationMethod,
    methods: &[AuthenticationMethod],
    aaguids: &AaguidDb,
) -> Authenticator {
    let provider = method
        .aaguid
        .as_deref()
        .and_then(|a| aaguids.provider(a))
        .map(str::to_owned);
    Authenticator {
        id: method.id.clone(),
        kind: method.kind.clone(),
        name: method.name.clone(),
        display_name: display_name(method, provider.as_deref()),
        created_at: method.created_at.clone(),
        last_used_at: method.last_auth_at.clone(),
        confirmed: method.confirmed.unwrap_or(true),
        device_type: method.credential_device_type.clone(),
        backed_up: method.credential_backed_up,
        aaguid: method.aaguid.clone(),
        provider,
        transports: method.transports.clone().unwrap_or_default(),
        removable: policy::removable(methods, method),
    }
}

/// [`Authenticator`] borrowed from the method it presents: the same fields in the same order, so it serialises to
/// the same JSON without copying every string first.
#[derive(Serialize)]
struct AuthenticatorView<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a MethodType,
    name: Option<&'a str>,
    display_name: Cow<'a, str>,
    created_at: &'a str,
    last_used_at: Option<&'a str>,
    confirmed: bool,
    device_type: Option<&'a str>,
    backed_up: Option<bool>,
    aaguid: Option<&'a str>,
    provider: Option<&'a str>,
    transports: &'a [String],
    removable: bool,
}

/// [`AuthenticatorList`](companion_protocol::api::AuthenticatorList) borrowed from the methods.
#[derive(Serialize)]
struct ListView<'a> {
    authenticators: Vec<AuthenticatorView<'a>>,
}

/// The JSON of the [`AuthenticatorList`](companion_protocol::api::AuthenticatorList) of all `methods` (each as
/// [`authenticator`] presents it), written straight from the methods.
///
/// # Errors
/// When serialisation fails (it does not for these types).
pub fn list_json(
    methods: &[AuthenticationMethod],
    aaguids: &AaguidDb,
) -> Result<Vec<u8>, serde_json::Error> {
    let view = ListView {
        authenticators: methods
            .iter()
            .map(|method| {
                let provider = method.aaguid.as_deref().and_then(|a| aaguids.provider(a));
                AuthenticatorView {
                    id: &method.id,
                    kind: &method.kind,
                    name: method.name.as_deref(),
                    display_name: display_name_of(method, provider),
                    created_at: &method.created_at,
                    last_used_at: method.last_auth_at.as_deref(),
                    confirmed: method.confirmed.unwrap_or(true),
                    device_type: method.credential_device_type.as_deref(),
                    backed_up: method.credential_backed_up,
                    aaguid: method.aaguid.as_deref(),
                    provider,
                    transports: method.transports.as_deref().unwrap_or_default(),
                    removable: policy::removable(methods, method),
                }
            })
            .collect(),
    };
    // About 400 bytes per method: one allocation for a typical list.
    let mut out = Vec::with_capacity(32 + 512 * methods.len());
    serde_json::to_writer(&mut out, &view)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(json: serde_json::Value) -> AuthenticationMethod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_bundled_snapshot_loads_and_knows_the_demo_aaguids() {
        let db = AaguidDb::bundled().expect("bundled aaguids.json is valid");
        assert!(
            db.len() >= 250,
            "the full community list, not a sample: {} entries",
            db.len()
        );
        for (aaguid, name) in [
            (
                "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4",
                "Google Password Manager",
            ),
            ("08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"),
            ("bada5566-a7aa-401f-bd96-45619a55120d", "1Password"),
        ] {
            assert_eq!(db.provider(aaguid), Some(name), "{aaguid}");
        }
        assert_eq!(
            db.provider("cb69481e-8ff7-4039-93ec-0a2729a154a8"),
            Some("YubiKey 5 Series")
        );
        assert_eq!(
            db.provider("FBFC3007-154E-4ECC-8C0B-6E020557D7BD"),
            Some("iCloud Keychain"),
            "lookups ignore case"
        );
        assert_eq!(db.provider("00000000-0000-0000-0000-000000000000"), None);
    }

    #[test]
    fn lookups_do_not_scan_the_list() {
        // 100,000 entries and 20,000 lookups: a hashed lookup takes milliseconds even unoptimised, a linear scan
        // (2 * 10^9 string comparisons) would take far longer than the bound.
        let entries: Vec<String> = (0..100_000u32)
            .map(|i| format!("\"{i:08x}-0000-4000-8000-{i:012x}\": \"Authenticator {i}\""))
            .collect();
        let db = AaguidDb::from_json(&format!("{{{}}}", entries.join(","))).unwrap();
        assert_eq!(db.len(), 100_000);
        let started = std::time::Instant::now();
        let mut found = 0;
        for i in (0..100_000u32).step_by(5) {
            found += usize::from(
                db.provider(&format!("{i:08X}-0000-4000-8000-{i:012X}"))
                    .is_some(),
            );
        }
        let elapsed = started.elapsed();
        assert_eq!(found, 20_000, "every upper-case lookup finds its entry");
        assert!(
            elapsed < std::time::Duration::from_secs(2),
            "20,000 lookups took {elapsed:?}: the lookup is not hashed"
        );
    }

    #[test]
    fn user_agents_become_browser_on_os() {
        let cases = [
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                "Chrome on macOS",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("Chrome 131.0.0 / Mac OS X 10.15.7", "macOS"),
            ("OAuth2/1 CFNetwork/3826.500.111.2.2 Darwin/24.4.0", "macOS"),
        ];
        for (ua, expected) in cases {
            assert_eq!(describe_user_agent(ua).as_deref(), Some(expected), "{ua}");
        }
        assert_eq!(describe_user_agent("curl/8.0"), None);
    }

    #[test]
    fn display_name_is_never_just_passkey() {
        let db = AaguidDb::bundled().unwrap();
        let base = serde_json::json!({"id": "passkey|dev_a", "type": "passkey", "created_at": "2026-01-01T00:00:00.000Z"});
        let mut named = base.clone();
        named["name"] = "Work laptop".into();
        named["aaguid"] = "fbfc3007-154e-4ecc-8c0b-6e020557d7bd".into();
        assert_eq!(
            display_name(&method(named), Some("iCloud Keychain")),
            "Work laptop"
        );

        let mut with_aaguid = base.clone();
        with_aaguid["aaguid"] = "fbfc3007-154e-4ecc-8c0b-6e020557d7bd".into();
        let all = vec![method(with_aaguid.clone())];
        assert_eq!(
            authenticator(&all[0], &all, &db).display_name,
            "iCloud Keychain"
        );

        let mut with_ua = base.clone();
        with_ua["user_agent"] =
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Chrome/131.0.0.0 Safari/537.36".into();
        assert_eq!(display_name(&method(with_ua), None), "Chrome on macOS");

        let mut synced = base.clone();
        synced["credential_device_type"] = "multi_device".into();
        assert_eq!(display_name(&method(synced), None), "Synced passkey");
        let bare = display_name(&method(base), None);
        assert_ne!(bare, "Passkey");

        let key = method(
            serde_json::json!({"id": "webauthn-roaming|dev_k", "type": "webauthn-roaming", "created_at": "x", "name": "  "}),
        );
        assert_eq!(
            display_name(&key, None),
            "Security key",
            "blank names are ignored"
        );
        let code = method(
            serde_json::json!({"id": "recovery-code|dev_r", "type": "recovery-code", "created_at": "x"}),
        );
        assert_eq!(display_name(&code, None), "Recovery code");
        let totp =
            method(serde_json::json!({"id": "totp|dev_t", "type": "totp", "created_at": "x"}));
        assert_eq!(display_name(&totp, None), "Authenticator app");
    }

    #[test]
    fn authenticator_maps_fields_and_defaults_confirmed() {
        let db = AaguidDb::bundled().unwrap();
        let key = method(serde_json::json!({
            "id": "webauthn-roaming|dev_k", "type": "webauthn-roaming", "created_at": "2026-01-01T00:00:00.000Z",
            "last_auth_at": "2026-02-01T00:00:00.000Z", "aaguid": "cb69481e-8ff7-4039-93ec-0a2729a154a8",
            "transports": ["usb", "nfc"], "public_key": "pk", "key_id": "kid"
        }));
        let all = vec![key.clone()];
        let out = authenticator(&key, &all, &db);
        assert!(out.confirmed, "confirmed defaults to true when absent");
        assert_eq!(out.provider.as_deref(), Some("YubiKey 5 Series"));
        assert_eq!(out.display_name, "YubiKey 5 Series");
        assert_eq!(
            out.last_used_at.as_deref(),
            Some("2026-02-01T00:00:00.000Z")
        );
        assert_eq!(out.transports, ["usb", "nfc"]);
        assert!(!out.removable, "the only factor is not removable");
    }

    #[test]
    fn the_list_json_is_the_serialised_list_of_authenticators() {
        let db = AaguidDb::bundled().expect("bundled");
        let methods: Vec<AuthenticationMethod> = [
            serde_json::json!({"id": "passkey|dev_1", "type": "passkey", "created_at": "2026-01-01T00:00:00.000Z",
                "aaguid": "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4", "credential_device_type": "multi_device",
                "credential_backed_up": true, "transports": ["internal", "hybrid"], "confirmed": true,
                "last_auth_at": "2026-02-01T00:00:00.000Z"}),
            serde_json::json!({"id": "webauthn-roaming|dev_2", "type": "webauthn-roaming",
                "created_at": "2026-01-02T00:00:00.000Z", "aaguid": "CB69481E-8FF7-4039-93EC-0A2729A154A8",
                "name": "  "}),
            serde_json::json!({"id": "webauthn-platform|dev_3", "type": "webauthn-platform",
                "created_at": "2026-01-03T00:00:00.000Z", "name": "My \"laptop\"\n",
                "user_agent": "Mozilla/5.0 (Macintosh) Chrome/120 Safari/537"}),
            serde_json::json!({"id": "passkey|dev_4", "type": "passkey", "created_at": "2026-01-04T00:00:00.000Z",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/121"}),
            serde_json::json!({"id": "phone|dev_5", "type": "phone", "created_at": "2026-01-05T00:00:00.000Z",
                "phone_number": "+1XXXXXX4567", "confirmed": false}),
            serde_json::json!({"id": "email|dev_6", "type": "email", "created_at": "2026-01-06T00:00:00.000Z",
                "email": "a***@example.com"}),
            serde_json::json!({"id": "future|dev_7", "type": "some-future-type",
                "created_at": "2026-01-07T00:00:00.000Z", "link_id": "x"}),
        ]
        .into_iter()
        .map(method)
        .collect();
        for count in [0, 1, methods.len()] {
            let methods = &methods[..count];
            let expected = companion_protocol::api::AuthenticatorList {
                authenticators: methods
                    .iter()
                    .map(|m| authenticator(m, methods, &db))
                    .collect(),
            };
            let json = list_json(methods, &db).expect("serialises");
            assert_eq!(
                String::from_utf8(json.clone()).expect("utf-8"),
                serde_json::to_string(&expected).expect("serialises"),
                "the borrowed view writes the same JSON as the owned list ({count} methods)"
            );
            let decoded: companion_protocol::api::AuthenticatorList =
                serde_json::from_slice(&json).expect("decodes");
            assert_eq!(decoded, expected, "and it decodes back to the same list");
        }
    }
}
