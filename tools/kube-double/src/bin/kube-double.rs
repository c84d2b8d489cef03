//! `kube-double`: the API double as a process, for trying sovereign (or
//! kubectl) against it by hand and for the apply benchmark.
//!
//!   kube-double [--port P] [--kubeconfig FILE] [--schemas DIR] [--crd FILE]...
//!               [--node NAME]... [--namespace NAME]... [--latency-ms N] [--fault-rate R]

use std::path::PathBuf;
use std::time::Duration;

fn main() {
    let mut options = kube_double::Options::default();
    let mut kubeconfig = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| fail(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--port" => options.port = value().parse().unwrap_or_else(|_| fail("--port takes a number")),
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value())),
            "--schemas" => options.schemas = Some(PathBuf::from(value())),
            "--crd" => options.crds.push(PathBuf::from(value())),
            "--node" => options.nodes.push(value()),
            "--namespace" => options.namespaces.push(value()),
            "--latency-ms" => {
                options.latency =
                    Duration::from_millis(value().parse().unwrap_or_else(|_| fail("--latency-ms takes a number")))
            }
            "--fault-rate" => {
                options.faults.rate = value().parse().unwrap_or_else(|_| fail("--fault-rate takes a number"))
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    if options.schemas.is_none() {
        options.schemas = kube_double::kubernetes_validate_schemas("1.34.0");
    }
    let double = kube_double::ApiDouble::start(options).unwrap_or_else(|error| fail(&error));
    if let Some(path) = kubeconfig {
        double.write_kubeconfig(&path, "double").unwrap_or_else(|error| fail(&error.to_string()));
    }
    println!("{}", double.url());
    loop {
        std::thread::park();
    }
}

fn fail(message: &str) -> ! {
    eprintln!("kube-double: {message}");
    std::process::exit(2);
}
