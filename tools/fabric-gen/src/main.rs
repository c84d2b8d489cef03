//! `fabric-gen N > fabric.kdl`: writes a valid fabric with about N declarations.

use std::io::Write as _;

fn main() {
    let count = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let _ = std::io::stdout().write_all(fabric_gen::fabric(count).as_bytes());
}
