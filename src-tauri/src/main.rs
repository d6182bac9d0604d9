//! Passkey Companion desktop app.

fn main() {}
