//! `rzk server` start-up: broken configs are refused with a message naming
//! the key and a non-zero exit; unknown keys only warn.

mod common;
use std::process::Command;

fn run_with(cfg: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zoo.cfg");
    std::fs::write(&path, cfg).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rzk"))
        .arg("server")
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_values_exit_non_zero_naming_the_key() {
    for (cfg, key) in [
        ("clientPort=twenty", "clientPort"),
        ("tickTime=-5", "tickTime"),
        ("server.1=nohostport", "server.1"),
        (
            "minSessionTimeout=9000\nmaxSessionTimeout=100",
            "minSessionTimeout",
        ),
        ("extendedTypesEnabled=maybe", "extendedTypesEnabled"),
        ("jute.maxbuffer=12", "jute.maxbuffer"),
    ] {
        let (ok, err) = run_with(cfg);
        assert!(!ok, "{cfg:?} was accepted");
        assert!(
            err.contains(key),
            "{cfg:?}: message does not name {key}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_rzk"))
        .args(["server", "/nonexistent/zoo.cfg"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/zoo.cfg"));
}

#[test]
fn unknown_keys_only_warn() {
    let mut server = common::RzkServer::start("someFutureKey=1");
    assert_eq!(common::four_letter(server.port, "ruok"), "imok");
    server.kill9();
    assert!(server.log().contains("someFutureKey"), "{}", server.log());
}

#[test]
fn a_data_dir_in_use_is_refused() {
    let first = common::RzkServer::start("");
    let cfg = std::fs::read_to_string(&first.cfg).unwrap();
    let cfg = cfg.replace(
        &format!("clientPort={}", first.port),
        &format!("clientPort={}", common::free_port()),
    );
    let (ok, err) = run_with(&cfg);
    assert!(!ok);
    assert!(err.contains("locked"), "{err}");
}

#[test]
fn a_replicated_server_needs_a_myid_named_in_the_server_lines() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = format!(
        "dataDir={}\nadmin.enableServer=false\nmetricsProvider.httpPort=0\n\
         server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n",
        data.display()
    );
    let (ok, err) = run_with(&cfg);
    assert!(!ok, "three members without a myid must not start");
    assert!(err.contains("myid"), "{err}");
    std::fs::write(data.join("myid"), "7\n").unwrap();
    let (ok, err) = run_with(&cfg);
    assert!(!ok, "an id no server line names must not start");
    assert!(err.contains("server.7"), "{err}");
}

#[test]
fn myid_comes_from_the_pod_hostname_and_a_foreign_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let port = common::free_port();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nmetricsProvider.httpPort=0\n",
            data.display()
        ),
    )
    .unwrap();
    // Pod zk-2 on an empty volume: takes id 3 and records it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_rzk"))
        .args(["server", "--myid-from-hostname"])
        .arg(&cfg)
        .env("HOSTNAME", "zk-2")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while common::four_letter(port, "ruok") != "imok" {
        assert!(std::time::Instant::now() < deadline, "server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        std::fs::read_to_string(data.join("myid")).unwrap().trim(),
        "3"
    );
    // The same volume mounted by pod zk-0 (id 1): refused, naming both ids.
    let out = Command::new(env!("CARGO_BIN_EXE_rzk"))
        .args(["server", "--myid-from-hostname"])
        .arg(&cfg)
        .env("HOSTNAME", "zk-0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server 3") && err.contains("server 1"),
        "{err}"
    );
}
