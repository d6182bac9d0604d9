//! Driver processes (chromedriver, `tauri-driver`) in their own process group, killed as a whole on drop, so a
//! failed test never leaves a browser, WebKitWebDriver, the app or its WebKit processes holding cargo's output open.
//! Each also gets a scratch directory under `target/e2e-tmp/` as its `TMPDIR`, removed on drop, so what the
//! browser and WebKit leave in the temporary folder (Chromium's `org.chromium.Chromium.*` directories) goes with it.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Where drivers' scratch directories go: `<target>/e2e-tmp`, created on demand, as a canonical path (Chromium
/// hangs at start-up when its `TMPDIR` holds a `..` component, as `tests/../target` would).
///
/// # Errors
/// When the directory cannot be created.
pub fn scratch_root() -> anyhow::Result<PathBuf> {
    let dir = crate::target_dir().join("e2e-tmp");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    remove_orphans(&dir);
    Ok(dir)
}

/// Removes the scratch directories of test processes that are gone (killed before their drops ran): each
/// directory is named `<driver>-<test pid>-<random>`.
fn remove_orphans(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let owner = name
            .split('-')
            .rev()
            .nth(1)
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = owner
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            // Best effort: another run may be removing it too.
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A child process leading its own process group, with its own temporary folder.
#[derive(Debug)]
pub struct GroupChild {
    child: Child,
    // Dropped after the group is killed (see `Drop`), so nothing writes into it any more.
    tmp: tempfile::TempDir,
}

impl GroupChild {
    /// Spawns `command` as the leader of a new process group, with stdin closed, stdout and stderr appended to
    /// `log`, and `TMPDIR` set to a fresh directory under [`scratch_root`] named `<name>-<pid of this test>-<random>`.
    ///
    /// # Errors
    /// When the log or the scratch directory cannot be created or the program cannot start.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{name}-{}-", std::process::id()))
            .tempdir_in(scratch_root()?)
            .context("creating the driver's scratch directory")?;
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = command
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", command.get_program().display()))?;
        Ok(Self { child, tmp })
    }

    /// The exit status, if the leader has exited.
    ///
    /// # Errors
    /// When the status cannot be read.
    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// The process's temporary folder (its `TMPDIR`).
    pub fn tmp_dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Waits until `ready` answers true, failing when the process exits first or after `timeout`.
    ///
    /// # Errors
    /// On early exit or timeout.
    pub async fn wait_until<F, Fut>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: F,
    ) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                bail!("{what} exited early with {status}");
            }
            if ready().await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{what} did not become ready within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        if let Some(pid) = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `tmp` is removed after this, when the field drops.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_whole_group_dies_and_its_tmp_dir_goes_on_drop() {
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let pid_file = tempfile::NamedTempFile::new().expect("a pid file");
        let mut command = Command::new("sh");
        command.arg("-c").arg(format!(
            "touch \"$TMPDIR/leftover\"; sleep 300 & echo $! > {}; wait",
            pid_file.path().display()
        ));
        let mut child = GroupChild::spawn("group-test", command, log.path()).expect("sh starts");
        let tmp = child.tmp_dir().to_path_buf();
        let pid_path = pid_file.path().to_path_buf();
        child
            .wait_until("sh", Duration::from_secs(10), || {
                let pid_path = pid_path.clone();
                async move {
                    std::fs::read_to_string(pid_path).is_ok_and(|pid| !pid.trim().is_empty())
                }
            })
            .await
            .expect("the background sleep started");
        assert!(
            tmp.starts_with(scratch_root().expect("scratch root")) && tmp.join("leftover").exists(),
            "the child's TMPDIR is its scratch directory under target/: {}",
            tmp.display()
        );
        let grandchild = std::fs::read_to_string(pid_file.path()).expect("pid");
        drop(child);
        // SIGKILL is delivered asynchronously: give the orphaned sleep a moment to go.
        let deadline = Instant::now() + Duration::from_secs(5);
        // Gone, or a zombie (state `Z`, the field after the command name in `/proc/<pid>/stat`).
        let dead = |stat: &str| {
            stat.is_empty()
                || stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .next()
                    == Some("Z")
        };
        let stat = loop {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", grandchild.trim()))
                .unwrap_or_default();
            if dead(&stat) || Instant::now() > deadline {
                break stat;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            dead(&stat),
            "the background sleep in the group was killed too: {stat}"
        );
        assert!(
            !tmp.exists(),
            "the scratch directory is removed: {}",
            tmp.display()
        );
    }

    #[test]
    fn scratch_directories_of_dead_test_processes_are_removed() {
        let root = scratch_root().expect("scratch root");
        // Pid 4194304 is above Linux's highest possible pid, so it is never a live process.
        let orphan = root.join("chromedriver-4194304-AbC123");
        let mine = root.join(format!("chromedriver-{}-AbC123", std::process::id()));
        for dir in [&orphan, &mine] {
            std::fs::create_dir_all(dir.join("org.chromium.Chromium.x")).expect("a leftover");
        }
        let root = scratch_root().expect("scratch root again");
        assert!(!orphan.exists(), "a dead process's directory goes");
        assert!(mine.exists(), "a live process's directory stays");
        std::fs::remove_dir_all(&mine).expect("cleanup");
        assert!(root.is_dir(), "the root stays");
    }
}
