//! The one line each answer prints without `--json`.

use serde::Serialize;

use super::*;

/// A value as the server wrote it, e.g. an address as `0x` and lower-case hex (its
/// `Display` would print the EIP-55 checksum form instead).
pub(super) fn wire(v: &impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// One line per item.
pub(super) fn each<T>(items: &[T], line: impl Fn(&T) -> String) -> String {
    items.iter().map(line).collect::<Vec<_>>().join("\n")
}

pub(super) fn read_record_line(r: &ReadRecord) -> String {
    let who = match &r.form {
        Some(form) => format!(
            "{}, born {}; {}",
            form.patient_name, form.birth_date, form.health_condition
        ),
        None => "FHIR bundle (use --json)".into(),
    };
    let files: String = r
        .attachments
        .iter()
        .map(|a| {
            format!(
                "\n  attachment {}: {}, {} bytes{}",
                a.number,
                a.content_type,
                a.size,
                a.title
                    .as_deref()
                    .map(|t| format!(", {t:?}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    format!(
        "record {} v{} of patient {}: {who}{} (logged in tx {}){files}",
        r.record_id,
        r.version,
        r.patient_id,
        if r.emergency { " [EMERGENCY]" } else { "" },
        r.access_tx
    )
}

pub(super) fn stored_line(v: &Stored) -> String {
    format!(
        "Record stored in IPFS and in Blockchain with ID: {} (version {}, hash code {}, tx {})",
        v.record_id, v.version, v.manifest_cid, v.tx_hash
    )
}

pub(super) fn shared_line(s: &Shared) -> String {
    let scope = s
        .record_id
        .map_or_else(|| "all records".to_owned(), |id| format!("record {id}"));
    let writes = s
        .write_until
        .map_or_else(String::new, |w| format!(" (may add to it until {w})"));
    format!(
        "patient {}: {scope} until {}{writes}",
        s.patient_id, s.expires_at
    )
}

pub(super) fn provider_line(p: &Provider) -> String {
    let name = p.username.as_deref().unwrap_or("?");
    let mut line = format!("{name} {}", wire(&p.address));
    if let Some(d) = p.display_name.as_deref().filter(|d| *d != name) {
        line.push_str(&format!(" \"{d}\""));
    }
    if let Some(s) = p.specialty.as_deref().filter(|s| !s.is_empty()) {
        line.push_str(&format!(" {s}"));
    }
    line.push_str(&format!(" [{}]", p.organisation));
    if p.disabled {
        line.push_str(" (disabled)");
    }
    line
}

/// `provider disable|enable NAME`: the admin's switch, through the JSON API.
pub(super) fn summary_line(r: &RecordSummary) -> String {
    // Versions a provider wrote name it.
    let by: Vec<String> = r
        .versions
        .iter()
        .filter_map(|v| Some(format!("v{} by {}", v.version, v.author_name.as_ref()?)))
        .collect();
    format!(
        "record {} version {} ({} versions{})",
        r.record_id,
        r.version,
        r.versions.len(),
        if by.is_empty() {
            String::new()
        } else {
            format!("; {}", by.join(", "))
        }
    )
}

pub(super) fn log_line(e: &AccessLogEntry) -> String {
    format!(
        "{}record {} v{} read by {} at {}{}",
        if e.emergency { "EMERGENCY " } else { "" },
        e.record_id,
        e.version.map_or_else(|| "-".to_owned(), |v| v.to_string()),
        match (&e.reader_username, &e.reader_organisation) {
            (Some(u), Some(o)) => format!("{u} ({o})"),
            (Some(u), None) => u.clone(),
            (None, Some(o)) => format!("{} ({o})", wire(&e.reader)),
            (None, None) => wire(&e.reader),
        },
        e.timestamp,
        e.reason
            .as_ref()
            .map(|r| format!(" — reason: {r}"))
            .unwrap_or_default()
    )
}

pub(super) fn status_line(v: &Status) -> String {
    format!(
        "{} chain at block {}, contract {}; {} of {} nodes reachable, {} needed",
        v.chain.backend,
        v.chain.head_block,
        wire(&v.chain.contract),
        v.reachable,
        v.n,
        v.k
    )
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// An address as the server writes addresses: lower-case hex.
    const ADDR: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";

    fn tx() -> String {
        format!("0x{}", "ab".repeat(32))
    }

    /// The server's JSON as the typed answer; printing it back with `--json` gives the
    /// same JSON.
    fn answer<T: DeserializeOwned + Serialize>(v: Value) -> T {
        let typed: T = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), v);
        typed
    }

    fn read(form: Value, emergency: bool) -> ReadRecord {
        answer(json!({
            "record_id": 7, "version": 2, "owner": ADDR, "patient_id": 3,
            "manifest_cid": "bafkrei", "bundle": { "resourceType": "Bundle" }, "form": form,
            "access_tx": tx(), "emergency": emergency, "attachments": [],
        }))
    }

    #[test]
    fn lines_show_what_the_server_sent() {
        let tx = tx();
        let form = json!({
            "patient_name": "Jane Doe", "birth_date": "1984-02-29", "address": "",
            "phone": "", "health_condition": "Flu",
        });
        assert_eq!(
            read_record_line(&read(form, true)),
            format!(
                "record 7 v2 of patient 3: Jane Doe, born 1984-02-29; Flu [EMERGENCY] (logged in tx {tx})"
            )
        );
        assert_eq!(
            read_record_line(&read(Value::Null, false)),
            format!("record 7 v2 of patient 3: FHIR bundle (use --json) (logged in tx {tx})")
        );
        let mut with_file = read(Value::Null, false);
        with_file.attachments = vec![answer(json!({
            "number": 1, "content_type": "application/pdf", "title": "letter.pdf",
            "size": 1234, "sha256": null, "created": null,
        }))];
        assert!(
            read_record_line(&with_file)
                .ends_with("\n  attachment 1: application/pdf, 1234 bytes, \"letter.pdf\"")
        );
        let stored: Stored = answer(json!({
            "record_id": 1, "version": 1, "manifest_cid": "bafkrei", "tx_hash": tx,
            "block_number": 9,
        }));
        assert_eq!(
            stored_line(&stored),
            format!(
                "Record stored in IPFS and in Blockchain with ID: 1 (version 1, hash code bafkrei, tx {tx})"
            )
        );
        let summary: RecordSummary = answer(json!({
            "record_id": 1, "version": 2, "updated_at": 5, "versions": [
                { "version": 1, "manifest_cid": "a", "timestamp": 4, "tx_hash": tx,
                  "author": ADDR, "author_name": null },
                { "version": 2, "manifest_cid": "b", "timestamp": 5, "tx_hash": tx,
                  "author": ADDR, "author_name": null },
            ],
        }));
        assert_eq!(summary_line(&summary), "record 1 version 2 (2 versions)");
        // Versions a provider wrote name it.
        let written: RecordSummary = answer(json!({
            "record_id": 1, "version": 2, "updated_at": 5, "versions": [
                { "version": 1, "manifest_cid": "a", "timestamp": 4, "tx_hash": tx,
                  "author": ADDR, "author_name": null },
                { "version": 2, "manifest_cid": "b", "timestamp": 5, "tx_hash": tx,
                  "author": ADDR, "author_name": "drbob" },
            ],
        }));
        assert_eq!(
            summary_line(&written),
            "record 1 version 2 (2 versions; v2 by drbob)"
        );
        let anonymous: AccessLogEntry = answer(json!({
            "record_id": 1, "version": null, "reader": ADDR, "reader_username": null,
            "reader_organisation": null,
            "timestamp": 5, "tx_hash": tx, "emergency": false, "reason": null,
        }));
        assert_eq!(
            log_line(&anonymous),
            format!("record 1 v- read by {ADDR} at 5")
        );
        let glass: AccessLogEntry = answer(json!({
            "record_id": 1, "version": 2, "reader": ADDR, "reader_username": "drbob",
            "reader_organisation": "Hospital B",
            "timestamp": 6, "tx_hash": tx, "emergency": true, "reason": "unconscious",
        }));
        assert_eq!(
            log_line(&glass),
            "EMERGENCY record 1 v2 read by drbob (Hospital B) at 6 — reason: unconscious"
        );
        let entry = |disabled: bool| -> Provider {
            answer(
                json!({ "username": "drbob", "address": ADDR, "display_name": "Dr Bob",
                           "organisation": "Hospital B", "organisation_id": 2,
                           "specialty": "Cardiology", "local": false, "disabled": disabled }),
            )
        };
        assert_eq!(
            provider_line(&entry(false)),
            format!("drbob {ADDR} \"Dr Bob\" Cardiology [Hospital B]")
        );
        assert_eq!(
            provider_line(&entry(true)),
            format!("drbob {ADDR} \"Dr Bob\" Cardiology [Hospital B] (disabled)")
        );
        let unknown: Provider = answer(json!({ "username": null, "address": ADDR,
            "display_name": null, "organisation": "consortium", "organisation_id": 0,
            "specialty": null, "local": false, "disabled": false }));
        assert_eq!(provider_line(&unknown), format!("? {ADDR} [consortium]"));
        let status: Status = answer(json!({
            "chain": { "backend": "embedded", "chain_id": 1337, "head_block": 12,
                       "head_hash": tx, "head_timestamp": 5, "contract": ADDR },
            "k": 3, "n": 2, "reachable": 1,
        }));
        assert_eq!(
            status_line(&status),
            format!(
                "embedded chain at block 12, contract {ADDR}; 1 of 2 nodes reachable, 3 needed"
            )
        );
        let session: Session = answer(json!({
            "token": "t", "username": "alice", "role": "patient", "address": ADDR,
            "expires_at": 5,
        }));
        assert_eq!(session.role.to_string(), "patient");
    }

    #[test]
    fn errors_read_message_field_code_and_status() {
        let e = r#"{"error":"invalid_input","message":"username: too short","field":"username"}"#;
        assert_eq!(
            error_text(e, 400),
            "username: too short [username] (invalid_input, HTTP 400)"
        );
        let e = r#"{"error":"invalid_record","message":"invalid record: 2 errors",
                    "errors":[{"path":"birth_date","message":"in the future"},
                              {"path":"phone","message":"not a phone number"}]}"#;
        assert_eq!(
            error_text(e, 400),
            "invalid record: 2 errors (invalid_record, HTTP 400)\n  birth_date: in the future\n  phone: not a phone number"
        );
        for not_ours in ["", "<html>bad gateway</html>", "{}"] {
            assert_eq!(
                error_text(not_ours, 502),
                "request failed (error, HTTP 502)"
            );
        }
    }
}
