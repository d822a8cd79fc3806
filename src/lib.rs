//! rzk: a ZooKeeper-compatible coordination service and Kubernetes operator.
//!
//! Layout: pure cores (`jute`, `proto`, `tree`, `session`) take inputs and
//! return outputs with no IO; shells (`server`, `storage`) wire them to
//! sockets, disks and clocks.

pub mod bench;
pub mod cli;
pub mod config;
pub mod jute;
pub mod operator;
pub mod processor;
pub mod proto;
pub mod quorum;
pub mod server;
pub mod session;
pub mod storage;
pub mod tree;
