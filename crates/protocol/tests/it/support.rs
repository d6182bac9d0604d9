//! Helpers shared by the test modules: fixture loading and JSON comparison.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The fixture directory.
pub(crate) fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture's text, through the crate's own `fixtures` module (so the module is exercised too).
pub(crate) fn fixture_text(name: &str) -> &'static str {
    companion_protocol::fixtures::get(name)
        .unwrap_or_else(|| panic!("fixture {name} is not in companion_protocol::fixtures::ALL"))
}

/// A fixture as a JSON value.
pub(crate) fn fixture_value(name: &str) -> Value {
    serde_json::from_str(fixture_text(name))
        .unwrap_or_else(|e| panic!("fixture {name} is not JSON: {e}"))
}

/// Parses a fixture into `T`, failing with the fixture's name.
pub(crate) fn parse<T: DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(fixture_text(name)).unwrap_or_else(|e| {
        panic!(
            "fixture {name} must deserialize into {}: {e}",
            std::any::type_name::<T>()
        )
    })
}

/// Serializes to a JSON value.
pub(crate) fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("our types always serialize")
}

/// The member names of a JSON object.
pub(crate) fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("expected an object, got {value}"))
        .keys()
        .cloned()
        .collect()
}

/// Removes the named members (recursively, at any depth) and renames members, so a fixture can be compared with
/// our re-serialization where Auth0's input legitimately differs (fields we ignore, alternate spellings we read).
pub(crate) fn normalize(value: &Value, dropped: &[&str], renamed: &[(&str, &str)]) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !dropped.contains(&k.as_str()))
                .map(|(k, v)| {
                    let key = renamed
                        .iter()
                        .find(|(from, _)| from == k)
                        .map_or_else(|| k.clone(), |(_, to)| (*to).to_owned());
                    (key, normalize(v, dropped, renamed))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| normalize(v, dropped, renamed))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Parses a fixture into `T`, serializes it again and asserts that the result equals the fixture after
/// `normalize(dropped, renamed)`: same field names, same values, nothing invented.
pub(crate) fn assert_round_trip<T: DeserializeOwned + Serialize>(
    name: &str,
    dropped: &[&str],
    renamed: &[(&str, &str)],
) -> T {
    let parsed: T = parse(name);
    let expected = normalize(&fixture_value(name), dropped, renamed);
    let actual = to_value(&parsed);
    assert_eq!(
        actual,
        expected,
        "{name}: re-serializing {} must give Auth0's field names and values back",
        std::any::type_name::<T>()
    );
    parsed
}
