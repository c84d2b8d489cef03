//! Every target's resources of a checked, analyzed spec: what `build`
//! writes and `plan` diffs. Pure: the signing keys are read before, by
//! the command.

use std::collections::BTreeMap;

use sovereign_analyze::{Analysis, Compilation};
use sovereign_desired::DesiredState;
use sovereign_model::Spec;

/// The edges' signing keys by secret, or why one could not be read.
pub type SigningKeys =
    BTreeMap<sovereign_model::Id<sovereign_model::Secret>, Result<sovereign_npu::SigningKey, String>>;

/// The resources of the sites `state` wants, and the device bundles' files.
#[must_use]
pub fn emit(
    compiled: &Compilation,
    spec: &Spec,
    analysis: &Analysis,
    keys: &SigningKeys,
    state: DesiredState,
) -> (DesiredState, Vec<sovereign_npu::Bundle>) {
    let mut state = sovereign_k3s::emit_for(spec, analysis, &compiled.catalog, state);
    sovereign_temporal::emit_into(spec, analysis, &mut state);
    let bundles = sovereign_npu::emit_into(spec, analysis, keys, &mut state);
    (state, bundles)
}
