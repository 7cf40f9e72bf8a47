//! A record's FHIR content as a chart people can read: lab results and vital signs as
//! tables (value with its unit, reference range, flag), medications, allergies with their
//! criticality, conditions, immunizations, procedures, encounters and reports — and, for
//! providers, one timeline of everything dated across a patient's records.
//!
//! Only data fields are shown, always as text: a resource's narrative (`text.div`, XHTML)
//! is never rendered, nor copied anywhere.

use maud::{Markup, html};
use serde_json::Value;

/// One Observation as a table row.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ObsRow {
    pub name: String,
    pub value: String,
    pub unit: String,
    pub range: String,
    /// The interpretation's label ("High", "Low", …), if any.
    pub flag: Option<String>,
    /// Flagged as outside normal (any interpretation but N).
    pub abnormal: bool,
    pub date: String,
}

/// A medication: taken (MedicationStatement) or prescribed (MedicationRequest).
#[derive(Debug, PartialEq)]
pub(crate) struct MedRow {
    pub name: String,
    pub kind: &'static str,
    pub status: String,
    pub dosage: String,
    pub date: String,
}

#[derive(Debug, PartialEq)]
pub(crate) struct AllergyRow {
    pub substance: String,
    /// `high`, `low` or `unable-to-assess` (R4's codes), shown as words.
    pub criticality: String,
    pub high: bool,
    pub status: String,
    pub reactions: String,
}

/// A dated thing in a record, for the timeline.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Event {
    /// As given (FHIR date or dateTime): sorts in time order within one format.
    pub date: String,
    pub kind: &'static str,
    pub text: String,
}

/// A simple row: what, status, when.
#[derive(Debug, PartialEq)]
pub(crate) struct Item {
    pub name: String,
    pub status: String,
    pub date: String,
    pub note: String,
}

/// What a bundle holds, by kind.
#[derive(Debug, Default)]
pub(crate) struct Chart {
    pub patient: Option<(String, String)>,
    pub labs: Vec<ObsRow>,
    pub vitals: Vec<ObsRow>,
    pub observations: Vec<ObsRow>,
    pub medications: Vec<MedRow>,
    pub allergies: Vec<AllergyRow>,
    pub conditions: Vec<Item>,
    pub immunizations: Vec<Item>,
    pub procedures: Vec<Item>,
    pub encounters: Vec<Item>,
    pub reports: Vec<Item>,
    pub events: Vec<Event>,
    /// Who added resources (the Provenances a provider's write carries): who, when, how many.
    pub added_by: Vec<Item>,
    /// Resources of other types (Practitioner, Organization, Provenance, …).
    pub others: usize,
}

impl Chart {
    /// Whether it holds only what the seed's form has (a Patient and Conditions): such a
    /// record is shown, and edited, as the form.
    pub(crate) fn is_form_shaped(&self) -> bool {
        self.labs.is_empty()
            && self.vitals.is_empty()
            && self.observations.is_empty()
            && self.medications.is_empty()
            && self.allergies.is_empty()
            && self.immunizations.is_empty()
            && self.procedures.is_empty()
            && self.encounters.is_empty()
            && self.reports.is_empty()
            && self.others == 0
    }

    /// The chart of one record's bundle.
    pub(crate) fn of(bundle: &Value) -> Self {
        let mut c = Chart::default();
        for e in bundle["entry"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            c.add(&e["resource"]);
        }
        c
    }

    fn event(&mut self, date: &str, kind: &'static str, text: &str) {
        if !date.is_empty() {
            self.events.push(Event {
                date: date.to_owned(),
                kind,
                text: text.to_owned(),
            });
        }
    }

    fn add(&mut self, r: &Value) {
        match r["resourceType"].as_str().unwrap_or_default() {
            "Patient" => {
                let n = &r["name"][0];
                let name = n["text"].as_str().map(str::to_owned).unwrap_or_else(|| {
                    let given: Vec<&str> = n["given"]
                        .as_array()
                        .map(|g| g.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let family = n["family"].as_str().unwrap_or_default();
                    format!("{} {family}", given.join(" ")).trim().to_owned()
                });
                let born = text(&r["birthDate"]);
                self.patient = Some((name, born));
            }
            "Observation" => {
                let row = observation(r);
                self.event(
                    &row.date,
                    "Result",
                    &format!("{} {} {}", row.name, row.value, row.unit),
                );
                match category(r).as_deref() {
                    Some("laboratory") => self.labs.push(row),
                    Some("vital-signs") => self.vitals.push(row),
                    _ => self.observations.push(row),
                }
            }
            t @ ("MedicationStatement" | "MedicationRequest") => {
                let statement = t == "MedicationStatement";
                let dosage = if statement {
                    text(&r["dosage"][0]["text"])
                } else {
                    text(&r["dosageInstruction"][0]["text"])
                };
                let date = if statement {
                    first(&[
                        &r["effectiveDateTime"],
                        &r["effectivePeriod"]["start"],
                        &r["dateAsserted"],
                    ])
                } else {
                    text(&r["authoredOn"])
                };
                let name = first_cc(&[&r["medicationCodeableConcept"]])
                    .or_else(|| {
                        r["medicationReference"]["display"]
                            .as_str()
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                let kind = if statement { "Taking" } else { "Prescribed" };
                self.event(
                    &date,
                    if statement {
                        "Medication"
                    } else {
                        "Prescription"
                    },
                    &name,
                );
                self.medications.push(MedRow {
                    name,
                    kind,
                    status: text(&r["status"]),
                    dosage,
                    date,
                });
            }
            "AllergyIntolerance" => {
                let crit = text(&r["criticality"]);
                let reactions: Vec<String> = r["reaction"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .flat_map(|x| {
                        x["manifestation"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|m| cc(&m))
                    })
                    .filter(|s| !s.is_empty())
                    .collect();
                let substance = cc(&r["code"]);
                self.event(&text(&r["recordedDate"]), "Allergy", &substance);
                self.allergies.push(AllergyRow {
                    substance,
                    high: crit == "high",
                    criticality: match crit.as_str() {
                        "high" => "High".into(),
                        "low" => "Low".into(),
                        "unable-to-assess" => "Unable to assess".into(),
                        "" => "Not stated".into(),
                        other => other.into(),
                    },
                    status: cc(&r["clinicalStatus"]),
                    reactions: reactions.join(", "),
                });
            }
            "Condition" => {
                let item = Item {
                    name: cc(&r["code"]),
                    status: cc(&r["clinicalStatus"]),
                    date: first(&[
                        &r["onsetDateTime"],
                        &r["onsetPeriod"]["start"],
                        &r["recordedDate"],
                    ]),
                    note: String::new(),
                };
                self.event(&item.date, "Condition", &item.name);
                self.conditions.push(item);
            }
            "Immunization" => {
                let item = Item {
                    name: cc(&r["vaccineCode"]),
                    status: text(&r["status"]),
                    date: first(&[&r["occurrenceDateTime"], &r["recorded"]]),
                    note: String::new(),
                };
                self.event(&item.date, "Immunization", &item.name);
                self.immunizations.push(item);
            }
            "Procedure" => {
                let item = Item {
                    name: cc(&r["code"]),
                    status: text(&r["status"]),
                    date: first(&[&r["performedDateTime"], &r["performedPeriod"]["start"]]),
                    note: String::new(),
                };
                self.event(&item.date, "Procedure", &item.name);
                self.procedures.push(item);
            }
            "Encounter" => {
                let name = first_cc(&[&r["type"][0], &r["serviceType"]])
                    .unwrap_or_else(|| first(&[&r["class"]["display"], &r["class"]["code"]]));
                let item = Item {
                    name,
                    status: text(&r["status"]),
                    date: text(&r["period"]["start"]),
                    note: String::new(),
                };
                self.event(&item.date, "Encounter", &item.name);
                self.encounters.push(item);
            }
            "DiagnosticReport" => {
                let item = Item {
                    name: cc(&r["code"]),
                    status: text(&r["status"]),
                    date: first(&[
                        &r["effectiveDateTime"],
                        &r["effectivePeriod"]["start"],
                        &r["issued"],
                    ]),
                    note: text(&r["conclusion"]),
                };
                self.event(&item.date, "Report", &item.name);
                self.reports.push(item);
            }
            "Provenance" => {
                self.others += 1;
                let who = &r["agent"][0]["who"];
                let name = who["display"]
                    .as_str()
                    .or(who["identifier"]["value"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                let n = r["target"].as_array().map_or(0, Vec::len);
                let item = Item {
                    name,
                    status: String::new(),
                    date: text(&r["recorded"]),
                    note: format!("{n} resource{}", if n == 1 { "" } else { "s" }),
                };
                self.event(&item.date, "Written by", &item.name);
                self.added_by.push(item);
            }
            _ => self.others += 1,
        }
    }
}

/// A string field, or "".
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        _ => String::new(),
    }
}

/// The first of these fields that is set.
fn first(vs: &[&Value]) -> String {
    vs.iter()
        .map(|v| text(v))
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}

/// A CodeableConcept's text, else its first coding's display, else its code.
fn cc(v: &Value) -> String {
    if let Some(t) = v["text"].as_str() {
        return t.to_owned();
    }
    let codings = v["coding"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    codings
        .iter()
        .find_map(|c| c["display"].as_str())
        .or_else(|| codings.iter().find_map(|c| c["code"].as_str()))
        .unwrap_or_default()
        .to_owned()
}

fn first_cc(vs: &[&Value]) -> Option<String> {
    vs.iter().map(|v| cc(v)).find(|s| !s.is_empty())
}

/// An Observation's first category code (`laboratory`, `vital-signs`, …).
fn category(r: &Value) -> Option<String> {
    r["category"]
        .as_array()?
        .iter()
        .flat_map(|c| c["coding"].as_array().cloned().unwrap_or_default())
        .find_map(|c| c["code"].as_str().map(str::to_owned))
}

/// A Quantity as (value, unit).
fn quantity(q: &Value) -> Option<(String, String)> {
    let value = text(&q["value"]);
    if value.is_empty() {
        return None;
    }
    let unit = q["unit"]
        .as_str()
        .or(q["code"].as_str())
        .unwrap_or_default();
    let comparator = q["comparator"].as_str().unwrap_or_default();
    Some((format!("{comparator}{value}"), unit.to_owned()))
}

/// An Observation's value[x] as (value, unit).
fn value(r: &Value) -> (String, String) {
    if let Some(q) = quantity(&r["valueQuantity"]) {
        return q;
    }
    let cc_value = cc(&r["valueCodeableConcept"]);
    if !cc_value.is_empty() {
        return (cc_value, String::new());
    }
    for k in [
        "valueString",
        "valueInteger",
        "valueBoolean",
        "valueDateTime",
        "valueTime",
    ] {
        let s = text(&r[k]);
        if !s.is_empty() {
            return (s, String::new());
        }
    }
    if let (Some(lo), Some(hi)) = (
        quantity(&r["valueRange"]["low"]),
        quantity(&r["valueRange"]["high"]),
    ) {
        return (format!("{}–{}", lo.0, hi.0), hi.1);
    }
    (String::new(), String::new())
}

fn observation(r: &Value) -> ObsRow {
    let (mut value, mut unit) = value(r);
    // Components (blood pressure): "142/90" when they share a unit.
    if value.is_empty()
        && let Some(parts) = r["component"].as_array()
    {
        let vals: Vec<(String, String)> = parts
            .iter()
            .filter_map(|c| quantity(&c["valueQuantity"]))
            .collect();
        if !vals.is_empty() && vals.iter().all(|v| v.1 == vals[0].1) {
            value = vals
                .iter()
                .map(|v| v.0.as_str())
                .collect::<Vec<_>>()
                .join("/");
            unit = vals[0].1.clone();
        } else {
            value = parts
                .iter()
                .map(|c| {
                    let (v, u) = self::value(c);
                    format!("{} {v} {u}", cc(&c["code"])).trim().to_owned()
                })
                .collect::<Vec<_>>()
                .join("; ");
        }
    }
    let rr = &r["referenceRange"][0];
    let range = match (quantity(&rr["low"]), quantity(&rr["high"])) {
        (Some(lo), Some(hi)) => format!("{}–{} {}", lo.0, hi.0, hi.1),
        (Some(lo), None) => format!("≥ {} {}", lo.0, lo.1),
        (None, Some(hi)) => format!("≤ {} {}", hi.0, hi.1),
        (None, None) => text(&rr["text"]),
    }
    .trim()
    .to_owned();
    let interp = &r["interpretation"][0];
    let code = interp["coding"][0]["code"].as_str().unwrap_or_default();
    let flag = match code {
        "H" => Some("High".to_owned()),
        "HH" | "HU" => Some("Critically high".to_owned()),
        "L" => Some("Low".to_owned()),
        "LL" | "LU" => Some("Critically low".to_owned()),
        "A" => Some("Abnormal".to_owned()),
        "AA" => Some("Critically abnormal".to_owned()),
        "N" => Some("Normal".to_owned()),
        _ => Some(cc(interp)).filter(|s| !s.is_empty()),
    };
    ObsRow {
        name: cc(&r["code"]),
        value,
        unit,
        range,
        abnormal: flag.is_some() && code != "N",
        flag,
        date: first(&[
            &r["effectiveDateTime"],
            &r["effectivePeriod"]["start"],
            &r["effectiveInstant"],
            &r["issued"],
        ]),
    }
}

/// `2024-04-30T09:10:00Z` as `2024-04-30 09:10`; a date as itself.
pub(crate) fn when(s: &str) -> String {
    match s.split_once('T') {
        Some((d, t)) if t.len() >= 5 => format!("{d} {}", &t[..5]),
        Some((d, _)) => d.to_owned(),
        None => s.to_owned(),
    }
}

fn obs_table(title: &str, rows: &[ObsRow]) -> Markup {
    html! {
        @if !rows.is_empty() {
            section.chart aria-label=(title) {
                h3 { (title) }
                div.table-wrap {
                    table.results {
                        thead { tr { th scope="col" { "Test" } th scope="col" { "Result" } th scope="col" { "Unit" } th scope="col" { "Flag" } th scope="col" { "Reference range" } th scope="col" { "Date" } } }
                        tbody {
                            @for o in rows {
                                tr.abnormal[o.abnormal] {
                                    th scope="row" { (o.name) }
                                    td.num { (o.value) }
                                    td.unit { (o.unit) }
                                    td.flagcell { @if let Some(f) = &o.flag { span.flag.abnormal[o.abnormal] { (f) } } }
                                    td.range data-label="Range" { (o.range) }
                                    td.date data-label="Date" { (when(&o.date)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn items(title: &str, rows: &[Item]) -> Markup {
    html! {
        @if !rows.is_empty() {
            section.chart aria-label=(title) {
                h3 { (title) }
                ul.items {
                    @for i in rows {
                        li {
                            strong { (i.name) }
                            @if !i.status.is_empty() { " · " (i.status) }
                            @if !i.date.is_empty() { " · " (when(&i.date)) }
                            @if !i.note.is_empty() { br; span.small { (i.note) } }
                        }
                    }
                }
            }
        }
    }
}

/// The chart's sections, for a record card.
pub(crate) fn render(c: &Chart) -> Markup {
    html! {
        @if let Some((name, born)) = &c.patient {
            p.patient-line { strong { (name) } @if !born.is_empty() { " · born " (born) } }
        }
        @if !c.allergies.is_empty() {
            section.chart aria-label="Allergies" {
                h3 { "Allergies" }
                ul.items {
                    @for a in &c.allergies {
                        li.allergy.high[a.high] {
                            strong { (a.substance) }
                            " · criticality: " span.criticality { (a.criticality) }
                            @if !a.status.is_empty() { " · " (a.status) }
                            @if !a.reactions.is_empty() { br; span.small { "Reaction: " (a.reactions) } }
                        }
                    }
                }
            }
        }
        (items("Conditions", &c.conditions))
        @if !c.medications.is_empty() {
            section.chart aria-label="Medications" {
                h3 { "Medications" }
                ul.items {
                    @for m in &c.medications {
                        li {
                            strong { (m.name) }
                            " · " (m.kind)
                            @if !m.status.is_empty() { " (" (m.status) ")" }
                            @if !m.date.is_empty() { " · " (when(&m.date)) }
                            @if !m.dosage.is_empty() { br; span.small { "Dosage: " (m.dosage) } }
                        }
                    }
                }
            }
        }
        (obs_table("Lab results", &c.labs))
        (obs_table("Vital signs", &c.vitals))
        (obs_table("Other observations", &c.observations))
        (items("Reports", &c.reports))
        (items("Immunizations", &c.immunizations))
        (items("Procedures", &c.procedures))
        (items("Encounters", &c.encounters))
        (items("Added by providers", &c.added_by))
    }
}

/// A patient's timeline: every dated thing in these charts, newest first.
pub(crate) fn timeline<'c>(charts: impl IntoIterator<Item = (u64, &'c Chart)>) -> Markup {
    let mut events: Vec<(u64, &Event)> = charts
        .into_iter()
        .flat_map(|(id, c)| c.events.iter().map(move |e| (id, e)))
        .collect();
    events.sort_by(|a, b| b.1.date.cmp(&a.1.date));
    html! {
        @if !events.is_empty() {
            section.card.timeline aria-labelledby="timeline" {
                h2 #timeline { "Timeline" }
                ol.timeline {
                    @for (id, e) in &events {
                        li {
                            time datetime=(e.date) { (when(&e.date)) }
                            " " span.kind { (e.kind) } " " (e.text)
                            " " span.small { "(record " (id) ")" }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rich() -> Value {
        serde_json::from_str(include_str!("../../../fhir/testdata/rich-bundle.json")).unwrap()
    }

    #[test]
    fn a_rich_record_reads_as_a_chart() {
        let c = Chart::of(&rich());
        assert_eq!(c.patient, Some(("Jane Doe".into(), "1984-02-29".into())));
        let hba1c = &c.labs[0];
        assert_eq!(
            (
                hba1c.name.as_str(),
                hba1c.value.as_str(),
                hba1c.unit.as_str()
            ),
            ("Hemoglobin A1c", "6.9", "%")
        );
        assert!(!hba1c.range.is_empty(), "{hba1c:?}");
        assert!(hba1c.flag.is_some() && hba1c.abnormal, "{hba1c:?}");
        let bp = &c.vitals[0];
        assert!(bp.value.contains('/') && bp.unit == "mmHg", "{bp:?}");
        assert_eq!(c.observations[0].value, "Ex-smoker");
        assert_eq!(c.allergies[0].substance, "Penicillin G");
        assert_eq!(c.allergies[0].criticality, "High");
        assert!(c.allergies[0].high);
        assert_eq!(c.allergies[0].reactions, "Hives");
        let meds: Vec<(&str, &str, &str)> = c
            .medications
            .iter()
            .map(|m| (m.name.as_str(), m.kind, m.dosage.as_str()))
            .collect();
        assert_eq!(
            meds,
            [
                ("lisinopril 10 MG Oral Tablet", "Taking", "10 mg once a day"),
                (
                    "metformin 500 mg tablet",
                    "Prescribed",
                    "500 mg twice a day with meals"
                ),
            ]
        );
        assert_eq!(c.conditions[0].name, "Hypertension");
        assert_eq!(c.reports[0].note, "HbA1c slightly high.");
        assert_eq!(c.immunizations[0].date, "2023-10-12");
        assert_eq!(c.procedures[0].name, "Colonoscopy");
        assert_eq!(c.encounters[0].name, "Check-up");
        assert!(c.added_by.is_empty(), "the patient's own upload");
        // The timeline is newest first.
        let t = timeline([(1, &c)]).into_string();
        let a = t.find("Check-up").unwrap();
        let b = t.find("Colonoscopy").unwrap();
        assert!(a < b, "2024 before 2022");
    }

    #[test]
    fn narrative_and_markup_in_data_are_text() {
        let mut v = rich();
        v["entry"][5]["resource"]["code"] =
            serde_json::json!({ "text": "<script>alert(1)</script>" });
        let html = render(&Chart::of(&v)).into_string();
        assert!(!html.contains("<script>"), "escaped");
        assert!(html.contains("&lt;script&gt;"));
        // The Patient's narrative (its text.div, with a script) is never shown, even escaped.
        assert!(
            v["entry"][0]["resource"]["text"]["div"]
                .as_str()
                .unwrap()
                .contains("alert(1)")
        );
        assert_eq!(
            html.matches("alert(1)").count(),
            1,
            "only the code text above"
        );
        assert!(!html.contains("xhtml"));
    }

    #[test]
    fn flags_and_ranges() {
        let o = observation(&serde_json::json!({
            "code": { "text": "Potassium" },
            "valueQuantity": { "value": 3.1, "unit": "mmol/L" },
            "referenceRange": [{ "low": { "value": 3.5, "unit": "mmol/L" }, "high": { "value": 5.1, "unit": "mmol/L" } }],
            "interpretation": [{ "coding": [{ "code": "L" }] }],
            "effectiveDateTime": "2024-05-01T08:30:00Z"
        }));
        assert_eq!(o.range, "3.5–5.1 mmol/L");
        assert_eq!(o.flag.as_deref(), Some("Low"));
        assert!(o.abnormal);
        assert_eq!(when(&o.date), "2024-05-01 08:30");
        let n = observation(
            &serde_json::json!({ "interpretation": [{ "coding": [{ "code": "N" }] }] }),
        );
        assert!(!n.abnormal);
    }
}
