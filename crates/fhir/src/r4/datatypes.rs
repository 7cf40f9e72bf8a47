//! The R4 data types SecureEHR checks (Extension, Meta, Narrative, Coding, CodeableConcept,
//! Quantity, Range, Ratio, Period, Identifier, Reference, Annotation, Attachment, HumanName,
//! Address, ContactPoint, Timing, Dosage).

use super::*;

pub(crate) static EXTENSION: Complex = Complex {
    name: "Extension",
    elements: &[
        el("url", URI).req(),
        el("value", Ty::Choice(EXTENSION_VALUES)),
    ],
};

const EXTENSION_VALUES: &[(&str, Ty)] = &[
    ("Base64Binary", BASE64),
    ("Boolean", BOOLEAN),
    ("Canonical", URI),
    ("Code", CODE),
    ("Date", DATE),
    ("DateTime", DATE_TIME),
    ("Decimal", DECIMAL),
    ("Id", ID),
    ("Instant", INSTANT),
    ("Integer", INTEGER),
    ("Markdown", MARKDOWN),
    ("PositiveInt", POSITIVE_INT),
    ("String", STRING),
    ("Time", TIME),
    ("UnsignedInt", UNSIGNED_INT),
    ("Uri", URI),
    ("Url", URI),
    ("Address", Ty::Complex(&ADDRESS)),
    ("Annotation", ANNOTATION_T),
    ("Attachment", Ty::Complex(&ATTACHMENT)),
    ("CodeableConcept", CC),
    ("Coding", CODING_T),
    ("ContactPoint", Ty::Complex(&CONTACT_POINT)),
    ("HumanName", Ty::Complex(&HUMAN_NAME)),
    ("Identifier", IDENTIFIER_T),
    ("Period", PERIOD_T),
    ("Quantity", QUANTITY_T),
    ("Range", RANGE_T),
    ("Ratio", RATIO_T),
    ("Reference", REFERENCE),
];

pub(crate) static META: Complex = Complex {
    name: "Meta",
    elements: &[
        el("versionId", ID),
        el("lastUpdated", INSTANT),
        el("source", URI),
        el("profile", URI).many(),
        el("security", CODING_T).many(),
        el("tag", CODING_T).many(),
    ],
};

pub(crate) static NARRATIVE: Complex = Complex {
    name: "Narrative",
    elements: &[
        el("status", CODE)
            .req()
            .codes(&["generated", "extensions", "additional", "empty"]),
        el("div", Ty::Prim(Xhtml)).req(),
    ],
};

pub(crate) static CODING: Complex = Complex {
    name: "Coding",
    elements: &[
        el("system", URI),
        el("version", STRING),
        el("code", CODE),
        el("display", STRING),
        el("userSelected", BOOLEAN),
    ],
};

pub(crate) static CODEABLE_CONCEPT: Complex = Complex {
    name: "CodeableConcept",
    elements: &[el("coding", CODING_T).many(), el("text", STRING)],
};

const QUANTITY_COMPARATORS: &[&str] = &["<", "<=", ">=", ">"];

pub(crate) static QUANTITY: Complex = Complex {
    name: "Quantity",
    elements: &[
        el("value", DECIMAL),
        el("comparator", CODE).codes(QUANTITY_COMPARATORS),
        el("unit", STRING),
        el("system", URI),
        el("code", CODE),
    ],
};

pub(crate) static SIMPLE_QUANTITY: Complex = Complex {
    name: "SimpleQuantity",
    elements: &[
        el("value", DECIMAL),
        el("unit", STRING),
        el("system", URI),
        el("code", CODE),
    ],
};

pub(super) const SIMPLE_QUANTITY_T: Ty = Ty::Complex(&SIMPLE_QUANTITY);

pub(crate) static RANGE: Complex = Complex {
    name: "Range",
    elements: &[el("low", SIMPLE_QUANTITY_T), el("high", SIMPLE_QUANTITY_T)],
};

pub(crate) static RATIO: Complex = Complex {
    name: "Ratio",
    elements: &[el("numerator", QUANTITY_T), el("denominator", QUANTITY_T)],
};

pub(crate) static PERIOD: Complex = Complex {
    name: "Period",
    elements: &[el("start", DATE_TIME), el("end", DATE_TIME)],
};

pub(crate) static IDENTIFIER: Complex = Complex {
    name: "Identifier",
    elements: &[
        el("use", CODE).codes(&["usual", "official", "temp", "secondary", "old"]),
        el("type", CC),
        el("system", URI),
        el("value", STRING),
        el("period", PERIOD_T),
        el("assigner", REFERENCE),
    ],
};

/// `Reference` (its `reference` is also resolved within the bundle).
pub(crate) static REFERENCE_TYPE: Complex = Complex {
    name: "Reference",
    elements: &[
        el("reference", STRING),
        el("type", URI),
        el("identifier", IDENTIFIER_T),
        el("display", STRING),
    ],
};

pub(crate) static ANNOTATION: Complex = Complex {
    name: "Annotation",
    elements: &[
        el(
            "author",
            Ty::Choice(&[("Reference", REFERENCE), ("String", STRING)]),
        ),
        el("time", DATE_TIME),
        el("text", MARKDOWN).req(),
    ],
};

pub(crate) static ATTACHMENT: Complex = Complex {
    name: "Attachment",
    elements: &[
        el("contentType", CODE),
        el("language", CODE),
        el("data", BASE64),
        el("url", URI),
        el("size", UNSIGNED_INT),
        el("hash", BASE64),
        el("title", STRING),
        el("creation", DATE_TIME),
    ],
};

pub(crate) static HUMAN_NAME: Complex = Complex {
    name: "HumanName",
    elements: &[
        el("use", CODE).codes(&[
            "usual",
            "official",
            "temp",
            "nickname",
            "anonymous",
            "old",
            "maiden",
        ]),
        el("text", STRING),
        el("family", STRING),
        el("given", STRING).many(),
        el("prefix", STRING).many(),
        el("suffix", STRING).many(),
        el("period", PERIOD_T),
    ],
};

pub(crate) static ADDRESS: Complex = Complex {
    name: "Address",
    elements: &[
        el("use", CODE).codes(&["home", "work", "temp", "old", "billing"]),
        el("type", CODE).codes(&["postal", "physical", "both"]),
        el("text", STRING),
        el("line", STRING).many(),
        el("city", STRING),
        el("district", STRING),
        el("state", STRING),
        el("postalCode", STRING),
        el("country", STRING),
        el("period", PERIOD_T),
    ],
};

pub(crate) static CONTACT_POINT: Complex = Complex {
    name: "ContactPoint",
    elements: &[
        el("system", CODE).codes(&["phone", "fax", "email", "pager", "url", "sms", "other"]),
        el("value", STRING),
        el("use", CODE).codes(&["home", "work", "temp", "old", "mobile"]),
        el("rank", POSITIVE_INT),
        el("period", PERIOD_T),
    ],
};

pub(crate) static TIMING_REPEAT: Complex = Complex {
    name: "Timing.repeat",
    elements: &[
        el(
            "bounds",
            Ty::Choice(&[
                ("Duration", QUANTITY_T),
                ("Range", RANGE_T),
                ("Period", PERIOD_T),
            ]),
        ),
        el("count", POSITIVE_INT),
        el("countMax", POSITIVE_INT),
        el("duration", DECIMAL),
        el("durationMax", DECIMAL),
        el("durationUnit", CODE).codes(UNITS_OF_TIME),
        el("frequency", POSITIVE_INT),
        el("frequencyMax", POSITIVE_INT),
        el("period", DECIMAL),
        el("periodMax", DECIMAL),
        el("periodUnit", CODE).codes(UNITS_OF_TIME),
        el("dayOfWeek", CODE)
            .many()
            .codes(&["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        el("timeOfDay", TIME).many(),
        el("when", CODE).many(),
        el("offset", UNSIGNED_INT),
    ],
};

const UNITS_OF_TIME: &[&str] = &["s", "min", "h", "d", "wk", "mo", "a"];

pub(crate) static TIMING: Complex = Complex {
    name: "Timing",
    elements: &[
        el("event", DATE_TIME).many(),
        el("repeat", Ty::Complex(&TIMING_REPEAT)),
        el("code", CC),
    ],
};

pub(crate) static DOSE_AND_RATE: Complex = Complex {
    name: "Dosage.doseAndRate",
    elements: &[
        el("type", CC),
        el(
            "dose",
            Ty::Choice(&[("Range", RANGE_T), ("Quantity", SIMPLE_QUANTITY_T)]),
        ),
        el(
            "rate",
            Ty::Choice(&[
                ("Ratio", RATIO_T),
                ("Range", RANGE_T),
                ("Quantity", SIMPLE_QUANTITY_T),
            ]),
        ),
    ],
};

pub(crate) static DOSAGE: Complex = Complex {
    name: "Dosage",
    elements: &[
        el("sequence", INTEGER),
        el("text", STRING),
        el("additionalInstruction", CC).many(),
        el("patientInstruction", STRING),
        el("timing", Ty::Complex(&TIMING)),
        el(
            "asNeeded",
            Ty::Choice(&[("Boolean", BOOLEAN), ("CodeableConcept", CC)]),
        ),
        el("site", CC),
        el("route", CC),
        el("method", CC),
        el("doseAndRate", Ty::Complex(&DOSE_AND_RATE)).many(),
        el("maxDosePerPeriod", RATIO_T),
        el("maxDosePerAdministration", SIMPLE_QUANTITY_T),
        el("maxDosePerLifetime", SIMPLE_QUANTITY_T),
    ],
};
