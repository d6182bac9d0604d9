//! Readers of the managed (organization) layer on macOS and Windows, in the same schema as the TOML file.
//!
//! macOS: a managed-preferences property list (delivered by an MDM profile) at [`MACOS_MANAGED_PLIST`].
//! Windows: policy registry values under `HKLM\`[`WINDOWS_POLICY_KEY`] (`REG_SZ`/`REG_EXPAND_SZ` strings,
//! `REG_DWORD`/`REG_QWORD` numbers, `REG_MULTI_SZ` lists). The platform readers are behind `cfg`; the parsing
//! is plain code, unit-tested on every platform.

use std::path::Path;

#[cfg(any(target_os = "macos", test))]
use super::RawValue;
use super::{ConfigError, Origin, PartialConfig};

/// The macOS managed-preferences file (preference domain = the app's bundle identifier).
pub const MACOS_MANAGED_PLIST: &str =
    "/Library/Managed Preferences/dev.passkey-companion.desktop.plist";
/// The Windows policy key under `HKEY_LOCAL_MACHINE`.
pub const WINDOWS_POLICY_KEY: &str = r"Software\Policies\PasskeyCompanion";

/// One registry value, as the Windows reader hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryValue {
    /// `REG_SZ` or `REG_EXPAND_SZ` (not expanded).
    Sz(String),
    /// `REG_DWORD`.
    Dword(u32),
    /// `REG_QWORD`.
    Qword(u64),
    /// `REG_MULTI_SZ`.
    MultiSz(Vec<String>),
    /// Any other type (binary, ...), named for the error message.
    Unsupported(String),
}

/// Builds the managed layer from the policy key's values.
///
/// # Errors
/// [`ConfigError::UnknownKey`] or [`ConfigError::InvalidValue`] naming the registry key and value.
pub fn layer_from_registry(
    values: Vec<(String, RegistryValue)>,
) -> Result<PartialConfig, ConfigError> {
    use super::RawValue as R;
    let origin = Origin::Registry(format!(r"HKLM\{WINDOWS_POLICY_KEY}"));
    let mut pairs = Vec::new();
    for (name, value) in values {
        let raw = match value {
            RegistryValue::Sz(s) => R::Str(s),
            RegistryValue::Dword(n) => R::Int(i64::from(n)),
            RegistryValue::Qword(n) => R::Int(i64::try_from(n).unwrap_or(i64::MAX)),
            RegistryValue::MultiSz(items) => R::List(items.into_iter().map(R::Str).collect()),
            RegistryValue::Unsupported(kind) => {
                return Err(match super::ConfigKey::from_name(&name) {
                    Some(key) => ConfigError::InvalidValue {
                        origin,
                        key,
                        reason: format!("registry type {kind} is not supported"),
                    },
                    None => ConfigError::UnknownKey { origin, key: name },
                });
            }
        };
        pairs.push((name, raw));
    }
    PartialConfig::from_pairs(&origin, pairs)
}

/// Builds the managed layer from a property list's bytes (XML or binary); the top level must be a dictionary.
///
/// # Errors
/// [`ConfigError::Syntax`], [`ConfigError::UnknownKey`] or [`ConfigError::InvalidValue`] naming `path`.
#[cfg(any(target_os = "macos", test))]
pub fn layer_from_plist(path: &Path, bytes: &[u8]) -> Result<PartialConfig, ConfigError> {
    let origin = Origin::File(path.to_path_buf());
    let value = plist::Value::from_reader(std::io::Cursor::new(bytes)).map_err(|e| {
        ConfigError::Syntax {
            origin: origin.clone(),
            reason: e.to_string(),
        }
    })?;
    let plist::Value::Dictionary(dict) = value else {
        return Err(ConfigError::Syntax {
            origin,
            reason: "the top level must be a dictionary".to_owned(),
        });
    };
    fn raw(value: plist::Value) -> Result<RawValue, String> {
        Ok(match value {
            plist::Value::String(s) => RawValue::Str(s),
            plist::Value::Boolean(b) => RawValue::Bool(b),
            plist::Value::Integer(i) => RawValue::Int(
                i.as_signed()
                    .ok_or_else(|| "the integer is out of range".to_owned())?,
            ),
            plist::Value::Array(items) => {
                RawValue::List(items.into_iter().map(raw).collect::<Result<_, _>>()?)
            }
            _ => return Err("only strings, integers, booleans and arrays are accepted".to_owned()),
        })
    }
    let mut pairs = Vec::new();
    for (name, value) in dict {
        let value = raw(value).map_err(|reason| match super::ConfigKey::from_name(&name) {
            Some(key) => ConfigError::InvalidValue {
                origin: origin.clone(),
                key,
                reason,
            },
            None => ConfigError::UnknownKey {
                origin: origin.clone(),
                key: name.clone(),
            },
        })?;
        pairs.push((name, value));
    }
    PartialConfig::from_pairs(&origin, pairs)
}

/// Reads the managed-preferences property list; a missing file is an empty layer.
///
/// # Errors
/// [`ConfigError::Read`] or a parsing error; on platforms other than macOS, a syntax error saying so.
pub fn read_plist_file(path: &Path) -> Result<PartialConfig, ConfigError> {
    #[cfg(target_os = "macos")]
    {
        match std::fs::read(path) {
            Ok(bytes) => layer_from_plist(path, &bytes),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Ok(PartialConfig::default())
            }
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
    #[cfg(not(target_os = "macos"))]
    {
        Err(ConfigError::Syntax {
            origin: Origin::File(path.to_path_buf()),
            reason: "managed property lists are read on macOS only".to_owned(),
        })
    }
}

/// Reads the Windows policy key; a missing key is an empty layer.
///
/// # Errors
/// [`ConfigError::Read`] when the key cannot be read, or a parsing error; on other platforms, an error saying so.
pub fn read_windows_policy() -> Result<PartialConfig, ConfigError> {
    #[cfg(windows)]
    {
        use winreg::RegKey;
        use winreg::enums::{HKEY_LOCAL_MACHINE, KEY_READ, RegType};
        use winreg::types::FromRegValue;

        let path = format!(r"HKLM\{WINDOWS_POLICY_KEY}");
        let read_error = |source: std::io::Error| ConfigError::Read {
            path: std::path::PathBuf::from(&path),
            source,
        };
        let key = match RegKey::predef(HKEY_LOCAL_MACHINE)
            .open_subkey_with_flags(WINDOWS_POLICY_KEY, KEY_READ)
        {
            Ok(key) => key,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(PartialConfig::default());
            }
            Err(error) => return Err(read_error(error)),
        };
        let mut values = Vec::new();
        for item in key.enum_values() {
            let (name, value) = item.map_err(read_error)?;
            let converted = match value.vtype {
                RegType::REG_SZ | RegType::REG_EXPAND_SZ => {
                    RegistryValue::Sz(String::from_reg_value(&value).map_err(read_error)?)
                }
                RegType::REG_DWORD => {
                    RegistryValue::Dword(u32::from_reg_value(&value).map_err(read_error)?)
                }
                RegType::REG_QWORD => {
                    RegistryValue::Qword(u64::from_reg_value(&value).map_err(read_error)?)
                }
                RegType::REG_MULTI_SZ => RegistryValue::MultiSz(
                    Vec::<String>::from_reg_value(&value).map_err(read_error)?,
                ),
                ref other => RegistryValue::Unsupported(format!("{other:?}")),
            };
            values.push((name, converted));
        }
        layer_from_registry(values)
    }
    #[cfg(not(windows))]
    {
        Err(ConfigError::Syntax {
            origin: Origin::Registry(format!(r"HKLM\{WINDOWS_POLICY_KEY}")),
            reason: "the policy registry is read on Windows only".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigKey;

    #[test]
    fn registry_values_map_onto_the_schema() {
        let layer = layer_from_registry(vec![
            (
                "auth0_url".into(),
                RegistryValue::Sz("https://acme.eu.auth0.com".into()),
            ),
            ("client_id".into(), RegistryValue::Sz("abc".into())),
            (
                "redirect_ports".into(),
                RegistryValue::MultiSz(vec!["53180".into(), "53181-53182".into()]),
            ),
            (
                "enrollment_types".into(),
                RegistryValue::MultiSz(vec!["webauthn-roaming".into()]),
            ),
        ])
        .unwrap();
        assert_eq!(layer.client_id.as_deref(), Some("abc"));
        assert_eq!(
            layer.redirect_ports.as_deref(),
            Some(&[53180, 53181, 53182][..])
        );
        assert_eq!(layer.enrollment_types.as_ref().map(Vec::len), Some(1));
        let single =
            layer_from_registry(vec![("redirect_ports".into(), RegistryValue::Dword(53185))])
                .unwrap();
        assert_eq!(single.redirect_ports.as_deref(), Some(&[53185][..]));
    }

    #[test]
    fn registry_errors_name_the_key_and_value() {
        let error =
            layer_from_registry(vec![("proxy_url".into(), RegistryValue::Dword(1))]).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains(r"Software\Policies\PasskeyCompanion"),
            "{text}"
        );
        assert!(text.contains("proxy_url"), "{text}");
        let error = layer_from_registry(vec![("colour".into(), RegistryValue::Sz("x".into()))])
            .unwrap_err();
        assert!(
            matches!(error, ConfigError::UnknownKey { ref key, .. } if key == "colour"),
            "{error}"
        );
        let error = layer_from_registry(vec![(
            "browser".into(),
            RegistryValue::Unsupported("REG_BINARY".into()),
        )])
        .unwrap_err();
        assert!(
            matches!(
                error,
                ConfigError::InvalidValue {
                    key: ConfigKey::Browser,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn plists_in_xml_and_binary_map_onto_the_schema() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
  <key>auth0_url</key><string>https://acme.eu.auth0.com</string>
  <key>redirect_ports</key><array><integer>53180</integer><integer>53181</integer></array>
  <key>browser</key><array><string>open</string><string>-a</string><string>Safari</string></array>
</dict></plist>"#;
        let path = Path::new("/Library/Managed Preferences/dev.passkey-companion.desktop.plist");
        let layer = layer_from_plist(path, xml).unwrap();
        assert_eq!(
            layer.auth0_url.as_ref().map(url::Url::as_str),
            Some("https://acme.eu.auth0.com/")
        );
        assert_eq!(layer.redirect_ports.as_deref(), Some(&[53180, 53181][..]));
        assert_eq!(layer.browser.as_ref().map(|b| b.args.len()), Some(2));

        let mut dict = plist::Dictionary::new();
        dict.insert("client_id".into(), plist::Value::String("desktop".into()));
        let mut binary = Vec::new();
        plist::Value::Dictionary(dict)
            .to_writer_binary(&mut binary)
            .unwrap();
        let layer = layer_from_plist(path, &binary).unwrap();
        assert_eq!(layer.client_id.as_deref(), Some("desktop"));
    }

    #[test]
    fn plist_errors_name_the_file_and_key() {
        let path = Path::new("/Library/Managed Preferences/x.plist");
        let xml = br#"<plist version="1.0"><dict><key>proxy_url</key><string>http://example.com</string></dict></plist>"#;
        let text = layer_from_plist(path, xml).unwrap_err().to_string();
        assert!(
            text.contains("x.plist") && text.contains("proxy_url"),
            "{text}"
        );
        let xml =
            br#"<plist version="1.0"><dict><key>audience</key><real>1.5</real></dict></plist>"#;
        let text = layer_from_plist(path, xml).unwrap_err().to_string();
        assert!(text.contains("audience"), "{text}");
        let xml = br#"<plist version="1.0"><array/></plist>"#;
        assert!(matches!(
            layer_from_plist(path, xml),
            Err(ConfigError::Syntax { .. })
        ));
        assert!(matches!(
            layer_from_plist(path, b"garbage"),
            Err(ConfigError::Syntax { .. })
        ));
    }
}
