//! Shared by the Rust integration tests: start a real `rzk server` process
//! on a free loopback port with its own data dir, and stop it (SIGKILL or
//! SIGTERM) when done.
#![allow(dead_code)]

pub mod ensemble;
pub mod history;
pub mod linear;
pub mod workload;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nobody listens on, never the same one twice in a test
/// process. Taken below the kernel's ephemeral range (32768-60999 by
/// default): a port the kernel hands out for "port 0" can be handed out
/// again, or taken by an outgoing connection, before the server that was
/// meant to get it binds it (seen: "election port ... Address already in
/// use" with tests running side by side).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Test processes running at the same time start at different places.
    let start = (std::process::id() % 97) * 120;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < COUNT, "ran out of test ports");
        let port = (FIRST + (start + n) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Sends a ConnectRequest on a fresh socket to `port`.
pub fn send_connect(port: u16) -> std::net::TcpStream {
    use rzk::proto::{ConnectRequest, encode_framed};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut frame = Vec::new();
    encode_framed(
        &ConnectRequest {
            time_out: 10_000,
            ..Default::default()
        },
        &mut frame,
    );
    s.write_all(&frame).unwrap();
    s
}

/// Sends a four-letter word and returns the reply ("" if it failed).
pub fn four_letter(port: u16, word: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(word.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// `zk_<key>` from a `mntr` reply, as a number.
pub fn mntr_value(mntr: &str, key: &str) -> Option<u64> {
    mntr.lines().find_map(|l| {
        let (k, v) = l.split_once('\t')?;
        (k == format!("zk_{key}")).then(|| v.trim().parse().ok())?
    })
}

pub struct RzkServer {
    pub port: u16,
    pub dir: PathBuf,
    pub cfg: PathBuf,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl RzkServer {
    /// Starts a server with `extra` zoo.cfg lines added to the basics.
    pub fn start(extra: &str) -> RzkServer {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut s = RzkServer::start_in(&dir, free_port(), extra);
        s._tmp = Some(tmp);
        s
    }

    pub fn start_in(dir: &Path, port: u16, extra: &str) -> RzkServer {
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=200\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 4lw.commands.whitelist=*\nadmin.enableServer=false\nmetricsProvider.httpPort=0\n{extra}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let mut s = RzkServer {
            port,
            dir: dir.to_path_buf(),
            cfg,
            child: None,
            _tmp: None,
        };
        s.restart();
        s
    }

    /// (Re)starts the process on the same config and data dir.
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_rzk"))
            .arg("server")
            .arg(&self.cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start rzk server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while four_letter(self.port, "ruok") != "imok" {
            if let Some(c) = &mut self.child
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("rzk server exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "server did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }
}

impl Drop for RzkServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
