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
