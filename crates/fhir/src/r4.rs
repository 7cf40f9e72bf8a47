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

const fn el(name: &'static str, ty: Ty) -> El {
    El {
        name,
        ty,
        required: false,
        many: false,
        codes: None,
    }
}

impl El {
    const fn many(mut self) -> Self {
        self.many = true;
        self
    }
    const fn req(mut self) -> Self {
        self.required = true;
        self
    }
    const fn codes(mut self, codes: &'static [&'static str]) -> Self {
        self.codes = Some(codes);
        self
    }
}

use Prim::*;

const BOOLEAN: Ty = Ty::Prim(Boolean);
const INTEGER: Ty = Ty::Prim(Integer);
const POSITIVE_INT: Ty = Ty::Prim(PositiveInt);
const UNSIGNED_INT: Ty = Ty::Prim(UnsignedInt);
const DECIMAL: Ty = Ty::Prim(Decimal);
const STRING: Ty = Ty::Prim(Str);
const MARKDOWN: Ty = Ty::Prim(Markdown);
const CODE: Ty = Ty::Prim(Code);
const ID: Ty = Ty::Prim(Id);
const URI: Ty = Ty::Prim(Uri);
const DATE: Ty = Ty::Prim(Date);
const DATE_TIME: Ty = Ty::Prim(DateTime);
const INSTANT: Ty = Ty::Prim(Instant);
const TIME: Ty = Ty::Prim(Time);
const BASE64: Ty = Ty::Prim(Base64);
const REFERENCE: Ty = Ty::Reference;
const CC: Ty = Ty::Complex(&CODEABLE_CONCEPT);
const CODING_T: Ty = Ty::Complex(&CODING);
const QUANTITY_T: Ty = Ty::Complex(&QUANTITY);
const PERIOD_T: Ty = Ty::Complex(&PERIOD);
const RANGE_T: Ty = Ty::Complex(&RANGE);
const RATIO_T: Ty = Ty::Complex(&RATIO);
const IDENTIFIER_T: Ty = Ty::Complex(&IDENTIFIER);
const ANNOTATION_T: Ty = Ty::Complex(&ANNOTATION);

// Data types ------------------------------------------------------------------------------

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

const SIMPLE_QUANTITY_T: Ty = Ty::Complex(&SIMPLE_QUANTITY);

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

static TIMING_REPEAT: Complex = Complex {
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

static DOSE_AND_RATE: Complex = Complex {
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

// What every resource carries -------------------------------------------------------------

/// The elements of every resource (`Resource` and `DomainResource`), besides `resourceType`.
pub(crate) const RESOURCE_ELEMENTS: &[El] = &[
    el("id", ID),
    el("meta", Ty::Complex(&META)),
    el("implicitRules", URI),
    el("language", CODE),
    el("text", Ty::Complex(&NARRATIVE)),
    el("contained", Ty::Resource).many(),
    el("extension", Ty::Complex(&EXTENSION)).many(),
];

// Resources ------------------------------------------------------------------------------

/// A resource a record may hold besides Patient and Condition.
#[derive(Debug)]
pub(crate) struct ResourceDef {
    pub(crate) name: &'static str,
    pub(crate) elements: &'static [El],
    /// Elements that must reference the bundle's Patient (`subject`, `patient`).
    pub(crate) about_patient: &'static [&'static str],
}

const OBSERVATION_STATUS: &[&str] = &[
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
];

const OBSERVATION_VALUES: &[(&str, Ty)] = &[
    ("Quantity", QUANTITY_T),
    ("CodeableConcept", CC),
    ("String", STRING),
    ("Boolean", BOOLEAN),
    ("Integer", INTEGER),
    ("Range", RANGE_T),
    ("Ratio", RATIO_T),
    ("Time", TIME),
    ("DateTime", DATE_TIME),
    ("Period", PERIOD_T),
];

static REFERENCE_RANGE: Complex = Complex {
    name: "Observation.referenceRange",
    elements: &[
        el("low", SIMPLE_QUANTITY_T),
        el("high", SIMPLE_QUANTITY_T),
        el("type", CC),
        el("appliesTo", CC).many(),
        el("age", RANGE_T),
        el("text", STRING),
    ],
};

static OBSERVATION_COMPONENT: Complex = Complex {
    name: "Observation.component",
    elements: &[
        el("code", CC).req(),
        el("value", Ty::Choice(OBSERVATION_VALUES)),
        el("dataAbsentReason", CC),
        el("interpretation", CC).many(),
        el("referenceRange", Ty::Complex(&REFERENCE_RANGE)).many(),
    ],
};

const OBSERVATION: ResourceDef = ResourceDef {
    name: "Observation",
    about_patient: &["subject"],
    elements: &[
        el("identifier", IDENTIFIER_T).many(),
        el("basedOn", REFERENCE).many(),
        el("partOf", REFERENCE).many(),
        el("status", CODE).req().codes(OBSERVATION_STATUS),
        el("category", CC).many(),
        el("code", CC).req(),
        el("subject", REFERENCE),
        el("focus", REFERENCE).many(),
        el("encounter", REFERENCE),
        el(
            "effective",
            Ty::Choice(&[
                ("DateTime", DATE_TIME),
                ("Period", PERIOD_T),
                ("Instant", INSTANT),
            ]),
        ),
        el("issued", INSTANT),
        el("performer", REFERENCE).many(),
        el("value", Ty::Choice(OBSERVATION_VALUES)),
        el("dataAbsentReason", CC),
        el("interpretation", CC).many(),
        el("note", ANNOTATION_T).many(),
        el("bodySite", CC),
        el("method", CC),
        el("specimen", REFERENCE),
        el("device", REFERENCE),
        el("referenceRange", Ty::Complex(&REFERENCE_RANGE)).many(),
        el("hasMember", REFERENCE).many(),
        el("derivedFrom", REFERENCE).many(),
        el("component", Ty::Complex(&OBSERVATION_COMPONENT)).many(),
    ],
};

static ALLERGY_REACTION: Complex = Complex {
    name: "AllergyIntolerance.reaction",
    elements: &[
        el("substance", CC),
        el("manifestation", CC).req().many(),
        el("description", STRING),
        el("onset", DATE_TIME),
        el("severity", CODE).codes(&["mild", "moderate", "severe"]),
        el("exposureRoute", CC),
        el("note", ANNOTATION_T).many(),
    ],
};

const ONSET: &[(&str, Ty)] = &[
    ("DateTime", DATE_TIME),
    ("Age", QUANTITY_T),
    ("Period", PERIOD_T),
    ("Range", RANGE_T),
    ("String", STRING),
];

const ALLERGY_INTOLERANCE: ResourceDef = ResourceDef {
    name: "AllergyIntolerance",
    about_patient: &["patient"],
    elements: &[
        el("identifier", IDENTIFIER_T).many(),
        el("clinicalStatus", CC),
        el("verificationStatus", CC),
        el("type", CODE).codes(&["allergy", "intolerance"]),
        el("category", CODE)
            .many()
            .codes(&["food", "medication", "environment", "biologic"]),
        el("criticality", CODE).codes(&["low", "high", "unable-to-assess"]),
        el("code", CC),
        el("patient", REFERENCE).req(),
        el("encounter", REFERENCE),
        el("onset", Ty::Choice(ONSET)),
        el("recordedDate", DATE_TIME),
        el("recorder", REFERENCE),
        el("asserter", REFERENCE),
        el("lastOccurrence", DATE_TIME),
        el("note", ANNOTATION_T).many(),
        el("reaction", Ty::Complex(&ALLERGY_REACTION)).many(),
    ],
};

const MEDICATION: &[(&str, Ty)] = &[("CodeableConcept", CC), ("Reference", REFERENCE)];

const MEDICATION_STATEMENT: ResourceDef = ResourceDef {
    name: "MedicationStatement",
    about_patient: &["subject"],
    elements: &[
        el("identifier", IDENTIFIER_T).many(),
        el("basedOn", REFERENCE).many(),
        el("partOf", REFERENCE).many(),
        el("status", CODE).req().codes(&[
            "active",
            "completed",
            "entered-in-error",
            "intended",
            "stopped",
            "on-hold",
            "unknown",
            "not-taken",
        ]),
        el("statusReason", CC).many(),
        el("category", CC),
        el("medication", Ty::Choice(MEDICATION)).req(),
        el("subject", REFERENCE).req(),
        el("context", REFERENCE),
        el(
            "effective",
            Ty::Choice(&[("DateTime", DATE_TIME), ("Period", PERIOD_T)]),
        ),
        el("dateAsserted", DATE_TIME),
        el("informationSource", REFERENCE),
        el("derivedFrom", REFERENCE).many(),
        el("reasonCode", CC).many(),
        el("reasonReference", REFERENCE).many(),
        el("note", ANNOTATION_T).many(),
        el("dosage", Ty::Complex(&DOSAGE)).many(),
    ],
};

static DISPENSE_REQUEST: Complex = Complex {
    name: "MedicationRequest.dispenseRequest",
    elements: &[
        el("validityPeriod", PERIOD_T),
        el("numberOfRepeatsAllowed", UNSIGNED_INT),
        el("quantity", SIMPLE_QUANTITY_T),
        el("expectedSupplyDuration", QUANTITY_T),
        el("performer", REFERENCE),
    ],
};

const MEDICATION_REQUEST: ResourceDef = ResourceDef {
    name: "MedicationRequest",
    about_patient: &["subject"],
    elements: &[
        el("identifier", IDENTIFIER_T).many(),
        el("status", CODE).req().codes(&[
            "active",
            "on-hold",
            "cancelled",
            "completed",
            "entered-in-error",
            "stopped",
            "draft",
            "unknown",
        ]),
        el("statusReason", CC),
        el("intent", CODE).req().codes(&[
            "proposal",
            "plan",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        ]),
        el("category", CC).many(),
        el("priority", CODE).codes(&["routine", "urgent", "asap", "stat"]),
        el("doNotPerform", BOOLEAN),
        el(
            "reported",
            Ty::Choice(&[("Boolean", BOOLEAN), ("Reference", REFERENCE)]),
        ),
        el("medication", Ty::Choice(MEDICATION)).req(),
        el("subject", REFERENCE).req(),
        el("encounter", REFERENCE),
        el("authoredOn", DATE_TIME),
        el("requester", REFERENCE),
        el("recorder", REFERENCE),
        el("reasonCode", CC).many(),
        el("reasonReference", REFERENCE).many(),
        el("courseOfTherapyType", CC),
        el("note", ANNOTATION_T).many(),
        el("dosageInstruction", Ty::Complex(&DOSAGE)).many(),
        el("dispenseRequest", Ty::Complex(&DISPENSE_REQUEST)),
    ],
};

static IMMUNIZATION_PERFORMER: Complex = Complex {
    name: "Immunization.performer",
    elements: &[el("function", CC), el("actor", REFERENCE).req()],
};

static PROTOCOL_APPLIED: Complex = Complex {
    name: "Immunization.protocolApplied",
    elements: &[
        el("series", STRING),
        el("authority", REFERENCE),
        el("targetDisease", CC).many(),
        el(
            "doseNumber",
            Ty::Choice(&[("PositiveInt", POSITIVE_INT), ("String", STRING)]),
        )
        .req(),
        el(
            "seriesDoses",
            Ty::Choice(&[("PositiveInt", POSITIVE_INT), ("String", STRING)]),
        ),
    ],
};

const IMMUNIZATION: ResourceDef = ResourceDef {
    name: "Immunization",
    about_patient: &["patient"],
    elements: &[
        el("identifier", IDENTIFIER_T).many(),
        el("status", CODE)
            .req()
            .codes(&["completed", "entered-in-error", "not-done"]),
        el("statusReason", CC),
        el("vaccineCode", CC).req(),
        el("patient", REFERENCE).req(),
        el("encounter", REFERENCE),
        el(
            "occurrence",
            Ty::Choice(&[("DateTime", DATE_TIME), ("String", STRING)]),
        )
        .req(),
        el("recorded", DATE_TIME),
        el("primarySource", BOOLEAN),
        el("location", REFERENCE),
        el("manufacturer", REFERENCE),
        el("lotNumber", STRING),
        el("expirationDate", DATE),
        el("site", CC),
        el("route", CC),
        el("doseQuantity", SIMPLE_QUANTITY_T),
        el("performer", Ty::Complex(&IMMUNIZATION_PERFORMER)).many(),
        el("note", ANNOTATION_T).many(),
        el("reasonCode", CC).many(),
        el("reasonReference", REFERENCE).many(),
        el("isSubpotent", BOOLEAN),
        el("protocolApplied", Ty::Complex(&PROTOCOL_APPLIED)).many(),
    ],
};

static PROCEDURE_PERFORMER: Complex = Complex {
    name: "Procedure.performer",
    elements: &[
        el("function", CC),
        el("actor", REFERENCE).req(),
        el("onBehalfOf", REFERENCE),
    ],
};

const PROCEDURE: ResourceDef = ResourceDef {
    name: "Procedure",
    about_patient: &["subject"],
    elements: &[
        el("identifier", IDENTIFIER_T).many(),
        el("basedOn", REFERENCE).many(),
        el("partOf", REFERENCE).many(),
        el("status", CODE).req().codes(&[
            "preparation",
            "in-progress",
            "not-done",
            "on-hold",
            "stopped",
            "completed",
            "entered-in-error",
            "unknown",
        ]),
        el("statusReason", CC),
        el("category", CC),
        el("code", CC),
        el("subject", REFERENCE).req(),
        el("encounter", REFERENCE),
        el(
            "performed",
            Ty::Choice(&[
                ("DateTime", DATE_TIME),
                ("Period", PERIOD_T),
                ("String", STRING),
                ("Age", QUANTITY_T),
                ("Range", RANGE_T),
            ]),
        ),
        el("recorder", REFERENCE),
        el("asserter", REFERENCE),
        el("performer", Ty::Complex(&PROCEDURE_PERFORMER)).many(),
        el("location", REFERENCE),
        el("reasonCode", CC).many(),
        el("reasonReference", REFERENCE).many(),
        el("bodySite", CC).many(),
        el("outcome", CC),
        el("report", REFERENCE).many(),
        el("complication", CC).many(),
        el("followUp", CC).many(),
        el("note", ANNOTATION_T).many(),
    ],
};

const DIAGNOSTIC_REPORT: ResourceDef = ResourceDef {
    name: "DiagnosticReport",
    about_patient: &["subject"],
    elements: &[
        el("identifier", IDENTIFIER_T).many(),
        el("basedOn", REFERENCE).many(),
        el("status", CODE).req().codes(&[
            "registered",
            "partial",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "appended",
            "cancelled",
            "entered-in-error",
            "unknown",
        ]),
        el("category", CC).many(),
        el("code", CC).req(),
        el("subject", REFERENCE),
        el("encounter", REFERENCE),
        el(
            "effective",
            Ty::Choice(&[("DateTime", DATE_TIME), ("Period", PERIOD_T)]),
        ),
        el("issued", INSTANT),
        el("performer", REFERENCE).many(),
        el("resultsInterpreter", REFERENCE).many(),
        el("specimen", REFERENCE).many(),
        el("result", REFERENCE).many(),
        el("conclusion", STRING),
        el("conclusionCode", CC).many(),
        el("presentedForm", Ty::Complex(&ATTACHMENT)).many(),
    ],
};

static ENCOUNTER_PARTICIPANT: Complex = Complex {
    name: "Encounter.participant",
    elements: &[
        el("type", CC).many(),
        el("period", PERIOD_T),
        el("individual", REFERENCE),
    ],
};

static ENCOUNTER_DIAGNOSIS: Complex = Complex {
    name: "Encounter.diagnosis",
    elements: &[
        el("condition", REFERENCE).req(),
        el("use", CC),
        el("rank", POSITIVE_INT),
    ],
};

static ENCOUNTER_LOCATION: Complex = Complex {
    name: "Encounter.location",
    elements: &[
        el("location", REFERENCE).req(),
        el("status", CODE).codes(&["planned", "active", "reserved", "completed"]),
        el("physicalType", CC),
        el("period", PERIOD_T),
    ],
};

const ENCOUNTER: ResourceDef = ResourceDef {
    name: "Encounter",
    about_patient: &["subject"],
    elements: &[
        el("identifier", IDENTIFIER_T).many(),
        el("status", CODE).req().codes(&[
            "planned",
            "arrived",
            "triaged",
            "in-progress",
            "onleave",
            "finished",
            "cancelled",
            "entered-in-error",
            "unknown",
        ]),
        el("class", CODING_T).req(),
        el("type", CC).many(),
        el("serviceType", CC),
        el("priority", CC),
        el("subject", REFERENCE),
        el("episodeOfCare", REFERENCE).many(),
        el("basedOn", REFERENCE).many(),
        el("participant", Ty::Complex(&ENCOUNTER_PARTICIPANT)).many(),
        el("appointment", REFERENCE).many(),
        el("period", PERIOD_T),
        el("length", QUANTITY_T),
        el("reasonCode", CC).many(),
        el("reasonReference", REFERENCE).many(),
        el("diagnosis", Ty::Complex(&ENCOUNTER_DIAGNOSIS)).many(),
        el("location", Ty::Complex(&ENCOUNTER_LOCATION)).many(),
        el("serviceProvider", REFERENCE),
        el("partOf", REFERENCE),
    ],
};

static QUALIFICATION: Complex = Complex {
    name: "Practitioner.qualification",
    elements: &[
        el("identifier", IDENTIFIER_T).many(),
        el("code", CC).req(),
        el("period", PERIOD_T),
        el("issuer", REFERENCE),
    ],
};

const GENDER: &[&str] = &["male", "female", "other", "unknown"];

const PRACTITIONER: ResourceDef = ResourceDef {
    name: "Practitioner",
    about_patient: &[],
    elements: &[
        el("identifier", IDENTIFIER_T).many(),
        el("active", BOOLEAN),
        el("name", Ty::Complex(&HUMAN_NAME)).many(),
        el("telecom", Ty::Complex(&CONTACT_POINT)).many(),
        el("address", Ty::Complex(&ADDRESS)).many(),
        el("gender", CODE).codes(GENDER),
        el("birthDate", DATE),
        el("qualification", Ty::Complex(&QUALIFICATION)).many(),
        el("communication", CC).many(),
    ],
};

const ORGANIZATION: ResourceDef = ResourceDef {
    name: "Organization",
    about_patient: &[],
    elements: &[
        el("identifier", IDENTIFIER_T).many(),
        el("active", BOOLEAN),
        el("type", CC).many(),
        el("name", STRING),
        el("alias", STRING).many(),
        el("telecom", Ty::Complex(&CONTACT_POINT)).many(),
        el("address", Ty::Complex(&ADDRESS)).many(),
        el("partOf", REFERENCE),
    ],
};

/// Every resource type a record holds besides Patient and Condition.
pub(crate) const RESOURCES: &[ResourceDef] = &[
    OBSERVATION,
    ALLERGY_INTOLERANCE,
    MEDICATION_STATEMENT,
    MEDICATION_REQUEST,
    IMMUNIZATION,
    PROCEDURE,
    DIAGNOSTIC_REPORT,
    ENCOUNTER,
    PRACTITIONER,
    ORGANIZATION,
];

/// The resource definition of `name`.
pub(crate) fn resource(name: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|r| r.name == name)
}

/// The R4 elements of a Patient. The typed model checks `id`, `name`, `gender`, `birthDate`,
/// `address` and `telecom` itself; they are listed for their `_name` extensions.
pub(crate) const PATIENT_EXTRA: &[El] = &[
    el("gender", CODE),
    el("birthDate", DATE),
    el("identifier", IDENTIFIER_T).many(),
    el("active", BOOLEAN),
    el(
        "deceased",
        Ty::Choice(&[("Boolean", BOOLEAN), ("DateTime", DATE_TIME)]),
    ),
    el("maritalStatus", CC),
    el(
        "multipleBirth",
        Ty::Choice(&[("Boolean", BOOLEAN), ("Integer", INTEGER)]),
    ),
    el("communication", Ty::Complex(&PATIENT_COMMUNICATION)).many(),
    el("generalPractitioner", REFERENCE).many(),
    el("managingOrganization", REFERENCE),
];

static PATIENT_COMMUNICATION: Complex = Complex {
    name: "Patient.communication",
    elements: &[el("language", CC).req(), el("preferred", BOOLEAN)],
};

/// The R4 elements of a Condition. The typed model checks `id`, `clinicalStatus`, `code`,
/// `subject`, `onsetDateTime` and `recordedDate` itself (listed here too, for `_name`
/// extensions and so that `onset[x]` has one type at most).
pub(crate) const CONDITION_EXTRA: &[El] = &[
    el("recordedDate", DATE_TIME),
    el("identifier", IDENTIFIER_T).many(),
    el("verificationStatus", CC),
    el("category", CC).many(),
    el("severity", CC),
    el("bodySite", CC).many(),
    el("encounter", REFERENCE),
    el(
        "onset",
        Ty::Choice(&[
            ("DateTime", DATE_TIME),
            ("Age", QUANTITY_T),
            ("Period", PERIOD_T),
            ("Range", RANGE_T),
            ("String", STRING),
        ]),
    ),
    el(
        "abatement",
        Ty::Choice(&[
            ("DateTime", DATE_TIME),
            ("Age", QUANTITY_T),
            ("Period", PERIOD_T),
            ("Range", RANGE_T),
            ("String", STRING),
        ]),
    ),
    el("recorder", REFERENCE),
    el("asserter", REFERENCE),
    el("note", ANNOTATION_T).many(),
];

static ENTRY_REQUEST: Complex = Complex {
    name: "Bundle.entry.request",
    elements: &[
        el("method", CODE)
            .req()
            .codes(&["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]),
        el("url", URI).req(),
        el("ifNoneMatch", STRING),
        el("ifModifiedSince", INSTANT),
        el("ifMatch", STRING),
        el("ifNoneExist", STRING),
    ],
};

/// The R4 elements of a Bundle besides `resourceType`, `type` and `entry`.
pub(crate) const BUNDLE_EXTRA: &[El] = &[
    el("id", ID),
    el("meta", Ty::Complex(&META)),
    el("identifier", IDENTIFIER_T),
    el("timestamp", INSTANT),
];

/// The R4 elements of a Bundle entry besides `fullUrl` and `resource`.
pub(crate) const ENTRY_EXTRA: &[El] = &[
    el("id", STRING),
    el("extension", Ty::Complex(&EXTENSION)).many(),
    el("request", Ty::Complex(&ENTRY_REQUEST)),
];
