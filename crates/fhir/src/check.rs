//! The validator's state and the checks every part uses: where an error is (its path), the
//! error list (capped at [`MAX_ERRORS`]), and the house rules for strings. `validate` walks
//! the bundle and the typed resources with it, `walk` the R4 tables.

use serde_json::Value;

use crate::*;

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A literal reference found while walking: where, and what it says.
pub(crate) struct FoundRef {
    pub(crate) path: String,
    pub(crate) reference: String,
}

/// What one walk of a resource collects.
#[derive(Default)]
pub(crate) struct Walked {
    /// Every `Reference.reference`, with its path.
    pub(crate) refs: Vec<FoundRef>,
    /// The ids of the resource's `contained` resources (for `#id` references).
    pub(crate) contained: Vec<String>,
}

/// The validator: the day dates are checked against, the errors so far, what the current
/// resource's walk found.
pub(crate) struct Validator {
    pub(crate) today: Date,
    pub(crate) errors: Vec<FieldError>,
    pub(crate) omitted: usize,
    /// What the walks of the current resource found (references, contained ids).
    pub(crate) walked: Walked,
}

impl Validator {
    pub(crate) fn err(&mut self, path: String, rule: Rule) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(FieldError { path, rule });
        } else {
            self.omitted += 1;
        }
    }

    pub(crate) fn string(&mut self, value: &Value, path: String) -> Option<String> {
        let Some(s) = value.as_str() else {
            self.err(path, Rule::WrongType { expected: "string" });
            return None;
        };
        if s.trim().is_empty() {
            self.err(path, Rule::Empty);
            return None;
        }
        if s.chars().count() > MAX_STRING_CHARS {
            self.err(
                path,
                Rule::TooLong {
                    max: MAX_STRING_CHARS,
                },
            );
            return None;
        }
        if s.chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            self.err(path, Rule::ControlCharacters);
            return None;
        }
        Some(s.to_owned())
    }
}
