//! The accounts database: one redb file (`accounts.redb`, mode 0600), an embedded
//! transactional store, and the one-time move of an older `accounts.json` into it.
//!
//! Each account is one row, username → the whole [`Account`] as JSON, so fields added
//! later carry over (`#[serde(default)]`). A sign-up or an [`update`](AccountsDb::update)
//! is one small write transaction, durable (fsync) before it returns; readers never wait
//! for writers (redb's MVCC), so authenticating never waits for a sign-up.
//!
//! redb holds an exclusive lock on the file while it is open: a second process (or a
//! second open in this one) gets [`Error::StoreInUse`] and changes nothing.
//!
//! Migration: if `accounts.json` exists, its accounts are written to the database in one
//! transaction together with a marker, then the file is renamed `accounts.json.migrated`
//! (kept as a backup, never deleted). A crash before the commit leaves the JSON file the
//! only copy and the next start migrates again; a crash after it finds the marker and only
//! finishes the rename.

use std::fs;
use std::path::{Path, PathBuf};

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
};
use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::{ACCOUNTS_FILE, Error, Result, Role};

/// The database's file name inside the accounts directory.
pub const ACCOUNTS_DB: &str = "accounts.redb";
/// What `accounts.json` is renamed to once migrated.
pub const MIGRATED_SUFFIX: &str = ".migrated";

/// username → the account as JSON.
const ACCOUNTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("accounts");
/// Small facts: [`ADMIN_KEY`] → the admin's username, [`MIGRATED_KEY`] → `b"1"`.
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const ADMIN_KEY: &str = "admin";
const MIGRATED_KEY: &str = "migrated-accounts-json";
/// The newest change's sequence number (u64, little-endian; absent: 0).
const SEQ_KEY: &str = "archive-seq";
/// Changes up to this sequence number were trimmed from [`CHANGES`] (absent: 0).
const FORGOTTEN_KEY: &str = "archive-forgotten";
/// Change capture for the archive: sequence number → the username whose row a write
/// changed, written in the same write transaction as the row (so one never commits
/// without the other).
const CHANGES: TableDefinition<'_, u64, &str> = TableDefinition::new("changes");
/// Username → its last sign-in (unix seconds), for "since your last visit". Not an account
/// change: the archive does not carry it (a restored store starts without it).
const VISITS: TableDefinition<'_, &str, u64> = TableDefinition::new("visits");

/// The old accounts file's shape (version 1).
#[derive(Serialize, Deserialize)]
pub(crate) struct AccountsFile {
    pub(crate) version: u32,
    pub(crate) accounts: Vec<Account>,
}

/// A username and its row after a change (`None`: the account is gone).
pub(crate) type AccountChange = (String, Option<Account>);

pub(crate) struct AccountsDb {
    db: Database,
    path: PathBuf,
}

fn db_err(path: &Path) -> impl Fn(redb::Error) -> Error + '_ {
    move |e| Error::Database {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

macro_rules! tx {
    ($self:ident, $e:expr) => {
        $e.map_err(|e| db_err(&$self.path)(e.into()))
    };
}

impl AccountsDb {
    /// Opens (or creates) the database in `dir` and migrates `dir/accounts.json` into it.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(ACCOUNTS_DB);
        if !path.exists() {
            // Created private before redb writes anything into it.
            drop(ehr_fs_util::create_private(&path)?);
        }
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::StoreInUse { path: path.clone() },
            other => db_err(&path)(other.into()),
        })?;
        let this = Self { db, path };
        let w = tx!(this, this.db.begin_write())?;
        tx!(this, w.open_table(ACCOUNTS))?;
        tx!(this, w.open_table(META))?;
        tx!(this, w.open_table(CHANGES))?;
        tx!(this, w.open_table(VISITS))?;
        tx!(this, w.commit())?;
        this.migrate_json(dir)?;
        Ok(this)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Moves `accounts.json` in (see the module doc). Refuses, changing nothing, when the
    /// database already holds accounts that did not come from it.
    fn migrate_json(&self, dir: &Path) -> Result<()> {
        let json = dir.join(ACCOUNTS_FILE);
        // A temporary file the JSON store left in a crash was never acknowledged.
        let tmp = dir.join(format!("{ACCOUNTS_FILE}.tmp"));
        if tmp.exists() {
            fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        let bytes = match fs::read(&json) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&json, e)),
        };
        let w = tx!(self, self.db.begin_write())?;
        let done = tx!(self, tx!(self, w.open_table(META))?.get(MIGRATED_KEY))?.is_some();
        if !done {
            let accounts = parse_json(&json, &bytes)?;
            {
                let mut table = tx!(self, w.open_table(ACCOUNTS))?;
                if !tx!(self, table.is_empty())? {
                    return Err(Error::CorruptStore {
                        path: json,
                        reason: format!(
                            "{ACCOUNTS_DB} already holds accounts; move one of the two away"
                        ),
                    });
                }
                let mut meta = tx!(self, w.open_table(META))?;
                let mut changes = tx!(self, w.open_table(CHANGES))?;
                for a in &accounts {
                    tx!(
                        self,
                        table.insert(a.username.as_str(), encode(a).as_slice())
                    )?;
                    self.record_change(&mut meta, &mut changes, &a.username)?;
                    if a.role == Role::Admin {
                        tx!(self, meta.insert(ADMIN_KEY, a.username.as_bytes()))?;
                    }
                }
                tx!(self, meta.insert(MIGRATED_KEY, b"1".as_slice()))?;
            }
            tx!(self, w.commit())?;
        } else {
            tx!(self, w.abort())?;
        }
        // The backup keeps the old file; an earlier backup is never overwritten.
        let mut backup = dir.join(format!("{ACCOUNTS_FILE}{MIGRATED_SUFFIX}"));
        let mut i = 1;
        while backup.exists() {
            backup = dir.join(format!("{ACCOUNTS_FILE}{MIGRATED_SUFFIX}.{i}"));
            i += 1;
        }
        fs::rename(&json, &backup).map_err(|e| Error::io(&json, e))?;
        ehr_fs_util::sync_dir(dir)?;
        Ok(())
    }

    pub(crate) fn len(&self) -> Result<u64> {
        let r = tx!(self, self.db.begin_read())?;
        tx!(self, tx!(self, r.open_table(ACCOUNTS))?.len())
    }

    pub(crate) fn has_admin(&self) -> Result<bool> {
        let r = tx!(self, self.db.begin_read())?;
        Ok(tx!(self, tx!(self, r.open_table(META))?.get(ADMIN_KEY))?.is_some())
    }

    /// The admin's account, if there is one.
    pub(crate) fn admin(&self) -> Result<Option<Account>> {
        let username = {
            let r = tx!(self, self.db.begin_read())?;
            let meta = tx!(self, r.open_table(META))?;
            match tx!(self, meta.get(ADMIN_KEY))? {
                Some(v) => String::from_utf8_lossy(v.value()).into_owned(),
                None => return Ok(None),
            }
        };
        self.get(&username)
    }

    pub(crate) fn get(&self, username: &str) -> Result<Option<Account>> {
        let r = tx!(self, self.db.begin_read())?;
        let t = tx!(self, r.open_table(ACCOUNTS))?;
        tx!(self, t.get(username))?
            .map(|v| self.decode(v.value()))
            .transpose()
    }

    /// Every account, by username.
    pub(crate) fn for_each(&self, mut f: impl FnMut(Account)) -> Result<()> {
        let r = tx!(self, self.db.begin_read())?;
        let t = tx!(self, r.open_table(ACCOUNTS))?;
        for row in tx!(self, t.iter())? {
            let (_, v) = tx!(self, row)?;
            f(self.decode(v.value())?);
        }
        Ok(())
    }

    /// Adds a new account, durably; [`Error::UsernameTaken`] or [`Error::AdminExists`]
    /// (checked inside the transaction, so concurrent sign-ups of one name yield one).
    /// With `key_brought` (the user brought the key, so it may be another account's) an
    /// account already holding its address is [`Error::KeyInUse`], checked in the same
    /// transaction: two sign-ups racing with one key yield one account.
    pub(crate) fn insert_new(&self, account: &Account, key_brought: bool) -> Result<()> {
        let w = tx!(self, self.db.begin_write())?;
        {
            let mut table = tx!(self, w.open_table(ACCOUNTS))?;
            let mut meta = tx!(self, w.open_table(META))?;
            if account.role == Role::Admin && tx!(self, meta.get(ADMIN_KEY))?.is_some() {
                return Err(Error::AdminExists);
            }
            if tx!(self, table.get(account.username.as_str()))?.is_some() {
                return Err(Error::UsernameTaken);
            }
            if key_brought {
                for row in tx!(self, table.iter())? {
                    let (_, v) = tx!(self, row)?;
                    if self.decode(v.value())?.address == account.address {
                        return Err(Error::KeyInUse);
                    }
                }
            }
            tx!(
                self,
                table.insert(account.username.as_str(), encode(account).as_slice())
            )?;
            if account.role == Role::Admin {
                tx!(self, meta.insert(ADMIN_KEY, account.username.as_bytes()))?;
            }
            let mut changes = tx!(self, w.open_table(CHANGES))?;
            self.record_change(&mut meta, &mut changes, &account.username)?;
        }
        tx!(self, w.commit())
    }

    /// Changes one account atomically and durably: `f` sees the stored account and may
    /// change it (not its username or role); what it returns is returned. `None` if there
    /// is no such account; if `f` fails, nothing is written.
    pub(crate) fn update<T>(
        &self,
        username: &str,
        f: impl FnOnce(&mut Account) -> Result<T>,
    ) -> Result<Option<T>> {
        let w = tx!(self, self.db.begin_write())?;
        let out = {
            let mut table = tx!(self, w.open_table(ACCOUNTS))?;
            let Some(mut account) = tx!(self, table.get(username))?
                .map(|v| self.decode(v.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let (name, role) = (account.username.clone(), account.role);
            let out = f(&mut account)?;
            if account.username != name || account.role != role {
                return Err(Error::InvalidParams("account update (username or role)"));
            }
            tx!(self, table.insert(username, encode(&account).as_slice()))?;
            let mut meta = tx!(self, w.open_table(META))?;
            let mut changes = tx!(self, w.open_table(CHANGES))?;
            self.record_change(&mut meta, &mut changes, username)?;
            out
        };
        tx!(self, w.commit())?;
        Ok(Some(out))
    }

    /// Records `now` as `username`'s last sign-in and returns the one before (`None`: the
    /// first). Durable; not an archived change.
    pub(crate) fn swap_last_visit(&self, username: &str, now: u64) -> Result<Option<u64>> {
        let w = tx!(self, self.db.begin_write())?;
        let before = {
            let mut visits = tx!(self, w.open_table(VISITS))?;
            tx!(self, visits.insert(username, now))?.map(|v| v.value())
        };
        tx!(self, w.commit())?;
        Ok(before)
    }

    /// Removes an account, durably (the archive sees it gone); `false` if there was none.
    pub(crate) fn remove(&self, username: &str) -> Result<bool> {
        let w = tx!(self, self.db.begin_write())?;
        let removed = {
            tx!(self, tx!(self, w.open_table(VISITS))?.remove(username))?;
            let mut table = tx!(self, w.open_table(ACCOUNTS))?;
            let removed = tx!(self, table.remove(username))?.is_some();
            if removed {
                let mut meta = tx!(self, w.open_table(META))?;
                let mut changes = tx!(self, w.open_table(CHANGES))?;
                self.record_change(&mut meta, &mut changes, username)?;
            }
            removed
        };
        tx!(self, w.commit())?;
        Ok(removed)
    }

    /// Notes, inside the caller's write transaction, that `username`'s row changed.
    fn record_change(
        &self,
        meta: &mut Table<'_, &str, &[u8]>,
        changes: &mut Table<'_, u64, &str>,
        username: &str,
    ) -> Result<()> {
        let seq = self.read_u64(&*meta, SEQ_KEY)? + 1;
        tx!(self, meta.insert(SEQ_KEY, seq.to_le_bytes().as_slice()))?;
        tx!(self, changes.insert(seq, username))?;
        Ok(())
    }

    fn read_u64(
        &self,
        meta: &impl ReadableTable<&'static str, &'static [u8]>,
        key: &str,
    ) -> Result<u64> {
        match tx!(self, meta.get(key))? {
            None => Ok(0),
            Some(v) => {
                let bytes: [u8; 8] = v.value().try_into().map_err(|_| Error::CorruptStore {
                    path: self.path.clone(),
                    reason: format!("meta {key} is not a u64"),
                })?;
                Ok(u64::from_le_bytes(bytes))
            }
        }
    }

    /// Every account and the newest change's sequence number, from one read transaction.
    pub(crate) fn archive_snapshot(&self) -> Result<(u64, Vec<Account>)> {
        let r = tx!(self, self.db.begin_read())?;
        let meta = tx!(self, r.open_table(META))?;
        let seq = self.read_u64(&meta, SEQ_KEY)?;
        let t = tx!(self, r.open_table(ACCOUNTS))?;
        let mut all = Vec::new();
        for row in tx!(self, t.iter())? {
            let (_, v) = tx!(self, row)?;
            all.push(self.decode(v.value())?);
        }
        Ok((seq, all))
    }

    /// The current row (`None`: gone) of every account changed after `after`, and the
    /// newest sequence number, from one read transaction; `None` if nothing changed.
    pub(crate) fn archive_changes_since(
        &self,
        after: u64,
    ) -> Result<Option<(u64, Vec<AccountChange>)>> {
        let r = tx!(self, self.db.begin_read())?;
        let meta = tx!(self, r.open_table(META))?;
        let seq = self.read_u64(&meta, SEQ_KEY)?;
        let forgotten = self.read_u64(&meta, FORGOTTEN_KEY)?;
        if after > seq {
            return Err(Error::Archive(format!(
                "cursor {after} is ahead of the store (its newest change is {seq})"
            )));
        }
        if after == seq {
            return Ok(None);
        }
        if after < forgotten {
            return Err(Error::Archive(format!(
                "the changes up to {forgotten} were trimmed; cursor {after} needs a new snapshot"
            )));
        }
        let changes = tx!(self, r.open_table(CHANGES))?;
        let mut names = std::collections::BTreeSet::new();
        for row in tx!(self, changes.range((after + 1)..=seq))? {
            let (_, v) = tx!(self, row)?;
            names.insert(v.value().to_string());
        }
        let t = tx!(self, r.open_table(ACCOUNTS))?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let row = tx!(self, t.get(name.as_str()))?
                .map(|v| self.decode(v.value()))
                .transpose()?;
            out.push((name, row));
        }
        Ok(Some((seq, out)))
    }

    /// Drops the change entries up to `through` (they are archived).
    pub(crate) fn archive_forget_until(&self, through: u64) -> Result<()> {
        let w = tx!(self, self.db.begin_write())?;
        {
            let mut meta = tx!(self, w.open_table(META))?;
            let seq = self.read_u64(&meta, SEQ_KEY)?;
            if through > seq {
                return Err(Error::Archive(format!(
                    "cannot trim through {through}: the newest change is {seq}"
                )));
            }
            if through > self.read_u64(&meta, FORGOTTEN_KEY)? {
                tx!(
                    self,
                    meta.insert(FORGOTTEN_KEY, through.to_le_bytes().as_slice())
                )?;
            }
            let mut changes = tx!(self, w.open_table(CHANGES))?;
            tx!(self, changes.retain_in(..=through, |_, _| false))?;
        }
        tx!(self, w.commit())
    }

    /// Writes `accounts` into this (new, empty) database in one transaction, the archive
    /// cursor set to `seq` with no change entries (the next change is `seq + 1`).
    pub(crate) fn restore(&self, seq: u64, accounts: &[Account]) -> Result<()> {
        let w = tx!(self, self.db.begin_write())?;
        {
            let mut table = tx!(self, w.open_table(ACCOUNTS))?;
            let mut meta = tx!(self, w.open_table(META))?;
            if !tx!(self, table.is_empty())? {
                return Err(Error::Archive("the database is not empty".into()));
            }
            for a in accounts {
                tx!(
                    self,
                    table.insert(a.username.as_str(), encode(a).as_slice())
                )?;
                if a.role == Role::Admin {
                    tx!(self, meta.insert(ADMIN_KEY, a.username.as_bytes()))?;
                }
            }
            tx!(self, meta.insert(SEQ_KEY, seq.to_le_bytes().as_slice()))?;
            tx!(
                self,
                meta.insert(FORGOTTEN_KEY, seq.to_le_bytes().as_slice())
            )?;
        }
        tx!(self, w.commit())
    }

    /// Every change entry (sequence number, username), oldest first.
    #[cfg(test)]
    pub(crate) fn change_entries(&self) -> Result<Vec<(u64, String)>> {
        let r = tx!(self, self.db.begin_read())?;
        let t = tx!(self, r.open_table(CHANGES))?;
        let mut out = Vec::new();
        for row in tx!(self, t.iter())? {
            let (k, v) = tx!(self, row)?;
            out.push((k.value(), v.value().to_string()));
        }
        Ok(out)
    }

    fn decode(&self, bytes: &[u8]) -> Result<Account> {
        // Only the position: serde's message may quote usernames or hashes.
        serde_json::from_slice(bytes).map_err(|e| Error::CorruptStore {
            path: self.path.clone(),
            reason: format!("an account row does not parse (column {})", e.column()),
        })
    }
}

fn encode(account: &Account) -> Vec<u8> {
    serde_json::to_vec(account).expect("accounts serialize")
}

/// The old `accounts.json`, checked as the JSON store checked it.
fn parse_json(path: &Path, bytes: &[u8]) -> Result<Vec<Account>> {
    let corrupt = |reason: String| Error::CorruptStore {
        path: path.to_path_buf(),
        reason,
    };
    let file: AccountsFile = serde_json::from_slice(bytes).map_err(|e| {
        corrupt(format!(
            "not an accounts file (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if file.version != 1 {
        return Err(corrupt(format!("unknown version {}", file.version)));
    }
    let mut seen = std::collections::HashSet::new();
    for a in &file.accounts {
        if !seen.insert(a.username.as_str()) {
            return Err(corrupt("duplicate username".into()));
        }
    }
    Ok(file.accounts)
}
