//! Reading the attested credential data (AAGUID, credential id, COSE public key bytes) out of an attestation
//! object, after `webauthn-rs` verified it; a minimal CBOR walker, enough for CTAP's canonical encoding.

/// The `authData` byte string of a CBOR attestation object (`{"fmt", "attStmt", "authData"}`).
pub(super) fn auth_data(attestation_object: &[u8]) -> Option<&[u8]> {
    let (major, entries, mut pos) = cbor_head(attestation_object, 0)?;
    if major != 5 {
        return None;
    }
    for _ in 0..entries {
        let (key_major, key_len, key_head) = cbor_head(attestation_object, pos)?;
        let key_end = pos
            .checked_add(key_head)?
            .checked_add(usize::try_from(key_len).ok()?)?;
        let key = (key_major == 3)
            .then(|| attestation_object.get(pos + key_head..key_end))
            .flatten();
        let value_start = if key_major == 3 {
            key_end
        } else {
            cbor_skip(attestation_object, pos, 0)?
        };
        if key == Some(b"authData".as_slice()) {
            let (major, len, head) = cbor_head(attestation_object, value_start)?;
            if major != 2 {
                return None;
            }
            let start = value_start.checked_add(head)?;
            return attestation_object.get(start..start.checked_add(usize::try_from(len).ok()?)?);
        }
        pos = cbor_skip(attestation_object, value_start, 0)?;
    }
    None
}

/// What the attested credential data of `authData` holds.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct AttestedCredential {
    /// The authenticator's AAGUID.
    pub(super) aaguid: [u8; 16],
    /// The credential id.
    pub(super) credential_id: Vec<u8>,
    /// The COSE public key, as the authenticator encoded it.
    pub(super) cose_key: Vec<u8>,
}

/// Parses `authData`: rpIdHash (32), flags (1), signCount (4), then (flag AT) AAGUID (16), credential id
/// length (2, big endian), credential id, COSE public key (one CBOR item).
pub(super) fn attested_credential_data(auth_data: &[u8]) -> Option<AttestedCredential> {
    const AT: u8 = 0x40;
    let flags = *auth_data.get(32)?;
    if flags & AT == 0 {
        return None;
    }
    let aaguid: [u8; 16] = auth_data.get(37..53)?.try_into().ok()?;
    let len = usize::from(u16::from_be_bytes(auth_data.get(53..55)?.try_into().ok()?));
    let credential_id = auth_data.get(55..55 + len)?.to_vec();
    let key_start = 55 + len;
    let key_end = cbor_skip(auth_data, key_start, 0)?;
    Some(AttestedCredential {
        aaguid,
        credential_id,
        cose_key: auth_data.get(key_start..key_end)?.to_vec(),
    })
}

/// The head of the CBOR item at `pos`: (major type, argument, head length). Indefinite lengths are refused.
fn cbor_head(data: &[u8], pos: usize) -> Option<(u8, u64, usize)> {
    let first = *data.get(pos)?;
    let major = first >> 5;
    let info = first & 0x1f;
    let (arg, extra) = match info {
        0..=23 => (u64::from(info), 0),
        24 => (u64::from(*data.get(pos + 1)?), 1),
        25 => (
            u64::from(u16::from_be_bytes(
                data.get(pos + 1..pos + 3)?.try_into().ok()?,
            )),
            2,
        ),
        26 => (
            u64::from(u32::from_be_bytes(
                data.get(pos + 1..pos + 5)?.try_into().ok()?,
            )),
            4,
        ),
        27 => (
            u64::from_be_bytes(data.get(pos + 1..pos + 9)?.try_into().ok()?),
            8,
        ),
        _ => return None,
    };
    Some((major, arg, 1 + extra))
}

/// The position just after the CBOR item at `pos`.
fn cbor_skip(data: &[u8], pos: usize, depth: u8) -> Option<usize> {
    if depth > 16 {
        return None;
    }
    let (major, arg, head) = cbor_head(data, pos)?;
    let mut next = pos.checked_add(head)?;
    match major {
        0 | 1 | 7 => {}
        2 | 3 => {
            next = next.checked_add(usize::try_from(arg).ok()?)?;
            if next > data.len() {
                return None;
            }
        }
        4 | 5 => {
            let items = if major == 5 { arg.checked_mul(2)? } else { arg };
            for _ in 0..items {
                next = cbor_skip(data, next, depth + 1)?;
            }
        }
        6 => next = cbor_skip(data, next, depth + 1)?,
        _ => return None,
    }
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an authData with attested credential data: flags AT|UP, AAGUID, id, and an EC2 COSE key.
    fn sample_auth_data(aaguid: [u8; 16], id: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        cose.extend([7u8; 32]);
        cose.extend([0x22, 0x58, 0x20]);
        cose.extend([9u8; 32]);
        let mut data = vec![0u8; 32];
        data.push(0x41);
        data.extend([0, 0, 0, 5]);
        data.extend(aaguid);
        data.extend(u16::try_from(id.len()).expect("short id").to_be_bytes());
        data.extend(id);
        data.extend(&cose);
        (data, cose)
    }

    #[test]
    fn attestation_objects_yield_aaguid_id_and_cose_key() {
        let aaguid = [1u8, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let (auth, cose) = sample_auth_data(aaguid, b"credential-id");
        // {"fmt": "none", "attStmt": {}, "authData": h'...'}
        let mut att = vec![0xa3, 0x63];
        att.extend(b"fmt");
        att.extend([0x64]);
        att.extend(b"none");
        att.extend([0x67]);
        att.extend(b"attStmt");
        att.extend([0xa0, 0x68]);
        att.extend(b"authData");
        att.extend([0x59]);
        att.extend(u16::try_from(auth.len()).expect("short").to_be_bytes());
        att.extend(&auth);
        let found = auth_data(&att).expect("authData found");
        assert_eq!(found, auth.as_slice());
        let attested = attested_credential_data(found).expect("attested data");
        assert_eq!(attested.aaguid, aaguid);
        assert_eq!(attested.credential_id, b"credential-id");
        assert_eq!(attested.cose_key, cose);
        assert!(
            auth_data(&att[..att.len() - 1]).is_none(),
            "truncated input is refused"
        );
    }
}
