//! Integration tests of companion-proxy: the real dev tenant and the proxy, both on port 0 in this process.

mod auth;
mod cli;
mod handlers;
mod harness;
mod limits;
mod login;
mod logs;
mod routes;
mod upstream;
