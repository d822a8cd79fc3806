//! `rzk cli` in a real terminal: tmux runs it, the test types keys and reads the screen
//! (capture-pane). Covers tab completion of commands and znode paths, history recall, and a
//! watch firing while the shell sits at its prompt. Needs `tmux` (apt-get install tmux).

mod cli;

use std::process::Command;
use std::time::{Duration, Instant};

use cli::{Server, rzk_bin, rzk_cli};

/// A private tmux server (own socket) running one pane; killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let socket = format!("rzk-cli-test-{}-{}", std::process::id(), rand_suffix());
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "main",
                "-x",
                "160",
                "-y",
                "50",
            ])
            .arg(command)
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux is required for this test: apt-get install tmux");
        assert!(status.success(), "tmux new-session failed");
        Tmux { socket }
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap()
    }

    /// Types literal text (no key-name interpretation).
    fn type_text(&self, text: &str) {
        assert!(
            self.tmux(&["send-keys", "-t", "main", "-l", text])
                .status
                .success()
        );
    }

    /// Presses named keys (Enter, Tab, Up, C-u ...).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        assert!(self.tmux(&args).status.success());
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(
            &self
                .tmux(&["capture-pane", "-p", "-J", "-t", "main", "-S", "-500"])
                .stdout,
        )
        .into_owned()
    }

    /// Waits until `predicate` holds for the screen.
    fn wait(&self, what: &str, predicate: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if predicate(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_text(&self, text: &str) -> String {
        self.wait(text, |s| s.contains(text))
    }

    /// The line the cursor is on (the prompt and what was typed).
    fn current_line(&self) -> String {
        let out = self.tmux(&["display-message", "-p", "-t", "main", "#{cursor_y}"]);
        let y: usize = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        let visible =
            String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "main"]).stdout)
                .into_owned();
        visible
            .lines()
            .nth(y)
            .unwrap_or_default()
            .trim_end()
            .to_string()
    }

    fn wait_line(&self, expected_end: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.current_line().ends_with(expected_end) {
            if Instant::now() > deadline {
                panic!(
                    "cursor line {:?} does not end with {expected_end:?}; screen:\n{}",
                    self.current_line(),
                    self.screen()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&self) -> bool {
        self.tmux(&["has-session", "-t", "main"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000
}

#[test]
fn interactive_completion_history_and_watch_at_prompt() {
    let server = Server::start();
    let addr = server.addr();
    let term = Tmux::start(&format!("{} cli -server {addr}", rzk_bin()));
    term.wait_text(&format!("[zk: {addr}(CONNECTED) 0] "));

    for (i, cmd) in [
        "create /apple red",
        "create /apricot orange",
        "create /banana yellow",
    ]
    .iter()
    .enumerate()
    {
        term.type_text(cmd);
        term.keys(&["Enter"]);
        term.wait_text(&format!("(CONNECTED) {}] ", i + 1));
    }
    let screen = term.screen();
    assert!(
        screen.contains("Created /apple") && screen.contains("Created /banana"),
        "{screen}"
    );

    // Command name completion: "getE" + Tab -> "getEphemerals ".
    term.type_text("getE");
    term.keys(&["Tab"]);
    term.wait_line("(CONNECTED) 3] getEphemerals");
    term.keys(&["C-u"]);

    // Unique path completion from the server's children: "/ban" + Tab -> "/banana".
    term.type_text("get -w /ban");
    term.keys(&["Tab"]);
    term.wait_line("(CONNECTED) 3] get -w /banana");
    term.keys(&["Enter"]);
    term.wait_text("(CONNECTED) 4] ");
    assert!(term.screen().contains("\nyellow\n"), "{}", term.screen());

    // Ambiguous path: Tab Tab lists both candidates.
    term.type_text("ls /ap");
    term.keys(&["Tab"]);
    term.keys(&["Tab"]);
    term.wait("a candidate line listing /apple and /apricot", |s| {
        s.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words == ["/apple", "/apricot"]
        })
    });
    term.wait_line("(CONNECTED) 4] ls /ap");
    term.keys(&["C-u"]);

    // A watch fires while the shell waits at its prompt: the event shows up, then the prompt again.
    let other = rzk_cli(&addr, &["set", "/banana", "ripe"], "");
    assert_eq!(other.code, Some(0), "{other:?}");
    let screen =
        term.wait_text("WatchedEvent state:SyncConnected type:NodeDataChanged path:/banana");
    let after = &screen[screen.find("type:NodeDataChanged path:/banana").unwrap()..];
    assert!(
        after.contains("(CONNECTED) 4] "),
        "prompt not redrawn after the event:\n{screen}"
    );

    // History: Up recalls the previous command.
    term.keys(&["Up"]);
    term.wait_line("(CONNECTED) 4] get -w /banana");
    term.keys(&["C-u"]);
    term.type_text("get /banana");
    term.keys(&["Enter"]);
    term.wait_text("\nripe\n");

    // Errors are messages, not crashes, and the shell keeps going.
    term.type_text("get /nope");
    term.keys(&["Enter"]);
    term.wait_text("Node does not exist: /nope");

    term.type_text("quit");
    term.keys(&["Enter"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while term.alive() {
        assert!(
            Instant::now() < deadline,
            "rzk cli did not exit after quit:\n{}",
            term.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
