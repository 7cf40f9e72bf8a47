//! The account store: no default credentials, crash-safe persistence, tokens, throttling with a manual clock, redaction.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Error;
use crate::keystore;
use crate::*;

const PW: &str = "correct horse battery";
const CLIENT: &str = "192.0.2.1";

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    store: AccountStore,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ));
    let store =
        AccountStore::open(dir.path(), AccountParams::INSECURE_FAST, clock.clone()).unwrap();
    Fixture { dir, clock, store }
}

impl Fixture {
    /// Closes the store (redb allows one open at a time) and opens it again.
    fn reopen(self) -> Self {
        drop(self.store);
        let store = AccountStore::open(
            self.dir.path(),
            AccountParams::INSECURE_FAST,
            self.clock.clone(),
        )
        .unwrap();
        Self { store, ..self }
    }

    fn admin_session(&self) -> Session {
        self.store.create_admin("admin", PW).unwrap();
        self.store.login("admin", PW, CLIENT).unwrap().1
    }
}

#[test]
fn starts_empty_and_admin_is_created_once() {
    let f = fixture();
    assert!(f.store.is_empty());
    assert!(!f.store.has_admin());
    // No default credentials.
    assert!(matches!(
        f.store.login("admin", "admin", CLIENT),
        Err(Error::InvalidCredentials)
    ));

    let admin = f.store.create_admin("Admin", PW).unwrap();
    assert_eq!(admin.username, "admin");
    assert_eq!(admin.role, Role::Admin);
    assert!(f.store.has_admin());
    assert!(matches!(
        f.store.create_admin("root", PW),
        Err(Error::AdminExists)
    ));
    assert_eq!(f.store.len(), 1);
}

#[test]
fn providers_need_an_admin_and_patients_register_themselves() {
    let f = fixture();
    let admin = f.admin_session();
    let dr = f.store.add_provider(&admin, "dr.house", PW).unwrap();
    assert_eq!(dr.role, Role::Provider);

    let p = f.store.register_patient("jane_doe", PW).unwrap();
    assert_eq!(p.role, Role::Patient);
    let patient = f.store.login("jane_doe", PW, CLIENT).unwrap().1;
    assert!(matches!(
        f.store.add_provider(&patient, "mallory", PW),
        Err(Error::Forbidden(_))
    ));
    assert_ne!(dr.address, p.address);
    assert_eq!(f.store.list().len(), 3);
}

#[test]
fn usernames_and_passwords_are_checked() {
    let f = fixture();
    f.store.register_patient("jane", PW).unwrap();
    assert!(matches!(
        f.store.register_patient(" JANE ", PW),
        Err(Error::UsernameTaken)
    ));
    for bad in ["ab", "a b c", "-jane", "jane!", &"x".repeat(33), "ümlaut"] {
        assert!(
            matches!(
                f.store.register_patient(bad, PW),
                Err(Error::InvalidUsername(_))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        f.store.register_patient("bob", "short"),
        Err(Error::InvalidPassword(_))
    ));
    assert!(matches!(
        f.store.register_patient("bob", &" ".repeat(20)),
        Err(Error::InvalidPassword(_))
    ));
    assert!(matches!(
        f.store
            .register_patient("bob", &"x".repeat(MAX_PASSWORD_BYTES + 1)),
        Err(Error::InvalidPassword(_))
    ));
    assert_eq!(f.store.len(), 1);
}

#[test]
fn accounts_survive_a_reopen() {
    let f = fixture();
    let admin = f.admin_session();
    let dr = f.store.add_provider(&admin, "dr.who", PW).unwrap();
    let f = f.reopen();
    assert_eq!(f.store.len(), 2);
    assert_eq!(f.store.get("dr.who").unwrap(), dr);
    assert!(f.store.has_admin());
    assert!(matches!(
        f.store.create_admin("admin2", PW),
        Err(Error::AdminExists)
    ));
    // The database is private and the only file.
    let path = f.dir.path().join(ACCOUNTS_DB);
    assert_eq!(f.store.path(), path);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let names: Vec<_> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from(ACCOUNTS_DB)]);
    // The file holds no password.
    let body = std::fs::read(&path).unwrap();
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(!has(PW.as_bytes()));
    assert!(has(b"$argon2id$v=19$m=64,t=1,p=1$"));
}

#[test]
fn a_second_open_is_refused_while_the_store_is_open() {
    let f = fixture();
    f.store.register_patient("jane", PW).unwrap();
    let err = AccountStore::open(f.dir.path(), AccountParams::INSECURE_FAST, f.clock.clone())
        .unwrap_err();
    assert!(matches!(err, Error::StoreInUse { .. }), "{err}");
    assert!(err.to_string().contains("in use by another process"));
    // Nothing changed; closed, it opens again.
    assert_eq!(f.reopen().store.len(), 1);
}

/// The old store's file, written from `store`'s accounts.
fn write_accounts_json(store: &AccountStore, dir: &std::path::Path) -> Vec<u8> {
    let mut accounts = Vec::new();
    store.db.for_each(|a| accounts.push(a)).unwrap();
    let body = serde_json::to_vec_pretty(&crate::db::AccountsFile {
        version: 1,
        accounts,
    })
    .unwrap();
    std::fs::write(dir.join(ACCOUNTS_FILE), &body).unwrap();
    body
}

#[test]
fn an_accounts_json_is_migrated_and_kept_as_a_backup() {
    let old = fixture();
    let admin = old.admin_session();
    old.store.add_provider(&admin, "dr.who", PW).unwrap();
    old.store.register_patient("jane", PW).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let body = write_accounts_json(&old.store, dir.path());
    // A temporary file the JSON store left in a crash is dropped.
    let tmp = dir.path().join(format!("{ACCOUNTS_FILE}.tmp"));
    std::fs::write(&tmp, b"half-written").unwrap();

    let store =
        AccountStore::open(dir.path(), AccountParams::INSECURE_FAST, old.clock.clone()).unwrap();
    assert_eq!(store.list(), old.store.list());
    assert!(store.has_admin());
    // The migration is a write like any other: each account moved in has its change entry
    // (in the migration's transaction), so the archive's change sets carry it.
    let (seq, changes) = store.archive_changes_since(0).unwrap().unwrap();
    assert_eq!(seq, 3);
    let text = String::from_utf8(changes).unwrap();
    for user in ["admin", "dr.who", "jane"] {
        assert!(
            text.contains(&format!("{{\"username\":\"{user}\"")),
            "{user}"
        );
    }
    store.login("jane", PW, CLIENT).unwrap();
    store.login("dr.who", PW, CLIENT).unwrap();
    assert!(!dir.path().join(ACCOUNTS_FILE).exists());
    assert!(!tmp.exists());
    let backup = dir.path().join(format!("{ACCOUNTS_FILE}{MIGRATED_SUFFIX}"));
    assert_eq!(std::fs::read(&backup).unwrap(), body);

    // A crash after the commit, before the rename: the next start finds the marker and
    // only finishes the rename (no duplicate, nothing lost, the first backup kept).
    drop(store);
    std::fs::copy(&backup, dir.path().join(ACCOUNTS_FILE)).unwrap();
    let store =
        AccountStore::open(dir.path(), AccountParams::INSECURE_FAST, old.clock.clone()).unwrap();
    assert_eq!(store.list(), old.store.list());
    assert!(backup.exists());
    assert!(
        dir.path()
            .join(format!("{ACCOUNTS_FILE}{MIGRATED_SUFFIX}.1"))
            .exists()
    );
    assert!(!dir.path().join(ACCOUNTS_FILE).exists());
}

#[test]
fn a_crash_before_the_migration_commits_loses_nothing() {
    let old = fixture();
    old.store.register_patient("jane", PW).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let body = write_accounts_json(&old.store, dir.path());
    // The database was created but the migration's transaction never committed.
    {
        let db = redb::Database::create(dir.path().join(ACCOUNTS_DB)).unwrap();
        drop(db.begin_write().unwrap()); // aborted
    }
    let store =
        AccountStore::open(dir.path(), AccountParams::INSECURE_FAST, old.clock.clone()).unwrap();
    assert_eq!(store.list(), old.store.list());
    store.login("jane", PW, CLIENT).unwrap();
    let backup = dir.path().join(format!("{ACCOUNTS_FILE}{MIGRATED_SUFFIX}"));
    assert_eq!(std::fs::read(backup).unwrap(), body);
}

#[test]
fn a_corrupt_or_conflicting_accounts_json_is_refused_and_kept() {
    let f = fixture();
    f.store.register_patient("jane", PW).unwrap();
    let f = f.reopen();
    // A database with accounts of its own and an accounts.json beside it: refused.
    let dir = f.dir.path().to_path_buf();
    let clock = f.clock.clone();
    let json = write_accounts_json(&f.store, &dir);
    drop(f.store);
    let err = AccountStore::open(&dir, AccountParams::INSECURE_FAST, clock.clone()).unwrap_err();
    assert!(matches!(err, Error::CorruptStore { .. }), "{err}");
    assert_eq!(std::fs::read(dir.join(ACCOUNTS_FILE)).unwrap(), json);

    let fresh = tempfile::tempdir().unwrap();
    std::fs::write(fresh.path().join(ACCOUNTS_FILE), b"{ not json").unwrap();
    let err = AccountStore::open(fresh.path(), AccountParams::INSECURE_FAST, clock).unwrap_err();
    assert!(matches!(err, Error::CorruptStore { .. }), "{err}");
    assert_eq!(
        std::fs::read(fresh.path().join(ACCOUNTS_FILE)).unwrap(),
        b"{ not json"
    );
}

#[test]
fn one_account_is_updated_atomically() {
    let f = fixture();
    f.store.register_patient("jane", PW).unwrap();
    let before = f.store.get("jane").unwrap();
    assert_eq!(
        f.store
            .update("jane", |a| {
                a.created_at = 7;
                Ok(a.created_at)
            })
            .unwrap(),
        Some(7)
    );
    // A failing update writes nothing; username and role cannot change; unknown is None.
    assert!(
        f.store
            .update("jane", |a| {
                a.created_at = 8;
                Err::<(), _>(Error::Forbidden("no"))
            })
            .is_err()
    );
    assert!(
        f.store
            .update("jane", |a| {
                a.role = Role::Admin;
                Ok(())
            })
            .is_err()
    );
    assert_eq!(f.store.update("nobody", |_| Ok(())).unwrap(), None);
    let f = f.reopen();
    let after = f.store.get("jane").unwrap();
    assert_eq!(after.created_at, 7);
    assert_eq!(after.role, before.role);
    f.store.login("jane", PW, CLIENT).unwrap();
}

#[test]
fn login_authenticate_logout() {
    let f = fixture();
    let info = f.store.register_patient("jane", PW).unwrap();
    let (token, session) = f.store.login("Jane", PW, CLIENT).unwrap();
    assert_eq!(session.username, "jane");
    assert_eq!(session.role, Role::Patient);
    assert_eq!(session.address, info.address);
    assert_eq!(token.expose().len(), 96);
    assert_eq!(f.store.authenticate(token.expose()).unwrap(), session);

    // Two logins, two independent tokens.
    let (other, _) = f.store.login("jane", PW, CLIENT).unwrap();
    assert_ne!(other.expose(), token.expose());

    f.store.logout(token.expose());
    assert!(matches!(
        f.store.authenticate(token.expose()),
        Err(Error::Unauthenticated)
    ));
    assert!(f.store.authenticate(other.expose()).is_ok());
    f.store.logout(token.expose()); // idempotent
}

/// Issue 17 item 3: a password change keeps the key (the address, and so every record and
/// grant), re-encrypts the keystore, ends the account's other sessions, survives a reopen;
/// a wrong current password or a weak new one changes nothing.
#[test]
fn a_password_change_keeps_the_key_and_ends_other_sessions() {
    const NEW: &str = "a brand new passphrase";
    let f = fixture();
    let info = f.store.register_patient("jane", PW).unwrap();
    f.store.register_patient("mark", PW).unwrap();
    let (here, session) = f.store.login("jane", PW, CLIENT).unwrap();
    let (elsewhere, _) = f.store.login("jane", PW, "198.51.100.7").unwrap();
    let (mark, _) = f.store.login("mark", PW, CLIENT).unwrap();
    let before = f.store.export_keystore(&session).unwrap();

    assert!(matches!(
        f.store
            .change_password(&session, here.expose(), "not my password", NEW, CLIENT),
        Err(Error::InvalidCredentials)
    ));
    assert!(matches!(
        f.store
            .change_password(&session, here.expose(), PW, "short", CLIENT),
        Err(Error::InvalidPassword(_))
    ));
    assert_eq!(
        f.store.export_keystore(&session).unwrap(),
        before,
        "unchanged"
    );
    assert!(f.store.authenticate(elsewhere.expose()).is_ok());

    f.store
        .change_password(&session, here.expose(), PW, NEW, CLIENT)
        .unwrap();
    assert!(
        f.store.authenticate(here.expose()).is_ok(),
        "this session stays"
    );
    assert!(
        matches!(
            f.store.authenticate(elsewhere.expose()),
            Err(Error::Unauthenticated)
        ),
        "the others end"
    );
    assert!(
        f.store.authenticate(mark.expose()).is_ok(),
        "other accounts' stay"
    );
    let after = f.store.export_keystore(&session).unwrap();
    assert_ne!(after, before, "re-encrypted");
    assert_eq!(
        keystore::decrypt(&after, NEW.as_bytes()).unwrap().address(),
        info.address,
        "the same key"
    );
    assert!(keystore::decrypt(&after, PW.as_bytes()).is_err());

    let f = f.reopen();
    assert!(matches!(
        f.store.login("jane", PW, CLIENT),
        Err(Error::InvalidCredentials)
    ));
    let (_, s) = f.store.login("jane", NEW, CLIENT).unwrap();
    assert_eq!(s.address, info.address);
}

/// Issue 17 item 5: a patient brings a wallet's keystore at sign-up: the account has that
/// key (re-encrypted under the store's parameters); the wrong password, or a key another
/// account holds, is refused and creates nothing.
#[test]
fn a_patient_brings_their_own_key() {
    let f = fixture();
    let (signer, file) = keystore::generate(
        PW.as_bytes(),
        AccountParams::INSECURE_FAST.scrypt,
        &mut ehr_crypto::rng(),
    )
    .unwrap();
    assert!(matches!(
        f.store
            .create_with_key("ann", "another long password", Role::Patient, Some(&file)),
        Err(Error::KeystoreMac)
    ));
    assert!(f.store.get("ann").is_none());
    let (info, key) = f
        .store
        .create_with_key("ann", PW, Role::Patient, Some(&file))
        .unwrap();
    assert_eq!(
        (info.address, key.address()),
        (signer.address(), signer.address())
    );
    let (_, session) = f.store.login("ann", PW, CLIENT).unwrap();
    let kept = f.store.export_keystore(&session).unwrap();
    assert_ne!(kept.id, file.id, "re-encrypted here");
    assert_eq!(
        keystore::decrypt(&kept, PW.as_bytes()).unwrap().address(),
        signer.address()
    );
    assert!(matches!(
        f.store
            .create_with_key("bea", PW, Role::Patient, Some(&file)),
        Err(Error::KeyInUse)
    ));
    assert!(f.store.get("bea").is_none());
}

/// Issue 17 item 4: the recovery code from sign-up sets a new password and keeps the key;
/// it is used up (a new one comes back); a wrong or malformed code, or a weak password,
/// changes nothing; every session ends; all of it survives a reopen.
#[test]
fn a_recovery_code_resets_the_password_and_keeps_the_key() {
    const NEW: &str = "a brand new passphrase";
    let f = fixture();
    let (info, _, code) = f.store.sign_up_patient("jane", PW, None).unwrap();
    assert!(info.recovery_created_at.is_some());
    let (mark, _, mark_code) = f.store.sign_up_patient("mark", PW, None).unwrap();
    let (token, _) = f.store.login("jane", PW, CLIENT).unwrap();

    let wrong = [
        ("jane", mark_code.expose()),
        ("nobody", code.expose()),
        ("mark", code.expose()),
    ];
    for (user, c) in wrong {
        assert!(
            matches!(
                f.store.recover(user, c, NEW, CLIENT),
                Err(Error::InvalidRecovery)
            ),
            "{user}"
        );
    }
    assert!(matches!(
        f.store.recover("jane", "not a code", NEW, CLIENT),
        Err(Error::InvalidRecoveryCode(_))
    ));
    assert!(matches!(
        f.store.recover("jane", code.expose(), "short", CLIENT),
        Err(Error::InvalidPassword(_))
    ));
    assert!(
        f.store.authenticate(token.expose()).is_ok(),
        "nothing changed"
    );
    f.store.login("jane", PW, "198.51.100.7").unwrap();

    // Typed lowercase, with spaces for dashes.
    let typed = code.expose().to_ascii_lowercase().replace('-', " ");
    let next = f
        .store
        .recover("jane", &typed, NEW, "198.51.100.7")
        .unwrap();
    assert_ne!(next.expose(), code.expose(), "a new code");
    assert!(
        matches!(
            f.store.authenticate(token.expose()),
            Err(Error::Unauthenticated)
        ),
        "every session ends"
    );
    assert!(
        matches!(
            f.store.recover("jane", code.expose(), NEW, CLIENT),
            Err(Error::InvalidRecovery)
        ),
        "the old code is used up"
    );
    assert!(matches!(
        f.store.login("jane", PW, CLIENT),
        Err(Error::InvalidCredentials)
    ));
    let (_, s) = f.store.login("jane", NEW, CLIENT).unwrap();
    assert_eq!(s.address, info.address, "the same key");
    assert_eq!(
        f.store.login("mark", PW, CLIENT).unwrap().1.address,
        mark.address
    );

    let f = f.reopen();
    let third = f.store.recover("jane", next.expose(), PW, CLIENT).unwrap();
    assert_eq!(
        f.store.login("jane", PW, CLIENT).unwrap().1.address,
        info.address
    );
    assert!(third.expose() != next.expose());
}

/// A patient with no code (signed up before codes existed), or who lost it, makes a new
/// one with their password; the old one stops working.
#[test]
fn a_new_recovery_code_replaces_the_old_one() {
    let f = fixture();
    let old_style = f.store.register_patient("ann", PW).unwrap();
    assert_eq!(old_style.recovery_created_at, None);
    let (_, session) = f.store.login("ann", PW, CLIENT).unwrap();
    assert!(matches!(
        f.store.recover(
            "ann",
            RecoveryCode::generate_for_tests().expose(),
            PW,
            CLIENT
        ),
        Err(Error::InvalidRecovery)
    ));
    assert!(matches!(
        f.store
            .new_recovery_code(&session, "not my password", CLIENT),
        Err(Error::InvalidCredentials)
    ));
    let first = f.store.new_recovery_code(&session, PW, CLIENT).unwrap();
    assert!(f.store.get("ann").unwrap().recovery_created_at.is_some());
    let second = f.store.new_recovery_code(&session, PW, CLIENT).unwrap();
    assert!(matches!(
        f.store
            .recover("ann", first.expose(), "another long password", CLIENT),
        Err(Error::InvalidRecovery)
    ));
    f.store
        .recover("ann", second.expose(), "another long password", CLIENT)
        .unwrap();
    assert_eq!(
        f.store
            .login("ann", "another long password", CLIENT)
            .unwrap()
            .1
            .address,
        old_style.address
    );
}

/// Guessing codes is throttled like guessing passwords.
#[test]
fn recovery_attempts_are_throttled() {
    let f = fixture();
    let (_, _, code) = f.store.sign_up_patient("jane", PW, None).unwrap();
    let mut limited = false;
    for _ in 0..20 {
        match f.store.recover(
            "jane",
            RecoveryCode::generate_for_tests().expose(),
            PW,
            CLIENT,
        ) {
            Err(Error::InvalidRecovery) => {}
            Err(Error::RateLimited { .. }) => {
                limited = true;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(limited, "locked out after some failures");
    assert!(
        matches!(
            f.store.recover("jane", code.expose(), PW, CLIENT),
            Err(Error::RateLimited { .. })
        ),
        "even the right code waits"
    );
}

/// Issue 17 item 4: the admin resets a provider's password; the provider keeps its key
/// (address, grants); its sessions end. Only an admin may, only for a provider, and only
/// with the escrow, which a provider made before escrow existed gets at its next login.
#[test]
fn the_admin_resets_a_providers_password_and_the_key_stays() {
    const NEW: &str = "a temporary passphrase";
    let f = fixture();
    let admin = f.admin_session();
    let info = f.store.add_provider(&admin, "drbob", PW).unwrap();
    assert!(info.escrowed);
    let (bob_token, bob) = f.store.login("drbob", PW, CLIENT).unwrap();
    let (_, _, _) = f.store.sign_up_patient("jane", PW, None).unwrap();
    let (_, jane) = f.store.login("jane", PW, CLIENT).unwrap();

    for (who, user) in [
        (&jane, "drbob"),
        (&bob, "drbob"),
        (&admin, "jane"),
        (&admin, "nobody"),
    ] {
        assert!(
            matches!(
                f.store.reset_provider_password(who, user, NEW),
                Err(Error::Forbidden(_))
            ),
            "{} resetting {user}",
            who.username
        );
    }
    assert!(matches!(
        f.store.reset_provider_password(&admin, "drbob", "short"),
        Err(Error::InvalidPassword(_))
    ));
    assert!(
        f.store.authenticate(bob_token.expose()).is_ok(),
        "nothing changed"
    );

    f.store
        .reset_provider_password(&admin, "drbob", NEW)
        .unwrap();
    assert!(matches!(
        f.store.authenticate(bob_token.expose()),
        Err(Error::Unauthenticated)
    ));
    assert!(matches!(
        f.store.login("drbob", PW, CLIENT),
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(
        f.store.login("drbob", NEW, CLIENT).unwrap().1.address,
        info.address
    );

    // A provider made without escrow (as before it existed) gets it at its next login.
    let (old, _) = f.store.create("drold", PW, Role::Provider).unwrap();
    assert!(!old.escrowed);
    assert!(matches!(
        f.store.reset_provider_password(&admin, "drold", NEW),
        Err(Error::NoEscrow)
    ));
    f.store.login("drold", PW, CLIENT).unwrap();
    assert!(f.store.get("drold").unwrap().escrowed);
    let f = f.reopen();
    let admin = f.store.login("admin", PW, CLIENT).unwrap().1;
    f.store
        .reset_provider_password(&admin, "drold", NEW)
        .unwrap();
    assert_eq!(
        f.store.login("drold", NEW, CLIENT).unwrap().1.address,
        old.address
    );
}

/// Two sign-ups racing with one brought key: both pass the early check (made here, before
/// either is stored); the write transaction lets only the first in.
#[test]
fn two_sign_ups_racing_with_one_key_make_one_account() {
    let f = fixture();
    let (_, file) = keystore::generate(
        PW.as_bytes(),
        AccountParams::INSECURE_FAST.scrypt,
        &mut ehr_crypto::rng(),
    )
    .unwrap();
    let (first, _) = f
        .store
        .prepare("ann", PW, Role::Patient, Some(&file))
        .unwrap();
    let (second, _) = f
        .store
        .prepare("bea", PW, Role::Patient, Some(&file))
        .unwrap();
    f.store.db.insert_new(&first, true).unwrap();
    assert!(matches!(
        f.store.db.insert_new(&second, true),
        Err(Error::KeyInUse)
    ));
    assert!(f.store.get("bea").is_none());
    assert!(f.store.get("ann").is_some());
}

/// Issue 18 item 1: two-factor. Enrolment needs a code from the app; from then on a login
/// needs one too (missing, wrong or replayed: refused, and counted as a failed attempt), a
/// backup code works once, and turning it off needs the password and a code. Accounts
/// that never enrolled log in as before.
#[test]
fn two_factor_is_enforced_once_enrolled() {
    let f = fixture();
    f.store.register_patient("ann", PW).unwrap();
    f.store.register_patient("bea", PW).unwrap();
    let (_, ann) = f.store.login("ann", PW, CLIENT).unwrap();
    let now = || f.clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(matches!(
        f.store.confirm_totp(&ann, "123456", CLIENT),
        Err(Error::TotpState(_))
    ));
    let setup = f.store.begin_totp(&ann).unwrap();
    assert!(
        setup
            .uri
            .starts_with("otpauth://totp/SecureEHR:ann?secret=")
    );
    let key = totp::unbase32(&setup.secret).unwrap();
    let code = |t: u64| format!("{:06}", totp::totp(&key, t, 6));
    // Not on until confirmed: the login needs no code yet.
    f.store.login("ann", PW, CLIENT).unwrap();
    let wrong = format!("{:06}", (totp::totp(&key, now(), 6) + 1) % 1_000_000);
    assert!(matches!(
        f.store.confirm_totp(&ann, &wrong, CLIENT),
        Err(Error::InvalidTotp)
    ));
    let backups = f.store.confirm_totp(&ann, &code(now()), CLIENT).unwrap();
    assert_eq!(backups.len(), totp::BACKUP_CODES);
    let info = f.store.get("ann").unwrap();
    assert!(info.two_factor && info.backup_codes_left == totp::BACKUP_CODES);
    assert!(matches!(f.store.begin_totp(&ann), Err(Error::TotpState(_))));

    assert!(matches!(
        f.store.login("ann", PW, CLIENT),
        Err(Error::TotpRequired)
    ));
    assert!(matches!(
        f.store.login_with_code("ann", PW, Some(&wrong), CLIENT),
        Err(Error::InvalidTotp)
    ));
    assert!(
        matches!(
            f.store
                .login_with_code("ann", "wrong password!!", Some(&code(now())), CLIENT),
            Err(Error::InvalidCredentials)
        ),
        "the password still counts"
    );
    // The confirming code's step is used: the next step's code signs in, once.
    f.clock.advance(Duration::from_secs(totp::PERIOD));
    f.store
        .login_with_code("ann", PW, Some(&code(now())), CLIENT)
        .unwrap();
    assert!(
        matches!(
            f.store
                .login_with_code("ann", PW, Some(&code(now())), CLIENT),
            Err(Error::InvalidTotp)
        ),
        "a code is taken once"
    );
    f.store
        .login_with_code("ann", PW, Some(&backups[0]), CLIENT)
        .unwrap();
    assert!(matches!(
        f.store
            .login_with_code("ann", PW, Some(&backups[0]), CLIENT),
        Err(Error::InvalidTotp)
    ));
    assert_eq!(
        f.store.get("ann").unwrap().backup_codes_left,
        totp::BACKUP_CODES - 1
    );
    // Another account is untouched; a code means nothing to it.
    f.store
        .login_with_code("bea", PW, Some("000000"), CLIENT)
        .unwrap();

    // Survives a reopen; off needs the password and a code.
    let f = f.reopen();
    let (_, ann) = f
        .store
        .login_with_code("ann", PW, Some(&backups[1]), "198.51.100.7")
        .unwrap();
    assert!(matches!(
        f.store.disable_totp(&ann, PW, "000000", "198.51.100.7"),
        Err(Error::InvalidTotp)
    ));
    f.store
        .disable_totp(&ann, PW, &backups[2], "198.51.100.7")
        .unwrap();
    assert!(!f.store.get("ann").unwrap().two_factor);
    f.store.login("ann", PW, "198.51.100.7").unwrap();
}

/// Guessing codes after a stolen password locks the guesser out like guessing passwords.
#[test]
fn guessing_codes_is_throttled() {
    let f = fixture();
    f.store.register_patient("ann", PW).unwrap();
    let (_, ann) = f.store.login("ann", PW, CLIENT).unwrap();
    let setup = f.store.begin_totp(&ann).unwrap();
    let key = totp::unbase32(&setup.secret).unwrap();
    let t = f.clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    f.store
        .confirm_totp(&ann, &format!("{:06}", totp::totp(&key, t, 6)), CLIENT)
        .unwrap();
    // Wrong guesses: never one of the codes valid now.
    let valid: Vec<u32> = (0..3)
        .map(|i| totp::totp(&key, t - totp::PERIOD + i * totp::PERIOD, 6))
        .collect();
    let mut limited = false;
    for guess in (0..30).filter(|g| !valid.contains(g)).take(20) {
        match f
            .store
            .login_with_code("ann", PW, Some(&format!("{guess:06}")), "203.0.113.9")
        {
            Err(Error::InvalidTotp) => {}
            Err(Error::RateLimited { .. }) => {
                limited = true;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(limited);
}

#[test]
fn tokens_expire_and_forgeries_fail() {
    let f = fixture();
    f.store.register_patient("jane", PW).unwrap();
    let (token, _) = f.store.login("jane", PW, CLIENT).unwrap();
    let t = token.expose().to_owned();

    // Same selector, different secret.
    let mut forged = t.clone();
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(95.., last);
    assert!(matches!(
        f.store.authenticate(&forged),
        Err(Error::Unauthenticated)
    ));
    // A forged logout does not revoke.
    f.store.logout(&forged);
    assert!(f.store.authenticate(&t).is_ok());
    for junk in ["", "abc", &"z".repeat(96), &t[..95]] {
        assert!(matches!(
            f.store.authenticate(junk),
            Err(Error::Unauthenticated)
        ));
    }

    f.clock.advance(Duration::from_secs(15 * 60 - 1));
    assert!(f.store.authenticate(&t).is_ok());
    f.clock.advance(Duration::from_secs(1));
    assert!(matches!(
        f.store.authenticate(&t),
        Err(Error::Unauthenticated)
    ));
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let f = fixture();
    f.store.register_patient("jane", PW).unwrap();
    let a = f
        .store
        .login("jane", "wrong password!", CLIENT)
        .unwrap_err();
    let b = f.store.login("nobody", PW, "198.51.100.7").unwrap_err();
    assert_eq!(a.to_string(), b.to_string());
    assert!(matches!(a, Error::InvalidCredentials));
}

#[test]
fn failures_lock_the_username_at_that_client_with_a_growing_delay() {
    let f = fixture();
    f.store.register_patient("jane", PW).unwrap();
    for i in 0..5 {
        let err = f
            .store
            .login("jane", "wrong password!", CLIENT)
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidCredentials),
            "attempt {i}: {err}"
        );
    }
    // Now even the right password is refused from that client, without being checked.
    match f.store.login("jane", PW, CLIENT) {
        Err(Error::RateLimited { retry_after }) => assert_eq!(retry_after, Duration::from_secs(30)),
        other => panic!("{other:?}"),
    }
    f.clock.advance(Duration::from_secs(30));
    // One more failure doubles the lock.
    assert!(matches!(
        f.store.login("jane", "wrong password!", CLIENT),
        Err(Error::InvalidCredentials)
    ));
    match f.store.login("jane", PW, CLIENT) {
        Err(Error::RateLimited { retry_after }) => assert_eq!(retry_after, Duration::from_secs(60)),
        other => panic!("{other:?}"),
    }
    f.clock.advance(Duration::from_secs(60));
    // A success clears the pair's record.
    f.store.login("jane", PW, CLIENT).unwrap();
    for _ in 0..4 {
        assert!(matches!(
            f.store.login("jane", "wrong password!", CLIENT),
            Err(Error::InvalidCredentials)
        ));
    }
    f.store.login("jane", PW, CLIENT).unwrap();
}

#[test]
fn a_guesser_does_not_lock_the_owner_out_from_another_address() {
    let f = fixture();
    f.store.register_patient("jane", PW).unwrap();
    // The guesser, at one address, runs into the lock (and stays there, doubling).
    for _ in 0..8 {
        let _ = f.store.login("jane", "wrong password!", "198.51.100.66");
    }
    assert!(matches!(
        f.store.login("jane", PW, "198.51.100.66"),
        Err(Error::RateLimited { .. })
    ));
    // The owner, elsewhere, logs in at once.
    f.store.login("jane", PW, CLIENT).unwrap();
    // Guessers spread over many addresses do not lock the owner out either.
    for i in 0..50 {
        let _ = f.store.login(
            "jane",
            "wrong password!",
            &format!("10.9.{}.{}", i / 4, i % 4),
        );
    }
    f.store.login("jane", PW, CLIENT).unwrap();
}

#[test]
fn made_up_names_lock_the_client_only_past_its_allowance() {
    let f = fixture();
    f.store.register_patient("jane", PW).unwrap();
    let rl = AccountParams::INSECURE_FAST.rate_limit;
    assert!(rl.client_free_failures > rl.free_failures);
    // More made-up names than one username's allowance: real users at that address (a
    // shared NAT) still log in.
    for i in 0..rl.free_failures + 2 {
        assert!(matches!(
            f.store.login(&format!("nobody{i}"), PW, CLIENT),
            Err(Error::InvalidCredentials)
        ));
    }
    f.store.login("jane", PW, CLIENT).unwrap();
    // Past the client's allowance the client is locked, for every name…
    for i in 0..rl.client_free_failures {
        let _ = f.store.login(&format!("ghost{i}"), PW, CLIENT);
    }
    assert!(matches!(
        f.store.login("jane", PW, CLIENT),
        Err(Error::RateLimited { .. })
    ));
    // …and no other client is.
    f.store.login("jane", PW, "203.0.113.9").unwrap();
    // Forgotten after an hour without failures.
    f.clock.advance(Duration::from_secs(60 * 60));
    f.store.login("jane", PW, CLIENT).unwrap();
}

#[test]
fn successful_logins_are_limited_per_account() {
    let f = fixture();
    f.store.register_patient("jane", PW).unwrap();
    f.store.register_patient("john", PW).unwrap();
    let rl = AccountParams::INSECURE_FAST.rate_limit;
    assert!(rl.logins_per_window >= 5 && rl.login_window <= Duration::from_secs(60));
    // The allowance, from different clients, is never refused…
    for i in 0..rl.logins_per_window {
        f.store.login("jane", PW, &format!("10.0.3.{i}")).unwrap();
    }
    // …one more is, from anywhere, until the oldest success leaves the window.
    match f.store.login("jane", PW, "10.0.4.1") {
        Err(Error::RateLimited { retry_after }) => assert_eq!(retry_after, rl.login_window),
        other => panic!("{other:?}"),
    }
    // Refused successes are no failures: the client and other accounts are unaffected.
    f.store.login("john", PW, "10.0.3.0").unwrap();
    f.clock.advance(Duration::from_secs(1));
    assert!(matches!(
        f.store.login("jane", PW, CLIENT),
        Err(Error::RateLimited { .. })
    ));
    f.clock.advance(rl.login_window);
    f.store.login("jane", PW, CLIENT).unwrap();
    // Wrong passwords do not spend the owner's allowance.
    for i in 0..3 * rl.logins_per_window {
        let _ = f
            .store
            .login("john", "wrong password!", &format!("10.0.5.{i}"));
    }
    f.store.login("john", PW, CLIENT).unwrap();
}

#[test]
fn the_kdf_gate_admits_a_few_at_once() {
    let slots = crate::kdf_slots();
    assert!((1..=4).contains(&slots));
    let gate = crate::kdf::KdfGate::new(2);
    let running = std::sync::atomic::AtomicUsize::new(0);
    let most = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                let _p = gate.enter();
                let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
    });
    assert_eq!(most.into_inner(), 2);
}

#[test]
fn lockout_is_capped() {
    let f = fixture();
    let rl = AccountParams::INSECURE_FAST.rate_limit;
    for _ in 0..30 {
        match f.store.login("nobody", "wrong password!", CLIENT) {
            Err(Error::RateLimited { retry_after }) => {
                assert!(retry_after <= rl.max_lockout);
                f.clock.advance(retry_after);
            }
            Err(Error::InvalidCredentials) => {}
            other => panic!("{other:?}"),
        }
    }
    // The loop may have ended just after a lock expired: one more failure re-locks.
    let mut last = f.store.login("nobody", "wrong password!", CLIENT);
    if matches!(last, Err(Error::InvalidCredentials)) {
        last = f.store.login("nobody", "wrong password!", CLIENT);
    }
    match last {
        Err(Error::RateLimited { retry_after }) => assert_eq!(retry_after, rl.max_lockout),
        other => panic!("{other:?}"),
    }
}

#[test]
fn keystore_export_and_signer() {
    let f = fixture();
    let info = f.store.register_patient("jane", PW).unwrap();
    let (_, session) = f.store.login("jane", PW, CLIENT).unwrap();

    let file = f.store.export_keystore(&session).unwrap();
    assert_eq!(file.address(), Some(info.address));
    // The exported file opens with the user's password, in any wallet.
    let json = file.to_json();
    let key = keystore::decrypt(
        &keystore::KeystoreFile::from_json(&json).unwrap(),
        PW.as_bytes(),
    )
    .unwrap();
    assert_eq!(key.address(), info.address);

    let signer = f.store.signer(&session, PW, CLIENT).unwrap();
    assert_eq!(signer.address(), session.address);
    assert!(matches!(
        f.store.signer(&session, "not my password", CLIENT),
        Err(Error::InvalidCredentials)
    ));
}

#[test]
fn concurrent_registrations_of_one_name_yield_one_account() {
    let f = fixture();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| f.store.register_patient("jane", PW)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert_eq!(f.reopen().store.len(), 1);
}

#[test]
fn debug_output_is_redacted() {
    let f = fixture();
    f.store.register_patient("jane", PW).unwrap();
    let (token, _) = f.store.login("jane", PW, CLIENT).unwrap();
    let dbg = format!("{token:?} {:?}", f.store);
    assert!(!dbg.contains(token.expose()) && !dbg.contains(PW), "{dbg}");
    let err = f.store.login("jane", "hunter2hunter2", CLIENT).unwrap_err();
    assert!(!format!("{err:?} {err}").contains("hunter2"));
}

#[test]
fn standard_params_are_documented_values() {
    let p = AccountParams::STANDARD;
    assert_eq!(
        (p.argon2.m_cost_kib, p.argon2.t_cost, p.argon2.p_cost),
        (19 * 1024, 2, 1)
    );
    assert_eq!(p.scrypt.log_n, 18);
    assert_eq!(p.token_ttl, Duration::from_secs(900));
    let rl = p.rate_limit;
    assert_eq!(
        (
            rl.free_failures,
            rl.client_free_failures,
            rl.logins_per_window
        ),
        (5, 20, 10)
    );
    assert_eq!(rl.login_window, Duration::from_secs(60));
    let _ = SystemTime::now();
}

#[test]
fn disabling_ends_the_sessions_and_survives_a_reopen() {
    let f = fixture();
    let admin = f.admin_session();
    f.store.add_provider(&admin, "dr.who", PW).unwrap();
    let (t1, _) = f.store.login("dr.who", PW, CLIENT).unwrap();
    let (t2, _) = f.store.login("dr.who", PW, CLIENT).unwrap();
    let (jane, _) = {
        f.store.register_patient("jane", PW).unwrap();
        f.store.login("jane", PW, CLIENT).unwrap()
    };
    assert!(!f.store.get("dr.who").unwrap().disabled);

    let info = f.store.set_disabled("Dr.Who", true).unwrap().unwrap();
    assert!(info.disabled);
    for t in [&t1, &t2] {
        assert!(matches!(
            f.store.authenticate(t.expose()),
            Err(Error::Unauthenticated)
        ));
    }
    assert!(
        f.store.authenticate(jane.expose()).is_ok(),
        "others stay signed in"
    );
    let f = f.reopen();
    assert!(f.store.get("dr.who").unwrap().disabled, "durable");

    assert!(
        !f.store
            .set_disabled("dr.who", false)
            .unwrap()
            .unwrap()
            .disabled
    );
    let f = f.reopen();
    assert!(!f.store.get("dr.who").unwrap().disabled);
    assert_eq!(f.store.set_disabled("nobody", true).unwrap(), None);
    assert_eq!(f.store.set_disabled("!", true).unwrap(), None);
}

#[test]
fn accounts_written_before_the_disabled_flag_load_enabled() {
    // An accounts.json from before the flag, migrated; and a database row without it.
    let old = fixture();
    old.store.register_patient("jane", PW).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let body = write_accounts_json(&old.store, dir.path());
    let mut file: serde_json::Value = serde_json::from_slice(&body).unwrap();
    file["accounts"][0]
        .as_object_mut()
        .unwrap()
        .remove("disabled")
        .expect("the flag is written");
    std::fs::write(
        dir.path().join(ACCOUNTS_FILE),
        serde_json::to_vec(&file).unwrap(),
    )
    .unwrap();
    let store =
        AccountStore::open(dir.path(), AccountParams::INSECURE_FAST, old.clock.clone()).unwrap();
    assert!(!store.get("jane").unwrap().disabled);
    store.login("jane", PW, CLIENT).unwrap();
}

#[test]
fn each_session_knows_the_sign_in_before_it_and_it_survives_a_reopen() {
    let f = fixture();
    f.store.register_patient("vera", PW).unwrap();
    let t0 = 1_800_000_000;
    let (_, first) = f.store.login("vera", PW, CLIENT).unwrap();
    assert_eq!(first.previous_visit, None, "the first sign-in");
    f.clock.advance(Duration::from_secs(3600));
    let (_, second) = f.store.login("vera", PW, CLIENT).unwrap();
    assert_eq!(second.previous_visit, Some(t0));
    // A wrong password is no visit.
    assert!(
        f.store
            .login("vera", "wrong password here", CLIENT)
            .is_err()
    );
    let f = f.reopen();
    f.clock.advance(Duration::from_secs(60));
    let (_, third) = f.store.login("vera", PW, CLIENT).unwrap();
    assert_eq!(third.previous_visit, Some(t0 + 3600));
    // Not an account change: the archive has nothing new for it.
    let (seq, _) = f.store.archive_snapshot().unwrap();
    f.store.login("vera", PW, CLIENT).unwrap();
    assert_eq!(f.store.archive_changes_since(seq).unwrap(), None);
}
