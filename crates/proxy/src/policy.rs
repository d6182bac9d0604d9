//! The proxy's rules: which methods can complete MFA, the lockout guard, and the step-up requirement.
//!
//! Decisions (design.md §3):
//! - A method *can complete MFA* when it is confirmed (or `confirmed` is absent, as in POST/PATCH answers) and its
//!   type is `totp`, `webauthn-roaming`, `webauthn-platform`, `passkey`, `phone`, `email`, `push` or `guardian`.
//!   `password` never counts; `email-verification` and unknown future types do not count (conservative).
//! - A `recovery-code` can answer an MFA challenge once, but it is a last resort that the user may not have kept:
//!   it does **not** count as a remaining factor for the lockout guard. It **does** count as "the user already has
//!   MFA" for the enrollment step-up, so a stolen non-MFA session cannot add a key to an account protected by a
//!   recovery code alone.
//! - Lockout guard: removing a method that can complete MFA is refused when no *other* such credential remains.
//!   Credentials are counted, not kinds: two security keys are two. Methods linked to the removed one (same
//!   `link_id`) go with it and do not count. Removing a method that cannot complete MFA is always allowed.
//! - Step-up: the token's `https://passkey-companion/mfa_time` must be present and at most `max_age` old.

use std::time::Duration;

use companion_protocol::auth0::{AuthenticationMethod, MethodType};

/// Whether `method` can complete an MFA challenge and counts as a remaining factor for the lockout guard.
pub fn is_usable_factor(method: &AuthenticationMethod) -> bool {
    method.confirmed != Some(false)
        && matches!(
            method.kind,
            MethodType::Totp
                | MethodType::WebauthnRoaming
                | MethodType::WebauthnPlatform
                | MethodType::Passkey
                | MethodType::Phone
                | MethodType::Email
                | MethodType::Push
                | MethodType::Guardian
        )
}

/// Whether the user already has any MFA method (usable factors plus a confirmed recovery code): enrolling then
/// needs a step-up.
pub fn has_mfa(methods: &[AuthenticationMethod]) -> bool {
    methods.iter().any(|m| {
        is_usable_factor(m) || (m.kind == MethodType::RecoveryCode && m.confirmed != Some(false))
    })
}

/// Whether `target` may be removed from `methods` without leaving the user unable to complete MFA.
pub fn removable(methods: &[AuthenticationMethod], target: &AuthenticationMethod) -> bool {
    if !is_usable_factor(target) {
        return true;
    }
    let goes_with_target = |m: &AuthenticationMethod| {
        m.id == target.id
            || (target.link_id.is_some() && m.link_id.as_deref() == target.link_id.as_deref())
    };
    methods
        .iter()
        .any(|m| !goes_with_target(m) && is_usable_factor(m))
}

/// The outcome of a step-up check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUp {
    /// A recent enough MFA is on record.
    Fresh,
    /// No MFA in this session.
    Missing,
    /// The latest MFA is older than the window.
    Stale,
}

/// Checks `mfa_time` (epoch seconds) against `now` and `max_age`. A time slightly in the future (clock skew
/// within `leeway`) counts as fresh; one further in the future is refused as stale.
pub fn step_up(mfa_time: Option<i64>, now: i64, max_age: Duration, leeway: Duration) -> StepUp {
    let Some(mfa_time) = mfa_time else {
        return StepUp::Missing;
    };
    let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    let leeway = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
    if mfa_time > now.saturating_add(leeway) {
        return StepUp::Stale;
    }
    if now.saturating_sub(mfa_time) > max_age {
        StepUp::Stale
    } else {
        StepUp::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(id: &str) -> AuthenticationMethod {
        let kind = id.split('|').next().unwrap_or_default();
        serde_json::from_value(serde_json::json!({
            "id": id, "type": kind, "created_at": "2026-01-01T00:00:00.000Z", "confirmed": true
        }))
        .unwrap()
    }

    #[test]
    fn the_last_usable_factor_cannot_be_removed() {
        let key = method("webauthn-roaming|dev_a");
        let code = method("recovery-code|dev_r");
        let password = method("password|dev_p");
        let methods = vec![key.clone(), code.clone(), password.clone()];
        assert!(
            !removable(&methods, &key),
            "a recovery code and a password do not keep the account usable"
        );
        assert!(
            removable(&methods, &code),
            "removing a recovery code is allowed"
        );
        assert!(removable(&methods, &password));
    }

    #[test]
    fn credentials_are_counted_not_kinds() {
        let lost = method("webauthn-roaming|dev_lost");
        let spare = method("webauthn-roaming|dev_spare");
        let methods = vec![lost.clone(), spare.clone()];
        assert!(
            removable(&methods, &lost),
            "a lost key is removable while a second key remains"
        );
        assert!(removable(&methods, &spare));
        assert!(!removable(std::slice::from_ref(&lost), &lost));
    }

    #[test]
    fn unconfirmed_and_linked_methods_do_not_count() {
        let key = method("webauthn-roaming|dev_a");
        let mut pending = method("totp|dev_t");
        pending.confirmed = Some(false);
        assert!(!removable(&[key.clone(), pending], &key));

        let mut phone = method("phone|dev_p");
        phone.link_id = Some("lnk_1".into());
        let mut linked = method("email|dev_e");
        linked.link_id = Some("lnk_1".into());
        assert!(
            !removable(&[phone.clone(), linked], &phone),
            "a method deleted together with the target does not remain"
        );
        let mut absent = method("totp|dev_x");
        absent.confirmed = None;
        assert!(
            removable(&[phone.clone(), absent], &phone),
            "confirmed is assumed when absent"
        );
    }

    #[test]
    fn unknown_and_non_mfa_types_do_not_count() {
        let key = method("webauthn-roaming|dev_a");
        for other in [
            "email-verification|dev_v",
            "future-kind|dev_f",
            "password|dev_p",
        ] {
            assert!(
                !removable(&[key.clone(), method(other)], &key),
                "{other} is not a usable factor"
            );
        }
        for usable in [
            "totp|dev_t",
            "webauthn-platform|dev_w",
            "passkey|dev_k",
            "phone|dev_p",
            "email|dev_e",
            "push|dev_g",
        ] {
            assert!(
                removable(&[key.clone(), method(usable)], &key),
                "{usable} is a usable factor"
            );
        }
    }

    #[test]
    fn recovery_codes_count_as_existing_mfa_for_enrollment() {
        assert!(!has_mfa(&[]));
        assert!(!has_mfa(&[method("password|dev_p")]));
        assert!(has_mfa(&[method("recovery-code|dev_r")]));
        assert!(has_mfa(&[method("totp|dev_t")]));
    }

    #[test]
    fn step_up_window() {
        let max = Duration::from_secs(300);
        let leeway = Duration::from_secs(30);
        assert_eq!(step_up(None, 1000, max, leeway), StepUp::Missing);
        assert_eq!(step_up(Some(1000), 1000, max, leeway), StepUp::Fresh);
        assert_eq!(step_up(Some(700), 1000, max, leeway), StepUp::Fresh);
        assert_eq!(step_up(Some(699), 1000, max, leeway), StepUp::Stale);
        assert_eq!(step_up(Some(1020), 1000, max, leeway), StepUp::Fresh);
        assert_eq!(step_up(Some(5000), 1000, max, leeway), StepUp::Stale);
    }
}
