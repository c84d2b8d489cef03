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
             model \"model-{i}\" base=\"llama-3.1-8b-instruct\" dtype=\"bf16\"\n\
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
