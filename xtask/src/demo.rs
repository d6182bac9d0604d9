//! `cargo xtask demo`: builds and runs the local dev tenant with the demo world, and prints how to use it.
//!
//! The tenant keeps its state in `target/demo/devtenant-state.json`, so what you enroll survives a restart.
//! Its development controls stay off. It runs until Ctrl-C, which also stops the tenant.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use companion_devtenant::world::demo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::signal::unix::{SignalKind, signal};

use crate::ci::{cargo, format_duration, project_root, run_checked};

/// The default port of the demo tenant.
pub(crate) const DEFAULT_PORT: u16 = 8780;

/// How long the tenant may take to answer discovery after it starts.
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// Builds the dev tenant, starts it on `port`, prints the demo values, and waits for Ctrl-C.
pub(crate) fn run(port: u16) -> Result<()> {
    ensure_port_free(port)?;
    let started = Instant::now();
    run_checked(
        &mut cargo(&[
            "build",
            "--quiet",
            "-p",
            "companion-devtenant",
            "--bin",
            "companion-devtenant",
        ]),
        "cargo build -p companion-devtenant",
    )?;
    println!(
        "xtask: built the dev tenant in {}",
        format_duration(started.elapsed())
    );
    let binary = target_dir()?.join("debug").join("companion-devtenant");
    let state_file = project_root()
        .join("target")
        .join("demo")
        .join("devtenant-state.json");
    if let Some(dir) = state_file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(supervise(binary, state_file, port))
}

/// Fails with a clear message when something already listens on the port.
fn ensure_port_free(port: u16) -> Result<()> {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "port {port} on 127.0.0.1 is busy: another program (perhaps a running demo) listens there; \
             stop it or pick another port with `cargo xtask demo --port <port>`"
        ),
        Err(error) => Err(error).with_context(|| format!("checking that port {port} is free")),
    }
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
fn target_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return Ok(if dir.is_absolute() {
            dir
        } else {
            project_root().join(dir)
        });
    }
    Ok(project_root().join("target"))
}

/// Starts the tenant, waits until it answers, prints the banner, and stops it on Ctrl-C or SIGTERM.
async fn supervise(binary: PathBuf, state_file: PathBuf, port: u16) -> Result<()> {
    // Install the handlers before the child exists, so an early Ctrl-C still stops it.
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut child = tokio::process::Command::new(&binary)
        .arg("--listen")
        .arg(SocketAddr::from((Ipv4Addr::LOCALHOST, port)).to_string())
        .arg("--state-file")
        .arg(&state_file)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;

    let base_url = format!("http://localhost:{port}");
    let discovery = tokio::select! {
        discovery = wait_until_ready(port, &mut child) => discovery?,
        _ = interrupt.recv() => return stop(child).await,
        _ = terminate.recv() => return stop(child).await,
    };
    print_banner(&base_url, &discovery, &state_file);

    tokio::select! {
        status = child.wait() => {
            let status = status.context("waiting for the dev tenant")?;
            bail!("the dev tenant stopped on its own ({status}); see its messages above")
        }
        _ = interrupt.recv() => stop(child).await,
        _ = terminate.recv() => stop(child).await,
    }
}

/// Stops the tenant: it received the terminal's Ctrl-C too, so give it a moment to finish, then kill it.
async fn stop(mut child: tokio::process::Child) -> Result<()> {
    println!("\nxtask: stopping the dev tenant");
    if tokio::time::timeout(Duration::from_secs(3), child.wait())
        .await
        .is_err()
    {
        child.kill().await.context("killing the dev tenant")?;
    }
    Ok(())
}

/// What discovery told us.
#[derive(Debug)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// Polls discovery on 127.0.0.1 until it answers 200, the child exits, or the deadline passes.
async fn wait_until_ready(port: u16, child: &mut tokio::process::Child) -> Result<Discovery> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().context("checking on the dev tenant")? {
            bail!(
                "the dev tenant exited before it was ready ({status}); see its messages above \
                 (if port {port} is busy, use `cargo xtask demo --port <port>`)"
            );
        }
        if let Ok(Some(body)) = fetch_discovery(port).await {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let base = format!("http://localhost:{port}");
            return Ok(Discovery {
                issuer: json["issuer"]
                    .as_str()
                    .map_or_else(|| format!("{base}/"), str::to_owned),
                jwks_uri: json["jwks_uri"]
                    .as_str()
                    .map_or_else(|| format!("{base}/.well-known/jwks.json"), str::to_owned),
            });
        }
        if started.elapsed() > READY_DEADLINE {
            bail!(
                "the dev tenant did not answer http://localhost:{port}/.well-known/openid-configuration within {}",
                format_duration(READY_DEADLINE)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One plain HTTP/1.1 GET of discovery; `Ok(Some(body))` on a 200.
async fn fetch_discovery(port: u16) -> std::io::Result<Option<String>> {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        let request = format!(
            "GET /.well-known/openid-configuration HTTP/1.1\r\nHost: localhost:{port}\r\n\
             Accept: application/json\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(parse_ok_body(&String::from_utf8_lossy(&response)))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .unwrap_or(Ok(None))
}

/// The body of a `200` response, or `None` for any other status.
fn parse_ok_body(response: &str) -> Option<String> {
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status_line = head.lines().next()?;
    let mut parts = status_line.split_whitespace();
    let version = parts.next()?;
    let status = parts.next()?;
    (version.starts_with("HTTP/1.") && status == "200").then(|| body.to_owned())
}

/// Prints where the tenant is and the demo world's values.
fn print_banner(base_url: &str, discovery: &Discovery, state_file: &std::path::Path) {
    let callbacks_first = demo::FIRST_CALLBACK;
    println!(
        "\n\
Passkey Companion demo: a local Auth0-compatible dev tenant is running.

  base URL       {base_url}
  issuer         {issuer}
  discovery      {base_url}/.well-known/openid-configuration
  JWKS           {jwks}
  login page     {base_url}/authorize (reached through an OAuth client)
  Management API {base_url}/api/v2/
  state file     {state} (delete it to start over)

Local demo values (published for this offline tenant only; never real credentials):

  user                 password            second factors
  {alice:<20} {password:<19} TOTP secret {totp} (base32), recovery code {recovery},
  {blank:<20} {blank:<19} a security key and a platform passkey
  {bob:<20} {password:<19} none (password only)

  desktop client id    {desktop} (public, PKCE), callbacks {callbacks_first} .. :53189/callback
  proxy M2M client     {proxy} / secret {proxy_secret}
  proxy API audience   {audience}

Try: curl -s {base_url}/oauth/token -d grant_type=client_credentials -d client_id={proxy} \\
       -d client_secret={proxy_secret} -d audience={base_url}/api/v2/

Press Ctrl-C to stop.",
        issuer = discovery.issuer,
        jwks = discovery.jwks_uri,
        state = state_file.display(),
        alice = demo::ALICE_EMAIL,
        bob = demo::BOB_EMAIL,
        password = demo::PASSWORD,
        totp = demo::ALICE_TOTP_SECRET,
        recovery = demo::ALICE_RECOVERY_CODE,
        blank = "",
        desktop = demo::DESKTOP_CLIENT_ID,
        proxy = demo::PROXY_CLIENT_ID,
        proxy_secret = demo::PROXY_CLIENT_SECRET,
        audience = demo::API_AUDIENCE,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_200_response_yields_its_body() {
        let response =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"issuer\":\"x\"}";
        assert_eq!(
            parse_ok_body(response).as_deref(),
            Some("{\"issuer\":\"x\"}"),
            "the body after the head"
        );
    }

    #[test]
    fn other_statuses_and_garbage_are_not_ready() {
        assert_eq!(
            parse_ok_body("HTTP/1.1 503 Service Unavailable\r\n\r\nbusy"),
            None,
            "503 is not ready"
        );
        assert_eq!(
            parse_ok_body("HTTP/1.1 200 OK\r\ncontent-length: 5"),
            None,
            "an unfinished head"
        );
        assert_eq!(
            parse_ok_body("SSH-2.0-OpenSSH\r\n\r\n"),
            None,
            "not HTTP at all"
        );
    }

    #[test]
    fn a_busy_port_is_reported_clearly() {
        let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port");
        let port = holder.local_addr().expect("bound address").port();
        let error = ensure_port_free(port).expect_err("the port is held by this test");
        let message = format!("{error:#}");
        assert!(
            message.contains(&format!("port {port}"))
                && message.contains("busy")
                && message.contains("--port"),
            "the message names the port and the way out: {message}"
        );
    }

    #[tokio::test]
    async fn readiness_polls_a_real_socket_until_discovery_answers() {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("bound address").port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = vec![0u8; 1024];
            let read = socket.read(&mut request).await.expect("read request");
            let request = String::from_utf8_lossy(&request[..read]).into_owned();
            let body = r#"{"issuer":"http://localhost:1/","jwks_uri":"http://localhost:1/jwks"}"#;
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
        let body = fetch_discovery(port)
            .await
            .expect("no I/O error")
            .expect("a 200 answer");
        let request = server.await.expect("server task");
        assert!(
            request.starts_with("GET /.well-known/openid-configuration HTTP/1.1\r\n"),
            "asks for discovery: {request}"
        );
        assert!(
            body.contains("jwks_uri"),
            "returns the discovery body: {body}"
        );
    }
}
