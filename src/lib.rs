//! What the `sovereign` binary keeps between runs and decides from it:
//! the state of what was applied ([`state`], with its lock) and the plan
//! that diffs the desired set of a build against it ([`plan`]).
//!
//! A library beside the binary so that benchmarks and tests reach the
//! same code the commands run. The command line, the LSP and the build
//! writer stay in the binary (`src/main.rs`).

pub mod apply;
pub mod clock;
pub mod emit;
pub mod files;
pub mod plan;
pub mod state;
