//! Leader election on a coordination.k8s.io Lease (through `kube-lease-manager`), so that of
//! several operator replicas exactly one reconciles. Only IO glue: the protocol lives in
//! that crate.

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

/// Holds the lease task; `is_leader` flips when leadership is gained or lost.
pub struct Election {
    pub is_leader: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
}

impl Election {
    /// Start campaigning for `lease_name` in `namespace` as `identity`, with a 15 s lease
    /// renewed 5 s before it expires.
    pub async fn start(
        client: Client,
        namespace: &str,
        lease_name: &str,
        identity: &str,
    ) -> anyhow::Result<Self> {
        Self::start_with(client, namespace, lease_name, identity, 15, 5).await
    }

    /// Like [`Election::start`] with explicit lease duration and grace period (seconds).
    pub async fn start_with(
        client: Client,
        namespace: &str,
        lease_name: &str,
        identity: &str,
        duration: u64,
        grace: u64,
    ) -> anyhow::Result<Self> {
        // No explicit field manager: the crate derives one per identity, and the lock relies
        // on server-side-apply conflicts between different managers.
        let manager = LeaseManagerBuilder::new(client, lease_name)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(duration)
            .with_grace(grace)
            .build()
            .await?;
        let (is_leader, task) = manager.watch().await;
        Ok(Self { is_leader, task })
    }

    /// Wait until this replica holds the lease.
    pub async fn acquired(&mut self) -> anyhow::Result<()> {
        while !*self.is_leader.borrow_and_update() {
            self.is_leader.changed().await?;
        }
        Ok(())
    }

    /// Resolves when leadership is lost (or the lease task ended).
    pub async fn lost(mut rx: watch::Receiver<bool>) {
        loop {
            if !*rx.borrow_and_update() {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Give the lease up (on shutdown), so another replica takes over at once: the lease
    /// task releases the lock when the last receiver is gone.
    pub async fn release(self) {
        drop(self.is_leader);
        match self.task.await {
            Ok(Ok(_manager)) => tracing::info!("lease released"),
            Ok(Err(e)) => tracing::warn!(error = %e, "lease manager failed"),
            Err(e) => tracing::warn!(error = %e, "lease task panicked"),
        }
    }
}
