//! Integration tests of `companion-devtenant`: one binary, modules by feature, tenants on port 0 in process.

mod support;

mod faults;
mod mgmt;
mod mgmt_config;
mod oidc;
