//! ipfs-cluster v1.1.6 IPFS proxy stand-in (`/api/v0/add`); see UPSTREAM.md.
fn main() {
    standins::main_for(standins::Kind::Cluster);
}
