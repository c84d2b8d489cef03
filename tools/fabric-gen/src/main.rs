//! `fabric-gen N > fabric.kdl`: writes a valid fabric with about N declarations;
//! `fabric-gen serves N`: N one-replica serves on one site (the build benchmark's peer workload).

use std::io::Write as _;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |at: usize| args.get(at).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let text = match args.first().map(String::as_str) {
        Some("serves") => fabric_gen::serves(number(1)),
        _ => fabric_gen::fabric(number(0)),
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
}
