//! The load generator's runtime: one thread runs every session's task and
//! polls the sockets itself.
//!
//! Why not tokio: the `zookeeper-client` crate does its IO through
//! `async-io`, whose reactor runs on its own thread unless someone blocks in
//! `async_io::block_on`. Under a tokio runtime every reply therefore took two
//! thread wake-ups (the reactor thread, then a tokio worker), and the load
//! generator spent about as much CPU as a server did — on a small machine
//! that CPU is taken from the servers it measures. Here the thread that runs
//! the tasks is the one that waits in the reactor: a reply wakes one thread,
//! and the load generator never uses more than one core.
//!
//! Tasks that the client crate spawns land on the same executor (through
//! the `spawns` scope it spawns with). Timers are `async-io`'s, which keep
//! sub-millisecond precision (open-loop pacing needs it).
//!
//! Touches: the clock and, through the client crate, the network.

use async_executor::Executor;
use futures::future::Either;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use spawns_core::{JoinHandle, spawn};

/// Hands the tasks that `spawns_core::spawn` creates to our executor.
struct Spawner(Arc<Executor<'static>>);

impl spawns_core::Spawn for Spawner {
    fn spawn(&self, task: spawns_core::Task) {
        self.0.spawn(Box::into_pin(task.future)).detach();
    }
}

/// Runs `future` and every task spawned meanwhile on this thread, until
/// `future` completes. Tasks still running then are dropped with the executor.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let executor = Arc::new(Executor::new());
    let spawner = Spawner(executor.clone());
    let _scope = spawns_core::enter(&spawner);
    async_io::block_on(executor.run(future))
}

/// `future`'s output, or None if `deadline` comes first.
pub async fn until<F: Future>(deadline: Instant, future: F) -> Option<F::Output> {
    let future = std::pin::pin!(future);
    match futures::future::select(future, async_io::Timer::at(deadline)).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(_) => None,
    }
}

/// `future`'s output, or None if it takes longer than `limit`.
pub async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    until(Instant::now() + limit, future).await
}

pub async fn sleep(duration: Duration) {
    async_io::Timer::after(duration).await;
}

pub async fn sleep_until(deadline: Instant) {
    async_io::Timer::at(deadline).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_tasks_and_timers_run_on_the_calling_thread() {
        let here = std::thread::current().id();
        let (ran_on, late) = block_on(async {
            let task = spawn(async { std::thread::current().id() });
            let ran_on = task.await.expect("task finished");
            let start = Instant::now();
            sleep(Duration::from_millis(5)).await;
            (ran_on, start.elapsed())
        });
        assert_eq!(ran_on, here);
        assert!(late >= Duration::from_millis(5));
    }

    #[test]
    fn timeout_gives_up_and_passes_results_through() {
        block_on(async {
            let never = std::future::pending::<()>();
            assert_eq!(timeout(Duration::from_millis(5), never).await, None);
            assert_eq!(timeout(Duration::from_secs(5), async { 7 }).await, Some(7));
        });
    }
}
