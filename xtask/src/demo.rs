//! `cargo xtask demo`: the whole product against the local dev tenant.
//!
//! One debug `cargo build`, then: the dev tenant (demo world plus a demo-only admin M2M client, state in
//! `target/demo/devtenant-state.json` so enrollments survive restarts), `companion-admin apply` + `export` with a demo
//! copy of `crates/admin/tenant.toml`, `companion-proxy` from the exported proxy config, and, when a display is
//! available, the desktop app. The exported desktop config becomes the managed settings file
//! `target/demo/managed/config.toml`, which the app and `passkeys` read through `COMPANION_MANAGED_CONFIG`: the same
//! locked managed layer `/etc/passkey-companion/config.toml` is on a managed install (`passkeys config` is run to
//! check it). The banner prints the `passkeys` commands for the demo world. Ctrl-C (or SIGTERM) stops every child's
//! process group.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use companion_devtenant::world::{DEFAULT_WORLD_TOML, demo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::signal::unix::{SignalKind, signal};

use crate::ci::{cargo, format_duration, project_root, run_checked};

/// The default port of the demo tenant.
pub(crate) const DEFAULT_PORT: u16 = 8780;
/// The default port of the proxy (the sample spec's `proxy.listen`).
pub(crate) const DEFAULT_PROXY_PORT: u16 = 8787;

/// The demo-only admin M2M client that provisions the demo tenant with `companion-admin`.
const ADMIN_CLIENT_ID: &str = "companion-demo-admin";
/// Its secret: a published local demo value, like every secret of the demo world.
const ADMIN_CLIENT_SECRET: &str = "demo-admin-secret";
/// The admin's Management API scopes (crates/admin/README.md, plus `read:client_keys` for `--secrets-out`).
const ADMIN_SCOPES: [&str; 18] = [
    "read:resource_servers",
    "create:resource_servers",
    "update:resource_servers",
    "read:clients",
    "create:clients",
    "update:clients",
    "read:client_keys",
    "read:client_grants",
    "create:client_grants",
    "update:client_grants",
    "delete:client_grants",
    "read:guardian_factors",
    "update:guardian_factors",
    "read:mfa_policies",
    "update:mfa_policies",
    "read:actions",
    "create:actions",
    "update:actions",
];

/// The variable that points the desktop side's managed layer at another file (`companion_client::config::
/// MANAGED_CONFIG_ENV`; xtask does not link the client library).
const MANAGED_CONFIG_ENV: &str = "COMPANION_MANAGED_CONFIG";
/// The managed file of a real Linux install, which the override never replaces.
const SYSTEM_MANAGED_FILE: &str = "/etc/passkey-companion/config.toml";

/// How long a server may take to answer after it starts.
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// The ports and options of a demo run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    /// The dev tenant's port (`--port`).
    pub(crate) port: u16,
    /// The proxy's port (`--proxy-port`).
    pub(crate) proxy_port: u16,
    /// Do not start the desktop app even when a display is available (`--no-app`).
    pub(crate) no_app: bool,
}

/// Files of a demo run, all under `target/demo/`.
#[derive(Debug, Clone)]
struct Paths {
    dir: PathBuf,
    world: PathBuf,
    state: PathBuf,
    spec: PathBuf,
    proxy_secret: PathBuf,
    proxy_config: PathBuf,
    desktop_config: PathBuf,
    managed_config: PathBuf,
    bin: PathBuf,
}

impl Paths {
    fn new(dir: PathBuf, bin: PathBuf) -> Self {
        Self {
            world: dir.join("world.toml"),
            state: dir.join("devtenant-state.json"),
            spec: dir.join("tenant.toml"),
            proxy_secret: dir.join("proxy-client-secret"),
            proxy_config: dir.join("proxy.toml"),
            desktop_config: dir.join("desktop-config.toml"),
            managed_config: dir.join("managed").join("config.toml"),
            bin,
            dir,
        }
    }
}

/// Builds what the demo needs, starts it, prints the demo values, and waits for Ctrl-C.
pub(crate) fn run(options: Options) -> Result<()> {
    if options.port == options.proxy_port {
        bail!(
            "--port and --proxy-port are both {}: the tenant and the proxy need different ports",
            options.port
        );
    }
    ensure_port_free(options.port, "--port")?;
    ensure_port_free(options.proxy_port, "--proxy-port")?;
    let display = display_available(|name| std::env::var_os(name));
    let with_app = display && !options.no_app;
    if with_app {
        // The desktop app needs WebKitGTK and friends to build: install what is missing, as `cargo xtask test` does.
        crate::setup::run().context("installing the desktop app's build packages")?;
    }
    let started = Instant::now();
    let packages = build_packages(with_app);
    let mut args = vec!["build", "--quiet"];
    for package in &packages {
        args.extend(["-p", package]);
    }
    run_checked(&mut cargo(&args), &format!("cargo {}", args.join(" ")))?;
    println!(
        "xtask: built {} in {}",
        packages.join(", "),
        format_duration(started.elapsed())
    );
    let paths = Paths::new(
        project_root().join("target").join("demo"),
        target_dir().join("debug"),
    );
    std::fs::create_dir_all(&paths.dir)
        .with_context(|| format!("creating {}", paths.dir.display()))?;
    std::fs::write(&paths.world, demo_world_toml())
        .with_context(|| format!("writing {}", paths.world.display()))?;
    retire_state_without_admin(&paths.state)?;
    let spec = demo_spec(
        &std::fs::read_to_string(project_root().join("crates/admin/tenant.toml"))
            .context("reading crates/admin/tenant.toml")?,
        options.proxy_port,
        &paths.proxy_secret,
    )?;
    std::fs::write(&paths.spec, spec)
        .with_context(|| format!("writing {}", paths.spec.display()))?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(supervise(options, with_app, display, &paths))
}

/// The packages one `cargo build` needs: the app only when it will be started.
fn build_packages(with_app: bool) -> Vec<&'static str> {
    let mut packages = vec![
        "companion-devtenant",
        "companion-admin",
        "companion-proxy",
        "passkeys",
    ];
    if with_app {
        packages.push("passkey-companion");
    }
    packages
}

/// Whether a graphical session is available (`DISPLAY` or `WAYLAND_DISPLAY` set and not empty).
fn display_available(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|name| var(name).is_some_and(|value| !value.is_empty()))
}

/// Fails with a clear message when something already listens on the port; `flag` is how to pick another one.
fn ensure_port_free(port: u16, flag: &str) -> Result<()> {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "port {port} on 127.0.0.1 is busy: another program (perhaps a running demo) listens there; \
             stop it or pick another port with `cargo xtask demo {flag} <port>`"
        ),
        Err(error) => Err(error).with_context(|| format!("checking that port {port} is free")),
    }
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => project_root().join(dir),
        None => project_root().join("target"),
    }
}

/// The built-in demo world plus the demo-only admin client `companion-admin` signs in with.
fn demo_world_toml() -> String {
    let scopes = ADMIN_SCOPES
        .iter()
        .map(|scope| format!("\"{scope}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{DEFAULT_WORLD_TOML}
# Added by `cargo xtask demo`: a DEMO-ONLY admin M2M client so `companion-admin apply` can provision this tenant.
# Its secret is a published local demo value, like every secret above.
[[clients]]
client_id = \"{ADMIN_CLIENT_ID}\"
name = \"companion-admin (demo)\"
app_type = \"non_interactive\"
grant_types = [\"client_credentials\"]
client_secret = \"{ADMIN_CLIENT_SECRET}\"

[[client_grants]]
client_id = \"{ADMIN_CLIENT_ID}\"
audience = \"mgmt\"
scope = [{scopes}]
"
    )
}

/// A state file from before the demo had an admin client cannot be provisioned: move it aside (kept as `.bak`).
fn retire_state_without_admin(state: &Path) -> Result<()> {
    let text = match std::fs::read_to_string(state) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error).with_context(|| format!("reading {}", state.display())),
    };
    if text.contains(ADMIN_CLIENT_ID) {
        return Ok(());
    }
    let backup = state.with_extension("json.bak");
    std::fs::rename(state, &backup).with_context(|| format!("moving {} aside", state.display()))?;
    println!(
        "xtask: {} predates the demo admin client; moved it to {} and starting from the demo world",
        state.display(),
        backup.display()
    );
    Ok(())
}

/// The sample spec with the proxy on loopback: its URL and listen address on `proxy_port`, its secret file in
/// `target/demo/`.
fn demo_spec(sample: &str, proxy_port: u16, secret_file: &Path) -> Result<String> {
    let mut spec: toml::Table = sample.parse().context("parsing crates/admin/tenant.toml")?;
    let proxy = spec
        .get_mut("proxy")
        .and_then(toml::Value::as_table_mut)
        .context("crates/admin/tenant.toml has no [proxy] table")?;
    proxy.insert(
        "url".to_owned(),
        format!("http://127.0.0.1:{proxy_port}").into(),
    );
    proxy.insert(
        "listen".to_owned(),
        format!("127.0.0.1:{proxy_port}").into(),
    );
    proxy.insert(
        "secret_file".to_owned(),
        secret_file.display().to_string().into(),
    );
    Ok(format!(
        "# Written by `cargo xtask demo` from crates/admin/tenant.toml: the proxy on loopback.\n{}",
        toml::to_string(&spec).context("rendering the demo spec")?
    ))
}

/// The demo's managed settings file: the exported desktop config, checked to be a TOML table, under a header that
/// says what it stands in for.
fn managed_config_text(desktop_toml: &str) -> Result<String> {
    let table: toml::Table = desktop_toml
        .parse()
        .context("parsing the exported desktop config")?;
    if table.is_empty() {
        bail!("the exported desktop config sets nothing");
    }
    Ok(format!(
        "# Written by `cargo xtask demo`: the demo's managed settings, read through {MANAGED_CONFIG_ENV} as a managed\n\
         # install reads {SYSTEM_MANAGED_FILE} (every key here is locked). From companion-admin export:\n{desktop_toml}"
    ))
}

/// What is wrong with `passkeys config --json` output, if the managed file's `keys` are not all locked managed
/// values read from `file`.
fn managed_source_problem(
    config: &serde_json::Value,
    file: &Path,
    keys: &[String],
) -> Option<String> {
    let managed = &config["managed"];
    if config["valid"] != true {
        return Some(format!(
            "the configuration is not valid: {}",
            config["problem"].as_str().unwrap_or("no reason given")
        ));
    }
    if managed["location"].as_str() != Some(file.display().to_string().as_str())
        || managed["dev_override"] != true
    {
        return Some(format!(
            "the managed layer is not read from {}: {managed}",
            file.display()
        ));
    }
    let entries = config["entries"].as_array()?;
    for key in keys {
        let entry = entries.iter().find(|e| e["key"] == key.as_str());
        let managed = entry.is_some_and(|e| e["layer"] == "managed" && e["locked"] == true);
        if !managed {
            return Some(format!(
                "`{key}` is not a locked managed key: {}",
                entry.map_or_else(|| "missing".to_owned(), ToString::to_string)
            ));
        }
    }
    None
}

/// Runs `passkeys config` with the managed override and checks that every key of the managed file is reported as
/// set by the managed layer, locked; returns the human `passkeys config` output for the banner.
async fn check_managed_config(paths: &Paths, keys: &[String]) -> Result<String> {
    let passkeys = paths.bin.join("passkeys");
    let run = |json: bool| {
        let mut command = child_command(&passkeys);
        command
            .arg("config")
            .env(MANAGED_CONFIG_ENV, &paths.managed_config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if json {
            command.arg("--json");
        }
        command
    };
    let output = run(true)
        .output()
        .await
        .context("running passkeys config --json")?;
    let config: serde_json::Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "passkeys config --json printed no JSON ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    if let Some(problem) = managed_source_problem(&config, &paths.managed_config, keys) {
        bail!("`passkeys config` with {MANAGED_CONFIG_ENV}: {problem}");
    }
    let output = run(false)
        .output()
        .await
        .context("running passkeys config")?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The arguments of a `companion-admin` run against the demo tenant.
fn admin_args(step: &str, paths: &Paths) -> Vec<String> {
    let mut args = vec![
        step.to_owned(),
        "--spec".to_owned(),
        paths.spec.display().to_string(),
    ];
    match step {
        "apply" => args.extend([
            "--secrets-out".to_owned(),
            paths.proxy_secret.display().to_string(),
        ]),
        "export" => args.extend([
            "--proxy-out".to_owned(),
            paths.proxy_config.display().to_string(),
            "--desktop-out".to_owned(),
            paths.desktop_config.display().to_string(),
        ]),
        _ => {}
    }
    args
}

/// A command for a child: no inherited `COMPANION_*` variables (they would override the demo's files), stdin
/// closed, its own process group so Ctrl-C reaches only xtask, which then stops the group.
fn child_command(program: &Path) -> tokio::process::Command {
    let mut command = std::process::Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("COMPANION_") {
            command.env_remove(name);
        }
    }
    command
        .current_dir(project_root())
        .stdin(Stdio::null())
        .process_group(0);
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    command
}

/// The name of the desktop app child.
const APP: &str = "desktop app";

/// A started child and what to call it.
struct Child {
    name: &'static str,
    child: tokio::process::Child,
}

/// Starts the children in order, prints the banner, and stops them all on Ctrl-C, SIGTERM or an early exit.
async fn supervise(options: Options, with_app: bool, display: bool, paths: &Paths) -> Result<()> {
    // Install the handlers before any child exists, so an early Ctrl-C still stops it.
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut children: Vec<Child> = Vec::new();
    let outcome = tokio::select! {
        result = start_all(options, with_app, display, paths, &mut children) => match result {
            Ok(()) => tokio::select! {
                exited = first_exit(&mut children) => Err(exited),
                _ = interrupt.recv() => Ok(()),
                _ = terminate.recv() => Ok(()),
            },
            Err(error) => Err(error),
        },
        _ = interrupt.recv() => Ok(()),
        _ = terminate.recv() => Ok(()),
    };
    stop_all(children).await;
    outcome
}

/// Starts tenant, provisioning, proxy and app; pushes each started child.
async fn start_all(
    options: Options,
    with_app: bool,
    display: bool,
    paths: &Paths,
    children: &mut Vec<Child>,
) -> Result<()> {
    let base_url = format!("http://localhost:{}", options.port);
    let mut tenant = child_command(&paths.bin.join("companion-devtenant"));
    tenant
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", options.port))
        .arg("--world")
        .arg(&paths.world)
        .arg("--state-file")
        .arg(&paths.state);
    children.push(spawn("dev tenant", tenant)?);
    let discovery_body = wait_until_ok(
        options.port,
        "/.well-known/openid-configuration",
        "--port",
        children,
    )
    .await?;
    let discovery: serde_json::Value = serde_json::from_str(&discovery_body).unwrap_or_default();

    for step in ["apply", "export"] {
        let mut admin = child_command(&paths.bin.join("companion-admin"));
        admin
            .args(admin_args(step, paths))
            .env("COMPANION_AUTH0_URL", &base_url)
            .env("COMPANION_ADMIN_CLIENT_ID", ADMIN_CLIENT_ID)
            .env("COMPANION_ADMIN_CLIENT_SECRET", ADMIN_CLIENT_SECRET);
        println!(
            "xtask: companion-admin {step} --spec {}",
            paths.spec.display()
        );
        let status = admin.status().await.context("running companion-admin")?;
        if !status.success() {
            bail!(
                "`companion-admin {step}` failed ({status}); see its message above \
                 (delete {} to start the tenant over)",
                paths.state.display()
            );
        }
    }

    let mut proxy = child_command(&paths.bin.join("companion-proxy"));
    proxy
        .arg("--config")
        .arg(&paths.proxy_config)
        .env("COMPANION_LOG_FORMAT", "text");
    children.push(spawn("proxy", proxy)?);
    wait_until_ok(options.proxy_port, "/readyz", "--proxy-port", children).await?;

    let desktop_toml = std::fs::read_to_string(&paths.desktop_config)
        .with_context(|| format!("reading {}", paths.desktop_config.display()))?;
    let managed_dir = paths
        .managed_config
        .parent()
        .context("the managed file has a folder")?;
    std::fs::create_dir_all(managed_dir)
        .with_context(|| format!("creating {}", managed_dir.display()))?;
    std::fs::write(&paths.managed_config, managed_config_text(&desktop_toml)?)
        .with_context(|| format!("writing {}", paths.managed_config.display()))?;
    let managed_exists = Path::new(SYSTEM_MANAGED_FILE).exists();
    let config_shown = if managed_exists {
        None
    } else {
        let table: toml::Table = desktop_toml.parse().context("parsing the desktop config")?;
        let keys: Vec<String> = table.keys().cloned().collect();
        Some(check_managed_config(paths, &keys).await?)
    };
    if with_app {
        let mut app = child_command(&paths.bin.join("passkey-companion"));
        app.env(MANAGED_CONFIG_ENV, &paths.managed_config);
        children.push(spawn(APP, app)?);
    }
    print_banner(&Banner {
        base_url: &base_url,
        discovery: &discovery,
        proxy_url: &format!("http://127.0.0.1:{}", options.proxy_port),
        paths,
        config_shown: config_shown.as_deref(),
        app_started: with_app,
        display,
        managed_exists,
    });
    Ok(())
}

/// Spawns a child and names it.
fn spawn(name: &'static str, mut command: tokio::process::Command) -> Result<Child> {
    let child = command
        .spawn()
        .with_context(|| format!("starting the {name} ({:?})", command.as_std().get_program()))?;
    Ok(Child { name, child })
}

/// Waits until a server exits, or the app fails, and describes it. The app closing normally (its window closed)
/// leaves the servers running.
async fn first_exit(children: &mut Vec<Child>) -> anyhow::Error {
    loop {
        let mut closed_app = None;
        for (index, child) in children.iter_mut().enumerate() {
            match child.child.try_wait() {
                Ok(Some(status)) if child.name == APP && status.success() => {
                    closed_app = Some(index)
                }
                Ok(Some(status)) => {
                    return anyhow::anyhow!(
                        "the {} stopped on its own ({status}); see its messages above",
                        child.name
                    );
                }
                Ok(None) => {}
                Err(error) => return anyhow::anyhow!("checking on the {}: {error}", child.name),
            }
        }
        if let Some(index) = closed_app {
            children.remove(index);
            println!(
                "xtask: the desktop app closed; the tenant and the proxy keep running (Ctrl-C stops them)"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Stops the children, last started first: SIGINT to each process group, then SIGKILL after a grace period.
async fn stop_all(children: Vec<Child>) {
    if !children.is_empty() {
        println!("\nxtask: stopping the demo");
    }
    for mut child in children.into_iter().rev() {
        let Some(pid) = child.child.id() else {
            continue; // already reaped
        };
        signal_group(pid, "INT");
        if tokio::time::timeout(Duration::from_secs(5), child.child.wait())
            .await
            .is_err()
        {
            signal_group(pid, "KILL");
            let _ = child.child.wait().await;
        }
        println!("xtask: stopped the {}", child.name);
    }
}

/// Sends a signal to the process group `pgid` (each child leads its own group).
fn signal_group(pgid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([format!("-{signal}"), "--".to_owned(), format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Polls `path` on 127.0.0.1:`port` until it answers 200 (returns the body), a child exits, or the deadline passes.
async fn wait_until_ok(
    port: u16,
    path: &str,
    flag: &str,
    children: &mut [Child],
) -> Result<String> {
    let started = Instant::now();
    loop {
        for child in children.iter_mut() {
            if let Some(status) = child
                .child
                .try_wait()
                .with_context(|| format!("checking on the {}", child.name))?
            {
                bail!(
                    "the {} exited before it was ready ({status}); see its messages above \
                     (if port {port} is busy, use `cargo xtask demo {flag} <port>`)",
                    child.name
                );
            }
        }
        if let Ok(Some((200, body))) = http_get(port, path).await {
            return Ok(body);
        }
        if started.elapsed() > READY_DEADLINE {
            bail!(
                "http://127.0.0.1:{port}{path} did not answer 200 within {}",
                format_duration(READY_DEADLINE)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One plain HTTP/1.1 GET on loopback; `Ok(Some((status, body)))` when an HTTP answer came.
async fn http_get(port: u16, path: &str) -> std::io::Result<Option<(u16, String)>> {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\n\
             Accept: application/json\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(parse_response(&String::from_utf8_lossy(&response)))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .unwrap_or(Ok(None))
}

/// The status and body of an HTTP/1.x response (not chunked: our servers send `content-length`).
fn parse_response(response: &str) -> Option<(u16, String)> {
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status_line = head.lines().next()?;
    let mut parts = status_line.split_whitespace();
    let version = parts.next()?;
    let status = parts.next()?.parse().ok()?;
    version
        .starts_with("HTTP/1.")
        .then(|| (status, body.to_owned()))
}

/// What the banner shows.
struct Banner<'a> {
    base_url: &'a str,
    discovery: &'a serde_json::Value,
    proxy_url: &'a str,
    paths: &'a Paths,
    config_shown: Option<&'a str>,
    app_started: bool,
    display: bool,
    managed_exists: bool,
}

/// The `passkeys` commands that do what the app does, with the variables they need.
fn passkeys_commands(bin: &Path, managed_config: &Path) -> String {
    let exports = format!(
        "  export {MANAGED_CONFIG_ENV}='{}'   # the demo's managed settings (locked)\n",
        managed_config.display()
    );
    let passkeys = bin.join("passkeys");
    let p = passkeys.display();
    format!(
        "{exports}  {p} config                        # the effective configuration and its layers
  {p} login                         # opens the browser on the tenant's login page (COMPANION_BROWSER=<cmd> to choose)
  {p} status
  {p} list
  {p} enroll roaming                # add a security key, finished in the browser
  {p} rename <id> 'My key'          # <id> as `list` shows it
  {p} remove <id>                   # asks for a fresh MFA (step-up) in the browser
  {p} logout"
    )
}

/// Prints where everything runs and the demo values.
fn print_banner(banner: &Banner<'_>) {
    let base_url = banner.base_url;
    let issuer = banner.discovery["issuer"]
        .as_str()
        .map_or_else(|| format!("{base_url}/"), str::to_owned);
    let jwks = banner.discovery["jwks_uri"].as_str().map_or_else(
        || format!("{base_url}/.well-known/jwks.json"),
        str::to_owned,
    );
    let app = if banner.app_started {
        format!(
            "the desktop app `passkey-companion` is starting with {MANAGED_CONFIG_ENV} set: its settings are the \
             managed layer, locked, as on a managed install"
        )
    } else if banner.display {
        "the desktop app was not started (--no-app)".to_owned()
    } else {
        "no display (neither DISPLAY nor WAYLAND_DISPLAY is set): the desktop app was not started; \
         the tenant and the proxy keep running"
            .to_owned()
    };
    let managed_note = match (banner.managed_exists, banner.config_shown) {
        (true, _) => format!(
            "\nNOTE: {SYSTEM_MANAGED_FILE} exists: when it sets any key, the app and `passkeys` use it and ignore \
             {MANAGED_CONFIG_ENV} (a real managed install always wins). Remove it to use the demo's settings.\n"
        ),
        (false, Some(shown)) => format!(
            "\n`passkeys config` with {MANAGED_CONFIG_ENV} \
             (checked: every key of the file is managed and locked):\n\n{}\n",
            shown.trim_end()
        ),
        (false, None) => String::new(),
    };
    let paths = banner.paths;
    println!(
        "\n\
Passkey Companion demo: dev tenant, provisioned by companion-admin, and the proxy are running.

  base URL          {base_url}
  issuer            {issuer}
  discovery         {base_url}/.well-known/openid-configuration
  JWKS              {jwks}
  Management API    {base_url}/api/v2/
  proxy             {proxy} (readiness {proxy}/readyz)
  state file        {state} (delete it to start over)
  spec applied      {spec}
  proxy config      {proxy_config} (exported)
  desktop config    {desktop_config} (exported)
  managed settings  {managed_config} ({MANAGED_CONFIG_ENV}; stands in for {SYSTEM_MANAGED_FILE})
  app               {app}
{managed_note}
LOCAL DEMO VALUES (published for this offline tenant only; never real credentials):

  user                 password            second factors
  {alice:<20} {password:<19} TOTP secret {totp} (base32), recovery code {recovery},
  {blank:<20} {blank:<19} a security key and a platform passkey
  {bob:<20} {password:<19} none (password only)

  desktop client id    {desktop} (public, PKCE), callbacks {callbacks_first} .. :53189/callback
  proxy M2M client     {proxy_client} / secret {proxy_secret}
  admin M2M client     {admin_client} / secret {admin_secret} (demo only; used by companion-admin)
  proxy API audience   {audience}

The same job from a terminal with the `passkeys` CLI:

{commands}

Press Ctrl-C to stop everything.",
        proxy = banner.proxy_url,
        state = paths.state.display(),
        spec = paths.spec.display(),
        proxy_config = paths.proxy_config.display(),
        desktop_config = paths.desktop_config.display(),
        managed_config = paths.managed_config.display(),
        alice = demo::ALICE_EMAIL,
        bob = demo::BOB_EMAIL,
        password = demo::PASSWORD,
        totp = demo::ALICE_TOTP_SECRET,
        recovery = demo::ALICE_RECOVERY_CODE,
        blank = "",
        desktop = demo::DESKTOP_CLIENT_ID,
        callbacks_first = demo::FIRST_CALLBACK,
        proxy_client = demo::PROXY_CLIENT_ID,
        proxy_secret = demo::PROXY_CLIENT_SECRET,
        admin_client = ADMIN_CLIENT_ID,
        admin_secret = ADMIN_CLIENT_SECRET,
        audience = demo::API_AUDIENCE,
        commands = passkeys_commands(&paths.bin, &paths.managed_config),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> Paths {
        Paths::new(PathBuf::from("/t/demo"), PathBuf::from("/t/debug"))
    }

    #[test]
    fn a_200_response_yields_its_status_and_body() {
        let response =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"issuer\":\"x\"}";
        assert_eq!(
            parse_response(response),
            Some((200, "{\"issuer\":\"x\"}".to_owned())),
            "the body after the head"
        );
        assert_eq!(
            parse_response("HTTP/1.1 503 Service Unavailable\r\n\r\nbusy").map(|r| r.0),
            Some(503),
            "other statuses are reported as such"
        );
    }

    #[test]
    fn garbage_is_not_an_answer() {
        assert_eq!(
            parse_response("HTTP/1.1 200 OK\r\ncontent-length: 5"),
            None,
            "an unfinished head"
        );
        assert_eq!(
            parse_response("SSH-2.0-OpenSSH\r\n\r\n"),
            None,
            "not HTTP at all"
        );
    }

    #[test]
    fn a_busy_port_is_reported_with_its_flag() {
        let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port");
        let port = holder.local_addr().expect("bound address").port();
        for flag in ["--port", "--proxy-port"] {
            let error = ensure_port_free(port, flag).expect_err("the port is held by this test");
            let message = format!("{error:#}");
            assert!(
                message.contains(&format!("port {port}"))
                    && message.contains("busy")
                    && message.contains(&format!("cargo xtask demo {flag} <port>")),
                "the message names the port and the flag: {message}"
            );
        }
    }

    #[test]
    fn the_display_decides_whether_the_app_is_built() {
        let none = |_: &str| None;
        let x11 = |name: &str| (name == "DISPLAY").then(|| ":99".into());
        let wayland = |name: &str| (name == "WAYLAND_DISPLAY").then(|| "wayland-0".into());
        let empty = |_: &str| Some(std::ffi::OsString::new());
        assert!(!display_available(none), "no variables: no display");
        assert!(!display_available(empty), "empty variables: no display");
        assert!(display_available(x11), "DISPLAY");
        assert!(display_available(wayland), "WAYLAND_DISPLAY");
        assert!(
            !build_packages(false).contains(&"passkey-companion")
                && build_packages(true).contains(&"passkey-companion"),
            "the app is built only when it will run"
        );
    }

    #[test]
    fn the_demo_world_is_the_seeded_world_plus_an_admin_client() {
        let dir = std::env::temp_dir().join(format!("xtask-demo-world-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("world.toml");
        std::fs::write(&file, demo_world_toml()).expect("write world");
        let world = companion_devtenant::world::World::from_file(&file);
        let _ = std::fs::remove_dir_all(&dir);
        let world = world.expect("the demo world parses");
        let seeded = companion_devtenant::world::World::demo();
        assert_eq!(
            world.clients.len(),
            seeded.clients.len() + 1,
            "one client more than the seeded world"
        );
        assert_eq!(world.users.len(), seeded.users.len(), "the same users");
        let grant = world
            .client_grants
            .iter()
            .find(|grant| grant.client_id == ADMIN_CLIENT_ID)
            .expect("the admin's grant");
        assert_eq!(grant.audience, "mgmt", "on the Management API");
        assert!(
            grant.scope.iter().any(|s| s == "create:actions")
                && grant.scope.iter().any(|s| s == "read:client_keys"),
            "provisioning scopes: {:?}",
            grant.scope
        );
    }

    #[test]
    fn the_demo_spec_puts_the_proxy_on_loopback() {
        let sample = include_str!("../../crates/admin/tenant.toml");
        let spec = demo_spec(sample, 9999, Path::new("/t/demo/secret")).expect("demo spec");
        let table: toml::Table = spec.parse().expect("the demo spec is TOML");
        let proxy = &table["proxy"];
        assert_eq!(proxy["url"].as_str(), Some("http://127.0.0.1:9999"));
        assert_eq!(proxy["listen"].as_str(), Some("127.0.0.1:9999"));
        assert_eq!(proxy["secret_file"].as_str(), Some("/t/demo/secret"));
        let sample: toml::Table = sample.parse().expect("sample");
        assert_eq!(
            table["api"], sample["api"],
            "everything else is the sample's"
        );
        assert_eq!(table["desktop"], sample["desktop"], "desktop unchanged");
    }

    #[test]
    fn admin_arguments_name_the_demo_files() {
        let paths = paths();
        assert_eq!(
            admin_args("apply", &paths),
            [
                "apply",
                "--spec",
                "/t/demo/tenant.toml",
                "--secrets-out",
                "/t/demo/proxy-client-secret"
            ]
        );
        assert_eq!(
            admin_args("export", &paths),
            [
                "export",
                "--spec",
                "/t/demo/tenant.toml",
                "--proxy-out",
                "/t/demo/proxy.toml",
                "--desktop-out",
                "/t/demo/desktop-config.toml"
            ]
        );
    }

    #[test]
    fn the_desktop_config_becomes_the_managed_file() {
        let exported = "auth0_url = \"http://localhost:8780\"\nclient_id = \"companion-desktop\"\n\
             redirect_ports = [53180, 53181]\n";
        let text = managed_config_text(exported).expect("managed file");
        let table: toml::Table = text.parse().expect("still TOML");
        let expected: toml::Table = exported.parse().expect("exported TOML");
        assert_eq!(table, expected, "the exported keys, unchanged");
        assert!(
            text.starts_with("# Written by `cargo xtask demo`")
                && text.contains(MANAGED_CONFIG_ENV)
                && text.contains(SYSTEM_MANAGED_FILE),
            "the header says what the file stands in for: {text}"
        );
        assert!(
            managed_config_text("").is_err(),
            "an empty export is refused"
        );
        assert!(managed_config_text("client_id = ").is_err(), "not TOML");

        let commands = passkeys_commands(
            Path::new("/t/debug"),
            Path::new("/t/demo/managed/config.toml"),
        );
        assert!(
            commands.contains("export COMPANION_MANAGED_CONFIG='/t/demo/managed/config.toml'"),
            "the override is exported: {commands}"
        );
        assert!(
            !commands.contains("COMPANION_AUTH0_URL"),
            "no environment-layer settings: {commands}"
        );
        for sub in [
            "config",
            "login",
            "status",
            "list",
            "enroll roaming",
            "rename <id>",
            "remove <id>",
            "logout",
        ] {
            assert!(
                commands.contains(&format!("/t/debug/passkeys {sub}")),
                "{sub} is printed: {commands}"
            );
        }
    }

    #[test]
    fn the_managed_source_check_wants_every_key_locked_from_the_file() {
        let file = Path::new("/t/demo/managed/config.toml");
        let keys = vec!["client_id".to_owned(), "proxy_url".to_owned()];
        let config = |client_layer: &str, location: &str, dev_override: bool| {
            serde_json::json!({
                "valid": true,
                "managed": { "location": location, "dev_override": dev_override, "ignored_override": null },
                "entries": [
                    { "key": "client_id", "layer": client_layer, "locked": client_layer == "managed" },
                    { "key": "proxy_url", "layer": "managed", "locked": true },
                    { "key": "browser", "layer": "environment", "locked": false },
                ],
            })
        };
        let good = config("managed", "/t/demo/managed/config.toml", true);
        assert_eq!(managed_source_problem(&good, file, &keys), None);
        let problem = managed_source_problem(
            &config("environment", "/t/demo/managed/config.toml", true),
            file,
            &keys,
        )
        .expect("an unlocked key is a problem");
        assert!(problem.contains("client_id"), "{problem}");
        let problem = managed_source_problem(
            &config("managed", "/etc/passkey-companion/config.toml", false),
            file,
            &keys,
        )
        .expect("another managed source is a problem");
        assert!(problem.contains("/t/demo/managed/config.toml"), "{problem}");
        let mut invalid = good;
        invalid["valid"] = false.into();
        invalid["problem"] = "key `client_id` is not set".into();
        let problem = managed_source_problem(&invalid, file, &keys).expect("invalid");
        assert!(problem.contains("not set"), "{problem}");
    }

    #[tokio::test]
    async fn readiness_polls_a_real_socket() {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("bound address").port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = vec![0u8; 1024];
            let read = socket.read(&mut request).await.expect("read request");
            let request = String::from_utf8_lossy(&request[..read]).into_owned();
            let body = r#"{"status":"ready"}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            socket
                .write_all(response.as_bytes())
                .await
                .expect("write response");
            request
        });
        let (status, body) = http_get(port, "/readyz")
            .await
            .expect("no I/O error")
            .expect("an answer");
        let request = server.await.expect("server task");
        assert!(
            request.starts_with("GET /readyz HTTP/1.1\r\n"),
            "asks for the path: {request}"
        );
        assert_eq!(status, 200, "the status");
        assert!(body.contains("ready"), "returns the body: {body}");
    }
}
