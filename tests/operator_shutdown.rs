//! The operator process stops gracefully: started against a stand-in API
//! server (every request answered with an empty list, so the controller's
//! watches keep retrying), it serves `/healthz`, and on SIGTERM it stops its
//! controller and exits 0 within seconds — what Kubernetes expects of a pod
//! being deleted or rolled.

mod common;

use common::free_port;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// An "API server" that answers every request with an empty list.
fn fake_api_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });
    port
}

fn answer(mut s: TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 8192];
    let _ = s.read(&mut buf);
    let body = r#"{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}"#;
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn sigterm_stops_the_operator_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let api = fake_api_server();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{api}\n\
             users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
             current-context: fake\n"
        ),
    )
    .unwrap();
    let metrics = free_port();
    let log = dir.path().join("operator.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rzk"))
        .args([
            "operator",
            "--metrics-addr",
            &format!("127.0.0.1:{metrics}"),
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "info")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if http_get(metrics, "/healthz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("operator exited early with {status}:\n{}", text());
        }
        assert!(Instant::now() < deadline, "no /healthz:\n{}", text());
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill only sends a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("operator did not stop within 15 s of SIGTERM:\n{}", text());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit {status}:\n{}", text());
    assert!(text().contains("controller stopped"), "{}", text());
}
