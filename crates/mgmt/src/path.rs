//! Percent-encoding of ids into Management API paths.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything except RFC 3986 unreserved characters (`ALPHA / DIGIT / "-" / "." / "_" / "~"`) is encoded.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why an id cannot be placed into a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentError {
    /// The id is empty.
    Empty,
    /// The id is `.` or `..`, which URL parsers treat as dot segments even when encoded.
    DotSegment,
}

/// Percent-encodes one path segment: `auth0|x` becomes `auth0%7Cx`, `a/b` becomes `a%2Fb`.
///
/// # Errors
/// Empty ids and the dot segments `.` and `..` are refused: they would change the path's meaning.
pub(crate) fn encode_segment(id: &str) -> Result<String, SegmentError> {
    match id {
        "" => Err(SegmentError::Empty),
        "." | ".." => Err(SegmentError::DotSegment),
        _ => Ok(utf8_percent_encode(id, PATH_SEGMENT).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_pipes_and_reserved_characters() {
        assert_eq!(encode_segment("auth0|x").unwrap(), "auth0%7Cx");
        assert_eq!(
            encode_segment("email|dev_f0O81fTcftc0kN2v").unwrap(),
            "email%7Cdev_f0O81fTcftc0kN2v"
        );
        assert_eq!(encode_segment("a/b").unwrap(), "a%2Fb");
        assert_eq!(encode_segment("%2F").unwrap(), "%252F");
        assert_eq!(encode_segment("a?b#c&d=e").unwrap(), "a%3Fb%23c%26d%3De");
        assert_eq!(encode_segment("sp ace+").unwrap(), "sp%20ace%2B");
        assert_eq!(encode_segment("é").unwrap(), "%C3%A9");
        assert_eq!(
            encode_segment("google-oauth2|1.2_3~4").unwrap(),
            "google-oauth2%7C1.2_3~4"
        );
    }

    #[test]
    fn refuses_segments_that_change_the_path() {
        assert_eq!(encode_segment(""), Err(SegmentError::Empty));
        assert_eq!(encode_segment("."), Err(SegmentError::DotSegment));
        assert_eq!(encode_segment(".."), Err(SegmentError::DotSegment));
        assert_eq!(encode_segment("...").unwrap(), "...");
    }
}
