//! Token stores: memory, a real Secret Service keyring, and the typed error when no keyring is reachable.

use std::process::Command;

use companion_client::store::{KeyringStore, MemoryStore, StoreAccount, StoreError, TokenStore};
use openidconnect::RefreshToken;

/// Set in the child process of [`unavailable_keyring_gives_the_typed_error`].
const CHILD_MARKER: &str = "COMPANION_TEST_KEYRING_CHILD";

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

fn exercise(store: &dyn TokenStore, reopen: &dyn Fn() -> Box<dyn TokenStore>) {
    let account = StoreAccount::new("localhost:1", unique("client"));
    let other = StoreAccount::new("localhost:2", account.client_id.clone());
    assert!(
        store.load(&account).expect("load").is_none(),
        "fresh account is empty"
    );
    store
        .save(&account, &RefreshToken::new("rt-one".into()))
        .expect("save");
    let reopened = reopen();
    assert_eq!(
        reopened
            .load(&account)
            .expect("load")
            .map(|t| t.secret().clone()),
        Some("rt-one".to_owned()),
        "a value saved through one handle reads back through another"
    );
    assert!(
        reopened.load(&other).expect("load").is_none(),
        "tenants are separate entries"
    );
    store
        .save(&account, &RefreshToken::new("rt-two".into()))
        .expect("replace");
    assert_eq!(
        store
            .load(&account)
            .expect("load")
            .map(|t| t.secret().clone()),
        Some("rt-two".to_owned()),
        "save replaces"
    );
    store.delete(&account).expect("delete");
    assert!(store.load(&account).expect("load").is_none(), "deleted");
    store
        .delete(&account)
        .expect("deleting an absent entry succeeds");
}

#[test]
fn memory_store_round_trips() {
    let store = std::sync::Arc::new(MemoryStore::new());
    let shared = store.clone();
    struct Shared(std::sync::Arc<MemoryStore>);
    impl std::fmt::Debug for Shared {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.fmt(f)
        }
    }
    impl TokenStore for Shared {
        fn load(&self, a: &StoreAccount) -> Result<Option<RefreshToken>, StoreError> {
            self.0.load(a)
        }
        fn save(&self, a: &StoreAccount, t: &RefreshToken) -> Result<(), StoreError> {
            self.0.save(a, t)
        }
        fn delete(&self, a: &StoreAccount) -> Result<(), StoreError> {
            self.0.delete(a)
        }
        fn kind(&self) -> &'static str {
            "memory"
        }
    }
    exercise(store.as_ref(), &|| Box::new(Shared(shared.clone())));
}

#[test]
fn keyring_store_round_trips_through_a_real_secret_service() {
    // Nothing is skipped in this project: without a session bus this test fails and says how to run it.
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "this test needs a D-Bus session with an unlocked Secret Service keyring and none exists \
         (DBUS_SESSION_BUS_ADDRESS is unset): run it under `cargo xtask test`, which runs every test inside \
         dbus-run-session with an unlocked gnome-keyring (README.md, step 4)"
    );
    let service = unique("passkey-companion-test");
    let store = KeyringStore::with_service(service.clone());
    assert_eq!(store.kind(), "keyring");
    if let Err(error) = store.save(
        &StoreAccount::new("localhost:0", unique("probe")),
        &RefreshToken::new("probe".into()),
    ) {
        panic!(
            "the Secret Service in this D-Bus session is not usable ({error}): run under `cargo xtask test`, \
             which starts and unlocks gnome-keyring in its session"
        );
    }
    exercise(&store, &|| {
        Box::new(KeyringStore::with_service(service.clone()))
    });
}

#[test]
fn unavailable_keyring_gives_the_typed_error() {
    if let Some(mode) = std::env::var_os(CHILD_MARKER) {
        // Child: the session bus is missing or points nowhere.
        let store = KeyringStore::with_service(unique("passkey-companion-test"));
        let account = StoreAccount::new("localhost:1", "c");
        let load = store.load(&account);
        assert!(
            matches!(load, Err(StoreError::KeyringUnavailable { .. })),
            "{mode:?}: load must give KeyringUnavailable, got {load:?}"
        );
        let save = store.save(&account, &RefreshToken::new("rt".into()));
        let Err(error) = save else {
            panic!("{mode:?}: save must fail without a keyring");
        };
        assert!(error.is_unavailable(), "{mode:?}: {error:?}");
        assert!(
            !format!("{error} {error:?}").contains("\"rt\""),
            "no token in the error"
        );
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    for (mode, bus) in [
        ("nowhere", Some("unix:path=/nonexistent/companion-test-bus")),
        ("removed", None),
    ] {
        let mut child = Command::new(&exe);
        child
            .args([
                "--exact",
                "store::unavailable_keyring_gives_the_typed_error",
                "--test-threads=1",
            ])
            .env(CHILD_MARKER, mode)
            .env_remove("DISPLAY");
        match bus {
            Some(address) => child.env("DBUS_SESSION_BUS_ADDRESS", address),
            None => child.env_remove("DBUS_SESSION_BUS_ADDRESS"),
        };
        let output = child.output().expect("run the child test");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "child ({mode}) failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
