//! A child process saving in a loop is killed with SIGKILL; on reopen every save it reported
//! done is present and the database opens.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use suivi_core::Store;

const CHILD_ENV: &str = "SUIVI_CRASH_CHILD_DB";

/// Not a test of its own: the body the parent runs in a child process.
#[test]
fn crash_child_saves_in_a_loop() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut store = Store::open(std::path::Path::new(&path), KEY).expect("child opens the store");
    let mut out = std::io::stdout();
    for i in 0.. {
        let id = store
            .create_case(&child(&format!("Enfant{i}"), "Diarra", "Sikasso"))
            .expect("save");
        store
            .edit_case(&id, &record(json!({"hours_per_week": i % 100})))
            .expect("edit");
        writeln!(out, "saved {id} {}", i % 100).expect("stdout");
        out.flush().expect("flush");
    }
}

#[test]
fn killed_mid_save_every_acknowledged_save_survives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("suivi.db");
    drop(new_store(&dir));
    let mut acknowledged: Vec<(String, i64)> = Vec::new();
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child_saves_in_a_loop",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("saved ") {
                    let mut parts = rest.split(' ');
                    let id = parts.next().unwrap().to_string();
                    let hours: i64 = parts.next().unwrap().parse().unwrap();
                    lines.push((id, hours));
                }
            }
            lines
        });
        // Kill at a different moment each round, mid-save most likely.
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(700 + 370 * round));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        assert!(
            !lines.is_empty(),
            "the child saved nothing in {:?}",
            started.elapsed()
        );
        acknowledged.extend(lines);
    }
    let store = Store::open(&path, KEY).expect("the database opens after SIGKILL");
    for (id, hours) in &acknowledged {
        let case = store
            .case(id)
            .unwrap_or_else(|e| panic!("acknowledged case {id} lost: {e}"));
        assert_eq!(case.identification["hours_per_week"], json!(hours));
    }
    assert!(store.case_count().unwrap() >= acknowledged.len() as i64);
}
