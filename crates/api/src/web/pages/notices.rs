//! "Since your last visit", at the top of a patient's pages: new reads of their records,
//! break-glass ones highlighted with the reason, and grants about to expire.

use maud::{Markup, html};

use crate::svc::SinceLastVisit;

/// Reads listed one by one before the rest are counted.
const LISTED: usize = 5;

pub(crate) fn since_last_visit(n: &SinceLastVisit) -> Markup {
    let fmt = super::super::fmt_time;
    let (emergency, reads): (Vec<_>, Vec<_>) = n.reads.iter().partition(|e| e.emergency);
    let who = |e: &crate::svc::AccessLogEntry| {
        let name = e
            .reader_username
            .clone()
            .unwrap_or_else(|| e.reader.to_string());
        match &e.reader_organisation {
            Some(org) => format!("{name} ({org})"),
            None => name,
        }
    };
    html! {
        section.notices aria-labelledby="notices-h" {
            h2 #notices-h {
                @match n.since {
                    Some(t) => { "Since your last visit (" (fmt(t)) ")" },
                    None => { "Since you joined" },
                }
            }
            ul {
                @for e in &emergency {
                    li.emergency {
                        strong { "Emergency access: " }
                        (who(e)) " read record " (e.record_id) " without your grant on " (fmt(e.timestamp)) ". "
                        "Reason given: "
                        @match &e.reason { Some(r) => { "\u{201c}" (r) "\u{201d}" }, None => { em { "not known here" } } }
                    }
                }
                @for e in reads.iter().take(LISTED) {
                    li { (who(e)) " read record " (e.record_id) " on " (fmt(e.timestamp)) "." }
                }
                @if reads.len() > LISTED {
                    li { (reads.len() - LISTED) " more reads." }
                }
                @for g in &n.expiring {
                    li.expiring {
                        "Your grant to " (g.provider.clone().unwrap_or_else(|| g.provider_address.to_string())) " for "
                        @match g.record_id { Some(id) => { "record " (id) }, None => { "all your records" } }
                        " ends on " (fmt(g.expires_at)) "."
                    }
                }
            }
        }
    }
}
