//! `cargo xtask bench [proxy]`: load tests on loopback with `wrk`, printed as a table (see `docs/benchmarks.md`).
//!
//! `bench proxy` builds release binaries, then starts on 127.0.0.1 only: the dev tenant (development controls
//! on, for its Management call log) seeded with the demo world plus [`BENCH_USERS`] copies of alice, nginx as a
//! plain reverse proxy to it, and companion-proxy against it. The same upstream requests (a user's authentication
//! methods, one page, spread over all the users) are measured three ways at the same concurrency: (a) the tenant
//! directly with an M2M bearer, (b) through nginx with that bearer, (c) through companion-proxy as
//! `GET /v1/me/authenticators` with each user's own access token (so (c) also verifies the token and reshapes the
//! list, and cannot join reads of one user). Then a paced half-load run of each for added latency, an exact
//! 10,000-request pass and a 100-request burst of one user for the upstream-call counts, and 1,000-connection runs
//! for the proxy's memory. Every process started here runs in
//! its own process group and is killed at the end, on error, and on Ctrl-C.

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use companion_devtenant::world::demo;

use crate::ci::{cargo, format_duration, project_root, run_checked};
use crate::setup::command_exists;

/// wrk threads (one per core of the 2-core reference machine).
const WRK_THREADS: u32 = 2;
/// Connections of the full-load runs, the same for every target.
const CONNECTIONS: u32 = 50;
/// Length of each full-load and half-load run.
const RUN_SECONDS: u32 = 10;
/// A short unmeasured run before each measured one (connection set-up, caches, JIT-free but page-cache warm).
const WARM_UP_SECONDS: u32 = 2;
/// Pause of each connection between two requests in the paced (half-load) runs.
const PACED_DELAY_MS: u32 = 10;
/// Length of the single-connection runs.
const SINGLE_SECONDS: u32 = 5;
/// Connections of the memory run.
const RSS_CONNECTIONS: u32 = 1000;
/// Length of the memory run.
const RSS_SECONDS: u32 = 5;
/// Requests of the exact counting pass.
const COUNTED_REQUESTS: usize = 10_000;
/// Users seeded besides the demo world's, each with alice's four methods and its own access token: the load runs
/// spread their requests over all of them, so every target does the same upstream work (one list read per request)
/// instead of the proxy joining identical reads of one user.
const BENCH_USERS: usize = 1000;
/// Threads signing the bench users in.
const LOGIN_THREADS: usize = 4;
/// Concurrent identical list requests of the single-flight burst.
const BURST: usize = 100;
/// Page size of the upstream list call, as companion-mgmt sends it.
const PER_PAGE: u32 = 50;
/// How long a started server may take to answer.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Timeout of each helper HTTP request.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Process groups to kill when the bench is interrupted.
static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Which benches to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Suite {
    /// companion-proxy against the upstream directly and nginx.
    Proxy,
    /// The desktop app: start-up to painted window, memory with WebKit processes, `.deb` size.
    App,
}

/// Runs `suite`, or every bench when `None`.
pub(crate) fn run(suite: Option<Suite>) -> Result<()> {
    install_interrupt_handler();
    match suite {
        Some(Suite::Proxy) => bench_proxy(),
        Some(Suite::App) => crate::bench_app::run(),
        None => {
            bench_proxy()?;
            crate::bench_app::run()
        }
    }
}

/// The whole `bench proxy`.
fn bench_proxy() -> Result<()> {
    ensure_tools()?;
    let started = Instant::now();
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
        ]),
        "cargo build --release (dev tenant and proxy)",
    )?;
    println!(
        "xtask: built release binaries in {}",
        format_duration(started.elapsed())
    );
    let release = target_dir().join("release");
    let work = target_dir().join("bench").join("proxy");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(work.join("nginx")).context("creating the bench directory")?;

    let bench_started = Instant::now();
    let mut servers = Servers::default();
    let result = measure(&release, &work, &mut servers);
    servers.stop_all();
    let report = result?;
    println!("{report}");
    println!(
        "xtask: bench finished in {} (after the build)",
        format_duration(bench_started.elapsed())
    );
    Ok(())
}

/// Installs `wrk` and `nginx` from Debian when they are missing (quiet when present).
fn ensure_tools() -> Result<()> {
    let missing: Vec<&str> = [("wrk", "wrk"), ("nginx", "nginx")]
        .into_iter()
        .filter(|(binary, _)| {
            !command_exists(binary) && !Path::new("/usr/sbin").join(binary).is_file()
        })
        .map(|(_, package)| package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("xtask: apt-get install {}", missing.join(" "));
    let mut update = Command::new("apt-get");
    update
        .args(["-o", "DPkg::Lock::Timeout=600", "update", "-q"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null());
    run_checked(&mut update, "apt-get update")?;
    let mut install = Command::new("apt-get");
    install
        .args([
            "-o",
            "DPkg::Lock::Timeout=600",
            "install",
            "-y",
            "--no-install-recommends",
            "-q",
        ])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null());
    run_checked(&mut install, "apt-get install")
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => project_root().join(dir),
        None => project_root().join("target"),
    }
}

/// The nginx binary (Debian puts it in `/usr/sbin`, which a non-root `PATH` may lack).
fn nginx_binary() -> PathBuf {
    if command_exists("nginx") {
        PathBuf::from("nginx")
    } else {
        PathBuf::from("/usr/sbin/nginx")
    }
}

/// Every measurement of one run.
#[derive(Debug)]
struct Report {
    machine: String,
    full: Vec<(Target, WrkResult)>,
    paced_connections: u32,
    paced: Vec<(Target, WrkResult)>,
    single: Vec<(Target, WrkResult)>,
    counted: Counted,
    burst: Burst,
    rss_idle_kib: u64,
    rss_during_kib: u64,
    hwm_kib: u64,
    rss_run: WrkResult,
    users: usize,
    rss_spread_kib: u64,
    rss_spread_run: WrkResult,
}

/// The three ways of reaching the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Direct,
    Nginx,
    Proxy,
}

impl Target {
    const ALL: [Self; 3] = [Self::Direct, Self::Nginx, Self::Proxy];

    fn label(self) -> &'static str {
        match self {
            Self::Direct => "(a) upstream direct",
            Self::Nginx => "(b) nginx pass-through",
            Self::Proxy => "(c) companion-proxy",
        }
    }
}

/// The servers of one bench and how to reach each target.
#[derive(Debug, Default)]
struct Servers {
    children: Vec<(String, Child)>,
}

impl Servers {
    /// Starts `command` in its own process group and remembers it.
    fn spawn(&mut self, name: &str, command: &mut Command, log: &Path) -> Result<u32> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err_file = log_file.try_clone().context("sharing the log file")?;
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id();
        if let Ok(mut groups) = GROUPS.lock() {
            groups.push(pid);
        }
        self.children.push((name.to_owned(), child));
        Ok(pid)
    }

    /// Fails when a started server has exited (it should run until stopped).
    fn check_alive(&mut self) -> Result<()> {
        for (name, child) in &mut self.children {
            if let Some(status) = child.try_wait().context("checking a server")? {
                bail!("{name} exited early ({status}); see its log in target/bench/proxy/");
            }
        }
        Ok(())
    }

    /// SIGTERM to every process group, then SIGKILL to those still there after a moment.
    fn stop_all(&mut self) {
        for (_, child) in &self.children {
            signal_group(child.id(), "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for (_, child) in &mut self.children {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            signal_group(child.id(), "KILL");
            let _ = child.wait();
        }
        if let Ok(mut groups) = GROUPS.lock() {
            groups.clear();
        }
        self.children.clear();
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// `kill -<signal> -- -<group>`; a group that is already gone is fine.
fn signal_group(group: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// On Ctrl-C or SIGTERM: kill the started process groups and exit 130.
fn install_interrupt_handler() {
    std::thread::spawn(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut interrupt), Ok(mut terminate)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            let groups = GROUPS.lock().map(|g| g.clone()).unwrap_or_default();
            for group in groups {
                signal_group(group, "KILL");
            }
            eprintln!("\nxtask: bench interrupted; servers stopped");
            std::process::exit(130);
        });
    });
}

/// A free port on 127.0.0.1 (free when asked; the servers bind it right after).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr().context("reading a free port")?.port())
}

/// Polls `path` on `addr` until it answers 200.
fn wait_ready(servers: &mut Servers, name: &str, addr: SocketAddr, path: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        servers.check_alive()?;
        if let Ok(response) = http(addr, &addr.to_string(), "GET", path, &[], None)
            && response.status == 200
        {
            return Ok(());
        }
        if started.elapsed() > READY_DEADLINE {
            bail!("{name} did not answer 200 on {path} within {READY_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts everything, measures, and returns the report (the caller stops the servers).
fn measure(release: &Path, work: &Path, servers: &mut Servers) -> Result<Report> {
    let machine = machine_description();
    let (world, users) = bench_world(BENCH_USERS)?;
    let world_path = work.join("world.toml");
    std::fs::write(&world_path, world).context("writing the bench world")?;
    let tenant_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let tenant_host = format!("localhost:{}", tenant_addr.port());
    let tenant_base = format!("http://{tenant_host}");
    let tenant_pid = servers.spawn(
        "the dev tenant",
        Command::new(release.join("companion-devtenant"))
            .arg("--listen")
            .arg(tenant_addr.to_string())
            .arg("--dev-controls")
            .arg("--world")
            .arg(&world_path)
            .env("RUST_LOG", "warn"),
        &work.join("devtenant.log"),
    )?;
    wait_ready(
        servers,
        "the dev tenant",
        tenant_addr,
        "/.well-known/openid-configuration",
    )?;

    let nginx_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let nginx_dir = work.join("nginx");
    let conf = nginx_conf(&nginx_dir, nginx_addr, tenant_addr, &tenant_host, cores());
    let conf_path = nginx_dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).context("writing nginx.conf")?;
    let nginx_pid = servers.spawn(
        "nginx",
        Command::new(nginx_binary())
            .arg("-p")
            .arg(&nginx_dir)
            .arg("-e")
            .arg(nginx_dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path),
        &work.join("nginx.out"),
    )?;

    let proxy_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let proxy_pid = servers.spawn(
        "companion-proxy",
        Command::new(release.join("companion-proxy"))
            .env("COMPANION_LISTEN", proxy_addr.to_string())
            .env("COMPANION_AUTH0_URL", &tenant_base)
            .env("COMPANION_MGMT_CLIENT_ID", demo::PROXY_CLIENT_ID)
            .env("COMPANION_MGMT_CLIENT_SECRET", demo::PROXY_CLIENT_SECRET)
            // Request logs off, as nginx's access log is: the bench measures the proxying, not log I/O.
            .env("RUST_LOG", "warn"),
        &work.join("proxy.log"),
    )?;
    wait_ready(servers, "companion-proxy", proxy_addr, "/readyz")?;

    let mgmt_token = m2m_token(tenant_addr, &tenant_host)?;
    let user_token = user_token(tenant_addr, &tenant_host, demo::ALICE_EMAIL)?;
    let upstream_path = format!(
        "/api/v2/users/{}/authentication-methods?include_totals=true&per_page={PER_PAGE}&page=0",
        percent_encode(demo::ALICE_USER_ID)
    );
    let proxy_path = "/v1/me/authenticators";
    // nginx answers once the tenant does: a request through it checks both.
    let mgmt_auth = format!("Bearer {mgmt_token}");
    wait_ready_with(servers, nginx_addr, &upstream_path, &mgmt_auth)?;
    let user_auth = format!("Bearer {user_token}");
    let check = http(
        proxy_addr,
        &proxy_addr.to_string(),
        "GET",
        proxy_path,
        &[("Authorization", &user_auth)],
        None,
    )?;
    ensure!(
        check.status == 200,
        "companion-proxy answered {} to alice's list: {}",
        check.status,
        String::from_utf8_lossy(&check.body)
    );
    let shape: serde_json::Value =
        serde_json::from_slice(&check.body).context("the proxy's list is JSON")?;
    ensure!(
        shape.get("authenticators").is_some() || shape.is_array(),
        "unexpected list shape from the proxy: {shape}"
    );

    println!(
        "xtask: signing {} bench users in ({LOGIN_THREADS} threads)",
        users.len()
    );
    let user_auths = bench_tokens(tenant_addr, &tenant_host, &users)?;
    // The equal-work scripts: request i goes to user i mod N, the same users in the same order for every target.
    let spread = |target: Target| -> Vec<(String, String)> {
        users
            .iter()
            .zip(&user_auths)
            .map(|(user, user_auth)| match target {
                Target::Direct | Target::Nginx => (
                    format!(
                        "/api/v2/users/{}/authentication-methods?include_totals=true&per_page={PER_PAGE}&page=0",
                        percent_encode(&user.user_id)
                    ),
                    mgmt_auth.clone(),
                ),
                Target::Proxy => (proxy_path.to_owned(), user_auth.clone()),
            })
            .collect()
    };
    let mut scripts = Vec::new();
    for target in Target::ALL {
        let name = format!("{target:?}").to_lowercase();
        let full = work.join(format!("spread-{name}.lua"));
        let paced = work.join(format!("spread-{name}-paced.lua"));
        std::fs::write(&full, spread_script(&spread(target), None))
            .context("writing a wrk script")?;
        std::fs::write(&paced, spread_script(&spread(target), Some(PACED_DELAY_MS)))
            .context("writing a wrk script")?;
        scripts.push((target, full, paced));
    }
    let script_of = |target: Target, paced: bool| -> PathBuf {
        scripts
            .iter()
            .find(|(t, _, _)| *t == target)
            .map(|(_, full, paced_script)| {
                if paced {
                    paced_script.clone()
                } else {
                    full.clone()
                }
            })
            .unwrap_or_default()
    };

    let url_of = |target: Target| match target {
        Target::Direct => (
            format!("http://{tenant_addr}{upstream_path}"),
            mgmt_auth.clone(),
        ),
        Target::Nginx => (
            format!("http://{nginx_addr}{upstream_path}"),
            mgmt_auth.clone(),
        ),
        Target::Proxy => (
            format!("http://{proxy_addr}{proxy_path}"),
            user_auth.clone(),
        ),
    };

    println!(
        "xtask: full load: wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{RUN_SECONDS}s against each target, requests spread over {} users",
        users.len()
    );
    // One wrk run; through the proxy, also the upstream calls it made (from /metrics).
    let measured = |target: Target,
                    connections: u32,
                    seconds: u32,
                    script: Option<&Path>|
     -> Result<WrkResult> {
        let (url, auth) = url_of(target);
        let before = (target == Target::Proxy)
            .then(|| proxy_metrics(proxy_addr))
            .transpose()?;
        let mut result = wrk(&url, &auth, connections, seconds, script)?;
        if let Some(before) = before {
            let after = proxy_metrics(proxy_addr)?;
            result.upstream_calls = Some(after.upstream_calls - before.upstream_calls);
        }
        Ok(result)
    };
    let mut full = Vec::new();
    for target in Target::ALL {
        let (url, auth) = url_of(target);
        let script = script_of(target, false);
        wrk(&url, &auth, CONNECTIONS, WARM_UP_SECONDS, Some(&script))?;
        let hop = match target {
            Target::Direct => None,
            Target::Nginx => Some(nginx_pid),
            Target::Proxy => Some(proxy_pid),
        };
        let cpu_before = (
            group_cpu_ticks(tenant_pid)?,
            hop.map(group_cpu_ticks).transpose()?,
        );
        let mut result = measured(target, CONNECTIONS, RUN_SECONDS, Some(&script))?;
        let cpu_after = (
            group_cpu_ticks(tenant_pid)?,
            hop.map(group_cpu_ticks).transpose()?,
        );
        result.upstream_cpu_us = per_request_us(cpu_after.0 - cpu_before.0, result.requests);
        result.hop_cpu_us = cpu_after
            .1
            .zip(cpu_before.1)
            .and_then(|(after, before)| per_request_us(after - before, result.requests));
        servers.check_alive()?;
        println!("  {:<24} {:>9.0} req/s", target.label(), result.rps);
        full.push((target, result));
    }

    // Half of the slowest target's maximum, offered to every target (so every one can sustain it): each
    // connection waits PACED_DELAY_MS between requests, so the rate is about connections × 1000 / (delay + latency).
    let slowest = full
        .iter()
        .map(|(_, r)| r.rps)
        .fold(f64::INFINITY, f64::min);
    let half = slowest / 2.0;
    let paced_connections = paced_connections(half);
    println!(
        "xtask: half load: ~{half:.0} req/s offered ({paced_connections} connections, {PACED_DELAY_MS} ms pause each)"
    );
    let mut paced = Vec::new();
    for target in Target::ALL {
        let result = measured(
            target,
            paced_connections,
            RUN_SECONDS,
            Some(&script_of(target, true)),
        )?;
        servers.check_alive()?;
        println!(
            "  {:<24} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms",
            target.label(),
            result.rps,
            result.p50_ms,
            result.p99_ms
        );
        paced.push((target, result));
    }

    println!(
        "xtask: one connection: wrk -t1 -c1 -d{SINGLE_SECONDS}s (no queueing, no joined reads)"
    );
    let mut single = Vec::new();
    for target in Target::ALL {
        let result = measured(target, 1, SINGLE_SECONDS, Some(&script_of(target, false)))?;
        servers.check_alive()?;
        println!(
            "  {:<24} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms",
            target.label(),
            result.rps,
            result.p50_ms,
            result.p99_ms
        );
        single.push((target, result));
    }

    println!(
        "xtask: counting upstream calls over {COUNTED_REQUESTS} proxy requests and a burst of {BURST}"
    );
    let counted = count_pass(
        proxy_addr,
        tenant_addr,
        &tenant_host,
        proxy_path,
        &user_auths,
    )?;
    let burst = burst(
        proxy_addr,
        tenant_addr,
        &tenant_host,
        proxy_path,
        &user_auth,
    )?;

    let rss_idle_kib = proc_status_kib(proxy_pid, "VmRSS")?;
    println!(
        "xtask: memory: wrk -c{RSS_CONNECTIONS} -d{RSS_SECONDS}s against the proxy, alice only, then spread over the users"
    );
    let (url, auth) = url_of(Target::Proxy);
    let (rss_run, rss_during_kib) = wrk_sampling_rss(&url, &auth, proxy_pid, None)?;
    let (rss_spread_run, rss_spread_kib) = wrk_sampling_rss(
        &url,
        &auth,
        proxy_pid,
        Some(&script_of(Target::Proxy, false)),
    )?;
    let hwm_kib = proc_status_kib(proxy_pid, "VmHWM")?;
    servers.check_alive()?;

    Ok(Report {
        machine,
        full,
        paced_connections,
        paced,
        single,
        counted,
        burst,
        rss_idle_kib,
        rss_during_kib,
        hwm_kib,
        rss_run,
        users: users.len(),
        rss_spread_kib,
        rss_spread_run,
    })
}

/// Connections that offer `rate` requests per second when each pauses [`PACED_DELAY_MS`] between requests.
fn paced_connections(rate: f64) -> u32 {
    let connections = (rate * f64::from(PACED_DELAY_MS) / 1000.0).ceil();
    if connections.is_finite() && connections >= 2.0 {
        // Bounded above by the memory-run size; the cast is exact below 2^32.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let connections = connections.min(f64::from(RSS_CONNECTIONS)) as u32;
        connections
    } else {
        2
    }
}

/// Polls nginx until it relays 200 from the tenant.
fn wait_ready_with(servers: &mut Servers, addr: SocketAddr, path: &str, auth: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        servers.check_alive()?;
        if let Ok(response) = http(
            addr,
            &addr.to_string(),
            "GET",
            path,
            &[("Authorization", auth)],
            None,
        ) && response.status == 200
        {
            return Ok(());
        }
        if started.elapsed() > READY_DEADLINE {
            bail!(
                "nginx did not relay 200 for {path} within {READY_DEADLINE:?}; see target/bench/proxy/nginx/error.log"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Number of online CPUs.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// The nginx configuration: a plain reverse proxy, one worker per core, keepalive upstream, logs off, all paths
/// under `prefix`.
fn nginx_conf(
    prefix: &Path,
    listen: SocketAddr,
    upstream: SocketAddr,
    host: &str,
    workers: usize,
) -> String {
    let prefix = prefix.display();
    format!(
        "daemon off;
master_process on;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log crit;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream tenant {{
        server {upstream};
        keepalive 128;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://tenant;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host {host};
        }}
    }}
}}
"
    )
}

/// What wrk reported.
#[derive(Debug, Clone, Default, PartialEq)]
struct WrkResult {
    requests: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    socket_errors: u64,
    /// Upstream calls the proxy made during the run (runs through the proxy only).
    upstream_calls: Option<u64>,
    /// CPU time of the upstream (the tenant) per request, in microseconds (full-load runs only).
    upstream_cpu_us: Option<f64>,
    /// CPU time of the hop (nginx's processes or the proxy) per request, in microseconds (full-load runs only).
    hop_cpu_us: Option<f64>,
}

/// One bounded wrk run (`--latency`), optionally with a Lua script.
fn wrk(
    url: &str,
    auth: &str,
    connections: u32,
    seconds: u32,
    script: Option<&Path>,
) -> Result<WrkResult> {
    let output = wrk_command(url, auth, connections, seconds, script)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "wrk failed ({}): {}{}",
        output.status,
        text,
        String::from_utf8_lossy(&output.stderr)
    );
    parse_wrk(&text).with_context(|| format!("reading wrk's output:\n{text}"))
}

fn wrk_command(
    url: &str,
    auth: &str,
    connections: u32,
    seconds: u32,
    script: Option<&Path>,
) -> Command {
    let mut command = Command::new("wrk");
    command
        .arg(format!("-t{}", WRK_THREADS.min(connections)))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--timeout")
        .arg("10s")
        .arg("--latency")
        .arg("-H")
        .arg(format!("Authorization: {auth}"));
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    command.arg(url).stdin(Stdio::null());
    command
}

/// The memory run: samples the proxy's RSS near the end of the run, while the connections are open.
fn wrk_sampling_rss(
    url: &str,
    auth: &str,
    pid: u32,
    script: Option<&Path>,
) -> Result<(WrkResult, u64)> {
    let child = wrk_command(url, auth, RSS_CONNECTIONS, RSS_SECONDS, script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running wrk")?;
    let started = Instant::now();
    let mut peak = 0;
    // Sample every 100 ms while wrk runs; the highest value is reported.
    while started.elapsed() < Duration::from_secs(u64::from(RSS_SECONDS)) {
        peak = peak.max(proc_status_kib(pid, "VmRSS")?);
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().context("waiting for wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "wrk failed ({}): {text}",
        output.status
    );
    Ok((
        parse_wrk(&text).with_context(|| format!("reading wrk's output:\n{text}"))?,
        peak,
    ))
}

/// Reads wrk's `--latency` report.
fn parse_wrk(text: &str) -> Result<WrkResult> {
    let mut result = WrkResult::default();
    let (mut p50, mut p99, mut rps, mut requests) = (None, None, None, None);
    for line in text.lines() {
        let line = line.trim();
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("50%"), Some(value)) => p50 = Some(parse_duration_ms(value)?),
            (Some("99%"), Some(value)) => p99 = Some(parse_duration_ms(value)?),
            (Some("Requests/sec:"), Some(value)) => {
                rps = Some(value.parse::<f64>().context("Requests/sec")?);
            }
            (Some(count), Some("requests")) => {
                requests = Some(count.parse::<u64>().context("request count")?);
            }
            _ => {}
        }
        if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            result.non_2xx = rest.trim().parse().context("non-2xx count")?;
        }
        if let Some(rest) = line.strip_prefix("Socket errors:") {
            result.socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        }
    }
    result.p50_ms = p50.context("no 50% line")?;
    result.p99_ms = p99.context("no 99% line")?;
    result.rps = rps.context("no Requests/sec line")?;
    result.requests = requests.context("no request count")?;
    Ok(result)
}

/// `635.00us`, `1.05ms`, `2.00s`, `1.00m` → milliseconds.
fn parse_duration_ms(value: &str) -> Result<f64> {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("no unit in {value:?}"))?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number
        .parse()
        .with_context(|| format!("bad number in {value:?}"))?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        other => bail!("unknown unit {other:?} in {value:?}"),
    };
    Ok(number * factor)
}

/// Upstream calls and token fetches over exactly [`COUNTED_REQUESTS`] proxy requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counted {
    requests: usize,
    failures: usize,
    upstream_calls_metrics: u64,
    upstream_calls_tenant: usize,
    token_fetches: u64,
    token_fetches_total: u64,
    rsa_verifications: u64,
    joined: u64,
}

/// The single-flight burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Burst {
    ok: usize,
    upstream_calls_metrics: u64,
    upstream_calls_tenant: usize,
}

/// [`COUNTED_REQUESTS`] requests over [`CONNECTIONS`] keep-alive connections, spread over the users' `auths` in
/// turn, counted by the proxy's metrics and the tenant's call log.
fn count_pass(
    proxy: SocketAddr,
    tenant: SocketAddr,
    tenant_host: &str,
    path: &str,
    auths: &[String],
) -> Result<Counted> {
    ensure!(!auths.is_empty(), "no users to count with");
    clear_call_log(tenant, tenant_host)?;
    let before = proxy_metrics(proxy)?;
    let per_connection = COUNTED_REQUESTS / usize::try_from(CONNECTIONS).unwrap_or(1);
    let requests: Vec<String> = auths
        .iter()
        .map(|auth| {
            format!("GET {path} HTTP/1.1\r\nHost: {proxy}\r\nAuthorization: {auth}\r\n\r\n")
        })
        .collect();
    let failures = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..usize::try_from(CONNECTIONS).unwrap_or(1))
            .map(|connection| {
                let requests = &requests;
                scope.spawn(move || -> Result<usize> {
                    let stream = connect(proxy)?;
                    let mut writer = stream.try_clone().context("cloning a socket")?;
                    let mut reader = BufReader::new(stream);
                    let mut failures = 0;
                    for k in 0..per_connection {
                        // At each step the connections ask for different users.
                        let request = &requests[(k * usize::try_from(CONNECTIONS).unwrap_or(1)
                            + connection)
                            % requests.len()];
                        writer
                            .write_all(request.as_bytes())
                            .context("sending a request")?;
                        if read_response(&mut reader)?.status != 200 {
                            failures += 1;
                        }
                    }
                    Ok(failures)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a load thread panicked"))?
            })
            .sum::<Result<usize>>()
    })?;
    let after = proxy_metrics(proxy)?;
    let calls = list_calls_logged(tenant, tenant_host)?;
    Ok(Counted {
        requests: per_connection * usize::try_from(CONNECTIONS).unwrap_or(1),
        failures,
        upstream_calls_metrics: after.upstream_calls - before.upstream_calls,
        upstream_calls_tenant: calls,
        token_fetches: after.token_fetches - before.token_fetches,
        token_fetches_total: after.token_fetches,
        rsa_verifications: after.verifications - before.verifications,
        joined: after.joined - before.joined,
    })
}

/// [`BURST`] identical list requests released at once, each on its own connection.
fn burst(
    proxy: SocketAddr,
    tenant: SocketAddr,
    tenant_host: &str,
    path: &str,
    auth: &str,
) -> Result<Burst> {
    clear_call_log(tenant, tenant_host)?;
    let before = proxy_metrics(proxy)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {proxy}\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
    );
    let barrier = Arc::new(Barrier::new(BURST));
    let ok = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..BURST)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let request = request.as_bytes();
                scope.spawn(move || -> Result<bool> {
                    let stream = connect(proxy);
                    // Every thread reaches the barrier, even one whose connect failed.
                    barrier.wait();
                    let stream = stream?;
                    let mut writer = stream.try_clone().context("cloning a socket")?;
                    writer.write_all(request).context("sending a request")?;
                    Ok(read_response(&mut BufReader::new(stream))?.status == 200)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| -> Result<usize> {
                let ok = h
                    .join()
                    .map_err(|_| anyhow::anyhow!("a burst thread panicked"))??;
                Ok(usize::from(ok))
            })
            .sum::<Result<usize>>()
    })?;
    let after = proxy_metrics(proxy)?;
    Ok(Burst {
        ok,
        upstream_calls_metrics: after.upstream_calls - before.upstream_calls,
        upstream_calls_tenant: list_calls_logged(tenant, tenant_host)?,
    })
}

/// Counters read from the proxy's `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
struct ProxyCounters {
    upstream_calls: u64,
    token_fetches: u64,
    verifications: u64,
    joined: u64,
}

fn proxy_metrics(proxy: SocketAddr) -> Result<ProxyCounters> {
    let response = http(proxy, &proxy.to_string(), "GET", "/metrics", &[], None)?;
    ensure!(
        response.status == 200,
        "/metrics answered {}",
        response.status
    );
    let text = String::from_utf8_lossy(&response.body);
    let read = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .with_context(|| format!("{name} missing from /metrics"))?
            .trim()
            .parse()
            .with_context(|| format!("{name} is not a count"))
    };
    Ok(ProxyCounters {
        upstream_calls: read("companion_proxy_upstream_calls_total")?,
        token_fetches: read("companion_proxy_m2m_token_fetches_total")?,
        verifications: read("companion_proxy_token_verifications_total")?,
        joined: read("companion_proxy_list_joined_total")?,
    })
}

fn clear_call_log(tenant: SocketAddr, host: &str) -> Result<()> {
    let response = http(tenant, host, "DELETE", "/__dev/mgmt-calls", &[], None)?;
    ensure!(
        response.status == 204,
        "clearing the call log answered {}",
        response.status
    );
    Ok(())
}

/// Logged list calls (`GET .../authentication-methods`) since the last clear.
fn list_calls_logged(tenant: SocketAddr, host: &str) -> Result<usize> {
    let response = http(tenant, host, "GET", "/__dev/mgmt-calls", &[], None)?;
    ensure!(
        response.status == 200,
        "the call log answered {}",
        response.status
    );
    let calls: Vec<serde_json::Value> =
        serde_json::from_slice(&response.body).context("the call log is a JSON array")?;
    Ok(calls
        .iter()
        .filter(|call| {
            call["method"] == "GET"
                && call["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/authentication-methods"))
        })
        .count())
}

/// User plus system CPU time, in clock ticks, of every process in process group `group` (nginx's master and
/// workers; the tenant and the proxy are one process each).
fn group_cpu_ticks(group: u32) -> Result<u64> {
    let mut ticks = 0;
    for entry in std::fs::read_dir("/proc").context("listing /proc")? {
        let Ok(entry) = entry else { continue };
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state ppid pgrp ... utime (14th field) stime (15th).
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(2).and_then(|p| p.parse::<u32>().ok()) != Some(group) {
            continue;
        }
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ticks += field(11) + field(12);
    }
    Ok(ticks)
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// `ticks` of CPU spread over `requests`, in microseconds per request.
#[allow(clippy::cast_precision_loss)] // Counts far below 2^52.
fn per_request_us(ticks: u64, requests: u64) -> Option<f64> {
    (requests > 0)
        .then(|| ticks as f64 * 1_000_000.0 / clock_ticks_per_second() as f64 / requests as f64)
}

/// A `/proc/<pid>/status` field in KiB.
fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{field} missing from {path}"))
}

/// `nproc`, the CPU model and the kernel.
fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|line| {
                line.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    // The machine is shared: the load before the bench says how quiet it was.
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "{} cores (nproc), {cpu}, Linux {kernel}, {date}, load average before the runs {load}",
        cores()
    )
}

/// A user seeded for the equal-work runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BenchUser {
    user_id: String,
    email: String,
}

/// The demo world plus `count` users, each a copy of alice (her four methods, with ids of its own): the TOML for
/// `companion-devtenant --world`, and the users.
fn bench_world(count: usize) -> Result<(String, Vec<BenchUser>)> {
    let mut world = companion_devtenant::world::World::demo();
    let alice = world
        .users
        .iter()
        .find(|u| u.user_id == demo::ALICE_USER_ID)
        .cloned()
        .context("the demo world has no alice")?;
    let mut users = Vec::with_capacity(count);
    for i in 0..count {
        let mut user = alice.clone();
        user.user_id = format!("auth0|be{i:022x}");
        user.email = format!("bench{i:04}@example.com");
        user.name = format!("Bench User {i}");
        for method in &mut user.methods {
            // `totp|dev_aliceTotp0000001` becomes `totp|dev_b0001Totp0000001`: same shape, unique.
            let (kind, opaque) = method
                .id
                .split_once("|dev_alice")
                .with_context(|| format!("unexpected demo method id {}", method.id))?;
            method.id = format!("{kind}|dev_b{i:04}{opaque}");
        }
        users.push(BenchUser {
            user_id: user.user_id.clone(),
            email: user.email.clone(),
        });
        world.users.push(user);
    }
    let text = toml::to_string(&world).context("writing the bench world as TOML")?;
    Ok((text, users))
}

/// `Bearer <access token>` of every user, signed in by the real login on [`LOGIN_THREADS`] threads.
fn bench_tokens(tenant: SocketAddr, host: &str, users: &[BenchUser]) -> Result<Vec<String>> {
    let chunk = users.len().div_ceil(LOGIN_THREADS).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = users
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> Result<Vec<String>> {
                    part.iter()
                        .map(|user| {
                            user_token(tenant, host, &user.email)
                                .map(|token| format!("Bearer {token}"))
                                .with_context(|| format!("signing {} in", user.email))
                        })
                        .collect()
                })
            })
            .collect();
        let mut auths = Vec::with_capacity(users.len());
        for handle in handles {
            auths.extend(
                handle
                    .join()
                    .map_err(|_| anyhow::anyhow!("a login thread panicked"))??,
            );
        }
        Ok(auths)
    })
}

/// A wrk Lua script cycling through `requests` (path and `Authorization`): wrk thread t sends requests t, t + T,
/// t + 2T, ... (T = [`WRK_THREADS`]), so two threads never ask for the same user and one user comes back only after
/// N / T requests of its thread; with `delay_ms`, each connection also pauses that long between requests.
fn spread_script(requests: &[(String, String)], delay_ms: Option<u32>) -> String {
    let mut script = String::from("local paths = {\n");
    for (path, _) in requests {
        let _ = writeln!(script, "  \"{path}\",");
    }
    script.push_str("}\nlocal auths = {\n");
    for (_, auth) in requests {
        let _ = writeln!(script, "  \"{auth}\",");
    }
    script.push_str("}\nlocal n = #paths\nlocal threads = 0\nlocal counter = 0\n");
    let _ = write!(
        script,
        "local stride = {WRK_THREADS}\n\
         function setup(thread)\n  thread:set(\"id\", threads)\n  threads = threads + 1\nend\n\
         function init(args)\n  counter = id or 0\nend\n\
         function request()\n  local i = (counter % n) + 1\n  counter = counter + stride\n  \
         return wrk.format(\"GET\", paths[i], {{ [\"Authorization\"] = auths[i] }})\nend\n"
    );
    if let Some(delay) = delay_ms {
        let _ = write!(script, "function delay()\n  return {delay}\nend\n");
    }
    script
}

/// A client_credentials token for the Management API.
fn m2m_token(tenant: SocketAddr, host: &str) -> Result<String> {
    let body = form_encode(&[
        ("grant_type", "client_credentials"),
        ("client_id", demo::PROXY_CLIENT_ID),
        ("client_secret", demo::PROXY_CLIENT_SECRET),
        ("audience", &format!("http://{host}/api/v2/")),
    ]);
    access_token(tenant, host, &body)
}

/// The access token of the user signing in with `email` for the proxy's API, by the real login: `/authorize` with
/// PKCE, the password form, the code exchange. No MFA is asked (the demo world has no MFA policy and listing needs
/// no step-up).
fn user_token(tenant: SocketAddr, host: &str, email: &str) -> Result<String> {
    let verifier = random_verifier();
    let challenge = companion_devtenant::oidc::token::s256(&verifier);
    let query = form_encode(&[
        ("response_type", "code"),
        ("client_id", demo::DESKTOP_CLIENT_ID),
        ("redirect_uri", demo::FIRST_CALLBACK),
        ("scope", "openid profile email offline_access"),
        ("audience", demo::API_AUDIENCE),
        ("state", "bench"),
        ("nonce", "bench"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let authorize = http(
        tenant,
        host,
        "GET",
        &format!("/authorize?{query}"),
        &[],
        None,
    )?;
    let login = redirect(&authorize, "/authorize")?;
    let tx = query_param(&login, "state").context("no transaction in the login redirect")?;
    let form = form_encode(&[
        ("state", &tx),
        ("username", email),
        ("password", demo::PASSWORD),
    ]);
    let submitted = http(
        tenant,
        host,
        "POST",
        "/u/login",
        &[],
        Some(("application/x-www-form-urlencoded", form.as_bytes())),
    )?;
    let callback = redirect(&submitted, "/u/login")?;
    ensure!(
        callback.starts_with(demo::FIRST_CALLBACK),
        "the login did not end at the callback (MFA asked?): {callback}"
    );
    let code = query_param(&callback, "code").context("no code in the callback")?;
    let body = form_encode(&[
        ("grant_type", "authorization_code"),
        ("client_id", demo::DESKTOP_CLIENT_ID),
        ("code", &code),
        ("code_verifier", &verifier),
        ("redirect_uri", demo::FIRST_CALLBACK),
    ]);
    access_token(tenant, host, &body)
}

/// A 43+ character PKCE verifier from the standard library's per-process random hash keys.
fn random_verifier() -> String {
    let mut verifier = String::from("bench-");
    for _ in 0..4 {
        let _ = write!(
            verifier,
            "{:016x}",
            RandomState::new().build_hasher().finish()
        );
    }
    verifier
}

/// The `Location` of a 302 from `what`.
fn redirect(response: &HttpResponse, what: &str) -> Result<String> {
    ensure!(
        response.status == 302 || response.status == 303,
        "{what} answered {} instead of a redirect: {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    response
        .header("location")
        .map(str::to_owned)
        .with_context(|| format!("{what} redirected without a Location"))
}

/// POST `/oauth/token` and return `access_token`.
fn access_token(tenant: SocketAddr, host: &str, body: &str) -> Result<String> {
    let response = http(
        tenant,
        host,
        "POST",
        "/oauth/token",
        &[],
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
    )?;
    ensure!(
        response.status == 200,
        "/oauth/token answered {}: {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&response.body).context("/oauth/token answered JSON")?;
    json["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access_token in the token response")
}

/// A response of the small HTTP/1.1 client.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    /// The status code.
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)
        .with_context(|| format!("connecting to {addr}"))?;
    stream
        .set_read_timeout(Some(HTTP_TIMEOUT))
        .context("setting a timeout")?;
    stream
        .set_write_timeout(Some(HTTP_TIMEOUT))
        .context("setting a timeout")?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// One request on a fresh loopback connection (`Connection: close`); refuses any other address.
pub(crate) fn http(
    addr: SocketAddr,
    host: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Result<HttpResponse> {
    ensure!(addr.ip().is_loopback(), "the bench talks to loopback only");
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    if let Some((content_type, body)) = body {
        let _ = write!(
            request,
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    request.push_str("\r\n");
    let mut stream = connect(addr)?;
    stream
        .write_all(request.as_bytes())
        .context("sending a request")?;
    if let Some((_, body)) = body {
        stream.write_all(body).context("sending a request body")?;
    }
    read_response(&mut BufReader::new(stream))
}

/// Reads one response: `Content-Length`, chunked, or until the connection closes.
fn read_response(reader: &mut BufReader<TcpStream>) -> Result<HttpResponse> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .context("reading the status line")?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).context("reading a header")?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(length) = find("content-length") {
        let length: usize = length.parse().context("bad Content-Length")?;
        body.resize(length, 0);
        reader.read_exact(&mut body).context("reading the body")?;
    } else if find("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            reader
                .read_line(&mut line)
                .context("reading a chunk size")?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .with_context(|| format!("bad chunk size {line:?}"))?;
            let start = body.len();
            body.resize(start + size, 0);
            reader
                .read_exact(&mut body[start..])
                .context("reading a chunk")?;
            line.clear();
            reader.read_line(&mut line).context("reading a chunk end")?;
            if size == 0 {
                break;
            }
        }
    } else if status != 204 && status != 304 {
        reader.read_to_end(&mut body).context("reading the body")?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// `a=b&c=d`, percent-encoded (valid as a query and as a form body).
fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The decoded value of `name` in the query of `url`.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = if bytes[i] == b'%' {
            value
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        } else {
            None
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, other) => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Milliseconds with three decimals.
fn ms(value: f64) -> String {
    format!("{value:.3}")
}

/// `part / whole` as a ratio with two decimals, or `-` when `whole` is zero.
fn ratio(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.2}", part / whole)
    } else {
        "-".to_owned()
    }
}

/// `count` scaled to a rate per 10,000 `requests`.
fn per_10k(count: f64, requests: f64) -> String {
    if requests > 0.0 {
        format!("{:.1}", count * 10_000.0 / requests)
    } else {
        "-".to_owned()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let find = |runs: &[(Target, WrkResult)], target: Target| {
            runs.iter()
                .find(|(t, _)| *t == target)
                .map(|(_, r)| r.clone())
                .unwrap_or_default()
        };
        let direct = find(&self.full, Target::Direct);
        let nginx = find(&self.full, Target::Nginx);
        writeln!(f, "\nMachine: {}\n", self.machine)?;
        writeln!(
            f,
            "Full load: wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{RUN_SECONDS}s --latency (after a {WARM_UP_SECONDS}s warm-up), \
             requests spread over {} users in turn (the same users in the same order for every target)\n",
            self.users
        )?;
        writeln!(
            f,
            "| target | requests | req/s | × (a) | × (b) | p50 ms | p99 ms | upstream calls per 10k | upstream CPU µs/req | hop CPU µs/req | non-2xx | socket errors |"
        )?;
        writeln!(
            f,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        )?;
        for (target, r) in &self.full {
            writeln!(
                f,
                "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                target.label(),
                r.requests,
                r.rps,
                ratio(r.rps, direct.rps),
                ratio(r.rps, nginx.rps),
                ms(r.p50_ms),
                ms(r.p99_ms),
                upstream_per_10k(r),
                r.upstream_cpu_us
                    .map_or_else(|| "-".to_owned(), |us| format!("{us:.0}")),
                r.hop_cpu_us
                    .map_or_else(|| "-".to_owned(), |us| format!("{us:.0}")),
                r.non_2xx,
                r.socket_errors
            )?;
        }
        writeln!(
            f,
            "\nHalf load: about half of the slowest target's maximum, offered to every target: wrk -t{WRK_THREADS} -c{} \
             -d{RUN_SECONDS}s with a {PACED_DELAY_MS} ms pause per connection between requests (wrk's Lua `delay()`)\n",
            self.paced_connections
        )?;
        latency_table(f, &self.paced)?;
        writeln!(
            f,
            "\nOne connection: wrk -t1 -c1 -d{SINGLE_SECONDS}s (no queueing; through the proxy no read can join another)\n"
        )?;
        latency_table(f, &self.single)?;
        let c = &self.counted;
        #[allow(clippy::cast_precision_loss)] // Counts far below 2^52.
        let (requests, metrics_calls, tenant_calls, fetches) = (
            c.requests as f64,
            c.upstream_calls_metrics as f64,
            c.tenant_calls_f64(),
            c.token_fetches as f64,
        );
        writeln!(
            f,
            "\nCounted pass through (c): exactly {} requests on {CONNECTIONS} keep-alive connections, spread over the {} \
             users ({} not 200)\n",
            c.requests, self.users, c.failures
        )?;
        writeln!(f, "| measure | count | per 10,000 requests |")?;
        writeln!(f, "|---|---:|---:|")?;
        writeln!(
            f,
            "| upstream list calls (proxy /metrics) | {} | {} |",
            c.upstream_calls_metrics,
            per_10k(metrics_calls, requests)
        )?;
        writeln!(
            f,
            "| upstream list calls (tenant call log) | {} | {} |",
            c.upstream_calls_tenant,
            per_10k(tenant_calls, requests)
        )?;
        writeln!(
            f,
            "| M2M token fetches (proxy /metrics) | {} | {} |",
            c.token_fetches,
            per_10k(fetches, requests)
        )?;
        writeln!(
            f,
            "| list reads joined to an in-flight call | {} | |",
            c.joined
        )?;
        writeln!(
            f,
            "| RSA verifications of the user token | {} | |",
            c.rsa_verifications
        )?;
        writeln!(
            f,
            "\nM2M token fetches since the proxy started: {} (the start-up fetch; the token is reused until shortly before it expires).",
            c.token_fetches_total
        )?;
        writeln!(
            f,
            "Burst: {BURST} identical list requests (alice's token) released together on {BURST} connections: {} answered 200, \
             {} upstream calls by /metrics, {} by the tenant's call log.",
            self.burst.ok, self.burst.upstream_calls_metrics, self.burst.upstream_calls_tenant
        )?;
        writeln!(
            f,
            "Memory of companion-proxy: VmRSS {:.1} MB idle after the runs above; peak VmRSS sampled during \
             wrk -c{RSS_CONNECTIONS} -d{RSS_SECONDS}s: {:.1} MB with alice's token only ({:.0} req/s, {} non-2xx, {} socket \
             errors), {:.1} MB spread over the {} users ({:.0} req/s, {} non-2xx, {} socket errors); VmHWM {:.1} MB over \
             the whole bench.",
            kib_to_mb(self.rss_idle_kib),
            kib_to_mb(self.rss_during_kib),
            self.rss_run.rps,
            self.rss_run.non_2xx,
            self.rss_run.socket_errors,
            kib_to_mb(self.rss_spread_kib),
            self.users,
            self.rss_spread_run.rps,
            self.rss_spread_run.non_2xx,
            self.rss_spread_run.socket_errors,
            kib_to_mb(self.hwm_kib)
        )?;
        writeln!(
            f,
            "\n(a) and (b) send GET /api/v2/users/<user>/authentication-methods?include_totals=true&per_page={PER_PAGE}&page=0 \
             with an M2M bearer; (c) sends GET /v1/me/authenticators with that user's access token, so (c) also verifies \
             that token (RS256, then the verified-token cache), adds its own M2M bearer, and reshapes the list \
             (provider names, removability), while making the same upstream call. The upstream (the dev tenant) \
             checks the RS256 M2M bearer on every request, so it is itself a CPU-heavy server sharing the cores with \
             wrk and the hop under test. Every load run spreads its requests over the seeded users (wrk thread t \
             sends users t, t + 2, t + 4, ... in turn; on (a) and (b) that user's path, on (c) that user's token), \
             so a user comes back only after 500 requests of its thread, the proxy cannot join reads of one user, \
             and it does the same upstream work as (a) and (b): the `upstream calls per 10k` column shows it. Only the burst uses one user's token, to measure the single flight."
        )
    }
}

impl Counted {
    #[allow(clippy::cast_precision_loss)] // Counts far below 2^52.
    fn tenant_calls_f64(&self) -> f64 {
        self.upstream_calls_tenant as f64
    }
}

/// Upstream calls per 10,000 requests of a run: counted through the proxy, one per request otherwise.
fn upstream_per_10k(r: &WrkResult) -> String {
    match r.upstream_calls {
        #[allow(clippy::cast_precision_loss)] // Counts far below 2^52.
        Some(calls) => per_10k(calls as f64, r.requests as f64),
        None => "10000 (one each)".to_owned(),
    }
}

/// A latency table with the added latency against (a) and (b).
fn latency_table(
    f: &mut std::fmt::Formatter<'_>,
    runs: &[(Target, WrkResult)],
) -> std::fmt::Result {
    let find = |target: Target| {
        runs.iter()
            .find(|(t, _)| *t == target)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    let (direct, nginx) = (find(Target::Direct), find(Target::Nginx));
    writeln!(
        f,
        "| target | req/s | p50 ms | p99 ms | p50 added vs (a) | p99 added vs (a) | p50 added vs (b) | p99 added vs (b) | upstream calls per 10k | non-2xx |"
    )?;
    writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for (target, r) in runs {
        writeln!(
            f,
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
            target.label(),
            r.rps,
            ms(r.p50_ms),
            ms(r.p99_ms),
            ms(r.p50_ms - direct.p50_ms),
            ms(r.p99_ms - direct.p99_ms),
            ms(r.p50_ms - nginx.p50_ms),
            ms(r.p99_ms - nginx.p99_ms),
            upstream_per_10k(r),
            r.non_2xx
        )?;
    }
    Ok(())
}

/// KiB → MB (10^6 bytes).
#[allow(clippy::cast_precision_loss)] // Memory sizes far below 2^52.
fn kib_to_mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_OUTPUT: &str = "Running 10s test @ http://127.0.0.1:40000/v1/me/authenticators
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.02ms  30.05ms   80.00%
    Req/Sec    12.01k   800.00    13.50k    70.00%
  Latency Distribution
     50%  635.00us
     75%    1.05ms
     90%    2.00ms
     99%    1.20s
  239012 requests in 10.00s, 98.76MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  23901.20
Transfer/sec:      9.88MB
";

    #[test]
    fn wrk_reports_are_read_with_units() {
        let result = parse_wrk(WRK_OUTPUT).unwrap();
        assert_eq!(result.requests, 239_012);
        assert!((result.rps - 23_901.2).abs() < 1e-6, "{result:?}");
        assert!(
            (result.p50_ms - 0.635).abs() < 1e-9,
            "microseconds: {result:?}"
        );
        assert!((result.p99_ms - 1200.0).abs() < 1e-9, "seconds: {result:?}");
        assert_eq!(result.non_2xx, 7);
        assert_eq!(result.socket_errors, 5);
        assert!(
            parse_wrk("Running 10s test\n").is_err(),
            "a report without numbers is an error, not zeros"
        );
        assert!(parse_duration_ms("12parsecs").is_err(), "unknown unit");
    }

    #[test]
    fn the_bench_world_adds_users_with_their_own_method_ids() {
        let (text, users) = bench_world(3).unwrap();
        let world: companion_devtenant::world::World = toml::from_str(&text).unwrap();
        assert_eq!(users.len(), 3);
        assert_eq!(
            world.users.len(),
            2 + 3,
            "the demo users and the bench users"
        );
        let mut ids: Vec<&str> = world
            .users
            .iter()
            .flat_map(|u| u.methods.iter().map(|m| m.id.as_str()))
            .collect();
        let total = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), total, "method ids are unique");
        assert!(ids.contains(&"totp|dev_b0002Totp0000001"), "{ids:?}");
        let user = world
            .users
            .iter()
            .find(|u| u.user_id == users[1].user_id)
            .unwrap();
        assert_eq!(user.methods.len(), 4, "a copy of alice's methods");
        let opaque = users[1].user_id.strip_prefix("auth0|").unwrap();
        assert!(
            opaque.len() == 24 && opaque.bytes().all(|b| b.is_ascii_hexdigit()),
            "shaped like Auth0's database user ids: {opaque}"
        );
    }

    #[test]
    fn spread_scripts_cycle_through_every_user() {
        let requests = vec![
            ("/a".to_owned(), "Bearer one".to_owned()),
            ("/b".to_owned(), "Bearer two".to_owned()),
        ];
        let script = spread_script(&requests, None);
        for needle in [
            "\"/a\"",
            "\"/b\"",
            "\"Bearer one\"",
            "\"Bearer two\"",
            "function request()",
        ] {
            assert!(script.contains(needle), "{needle} missing from:\n{script}");
        }
        assert!(!script.contains("function delay()"));
        assert!(spread_script(&requests, Some(10)).contains("return 10"));
    }

    #[test]
    fn paced_runs_offer_the_asked_rate() {
        assert_eq!(paced_connections(10_000.0), 100, "10 ms pause: rate / 100");
        assert_eq!(paced_connections(0.0), 2, "at least two connections");
        assert_eq!(paced_connections(1e9), RSS_CONNECTIONS, "bounded");
    }

    #[test]
    fn query_values_round_trip() {
        let encoded = form_encode(&[("user", "auth0|abc"), ("scope", "openid email")]);
        assert_eq!(encoded, "user=auth0%7Cabc&scope=openid%20email");
        let url = format!("http://127.0.0.1:53180/callback?{encoded}&code=a%2Bb+c");
        assert_eq!(query_param(&url, "user").as_deref(), Some("auth0|abc"));
        assert_eq!(query_param(&url, "code").as_deref(), Some("a+b c"));
        assert_eq!(query_param(&url, "missing"), None);
        assert_eq!(percent_decode("100%"), "100%", "a stray % stays");
    }

    #[test]
    fn nginx_is_a_plain_keepalive_reverse_proxy_on_loopback() {
        let conf = nginx_conf(
            Path::new("/tmp/bench"),
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            "localhost:2",
            2,
        );
        for line in [
            "worker_processes 2;",
            "listen 127.0.0.1:1;",
            "server 127.0.0.1:2;",
            "keepalive 128;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "access_log off;",
            "pid /tmp/bench/nginx.pid;",
        ] {
            assert!(conf.contains(line), "{line} missing from:\n{conf}");
        }
    }
}
