//! The gantry.toml file format: spanned parsing, `${VAR}` interpolation, decoding that reports every problem at once, and the key registry.
//!
//! Pure: no I/O except what the caller passes in (the text and an environment lookup).

pub mod cpu;
pub mod decode;
pub mod depth;
pub mod diag;
pub mod duration;
pub mod interp;
pub mod keys;
pub mod model;
pub mod schema;
pub mod size;
pub mod source;
pub mod url;

pub use decode::{Loaded, decode, flag_diagnostics, instance_name, parse_date, valid_name};
pub use diag::{Diagnostic, Severity};
pub use model::*;
pub use source::{Source, Span};
