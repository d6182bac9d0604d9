//! Harness of the end-to-end suite: starts the dev tenant and drives a real browser against it.
