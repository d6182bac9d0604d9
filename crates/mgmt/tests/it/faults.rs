//! Fault injection on the dev tenant through the in-process API on its `Faults` (`state.faults`), and its log of
//! Management calls as an independent count of what reached the tenant.

pub(crate) use companion_devtenant::faults::FaultSpec;

use crate::harness::Tenant;

/// Adds a fault.
pub(crate) fn inject(tenant: &Tenant, spec: FaultSpec) {
    tenant
        .running
        .state
        .faults
        .add(spec)
        .expect("the dev tenant accepts the fault");
}

/// Removes every fault.
pub(crate) fn clear(tenant: &Tenant) {
    tenant.running.state.faults.clear();
}

/// Management calls the tenant saw with `method` under `path_prefix`.
pub(crate) fn mgmt_calls(tenant: &Tenant, method: &str, path_prefix: &str) -> usize {
    tenant
        .running
        .state
        .faults
        .count_mgmt_calls(method, path_prefix)
}
