//! Parsing flagd's flag definition JSON (`flags`, `$evaluators`, `$ref`, `metadata`).

use crate::model::FlagProblem;
use crate::set::FlagSet;

pub(crate) fn parse(text: &str, origin: &str) -> Result<FlagSet, Vec<FlagProblem>> {
    let _ = (text, origin);
    Ok(FlagSet::default())
}
