//! [`export`]: the configurations IT distributes, read from the provisioned tenant: the proxy's `proxy.toml`
//! (design.md §3 keys) and the desktop app's managed `config.toml` (design.md §5 keys). Neither holds a secret: the
//! proxy reads its client secret from `mgmt_client_secret_file` (written by `apply --secrets-out`).

use companion_mgmt::MgmtClient;
use serde::Serialize;

use crate::engine::{find_unique, list_all};
use crate::error::AdminError;
use crate::spec::TenantSpec;

/// The two exported files' contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// `proxy.toml` for `companion-proxy --config`.
    pub proxy_toml: String,
    /// The managed desktop configuration (`/etc/passkey-companion/config.toml`).
    pub desktop_toml: String,
}

#[derive(Serialize)]
struct ProxyConfig<'a> {
    listen: &'a str,
    auth0_url: &'a str,
    audience: &'a str,
    mgmt_client_id: &'a str,
    mgmt_client_secret_file: &'a str,
    step_up_max_age: String,
}

#[derive(Serialize)]
struct DesktopConfig<'a> {
    auth0_url: &'a str,
    client_id: &'a str,
    audience: &'a str,
    proxy_url: &'a str,
    redirect_ports: &'a [u16],
    enrollment_types: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    support_url: Option<&'a str>,
}

/// Reads the client ids from the tenant and renders both configurations.
///
/// # Errors
/// [`AdminError`] when the tenant cannot be read or a client of the spec does not exist yet (run `apply`).
pub async fn export(client: &MgmtClient, spec: &TenantSpec) -> Result<Exported, AdminError> {
    spec.validate()?;
    let step = "export: read clients";
    let clients = list_all(client, step, "/clients", "clients").await?;
    let id_of = |name: &str, role: &str| -> Result<String, AdminError> {
        find_unique(&clients, "name", name, step)?
            .and_then(|c| c["client_id"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| AdminError::Tenant {
                step: step.to_owned(),
                message: format!("the {role} client {name:?} does not exist; run apply first"),
            })
    };
    let desktop_id = id_of(&spec.desktop.name, "desktop")?;
    let proxy_id = id_of(&spec.proxy.name, "proxy")?;
    let auth0_url = client.tenant_url();
    let proxy = ProxyConfig {
        listen: &spec.proxy.listen,
        auth0_url,
        audience: &spec.api.identifier,
        mgmt_client_id: &proxy_id,
        mgmt_client_secret_file: &spec.proxy.secret_file,
        step_up_max_age: spec.proxy.step_up_max_age.to_string(),
    };
    let desktop = DesktopConfig {
        auth0_url,
        client_id: &desktop_id,
        audience: &spec.api.identifier,
        proxy_url: &spec.proxy.url,
        redirect_ports: &spec.desktop.callback_ports,
        enrollment_types: &spec.desktop.enrollment_types,
        support_url: spec.desktop.support_url.as_deref(),
    };
    let render = |what: &str, value: Result<String, toml::ser::Error>| {
        value.map_err(|e| AdminError::Tenant {
            step: format!("export: render the {what} configuration"),
            message: e.to_string(),
        })
    };
    Ok(Exported {
        proxy_toml: format!(
            "# companion-proxy configuration, exported by companion-admin.\n{}",
            render("proxy", toml::to_string(&proxy))?
        ),
        desktop_toml: format!(
            "# Passkey Companion managed configuration, exported by companion-admin.\n{}",
            render("desktop", toml::to_string(&desktop))?
        ),
    })
}
