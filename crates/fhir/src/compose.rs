//! Adding to a record: what a writer posts (a Bundle of new resources) joined to the
//! record's current bundle as its next version, with a `Provenance` naming the author when
//! a provider wrote it. References may use the ids SecureEHR's FHIR API gives a record's
//! resources ([`server_id`]); they are pointed at the resources they name.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::check::{index, join};
use crate::*;

/// Who wrote a version, as its `Provenance` names them.
#[derive(Clone, Copy, Debug)]
pub struct Author<'a> {
    /// The identifier system naming authors (SecureEHR's providers: `urn:secure-ehr:provider`).
    pub system: &'a str,
    /// The author's identifier in it (a provider's address).
    pub value: &'a str,
    /// A name to show, if any.
    pub display: Option<&'a str>,
    /// When it was written, unix seconds.
    pub at: u64,
}

/// The record a writer adds to: its current bundle and the ids the API gives it.
#[derive(Clone, Copy, Debug)]
pub struct Base<'a> {
    /// The current version's bundle.
    pub bundle: &'a Value,
    /// The record's id.
    pub record_id: u64,
}

/// The id SecureEHR's FHIR API gives a resource of a record: the patient's ID for its
/// Patient, `{record}-{entry}` (its place in the current bundle) for every other one.
pub fn server_id(resource_type: &str, record_id: u64, patient_id: u64, entry: usize) -> String {
    if resource_type == "Patient" {
        patient_id.to_string()
    } else {
        format!("{record_id}-{entry}")
    }
}

/// A FHIR `instant` (UTC, seconds) for unix seconds `t`.
pub fn instant(t: u64) -> String {
    let days = (t / 86_400) as i64;
    let s = t % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        Date::from_unix_days(days),
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// The next version of a record: `base`'s entries (none for a new record), then the entries
/// of the Bundle `added`, then — when `author` is given — a `Provenance` whose targets are
/// the added resources. The result is a `collection` (requests are dropped: the resources
/// were added).
///
/// Added to an existing record, the entries may not hold a Patient (the record has one) nor
/// a resource already in it, and a transaction's requests must be `POST`s. References of
/// the form `Patient/{patient_id}` (and, to a base, `{Type}/{record}-{entry}`) are pointed
/// at the resource they name. Every error names its path in `added`; nothing is kept.
/// `mint` gives fresh UUIDs for entries without a `fullUrl`.
pub fn add_to_record(
    base: Option<Base<'_>>,
    patient_id: u64,
    added: &[u8],
    author: Option<Author<'_>>,
    mint: &mut dyn FnMut() -> String,
    today: Date,
) -> Result<Bundle, ValidationErrors> {
    let value = validate::json_body(added)?;
    let Some(entries) = value.get("entry").and_then(Value::as_array) else {
        // Not a bundle with entries: the validator says what is wrong, at the right paths.
        return Err(validate_value(&value, today)
            .err()
            .unwrap_or_else(|| ValidationErrors::single("entry", Rule::Missing)));
    };
    let base_entries: &[Value] = base
        .and_then(|b| b.bundle.get("entry").and_then(Value::as_array))
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut errors = Vec::new();
    if value.get("type").and_then(Value::as_str) == Some("transaction") {
        for (i, e) in entries.iter().enumerate() {
            if let Some(m) = e.pointer("/request/method")
                && m.as_str() != Some("POST")
            {
                errors.push(FieldError {
                    path: join(&index("entry", i), "request.method"),
                    rule: Rule::NotAllowed {
                        expected: "POST (resources are added to the record)",
                    },
                });
            }
        }
    }

    // What the added resources may call the base's: its entries' fullUrls and Type/ids,
    // and the ids the API gives them.
    let mut names: HashMap<String, String> = HashMap::new();
    let mut taken: Vec<String> = Vec::new();
    for (i, e) in base_entries.iter().enumerate() {
        let t = e["resource"]["resourceType"].as_str().unwrap_or_default();
        let own = own_reference(e);
        if let Some(url) = e["fullUrl"].as_str() {
            taken.push(url.to_owned());
        }
        if let Some(id) = e["resource"]["id"].as_str() {
            taken.push(format!("{t}/{id}"));
        }
        if let (Some(b), Some(own)) = (base, own) {
            names.insert(
                format!("{t}/{}", server_id(t, b.record_id, patient_id, i)),
                own,
            );
        }
    }
    // Added to a new record, `Patient/{patient_id}` names the added Patient.
    if base.is_none()
        && let Some(own) = entries
            .iter()
            .find(|e| e["resource"]["resourceType"] == "Patient")
            .and_then(own_reference)
    {
        names.insert(format!("Patient/{patient_id}"), own);
    }

    let mut out: Vec<Value> = base_entries.iter().map(without_request).collect();
    let mut targets = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let path = index("entry", i);
        let mut e = without_request(e);
        if base.is_some() && e["resource"]["resourceType"] == "Patient" {
            errors.push(FieldError {
                path: join(&path, "resource"),
                rule: Rule::DuplicatePatient,
            });
        }
        let t = e["resource"]["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(url) = e["fullUrl"].as_str()
            && taken.iter().any(|u| u == url)
        {
            errors.push(FieldError {
                path: join(&path, "fullUrl"),
                rule: Rule::NotAllowed {
                    expected: "a resource not already in the record",
                },
            });
        }
        if let Some(id) = e["resource"]["id"].as_str()
            && taken.contains(&format!("{t}/{id}"))
        {
            errors.push(FieldError {
                path: join(&path, "resource.id"),
                rule: Rule::NotAllowed {
                    expected: "a resource not already in the record",
                },
            });
        }
        if let Some(r) = e.get_mut("resource") {
            rewrite(r, &names, 0);
        }
        if e.get("fullUrl").is_none()
            && let Some(obj) = e.as_object_mut()
        {
            obj.insert("fullUrl".into(), json!(format!("urn:uuid:{}", mint())));
        }
        targets.push(json!({ "reference": e["fullUrl"] }));
        out.push(e);
    }
    if !errors.is_empty() {
        return Err(ValidationErrors { errors, omitted: 0 });
    }
    if let Some(a) = author {
        out.push(provenance(a, targets, mint));
    }
    let mut bundle = Map::new();
    bundle.insert("resourceType".into(), json!("Bundle"));
    bundle.insert("type".into(), json!("collection"));
    if let Some(b) = base
        && let Some(id) = b.bundle.get("identifier")
    {
        bundle.insert("identifier".into(), id.clone());
    }
    bundle.insert("entry".into(), Value::Array(out));
    let offset = base_entries.len();
    validate_value(&Value::Object(bundle), today).map_err(|mut e| {
        // Paths in what was posted, not in the joined bundle.
        for err in &mut e.errors {
            err.path = shift(&err.path, offset);
        }
        e
    })
}

/// How an entry's resource is referred to in its bundle: its `fullUrl`, else `Type/id`.
fn own_reference(e: &Value) -> Option<String> {
    e["fullUrl"].as_str().map(str::to_owned).or_else(|| {
        let r = &e["resource"];
        Some(format!(
            "{}/{}",
            r["resourceType"].as_str()?,
            r["id"].as_str()?
        ))
    })
}

fn without_request(e: &Value) -> Value {
    let mut e = e.clone();
    if let Some(obj) = e.as_object_mut() {
        obj.remove("request");
    }
    e
}

fn provenance(a: Author<'_>, targets: Vec<Value>, mint: &mut dyn FnMut() -> String) -> Value {
    let mut who = json!({ "identifier": { "system": a.system, "value": a.value } });
    if let Some(d) = a.display {
        who["display"] = json!(d);
    }
    json!({
        "fullUrl": format!("urn:uuid:{}", mint()),
        "resource": {
            "resourceType": "Provenance",
            "target": targets,
            "recorded": instant(a.at),
            "activity": { "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                "code": "CREATE",
                "display": "create",
            }] },
            "agent": [{
                "type": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "code": "author",
                    "display": "Author",
                }] },
                "who": who,
            }],
        },
    })
}

/// Rewrites every `reference` string found in `names`.
fn rewrite(v: &mut Value, names: &HashMap<String, String>, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "reference"
                    && let Some(new) = child.as_str().and_then(|s| names.get(s))
                {
                    *child = json!(new);
                    continue;
                }
                rewrite(child, names, depth + 1);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite(i, names, depth + 1)),
        _ => {}
    }
}

/// `entry[j]…` as `entry[j - offset]…` for the added entries.
fn shift(path: &str, offset: usize) -> String {
    let Some(rest) = path.strip_prefix("entry[") else {
        return path.to_owned();
    };
    let Some((n, tail)) = rest.split_once(']') else {
        return path.to_owned();
    };
    match n.parse::<usize>() {
        Ok(j) if j >= offset => format!("entry[{}]{tail}", j - offset),
        _ => path.to_owned(),
    }
}
