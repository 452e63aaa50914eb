//! A service as a real process: started with its arguments and environment,
//! ready once its gRPC port accepts connections, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_for_port};

/// A running service process listening on its own loopback port.
pub struct ServiceProcess {
    name: String,
    child: Child,
    port: u16,
    log: PathBuf,
}

impl ServiceProcess {
    /// Runs `program args… --port <free port>` with `env` added, its output
    /// in `log_dir/<name>.log`, and waits (up to `ready_within`) until the
    /// port accepts connections. Panics with the log's tail if it does not.
    pub async fn start(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(&str, String)],
        log_dir: &Path,
        ready_within: Duration,
    ) -> Self {
        let port = free_port();
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("creating the service log");
        let child = Command::new(program)
            .args(args)
            .args(["--port", &port.to_string()])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::from(file.try_clone().expect("log handle")))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({}): {e}", program.display()));
        let mut process = Self {
            name: name.to_string(),
            child,
            port,
            log,
        };
        if !wait_for_port(port, ready_within).await {
            process.kill();
            panic!(
                "{name} did not listen on port {port} within {ready_within:?}:\n{}",
                process.log_tail()
            );
        }
        process
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: the process dies mid-work, as a crashed machine would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `within` for a clean exit; returns whether
    /// it exited successfully.
    pub fn terminate(&mut self, within: Duration) -> bool {
        self.signal("TERM");
        self.wait_exit(within)
    }

    /// SIGSTOP: the process freezes where it is (work in hand stays unanswered).
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT: a paused process runs on (and receives signals sent meanwhile).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Sends `SIG<name>` (`TERM`, `STOP`, …) to the process.
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }

    /// Waits up to `within` for the process to exit; returns whether it
    /// exited successfully (killing it, and returning `false`, if it did not).
    pub fn wait_exit(&mut self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        false
    }

    /// The whole output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `within` for `needle` to appear in the process's output;
    /// returns whether it did.
    pub async fn wait_logged(&self, needle: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while !self.log().contains(needle) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// The last 40 lines of the process's output.
    pub fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(40);
        format!("--- {} ---\n{}", self.name, lines[start..].join("\n"))
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
