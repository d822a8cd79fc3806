//! The operator's own telemetry: Prometheus metrics (reconciles, errors, durations, clusters
//! by phase) and a small HTTP endpoint serving `/metrics` and `/healthz`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

/// Metrics of the operator, registered in their own registry.
pub struct Metrics {
    registry: Registry,
    pub reconciliations: Family<ActionLabels, Counter>,
    pub failures: Counter,
    pub duration: Histogram,
    clusters_by_phase: Family<PhaseLabels, Gauge>,
    phases: Mutex<BTreeMap<String, String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rzk_operator");
        let reconciliations = Family::<ActionLabels, Counter>::default();
        let failures = Counter::default();
        let duration = Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        let clusters_by_phase = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "reconciliations",
            "Reconciliations, by the action they took",
            reconciliations.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconciliation",
            duration.clone(),
        );
        registry.register(
            "clusters",
            "ZookeeperClusters by phase",
            clusters_by_phase.clone(),
        );
        Self {
            registry,
            reconciliations,
            failures,
            duration,
            clusters_by_phase,
            phases: Mutex::new(BTreeMap::new()),
        }
    }

    /// Count one reconcile that chose `action` (e.g. `RestartPod`, `Wait`).
    pub fn reconciled(&self, action: &str, elapsed: Duration) {
        self.reconciliations
            .get_or_create(&ActionLabels {
                action: action.to_string(),
            })
            .inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    pub fn failed(&self) {
        self.failures.inc();
    }

    /// Record a cluster's phase (`None` when the cluster is gone).
    pub fn set_phase(&self, cluster: &str, phase: Option<&str>) {
        let mut phases = self.phases.lock().unwrap_or_else(|e| e.into_inner());
        match phase {
            Some(p) => {
                phases.insert(cluster.to_string(), p.to_string());
            }
            None => {
                phases.remove(cluster);
            }
        }
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for p in phases.values() {
            *counts.entry(p.as_str()).or_default() += 1;
        }
        self.clusters_by_phase.clear();
        for (p, n) in counts {
            self.clusters_by_phase
                .get_or_create(&PhaseLabels {
                    phase: p.to_string(),
                })
                .set(n);
        }
    }

    /// OpenMetrics text of all metrics.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// Answer one request of the telemetry endpoint.
pub fn handle(metrics: &Metrics, path: &str) -> Response<Full<Bytes>> {
    match path {
        "/metrics" => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        "/healthz" | "/readyz" => respond(StatusCode::OK, "text/plain", "ok\n".to_string()),
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        ),
    }
}

/// Serve `/metrics` and `/healthz` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "telemetry accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let response = handle(&metrics, req.uri().path());
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %e, "telemetry connection ended");
            }
        });
    }
}

/// Bind the telemetry endpoint.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
