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
