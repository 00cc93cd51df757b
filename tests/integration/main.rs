//! Integration tests: real wasm plugins built from `plugins/`, `examples/` and
//! `tests/fixtures/`, a real sled store in a temporary directory, and the real binary.

mod support;

mod admin_api;
mod algorithms;
mod authoring;
mod cli;
mod gpu;
mod hostile;
mod images;
mod packages;
mod python_client;
mod server;
mod server_abuse;
