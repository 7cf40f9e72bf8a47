//! The archive hooks: change capture in the same transaction as each write (checked across
//! kill -9), snapshots and change sets, their strict decoding, and restoring a store in
//! which every user logs in with their password as before.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::archive::encode_changes;
use crate::*;

const PW: &str = "correct horse battery";
const CLIENT: &str = "192.0.2.1";

fn open(dir: &Path) -> AccountStore {
    let clock = Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ));
    AccountStore::open(dir, AccountParams::INSECURE_FAST, clock).unwrap()
}

fn archive_err<T: std::fmt::Debug>(r: Result<T>) -> String {
    match r {
        Err(Error::Archive(m)) => m,
        other => panic!("expected an archive error, got {other:?}"),
    }
}

#[test]
fn snapshot_changes_and_restore_keep_every_login() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("live"));
    store.create_admin("admin", PW).unwrap();
    let (_, admin) = store.login("admin", PW, CLIENT).unwrap();
    store.add_provider(&admin, "drbob", PW).unwrap();
    store.register_patient("alice", PW).unwrap();
    let alice_addr = store.get("alice").unwrap().address;

    let (s0, snapshot) = store.archive_snapshot().unwrap();
    assert_eq!(s0, 3, "one change per sign-up");
    assert_eq!(store.archive_changes_since(s0).unwrap(), None);

    // Refused writes record nothing.
    assert!(store.register_patient("alice", PW).is_err());
    assert!(store.create_admin("admin2", PW).is_err());
    assert_eq!(store.set_disabled("nobody", true).unwrap(), None);
    assert_eq!(store.archive_changes_since(s0).unwrap(), None);

    // A change set: one entry per account, whatever the number of writes to it.
    store.set_disabled("drbob", true).unwrap();
    store.register_patient("carol", PW).unwrap();
    store.set_disabled("carol", true).unwrap();
    store.set_disabled("carol", false).unwrap();
    let (s1, c1) = store.archive_changes_since(s0).unwrap().unwrap();
    assert_eq!(s1, 7);
    assert_eq!(String::from_utf8_lossy(&c1).lines().count(), 1 + 2);
    store.register_patient("dave", PW).unwrap();
    let (s2, c2) = store.archive_changes_since(s1).unwrap().unwrap();
    assert_eq!(s2, 8);

    // Restored from the snapshot and both change sets: every account, and every user logs
    // in with their password to the same key.
    let restored_dir = dir.path().join("restored");
    let n =
        AccountStore::restore_archive(&restored_dir, &snapshot, &[c1.clone(), c2.clone()]).unwrap();
    assert_eq!(n, 5);
    let restored = open(&restored_dir);
    assert_eq!(restored.list(), store.list());
    for user in ["admin", "alice", "carol", "dave"] {
        let (_, session) = restored.login(user, PW, CLIENT).unwrap();
        assert_eq!(session.address, store.get(user).unwrap().address);
    }
    assert_eq!(
        restored.login("alice", PW, CLIENT).unwrap().1.address,
        alice_addr
    );
    assert!(restored.get("drbob").unwrap().disabled);
    assert!(restored.has_admin());
    assert!(matches!(
        restored.create_admin("admin2", PW),
        Err(Error::AdminExists)
    ));
    // Its cursor carries on from the archive's.
    assert_eq!(restored.archive_changes_since(s2).unwrap(), None);
    restored.register_patient("erin", PW).unwrap();
    assert_eq!(
        restored.archive_changes_since(s2).unwrap().unwrap().0,
        s2 + 1
    );

    // Only the snapshot: the state at s0.
    let at_s0 = dir.path().join("at-s0");
    assert_eq!(
        AccountStore::restore_archive(&at_s0, &snapshot, &[]).unwrap(),
        3
    );
    assert!(open(&at_s0).get("carol").is_none());
}

#[test]
fn a_tombstone_removes_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("live"));
    store.register_patient("alice", PW).unwrap();
    store.register_patient("bob", PW).unwrap();
    let (seq, snapshot) = store.archive_snapshot().unwrap();
    let gone = encode_changes(seq, seq + 1, vec![("bob".into(), None)]);
    let out = dir.path().join("restored");
    assert_eq!(
        AccountStore::restore_archive(&out, &snapshot, &[gone]).unwrap(),
        1
    );
    let restored = open(&out);
    assert!(restored.get("bob").is_none());
    assert!(restored.get("alice").is_some());
}

#[test]
fn trimmed_changes_need_a_new_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.register_patient("alice", PW).unwrap();
    store.register_patient("bob", PW).unwrap();
    store.register_patient("carol", PW).unwrap();
    store.archive_forget_until(2).unwrap();
    assert_eq!(
        store.db.change_entries().unwrap(),
        vec![(3, "carol".into())]
    );
    let m = archive_err(store.archive_changes_since(1));
    assert!(m.contains("trimmed"), "{m}");
    assert!(store.archive_changes_since(2).unwrap().is_some());
    assert!(archive_err(store.archive_changes_since(9)).contains("ahead"));
    assert!(archive_err(store.archive_forget_until(4)).contains("newest change is 3"));
    // Survives a reopen.
    drop(store);
    let store = open(dir.path());
    assert!(archive_err(store.archive_changes_since(1)).contains("trimmed"));
    store.register_patient("dave", PW).unwrap();
    assert_eq!(store.archive_changes_since(3).unwrap().unwrap().0, 4);
}

#[test]
fn bad_archives_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("live"));
    store.create_admin("admin", PW).unwrap();
    store.register_patient("alice", PW).unwrap();
    let (s0, snapshot) = store.archive_snapshot().unwrap();
    store.register_patient("bob", PW).unwrap();
    let (s1, c1) = store.archive_changes_since(s0).unwrap().unwrap();
    store.register_patient("carol", PW).unwrap();
    let (_, c2) = store.archive_changes_since(s1).unwrap().unwrap();

    let text = String::from_utf8(snapshot.clone()).unwrap();
    let replace = |from: &str, to: &str| text.replacen(from, to, 1).into_bytes();
    let mut two_admins = replace("\"accounts\":2", "\"accounts\":3");
    let alice_line = text.lines().find(|l| l.contains("\"alice\"")).unwrap();
    two_admins.extend_from_slice(
        alice_line
            .replace("\"alice\"", "\"zed\"")
            .replace("\"patient\"", "\"admin\"")
            .as_bytes(),
    );
    two_admins.push(b'\n');
    // (case, snapshot, change sets, what the error says)
    type Case<'a> = (&'a str, Vec<u8>, Vec<Vec<u8>>, &'a str);
    let cases: Vec<Case> = vec![
        ("empty", Vec::new(), vec![], "whole line"),
        (
            "torn",
            snapshot[..snapshot.len() - 5].to_vec(),
            vec![],
            "whole line",
        ),
        (
            "garbage",
            b"\x00\xffnot json\n".to_vec(),
            vec![],
            "line 1 does not parse",
        ),
        (
            "version",
            replace("\"version\":1", "\"version\":2"),
            vec![],
            "unknown version 2",
        ),
        (
            "format",
            replace("accounts snapshot", "accounts changes"),
            vec![],
            "not an",
        ),
        (
            "count",
            replace("\"accounts\":2", "\"accounts\":3"),
            vec![],
            "says 3 accounts",
        ),
        (
            "unknown field",
            replace("\"seq\"", "\"extra\":1,\"seq\""),
            vec![],
            "line 1",
        ),
        ("two admins", two_admins, vec![], "more than one admin"),
        (
            "bad username",
            replace("\"alice\"", "\"Al ice\""),
            vec![],
            "invalid username",
        ),
        ("a gap", snapshot.clone(), vec![c2.clone()], "ends at 2"),
        (
            "an overlap",
            snapshot.clone(),
            vec![c1.clone(), c1.clone()],
            "ends at 3",
        ),
        (
            "changes as a snapshot",
            c1.clone(),
            vec![],
            "snapshot: line 1",
        ),
        (
            "a snapshot as changes",
            snapshot.clone(),
            vec![snapshot.clone()],
            "change set 1",
        ),
    ];
    for (name, snap, changes, says) in cases {
        let out = dir.path().join(format!("out-{}", name.replace(' ', "-")));
        let m = archive_err(AccountStore::restore_archive(&out, &snap, &changes));
        assert!(m.contains(says), "{name}: {m}");
        assert!(!out.exists(), "{name}: something was written");
    }

    // A directory that is not empty is refused, and left as it was.
    let busy = dir.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("keep"), b"x").unwrap();
    let m = archive_err(AccountStore::restore_archive(&busy, &snapshot, &[]));
    assert!(m.contains("not empty"), "{m}");
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);
    // Nor over the live store.
    drop(store);
    assert!(AccountStore::restore_archive(dir.path().join("live"), &snapshot, &[]).is_err());
}

/// The child of [`a_write_and_its_change_entry_commit_together`]: signs up three accounts,
/// then toggles their `disabled` in turn until killed (updates are cheap, so most kills land
/// in one). Does nothing unless the parent started it.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("EHR_ACCOUNTS_CRASH_CHILD") else {
        return;
    };
    let store = open(Path::new(&dir));
    let names = ["user0", "user1", "user2"];
    for name in names {
        store.register_patient(name, PW).unwrap();
        println!("acked {name} 0");
    }
    for toggle in 1.. {
        for name in names {
            store.set_disabled(name, toggle % 2 == 1).unwrap();
            println!("acked {name} {toggle}");
        }
    }
}

/// Killed (SIGKILL) in the middle of its writes, a store has one change entry for each
/// write that committed, and none for a write that did not: every row's state matches the
/// number of entries naming it (1 + its toggles of `disabled`), the sequence has no gap,
/// and every acknowledged write is there. Ten rounds, each killed at another point.
#[test]
fn a_write_and_its_change_entry_commit_together() {
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "tests::archive::crash_child", "--nocapture"])
            .env("EHR_ACCOUNTS_CRASH_CHILD", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut acked: Vec<(String, usize)> = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while acked.len() < 10 + 7 * round {
            let line = lines.next().expect("the child stopped").unwrap();
            if let Some((name, writes)) =
                line.strip_prefix("acked ").and_then(|w| w.split_once(' '))
            {
                acked.push((name.to_string(), writes.parse::<usize>().unwrap() + 1));
            }
        }
        // Not at once: the child has just acknowledged, so it would mostly be killed at
        // the start of its next write. A delay spread over a few writes' time instead.
        let jitter = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
            % 1000;
        std::thread::sleep(Duration::from_micros(round as u64 * 613 % 4000 + jitter));
        child.kill().unwrap();
        child.wait().unwrap();

        let store = open(dir.path());
        let entries = store.db.change_entries().unwrap();
        let seqs: Vec<u64> = entries.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            seqs,
            (1..=entries.len() as u64).collect::<Vec<_>>(),
            "a gap"
        );
        let (seq, _) = store.archive_snapshot().unwrap();
        assert_eq!(seq, entries.len() as u64);
        let writes = |name: &str| entries.iter().filter(|(_, u)| u == name).count();
        for info in store.list() {
            let toggles = writes(&info.username) - 1;
            assert_eq!(
                info.disabled,
                toggles % 2 == 1,
                "round {round}, {}: row and change entries disagree",
                info.username
            );
        }
        let names: std::collections::BTreeSet<&str> =
            entries.iter().map(|(_, u)| u.as_str()).collect();
        assert_eq!(names.len(), store.len());
        for (name, done) in &acked {
            assert!(
                store.get(name).is_some(),
                "an acknowledged sign-up was lost"
            );
            assert!(writes(name) >= *done, "an acknowledged write was lost");
        }
    }
}
