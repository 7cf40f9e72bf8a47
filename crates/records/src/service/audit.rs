//! What a patient sees of their own records: the records with their versions, and who
//! read them.

use ehr_chain::RegistryExt;
use ehr_node::manifest;
use ehr_node::nonce_version;
use ehr_primitives::unix_now;

use super::*;
use crate::Result;
use crate::session::*;
use crate::views::*;

impl Service {
    /// The session patient's records with their versions.
    pub async fn my_records(&self, session: &PatientSession) -> Result<Vec<RecordSummary>> {
        let names = self.username_of();
        let mut directory = None;
        let mut out = Vec::new();
        for id in self.registry.records_of(session.address()).await? {
            let versions = self.registry.record_versions(id).await?;
            // The directory is fetched only when a provider wrote something.
            if directory.is_none() && versions.iter().any(|v| v.author != v.owner) {
                directory = Some(
                    self.directory(false)
                        .await?
                        .into_iter()
                        .map(|d| (d.address, d))
                        .collect(),
                );
            }
            let empty = std::collections::HashMap::new();
            let dir = directory.as_ref().unwrap_or(&empty);
            let Some(last) = versions.last() else {
                continue;
            };
            out.push(RecordSummary {
                record_id: id,
                version: last.version,
                updated_at: last.timestamp,
                versions: versions
                    .iter()
                    .map(|v| {
                        Ok(VersionInfo {
                            version: v.version,
                            manifest_cid: manifest::manifest_cid(v.digest, v.codec)?.to_string(),
                            timestamp: v.timestamp,
                            tx_hash: v.tx_hash,
                            author: v.author,
                            author_name: self.author_of(v.owner, v.author, &names, dir),
                        })
                    })
                    .collect::<Result<_>>()?,
            });
        }
        out.sort_by_key(|r| r.record_id);
        Ok(out)
    }

    /// Who read the session patient's records, newest first. Every read that only a
    /// break-glass window allowed — the one that opened it and every later one inside it —
    /// is marked `emergency`, with the reason given when the window was opened.
    pub async fn access_log(&self, session: &PatientSession) -> Result<Vec<AccessLogEntry>> {
        let names = self.username_of();
        // Providers of other organisations: who and where, from the directory (this
        // server's own providers are named without their organisation).
        let directory: std::collections::HashMap<_, _> = self
            .directory(false)
            .await?
            .into_iter()
            .map(|d| (d.address, d))
            .collect();
        let emergencies = self.registry.emergency_log(session.address()).await?;
        let mut out = Vec::new();
        for id in self.registry.records_of(session.address()).await? {
            for e in self.registry.access_log(id, None, None).await? {
                // The window a read used is the reader's last break-glass on that record
                // logged before it (or in the same transaction).
                let emergency = e
                    .emergency
                    .then(|| {
                        emergencies.iter().rev().find(|x| {
                            x.record_id == e.record_id
                                && x.provider == e.reader
                                && x.block_number <= e.block_number
                        })
                    })
                    .flatten();
                out.push(AccessLogEntry {
                    record_id: e.record_id,
                    version: Some(nonce_version(e.nonce)).filter(|v| *v != 0),
                    reader: e.reader,
                    reader_username: names
                        .get(&e.reader)
                        .cloned()
                        .or_else(|| directory.get(&e.reader).and_then(|d| d.username.clone())),
                    reader_organisation: directory
                        .get(&e.reader)
                        .filter(|d| !d.local)
                        .map(|d| d.organisation.clone()),
                    timestamp: e.timestamp,
                    tx_hash: e.tx_hash,
                    emergency: e.emergency,
                    reason: emergency.and_then(|x| self.reasons.get(x.reason_digest)),
                });
            }
        }
        out.sort_by_key(|e| std::cmp::Reverse((e.timestamp, e.record_id)));
        Ok(out)
    }

    /// What the session patient would want to know on arriving: the reads of their
    /// records by others since their last visit (the sign-in before this session; since
    /// the account began on the first), break-glass ones with their reasons, and the
    /// grants that end within [`EXPIRY_NOTICE`]. Block times are whole seconds: a read in
    /// the second of the last visit counts as new (told twice, rather than never).
    pub async fn since_last_visit(&self, session: &PatientSession) -> Result<SinceLastVisit> {
        let since = session.session().previous_visit;
        let reads = self
            .access_log(session)
            .await?
            .into_iter()
            .filter(|e| e.reader != session.address() && e.timestamp >= since.unwrap_or(0))
            .collect();
        let now = self.registry.info().await?.head_timestamp.max(unix_now());
        let mut expiring: Vec<GrantView> = self
            .grants(session)
            .await?
            .into_iter()
            .filter(|g| g.active && g.expires_at <= now + EXPIRY_NOTICE)
            .collect();
        expiring.sort_by_key(|g| g.expires_at);
        Ok(SinceLastVisit {
            since,
            reads,
            expiring,
        })
    }
}

/// How soon before its end a grant is "about to expire": seven days.
pub const EXPIRY_NOTICE: u64 = 7 * 86_400;
