//! Where a fabric's workloads run on a cluster: one namespace per module.
//! Every target names namespaces through here, so a Helm release, a
//! NetworkPolicy and a Deployment agree on where a workload is.

/// The modules of a fabric, each its own namespace on a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Module {
    /// I: durable workflows (Temporal).
    Metabolism,
    /// II: telemetry (the OpenTelemetry Collector).
    Autopilot,
    /// III: inference and retrieval (vLLM, Qdrant).
    Kinetic,
    /// IV: evaluation gates.
    Alchemist,
    /// The eBPF agent of II, apart: the one workload that needs privileges.
    Ebpf,
}

impl Module {
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Module::Metabolism => "metabolism",
            Module::Autopilot => "autopilot",
            Module::Kinetic => "kinetic",
            Module::Alchemist => "alchemist",
            Module::Ebpf => "ebpf",
        }
    }
}

/// `<fabric>-<module>` (`lab-kinetic`), a DNS label: the fabric part is
/// cut so the whole stays within 63 characters.
#[must_use]
pub fn namespace_name(fabric: &str, module: Module) -> String {
    let room = 63 - module.word().len() - 1;
    let fabric: String = fabric.chars().take(room).collect();
    format!("{}-{}", fabric.trim_end_matches(['-', '.']).replace('.', "-"), module.word())
}

/// The port every vLLM serve listens on, and its Service exposes
/// (vllm-project/vllm `entrypoints/openai/cli_args.py`).
pub const SERVE_PORT: u16 = 8000;

/// An RFC 1123 name: lowercase letters, digits and `-`, one `-` for any
/// run of other characters, none at either end (a K3s AddOn is named after
/// its file, so file names follow it too).
#[must_use]
pub fn rfc1123(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// An RFC 1123 label: [`rfc1123`] cut to 63 characters (object names,
/// release names).
#[must_use]
pub fn dns_label(text: &str) -> String {
    let mut out = rfc1123(text);
    out.truncate(63);
    out.trim_end_matches('-').to_owned()
}

/// The Service of a serve, on every cluster it runs on: what its clients
/// (an eval's schedule, the flow policies) name.
#[must_use]
pub fn serve_service(serve: &str) -> String {
    dns_label(serve)
}
