//! Integration tests of `companion-admin`: one binary, modules by feature, dev tenants on port 0 in process.

mod acceptance;
mod action;
mod cli;
mod provision;
mod support;
