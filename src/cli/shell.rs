//! The IO shell: one ZooKeeper session (via the `zookeeper-client` crate), the task that
//! prints watch and session events, and the zkCli commands themselves.
//!
//! Output ordering: a command's output is collected in an [`Out`] and printed when the
//! command ends, after any watch events that arrived while it ran (the server sends a
//! notification before the reply that caused it, so `set` on a watched node prints the
//! event first, as zkCli usually does). Between commands, events print at once (above the
//! prompt when interactive). Parsing and formatting live in the pure `line`, `format` and
//! `watchbook` modules.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{AbortHandle, Abortable};
use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use zookeeper_client::{
    Acl, AddWatchMode, AuthId, Client, CreateMode, EnsembleUpdate, Error, EventType, MultiWriter,
    OneshotWatcher, Permission, PersistentWatcher, SessionState, WatchedEvent,
};

use super::format::{self, error_message, format_event, format_stat};
use super::line::{self, OptSpec, Parsed, StatsTrack, flag, valued};
use super::watchbook::{NodeEvent, RemoveTarget, WatchBook, WatchId, WatchKind};

const QUOTA_ROOT: &str = "/zookeeper/quota";
const QUOTA_LIMITS: &str = "zookeeper_limits";
const QUOTA_STATS: &str = "zookeeper_stats";
const TTL_MAX: i64 = 0xFF_FFFF_FFFF;

/// Output of one command, in order, to stdout (`out`) or stderr (`err`).
#[derive(Default, Debug)]
pub struct Out {
    pub chunks: Vec<(bool, String)>,
}

impl Out {
    pub fn out(&mut self, text: impl Into<String>) {
        self.chunks.push((false, text.into()));
    }

    pub fn outln(&mut self, text: impl AsRef<str>) {
        self.chunks.push((false, format!("{}\n", text.as_ref())));
    }

    pub fn errln(&mut self, text: impl AsRef<str>) {
        self.chunks.push((true, format!("{}\n", text.as_ref())));
    }

    /// Writes everything to the real stdout/stderr.
    pub fn emit(self) {
        let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr().lock());
        for (is_err, text) in self.chunks {
            let _ = if is_err {
                stderr.write_all(text.as_bytes())
            } else {
                stdout.write_all(text.as_bytes())
            };
            let _ = if is_err {
                stderr.flush()
            } else {
                stdout.flush()
            };
        }
    }
}

/// A command failure whose message was already written to the [`Out`].
pub struct Failed;

type CmdResult = Result<(), Failed>;

/// Where asynchronous events go: held while a command runs, printed otherwise.
pub struct Printer {
    inner: Mutex<PrinterInner>,
}

struct PrinterInner {
    holding: bool,
    held: Vec<String>,
    external: Option<Box<dyn FnMut(String) + Send>>,
}

impl Printer {
    fn new() -> Self {
        Self {
            inner: Mutex::new(PrinterInner {
                holding: false,
                held: Vec::new(),
                external: None,
            }),
        }
    }

    /// Routes live events through `print` (the line editor's printer that redraws the prompt).
    pub fn set_external(&self, print: Box<dyn FnMut(String) + Send>) {
        self.lock().external = Some(print);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PrinterInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn event(&self, text: String) {
        let mut inner = self.lock();
        if inner.holding {
            inner.held.push(text);
        } else if let Some(print) = inner.external.as_mut() {
            print(text);
        } else {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        }
    }

    /// Starts holding events (a command is running).
    pub fn hold(&self) {
        self.lock().holding = true;
    }

    /// Prints held events to stdout, keeps holding.
    pub fn flush_held(&self) {
        let mut inner = self.lock();
        let held = std::mem::take(&mut inner.held);
        let mut stdout = std::io::stdout().lock();
        for text in held {
            let _ = stdout.write_all(text.as_bytes());
        }
        let _ = stdout.flush();
    }

    /// Back at the prompt: print events as they come.
    pub fn release(&self) {
        self.flush_held();
        self.lock().holding = false;
    }
}

/// Connection state visible to the prompt and completion.
#[derive(Clone)]
pub enum Conn {
    /// Trying to establish a session.
    Connecting,
    Connected(Client),
    /// Closed by `close`, or connecting gave up on a bad connect string.
    Closed,
}

enum PumpItem {
    Watch {
        id: WatchId,
        event: WatchedEvent,
    },
    State {
        generation: u64,
        state: SessionState,
    },
}

enum PumpMsg {
    Add(BoxStream<'static, PumpItem>),
    /// Handle every event that is already available, then answer.
    Sync(oneshot::Sender<()>),
}

/// State shared between the shell and its event task.
struct Shared {
    book: Mutex<WatchBook>,
    printer: Arc<Printer>,
    print_watches: AtomicBool,
    generation: AtomicU64,
    aborts: Mutex<HashMap<WatchId, AbortHandle>>,
}

impl Shared {
    fn book(&self) -> std::sync::MutexGuard<'_, WatchBook> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn aborts(&self) -> std::sync::MutexGuard<'_, HashMap<WatchId, AbortHandle>> {
        self.aborts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn print_event(&self, state: &str, event_type: &str, path: Option<&str>) {
        if self.print_watches.load(Ordering::SeqCst) {
            self.printer.event(format_event(state, event_type, path));
        }
    }

    /// Drops all watches (their receivers go away with the aborted streams).
    fn drop_all_watches(&self) {
        let ids = self.book().clear();
        let mut aborts = self.aborts();
        for id in ids {
            if let Some(handle) = aborts.remove(&id) {
                handle.abort();
            }
        }
    }

    fn handle(&self, item: PumpItem) {
        match item {
            PumpItem::Watch { id, event } => {
                let node_event = match event.event_type {
                    EventType::NodeCreated => NodeEvent::Created,
                    EventType::NodeDeleted => NodeEvent::Deleted,
                    EventType::NodeDataChanged => NodeEvent::DataChanged,
                    EventType::NodeChildrenChanged => NodeEvent::ChildrenChanged,
                    EventType::Session => {
                        if event.session_state.is_terminated() {
                            self.book().forget(id);
                            self.aborts().remove(&id);
                        }
                        return;
                    }
                };
                let print = self.book().deliver(id, node_event, &event.path);
                if !self.book().contains(id) {
                    self.aborts().remove(&id);
                }
                if print {
                    self.print_event("SyncConnected", node_event.java_name(), Some(&event.path));
                }
            }
            PumpItem::State { generation, state } => {
                if generation != self.generation.load(Ordering::SeqCst) {
                    return;
                }
                self.print_event(java_state(state), "None", None);
                if state.is_terminated() {
                    self.drop_all_watches();
                }
            }
        }
    }
}

/// The Java client's name of a session state, as watch events show it.
fn java_state(state: SessionState) -> &'static str {
    match state {
        SessionState::Disconnected => "Disconnected",
        SessionState::SyncConnected => "SyncConnected",
        SessionState::AuthFailed => "AuthFailed",
        SessionState::ConnectedReadOnly => "ConnectedReadOnly",
        SessionState::Expired => "Expired",
        SessionState::Closed => "Closed",
    }
}

async fn pump(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<PumpMsg>) {
    let mut streams: SelectAll<BoxStream<'static, PumpItem>> = SelectAll::new();
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                None => break,
                Some(PumpMsg::Add(stream)) => streams.push(stream),
                Some(PumpMsg::Sync(done)) => {
                    while let Some(Some(item)) = streams.next().now_or_never() {
                        shared.handle(item);
                    }
                    let _ = done.send(());
                }
            },
            Some(item) = streams.next(), if !streams.is_empty() => shared.handle(item),
        }
    }
}

/// Connection options from the command line.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub server: String,
    pub timeout: Duration,
    pub readonly: bool,
}

/// One zkCli session: connection, watches, history.
pub struct Shell {
    options: ConnectOptions,
    host: String,
    conn_tx: watch::Sender<Conn>,
    connector: Option<tokio::task::JoinHandle<()>>,
    shared: Arc<Shared>,
    pump_tx: mpsc::UnboundedSender<PumpMsg>,
    history: BTreeMap<usize, String>,
    count: usize,
    /// Set by `quit`.
    pub quit: bool,
}

impl Shell {
    /// Creates the shell and starts its event task; must be called inside the runtime.
    pub fn new(options: ConnectOptions) -> Self {
        let printer = Arc::new(Printer::new());
        let shared = Arc::new(Shared {
            book: Mutex::new(WatchBook::new()),
            printer,
            print_watches: AtomicBool::new(true),
            generation: AtomicU64::new(0),
            aborts: Mutex::new(HashMap::new()),
        });
        let (pump_tx, pump_rx) = mpsc::unbounded_channel();
        tokio::spawn(pump(shared.clone(), pump_rx));
        let (conn_tx, _) = watch::channel(Conn::Closed);
        let host = options.server.clone();
        Self {
            options,
            host,
            conn_tx,
            connector: None,
            shared,
            pump_tx,
            history: BTreeMap::new(),
            count: 0,
            quit: false,
        }
    }

    pub fn printer(&self) -> Arc<Printer> {
        self.shared.printer.clone()
    }

    /// A receiver of connection changes (for prompt and completion).
    pub fn conn(&self) -> watch::Receiver<Conn> {
        self.conn_tx.subscribe()
    }

    /// zkCli's prompt: `[zk: host(CONNECTED) 3] `.
    pub fn prompt(&self) -> String {
        let state = match &*self.conn_tx.borrow() {
            Conn::Connecting => "CONNECTING",
            Conn::Closed => "CLOSED",
            Conn::Connected(client) => match client.state() {
                SessionState::Disconnected => "CONNECTING",
                SessionState::SyncConnected => "CONNECTED",
                SessionState::ConnectedReadOnly => "CONNECTEDREADONLY",
                SessionState::AuthFailed => "AUTH_FAILED",
                SessionState::Expired | SessionState::Closed => "CLOSED",
            },
        };
        format!("[zk: {}({}) {}] ", self.host, state, self.count)
    }

    /// Drops the current session (if any) without printing; returns whether it was alive
    /// and a watcher of its state (to wait for the close to reach the server).
    fn drop_session(&mut self) -> (bool, Option<zookeeper_client::StateWatcher>) {
        if let Some(task) = self.connector.take() {
            task.abort();
        }
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        self.shared.drop_all_watches();
        match self.conn_tx.send_replace(Conn::Closed) {
            Conn::Connected(client) => {
                let alive = !client.state().is_terminated();
                // Dropping the last handle makes the crate send CloseSession.
                (alive, Some(client.state_watcher()))
            }
            _ => (false, None),
        }
    }

    /// Closes the current session and waits (briefly) until the server confirmed, so its
    /// ephemeral nodes are gone when this returns, as after zkCli's `close`/`quit`.
    pub async fn close_session(&mut self) -> bool {
        let (alive, states) = self.drop_session();
        if let (true, Some(mut states)) = (alive, states) {
            let closed = async {
                while !states.peek_state().is_terminated() {
                    states.changed().await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), closed).await;
        }
        alive
    }

    /// Starts connecting to `host` in the background (zkCli connects asynchronously too).
    pub async fn connect(&mut self, host: &str) {
        if self.close_session().await {
            self.shared.print_event("Closed", "None", None);
        }
        self.host = host.to_string();
        self.conn_tx.send_replace(Conn::Connecting);
        let generation = self.shared.generation.load(Ordering::SeqCst);
        let (conn_tx, shared, pump_tx) = (
            self.conn_tx.clone(),
            self.shared.clone(),
            self.pump_tx.clone(),
        );
        let (host, options) = (host.to_string(), self.options.clone());
        self.connector = Some(tokio::spawn(async move {
            loop {
                let connector = Client::connector()
                    .with_session_timeout(options.timeout)
                    .with_readonly(options.readonly)
                    .with_fail_eagerly();
                match connector.connect(&host).await {
                    Ok(client) => {
                        if shared.generation.load(Ordering::SeqCst) != generation {
                            return;
                        }
                        let state = if client.state() == SessionState::ConnectedReadOnly {
                            SessionState::ConnectedReadOnly
                        } else {
                            SessionState::SyncConnected
                        };
                        shared.print_event(java_state(state), "None", None);
                        let states = futures::stream::unfold(
                            client.state_watcher(),
                            move |mut w| async move {
                                let state = w.changed().await;
                                Some((PumpItem::State { generation, state }, w))
                            },
                        );
                        let _ = pump_tx.send(PumpMsg::Add(states.boxed()));
                        conn_tx.send_replace(Conn::Connected(client));
                        return;
                    }
                    Err(Error::BadArguments(reason)) => {
                        shared
                            .printer
                            .event(format!("Invalid connect string {host}: {reason}\n"));
                        conn_tx.send_replace(Conn::Closed);
                        return;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        }));
    }

    /// Waits until connecting has finished (either way), at most `limit`.
    pub async fn wait_connected(&self, limit: Duration) {
        let mut rx = self.conn_tx.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|c| !matches!(c, Conn::Connecting))).await;
    }

    /// Waits for a live session, up to the session timeout.
    async fn client(&self, out: &mut Out) -> Result<Client, Failed> {
        let mut rx = self.conn_tx.subscribe();
        let wait = rx.wait_for(|c| !matches!(c, Conn::Connecting));
        let conn = match tokio::time::timeout(self.options.timeout, wait).await {
            Ok(Ok(conn)) => conn.clone(),
            _ => {
                out.errln(format!(
                    "Could not connect to {} within {} ms (is the server running?)",
                    self.host,
                    self.options.timeout.as_millis()
                ));
                return Err(Failed);
            }
        };
        match conn {
            Conn::Connected(client) if !client.state().is_terminated() => Ok(client),
            _ => {
                out.outln("Not connected");
                Err(Failed)
            }
        }
    }

    /// Handles every event already delivered, so it prints before the command's output.
    pub async fn sync_events(&self) {
        let (tx, rx) = oneshot::channel();
        if self.pump_tx.send(PumpMsg::Sync(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    fn add_oneshot(&self, path: &str, kind: WatchKind, watcher: OneshotWatcher) {
        let id = self.shared.book().register(path, kind);
        let (handle, registration) = AbortHandle::new_pair();
        self.shared.aborts().insert(id, handle);
        let stream = futures::stream::once(async move {
            PumpItem::Watch {
                id,
                event: watcher.changed().await,
            }
        });
        let _ = self
            .pump_tx
            .send(PumpMsg::Add(Abortable::new(stream, registration).boxed()));
    }

    fn add_persistent(&self, path: &str, kind: WatchKind, watcher: PersistentWatcher) {
        let id = self.shared.book().register(path, kind);
        let (handle, registration) = AbortHandle::new_pair();
        self.shared.aborts().insert(id, handle);
        // The crate's persistent watcher must not be polled after a terminal session event.
        let stream = futures::stream::unfold(Some(watcher), move |watcher| async move {
            let mut watcher = watcher?;
            let event = watcher.changed().await;
            let done =
                event.event_type == EventType::Session && event.session_state.is_terminated();
            Some((
                PumpItem::Watch { id, event },
                if done { None } else { Some(watcher) },
            ))
        });
        let _ = self
            .pump_tx
            .send(PumpMsg::Add(Abortable::new(stream, registration).boxed()));
    }

    /// Runs one typed line (zkCli's `executeLine`): records history, runs, counts.
    pub async fn execute_line(&mut self, line: &str, out: &mut Out) -> CmdResult {
        if line.trim().is_empty() {
            return Ok(());
        }
        self.history.insert(self.count, line.to_string());
        let result = self.execute(line::split_words(line), out).await;
        self.count += 1;
        result
    }

    /// Runs one command given as words (from the command line or a typed line).
    pub async fn execute(&mut self, words: Vec<String>, out: &mut Out) -> CmdResult {
        let Some((cmd, args)) = words.split_first() else {
            return Ok(());
        };
        let result = self.dispatch(cmd, args, out).await;
        self.sync_events().await;
        result
    }

    async fn dispatch(&mut self, cmd: &str, args: &[String], out: &mut Out) -> CmdResult {
        match cmd {
            "help" => {
                out.out(format::usage());
                return Ok(());
            }
            "quit" => {
                self.close_session().await;
                self.quit = true;
                return Ok(());
            }
            "history" => {
                for i in self.count.saturating_sub(10)..=self.count {
                    if let Some(line) = self.history.get(&i) {
                        out.outln(format!("{i} - {line}"));
                    }
                }
                return Ok(());
            }
            "redo" => return self.redo(args, out).await,
            "printwatches" => {
                match args.first() {
                    None => {
                        let on = self.shared.print_watches.load(Ordering::SeqCst);
                        out.outln(format!("printwatches is {}", if on { "on" } else { "off" }));
                    }
                    Some(v) => self.shared.print_watches.store(v == "on", Ordering::SeqCst),
                }
                return Ok(());
            }
            "connect" => {
                let host = args.first().cloned().unwrap_or_else(|| self.host.clone());
                self.connect(&host).await;
                // Wait like a zkCli user would before typing the next command.
                self.wait_connected(self.options.timeout).await;
                return Ok(());
            }
            "close" => {
                if self.close_session().await {
                    self.shared.print_event("Closed", "None", None);
                }
                return Ok(());
            }
            "version" => {
                out.outln(format!(
                    "ZooKeeper CLI version: rzk {} (zkCli 3.8 compatible)",
                    env!("CARGO_PKG_VERSION")
                ));
                return Ok(());
            }
            _ => {}
        }
        if !format::COMMANDS.iter().any(|(name, _)| *name == cmd) {
            out.errln(format!(
                "Command not found: {cmd} (type help for the list of commands)"
            ));
            return Err(Failed);
        }
        let client = self.client(out).await?;
        match cmd {
            "ls" => self.ls(&client, args, out, false).await,
            "ls2" => self.ls(&client, args, out, true).await,
            "get" => self.get(&client, args, out).await,
            "set" => set(&client, args, out).await,
            "create" => create(&client, args, out).await,
            "stat" => self.stat(&client, args, out).await,
            "delete" => delete(&client, args, out).await,
            "deleteall" | "rmr" => deleteall(&client, cmd, args, out).await,
            "getAcl" => get_acl(&client, args, out).await,
            "setAcl" => set_acl(&client, args, out).await,
            "sync" => sync(&client, args, out).await,
            "addauth" => addauth(&client, args, out).await,
            "whoami" => whoami(&client, out).await,
            "getEphemerals" => get_ephemerals(&client, args, out).await,
            "getAllChildrenNumber" => get_all_children_number(&client, args, out).await,
            "addWatch" => self.add_watch(&client, args, out).await,
            "removewatches" => self.remove_watches(args, out),
            "config" => self.config(&client, args, out).await,
            "reconfig" => reconfig(&client, args, out).await,
            "setquota" => setquota(&client, args, out).await,
            "listquota" => listquota(&client, args, out).await,
            "delquota" => delquota(&client, args, out).await,
            _ => {
                out.errln(format!("Command not found: {cmd}"));
                Err(Failed)
            }
        }
    }

    async fn redo(&mut self, args: &[String], out: &mut Out) -> CmdResult {
        let Some(index) = args.first() else {
            out.errln(format::usage_of("redo"));
            return Err(Failed);
        };
        let index = match index.parse::<usize>() {
            Ok(i) if i < self.count => i,
            _ => {
                out.errln("Command index out of range");
                return Err(Failed);
            }
        };
        let line = self.history.get(&index).cloned().unwrap_or_default();
        let words = line::split_words(&line);
        if words.first().map(String::as_str) == Some("redo") {
            out.errln("No redoing redos");
            return Err(Failed);
        }
        self.history.insert(self.count, line);
        Box::pin(self.execute(words, out)).await
    }

    async fn ls(&self, client: &Client, args: &[String], out: &mut Out, ls2: bool) -> CmdResult {
        let p = parse(
            out,
            "ls",
            args,
            &[flag("s"), flag("w"), flag("R"), flag("?")],
        )?;
        let mut watch = p.has("w");
        if p.args.len() > 1 {
            if !ls2 {
                out.errln(
                    "'ls path [watch]' has been deprecated. Please use 'ls [-w] path' instead.",
                );
            }
            watch = true;
        }
        let path = one_path(out, if ls2 { "ls2" } else { "ls" }, &p.args, false)?;
        if p.has("R") {
            return self.ls_recursive(client, &path, watch, out).await;
        }
        let with_stat = p.has("s") || ls2;
        let result = match (with_stat, watch) {
            (true, true) => client
                .get_and_watch_children(&path)
                .await
                .map(|(c, s, w)| (c, Some(s), Some(w))),
            (true, false) => client
                .get_children(&path)
                .await
                .map(|(c, s)| (c, Some(s), None)),
            (false, true) => client
                .list_and_watch_children(&path)
                .await
                .map(|(c, w)| (c, None, Some(w))),
            (false, false) => client.list_children(&path).await.map(|c| (c, None, None)),
        };
        let (mut children, stat, watcher) = result.map_err(|e| fail(out, &e, &path))?;
        if let Some(watcher) = watcher {
            self.add_oneshot(&path, WatchKind::Child, watcher);
        }
        children.sort();
        out.outln(format::java_list(&children));
        if let Some(stat) = stat {
            out.out(format_stat(&stat));
        }
        Ok(())
    }

    async fn ls_recursive(
        &self,
        client: &Client,
        root: &str,
        watch: bool,
        out: &mut Out,
    ) -> CmdResult {
        let exists = if watch {
            client.check_and_watch_stat(root).await.map(|(stat, w)| {
                let kind = if stat.is_some() {
                    WatchKind::Data
                } else {
                    WatchKind::Exist
                };
                self.add_oneshot(root, kind, w);
                stat
            })
        } else {
            client.check_stat(root).await
        };
        match exists {
            Err(e) => return Err(fail(out, &e, root)),
            Ok(None) => return Ok(()),
            Ok(Some(_)) => {}
        }
        // Breadth first with each node's children sorted: zkCli 3.8 lists the tree this way.
        let mut queue = std::collections::VecDeque::from([root.to_string()]);
        while let Some(path) = queue.pop_front() {
            let children = if watch {
                client.list_and_watch_children(&path).await.map(|(c, w)| {
                    self.add_oneshot(&path, WatchKind::Child, w);
                    c
                })
            } else {
                client.list_children(&path).await
            };
            let mut children = match children {
                Ok(c) => c,
                Err(Error::NoNode) => continue,
                Err(e) => return Err(fail(out, &e, &path)),
            };
            out.outln(&path);
            children.sort();
            queue.extend(children.iter().map(|c| line::join_path(&path, c)));
        }
        Ok(())
    }

    async fn get(&self, client: &Client, args: &[String], out: &mut Out) -> CmdResult {
        let p = parse(out, "get", args, &[flag("s"), flag("w")])?;
        let mut watch = p.has("w");
        if p.args.len() > 1 {
            out.errln(
                "'get path [watch]' has been deprecated. Please use 'get [-s] [-w] path' instead.",
            );
            watch = true;
        }
        let path = one_path(out, "get", &p.args, false)?;
        let (data, stat) = if watch {
            let (data, stat, w) = client
                .get_and_watch_data(&path)
                .await
                .map_err(|e| fail(out, &e, &path))?;
            self.add_oneshot(&path, WatchKind::Data, w);
            (data, stat)
        } else {
            client
                .get_data(&path)
                .await
                .map_err(|e| fail(out, &e, &path))?
        };
        out.outln(data_text(&data));
        if p.has("s") {
            out.out(format_stat(&stat));
        }
        Ok(())
    }

    async fn stat(&self, client: &Client, args: &[String], out: &mut Out) -> CmdResult {
        let p = parse(out, "stat", args, &[flag("w")])?;
        let mut watch = p.has("w");
        if p.args.len() > 1 {
            out.errln(
                "'stat path [watch]' has been deprecated. Please use 'stat [-w] path' instead.",
            );
            watch = true;
        }
        let path = one_path(out, "stat", &p.args, false)?;
        let stat = if watch {
            let (stat, w) = client
                .check_and_watch_stat(&path)
                .await
                .map_err(|e| fail(out, &e, &path))?;
            self.add_oneshot(
                &path,
                if stat.is_some() {
                    WatchKind::Data
                } else {
                    WatchKind::Exist
                },
                w,
            );
            stat
        } else {
            client
                .check_stat(&path)
                .await
                .map_err(|e| fail(out, &e, &path))?
        };
        match stat {
            Some(stat) => {
                out.out(format_stat(&stat));
                Ok(())
            }
            None => Err(fail(out, &Error::NoNode, &path)),
        }
    }

    async fn add_watch(&self, client: &Client, args: &[String], out: &mut Out) -> CmdResult {
        let p = parse(out, "addWatch", args, &[valued("m")])?;
        let mode = match p.value("m") {
            None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
            Some("PERSISTENT") => AddWatchMode::Persistent,
            Some(_) => {
                out.errln(format::usage_of("addWatch"));
                return Err(Failed);
            }
        };
        let path = one_path(out, "addWatch", &p.args, false)?;
        let watcher = client
            .watch(&path, mode)
            .await
            .map_err(|e| fail(out, &e, &path))?;
        let kind = match mode {
            AddWatchMode::Persistent => WatchKind::Persistent,
            AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
        };
        self.add_persistent(&path, kind, watcher);
        Ok(())
    }

    /// `removewatches` works on the shell's own watch book: dropping a receiver makes
    /// `zookeeper-client` tell the server, and the `*WatchRemoved` events zkCli shows are
    /// printed here (the crate has no path/type based removal of its own).
    fn remove_watches(&self, args: &[String], out: &mut Out) -> CmdResult {
        let p = parse(
            out,
            "removewatches",
            args,
            &[flag("c"), flag("d"), flag("a"), flag("l")],
        )?;
        let path = one_path(out, "removewatches", &p.args, false)?;
        let target = if p.has("c") {
            RemoveTarget::Children
        } else if p.has("d") {
            RemoveTarget::Data
        } else {
            RemoveTarget::Any
        };
        let (ids, events) = self.shared.book().remove(&path, target);
        if ids.is_empty() {
            return Err(fail(out, &Error::NoWatcher, &path));
        }
        let mut aborts = self.shared.aborts();
        for id in ids {
            if let Some(handle) = aborts.remove(&id) {
                handle.abort();
            }
        }
        drop(aborts);
        for event in events {
            self.shared.print_event("SyncConnected", event, Some(&path));
        }
        Ok(())
    }

    async fn config(&self, client: &Client, args: &[String], out: &mut Out) -> CmdResult {
        let p = parse(out, "config", args, &[flag("c"), flag("w"), flag("s")])?;
        let (data, stat) = if p.has("w") {
            let (data, stat, w) = client
                .get_and_watch_config()
                .await
                .map_err(|e| fail(out, &e, "/zookeeper/config"))?;
            self.add_oneshot("/zookeeper/config", WatchKind::Data, w);
            (data, stat)
        } else {
            client
                .get_config()
                .await
                .map_err(|e| fail(out, &e, "/zookeeper/config"))?
        };
        let text = String::from_utf8_lossy(&data).into_owned();
        out.outln(if p.has("c") {
            line::client_config_string(&text)
        } else {
            text
        });
        if p.has("s") {
            out.out(format_stat(&stat));
        }
        Ok(())
    }
}

/// Writes zkCli's message for `err` on `path` and returns the failure marker.
fn fail(out: &mut Out, err: &Error, path: &str) -> Failed {
    out.errln(error_message(err, Some(path)));
    Failed
}

/// Parses options, printing the message and the command's usage on error.
fn parse(out: &mut Out, cmd: &str, args: &[String], spec: &[OptSpec]) -> Result<Parsed, Failed> {
    line::parse_opts(args, spec).map_err(|msg| {
        out.errln(msg);
        out.errln(format::usage_of(cmd));
        Failed
    })
}

/// The command's first positional as a validated path, or its usage on error.
fn one_path(out: &mut Out, cmd: &str, args: &[String], sequential: bool) -> Result<String, Failed> {
    let Some(path) = args.first() else {
        out.errln(format::usage_of(cmd));
        return Err(Failed);
    };
    checked_path(out, path, sequential)
}

fn checked_path(out: &mut Out, path: &str, sequential: bool) -> Result<String, Failed> {
    match line::validate_path(path, sequential) {
        Ok(()) => Ok(path.to_string()),
        Err(msg) => {
            out.errln(msg);
            Err(Failed)
        }
    }
}

/// Node data as zkCli prints it. The crate does not tell a null payload from an empty one;
/// both print as zkCli prints a data-less node: `null`.
fn data_text(data: &[u8]) -> String {
    if data.is_empty() {
        "null".to_string()
    } else {
        String::from_utf8_lossy(data).into_owned()
    }
}

fn parse_version(out: &mut Out, p: &Parsed) -> Result<Option<i32>, Failed> {
    match p.value("v") {
        None => Ok(None),
        Some(v) => v.parse::<i32>().map(Some).map_err(|_| {
            out.errln(format!("version must be an integer: {v}"));
            Failed
        }),
    }
}

fn to_acls(entries: &[line::AclEntry]) -> Vec<Acl> {
    entries
        .iter()
        .map(|e| {
            let mut perm = Permission::NONE;
            for (bit, p) in [
                (line::PERM_READ, Permission::READ),
                (line::PERM_WRITE, Permission::WRITE),
                (line::PERM_CREATE, Permission::CREATE),
                (line::PERM_DELETE, Permission::DELETE),
                (line::PERM_ADMIN, Permission::ADMIN),
            ] {
                if e.perms & bit != 0 {
                    perm = perm | p;
                }
            }
            Acl::new(perm, AuthId::new(&e.scheme, &e.id))
        })
        .collect()
}

fn perm_bits(perm: Permission) -> i32 {
    [
        (line::PERM_READ, Permission::READ),
        (line::PERM_WRITE, Permission::WRITE),
        (line::PERM_CREATE, Permission::CREATE),
        (line::PERM_DELETE, Permission::DELETE),
        (line::PERM_ADMIN, Permission::ADMIN),
    ]
    .into_iter()
    .filter(|(_, p)| perm.has(*p))
    .map(|(bit, _)| bit)
    .sum()
}

/// Parses an ACL argument, printing zkCli's warnings for bad entries.
fn acl_arg(out: &mut Out, text: &str) -> Vec<Acl> {
    let (entries, warnings) = line::parse_acl(text);
    for w in warnings {
        out.errln(w);
    }
    to_acls(&entries)
}

async fn set(client: &Client, args: &[String], out: &mut Out) -> CmdResult {
    let p = parse(out, "set", args, &[flag("s"), valued("v")])?;
    if p.args.len() < 2 {
        out.errln(format::usage_of("set"));
        return Err(Failed);
    }
    let path = checked_path(out, &p.args[0], false)?;
    let version = parse_version(out, &p)?;
    let stat = client
        .set_data(&path, p.args[1].as_bytes(), version)
        .await
        .map_err(|e| fail(out, &e, &path))?;
    if p.has("s") {
        out.out(format_stat(&stat));
    }
    Ok(())
}

async fn create(client: &Client, args: &[String], out: &mut Out) -> CmdResult {
    let p = parse(
        out,
        "create",
        args,
        &[flag("s"), flag("e"), flag("c"), valued("t")],
    )?;
    let (e, s, c) = (p.has("e"), p.has("s"), p.has("c"));
    if p.args.is_empty() {
        out.errln(format::usage_of("create"));
        return Err(Failed);
    }
    if c && (e || s) {
        out.errln(
            "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
        );
        return Err(Failed);
    }
    let ttl = match p.value("t") {
        None => None,
        Some(t) => match t.parse::<i64>() {
            Ok(t) => Some(t),
            Err(_) => {
                out.errln("-t argument must be a long value");
                return Err(Failed);
            }
        },
    };
    if ttl.is_some() && e {
        out.errln("TTLs cannot be used with Ephemeral znodes");
        return Err(Failed);
    }
    if ttl.is_some() && c {
        out.errln("TTLs cannot be used with Container znodes");
        return Err(Failed);
    }
    if let Some(t) = ttl
        && !(1..=TTL_MAX).contains(&t)
    {
        out.errln(format!(
            "ttl must be positive and cannot be larger than: {TTL_MAX}"
        ));
        return Err(Failed);
    }
    let mode = match (e, s, c) {
        (true, true, _) => CreateMode::EphemeralSequential,
        (true, false, _) => CreateMode::Ephemeral,
        (false, true, _) => CreateMode::PersistentSequential,
        (false, false, true) => CreateMode::Container,
        _ => CreateMode::Persistent,
    };
    let path = checked_path(out, &p.args[0], s)?;
    let data = p
        .args
        .get(1)
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    let acls = match p.args.get(2) {
        Some(text) => acl_arg(out, text),
        None => to_acls(&[line::AclEntry {
            scheme: "world".into(),
            id: "anyone".into(),
            perms: 31,
        }]),
    };
    if acls.is_empty() {
        out.errln("KeeperErrorCode = InvalidACL");
        return Err(fail(out, &Error::InvalidAcl, &path));
    }
    let mut options = mode.with_acls((&acls[..]).into());
    if let Some(t) = ttl {
        options = options.with_ttl(Duration::from_millis(t as u64));
    }
    match client.create(&path, &data, &options).await {
        Ok((_, sequence)) => {
            let created = if s { format!("{path}{sequence}") } else { path };
            out.errln(format!("Created {created}"));
            Ok(())
        }
        Err(Error::UnexpectedErrorCode(-120)) => {
            out.errln("Unable to create ephemeral node on a local session");
            Err(fail(out, &Error::UnexpectedErrorCode(-120), &path))
        }
        Err(err) => Err(fail(out, &err, &path)),
    }
}

async fn delete(client: &Client, args: &[String], out: &mut Out) -> CmdResult {
    let p = parse(out, "delete", args, &[valued("v")])?;
    let mut version = parse_version(out, &p)?;
    if p.args.len() > 1 {
        out.errln("'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.");
        version = match p.args[1].parse::<i32>() {
            Ok(v) => Some(v),
            Err(_) => {
                out.errln(format!("version must be an integer: {}", p.args[1]));
                return Err(Failed);
            }
        };
    }
    let path = one_path(out, "delete", &p.args, false)?;
    client
        .delete(&path, version)
        .await
        .map_err(|e| fail(out, &e, &path))
}

async fn deleteall(client: &Client, cmd: &str, args: &[String], out: &mut Out) -> CmdResult {
    let p = parse(out, cmd, args, &[valued("b")])?;
    let batch = match p.value("b") {
        None => 1000,
        Some(b) => match b.parse::<usize>() {
            Ok(b) if b > 0 => b,
            _ => {
                out.errln("-b argument must be an int value");
                return Err(Failed);
            }
        },
    };
    let root = one_path(out, cmd, &p.args, false)?;
    // Breadth first listing, then delete deepest first in multi batches (zkCli's deleteRecursive).
    let mut tree = vec![root.clone()];
    let mut i = 0;
    while i < tree.len() {
        match client.list_children(&tree[i]).await {
            Ok(children) => {
                let parent = tree[i].clone();
                tree.extend(children.iter().map(|c| line::join_path(&parent, c)));
            }
            Err(Error::NoNode) if i > 0 => {}
            Err(e) => return Err(fail(out, &e, &tree[i])),
        }
        i += 1;
    }
    let mut ok = true;
    for chunk in tree.iter().rev().collect::<Vec<_>>().chunks(batch) {
        let mut writer: MultiWriter<'_> = client.new_multi_writer();
        let mut added = true;
        for path in chunk {
            if writer.add_delete(path, None).is_err() {
                added = false;
            }
        }
        if !added {
            ok = false;
            continue;
        }
        if writer.commit().await.is_err() {
            // Fall back to one by one so a single odd node does not keep the rest.
            for path in chunk {
                match client.delete(path, None).await {
                    Ok(()) | Err(Error::NoNode) => {}
                    Err(_) => ok = false,
                }
            }
        }
    }
    if ok {
        Ok(())
    } else {
        out.errln("Failed to delete some node(s) in the subtree!");
        Err(Failed)
    }
}

async fn get_acl(client: &Client, args: &[String], out: &mut Out) -> CmdResult {
    let p = parse(out, "getAcl", args, &[flag("s")])?;
    let path = one_path(out, "getAcl", &p.args, false)?;
    let (acls, stat) = client
        .get_acl(&path)
        .await
        .map_err(|e| fail(out, &e, &path))?;
    for acl in &acls {
        out.out(format::format_acl_entry(
            acl.scheme(),
            acl.id(),
            perm_bits(acl.permission()),
        ));
    }
    if p.has("s") {
        out.out(format_stat(&stat));
    }
    Ok(())
}

async fn set_acl(client: &Client, args: &[String], out: &mut Out) -> CmdResult {
    let p = parse(out, "setAcl", args, &[flag("s"), valued("v"), flag("R")])?;
    if p.args.len() < 2 {
        out.errln(format::usage_of("setAcl"));
        return Err(Failed);
    }
    let path = checked_path(out, &p.args[0], false)?;
    let version = parse_version(out, &p)?;
    let acls = acl_arg(out, &p.args[1]);
    if acls.is_empty() {
        return Err(fail(out, &Error::InvalidAcl, &path));
    }
    if p.has("R") {
        let mut stack = vec![path.clone()];
        while let Some(node) = stack.pop() {
            client
                .set_acl(&node, &acls, version)
                .await
                .map_err(|e| fail(out, &e, &node))?;
            let mut children = client
                .list_children(&node)
                .await
                .map_err(|e| fail(out, &e, &node))?;
            children.sort();
            stack.extend(children.iter().rev().map(|c| line::join_path(&node, c)));
        }
        return Ok(());
    }
    let stat = client
        .set_acl(&path, &acls, version)
        .await
        .map_err(|e| fail(out, &e, &path))?;
    if p.has("s") {
        out.out(format_stat(&stat));
    }
    Ok(())
}

async fn sync(client: &Client, args: &[String], out: &mut Out) -> CmdResult {
    let p = parse(out, "sync", args, &[])?;
    let path = one_path(out, "sync", &p.args, false)?;
    match client.sync(&path).await {
        Ok(()) => {
            out.outln("Sync is OK");
            Ok(())
        }
        Err(e) => {
            out.outln(format!("Sync has failed. rc={}", format::error_code(&e)));
            Err(Failed)
        }
    }
}

async fn addauth(client: &Client, args: &[String], out: &mut Out) -> CmdResult {
    let Some(scheme) = args.first() else {
        out.errln(format::usage_of("addauth"));
        return Err(Failed);
    };
    let auth = args.get(1).map(String::as_str).unwrap_or("");
    client.auth(scheme, auth.as_bytes()).await.map_err(|e| {
        out.errln(format!("{} (scheme {scheme})", error_message(&e, None)));
        Failed
    })
}

async fn whoami(client: &Client, out: &mut Out) -> CmdResult {
    let users = client.list_auth_users().await.map_err(|e| {
        out.errln(error_message(&e, None));
        Failed
    })?;
    out.outln("Auth scheme: User");
    for user in users {
        out.outln(format!("{}: {}", user.scheme(), user.user()));
    }
    Ok(())
}

async fn get_ephemerals(client: &Client, args: &[String], out: &mut Out) -> CmdResult {
    let path = match args.first() {
        Some(path) => checked_path(out, path, false)?,
        None => "/".to_string(),
    };
    let list = client
        .list_ephemerals(&path)
        .await
        .map_err(|e| fail(out, &e, &path))?;
    out.outln(format::java_list(&list));
    Ok(())
}

async fn get_all_children_number(client: &Client, args: &[String], out: &mut Out) -> CmdResult {
    let path = one_path(out, "getAllChildrenNumber", args, false)?;
    let n = client
        .count_descendants_number(&path)
        .await
        .map_err(|e| fail(out, &e, &path))?;
    out.outln(n.to_string());
    Ok(())
}

async fn reconfig(client: &Client, args: &[String], out: &mut Out) -> CmdResult {
    let spec = [
        flag("s"),
        valued("v"),
        valued("file"),
        valued("members"),
        valued("add"),
        valued("remove"),
    ];
    let p = parse(out, "reconfig", args, &spec)?;
    let (file, members, add, remove) = (
        p.value("file"),
        p.value("members"),
        p.value("add"),
        p.value("remove"),
    );
    if file.is_none() && members.is_none() && add.is_none() && remove.is_none() {
        out.errln(format::usage_of("reconfig"));
        return Err(Failed);
    }
    let version = match p.value("v") {
        None => None,
        Some(v) => match i64::from_str_radix(v.trim_start_matches("0x"), 16) {
            Ok(v) => Some(v),
            Err(_) => {
                out.errln("-v must be followed by a long (configuration version)");
                return Err(Failed);
            }
        },
    };
    if (file.is_some() || members.is_some()) && (add.is_some() || remove.is_some()) {
        out.errln(
            "Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental \
             modes is not allowed)",
        );
        return Err(Failed);
    }
    if file.is_some() && members.is_some() {
        out.errln("Can't use -file and -members together (conflicting non-incremental modes)");
        return Err(Failed);
    }
    let members = match file {
        Some(file) => match std::fs::read_to_string(file) {
            Ok(text) => Some(
                text.lines()
                    .map(str::trim)
                    .filter(|l| {
                        l.starts_with("server.")
                            || l.starts_with("group.")
                            || l.starts_with("weight.")
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Err(e) => {
                out.errln(format!("Error processing {file}: {e}"));
                return Err(Failed);
            }
        },
        None => members.map(str::to_string),
    };
    let lower = |s: Option<&str>| s.map(str::to_lowercase).unwrap_or_default();
    let (add, remove, members) = (lower(add), lower(remove), members.map(|m| m.to_lowercase()));
    let result = match &members {
        Some(m) => {
            let list = [m.as_str()];
            client
                .update_ensemble(
                    EnsembleUpdate::New {
                        ensemble: list.iter().copied(),
                    },
                    version,
                )
                .await
        }
        None => {
            let (joinings, leavings) = ([add.as_str()], [remove.as_str()]);
            let update = EnsembleUpdate::Incremental {
                joinings: joinings.iter().copied(),
                leavings: leavings.iter().copied(),
            };
            client.update_ensemble(update, version).await
        }
    };
    // zkCli reports reconfig failures with an empty path ("version No is not valid : ").
    let (data, stat) = result.map_err(|e| fail(out, &e, ""))?;
    out.outln(format!(
        "Committed new configuration:\n{}",
        String::from_utf8_lossy(&data)
    ));
    if p.has("s") {
        out.out(format_stat(&stat));
    }
    Ok(())
}

fn quota_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}")
}

/// Reads a quota node as a StatsTrack.
async fn read_track(client: &Client, path: &str) -> Result<StatsTrack, Error> {
    let (data, _) = client.get_data(path).await?;
    StatsTrack::parse(&String::from_utf8_lossy(&data)).map_err(|_| Error::MarshallingError)
}

/// `setquota`: writes the limits node under `/zookeeper/quota` like zkCli 3.8 (the server
/// keeps the stats node up to date). Plain client operations; no crate support needed.
async fn setquota(client: &Client, args: &[String], out: &mut Out) -> CmdResult {
    let p = parse(
        out,
        "setquota",
        args,
        &[valued("n"), valued("b"), valued("N"), valued("B")],
    )?;
    let chosen: Vec<&str> = ["n", "b", "N", "B"]
        .into_iter()
        .filter(|o| p.has(o))
        .collect();
    if chosen.len() != 1 {
        if chosen.is_empty() {
            out.errln("Missing required option: [-n num soft quota, -b bytes soft quota, -N num hard quota, -B bytes hard quota]");
        } else {
            out.errln("Only one of -n, -b, -N, -B may be given");
        }
        out.errln(format::usage_of("setquota"));
        return Err(Failed);
    }
    let option = chosen[0];
    let value = match p.value(option).unwrap_or_default().parse::<i64>() {
        Ok(v) => v,
        Err(_) => {
            out.errln("NumberFormatException happens when parsing the option value");
            return Err(Failed);
        }
    };
    if matches!(option, "n" | "N") && value <= 0 {
        out.errln("the num quota must be greater than zero");
        return Err(Failed);
    }
    if matches!(option, "b" | "B") && value < 0 {
        out.errln("the bytes quota must be greater than or equal to zero");
        return Err(Failed);
    }
    let Some(path) = p.args.first() else {
        out.errln(format::usage_of("setquota"));
        return Err(Failed);
    };
    if path.starts_with(QUOTA_ROOT) {
        out.errln(format!("cannot set a quota under the path: {QUOTA_ROOT}"));
        return Err(Failed);
    }
    let path = checked_path(out, path, false)?;
    if path == "/" {
        out.errln("Path must not end with / character");
        return Err(Failed);
    }
    match client.check_stat(&path).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            out.errln(format!("{path} does not exist."));
            return Err(Failed);
        }
        Err(e) => return Err(fail(out, &e, &path)),
    }
    // No quota on a descendant...
    let mut stack = vec![quota_path(&path)];
    while let Some(node) = stack.pop() {
        let children = match client.list_children(&node).await {
            Ok(c) => c,
            Err(Error::NoNode) => continue,
            Err(e) => return Err(fail(out, &e, &node)),
        };
        for child in children {
            if child == QUOTA_LIMITS && node != quota_path(&path) {
                out.errln(format!(
                    "{path} has a child {} which has a quota",
                    &node[QUOTA_ROOT.len()..]
                ));
                return Err(Failed);
            }
            if child != QUOTA_LIMITS && child != QUOTA_STATS {
                stack.push(line::join_path(&node, &child));
            }
        }
    }
    // ...nor on an ancestor.
    let mut ancestor = String::new();
    for part in path.split('/').filter(|s| !s.is_empty()) {
        ancestor.push('/');
        ancestor.push_str(part);
        if ancestor == path {
            break;
        }
        match client
            .check_stat(&format!("{}/{QUOTA_LIMITS}", quota_path(&ancestor)))
            .await
        {
            Ok(Some(_)) => {
                out.errln(format!("{path} has a parent {ancestor} which has a quota"));
                return Err(Failed);
            }
            Ok(None) => {}
            Err(e) => return Err(fail(out, &e, &ancestor)),
        }
    }
    let persistent = CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    let mut node = QUOTA_ROOT.to_string();
    for part in path.split('/').filter(|s| !s.is_empty()) {
        node.push('/');
        node.push_str(part);
        match client.create(&node, &[], &persistent).await {
            Ok(_) | Err(Error::NodeExists) => {}
            Err(e) => return Err(fail(out, &e, &node)),
        }
    }
    let key = match option {
        "n" => line::QUOTA_COUNT,
        "b" => line::QUOTA_BYTES,
        "N" => line::QUOTA_COUNT_HARD,
        _ => line::QUOTA_BYTES_HARD,
    };
    let limits_path = format!("{node}/{QUOTA_LIMITS}");
    let mut limits = StatsTrack::default();
    for k in [
        line::QUOTA_COUNT,
        line::QUOTA_BYTES,
        line::QUOTA_COUNT_HARD,
        line::QUOTA_BYTES_HARD,
    ] {
        limits.set(k, -1);
    }
    limits.set(key, value);
    match client
        .create(&limits_path, limits.to_string().as_bytes(), &persistent)
        .await
    {
        Ok(_) => {
            let stats_path = format!("{node}/{QUOTA_STATS}");
            let mut stats = StatsTrack::default();
            stats.set(line::QUOTA_COUNT, 0);
            stats.set(line::QUOTA_BYTES, 0);
            match client
                .create(&stats_path, stats.to_string().as_bytes(), &persistent)
                .await
            {
                Ok(_) | Err(Error::NodeExists) => Ok(()),
                Err(e) => Err(fail(out, &e, &stats_path)),
            }
        }
        Err(Error::NodeExists) => {
            let mut existing = read_track(client, &limits_path)
                .await
                .map_err(|e| fail(out, &e, &limits_path))?;
            existing.set(key, value);
            client
                .set_data(&limits_path, existing.to_string().as_bytes(), None)
                .await
                .map(|_| ())
                .map_err(|e| fail(out, &e, &limits_path))
        }
        Err(e) => Err(fail(out, &e, &limits_path)),
    }
}

async fn listquota(client: &Client, args: &[String], out: &mut Out) -> CmdResult {
    let path = one_path(out, "listquota", args, false)?;
    let limits_path = format!("{}/{QUOTA_LIMITS}", quota_path(&path));
    out.errln(format!("absolute path is {limits_path}"));
    let limits = match read_track(client, &limits_path).await {
        Ok(t) => t,
        Err(Error::NoNode) => {
            out.errln(format!("quota for {path} does not exist."));
            return Ok(());
        }
        Err(e) => return Err(fail(out, &e, &limits_path)),
    };
    out.outln(format!("Output quota for {path} {limits}"));
    let stats_path = format!("{}/{QUOTA_STATS}", quota_path(&path));
    match read_track(client, &stats_path).await {
        Ok(stats) => out.outln(format!("Output stat for {path} {stats}")),
        Err(Error::NoNode) => {}
        Err(e) => return Err(fail(out, &e, &stats_path)),
    }
    Ok(())
}

async fn delquota(client: &Client, args: &[String], out: &mut Out) -> CmdResult {
    let p = parse(
        out,
        "delquota",
        args,
        &[flag("n"), flag("b"), flag("N"), flag("B")],
    )?;
    let path = one_path(out, "delquota", &p.args, false)?;
    let parent = quota_path(&path);
    let limits_path = format!("{parent}/{QUOTA_LIMITS}");
    let mut limits = match read_track(client, &limits_path).await {
        Ok(t) => t,
        Err(Error::NoNode) => {
            out.outln(format!("Quota does not exist for {path}"));
            return Ok(());
        }
        Err(e) => return Err(fail(out, &e, &limits_path)),
    };
    let key = if p.has("n") {
        Some(line::QUOTA_COUNT)
    } else if p.has("b") {
        Some(line::QUOTA_BYTES)
    } else if p.has("N") {
        Some(line::QUOTA_COUNT_HARD)
    } else if p.has("B") {
        Some(line::QUOTA_BYTES_HARD)
    } else {
        None
    };
    if let Some(key) = key {
        limits.set(key, -1);
        return client
            .set_data(&limits_path, limits.to_string().as_bytes(), None)
            .await
            .map(|_| ())
            .map_err(|e| fail(out, &e, &limits_path));
    }
    let children = client
        .list_children(&parent)
        .await
        .map_err(|e| fail(out, &e, &parent))?;
    for child in children {
        let child = line::join_path(&parent, &child);
        client
            .delete(&child, None)
            .await
            .map_err(|e| fail(out, &e, &child))?;
    }
    // Trim now-empty quota directories up to /zookeeper/quota.
    let mut node = parent;
    while node != QUOTA_ROOT && node.starts_with(QUOTA_ROOT) {
        match client.list_children(&node).await {
            Ok(c) if c.is_empty() => {
                if let Err(e) = client.delete(&node, None).await {
                    return Err(fail(out, &e, &node));
                }
            }
            _ => break,
        }
        node = line::parent_of(&node).to_string();
    }
    Ok(())
}

impl Drop for Shell {
    fn drop(&mut self) {
        self.drop_session();
    }
}
