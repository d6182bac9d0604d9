//! State of the tenant-configuration endpoints that the seeded world does not hold: scope descriptions, client
//! refresh-token settings, Actions with their versions, and trigger bindings. Persisted with the rest of the store
//! (every field defaults, so older state files still load).
//!
//! Ids of seeded objects are derived from their natural keys ([`resource_server_id`], [`client_grant_id`]), so
//! seeded APIs and grants have stable ids without the world file naming them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::oidc::tokens::MGMT_GRANT_AUDIENCE;
use crate::store::digest;

/// Configuration objects managed through the Management API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MgmtObjects {
    /// API identifier → scope value → description.
    #[serde(default)]
    pub scope_descriptions: BTreeMap<String, BTreeMap<String, String>>,
    /// Client id → its `refresh_token` settings object as Auth0 serves it (absent: Auth0's defaults).
    #[serde(default)]
    pub refresh_tokens: BTreeMap<String, Value>,
    /// Actions, in creation order.
    #[serde(default)]
    pub actions: Vec<StoredAction>,
    /// Trigger id (e.g. `post-login`) → its ordered bindings.
    #[serde(default)]
    pub bindings: BTreeMap<String, Vec<StoredBinding>>,
}

/// An Action and its deployed versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAction {
    /// UUID.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `[{"id":"post-login","version":"v3"}]`.
    pub supported_triggers: Value,
    /// The current (draft) code.
    pub code: String,
    /// `node22`, ...
    pub runtime: String,
    /// `[{"name","version"}]`.
    pub dependencies: Value,
    /// Secrets: names and digests of their values only.
    pub secrets: Vec<StoredSecret>,
    /// Auth0 timestamp of creation.
    pub created_at: String,
    /// Auth0 timestamp of the latest change.
    pub updated_at: String,
    /// Tenant-clock Unix seconds of the latest change (the build starts then).
    pub updated_unix: i64,
    /// Reads of the Action since its latest change: the build advances one step per read.
    pub reads_since_update: u32,
    /// Deployed versions, oldest first.
    pub versions: Vec<StoredVersion>,
    /// Whether the draft equals the deployed version.
    pub all_changes_deployed: bool,
}

/// An Action secret; its value is kept as a digest only and never served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    /// The name.
    pub name: String,
    /// [`digest`] of the value.
    pub value_digest: String,
    /// Auth0 timestamp of the latest change.
    pub updated_at: String,
}

/// A deployed version of an Action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredVersion {
    /// UUID.
    pub id: String,
    /// 1, 2, ...
    pub number: u32,
    /// The code deployed.
    pub code: String,
    /// The runtime.
    pub runtime: String,
    /// Auth0 timestamp of the deployment.
    pub created_at: String,
}

/// One binding of an Action to a trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBinding {
    /// UUID.
    pub id: String,
    /// The bound Action.
    pub action_id: String,
    /// Display name.
    pub display_name: String,
    /// Auth0 timestamp of creation.
    pub created_at: String,
    /// Auth0 timestamp of the latest change.
    pub updated_at: String,
}

/// The id of the resource server with `identifier` (24 hex characters, as Auth0's look).
pub fn resource_server_id(identifier: &str) -> String {
    digest(&format!("resource-server\u{0}{identifier}"))[..24].to_owned()
}

/// The id of the client grant of `client_id` for `audience` (`cgr_` and 16 characters); `mgmt_audience` and the
/// world file's `mgmt` spelling give the same id.
pub fn client_grant_id(client_id: &str, audience: &str, mgmt_audience: &str) -> String {
    let audience = if audience == mgmt_audience {
        MGMT_GRANT_AUDIENCE
    } else {
        audience
    };
    format!(
        "cgr_{}",
        &digest(&format!("client-grant\u{0}{client_id}\u{0}{audience}"))[..16]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(resource_server_id("a"), resource_server_id("a"));
        assert_ne!(resource_server_id("a"), resource_server_id("b"));
        assert_eq!(resource_server_id("a").len(), 24);
        let base = "http://localhost:1/api/v2/";
        assert_eq!(
            client_grant_id("c", "mgmt", base),
            client_grant_id("c", base, base),
            "both spellings of the Management API audience name one grant"
        );
        assert!(client_grant_id("c", "x", base).starts_with("cgr_"));
        assert_ne!(
            client_grant_id("c", "x", base),
            client_grant_id("d", "x", base)
        );
    }
}
