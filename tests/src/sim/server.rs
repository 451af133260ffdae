//! The simulated server process: started, killed, restored, asked.

use super::*;

impl World {
    // ---- the server ------------------------------------------------------------------------

    pub(super) fn admin(&mut self, args: &[&str]) -> Result<String, String> {
        let out = run_with_timeout(self.site.command(args))?;
        if !out.status.success() {
            return Err(format!(
                "suivi-server {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub(super) fn start_server(&mut self) -> Result<(), String> {
        if self.server.is_some() {
            return Ok(());
        }
        // After a kill -9 the port may linger a moment; the server must come back regardless.
        let started = Instant::now();
        let log_path = self.work.path().join("server.log");
        loop {
            // The server's log, kept across restarts: what it tells the admin is checked.
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|e| e.to_string())?;
            let mut child = self
                .site
                .command(&["serve", "--listen", &self.addr.to_string()])
                .env("NO_COLOR", "1")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| e.to_string())?;
            loop {
                if std::net::TcpStream::connect(self.addr).is_ok() {
                    self.tally.server_starts += 1;
                    self.server = Some(Served {
                        child,
                        addr: self.addr,
                    });
                    return Ok(());
                }
                if let Ok(Some(status)) = child.try_wait() {
                    if started.elapsed() > Duration::from_secs(20) {
                        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                        let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join("\n");
                        return Err(format!(
                            "the server does not start again ({status}): {tail}"
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    break;
                }
                if started.elapsed() > Duration::from_secs(30) {
                    let _ = child.kill();
                    return Err("the server does not listen after 30 s".into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Whether the server told its admin, at a start, that its database is older than
    /// decisions it had journalled (restored from a backup).
    pub(super) fn server_reported_restore(&self) -> bool {
        std::fs::read_to_string(self.work.path().join("server.log"))
            .is_ok_and(|log| log.contains("restored from a backup"))
    }

    pub(super) fn kill_server(&mut self) {
        if let Some(mut served) = self.server.take() {
            let _ = served.child.kill();
            let _ = served.child.wait();
        }
    }

    /// The server process is alive (it never dies of what a device sends).
    pub(super) fn check_server_alive(&mut self, after: &str) -> Result<(), String> {
        if let Some(served) = self.server.as_mut() {
            if let Ok(Some(status)) = served.child.try_wait() {
                return Err(format!("the server died ({status}) after {after}"));
            }
        }
        Ok(())
    }
}
