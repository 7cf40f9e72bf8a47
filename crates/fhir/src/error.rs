//! The crate's error: every rule a body broke, each naming its field's path, never its value.

use std::fmt;

use crate::*;

/// The rule a field broke. Never carries the field's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A required field is absent.
    Missing,
    /// A string is empty or blank, or a list has no items.
    Empty,
    /// The JSON type is wrong.
    WrongType {
        /// What was expected (`string`, `object`, `array`).
        expected: &'static str,
    },
    /// A string is longer than allowed.
    TooLong {
        /// The limit in characters.
        max: usize,
    },
    /// A list has more items than allowed.
    TooMany {
        /// The limit.
        max: usize,
    },
    /// An object has fields this schema does not know.
    UnknownFields {
        /// How many.
        count: usize,
    },
    /// Not a real calendar date in the expected format.
    BadDate {
        /// The format expected.
        expected: &'static str,
    },
    /// A date after today.
    FutureDate,
    /// A date before [`MIN_YEAR`].
    TooOld,
    /// Not one of the allowed values.
    NotAllowed {
        /// The allowed values.
        expected: &'static str,
    },
    /// A string whose shape is wrong.
    BadFormat {
        /// What shape was expected.
        expected: &'static str,
    },
    /// Control characters (other than tab and newlines) in a string.
    ControlCharacters,
    /// None of a group of fields is present.
    NeedsOneOf {
        /// The fields, one of which is needed.
        fields: &'static str,
    },
    /// A second Patient resource.
    DuplicatePatient,
    /// The bundle holds no Patient resource.
    NoPatient,
    /// A reference that does not point at the bundle's Patient.
    UnresolvedReference,
    /// A reference that names nothing in the bundle (nor a contained resource).
    Unresolved,
    /// A `modifierExtension`: it may change what its element means, and none is understood.
    ModifierExtension,
    /// Two types of one choice element (`value[x]`).
    ChoiceTwice,
    /// An extension with both a value and nested extensions, or neither.
    ExtensionValue,
    /// A contained resource with its own `contained`.
    NestedContained,
    /// Elements nested deeper than allowed.
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The body is larger than [`MAX_BODY_BYTES`].
    BodyTooLarge {
        /// The limit in bytes.
        max: usize,
    },
    /// The body is not JSON.
    MalformedJson {
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "missing"),
            Self::Empty => write!(f, "must not be empty"),
            Self::WrongType { expected } => write!(f, "wrong type, expected {expected}"),
            Self::TooLong { max } => write!(f, "too long, at most {max} characters"),
            Self::TooMany { max } => write!(f, "too many items, at most {max}"),
            Self::UnknownFields { count } => write!(f, "{count} unknown field(s)"),
            Self::BadDate { expected } => write!(f, "not a valid date, expected {expected}"),
            Self::FutureDate => write!(f, "date is in the future"),
            Self::TooOld => write!(f, "date is before {MIN_YEAR}-01-01"),
            Self::NotAllowed { expected } => write!(f, "not allowed, expected {expected}"),
            Self::BadFormat { expected } => write!(f, "bad format, expected {expected}"),
            Self::ControlCharacters => write!(f, "contains control characters"),
            Self::NeedsOneOf { fields } => write!(f, "needs at least one of {fields}"),
            Self::DuplicatePatient => write!(f, "only one Patient resource is allowed"),
            Self::NoPatient => write!(f, "a Patient resource is required"),
            Self::UnresolvedReference => write!(f, "does not refer to the bundle's Patient"),
            Self::Unresolved => write!(f, "refers to no resource in the bundle"),
            Self::ModifierExtension => {
                write!(f, "modifier extensions are not understood, so refused")
            }
            Self::ChoiceTwice => write!(f, "only one type of this choice is allowed"),
            Self::ExtensionValue => {
                write!(f, "an extension has either a value or nested extensions")
            }
            Self::NestedContained => write!(f, "a contained resource cannot contain others"),
            Self::TooDeep { max } => write!(f, "nested deeper than {max} levels"),
            Self::BodyTooLarge { max } => write!(f, "body larger than {max} bytes"),
            Self::MalformedJson { line, column } => {
                write!(f, "malformed JSON at line {line}, column {column}")
            }
        }
    }
}

/// One broken rule at one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON-pointer-like path: `entry[0].resource.birthDate`; empty for the whole body.
    pub path: String,
    /// What is wrong.
    pub rule: Rule,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "(body): {}", self.rule)
        } else {
            write!(f, "{}: {}", self.path, self.rule)
        }
    }
}

/// Every rule a body broke (at most [`MAX_ERRORS`] listed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationErrors {
    pub(crate) errors: Vec<FieldError>,
    pub(crate) omitted: usize,
}

impl ValidationErrors {
    /// The errors, in document order.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// How many further errors were not listed.
    pub fn omitted(&self) -> usize {
        self.omitted
    }

    /// Whether some error is at `path` (exact match).
    pub fn has(&self, path: &str) -> bool {
        self.errors.iter().any(|e| e.path == path)
    }

    pub(crate) fn single(path: &str, rule: Rule) -> Self {
        Self {
            errors: vec![FieldError {
                path: path.to_owned(),
                rule,
            }],
            omitted: 0,
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            e.fmt(f)?;
        }
        if self.omitted > 0 {
            write!(f, "; and {} more", self.omitted)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}
