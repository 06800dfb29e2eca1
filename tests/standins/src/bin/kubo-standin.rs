//! Kubo RPC API stand-in (`/api/v0/add`, `/api/v0/version`); see UPSTREAM.md.
fn main() {
    standins::main_for(standins::Kind::Kubo);
}
