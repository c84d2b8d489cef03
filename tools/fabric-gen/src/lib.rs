//! Generates large valid fabrics for benchmarks: `declarations` top-level
//! declarations (sites with nodes, models, datasets, secrets, serves, vector
//! stores, evals and Temporal clusters), all referencing each other by name.

use std::fmt::Write as _;

/// A valid fabric with about `declarations` top-level declarations.
#[must_use]
pub fn fabric(declarations: usize) -> String {
    let mut out = String::with_capacity(declarations * 110);
    out.push_str("fabric \"bench\" {\n    residency \"eu\"\n}\n");
    let groups = declarations.div_ceil(8).max(1);
    for i in 0..groups {
        let _ = write!(
            out,
            "site \"site-{i}\" tier=\"server\" region=\"eu-central\" {{\n    cluster kind=\"k3s\" context=\"ctx-{i}\"\n    node \"gpu-{i}\" gpu=\"h100-80gb\" gpus=8 mig=#true cpu=64 memory=\"512GiB\"\n}}\n\
             model \"model-{i}\" base=\"llama-3.1-8b-instruct\" dtype=\"bf16\" source=\"pvc://weights-{i}/llama-3.1-8b\"\n\
             dataset \"data-{i}\" classification=\"internal\" residency=\"eu\"\n\
             secret \"token-{i}\" from=\"env:TOKEN_{i}\"\n\
             vectorstore \"store-{i}\" site=\"site-{i}\" {{\n    collection \"kb\" dims=1024 distance=\"cosine\"\n    storage \"100Gi\"\n}}\n\
             serve \"serve-{i}\" model=\"model-{i}\" site=\"site-{i}\" {{\n    mig \"3g.40gb\"\n    replicas 2\n    max-model-len 8192\n    uses \"store-{i}\"\n}}\n\
             temporal \"temporal-{i}\" site=\"site-{i}\" {{\n    persistence \"postgresql\" size=\"50Gi\"\n    namespace \"evals\" retention=\"30d\"\n}}\n\
             eval \"eval-{i}\" target=\"serve-{i}\" dataset=\"data-{i}\" {{\n    schedule \"0 2 * * *\"\n    metric \"accuracy\" min=0.85\n    runs-on \"temporal-{i}\" namespace=\"evals\"\n}}\n"
        );
    }
    out
}

/// A placement workload: one server site with `gpus` H100s (rounded up to
/// whole 8-GPU nodes; four in five nodes allow MIG) and serves totalling
/// `replicas` replicas: 40% on 3g.40gb, 30% on 2g.20gb, 20% on 1g.10gb and
/// 10% on one whole GPU, ten replicas per serve.
#[must_use]
pub fn placement(replicas: usize, gpus: usize) -> String {
    let mut out = String::from(
        "fabric \"placement\" {\n    residency \"eu\"\n}\nmodel \"small\" base=\"llama-3.2-1b-instruct\" dtype=\"bf16\"\n\
         site \"fra\" tier=\"server\" region=\"eu-central\" {\n    cluster kind=\"k3s\" context=\"fra\"\n",
    );
    let nodes = gpus.div_ceil(8);
    for n in 0..nodes {
        let mig = n % 5 != 4;
        let _ = writeln!(out, "    node \"gpu-{n:03}\" gpu=\"h100-80gb\" gpus=8 mig=#{mig}");
    }
    out.push_str("}\n");
    let serves = replicas.div_ceil(10);
    for s in 0..serves {
        let shape = match s % 10 {
            0..=3 => "mig \"3g.40gb\"",
            4..=6 => "mig \"2g.20gb\"",
            7 | 8 => "mig \"1g.10gb\"",
            _ => "gpus 1",
        };
        let count = 10.min(replicas - s * 10);
        let _ = writeln!(
            out,
            "serve \"serve-{s:04}\" model=\"small\" tier=\"server\" {{\n    {shape}\n    replicas {count}\n    max-model-len 4096\n}}"
        );
    }
    out
}

/// The build benchmark's peer workload: `serves` inference services of
/// one replica each on a `3g.40gb` MIG slice, on one K3s site with enough
/// 8-GPU H100 nodes (two slices per GPU), every model's weights on a
/// volume: what `../shared/peers/` writes with KCL and Jsonnet.
#[must_use]
pub fn serves(serves: usize) -> String {
    let mut out = String::from(
        "fabric \"serves\" {\n    residency \"eu\"\n}\n\
         model \"small\" base=\"llama-3.2-1b-instruct\" dtype=\"bf16\" source=\"pvc://weights/llama-3.2-1b\"\n\
         site \"fra\" tier=\"server\" region=\"eu-central\" {\n    cluster kind=\"k3s\" context=\"fra\"\n",
    );
    for n in 0..serves.div_ceil(16).max(1) {
        let _ = writeln!(out, "    node \"gpu-{n:04}\" gpu=\"h100-80gb\" gpus=8 mig=#true");
    }
    out.push_str("}\n");
    for s in 0..serves {
        let _ = writeln!(
            out,
            "serve \"svc-{s}\" model=\"small\" tier=\"server\" {{\n    mig \"3g.40gb\"\n    max-model-len 4096\n}}"
        );
    }
    out
}
