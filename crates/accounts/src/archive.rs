//! The accounts' part of the server's archive: consistent snapshots, the changes since a
//! cursor, and restoring a fresh `accounts.redb` from them.
//!
//! Every write of an account row (sign-up, `update`, the migration of `accounts.json`)
//! also writes the username under the next sequence number into a change table, in the
//! same redb write transaction: a row never commits without its change entry, nor the
//! reverse. The cursor of the archive is that sequence number.
//!
//! Encoding (version 1), JSON lines, each ending in `\n`:
//! - snapshot: `{"format":"secure-ehr accounts snapshot","version":1,"seq":S,
//!   "admin":NAME|null,"accounts":N}` then N lines, one account each (as stored: username,
//!   role, address, password hash, keystore, …), by username;
//! - changes: `{"format":"secure-ehr accounts changes","version":1,"after":A,"seq":S,
//!   "changes":N}` then N lines `{"username":NAME,"account":ACCOUNT|null}` (null: the
//!   account is gone), by username: the state after change S of every account changed in
//!   A+1..=S.
//!
//! Decoding is strict: the header's format, version and counts, unknown fields in the
//! header and change lines, valid usernames, no duplicates, at most one admin, and each
//! change set following on from the one before; any failure is [`Error::Archive`] naming
//! the line (never its contents), and a restore writes nothing.
//! The keystores stay as they are, encrypted under the users' passwords, so every user
//! logs in with their password after a restore.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::db::{AccountChange, AccountsDb};
use crate::{AccountStore, Error, Result, Role, normalize_username};

const SNAPSHOT_FORMAT: &str = "secure-ehr accounts snapshot";
const CHANGES_FORMAT: &str = "secure-ehr accounts changes";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotHeader {
    format: String,
    version: u32,
    seq: u64,
    admin: Option<String>,
    accounts: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangesHeader {
    format: String,
    version: u32,
    after: u64,
    seq: u64,
    changes: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    username: String,
    account: Option<Account>,
}

fn bad(what: &str, reason: impl std::fmt::Display) -> Error {
    Error::Archive(format!("{what}: {reason}"))
}

fn push_line(out: &mut Vec<u8>, value: &impl Serialize) {
    serde_json::to_writer(&mut *out, value).expect("archive lines serialize");
    out.push(b'\n');
}

/// Splits `bytes` into lines, each of which must end in `\n` and not be empty.
fn lines<'a>(what: &str, bytes: &'a [u8]) -> Result<Vec<&'a [u8]>> {
    let Some(body) = bytes.strip_suffix(b"\n") else {
        return Err(bad(what, "does not end with a whole line"));
    };
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    if let Some(i) = lines.iter().position(|l| l.is_empty()) {
        return Err(bad(what, format!("line {} is empty", i + 1)));
    }
    Ok(lines)
}

fn parse<'a, T: Deserialize<'a>>(what: &str, i: usize, line: &'a [u8]) -> Result<T> {
    // Only the position: serde's message may quote usernames or hashes.
    serde_json::from_slice(line).map_err(|e| {
        bad(
            what,
            format!("line {} does not parse (column {})", i + 1, e.column()),
        )
    })
}

fn check_username(what: &str, i: usize, name: &str) -> Result<()> {
    match normalize_username(name) {
        Ok(n) if n == name => Ok(()),
        _ => Err(bad(what, format!("line {} has an invalid username", i + 1))),
    }
}

fn check_header(what: &str, format: &str, expected: &str, version: u32) -> Result<()> {
    if format != expected {
        return Err(bad(what, format!("not an {expected}")));
    }
    if version != VERSION {
        return Err(bad(what, format!("unknown version {version}")));
    }
    Ok(())
}

pub(crate) fn encode_snapshot(seq: u64, accounts: &[Account]) -> Vec<u8> {
    let admin = accounts
        .iter()
        .find(|a| a.role == Role::Admin)
        .map(|a| a.username.clone());
    let mut out = Vec::new();
    push_line(
        &mut out,
        &SnapshotHeader {
            format: SNAPSHOT_FORMAT.into(),
            version: VERSION,
            seq,
            admin,
            accounts: accounts.len() as u64,
        },
    );
    for a in accounts {
        push_line(&mut out, a);
    }
    out
}

pub(crate) fn encode_changes(
    after: u64,
    seq: u64,
    changes: Vec<(String, Option<Account>)>,
) -> Vec<u8> {
    let mut out = Vec::new();
    push_line(
        &mut out,
        &ChangesHeader {
            format: CHANGES_FORMAT.into(),
            version: VERSION,
            after,
            seq,
            changes: changes.len() as u64,
        },
    );
    for (username, account) in changes {
        push_line(&mut out, &Change { username, account });
    }
    out
}

/// A decoded snapshot: its cursor and the accounts by username.
fn decode_snapshot(bytes: &[u8]) -> Result<(u64, BTreeMap<String, Account>)> {
    let what = "snapshot";
    let lines = lines(what, bytes)?;
    let header: SnapshotHeader = parse(what, 0, lines[0])?;
    check_header(what, &header.format, SNAPSHOT_FORMAT, header.version)?;
    if header.accounts != (lines.len() - 1) as u64 {
        return Err(bad(
            what,
            format!(
                "the header says {} accounts, {} follow",
                header.accounts,
                lines.len() - 1
            ),
        ));
    }
    let mut accounts = BTreeMap::new();
    for (i, line) in lines.iter().enumerate().skip(1) {
        let account: Account = parse(what, i, line)?;
        check_username(what, i, &account.username)?;
        let name = account.username.clone();
        if accounts.insert(name, account).is_some() {
            return Err(bad(what, format!("line {} repeats a username", i + 1)));
        }
    }
    let admin = one_admin(what, &accounts)?;
    if admin != header.admin.as_deref() {
        return Err(bad(what, "the header's admin is not the admin account"));
    }
    Ok((header.seq, accounts))
}

/// The admin's username, if any; more than one admin is refused.
fn one_admin<'a>(what: &str, accounts: &'a BTreeMap<String, Account>) -> Result<Option<&'a str>> {
    let mut admins = accounts.values().filter(|a| a.role == Role::Admin);
    let admin = admins.next().map(|a| a.username.as_str());
    if admins.next().is_some() {
        return Err(bad(what, "more than one admin account"));
    }
    Ok(admin)
}

/// A decoded change set: `after`, `seq` and the changes.
type Changes = (u64, u64, Vec<AccountChange>);

fn decode_changes(what: &str, bytes: &[u8]) -> Result<Changes> {
    let lines = lines(what, bytes)?;
    let header: ChangesHeader = parse(what, 0, lines[0])?;
    check_header(what, &header.format, CHANGES_FORMAT, header.version)?;
    if header.seq <= header.after {
        return Err(bad(
            what,
            format!(
                "it ends ({}) at or before it starts ({})",
                header.seq, header.after
            ),
        ));
    }
    if header.changes != (lines.len() - 1) as u64 || header.changes == 0 {
        return Err(bad(
            what,
            format!(
                "the header says {} changes, {} follow",
                header.changes,
                lines.len() - 1
            ),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut changes = Vec::with_capacity(lines.len() - 1);
    for (i, line) in lines.iter().enumerate().skip(1) {
        let change: Change = parse(what, i, line)?;
        check_username(what, i, &change.username)?;
        if change
            .account
            .as_ref()
            .is_some_and(|a| a.username != change.username)
        {
            return Err(bad(
                what,
                format!("line {}: the account is another user's", i + 1),
            ));
        }
        if !seen.insert(change.username.clone()) {
            return Err(bad(what, format!("line {} repeats a username", i + 1)));
        }
        changes.push((change.username, change.account));
    }
    Ok((header.after, header.seq, changes))
}

impl AccountStore {
    /// A consistent snapshot of every account (one read transaction) and the archive
    /// cursor it is at (the newest change's sequence number). See the module doc of
    /// `archive` for the encoding.
    pub fn archive_snapshot(&self) -> Result<(u64, Vec<u8>)> {
        let (seq, accounts) = self.db.archive_snapshot()?;
        Ok((seq, encode_snapshot(seq, &accounts)))
    }

    /// The current value (or a tombstone) of every account changed after cursor `seq`,
    /// read in one read transaction, and the new cursor; `None` if nothing changed. A
    /// cursor ahead of the store, or behind what [`archive_forget_until`] trimmed, is
    /// [`Error::Archive`].
    ///
    /// [`archive_forget_until`]: Self::archive_forget_until
    pub fn archive_changes_since(&self, seq: u64) -> Result<Option<(u64, Vec<u8>)>> {
        Ok(self
            .db
            .archive_changes_since(seq)?
            .map(|(new, changes)| (new, encode_changes(seq, new, changes))))
    }

    /// Trims the change table through cursor `seq` (call it once an epoch holding those
    /// changes is archived); later `archive_changes_since` calls need a cursor ≥ `seq`.
    pub fn archive_forget_until(&self, seq: u64) -> Result<()> {
        self.db.archive_forget_until(seq)
    }

    /// Writes a fresh `accounts.redb` in `dir` (absent or empty; anything else is refused)
    /// from a snapshot plus the change sets after it, in order, each following on from the
    /// one before. Everything is decoded and checked before anything is written. Returns
    /// the number of accounts. The restored store's cursor is the last change set's (or the
    /// snapshot's), so archiving carries on from there.
    pub fn restore_archive(
        dir: impl AsRef<Path>,
        snapshot: &[u8],
        changes: &[Vec<u8>],
    ) -> Result<usize> {
        let dir = dir.as_ref();
        let (mut cursor, mut accounts) = decode_snapshot(snapshot)?;
        for (i, bytes) in changes.iter().enumerate() {
            let what = format!("change set {}", i + 1);
            let (after, seq, set) = decode_changes(&what, bytes)?;
            if after != cursor {
                return Err(bad(
                    &what,
                    format!("it follows change {after}, the one before ends at {cursor}"),
                ));
            }
            for (name, account) in set {
                match account {
                    Some(a) => accounts.insert(name, a),
                    None => accounts.remove(&name),
                };
            }
            cursor = seq;
        }
        one_admin("the restored accounts", &accounts)?;

        match std::fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(Error::Archive(format!(
                        "{} is not empty: restore into a new directory",
                        dir.display()
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(dir, e)),
        }
        let db = AccountsDb::open(dir)?;
        let accounts: Vec<Account> = accounts.into_values().collect();
        db.restore(cursor, &accounts)?;
        Ok(accounts.len())
    }
}
