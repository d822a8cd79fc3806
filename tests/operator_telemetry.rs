//! The operator's /metrics and /healthz endpoint, served on a loopback port and read over HTTP.

use std::sync::Arc;
use std::time::Duration;

use rzk::operator::telemetry::{self, Metrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .expect("response in time")
        .unwrap();
    response
}

#[tokio::test]
async fn serves_metrics_and_health() {
    let metrics = Arc::new(Metrics::new());
    metrics.reconciled("RestartPod", Duration::from_millis(20));
    metrics.reconciled("Done", Duration::from_millis(5));
    metrics.failed();
    metrics.set_phase("a/zk1", Some("Running"));
    metrics.set_phase("b/zk2", Some("Running"));
    metrics.set_phase("c/zk3", Some("Rolling"));
    metrics.set_phase("b/zk2", None);

    let listener = telemetry::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(telemetry::serve(listener, metrics.clone()));

    let health = get(addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let body = get(addr, "/metrics").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("application/openmetrics-text"), "{body}");
    for line in [
        "rzk_operator_reconciliations_total{action=\"RestartPod\"} 1",
        "rzk_operator_reconciliations_total{action=\"Done\"} 1",
        "rzk_operator_reconcile_errors_total 1",
        "rzk_operator_reconcile_duration_seconds_count 2",
        "rzk_operator_clusters{phase=\"Running\"} 1",
        "rzk_operator_clusters{phase=\"Rolling\"} 1",
    ] {
        assert!(body.contains(line), "missing {line} in\n{body}");
    }
    let missing = get(addr, "/nope").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    server.abort();
}
