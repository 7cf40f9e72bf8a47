//! The FHIR R4 (4.0.1) elements SecureEHR understands, as tables the walker
//! ([`crate::walk`]) checks JSON against: the data types and the resources a record may hold
//! besides Patient and Condition, and the elements every resource and element may carry.
//!
//! A table lists each element's name, type, cardinality and, for the codes FHIR binds
//! `required`, the allowed codes. A choice element (`value[x]`) lists its types; the JSON
//! key is the name with the type appended (`valueQuantity`). Elements not listed are refused.

/// A primitive type: what its JSON value must look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prim {
    Boolean,
    Integer,
    PositiveInt,
    UnsignedInt,
    Decimal,
    /// `string` (the house rules: not blank, at most [`crate::MAX_STRING_CHARS`], no control
    /// characters).
    Str,
    /// `markdown`: a longer string.
    Markdown,
    Code,
    Id,
    Uri,
    Date,
    DateTime,
    Instant,
    Time,
    Base64,
    /// `xhtml` (`Narrative.div`): kept as given, never rendered.
    Xhtml,
}

/// An element's type.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ty {
    Prim(Prim),
    /// A complex data type or a backbone element.
    Complex(&'static Complex),
    /// `Reference`: checked as a data type, and its `reference` resolved within the bundle.
    Reference,
    /// A resource (in `contained`).
    Resource,
    /// `value[x]`: one of these, the key being the name and the type's suffix.
    Choice(&'static [(&'static str, Ty)]),
}

/// A complex type or backbone element: its name and elements (besides `id` and `extension`,
/// which every element carries).
#[derive(Debug)]
pub(crate) struct Complex {
    #[allow(dead_code)] // for reading the tables; messages name paths, not types
    pub(crate) name: &'static str,
    pub(crate) elements: &'static [El],
}

/// One element.
#[derive(Clone, Copy, Debug)]
pub(crate) struct El {
    /// The name; for a choice, without `[x]`.
    pub(crate) name: &'static str,
    pub(crate) ty: Ty,
    pub(crate) required: bool,
    pub(crate) many: bool,
    /// The allowed codes of a `required` binding.
    pub(crate) codes: Option<&'static [&'static str]>,
}

pub(super) const fn el(name: &'static str, ty: Ty) -> El {
    El {
        name,
        ty,
        required: false,
        many: false,
        codes: None,
    }
}

impl El {
    pub(super) const fn many(mut self) -> Self {
        self.many = true;
        self
    }
    pub(super) const fn req(mut self) -> Self {
        self.required = true;
        self
    }
    pub(super) const fn codes(mut self, codes: &'static [&'static str]) -> Self {
        self.codes = Some(codes);
        self
    }
}

use Prim::*;

mod datatypes;
mod resources;

pub(crate) use datatypes::*;
pub(crate) use resources::*;

pub(super) const BOOLEAN: Ty = Ty::Prim(Boolean);
pub(super) const INTEGER: Ty = Ty::Prim(Integer);
pub(super) const POSITIVE_INT: Ty = Ty::Prim(PositiveInt);
pub(super) const UNSIGNED_INT: Ty = Ty::Prim(UnsignedInt);
pub(super) const DECIMAL: Ty = Ty::Prim(Decimal);
pub(super) const STRING: Ty = Ty::Prim(Str);
pub(super) const MARKDOWN: Ty = Ty::Prim(Markdown);
pub(super) const CODE: Ty = Ty::Prim(Code);
pub(super) const ID: Ty = Ty::Prim(Id);
pub(super) const URI: Ty = Ty::Prim(Uri);
pub(super) const DATE: Ty = Ty::Prim(Date);
pub(super) const DATE_TIME: Ty = Ty::Prim(DateTime);
pub(super) const INSTANT: Ty = Ty::Prim(Instant);
pub(super) const TIME: Ty = Ty::Prim(Time);
pub(super) const BASE64: Ty = Ty::Prim(Base64);
pub(super) const REFERENCE: Ty = Ty::Reference;
pub(super) const CC: Ty = Ty::Complex(&CODEABLE_CONCEPT);
pub(super) const CODING_T: Ty = Ty::Complex(&CODING);
pub(super) const QUANTITY_T: Ty = Ty::Complex(&QUANTITY);
pub(super) const PERIOD_T: Ty = Ty::Complex(&PERIOD);
pub(super) const RANGE_T: Ty = Ty::Complex(&RANGE);
pub(super) const RATIO_T: Ty = Ty::Complex(&RATIO);
pub(super) const IDENTIFIER_T: Ty = Ty::Complex(&IDENTIFIER);
pub(super) const ANNOTATION_T: Ty = Ty::Complex(&ANNOTATION);
