//! Parsing both the JSON API and the web pages use: numeric path and query parameters, and
//! Unix seconds of a time (here so that neither side imports the other).

use crate::error::{Error, Result};

/// Parses a numeric path or query parameter, naming it when it is not a number.
pub(crate) fn parse_num<T: std::str::FromStr>(field: &str, s: &str) -> Result<T> {
    s.trim()
        .parse()
        .map_err(|_| Error::input(field, "must be a positive whole number"))
}

pub(crate) use ehr_primitives::unix_secs as unix;
