//! The IO shell of `rzk bench`: opens the sessions, creates the run's znodes,
//! drives the load (closed or open loop), prints progress, and removes what it
//! created. Touches the network (through `zookeeper-client`), the clock and
//! stderr; all decisions come from `workload`, `pacing` and `report`.

use crate::bench::exec;
use crate::bench::pacing::Pacer;
use crate::bench::report::Recorder;
use crate::bench::workload::{Layout, OpKind, Workload};
use anyhow::Context as _;
use futures::future::join_all;
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions, Error as ZkError, SessionState};

/// How long a watch notification may take before it counts as lost.
const WATCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests in flight at once while creating or deleting the run's znodes.
const SETUP_BATCH: usize = 256;
/// Longest the run's own sessions get to clean up before a fresh session takes over.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long after the measured window a request may still be answered (or an
/// open-loop run that fell behind may still send) before it is abandoned.
const END_GRACE: Duration = Duration::from_secs(2);

/// Everything one run needs, already validated.
#[derive(Clone, Debug)]
pub struct Plan {
    pub servers: String,
    /// The connect string of each session (see [`super::session_servers`]).
    pub session_servers: Vec<String>,
    pub clients: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub value: Vec<u8>,
    pub workload: Workload,
    pub rate: Option<f64>,
    pub layout: Layout,
    pub root: String,
    pub keys: usize,
    pub connect_timeout: Duration,
    pub progress: bool,
}

/// What a run produced: merged results and the real length of the measured window.
pub struct Outcome {
    pub recorder: Recorder,
    pub measured: Duration,
}

fn persistent() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

/// A short, stable name for an error: the variant name without its payload.
pub fn error_name(error: &ZkError) -> String {
    let debug = format!("{error:?}");
    debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("Error")
        .to_string()
}

/// Errors after which a session is useless, so its client stops instead of spinning.
fn is_fatal(error: &ZkError) -> bool {
    matches!(
        error,
        ZkError::SessionExpired | ZkError::ClientClosed | ZkError::AuthFailed
    )
}

/// Pause between connection attempts while a server is not (yet) accepting sessions.
const CONNECT_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Opens one session. Each attempt tries every server once (fail-eagerly, so an
/// unreachable ensemble is an error rather than an endless retry); attempts
/// repeat until `timeout`, because a server that is still starting refuses
/// sessions for a moment.
pub async fn connect(servers: &str, timeout: Duration) -> anyhow::Result<Client> {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let connector = Client::connector()
            .with_session_timeout(Duration::from_secs(30))
            .with_connection_timeout(
                remaining.clamp(Duration::from_millis(100), Duration::from_secs(5)),
            )
            .with_fail_eagerly();
        let error = match exec::timeout(remaining, connector.connect(servers)).await {
            Some(Ok(client)) => return Ok(client),
            Some(Err(error)) => error.to_string(),
            None => "no session".to_string(),
        };
        if Instant::now() + CONNECT_RETRY_PAUSE >= deadline {
            anyhow::bail!("cannot connect to {servers} within {timeout:?}: {error}");
        }
        exec::sleep(CONNECT_RETRY_PAUSE).await;
    }
}

async fn create_ignoring_existing(client: &Client, path: &str, data: &[u8]) -> Result<(), ZkError> {
    match client.create(path, data, &persistent()).await {
        Ok(_) | Err(ZkError::NodeExists) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Creates the run directory, the shared keys and the per-client directories.
async fn set_up(plan: &Plan, clients: &[Client]) -> anyhow::Result<()> {
    let layout = &plan.layout;
    let first = &clients[0];
    match first.mkdir(&plan.root, &persistent()).await {
        Ok(()) | Err(ZkError::NodeExists) => {}
        Err(error) => {
            return Err(error).with_context(|| format!("cannot create root {}", plan.root));
        }
    }
    first
        .create(layout.run_dir(), b"", &persistent())
        .await
        .with_context(|| format!("cannot create {}", layout.run_dir()))?;
    if plan.workload.needs_keys() {
        create_ignoring_existing(first, &layout.keys_dir(), b"").await?;
        let keys: Vec<String> = (0..plan.keys).map(|index| layout.key(index)).collect();
        for (batch_index, batch) in keys.chunks(SETUP_BATCH).enumerate() {
            let client = &clients[batch_index % clients.len()];
            let results = join_all(
                batch
                    .iter()
                    .map(|key| create_ignoring_existing(client, key, &plan.value)),
            )
            .await;
            results
                .into_iter()
                .collect::<Result<(), _>>()
                .context("cannot create the benchmark keys")?;
        }
    }
    let results = join_all(
        clients
            .iter()
            .enumerate()
            .map(|(index, client)| async move {
                create_ignoring_existing(client, &layout.client_dir(index), b"").await?;
                if plan.workload == Workload::Watch {
                    create_ignoring_existing(client, &layout.watched_node(index), &plan.value)
                        .await?;
                }
                Ok::<(), ZkError>(())
            }),
    )
    .await;
    results
        .into_iter()
        .collect::<Result<(), _>>()
        .context("cannot create the client directories")?;
    Ok(())
}

/// Deletes `path` and everything below it, `SETUP_BATCH` requests at a time.
async fn delete_tree(client: &Client, path: &str) -> Result<(), ZkError> {
    let children = match client.list_children(path).await {
        Ok(children) => children,
        Err(ZkError::NoNode) => return Ok(()),
        Err(error) => return Err(error),
    };
    let base = path.trim_end_matches('/');
    let child_paths: Vec<String> = children
        .iter()
        .map(|child| format!("{base}/{child}"))
        .collect();
    for batch in child_paths.chunks(SETUP_BATCH) {
        let results = join_all(batch.iter().map(|child| client.delete(child, None))).await;
        for (child, result) in batch.iter().zip(results) {
            match result {
                Ok(()) | Err(ZkError::NoNode) => {}
                Err(ZkError::NotEmpty) => Box::pin(delete_tree(client, child)).await?,
                Err(error) => return Err(error),
            }
        }
    }
    match client.delete(path, None).await {
        Ok(()) | Err(ZkError::NoNode) => Ok(()),
        Err(ZkError::NotEmpty) => Box::pin(delete_tree(client, path)).await,
        Err(error) => Err(error),
    }
}

/// Removes the run directory; then the root too if no other run is using it.
/// Cleans up with the run's sessions, or, if they are broken (the server
/// restarted, the session expired), with one fresh session.
async fn clean_up_with_retry(plan: &Plan, clients: &[Client]) -> anyhow::Result<()> {
    let connected = clients
        .iter()
        .all(|client| client.state() == SessionState::SyncConnected);
    if connected && let Some(Ok(())) = exec::timeout(CLEANUP_TIMEOUT, clean_up(plan, clients)).await
    {
        return Ok(());
    }
    let fresh = connect(&plan.servers, plan.connect_timeout).await?;
    clean_up(plan, &vec![fresh; clients.len()]).await
}

async fn clean_up(plan: &Plan, clients: &[Client]) -> anyhow::Result<()> {
    let layout = &plan.layout;
    let per_client =
        join_all(
            clients
                .iter()
                .enumerate()
                .map(|(index, client)| async move {
                    delete_tree(client, &layout.client_dir(index)).await
                }),
        )
        .await;
    per_client
        .into_iter()
        .collect::<Result<(), _>>()
        .context("cannot delete the client directories")?;
    delete_tree(&clients[0], layout.run_dir())
        .await
        .with_context(|| format!("cannot delete {}", layout.run_dir()))?;
    // Other runs may share the root; NotEmpty just means they are still there.
    let _ = clients[0].delete(&plan.root, None).await;
    Ok(())
}

/// Counters shared between the load tasks and the progress printer.
struct Shared {
    completed: AtomicU64,
    errors: AtomicU64,
    done: AtomicBool,
    /// Set on Ctrl-C: clients stop sending, the partial results are reported
    /// and the znodes are still cleaned up.
    interrupted: Arc<AtomicBool>,
}

/// The fixed instants of a run.
#[derive(Clone, Copy)]
struct Clock {
    start: Instant,
    measure_from: Instant,
    end: Instant,
}

/// One completed request of an iteration.
struct Step {
    kind: OpKind,
    latency: Duration,
    result: Result<(), ZkError>,
}

fn push_step(steps: &mut Vec<Step>, kind: OpKind, result: Result<(), ZkError>, since: Instant) {
    steps.push(Step {
        kind,
        latency: since.elapsed(),
        result,
    });
}

/// The random choices and timing of one iteration.
struct Iteration {
    client_index: usize,
    sequence: u64,
    key: usize,
    roll: u32,
    /// What the first request's latency counts from: its intended send time
    /// when the client is behind schedule, else its real send time.
    intended: Instant,
}

/// Performs one iteration of the workload; the first request's latency counts
/// from the intended send time, later ones from their own send.
async fn iterate(client: &Client, plan: &Plan, it: &Iteration, steps: &mut Vec<Step>) {
    let layout = &plan.layout;
    let mut since = it.intended;
    match plan.workload {
        Workload::Watch => {
            let node = layout.watched_node(it.client_index);
            let watcher = match client.get_and_watch_data(&node).await {
                Ok((_, _, watcher)) => {
                    push_step(steps, OpKind::Get, Ok(()), since);
                    watcher
                }
                Err(error) => return push_step(steps, OpKind::Get, Err(error), since),
            };
            // The notification may arrive before the set's reply, so it is
            // awaited concurrently and timestamped where it lands.
            let mut notified = exec::spawn(async move {
                watcher.changed().await;
                Instant::now()
            });
            since = Instant::now();
            let set = client.set_data(&node, &plan.value, None).await.map(drop);
            let set_failed = set.is_err();
            push_step(steps, OpKind::Set, set, since);
            if set_failed {
                notified.cancel();
                return;
            }
            match exec::timeout(WATCH_TIMEOUT, &mut notified).await {
                Some(Ok(at)) => steps.push(Step {
                    kind: OpKind::Watch,
                    latency: at - since,
                    result: Ok(()),
                }),
                Some(Err(_)) => push_step(steps, OpKind::Watch, Err(ZkError::ClientClosed), since),
                None => {
                    notified.cancel();
                    push_step(steps, OpKind::Watch, Err(ZkError::Timeout), since)
                }
            }
        }
        workload => {
            let key_path = layout.key(it.key);
            let own_path = layout.client_node(it.client_index, it.sequence);
            for &kind in workload.iteration(it.roll) {
                let result = match kind {
                    OpKind::Create => client
                        .create(&own_path, &plan.value, &persistent())
                        .await
                        .map(drop),
                    OpKind::Delete => client.delete(&own_path, None).await,
                    OpKind::Get => client.get_data(&key_path).await.map(drop),
                    OpKind::Set => client
                        .set_data(&key_path, &plan.value, None)
                        .await
                        .map(drop),
                    OpKind::Exists => client.check_stat(&key_path).await.map(drop),
                    OpKind::Children => client.list_children(&layout.keys_dir()).await.map(drop),
                    OpKind::Watch => Ok(()),
                };
                let failed = result.is_err();
                push_step(steps, kind, result, since);
                if failed {
                    return;
                }
                since = Instant::now();
            }
        }
    }
}

/// One session's load loop.
async fn drive(
    client: Client,
    index: usize,
    plan: Arc<Plan>,
    clock: Clock,
    shared: Arc<Shared>,
) -> Recorder {
    let mut recorder = Recorder::default();
    let mut rng =
        SmallRng::seed_from_u64(0x5eed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut pacer = plan
        .rate
        .and_then(|rate| Pacer::new(rate, plan.clients, index));
    let mut steps = Vec::with_capacity(3);
    let mut sequence = 0u64;
    loop {
        let intended = match pacer.as_mut() {
            Some(pacer) => clock.start + pacer.next_offset(),
            None => Instant::now(),
        };
        if intended >= clock.end
            || Instant::now() >= clock.end + END_GRACE
            || shared.interrupted.load(Ordering::Relaxed)
        {
            break;
        }
        // On schedule, the client sleeps until the intended time; the timer may
        // wake it a little late (a busy machine), and that lateness is the
        // client's, so latency counts from the real send.
        // Behind schedule, it was held up by the server's earlier replies, so
        // latency counts from the intended time: that wait is the server's.
        let send_from = if intended > Instant::now() {
            exec::sleep_until(intended).await;
            Instant::now()
        } else {
            intended
        };
        let measured = intended >= clock.measure_from;
        let iteration = Iteration {
            client_index: index,
            sequence,
            key: rng.random_range(0..plan.keys.max(1)),
            roll: rng.random_range(0..100u32),
            intended: send_from,
        };
        steps.clear();
        // A request still unanswered when the run is over (server gone, session
        // reconnecting) is abandoned and counted, instead of stretching the run.
        let deadline = clock.end + END_GRACE;
        let finished = exec::until(deadline, iterate(&client, &plan, &iteration, &mut steps))
            .await
            .is_some();
        if !finished {
            let kinds = plan.workload.iteration(iteration.roll);
            let kind = kinds[steps.len().min(kinds.len() - 1)];
            push_step(&mut steps, kind, Err(ZkError::Timeout), iteration.intended);
        }
        sequence += 1;
        let mut fatal = false;
        for step in &steps {
            shared.completed.fetch_add(1, Ordering::Relaxed);
            match &step.result {
                Ok(()) if measured => recorder.record_success(step.kind, step.latency),
                Ok(()) => {}
                Err(error) => {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                    if measured {
                        recorder.record_error(step.kind, &error_name(error));
                    }
                    fatal |= is_fatal(error);
                }
            }
        }
        if fatal {
            break;
        }
    }
    // Requests the schedule wanted sent in the measured window but that never
    // went out (the server could not keep up, or the session died) are errors,
    // not silently dropped samples.
    let interrupted = shared.interrupted.load(Ordering::Relaxed);
    if let Some(pacer) = pacer.as_mut().filter(|_| !interrupted) {
        let mut missed = 0u64;
        loop {
            let intended = clock.start + pacer.next_offset();
            if intended >= clock.end {
                break;
            }
            missed += u64::from(intended >= clock.measure_from);
        }
        let first = plan.workload.iteration(0)[0];
        recorder.record_errors(first, "NotSent", missed);
    }
    recorder
}

/// Prints one progress line per second to stderr until the run is done.
async fn report_progress(clock: Clock, shared: Arc<Shared>) {
    let mut previous = 0u64;
    let mut next = clock.start;
    while !shared.done.load(Ordering::Relaxed) {
        next += Duration::from_secs(1);
        exec::sleep_until(next).await;
        let now = next;
        if shared.done.load(Ordering::Relaxed) {
            break;
        }
        let completed = shared.completed.load(Ordering::Relaxed);
        let phase = if now <= clock.measure_from {
            "warm-up"
        } else {
            "measure"
        };
        eprintln!(
            "[{:>4.0}s] {phase} {:>9} req/s  {:>10} requests  {} errors",
            (now - clock.start).as_secs_f64(),
            completed - previous,
            completed,
            shared.errors.load(Ordering::Relaxed)
        );
        previous = completed;
    }
}

/// Lets the first Ctrl-C set `interrupted`; a second one ends the process at
/// once (exit status 130, as a shell reports SIGINT).
fn catch_interrupt(interrupted: &Arc<AtomicBool>) {
    use signal_hook::consts::SIGINT;
    // The conditional shutdown goes first: it fires only once the flag is
    // already set, that is on the second signal.
    let registered =
        signal_hook::flag::register_conditional_shutdown(SIGINT, 130, interrupted.clone())
            .and_then(|_| signal_hook::flag::register(SIGINT, interrupted.clone()));
    if let Err(error) = registered {
        eprintln!("rzk bench: warning: cannot catch Ctrl-C: {error}");
    }
}

/// Runs the whole benchmark: connect, set up, load, clean up.
pub async fn execute(plan: Plan) -> anyhow::Result<Outcome> {
    let connections = join_all(
        plan.session_servers
            .iter()
            .map(|servers| connect(servers, plan.connect_timeout)),
    )
    .await;
    let clients: Vec<Client> = connections.into_iter().collect::<anyhow::Result<_>>()?;
    if let Err(error) = set_up(&plan, &clients).await {
        // Remove whatever part of the run directory was created before failing.
        let _ = clean_up(&plan, &clients).await;
        return Err(error);
    }

    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let clock = Clock {
        start,
        measure_from,
        end: measure_from + plan.duration,
    };
    let shared = Arc::new(Shared {
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        done: AtomicBool::new(false),
        interrupted: Arc::new(AtomicBool::new(false)),
    });
    let plan = Arc::new(plan);
    let progress = plan
        .progress
        .then(|| exec::spawn(report_progress(clock, shared.clone())));
    catch_interrupt(&shared.interrupted);
    let tasks: Vec<_> = clients
        .iter()
        .cloned()
        .enumerate()
        .map(|(index, client)| {
            exec::spawn(drive(client, index, plan.clone(), clock, shared.clone()))
        })
        .collect();
    let mut recorder = Recorder::default();
    for task in join_all(tasks).await {
        match task {
            Ok(finished) => recorder.merge(&finished),
            Err(error) => anyhow::bail!("a load task failed: {error:?}"),
        }
    }
    let finished = Instant::now();
    shared.done.store(true, Ordering::Relaxed);
    if let Some(progress) = progress {
        progress.cancel();
    }
    // Throughput is per scheduled second of measurement: requests started in
    // the window and answered shortly after it still count, abandoned ones are
    // errors. An interrupted run measured only up to the interruption.
    let interrupted = shared.interrupted.load(Ordering::Relaxed);
    if interrupted {
        eprintln!("rzk bench: interrupted; reporting what was measured and cleaning up");
    }
    let measured = if interrupted {
        finished
            .min(clock.end)
            .saturating_duration_since(measure_from)
    } else {
        plan.duration
    }
    .max(Duration::from_millis(1));

    if let Err(error) = clean_up_with_retry(&plan, &clients).await {
        eprintln!(
            "rzk bench: warning: cleanup incomplete, remove {} by hand: {error:#}",
            plan.layout.run_dir()
        );
    }
    close_sessions(clients).await;
    Ok(Outcome { recorder, measured })
}

/// Longest the sessions get to close at the end of a run.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Closes the sessions (dropping a client sends closeSession from a task of
/// the client crate) and waits for it, so no session of this run lingers on
/// the servers until it expires, into the next run.
async fn close_sessions(clients: Vec<Client>) {
    let watchers: Vec<_> = clients.iter().map(Client::state_watcher).collect();
    drop(clients);
    let closed = join_all(watchers.into_iter().map(|mut watcher| async move {
        while !watcher.state().is_terminated() {
            watcher.changed().await;
        }
    }));
    let _ = exec::timeout(CLOSE_TIMEOUT, closed).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_drop_payloads() {
        assert_eq!(error_name(&ZkError::ConnectionLoss), "ConnectionLoss");
        assert_eq!(
            error_name(&ZkError::UnexpectedErrorCode(-999)),
            "UnexpectedErrorCode"
        );
        assert_eq!(
            error_name(&ZkError::UnexpectedError("boom".into())),
            "UnexpectedError"
        );
    }

    #[test]
    fn only_session_ending_errors_are_fatal() {
        assert!(is_fatal(&ZkError::SessionExpired));
        assert!(is_fatal(&ZkError::ClientClosed));
        assert!(!is_fatal(&ZkError::ConnectionLoss));
        assert!(!is_fatal(&ZkError::NoNode));
    }
}
