//! Passkey Companion desktop app: the binary only starts the library's [`passkey_companion::run`].

// Release builds on Windows are GUI applications without a console window.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    passkey_companion::run()
}
