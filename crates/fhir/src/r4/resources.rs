//! The elements every resource carries, the resources a record holds besides Patient and
//! Condition, and the extra elements of Patient, Condition, Bundle and its entries.

use super::*;

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

static PROVENANCE_AGENT: Complex = Complex {
    name: "Provenance.agent",
    elements: &[
        el("type", CC),
        el("role", CC).many(),
        el("who", REFERENCE).req(),
        el("onBehalfOf", REFERENCE),
    ],
};

static PROVENANCE_ENTITY: Complex = Complex {
    name: "Provenance.entity",
    elements: &[
        el("role", CODE)
            .req()
            .codes(&["derivation", "revision", "quotation", "source", "removal"]),
        el("what", REFERENCE).req(),
    ],
};

/// Who wrote what: SecureEHR adds one to each version a provider writes.
const PROVENANCE: ResourceDef = ResourceDef {
    name: "Provenance",
    about_patient: &[],
    elements: &[
        el("target", REFERENCE).req().many(),
        el(
            "occurred",
            Ty::Choice(&[("Period", PERIOD_T), ("DateTime", DATE_TIME)]),
        ),
        el("recorded", INSTANT).req(),
        el("policy", URI).many(),
        el("location", REFERENCE),
        el("reason", CC).many(),
        el("activity", CC),
        el("agent", Ty::Complex(&PROVENANCE_AGENT)).req().many(),
        el("entity", Ty::Complex(&PROVENANCE_ENTITY)).many(),
    ],
};

static DOCUMENT_RELATES_TO: Complex = Complex {
    name: "DocumentReference.relatesTo",
    elements: &[
        el("code", CODE)
            .req()
            .codes(&["replaces", "transforms", "signs", "appends"]),
        el("target", REFERENCE).req(),
    ],
};

static DOCUMENT_CONTENT: Complex = Complex {
    name: "DocumentReference.content",
    elements: &[
        el("attachment", Ty::Complex(&ATTACHMENT)).req(),
        el("format", CODING_T),
    ],
};

static DOCUMENT_CONTEXT: Complex = Complex {
    name: "DocumentReference.context",
    elements: &[
        el("encounter", REFERENCE).many(),
        el("event", CC).many(),
        el("period", PERIOD_T),
        el("facilityType", CC),
        el("practiceSetting", CC),
        el("sourcePatientInfo", REFERENCE),
        el("related", REFERENCE).many(),
    ],
};

/// A document stored beside the record (a PDF, a photo, a DICOM file): what it is, and
/// where its bytes are (`content.attachment.url`). SecureEHR writes one per attachment
/// (`crate::document_bundle`).
const DOCUMENT_REFERENCE: ResourceDef = ResourceDef {
    name: "DocumentReference",
    about_patient: &["subject"],
    elements: &[
        el("masterIdentifier", IDENTIFIER_T),
        el("identifier", IDENTIFIER_T).many(),
        el("status", CODE)
            .req()
            .codes(&["current", "superseded", "entered-in-error"]),
        el("docStatus", CODE).codes(&["preliminary", "final", "amended", "entered-in-error"]),
        el("type", CC),
        el("category", CC).many(),
        el("subject", REFERENCE),
        el("date", INSTANT),
        el("author", REFERENCE).many(),
        el("authenticator", REFERENCE),
        el("custodian", REFERENCE),
        el("relatesTo", Ty::Complex(&DOCUMENT_RELATES_TO)).many(),
        el("description", STRING),
        el("securityLabel", CC).many(),
        el("content", Ty::Complex(&DOCUMENT_CONTENT)).req().many(),
        el("context", Ty::Complex(&DOCUMENT_CONTEXT)),
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
    PROVENANCE,
    DOCUMENT_REFERENCE,
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
