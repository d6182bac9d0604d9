//! Validated identifiers: Auth0 user ids and authentication-method ids, and their encoding into URL paths.
//!
//! The proxy takes a method id from its own URL and places it into an upstream Management API path, so an id is
//! parsed into a [`MethodId`] first: `<type>|<opaque>`, with the type from `[a-z][a-z0-9-]*` (at most
//! [`MAX_METHOD_TYPE_LEN`] bytes) and the opaque part from `[A-Za-z0-9_-]` (1 to [`MAX_METHOD_OPAQUE_LEN`] bytes).
//! Everything else (`..`, `/`, `%`, whitespace, non-ASCII, empty or over-long input) is refused before any
//! upstream call. A [`UserId`] (`<provider>|<rest>`, e.g. `auth0|68998c2d684ac37fcd52bfbe`) follows a wider but
//! still safe alphabet because enterprise and social ids contain `.`, `@` and further `|`.
//!
//! [`MethodId::path_segment`] and [`UserId::path_segment`] percent-encode every byte outside RFC 3986's unreserved
//! set, so `|` becomes `%7C` exactly as Auth0's own SDKs send it (`auth0|abc` → `auth0%7Cabc`).
//! These are pure functions: parsing never allocates more than the id itself and never performs I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::auth0::MethodType;

/// Upper bound on the length of a [`MethodId`], checked before anything else.
pub const MAX_ID_LEN: usize = 128;

/// Upper bound on the length of a [`UserId`]; user ids come from signed tokens, so this is Auth0's own limit.
pub const MAX_USER_ID_LEN: usize = 255;

/// Upper bound on the `<type>` part of a [`MethodId`].
pub const MAX_METHOD_TYPE_LEN: usize = 32;

/// Upper bound on the `<opaque>` part of a [`MethodId`].
pub const MAX_METHOD_OPAQUE_LEN: usize = 64;

/// Why a string is not a valid identifier. Messages never repeat the rejected input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// The identifier is empty.
    Empty,
    /// The identifier is longer than allowed.
    TooLong {
        /// The maximum length in bytes.
        max: usize,
    },
    /// The identifier has no `|` separating its type (or provider) from the rest.
    MissingSeparator,
    /// The part before `|` is empty, too long, or not from `[a-z][a-z0-9-]*`.
    InvalidType,
    /// The part after `|` is empty, too long, or contains a character outside the safe alphabet.
    InvalidValue,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("identifier is empty"),
            Self::TooLong { max } => write!(f, "identifier is longer than {max} bytes"),
            Self::MissingSeparator => f.write_str("identifier is not of the form <type>|<value>"),
            Self::InvalidType => f.write_str("identifier type is not a lowercase word"),
            Self::InvalidValue => {
                f.write_str("identifier contains characters outside the safe alphabet")
            }
        }
    }
}

impl std::error::Error for IdError {}

/// Percent-encodes every byte outside RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`).
fn encode_path_segment(raw: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(raw.len() + 8);
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// Checks the common prefix rules and splits at the first `|`.
fn split_typed(raw: &str, max_len: usize) -> Result<(&str, &str), IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty);
    }
    if raw.len() > max_len {
        return Err(IdError::TooLong { max: max_len });
    }
    let Some((kind, rest)) = raw.split_once('|') else {
        return Err(IdError::MissingSeparator);
    };
    let valid_kind = kind.len() <= MAX_METHOD_TYPE_LEN
        && kind
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid_kind {
        return Err(IdError::InvalidType);
    }
    Ok((kind, rest))
}

/// The id of one authentication method, `<type>|<opaque>` (e.g. `totp|dev_WzMZ2sZbUw1wbC2F`).
///
/// Construct it with [`MethodId::parse`] (or `str::parse`, or serde); every value is valid by construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MethodId(String);

impl MethodId {
    /// Parses and validates a method id.
    ///
    /// # Errors
    /// [`IdError`] when the input is empty, longer than [`MAX_ID_LEN`], lacks a `|`, has a type outside
    /// `[a-z][a-z0-9-]*` or longer than [`MAX_METHOD_TYPE_LEN`], or an opaque part that is empty, longer than
    /// [`MAX_METHOD_OPAQUE_LEN`] or not from `[A-Za-z0-9_-]`.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let (kind, opaque) = split_typed(raw, MAX_ID_LEN)?;
        if !kind.bytes().next().is_some_and(|b| b.is_ascii_lowercase()) {
            return Err(IdError::InvalidType);
        }
        let valid_opaque = !opaque.is_empty()
            && opaque.len() <= MAX_METHOD_OPAQUE_LEN
            && opaque
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_opaque {
            return Err(IdError::InvalidValue);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as Auth0 writes it, e.g. `totp|dev_WzMZ2sZbUw1wbC2F`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `<type>` part as written, e.g. `webauthn-roaming`.
    pub fn type_str(&self) -> &str {
        self.0.split_once('|').map_or("", |(kind, _)| kind)
    }

    /// The `<opaque>` part, e.g. `dev_WzMZ2sZbUw1wbC2F`.
    pub fn opaque(&self) -> &str {
        self.0.split_once('|').map_or("", |(_, opaque)| opaque)
    }

    /// The method type the id's prefix names (an unknown prefix such as `sms` gives [`MethodType::Unknown`]).
    pub fn kind(&self) -> MethodType {
        MethodType::from(self.type_str())
    }

    /// The id encoded as one URL path segment, `|` as `%7C`: `totp%7Cdev_WzMZ2sZbUw1wbC2F`.
    pub fn path_segment(&self) -> String {
        encode_path_segment(&self.0)
    }
}

impl FromStr for MethodId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for MethodId {
    type Error = IdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<MethodId> for String {
    fn from(value: MethodId) -> Self {
        value.0
    }
}

impl AsRef<str> for MethodId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MethodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Auth0 user id, `<provider>|<rest>` (e.g. `auth0|68998c2d684ac37fcd52bfbe`, `google-oauth2|1234`,
/// `samlp|acme|jane.doe@example.com`).
///
/// The provider is `[a-z0-9][a-z0-9-]*`; the rest is 1 or more bytes of `[A-Za-z0-9._~@+=:|-]` without `..`.
/// Ids with other characters (spaces, `/`, `%`, non-ASCII) are refused; Auth0 never issues them for
/// database, social or passwordless users.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// Parses and validates a user id.
    ///
    /// # Errors
    /// [`IdError`] when the input is empty, longer than [`MAX_USER_ID_LEN`], lacks a `|`, has an invalid provider,
    /// or contains `..` or a character outside the safe alphabet.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let (_, rest) = split_typed(raw, MAX_USER_ID_LEN)?;
        let valid_rest = !rest.is_empty()
            && !rest.contains("..")
            && rest.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'.' | b'_' | b'~' | b'@' | b'+' | b'=' | b':' | b'|' | b'-'
                    )
            });
        if !valid_rest {
            return Err(IdError::InvalidValue);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as Auth0 writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identity provider prefix, e.g. `auth0` or `google-oauth2`.
    pub fn provider(&self) -> &str {
        self.0.split_once('|').map_or("", |(provider, _)| provider)
    }

    /// The id encoded as one URL path segment: `auth0%7C68998c2d684ac37fcd52bfbe`.
    pub fn path_segment(&self) -> String {
        encode_path_segment(&self.0)
    }
}

impl FromStr for UserId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for UserId {
    type Error = IdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<UserId> for String {
    fn from(value: UserId) -> Self {
        value.0
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID_METHOD_IDS: &[&str] = &[
        "totp|dev_WzMZ2sZbUw1wbC2F",
        "webauthn-roaming|dev_XXXXXXXXXXXXXXXX",
        "webauthn-platform|dev_abc-DEF_123",
        "passkey|dev_rMJhr6SjnUUcHCxW",
        "email|dev_f0O81fTcftc0kN2v",
        "phone|dev_kXVq4drj3Mw6uCF5",
        "recovery-code|dev_i1kgKoFSZLbPt6G1",
        "push|dev_BBTKYpxKHOXVBnql",
        "sms|dev_klnv5yshzzoosSUm",
        "future-kind2|x",
    ];

    const INVALID_METHOD_IDS: &[(&str, IdError)] = &[
        ("", IdError::Empty),
        ("..", IdError::MissingSeparator),
        ("totp|..", IdError::InvalidValue),
        ("../totp|dev_x", IdError::InvalidType),
        ("totp|dev_x/..", IdError::InvalidValue),
        ("totp|dev_x/../../users", IdError::InvalidValue),
        ("/", IdError::MissingSeparator),
        ("totp|dev/x", IdError::InvalidValue),
        ("totp%2Fdev_x", IdError::MissingSeparator),
        ("totp|dev_x%2F..", IdError::InvalidValue),
        ("totp|dev_x%252F..", IdError::InvalidValue),
        ("totp%7Cdev_x", IdError::MissingSeparator),
        ("totp|dev x", IdError::InvalidValue),
        ("totp|dev_x\n", IdError::InvalidValue),
        ("totp|dev_x\t", IdError::InvalidValue),
        (" totp|dev_x", IdError::InvalidType),
        ("totp|dév_x", IdError::InvalidValue),
        ("tötp|dev_x", IdError::InvalidType),
        ("totp|dev_x\u{200b}", IdError::InvalidValue),
        ("totp|", IdError::InvalidValue),
        ("|dev_x", IdError::InvalidType),
        ("TOTP|dev_x", IdError::InvalidType),
        ("1totp|dev_x", IdError::InvalidType),
        ("webauthn_roaming|dev_x", IdError::InvalidType),
        ("totp|dev_x|more", IdError::InvalidValue),
        ("totp|dev.x", IdError::InvalidValue),
        ("totp|dev_x?a=b", IdError::InvalidValue),
        ("totp|dev_x#frag", IdError::InvalidValue),
        ("totp|dev\\x", IdError::InvalidValue),
        ("totp|dev_x\0", IdError::InvalidValue),
        ("totp", IdError::MissingSeparator),
    ];

    #[test]
    fn real_method_ids_parse_and_keep_their_parts() {
        for raw in VALID_METHOD_IDS {
            let id = MethodId::parse(raw).unwrap_or_else(|e| panic!("{raw:?} should parse: {e}"));
            assert_eq!(id.as_str(), *raw, "parsing must not alter the id");
            assert_eq!(
                format!("{}|{}", id.type_str(), id.opaque()),
                *raw,
                "type and opaque parts must recompose the id"
            );
        }
        let id = MethodId::parse("webauthn-roaming|dev_XXXXXXXXXXXXXXXX").unwrap();
        assert_eq!(
            id.kind(),
            MethodType::WebauthnRoaming,
            "type prefix maps to MethodType"
        );
        assert_eq!(id.opaque(), "dev_XXXXXXXXXXXXXXXX");
        let sms = MethodId::parse("sms|dev_klnv5yshzzoosSUm").unwrap();
        assert_eq!(
            sms.kind(),
            MethodType::Unknown("sms".into()),
            "sms is a linked sub-method type"
        );
    }

    #[test]
    fn hostile_method_ids_are_refused_with_the_right_reason() {
        for (raw, expected) in INVALID_METHOD_IDS {
            assert_eq!(
                MethodId::parse(raw),
                Err(*expected),
                "{raw:?} must be refused as {expected:?}"
            );
        }
    }

    #[test]
    fn over_long_method_ids_are_refused() {
        let long_opaque = format!("totp|{}", "a".repeat(MAX_METHOD_OPAQUE_LEN + 1));
        assert_eq!(
            MethodId::parse(&long_opaque),
            Err(IdError::InvalidValue),
            "opaque > 64"
        );
        let max_opaque = format!("totp|{}", "a".repeat(MAX_METHOD_OPAQUE_LEN));
        assert!(
            MethodId::parse(&max_opaque).is_ok(),
            "opaque of exactly 64 is fine"
        );
        let long_type = format!("{}|dev_x", "a".repeat(MAX_METHOD_TYPE_LEN + 1));
        assert_eq!(
            MethodId::parse(&long_type),
            Err(IdError::InvalidType),
            "type > 32"
        );
        let huge = "a".repeat(10_000);
        assert_eq!(
            MethodId::parse(&huge),
            Err(IdError::TooLong { max: MAX_ID_LEN }),
            "length is checked first"
        );
    }

    #[test]
    fn path_segment_encodes_the_pipe_like_auth0() {
        let id = MethodId::parse("totp|dev_WzMZ2sZbUw1wbC2F").unwrap();
        assert_eq!(id.path_segment(), "totp%7Cdev_WzMZ2sZbUw1wbC2F");
        let id = MethodId::parse("webauthn-roaming|dev_XXXXXXXXXXXXXXXX").unwrap();
        assert_eq!(id.path_segment(), "webauthn-roaming%7Cdev_XXXXXXXXXXXXXXXX");
        let user = UserId::parse("auth0|68998c2d684ac37fcd52bfbe").unwrap();
        assert_eq!(user.path_segment(), "auth0%7C68998c2d684ac37fcd52bfbe");
        let saml = UserId::parse("samlp|acme|jane.doe+x@example.com").unwrap();
        assert_eq!(
            saml.path_segment(),
            "samlp%7Cacme%7Cjane.doe%2Bx%40example.com"
        );
    }

    #[test]
    fn user_ids_accept_real_shapes_and_refuse_hostile_ones() {
        for raw in [
            "auth0|68998c2d684ac37fcd52bfbe",
            "google-oauth2|103547991597142817347",
            "samlp|acme|jane.doe@example.com",
            "email|6501234567",
            "oauth2|custom-conn|abc_DEF-123",
            "waad|a1b2:c3=d4",
        ] {
            let user = UserId::parse(raw).unwrap_or_else(|e| panic!("{raw:?} should parse: {e}"));
            assert_eq!(user.as_str(), raw);
        }
        assert_eq!(UserId::parse("auth0|abc").unwrap().provider(), "auth0");
        for (raw, expected) in [
            ("", IdError::Empty),
            ("auth0", IdError::MissingSeparator),
            ("auth0|", IdError::InvalidValue),
            ("auth0|..", IdError::InvalidValue),
            ("auth0|a/../b", IdError::InvalidValue),
            ("auth0|a%2Fb", IdError::InvalidValue),
            ("auth0|a%252Fb", IdError::InvalidValue),
            ("auth0|a b", IdError::InvalidValue),
            ("auth0|jörg", IdError::InvalidValue),
            ("Auth0|abc", IdError::InvalidType),
            ("-auth0|abc", IdError::InvalidType),
        ] {
            assert_eq!(
                UserId::parse(raw),
                Err(expected),
                "{raw:?} must be refused as {expected:?}"
            );
        }
        let long = format!("auth0|{}", "a".repeat(MAX_USER_ID_LEN));
        assert_eq!(
            UserId::parse(&long),
            Err(IdError::TooLong {
                max: MAX_USER_ID_LEN
            })
        );
    }

    #[test]
    fn ids_round_trip_through_serde_and_refuse_invalid_json_strings() {
        let id: MethodId = serde_json::from_str("\"totp|dev_WzMZ2sZbUw1wbC2F\"").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"totp|dev_WzMZ2sZbUw1wbC2F\""
        );
        assert!(
            serde_json::from_str::<MethodId>("\"totp|../x\"").is_err(),
            "serde must apply the same validation"
        );
        assert!(serde_json::from_str::<UserId>("\"auth0|a b\"").is_err());
        let parsed: UserId = "auth0|abc".parse().unwrap();
        assert_eq!(parsed.to_string(), "auth0|abc");
    }

    #[test]
    fn error_messages_never_echo_the_input() {
        let hostile = "totp|<script>secret";
        let message = MethodId::parse(hostile).unwrap_err().to_string();
        assert!(
            !message.contains("script"),
            "message {message:?} must not repeat input"
        );
    }
}
