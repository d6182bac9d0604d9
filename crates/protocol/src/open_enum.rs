//! A macro for string enumerations that stay open to values this build does not know.
//!
//! Auth0 adds factor names, policies and types over time; a closed enum would turn each addition into a
//! deserialization failure. Every enum made here keeps an unknown value verbatim in its `Unknown` variant and
//! serializes it back unchanged.

/// Defines an open string enum with `as_str`, `From<String>`, `From<&str>`, `From<Self> for String`, `Display`
/// and serde support through `String`.
///
/// Each variant lists its canonical spelling first; further spellings after `|` are accepted when reading.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident => $canonical:literal $(| $alias:literal)*,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )+
            /// A value this build does not know, kept exactly as received.
            Unknown(String),
        }

        impl $name {
            /// Every value this build knows, in canonical spelling order.
            pub const KNOWN: &'static [Self] = &[$(Self::$variant),+];

            /// The canonical wire spelling of this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $canonical,)+
                    Self::Unknown(other) => other,
                }
            }

            /// Whether this value is one this build knows.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Unknown(_))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match value.as_str() {
                    $($canonical $(| $alias)* => Self::$variant,)+
                    _ => Self::Unknown(value),
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::from(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                match value {
                    $name::Unknown(other) => other,
                    known => known.as_str().to_owned(),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use open_enum;
