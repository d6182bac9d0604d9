//! Project automation for Passkey Companion: `cargo xtask test`, `cargo xtask demo`.

fn main() {
    eprintln!("xtask: not implemented yet");
    std::process::exit(2);
}
