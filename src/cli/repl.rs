//! The interactive terminal: rustyline line editing, in-memory history, tab completion of
//! command names and znode paths (children are listed from the server), and watch events
//! printed above the prompt while the user types. Only used when stdin and stdout are a tty.

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, ExternalPrinter, Helper};
use std::time::Duration;
use tokio::sync::watch;

use super::format::COMMANDS;
use super::shell::{Conn, Out, Shell};

/// What the word under the cursor is.
#[derive(Debug, PartialEq)]
pub enum Target<'a> {
    /// The first word: a command name prefix.
    Command(&'a str),
    /// A path: list `dir`'s children starting with `prefix`.
    Path {
        dir: &'a str,
        prefix: &'a str,
    },
    Nothing,
}

/// Finds the word being completed; returns its start offset too.
pub fn completion_target(line: &str, pos: usize) -> (usize, Target<'_>) {
    let before = &line[..pos];
    let start = before
        .rfind(char::is_whitespace)
        .map(|i| i + 1)
        .unwrap_or(0);
    let word = &before[start..];
    if before[..start].trim().is_empty() {
        return (start, Target::Command(word));
    }
    if word.starts_with('/') {
        let slash = word.rfind('/').unwrap_or(0);
        let dir = if slash == 0 { "/" } else { &word[..slash] };
        return (
            start,
            Target::Path {
                dir,
                prefix: &word[slash + 1..],
            },
        );
    }
    (start, Target::Nothing)
}

/// Command names starting with `prefix`, each followed by a space.
pub fn complete_command(prefix: &str) -> Vec<String> {
    COMMANDS
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(name, _)| format!("{name} "))
        .collect()
}

/// Full paths of `dir`'s children starting with `prefix`, sorted.
pub fn complete_children(dir: &str, prefix: &str, children: &[String]) -> Vec<String> {
    let mut matches: Vec<String> = children
        .iter()
        .filter(|c| c.starts_with(prefix))
        .map(|c| {
            if dir == "/" {
                format!("/{c}")
            } else {
                format!("{dir}/{c}")
            }
        })
        .collect();
    matches.sort();
    matches
}

struct ZkHelper {
    runtime: tokio::runtime::Handle,
    conn: watch::Receiver<Conn>,
}

impl Completer for ZkHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, target) = completion_target(line, pos);
        let words = match target {
            Target::Command(prefix) => complete_command(prefix),
            Target::Path { dir, prefix } => {
                let Conn::Connected(client) = self.conn.borrow().clone() else {
                    return Ok((start, Vec::new()));
                };
                let listing = self.runtime.block_on(async {
                    tokio::time::timeout(Duration::from_secs(2), client.list_children(dir)).await
                });
                match listing {
                    Ok(Ok(children)) => complete_children(dir, prefix, &children),
                    _ => Vec::new(),
                }
            }
            Target::Nothing => Vec::new(),
        };
        let pairs = words
            .into_iter()
            .map(|w| Pair {
                display: w.clone(),
                replacement: w,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ZkHelper {
    type Hint = String;
}
impl Highlighter for ZkHelper {}
impl Validator for ZkHelper {}
impl Helper for ZkHelper {}

/// Runs the interactive loop until `quit` or end of input. Returns whether the last command failed.
pub fn interactive(runtime: &tokio::runtime::Runtime, shell: &mut Shell) -> anyhow::Result<bool> {
    let config = rustyline::Config::builder()
        .completion_type(rustyline::CompletionType::List)
        .auto_add_history(false)
        .max_history_size(1000)?
        .build();
    let mut editor: Editor<ZkHelper, rustyline::history::DefaultHistory> =
        Editor::with_config(config)?;
    editor.set_helper(Some(ZkHelper {
        runtime: runtime.handle().clone(),
        conn: shell.conn(),
    }));
    let printer = shell.printer();
    if let Ok(mut external) = editor.create_external_printer() {
        printer.set_external(Box::new(move |text| {
            let _ = external.print(text);
        }));
    }
    // Give the first prompt a chance to show CONNECTED rather than CONNECTING.
    runtime.block_on(shell.wait_connected(Duration::from_secs(3)));
    let mut last_failed = false;
    loop {
        printer.release();
        match editor.readline(&shell.prompt()) {
            Ok(line) => {
                printer.hold();
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                let mut out = Out::default();
                last_failed = runtime
                    .block_on(shell.execute_line(&line, &mut out))
                    .is_err();
                printer.flush_held();
                out.emit();
                if shell.quit {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(err) => return Err(err.into()),
        }
    }
    printer.hold();
    Ok(last_failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(completion_target("cre", 3), (0, Target::Command("cre")));
        assert_eq!(completion_target("  ls", 4), (2, Target::Command("ls")));
        assert_eq!(
            completion_target("ls /zoo", 7),
            (
                3,
                Target::Path {
                    dir: "/",
                    prefix: "zoo"
                }
            )
        );
        assert_eq!(
            completion_target("get -s /a/b/c", 13),
            (
                7,
                Target::Path {
                    dir: "/a/b",
                    prefix: "c"
                }
            )
        );
        assert_eq!(
            completion_target("ls /a/", 6),
            (
                3,
                Target::Path {
                    dir: "/a",
                    prefix: ""
                }
            )
        );
        assert_eq!(completion_target("set /a da", 9), (7, Target::Nothing));
    }

    #[test]
    fn candidates() {
        assert_eq!(
            complete_command("get"),
            ["get ", "getAcl ", "getAllChildrenNumber ", "getEphemerals "]
        );
        assert!(complete_command("zz").is_empty());
        let children = vec![
            "zookeeper".to_string(),
            "app".to_string(),
            "apple".to_string(),
        ];
        assert_eq!(complete_children("/", "ap", &children), ["/app", "/apple"]);
        assert_eq!(
            complete_children("/x", "", &["b".into(), "a".into()]),
            ["/x/a", "/x/b"]
        );
    }
}
