//! `passkeys`: the command-line twin of the Passkey Companion desktop app.

fn main() {
    eprintln!("passkeys: not implemented yet");
    std::process::exit(2);
}
