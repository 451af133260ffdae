//! Running processes under a timeout, and files copied and freed.

use super::*;

pub(super) fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

pub(super) fn is_storage_full(out: &Output) -> bool {
    String::from_utf8_lossy(&out.stderr).contains("storage is full")
}

pub(super) fn expect_success(out: &Output, what: &str) -> Result<Value, String> {
    if !out.status.success() {
        return Err(format!(
            "suivi {what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("suivi {what} printed no JSON: {e}"))
}

pub(super) fn run_with_timeout(mut command: Command) -> Result<Output, String> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    wait_with_timeout(child)
}

/// Waits for a process, reading its output on the side (a full pipe would stall it); kills it
/// and fails past `COMMAND_TIMEOUT`.
pub(super) fn wait_with_timeout(child: Child) -> Result<Output, String> {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(COMMAND_TIMEOUT) {
        Ok(out) => out.map_err(|e| e.to_string()),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            Err(format!("a command hung for {COMMAND_TIMEOUT:?}"))
        }
    }
}

pub(super) fn drop_ballast(path: &Path) -> Result<(), String> {
    std::fs::remove_file(path).map_err(|e| e.to_string())
}

pub(super) fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "cp: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}
