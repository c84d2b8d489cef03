//! One module per feature the editor asks for: each turns the protocol's
//! request into a call of the pure cursor logic (`features`) and its answer
//! back into the protocol's types.

pub(super) mod code_action;
pub(super) mod completion;
pub(super) mod documents;
pub(super) mod formatting;
pub(super) mod hover;
pub(super) mod navigation;
pub(super) mod rename;
pub(super) mod symbols;
