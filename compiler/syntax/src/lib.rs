//! KDL 2.0 for `sovereign`: a hand-written, error-recovering parser.
//!
//! - [`parse`] turns text into a [`ast::Document`] and diagnostics; it never
//!   fails and never panics, and every node, entry and value has a span.
//! - [`format`] prints a document in the one canonical style of `sovereign
//!   fmt`, keeping comments and never changing what it means.
//! - [`normal_form`] prints a document the way the official KDL test suite
//!   does, which is how we compare our parser with the suite and with the
//!   reference `kdl` crate.
//!
//! Architecture Invariant: this crate knows nothing about fabrics; it is
//! KDL only, and does no IO.

pub mod ast;
pub mod chars;
mod format;
mod normal;
mod number;
mod parser;
mod strings;

pub use format::{FormatError, format};
pub use normal::{normal_form, quote};
pub use parser::{Parse, ParseRest, parse, parse_each};
