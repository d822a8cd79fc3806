//! rzk: a ZooKeeper-compatible coordination service and Kubernetes operator.
//!
//! Layout: pure cores (`jute`, `proto`, `tree`, `session`) take inputs and
//! return outputs with no IO; shells (`server`, `storage`) wire them to
//! sockets, disks and clocks.

pub mod jute;
pub mod proto;
pub mod server;
pub mod cli;
pub mod bench;
pub mod operator;
