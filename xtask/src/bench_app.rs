//! `cargo xtask bench app`: cold start of the desktop app to its painted list with a cached session, the memory of
//! the app with its WebKit processes, and the `.deb` size, next to baselines measured in the same run.
//!
//! Runs the binary unpacked from the `.deb` (built by `cargo xtask bundle` when missing; `XTASK_BENCH_APP_BINARY`
//! names another build to measure instead) under its own `dbus-run-session -- xvfb-run`, with an unlocked
//! gnome-keyring in that session. First it seeds a real session:
//! it starts the release dev tenant and proxy on loopback, runs `passkeys login` (the same client library, keyring
//! entry and configuration as the app) with a "browser" that hands the URL back, and signs alice in through the
//! tenant's login form with `curl`, so the refresh token sits in the keyring. Then it starts the app `RUNS` times
//! per variant, alternating variants. Each launch is timed from spawn to the app's log line "first view painted",
//! which the app writes when the UI reports, two animation frames after drawing it, that its first finished view
//! is on screen (`src-tauri/src/webview.rs`); the bench polls the log file, so no screenshots compete with the app
//! for the CPU during start-up. The view must be the list, and a screenshot taken right after must show it.
//! Variants are the same binary with parts of its start-up work turned off (`PASSKEY_COMPANION_DISABLE`), WebKit
//! environment switches added, or the dev tenant made [`REMOTE_TENANT_MS`] away (its `/__dev/faults` latency).
//!
//! Baselines: spawning `true`, and WebKitGTK's own `MiniBrowser` loading the same `ui/index.html` from disk (a bare
//! WebKitGTK window, no Tauri), with and without compositing. They cannot report a view, so they are compared with
//! the app on "first painted frame": the window's content area (below its top quarter) shows at least
//! [`PAINTED_COLORS`] distinct colours, polled with `xdotool` and ImageMagick's `import` (tens of milliseconds per
//! screenshot, so that is the resolution of that table).
//!
//! Memory is read [`SETTLE`] after the paint and summed over every process of the launched process group (UI,
//! WebKitWebProcess, WebKitNetworkProcess): RSS (`VmRSS`, counts shared libraries once per process) and PSS
//! (`smaps_rollup`, shared pages split between the processes mapping them).

use std::collections::HashSet;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use companion_devtenant::world::demo;

use crate::bundle::{file_size, human_size, newest_bundle};
use crate::ci::{cargo, project_root, run_checked};

/// Launches of each measured program and variant; the median is reported (`XTASK_BENCH_APP_RUNS` overrides).
const RUNS: usize = 5;
/// Distinct colours in the content area that count as "painted".
const PAINTED_COLORS: usize = 8;
/// How long a window may take to paint before the run fails.
const PAINT_DEADLINE: Duration = Duration::from_secs(30);
/// Time after the paint before memory is read (the page settles, the app finishes its first commands).
const SETTLE: Duration = Duration::from_secs(2);
/// Set in the re-executed process that runs under the D-Bus session and Xvfb.
const INNER_ENV: &str = "XTASK_BENCH_APP_INNER";
/// WebKitGTK's test browser (package libwebkit2gtk-4.1-0).
const MINIBROWSER: &str = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";
/// The Xvfb screen. `-noreset`: by default the server resets whenever its last client disconnects, which the
/// short-lived `xdotool`/`import` clients of the polled launches do hundreds of times, and a program connecting
/// during a reset fails with "cannot open display".
const XVFB_SCREEN: &str = "-screen 0 1280x800x24 -noreset";
/// The password of the bench's throwaway keyring (its files live under `target/bench-app/`).
const KEYRING_PASSWORD: &str = "bench";
/// Measures this binary instead of the `.deb`'s (whose size is still reported).
const BINARY_ENV: &str = "XTASK_BENCH_APP_BINARY";
/// The app's switch for turning start-up work off (`src-tauri/src/webview.rs`).
const DISABLE_ENV: &str = "PASSKEY_COMPANION_DISABLE";
/// The app's log message once the UI's first view is on screen.
const PAINTED_MESSAGE: &str = "first view painted";
/// The app's log file name (inside `$XDG_DATA_HOME/<identifier>/logs/`).
const LOG_FILE: &str = "passkey-companion.jsonl";

/// The latency of the "remote tenant" variants: every request to the dev tenant (discovery, JWKS, token,
/// the proxy's Management calls) waits this long first.
const REMOTE_TENANT_MS: u64 = 100;

/// One way of starting the app, from the same binary.
#[derive(Debug, Clone, Copy)]
struct Variant {
    /// Row label.
    label: &'static str,
    /// Value of [`DISABLE_ENV`].
    disable: &'static str,
    /// Extra environment.
    env: &'static [(&'static str, &'static str)],
    /// Latency the dev tenant adds to every request (a tenant this far away, as a real Auth0 is).
    tenant_latency_ms: u64,
}

/// The measured variants; the first is the app as shipped.
const VARIANTS: [Variant; 7] = [
    Variant {
        label: "as shipped",
        disable: "",
        env: &[],
        tenant_latency_ms: 0,
    },
    Variant {
        label: "without webview tuning",
        disable: "webview-tuning",
        env: &[],
        tenant_latency_ms: 0,
    },
    Variant {
        label: "without session prefetch",
        disable: "session-prefetch",
        env: &[],
        tenant_latency_ms: 0,
    },
    Variant {
        label: "without either (session 1's start-up)",
        disable: "webview-tuning,session-prefetch",
        env: &[],
        tenant_latency_ms: 0,
    },
    Variant {
        label: "as shipped + WEBKIT_DISABLE_COMPOSITING_MODE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1",
        disable: "",
        env: &[
            ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
            ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
        ],
        tenant_latency_ms: 0,
    },
    Variant {
        label: "as shipped, tenant 100 ms away",
        disable: "",
        env: &[],
        tenant_latency_ms: REMOTE_TENANT_MS,
    },
    Variant {
        label: "without session prefetch, tenant 100 ms away",
        disable: "session-prefetch",
        env: &[],
        tenant_latency_ms: REMOTE_TENANT_MS,
    },
];

/// Memory of one process of a launched group.
#[derive(Debug, Clone)]
struct ProcessMemory {
    /// `comm` (truncated to 15 bytes by the kernel).
    name: String,
    /// VmRSS, bytes.
    rss: u64,
    /// Pss, bytes.
    pss: u64,
}

/// Memory of a launched process group.
#[derive(Debug, Clone, Default)]
struct Memory {
    /// Every process of the group.
    processes: Vec<ProcessMemory>,
}

impl Memory {
    fn rss(&self) -> u64 {
        self.processes.iter().map(|p| p.rss).sum()
    }

    fn pss(&self) -> u64 {
        self.processes.iter().map(|p| p.pss).sum()
    }
}

/// One app launch timed by its "first view painted" log line.
#[derive(Debug, Clone)]
struct ViewLaunch {
    /// Spawn to the log line seen by the bench.
    seen: Duration,
    /// The app's own figure: from entering `run()` to the UI's report.
    reported_ms: Option<u64>,
    /// Whether a screenshot right after showed a painted window.
    screenshot_painted: bool,
    /// Memory after [`SETTLE`].
    memory: Memory,
}

/// One launch timed by screenshot polling.
#[derive(Debug, Clone)]
struct PolledLaunch {
    /// Spawn to the first painted frame.
    paint: Duration,
    /// Memory after [`SETTLE`].
    memory: Memory,
}

/// Re-runs itself inside a private D-Bus session and Xvfb, then measures.
pub(crate) fn run() -> Result<()> {
    if std::env::var_os(INNER_ENV).is_some() {
        return inner();
    }
    let root = project_root();
    // The shipped binary: `tauri build` compiles with features a plain `cargo build` lacks (embedded assets).
    if newest_bundle(&root, "deb").is_err() && std::env::var_os(BINARY_ENV).is_none() {
        println!("bench app: no .deb yet; running `cargo xtask bundle` first");
        crate::bundle::run()?;
    }
    println!(
        "bench app: building the release dev tenant, proxy and passkeys CLI (seeding the session)"
    );
    run_checked(
        &mut cargo(&[
            "build",
            "--quiet",
            "--release",
            "-p",
            "companion-devtenant",
            "--bin",
            "companion-devtenant",
            "-p",
            "companion-proxy",
            "--bin",
            "companion-proxy",
            "-p",
            "passkeys",
        ]),
        "cargo build --release (dev tenant, proxy, passkeys)",
    )?;
    let scratch = root.join("target").join("bench-app");
    let _ = std::fs::remove_dir_all(&scratch);
    // A private runtime folder for the session: the accessibility bus (and gnome-keyring) put their sockets
    // there, instead of in a ~/.cache/at-spi/bus that concurrent sessions on this machine overwrite and delete.
    let runtime = scratch.join("runtime");
    std::fs::create_dir_all(&runtime).with_context(|| format!("creating {}", runtime.display()))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))?;
    }
    // xvfb-run's X authority file and every temporary file of the session under target/ too: a display whose
    // /tmp/xvfb-run.*/Xauthority someone else's clean-up removes can no longer be opened mid-run.
    let tmp = scratch.join("tmp");
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let me = std::env::current_exe().context("locating the xtask binary")?;
    let status = Command::new("dbus-run-session")
        .args(["--", "xvfb-run", "-a", "-s", XVFB_SCREEN])
        .arg("-f")
        .arg(runtime.join("Xauthority"))
        // Start the display search away from 99, where other engineers' `xvfb-run -a` race for the same number.
        .args(["-n", &(200 + std::process::id() % 500).to_string()])
        .arg(me)
        .args(["bench", "app"])
        .env(INNER_ENV, "1")
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("TMPDIR", &tmp)
        .status()
        .context("running dbus-run-session -- xvfb-run (cargo xtask setup installs them)")?;
    if !status.success() {
        bail!("bench app failed under xvfb-run: {status}");
    }
    Ok(())
}

/// Inside the session: seeds the session, measures the app's variants and the baselines, prints the tables.
fn inner() -> Result<()> {
    let root = project_root();
    let runs = std::env::var("XTASK_BENCH_APP_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .filter(|runs| *runs > 0)
        .unwrap_or(RUNS);
    let scratch = root.join("target").join("bench-app");
    std::fs::create_dir_all(scratch.join("logs"))
        .with_context(|| format!("creating {}", scratch.display()))?;
    let release = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("release");
    let deb = newest_bundle(&root, "deb").ok();
    // Another build of the app (another profile, a debug build) can be measured in its place.
    let app = match (std::env::var_os(BINARY_ENV), &deb) {
        (Some(binary), _) => PathBuf::from(binary),
        (None, Some(deb)) => unpack_app(deb, &scratch.join("deb-root"))?,
        (None, None) => bail!("no .deb under target/release/bundle/deb; run `cargo xtask bundle`"),
    };
    let machine = machine_description();

    let keyring_env = unlock_keyring(&scratch.join("keyring"))?;
    let mut servers = Vec::new();
    let tenant = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    // The dev tenant names itself `localhost:<port>` (issuer, Management API audience), so everyone uses that.
    let tenant_url = format!("http://localhost:{}", tenant.port());
    start_server(
        &mut servers,
        "companion-devtenant",
        Command::new(release.join("companion-devtenant"))
            .arg("--listen")
            .arg(tenant.to_string())
            // Latency injection for the "remote tenant" variants (`/__dev/faults`).
            .arg("--dev-controls")
            .env("RUST_LOG", "warn"),
        &scratch.join("logs").join("devtenant.log"),
        tenant,
        "/.well-known/openid-configuration",
    )?;
    let proxy_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    start_server(
        &mut servers,
        "companion-proxy",
        Command::new(release.join("companion-proxy"))
            .env("COMPANION_LISTEN", proxy_addr.to_string())
            .env("COMPANION_AUTH0_URL", &tenant_url)
            .env("COMPANION_MGMT_CLIENT_ID", demo::PROXY_CLIENT_ID)
            .env("COMPANION_MGMT_CLIENT_SECRET", demo::PROXY_CLIENT_SECRET)
            .env("RUST_LOG", "warn"),
        &scratch.join("logs").join("proxy.log"),
        proxy_addr,
        "/readyz",
    )?;

    let browser = write_browser_script(&scratch)?;
    let home = scratch.join("home");
    let mut env: Vec<(String, String)> = vec![
        ("COMPANION_AUTH0_URL".into(), tenant_url.clone()),
        ("COMPANION_CLIENT_ID".into(), demo::DESKTOP_CLIENT_ID.into()),
        ("COMPANION_AUDIENCE".into(), demo::API_AUDIENCE.into()),
        ("COMPANION_PROXY_URL".into(), format!("http://{proxy_addr}")),
        (
            "COMPANION_BROWSER".into(),
            browser.script.display().to_string(),
        ),
    ];
    env.extend(keyring_env);
    env.extend(xdg_env(&home)?);
    let seeded = Instant::now();
    seed_session(&release.join("passkeys"), &env, &browser, &scratch)?;
    println!(
        "bench app: alice signed in through the dev tenant's login form; refresh token in the keyring ({} ms)",
        seeded.elapsed().as_millis()
    );

    let mut spawn_true = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let status = Command::new("true").status().context("running true")?;
        ensure!(status.success(), "true failed");
        spawn_true.push(started.elapsed());
    }

    // One unmeasured launch: creates the app's data folders and log file, and warms the page cache, as any
    // launch after the first install would find them.
    let log = {
        let warm = launch_to_view(
            &app,
            &env,
            &VARIANTS[0],
            tenant,
            &home,
            None,
            &scratch,
            "warm-up",
        )?;
        warm.1
    };
    let mut by_variant: Vec<Vec<ViewLaunch>> = vec![Vec::new(); VARIANTS.len()];
    for run in 0..runs {
        for (index, variant) in VARIANTS.iter().enumerate() {
            let shot = (run == 0).then(|| scratch.join(format!("list-{index}.png")));
            let (launch, _) = launch_to_view(
                &app,
                &env,
                variant,
                tenant,
                &home,
                shot.as_deref(),
                &scratch,
                &format!("variant-{index}-run-{run}"),
            )?;
            by_variant[index].push(launch);
        }
    }

    set_tenant_latency(tenant, 0)?;
    let index_html = root.join("ui").join("index.html");
    let mut app_polled = Vec::new();
    let mut browser_polled = Vec::new();
    let mut browser_nocomp_polled = Vec::new();
    for run in 0..runs {
        // Alternate, so machine load hits all alike.
        let mut command = Command::new(&app);
        command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        app_polled.push(launch_polled(
            &mut command,
            &scratch.join("logs").join(format!("polled-app-{run}")),
            "passkey-companion",
        )?);
        for (nocomp, into) in [
            (false, &mut browser_polled),
            (true, &mut browser_nocomp_polled),
        ] {
            let fresh = scratch.join(format!("minibrowser-{run}-{nocomp}"));
            let mut command = Command::new(MINIBROWSER);
            command
                .arg(format!("file://{}", index_html.display()))
                .envs(xdg_env(&fresh)?);
            if nocomp {
                command.env("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
            }
            into.push(launch_polled(&mut command, &fresh, "MiniBrowser")?);
        }
    }
    drop(servers);

    let deb_size = deb.as_deref().map(file_size).transpose()?;
    let report = Report {
        machine,
        runs,
        app,
        deb,
        deb_size,
        log,
        spawn_true,
        by_variant,
        app_polled,
        browser_polled,
        browser_nocomp_polled,
    };
    report.print();
    Ok(())
}

/// Unpacks the `.deb` into `dir` and returns its `/usr/bin/passkey-companion`.
fn unpack_app(deb: &Path, dir: &Path) -> Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(dir)
        .status()
        .context("running dpkg-deb -x")?;
    ensure!(
        status.success(),
        "dpkg-deb -x {} failed: {status}",
        deb.display()
    );
    let app = dir.join("usr").join("bin").join("passkey-companion");
    ensure!(
        app.is_file(),
        "{} holds no /usr/bin/passkey-companion",
        deb.display()
    );
    Ok(app)
}

/// Cores, CPU model, load average, WebKitGTK version.
fn machine_description() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|load| {
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let webkit = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "libwebkit2gtk-4.1-0"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), load average {load} at the start, WebKitGTK {webkit}, Xvfb {} without GPU",
        XVFB_SCREEN
            .trim_start_matches("-screen 0 ")
            .trim_end_matches(" -noreset")
    )
}

/// Starts gnome-keyring's Secret Service in this D-Bus session with its files under `dir`, unlocks it and
/// returns the environment it reports. Its output goes to files: the daemon forks and outlives the command.
fn unlock_keyring(dir: &Path) -> Result<Vec<(String, String)>> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stdout_path = dir.join("daemon.stdout");
    let stderr_path = dir.join("daemon.stderr");
    let mut child = Command::new("gnome-keyring-daemon")
        .args(["--unlock", "--components=secrets"])
        .env("XDG_DATA_HOME", dir)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&stdout_path)?)
        .stderr(std::fs::File::create(&stderr_path)?)
        .spawn()
        .context("starting gnome-keyring-daemon (package gnome-keyring)")?;
    child
        .stdin
        .take()
        .context("gnome-keyring-daemon has no stdin")?
        .write_all(KEYRING_PASSWORD.as_bytes())
        .context("sending the keyring password")?;
    let status = crate::ci::wait_with_deadline(&mut child, Duration::from_secs(30))
        .context("gnome-keyring-daemon")?;
    ensure!(
        status.success(),
        "gnome-keyring-daemon --unlock failed ({status}): {}",
        std::fs::read_to_string(&stderr_path)
            .unwrap_or_default()
            .trim()
    );
    let output = std::fs::read_to_string(&stdout_path)?;
    Ok(output
        .lines()
        .filter_map(|line| line.trim().split_once('='))
        .filter(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

/// A free port on 127.0.0.1 (free when asked; the server binds it right after).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Starts a server in its own process group (killed when `servers` is dropped) and waits until `path` answers
/// 200 on `addr`.
fn start_server(
    servers: &mut Vec<Group>,
    name: &str,
    command: &mut Command,
    log: &Path,
    addr: SocketAddr,
    path: &str,
) -> Result<()> {
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let child = command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    servers.push(Group(child));
    let started = Instant::now();
    loop {
        if let Some(Group(child)) = servers.last_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!("{name} exited ({status}); see {}", log.display());
        }
        if let Ok(response) = crate::bench::http(addr, &addr.to_string(), "GET", path, &[], None)
            && response.status == 200
        {
            return Ok(());
        }
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "{name} did not answer 200 on {path} within 30 s; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The stand-in "system browser": a script that appends each URL it is given to `inbox`.
#[derive(Debug)]
struct BrowserInbox {
    script: PathBuf,
    inbox: PathBuf,
}

fn write_browser_script(scratch: &Path) -> Result<BrowserInbox> {
    use std::os::unix::fs::PermissionsExt as _;
    let script = scratch.join("browser.sh");
    let inbox = scratch.join("browser-urls.txt");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n",
            inbox.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok(BrowserInbox { script, inbox })
}

/// `XDG_*` directories under `home` (created), as environment pairs.
fn xdg_env(home: &Path) -> Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    for (var, dir) in [
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_STATE_HOME", "state"),
    ] {
        let path = home.join(dir);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        env.push((var.to_owned(), path.display().to_string()));
    }
    Ok(env)
}

/// A real sign-in that leaves alice's refresh token in the keyring: `passkeys login` opens the "browser", which
/// hands the URL to us; `curl` follows `/authorize`, posts the tenant's login form and delivers the redirect to
/// the CLI's loopback listener; `passkeys status --json` must then say signed in, stored in the keyring.
fn seed_session(
    passkeys: &Path,
    env: &[(String, String)],
    browser: &BrowserInbox,
    scratch: &Path,
) -> Result<()> {
    let _ = std::fs::remove_file(&browser.inbox);
    let log = scratch.join("logs").join("passkeys-login.log");
    let out = std::fs::File::create(&log)?;
    let mut login = Command::new(passkeys)
        .args(["login", "--timeout", "60"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting {}", passkeys.display()))?;
    let started = Instant::now();
    let authorize = loop {
        if let Some(url) = std::fs::read_to_string(&browser.inbox)
            .ok()
            .and_then(|text| text.lines().next().map(str::to_owned))
        {
            break url;
        }
        if let Some(status) = login.try_wait()? {
            bail!(
                "passkeys login exited ({status}) before opening the browser; see {}",
                log.display()
            );
        }
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "passkeys login opened no browser within 30 s; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let (status, login_page) = curl_redirect(&[&authorize])?;
    ensure!(
        (300..400).contains(&status),
        "/authorize answered {status} instead of redirecting to the login form"
    );
    let transaction = query_param(&login_page, "state")
        .with_context(|| format!("no state in the login redirect {login_page}"))?;
    let form_url = login_page
        .split_once("/u/login")
        .map(|(base, _)| format!("{base}/u/login"))
        .with_context(|| format!("unexpected login page {login_page}"))?;
    let state_field = format!("state={transaction}");
    let username = format!("username={}", demo::ALICE_EMAIL);
    let password = format!("password={}", demo::PASSWORD);
    let (status, callback) = curl_redirect(&[
        "--data",
        &state_field,
        "--data-urlencode",
        &username,
        "--data-urlencode",
        &password,
        &form_url,
    ])?;
    ensure!(
        (300..400).contains(&status) && callback.starts_with("http://127.0.0.1:"),
        "the login form answered {status} to {callback:?} instead of redirecting to the CLI's loopback callback"
    );
    let (status, _) = curl_redirect(&[&callback])?;
    ensure!(status == 200, "the CLI's callback answered {status}");
    let exit = crate::ci::wait_with_deadline(&mut login, Duration::from_secs(30))
        .context("passkeys login")?;
    ensure!(
        exit.success(),
        "passkeys login failed ({exit}); see {}",
        log.display()
    );

    let output = Command::new(passkeys)
        .args(["status", "--json"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .context("running passkeys status --json")?;
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "passkeys status --json printed no JSON: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    ensure!(
        status["signed_in"] == true && status["persistence"] == "stored",
        "after the login the session is not stored in the keyring: {status}"
    );
    Ok(())
}

/// `curl` without following redirects: the status and the redirect target (empty when none).
fn curl_redirect(args: &[&str]) -> Result<(u16, String)> {
    let output = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "30",
            "--output",
            "/dev/null",
        ])
        .args(["--write-out", "%{http_code} %{redirect_url}"])
        .args(args)
        .output()
        .context("running curl (apt-get install curl)")?;
    ensure!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let (code, location) = text.split_once(' ').unwrap_or((&text, ""));
    Ok((
        code.trim().parse().context("curl printed no status")?,
        location.trim().to_owned(),
    ))
}

/// The raw (still percent-encoded) value of query parameter `name` in `url`.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Starts the app in `variant` with `env` and the home's XDG folders, waits for its "first view painted" log line
/// (which must name the list), screenshots the window (saved to `shot` when given), reads the group's memory after
/// [`SETTLE`] and kills the group. Also returns the log file.
#[allow(
    clippy::too_many_arguments,
    reason = "one launch's inputs, each used once"
)]
fn launch_to_view(
    app: &Path,
    env: &[(String, String)],
    variant: &Variant,
    tenant: SocketAddr,
    home: &Path,
    shot: Option<&Path>,
    scratch: &Path,
    name: &str,
) -> Result<(ViewLaunch, PathBuf)> {
    set_tenant_latency(tenant, variant.tenant_latency_ms)?;
    let data = home.join("data");
    let known_log = find_file(&data, LOG_FILE, 6);
    let mut offset = known_log
        .as_ref()
        .and_then(|path| std::fs::metadata(path).ok())
        .map_or(0, |meta| meta.len());
    let output = scratch.join("logs").join(format!("{name}.out"));
    let out = std::fs::File::create(&output)?;
    let mut command = Command::new(app);
    command
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(DISABLE_ENV, variant.disable)
        .envs(variant.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0);
    let started = Instant::now();
    let child = command.spawn().context("starting the app")?;
    let mut group = Group(child);
    let mut log = known_log;
    let (seen, view, reported_ms) = loop {
        let elapsed = started.elapsed();
        ensure!(
            elapsed < PAINT_DEADLINE,
            "{name}: the app logged no \"{PAINTED_MESSAGE}\" within {PAINT_DEADLINE:?}; see {}",
            output.display()
        );
        if let Some(status) = group.0.try_wait()? {
            bail!(
                "{name}: the app exited ({status}); see {}",
                output.display()
            );
        }
        if log.is_none() {
            log = find_file(&data, LOG_FILE, 6);
        }
        if let Some(path) = &log
            && let Some((view, reported)) = read_painted(path, &mut offset)?
        {
            break (elapsed, view, reported);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    ensure!(
        view == "list",
        "{name}: the first view was {view:?}, not the list: the cached session did not work; see {}",
        output.display()
    );
    let pid = group.0.id();
    let screenshot_painted = match visible_window(pid)? {
        Some(window) => {
            if let Some(shot) = shot {
                let _ = Command::new("import")
                    .args(["-silent", "-window", &window])
                    .arg(shot)
                    .status();
            }
            painted(&window)?
        }
        None => false,
    };
    std::thread::sleep(SETTLE);
    let memory = group_memory(pid)?;
    group.kill();
    Ok((
        ViewLaunch {
            seen,
            reported_ms,
            screenshot_painted,
            memory,
        },
        log.unwrap_or_default(),
    ))
}

/// Makes the dev tenant delay every request by `latency_ms` (0: none), through its `/__dev/faults` controls.
fn set_tenant_latency(tenant: SocketAddr, latency_ms: u64) -> Result<()> {
    let host = tenant.to_string();
    let cleared = crate::bench::http(tenant, &host, "DELETE", "/__dev/faults", &[], None)?;
    ensure!(
        cleared.status == 204,
        "clearing the tenant's faults answered {}",
        cleared.status
    );
    if latency_ms > 0 {
        let fault = serde_json::json!({"path_prefix": "/", "latency_ms": latency_ms}).to_string();
        let added = crate::bench::http(
            tenant,
            &host,
            "POST",
            "/__dev/faults",
            &[],
            Some(("application/json", fault.as_bytes())),
        )?;
        ensure!(
            added.status == 201,
            "adding a {latency_ms} ms latency to the tenant answered {}: {}",
            added.status,
            String::from_utf8_lossy(&added.body)
        );
    }
    Ok(())
}

/// The first file called `name` under `dir`, at most `depth` levels down.
fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            subdirs.push(path);
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    if depth == 0 {
        return None;
    }
    subdirs
        .iter()
        .find_map(|sub| find_file(sub, name, depth - 1))
}

/// Reads `path` from `offset` and returns the first "first view painted" line's view and reported time; moves
/// `offset` past the complete lines read.
fn read_painted(path: &Path, offset: &mut u64) -> Result<Option<(String, Option<u64>)>> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(None);
    };
    if file.metadata()?.len() <= *offset {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(*offset))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let complete = text.rfind('\n').map_or(0, |end| end + 1);
    *offset += complete as u64;
    Ok(text[..complete].lines().find_map(painted_line))
}

/// The view and `since_start_ms` of a JSON log line whose message is "first view painted".
fn painted_line(line: &str) -> Option<(String, Option<u64>)> {
    let json: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = &json["fields"];
    (fields["message"] == PAINTED_MESSAGE).then(|| {
        (
            fields["view"].as_str().unwrap_or_default().to_owned(),
            fields["since_start_ms"].as_u64(),
        )
    })
}

/// Launches `command` (its output into files under `dir`), waits for its first painted frame by screenshot
/// polling, reads the memory of its process group after [`SETTLE`], then kills the group.
fn launch_polled(command: &mut Command, dir: &Path, name: &str) -> Result<PolledLaunch> {
    std::fs::create_dir_all(dir)?;
    command
        .stdin(Stdio::null())
        // Output to a file: MiniBrowser did not map its window with its output on /dev/null.
        .stdout(std::fs::File::create(dir.join("stdout.log"))?)
        .stderr(std::fs::File::create(dir.join("stderr.log"))?)
        .process_group(0);
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let mut group = Group(child);
    let pid = group.0.id();
    let paint = loop {
        ensure!(
            started.elapsed() < PAINT_DEADLINE,
            "{name} did not paint within {PAINT_DEADLINE:?}"
        );
        if let Some(status) = group.0.try_wait()? {
            bail!(
                "{name} exited ({status}) before painting; see {}",
                dir.join("stderr.log").display()
            );
        }
        if let Some(window) = visible_window(pid)?
            && painted(&window)?
        {
            break started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(SETTLE);
    let memory = group_memory(pid)?;
    group.kill();
    Ok(PolledLaunch { paint, memory })
}

/// A process group led by the child, killed (all of it) on drop.
struct Group(Child);

impl Group {
    /// SIGKILL to the whole group; waits for the leader and until no process of the group is left, so the next
    /// launch does not hand over to a dying single instance.
    fn kill(&mut self) {
        let group = self.0.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && group_memory(group).is_ok_and(|memory| !memory.processes.is_empty())
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The first visible X window of `pid`, if mapped yet.
fn visible_window(pid: u32) -> Result<Option<String>> {
    let output = Command::new("xdotool")
        .args(["search", "--onlyvisible", "--pid", &pid.to_string()])
        .output()
        .context("running xdotool (apt-get install xdotool)")?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .map(str::to_owned))
}

/// Whether the window shows drawn content: a screenshot as PPM, colours counted below the top quarter.
fn painted(window: &str) -> Result<bool> {
    let output = Command::new("import")
        .args(["-silent", "-window", window, "-depth", "8", "ppm:-"])
        .output()
        .context("running import (apt-get install imagemagick)")?;
    if !output.status.success() {
        // The window went away between search and screenshot, or is not viewable yet.
        return Ok(false);
    }
    Ok(distinct_content_colors(&output.stdout, PAINTED_COLORS) >= PAINTED_COLORS)
}

/// Distinct colours (up to `enough`) in the rows below the top quarter of a binary PPM (P6, maxval 255).
fn distinct_content_colors(ppm: &[u8], enough: usize) -> usize {
    let Some((width, height, pixels)) = parse_ppm(ppm) else {
        return 0;
    };
    let start = (height / 4) * width * 3;
    let mut seen = HashSet::new();
    for pixel in pixels.get(start..).unwrap_or_default().chunks_exact(3) {
        seen.insert([pixel[0], pixel[1], pixel[2]]);
        if seen.len() >= enough {
            break;
        }
    }
    seen.len()
}

/// Width, height and pixel bytes of a binary PPM with maxval 255.
fn parse_ppm(ppm: &[u8]) -> Option<(usize, usize, &[u8])> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while ppm.get(pos)?.is_ascii_whitespace() {
            pos += 1;
        }
        if ppm.get(pos) == Some(&b'#') {
            while *ppm.get(pos)? != b'\n' {
                pos += 1;
            }
            continue;
        }
        let start = pos;
        while !ppm.get(pos)?.is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(std::str::from_utf8(&ppm[start..pos]).ok()?);
    }
    if fields[0] != "P6" || fields[3] != "255" {
        return None;
    }
    let width: usize = fields[1].parse().ok()?;
    let height: usize = fields[2].parse().ok()?;
    let pixels = ppm.get(pos + 1..)?;
    (pixels.len() >= width * height * 3).then_some((width, height, pixels))
}

/// VmRSS and Pss of every live (not zombie) process whose process group is `group`.
fn group_memory(group: u32) -> Result<Memory> {
    let mut processes = Vec::new();
    for entry in std::fs::read_dir("/proc").context("reading /proc")? {
        let path = entry?.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        if stat_pgrp(&stat) != Some(group) || stat_state(&stat) == Some('Z') {
            continue;
        }
        let name = std::fs::read_to_string(path.join("comm"))
            .map(|comm| comm.trim().to_owned())
            .unwrap_or_default();
        let rss = std::fs::read_to_string(path.join("status"))
            .ok()
            .and_then(|status| kb_field(&status, "VmRSS:"))
            .unwrap_or(0)
            * 1024;
        let pss = std::fs::read_to_string(path.join("smaps_rollup"))
            .ok()
            .and_then(|rollup| kb_field(&rollup, "Pss:"))
            .unwrap_or(0)
            * 1024;
        processes.push(ProcessMemory { name, rss, pss });
    }
    processes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Memory { processes })
}

/// The fields of a `/proc/<pid>/stat` line after the command name (which may hold spaces and parentheses).
fn stat_fields(stat: &str) -> impl Iterator<Item = &str> {
    stat.rfind(')')
        .map_or("", |end| &stat[end + 1..])
        .split_whitespace()
}

/// The process group (5th field) of a `/proc/<pid>/stat` line.
fn stat_pgrp(stat: &str) -> Option<u32> {
    stat_fields(stat).nth(2)?.parse().ok()
}

/// The state letter (3rd field) of a `/proc/<pid>/stat` line.
fn stat_state(stat: &str) -> Option<char> {
    stat_fields(stat).next()?.chars().next()
}

/// The value in kB of the first line starting with `field` (`VmRSS:    1234 kB`).
fn kb_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The median of `values` (upper median for an even count).
fn median<T: Copy + Ord>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut values: Vec<T> = values.into_iter().collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

/// Everything one run measured.
#[derive(Debug)]
struct Report {
    machine: String,
    runs: usize,
    app: PathBuf,
    deb: Option<PathBuf>,
    deb_size: Option<u64>,
    log: PathBuf,
    spawn_true: Vec<Duration>,
    by_variant: Vec<Vec<ViewLaunch>>,
    app_polled: Vec<PolledLaunch>,
    browser_polled: Vec<PolledLaunch>,
    browser_nocomp_polled: Vec<PolledLaunch>,
}

/// Milliseconds, no decimals.
fn ms(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
}

/// Bytes in MB (10^6).
fn megabytes(bytes: u64) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "display only")]
    let value = bytes as f64;
    value / 1_000_000.0
}

/// `a / b` as `1.23x`.
fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".to_owned()
    }
}

/// Median RSS and PSS per process name over `launches`.
fn per_process(launches: &[&Memory]) -> Vec<(String, u64, u64)> {
    let mut names: Vec<String> = launches
        .iter()
        .flat_map(|memory| memory.processes.iter().map(|p| p.name.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let of = |pick: fn(&ProcessMemory) -> u64| {
                median(launches.iter().map(|memory| {
                    memory
                        .processes
                        .iter()
                        .filter(|p| p.name == name)
                        .map(pick)
                        .sum::<u64>()
                }))
                .unwrap_or(0)
            };
            let rss = of(|p| p.rss);
            let pss = of(|p| p.pss);
            (name, rss, pss)
        })
        .collect()
}

impl Report {
    fn print(&self) {
        let secs = |d: Duration| d.as_secs_f64();
        #[allow(clippy::cast_precision_loss, reason = "display only")]
        let float = |b: u64| b as f64;
        let view_stats = |launches: &[ViewLaunch]| {
            let seen = median(launches.iter().map(|l| l.seen)).unwrap_or_default();
            let min = launches.iter().map(|l| l.seen).min().unwrap_or_default();
            let max = launches.iter().map(|l| l.seen).max().unwrap_or_default();
            let reported = median(launches.iter().filter_map(|l| l.reported_ms));
            let rss = median(launches.iter().map(|l| l.memory.rss())).unwrap_or(0);
            let pss = median(launches.iter().map(|l| l.memory.pss())).unwrap_or(0);
            let procs = median(launches.iter().map(|l| l.memory.processes.len())).unwrap_or(0);
            (seen, min, max, reported, rss, pss, procs)
        };
        println!();
        println!("Machine: {}.", self.machine);
        let deb = match (&self.deb, self.deb_size) {
            (Some(deb), Some(size)) => format!("{} ({})", deb.display(), human_size(size)),
            _ => "no .deb".to_owned(),
        };
        println!(
            "Binary: {}; package: {deb}. Medians of {} launches per row, rows alternating; `true` spawns in {}.",
            self.app.display(),
            self.runs,
            ms(median(self.spawn_true.iter().copied()).unwrap_or_default()),
        );
        println!();
        println!(
            "Cold start to the painted list with a cached session (spawn to the app's \"{PAINTED_MESSAGE}\" log line, view = list):"
        );
        println!();
        println!(
            "| variant | spawn to list on screen | min-max | app's own (run() to report) | total RSS | total PSS | processes | time vs reference | RSS vs reference | PSS vs reference |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let local_reference = view_stats(&self.by_variant[3]);
        let remote_reference = view_stats(&self.by_variant[VARIANTS.len() - 1]);
        for (variant, launches) in VARIANTS.iter().zip(&self.by_variant) {
            let (seen, min, max, reported, rss, pss, procs) = view_stats(launches);
            let before = if variant.tenant_latency_ms > 0 {
                &remote_reference
            } else {
                &local_reference
            };
            println!(
                "| {} | {} | {:.0}-{:.0} | {} | {:.0} MB | {:.0} MB | {procs} | {} | {} | {} |",
                variant.label,
                ms(seen),
                secs(min) * 1000.0,
                secs(max) * 1000.0,
                reported.map_or_else(|| "-".to_owned(), |r| format!("{r} ms")),
                megabytes(rss),
                megabytes(pss),
                ratio(secs(seen), secs(before.0)),
                ratio(float(rss), float(before.4)),
                ratio(float(pss), float(before.5)),
            );
        }
        println!();
        println!(
            "Reference: \"{}\" for the local rows, \"{}\" for the rows with the tenant {REMOTE_TENANT_MS} ms away.",
            VARIANTS[3].label,
            VARIANTS[VARIANTS.len() - 1].label
        );
        let shots: usize = self
            .by_variant
            .iter()
            .flatten()
            .filter(|l| l.screenshot_painted)
            .count();
        let total: usize = self.by_variant.iter().map(Vec::len).sum();
        println!();
        println!(
            "Screenshots right after the log line showed a painted window in {shots} of {total} launches (first launch of each variant saved as target/bench-app/list-<n>.png). App log: {}.",
            self.log.display()
        );
        for (variant, launches) in VARIANTS.iter().zip(&self.by_variant) {
            let each: Vec<String> = launches.iter().map(|l| ms(l.seen)).collect();
            println!("{}: {}", variant.label, each.join(", "));
        }
        for (index, label) in [(0, VARIANTS[0].label), (3, VARIANTS[3].label)] {
            let memories: Vec<&Memory> = self.by_variant[index].iter().map(|l| &l.memory).collect();
            let parts: Vec<String> = per_process(&memories)
                .into_iter()
                .map(|(name, rss, pss)| {
                    format!(
                        "{name} RSS {:.0} MB / PSS {:.0} MB",
                        megabytes(rss),
                        megabytes(pss)
                    )
                })
                .collect();
            println!("Per process, {label}: {}.", parts.join("; "));
        }

        println!();
        println!(
            "First painted frame, the same method for every program (screenshot polling, so +-50-150 ms):"
        );
        println!();
        println!(
            "| program | spawn to first painted frame | total RSS | total PSS | processes | time vs MiniBrowser | RSS vs MiniBrowser | PSS vs MiniBrowser |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        let polled_stats = |launches: &[PolledLaunch]| {
            (
                median(launches.iter().map(|l| l.paint)).unwrap_or_default(),
                median(launches.iter().map(|l| l.memory.rss())).unwrap_or(0),
                median(launches.iter().map(|l| l.memory.pss())).unwrap_or(0),
                median(launches.iter().map(|l| l.memory.processes.len())).unwrap_or(0),
            )
        };
        let base = polled_stats(&self.browser_polled);
        for (label, launches) in [
            (
                "passkey-companion (as shipped, cached session)",
                &self.app_polled,
            ),
            (
                "MiniBrowser (bare WebKitGTK, same ui/index.html)",
                &self.browser_polled,
            ),
            (
                "MiniBrowser with WEBKIT_DISABLE_COMPOSITING_MODE=1",
                &self.browser_nocomp_polled,
            ),
        ] {
            let (paint, rss, pss, procs) = polled_stats(launches);
            println!(
                "| {label} | {} | {:.0} MB | {:.0} MB | {procs} | {} | {} | {} |",
                ms(paint),
                megabytes(rss),
                megabytes(pss),
                ratio(secs(paint), secs(base.0)),
                ratio(float(rss), float(base.1)),
                ratio(float(pss), float(base.2)),
            );
        }

        let shipped = view_stats(&self.by_variant[0]);
        let met = |ok: bool| if ok { "met" } else { "missed" };
        println!();
        println!("Against the targets of issue 5:");
        println!();
        println!("| target | result (as shipped) | verdict |");
        println!("|---|---|---|");
        println!(
            "| cold start to painted list <= 1 s | {} (median; min {}) | {} |",
            ms(shipped.0),
            ms(shipped.1),
            met(shipped.0 <= Duration::from_secs(1))
        );
        println!(
            "| total RSS <= 150 MB | {:.0} MB RSS; {:.0} MB PSS | {} (by PSS: {}) |",
            megabytes(shipped.4),
            megabytes(shipped.5),
            met(shipped.4 <= 150_000_000),
            met(shipped.5 <= 150_000_000)
        );
        println!(
            "| .deb <= 10 MB | {} | {} |",
            self.deb_size
                .map_or_else(|| "not built".to_owned(), human_size),
            self.deb_size
                .map_or("not measured", |size| met(size <= 10_000_000))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ppm(width: usize, height: usize, pixel: impl Fn(usize, usize) -> [u8; 3]) -> Vec<u8> {
        let mut out = format!("P6\n# comment\n{width} {height}\n255\n").into_bytes();
        for y in 0..height {
            for x in 0..width {
                out.extend_from_slice(&pixel(x, y));
            }
        }
        out
    }

    #[test]
    fn a_blank_window_is_not_painted_and_text_is() {
        let blank = ppm(40, 40, |_, _| [255, 255, 255]);
        assert_eq!(distinct_content_colors(&blank, 8), 1, "one colour");
        let text = ppm(40, 40, |x, y| {
            if y > 20 {
                [x as u8, x as u8, 0]
            } else {
                [255; 3]
            }
        });
        assert_eq!(distinct_content_colors(&text, 8), 8, "stops at enough");
    }

    #[test]
    fn colours_in_the_top_quarter_do_not_count() {
        let toolbar = ppm(
            40,
            40,
            |x, y| if y < 10 { [x as u8, 0, 0] } else { [255; 3] },
        );
        assert_eq!(distinct_content_colors(&toolbar, 8), 1, "toolbar only");
    }

    #[test]
    fn a_truncated_or_foreign_image_counts_nothing() {
        let mut short = ppm(10, 10, |_, _| [1, 2, 3]);
        short.truncate(40);
        assert_eq!(distinct_content_colors(&short, 8), 0, "truncated");
        assert_eq!(
            distinct_content_colors(b"P3\n1 1\n255\n0 0 0\n", 8),
            0,
            "ASCII PPM"
        );
    }

    #[test]
    fn proc_fields_are_parsed() {
        let stat = "1234 (Web (Content)) S 1000 4321 4321 0 -1 4194560 1 0 0 0";
        assert_eq!(
            stat_pgrp(stat),
            Some(4321),
            "pgrp after a name with spaces and parentheses"
        );
        assert_eq!(stat_state(stat), Some('S'), "state");
        assert_eq!(stat_state("9 (x) Z 1 9 9"), Some('Z'), "zombie");
        let status = "Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t   51234 kB\n";
        assert_eq!(kb_field(status, "VmRSS:"), Some(51234), "VmRSS");
        assert_eq!(kb_field("Rss: 5 kB\nPss:  7 kB\n", "Pss:"), Some(7), "Pss");
        assert_eq!(kb_field(status, "Pss:"), None, "absent");
    }

    #[test]
    fn the_median_is_the_middle_value() {
        assert_eq!(median([5, 1, 3]), Some(3), "odd");
        assert_eq!(median([4, 1, 3, 2]), Some(3), "upper median");
        assert_eq!(median(Vec::<u32>::new()), None, "empty");
    }

    #[test]
    fn the_painted_line_is_found_in_the_apps_json_log() {
        let started = r#"{"timestamp":"t","level":"INFO","fields":{"message":"started","version":"0.1.0"},"target":"passkey_companion"}"#;
        let painted = r#"{"timestamp":"t","level":"INFO","fields":{"message":"first view painted","view":"list","since_start_ms":793,"tuning":true},"target":"passkey_companion::webview"}"#;
        assert_eq!(painted_line(started), None, "another message");
        assert_eq!(painted_line("not json"), None, "not JSON");
        assert_eq!(
            painted_line(painted),
            Some(("list".to_owned(), Some(793))),
            "view and the app's own time"
        );
    }

    #[test]
    fn the_log_is_read_from_the_offset_and_only_complete_lines_count() {
        let dir = std::env::temp_dir().join(format!("bench-app-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let path = dir.join(LOG_FILE);
        let old = r#"{"fields":{"message":"first view painted","view":"signed-out"}}"#;
        std::fs::write(&path, format!("{old}\n")).expect("write");
        let mut offset = std::fs::metadata(&path).expect("metadata").len();
        assert_eq!(
            read_painted(&path, &mut offset).expect("read"),
            None,
            "an earlier launch's line is skipped"
        );
        let new = r#"{"fields":{"message":"first view painted","view":"list","since_start_ms":5}}"#;
        std::fs::write(&path, format!("{old}\n{}", &new[..20])).expect("write");
        assert_eq!(
            read_painted(&path, &mut offset).expect("read"),
            None,
            "half a line waits"
        );
        std::fs::write(&path, format!("{old}\n{new}\n")).expect("write");
        assert_eq!(
            read_painted(&path, &mut offset).expect("read"),
            Some(("list".to_owned(), Some(5))),
            "the new launch's line"
        );
        assert_eq!(
            find_file(&dir, LOG_FILE, 2).as_deref(),
            Some(path.as_path()),
            "found by name"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn query_parameters_are_read_raw() {
        let url = "http://127.0.0.1:9/u/login?state=abc%2Fd&x=1";
        assert_eq!(
            query_param(url, "state").as_deref(),
            Some("abc%2Fd"),
            "raw value"
        );
        assert_eq!(query_param(url, "nope"), None, "absent");
        assert_eq!(query_param("http://h/no-query", "state"), None, "no query");
    }

    #[test]
    fn the_first_variant_is_the_shipped_app_and_the_fourth_session_1s() {
        assert_eq!(VARIANTS[0].disable, "", "as shipped turns nothing off");
        assert!(VARIANTS[0].env.is_empty(), "as shipped adds no environment");
        assert_eq!(
            VARIANTS[3].disable, "webview-tuning,session-prefetch",
            "the baseline row turns off everything this session added"
        );
        let remote: Vec<&Variant> = VARIANTS
            .iter()
            .filter(|v| v.tenant_latency_ms > 0)
            .collect();
        assert_eq!(remote.len(), 2, "one remote-tenant pair");
        assert_eq!(
            (remote[0].disable, remote[1].disable),
            ("", "session-prefetch"),
            "the pair differs only by the prefetch, and the reference (without) comes last"
        );
        assert!(
            VARIANTS.last().is_some_and(|v| v.tenant_latency_ms > 0),
            "the remote reference row is the last"
        );
    }
}
