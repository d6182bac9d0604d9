//! `cargo xtask test` (alias `ci`): installs what is missing, then runs exactly what CI runs; a failing step stops the rest.
//!
//! Steps: format check, clippy over every target, then every test of the workspace inside a private D-Bus
//! session and a virtual X display with an unlocked keyring (`--no-fail-fast`: every failing test is reported in
//! one run), then the `.deb` of the debug build the end-to-end suite made, packaged and checked. The test step
//! re-executes this binary as `xtask test --inner` under `dbus-run-session -- xvfb-run`, so the session, the
//! display and the keyring daemon all end with it.
//!
//! Clippy and the tests use the default `dev` profile and the same flags, so build scripts and proc macros
//! compiled for one are reused by the other; nothing here builds in release mode.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::setup;

/// The virtual screen the tests get: large enough for the app window (900x640) with room to spare. `-noreset`:
/// by default Xvfb resets whenever its last client disconnects, and a window starting during a reset fails with
/// "cannot open display" (seen with short-lived X clients between app launches).
const XVFB_SCREEN: &str = "-noreset -screen 0 1280x800x24";

/// How long the test step (build and run every test) may take before it counts as hung: CI allows 90 minutes
/// in all, and a cold run of the step takes about 8.
const TEST_STEP_DEADLINE: Duration = Duration::from_secs(60 * 60);

/// The password of the throwaway login keyring created for the test session.
const TEST_KEYRING_PASSWORD: &str = "test";

/// Runs the whole pipeline (outer) or only the test step inside the session (`inner`).
pub(crate) fn test(inner: bool) -> Result<()> {
    if inner {
        return inner_test_step();
    }
    let total = Instant::now();
    let mut timings = Vec::new();
    let result = pipeline(&mut timings);
    let verdict = if result.is_ok() {
        "all checks passed"
    } else {
        "stopped at the first failure"
    };
    println!(
        "xtask: {verdict} after {}",
        format_duration(total.elapsed())
    );
    for (name, took) in &timings {
        println!("xtask:   {name:<7} {}", format_duration(*took));
    }
    result
}

/// Setup, fmt, clippy, then the tests in their session; stops at the first failure.
fn pipeline(timings: &mut Vec<(&'static str, Duration)>) -> Result<()> {
    let started = Instant::now();
    setup::run().context("installing prerequisites")?;
    timings.push(("setup", started.elapsed()));

    timed_step(
        timings,
        "fmt",
        &mut cargo(&["fmt", "--all", "--check"]),
        None,
    )?;
    timed_step(
        timings,
        "clippy",
        &mut cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
        None,
    )?;

    for tool in ["dbus-run-session", "xvfb-run"] {
        if !setup::command_exists(tool) {
            bail!("`{tool}` is not on PATH; run `cargo xtask setup` as root (packages dbus, xvfb)");
        }
    }
    let me = std::env::current_exe()
        .context("locating the xtask binary to re-run it in a test session")?;
    let mut session = Command::new("dbus-run-session");
    session
        .args(["--", "xvfb-run", "-a", "-s", XVFB_SCREEN])
        .arg(me)
        .args(["test", "--inner"])
        .current_dir(project_root());
    timed_step(timings, "test", &mut session, Some(TEST_STEP_DEADLINE))
}

/// Inside `dbus-run-session -- xvfb-run`: unlocks a keyring, then runs every test of the workspace.
fn inner_test_step() -> Result<()> {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none()
        || std::env::var_os("DISPLAY").is_none()
    {
        bail!(
            "`xtask test --inner` must run under dbus-run-session and xvfb-run; use `cargo xtask test`"
        );
    }
    let keyring_env = unlock_keyring().context("unlocking gnome-keyring for the test session")?;
    let mut test = cargo(&["test", "--workspace", "--locked", "--no-fail-fast"]);
    test.envs(keyring_env);
    if let Some(bin) = setup::cargo_bin_dir() {
        // `tauri-driver` may have just been installed there, and the end-to-end tests look for it on PATH.
        test.env("PATH", path_with(&bin));
    }
    let started = Instant::now();
    let tests = run_checked(&mut test, "cargo test --workspace --locked --no-fail-fast");
    let tests_took = started.elapsed();
    // The package check runs even when a test failed: every failure is reported in one run.
    let started = Instant::now();
    let deb = crate::bundle::check_debug_deb().context("the .deb of the debug build");
    let deb_took = started.elapsed();
    match (&tests, &deb) {
        (Ok(()), Ok(())) => {
            println!(
                "xtask: tests passed in {}, .deb checked in {}",
                format_duration(tests_took),
                format_duration(deb_took)
            );
        }
        _ => {
            for (what, result) in [("tests", &tests), (".deb check", &deb)] {
                if let Err(error) = result {
                    eprintln!("xtask: {what} failed: {error:#}");
                }
            }
        }
    }
    tests.and(deb)
}

/// Starts and unlocks gnome-keyring's Secret Service in this D-Bus session and returns the environment it
/// reports (`GNOME_KEYRING_CONTROL`, ...).
///
/// The daemon forks and outlives the command, so its output goes to files rather than pipes: reading a pipe
/// to its end would wait for the daemon to exit. Its keyrings live under `target/`, never in the user's home.
fn unlock_keyring() -> Result<Vec<(String, String)>> {
    let scratch = project_root().join("target").join("xtask").join("keyring");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let stdout_path = scratch.join("daemon.stdout");
    let stderr_path = scratch.join("daemon.stderr");
    let stdout =
        std::fs::File::create(&stdout_path).context("creating the daemon's stdout file")?;
    let stderr =
        std::fs::File::create(&stderr_path).context("creating the daemon's stderr file")?;
    let mut child = Command::new("gnome-keyring-daemon")
        .args(["--unlock", "--components=secrets"])
        .env("XDG_DATA_HOME", &scratch)
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .context("starting gnome-keyring-daemon (package gnome-keyring)")?;
    {
        use std::io::Write as _;
        let mut stdin = child
            .stdin
            .take()
            .context("gnome-keyring-daemon has no stdin")?;
        stdin
            .write_all(TEST_KEYRING_PASSWORD.as_bytes())
            .context("sending the keyring password")?;
        // Dropping stdin closes it, which ends the password.
    }
    let status = wait_with_deadline(&mut child, Duration::from_secs(30))
        .context("waiting for gnome-keyring-daemon")?;
    if !status.success() {
        let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        bail!(
            "gnome-keyring-daemon --unlock failed ({status}): {}",
            log.trim()
        );
    }
    let output =
        std::fs::read_to_string(&stdout_path).context("reading gnome-keyring-daemon's output")?;
    Ok(parse_env_lines(&output))
}

/// Waits for a child to exit, killing it when the deadline passes.
pub(crate) fn wait_with_deadline(
    child: &mut std::process::Child,
    deadline: Duration,
) -> Result<std::process::ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if started.elapsed() > deadline {
            // Best effort: we report the timeout either way.
            let _ = child.kill();
            let _ = child.wait();
            bail!("no answer within {}", format_duration(deadline));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Parses `NAME=value` lines, as `gnome-keyring-daemon` prints them.
fn parse_env_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.trim().split_once('='))
        .filter(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// `PATH` with `dir` appended if it is not there yet.
fn path_with(dir: &Path) -> std::ffi::OsString {
    let current = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&current).collect();
    if !dirs.iter().any(|existing| existing == dir) {
        dirs.push(dir.to_path_buf());
    }
    std::env::join_paths(dirs).unwrap_or(current)
}

/// Runs one step, records its duration, and fails fast with a clear message.
///
/// With a deadline, the step runs in its own process group, which is stopped as a whole when the deadline
/// passes or when this process is interrupted (Ctrl-C) or terminated.
fn timed_step(
    timings: &mut Vec<(&'static str, Duration)>,
    name: &'static str,
    command: &mut Command,
    deadline: Option<Duration>,
) -> Result<()> {
    println!("xtask: {name}: {}", describe(command));
    let started = Instant::now();
    let result = match deadline {
        Some(deadline) => run_as_group(command, name, deadline),
        None => run_checked(command, name),
    };
    let took = started.elapsed();
    timings.push((name, took));
    match result {
        Ok(()) => {
            println!("xtask: {name} passed in {}", format_duration(took));
            Ok(())
        }
        Err(error) => Err(error.context(format!(
            "step `{name}` failed after {}",
            format_duration(took)
        ))),
    }
}

/// Runs a command as the leader of a new process group and waits for it, stopping the whole group (the
/// D-Bus session, Xvfb, cargo and every test process that stayed in the group) when the deadline passes or
/// when this process receives SIGINT or SIGTERM.
fn run_as_group(command: &mut Command, what: &str, deadline: Duration) -> Result<()> {
    use std::os::unix::process::CommandExt as _;
    use tokio::signal::unix::{SignalKind, signal};

    command.process_group(0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // Handlers first: from now on Ctrl-C reaches us, and we pass it on to the group.
        let mut interrupt =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut child =
            tokio::process::Command::from(std::mem::replace(command, Command::new(what)))
                .spawn()
                .with_context(|| format!("could not start `{what}`"))?;
        let group = child
            .id()
            .context("the step exited before it could be watched")?;
        let stopped_because = tokio::select! {
            status = child.wait() => {
                let status = status.with_context(|| format!("waiting for `{what}`"))?;
                if !status.success() {
                    bail!("`{what}` exited with {status}");
                }
                return Ok(());
            }
            _ = interrupt.recv() => "interrupted".to_owned(),
            _ = terminate.recv() => "terminated".to_owned(),
            () = tokio::time::sleep(deadline) => format!(
                "did not finish within {}; a test, or a process one started, seems to hang",
                format_duration(deadline)
            ),
        };
        stop_group(group, &mut child).await;
        bail!("`{what}` {stopped_because}; stopped its process group")
    })
}

/// Asks a process group to stop (SIGTERM), then kills what is left after a few seconds.
async fn stop_group(group: u32, child: &mut tokio::process::Child) {
    let signal_group = |signal: &str| {
        // Best effort: `kill` reports nothing useful when the group is already gone.
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{group}")])
            .stderr(Stdio::null())
            .status();
    };
    signal_group("-TERM");
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        signal_group("-KILL");
        let _ = child.wait().await;
    }
}

/// A `cargo` command in the project root, using the cargo that started us.
pub(crate) fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.args(args).current_dir(project_root());
    command
}

/// Runs a command with inherited output and turns a failed exit into an error naming it.
pub(crate) fn run_checked(command: &mut Command, what: &str) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("could not start `{}`", describe(command)))?;
    if !status.success() {
        bail!("`{what}` exited with {status}");
    }
    Ok(())
}

/// The command line, for messages.
fn describe(command: &Command) -> String {
    let program = Path::new(command.get_program())
        .file_name()
        .unwrap_or(command.get_program())
        .to_string_lossy()
        .into_owned();
    std::iter::once(program)
        .chain(
            command
                .get_args()
                .map(|arg| quote_if_needed(&arg.to_string_lossy())),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// Shell-style quoting for arguments with spaces, so a printed command can be pasted back.
fn quote_if_needed(arg: &str) -> String {
    if arg.is_empty() || arg.contains(char::is_whitespace) {
        format!("\"{arg}\"")
    } else {
        arg.to_owned()
    }
}

/// `1m02s` or `3.4s`.
pub(crate) fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = duration.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// The workspace root (the parent of `xtask/`).
pub(crate) fn project_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_in_its_own_group_reports_success_and_failure() {
        run_as_group(&mut Command::new("true"), "true", Duration::from_secs(30))
            .expect("`true` succeeds");
        let error = run_as_group(&mut Command::new("false"), "false", Duration::from_secs(30))
            .expect_err("`false` fails");
        assert!(
            format!("{error:#}").contains("`false` exited with"),
            "names the step: {error:#}"
        );
    }

    #[test]
    fn a_hung_step_is_stopped_with_everything_it_started() {
        let scratch = std::env::temp_dir().join(format!("xtask-hang-{}", std::process::id()));
        let pid_file = scratch.with_extension("pid");
        let mut hung = Command::new("sh");
        hung.arg("-c").arg(format!(
            "sleep 300 & echo $! > {}; wait",
            pid_file.display()
        ));
        let started = Instant::now();
        let error = run_as_group(&mut hung, "hung", Duration::from_secs(1))
            .expect_err("the deadline passes");
        assert!(
            format!("{error:#}").contains("did not finish within 1.0s"),
            "says why it stopped: {error:#}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "stopped promptly: {:?}",
            started.elapsed()
        );
        let grandchild =
            std::fs::read_to_string(&pid_file).expect("the shell wrote its child's pid");
        std::fs::remove_file(&pid_file).expect("cleanup");
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", grandchild.trim()))
            .unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        assert!(
            stat.is_empty() || state == "Z",
            "the background `sleep` in the same group was killed too: {stat}"
        );
    }

    #[test]
    fn printed_commands_quote_arguments_with_spaces() {
        let mut command = Command::new("/usr/bin/xvfb-run");
        command.args(["-a", "-s", XVFB_SCREEN, "cargo"]);
        assert_eq!(
            describe(&command),
            "xvfb-run -a -s \"-noreset -screen 0 1280x800x24\" cargo",
            "the program's file name, then the arguments, quoted where they contain spaces"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(
            format_duration(Duration::from_millis(3_440)),
            "3.4s",
            "under a minute: tenths"
        );
        assert_eq!(
            format_duration(Duration::from_secs(62)),
            "1m02s",
            "over a minute: minutes and seconds"
        );
        assert_eq!(
            format_duration(Duration::from_secs(3_600)),
            "60m00s",
            "an hour stays in minutes"
        );
    }

    #[test]
    fn keyring_daemon_output_becomes_environment() {
        let parsed = parse_env_lines(
            "GNOME_KEYRING_CONTROL=/run/user/0/keyring\nSSH_AUTH_SOCK=/run/user/0/keyring/ssh\n\nnot a variable\n",
        );
        assert_eq!(
            parsed,
            vec![
                (
                    "GNOME_KEYRING_CONTROL".to_owned(),
                    "/run/user/0/keyring".to_owned()
                ),
                (
                    "SSH_AUTH_SOCK".to_owned(),
                    "/run/user/0/keyring/ssh".to_owned()
                ),
            ],
            "every NAME=value line and nothing else"
        );
    }

    #[test]
    fn the_cargo_bin_dir_is_appended_once() {
        let dir = Path::new("/nonexistent/xtask-test-bin");
        let once = path_with(dir);
        let dirs: Vec<PathBuf> = std::env::split_paths(&once).collect();
        assert_eq!(
            dirs.last().map(PathBuf::as_path),
            Some(dir),
            "appended at the end"
        );
        let already = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).next();
        if let Some(first) = already {
            let again: Vec<PathBuf> = std::env::split_paths(&path_with(&first)).collect();
            assert_eq!(
                again.iter().filter(|d| **d == first).count(),
                std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                    .filter(|d| *d == first)
                    .count(),
                "a directory already on PATH is not added again"
            );
        }
    }

    #[test]
    fn the_project_root_holds_the_workspace_manifest() {
        assert!(
            project_root().join("Cargo.toml").is_file() && project_root().join("xtask").is_dir(),
            "project_root() must be the workspace root"
        );
    }
}
