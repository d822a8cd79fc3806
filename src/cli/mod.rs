//! `rzk cli`: a shell with zkCli's commands, interactive or scripted.
//! A client of any ZooKeeper-compatible server; shares no code with the server.
//!
//! - `line`, `format`, `watchbook`: pure parsing, zkCli's output text, watch bookkeeping.
//! - `shell`: the session (on the `zookeeper-client` crate), event printing and the commands.
//! - `repl`: the interactive line editor (rustyline) with history and completion.
//!
//! Modes: a command on the command line runs once (exit status 1 if it fails); otherwise
//! lines come from the terminal (interactive) or from stdin (a script; exit status 1 if any
//! command failed).

mod format;
mod line;
mod repl;
mod shell;
mod watchbook;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use shell::{ConnectOptions, Out, Shell};

/// Writes to stdout, ignoring a closed pipe (`rzk cli ls / | head` must not panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut stdout = std::io::stdout().lock();
        let _ = write!(stdout, $($arg)*);
        let _ = stdout.flush();
    }};
}

/// Writes a line to stderr, ignoring errors.
macro_rules! say_err {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CliArgs {
    /// zkCli's options then an optional command: [-server host:port[,host:port...]]
    /// [-timeout ms] [-r] [COMMAND ARGS...]. Options also work with two dashes.
    /// Without a command the shell is interactive (or reads commands from stdin).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub command: Vec<String>,
}

/// Options and command parsed from `rzk cli` arguments.
#[derive(Debug, PartialEq)]
struct Invocation {
    server: String,
    timeout_ms: u64,
    readonly: bool,
    command: Vec<String>,
    help: bool,
}

/// Parses zkCli's command line: `-server`, `-timeout`, `-r` (or `--server` ...) before the
/// command; everything from the first non-option word on is the command.
fn parse_invocation(args: &[String]) -> Result<Invocation, String> {
    let mut inv = Invocation {
        server: "localhost:2181".into(),
        timeout_ms: 30000,
        readonly: false,
        command: Vec::new(),
        help: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let option = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'));
        match option {
            Some("server") => {
                inv.server = it
                    .next()
                    .ok_or("Error: no argument found for option -server")?
                    .clone()
            }
            Some("timeout") => {
                let value = it
                    .next()
                    .ok_or("Error: no argument found for option -timeout")?;
                inv.timeout_ms = value.parse().ok().filter(|ms| *ms > 0).ok_or_else(|| {
                    format!("Error: -timeout needs a positive number of milliseconds, got {value}")
                })?;
            }
            Some("r") | Some("readonly") => inv.readonly = true,
            Some("h") | Some("help") => inv.help = true,
            Some(other) if !other.is_empty() => return Err(format!("Error: unknown option {arg}")),
            _ => {
                inv.command = std::iter::once(arg.clone()).chain(it.cloned()).collect();
                break;
            }
        }
    }
    Ok(inv)
}

pub fn run(args: CliArgs) -> anyhow::Result<ExitCode> {
    let inv = match parse_invocation(&args.command) {
        Ok(inv) => inv,
        Err(msg) => {
            say_err!("{msg}");
            say_err!(
                "usage: rzk cli [-server host:port[,host:port...]] [-timeout ms] [-r] [COMMAND ARGS...]"
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    if inv.help {
        say!(
            "usage: rzk cli [-server host:port[,host:port...]] [-timeout ms] [-r] [COMMAND ARGS...]\n\n{}",
            format::usage()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let options = ConnectOptions {
        server: inv.server.clone(),
        timeout: Duration::from_millis(inv.timeout_ms),
        readonly: inv.readonly,
    };
    let mut shell = runtime.block_on(async { Shell::new(options) });
    say!("Connecting to {}\n", inv.server);
    runtime.block_on(shell.connect(&inv.server));

    let failed = if !inv.command.is_empty() {
        let printer = shell.printer();
        printer.hold();
        let mut out = Out::default();
        let result = runtime.block_on(shell.execute(inv.command.clone(), &mut out));
        printer.flush_held();
        out.emit();
        result.is_err()
    } else if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        say!("Welcome to rzk cli (zkCli commands; type help, Tab completes)\n");
        repl::interactive(&runtime, &mut shell)?
    } else {
        run_script(&runtime, &mut shell)
    };
    runtime.block_on(async {
        shell.close_session().await;
        drop(shell)
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads commands from a non-terminal stdin. Returns whether any command failed.
fn run_script(runtime: &tokio::runtime::Runtime, shell: &mut Shell) -> bool {
    let printer = shell.printer();
    let mut failed = false;
    let mut line = String::new();
    loop {
        printer.release();
        line.clear();
        match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        printer.hold();
        let mut out = Out::default();
        let text = line.trim_end_matches(['\n', '\r']);
        if runtime
            .block_on(shell.execute_line(text, &mut out))
            .is_err()
        {
            failed = true;
        }
        printer.flush_held();
        out.emit();
        if shell.quit {
            break;
        }
    }
    runtime.block_on(shell.sync_events());
    printer.release();
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(args: &[&str]) -> Result<Invocation, String> {
        parse_invocation(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn single_and_double_dash_options() {
        let i = inv(&[
            "-server", "h:1,h:2", "-timeout", "5000", "-r", "ls", "-R", "/",
        ])
        .unwrap();
        assert_eq!(i.server, "h:1,h:2");
        assert_eq!(i.timeout_ms, 5000);
        assert!(i.readonly);
        assert_eq!(i.command, ["ls", "-R", "/"]);
        let i = inv(&["--server", "x:2181", "--timeout", "100"]).unwrap();
        assert_eq!(i.server, "x:2181");
        assert_eq!(i.timeout_ms, 100);
        assert!(i.command.is_empty());
        assert_eq!(inv(&[]).unwrap().server, "localhost:2181");
        assert!(inv(&["-server"]).is_err());
        assert!(inv(&["-timeout", "abc"]).is_err());
        assert!(inv(&["-bogus"]).is_err());
    }
}
