//! A bounded JSONLogic evaluator with flagd's custom operators.
