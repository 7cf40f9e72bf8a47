//! The store commands of the `secure-ehr` binary, run as a user would: `cid` against the
//! known-answer vectors, `add`/`cat` and `car export`/`car import` round trips on the fs
//! store, and clear errors (naming the CID or file) for bad input.

use crate::ipfs;

use std::path::Path;
use std::process::{Command, Output};

fn bin(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_secure-ehr"));
    cmd.env("SECURE_EHR_DATA_DIR", data_dir)
        .env_remove("SECURE_EHR_STORE");
    cmd
}

fn run(data_dir: &Path, args: &[&str]) -> Output {
    bin(data_dir).args(args).output().expect("run secure-ehr")
}

fn ok(data_dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = run(data_dir, args);
    assert!(
        out.status.success(),
        "secure-ehr {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn ok_line(data_dir: &Path, args: &[&str]) -> String {
    String::from_utf8(ok(data_dir, args))
        .unwrap()
        .trim()
        .to_string()
}

fn fails(data_dir: &Path, args: &[&str]) -> (String, Vec<u8>) {
    let out = run(data_dir, args);
    assert!(!out.status.success(), "secure-ehr {args:?} should fail");
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.stdout,
    )
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn block_files(dir: &Path) -> usize {
    let Ok(shards) = std::fs::read_dir(dir) else {
        return 0;
    };
    shards
        .map(|s| std::fs::read_dir(s.unwrap().path()).unwrap().count())
        .sum()
}

#[test]
fn cid_prints_what_ipfs_add_only_hash_prints() {
    let tmp = tempfile::tempdir().unwrap();
    let vectors = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crates/store/tests/data/cid-vectors.tsv"
    );
    let text = std::fs::read_to_string(vectors).unwrap();
    let mut rows = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("file\t"))
    {
        let f: Vec<&str> = line.split('\t').collect();
        let path = tmp.path().join(f[0]);
        std::fs::write(&path, pattern(f[1].parse().unwrap())).unwrap();
        let p = path.to_str().unwrap();
        assert_eq!(ok_line(tmp.path(), &["cid", p]), f[4], "{} v1", f[0]);
        assert_eq!(ok_line(tmp.path(), &["cid", "--cid-version", "1", p]), f[4]);
        assert_eq!(
            ok_line(tmp.path(), &["cid", "--cid-version", "0", p]),
            f[3],
            "{} v0",
            f[0]
        );
        rows += 1;
    }
    assert!(rows > 0);
    let (err, _) = fails(tmp.path(), &["cid", "--cid-version", "2", "x"]);
    assert!(err.contains("2"), "{err}");
}

#[test]
fn add_cat_and_car_round_trip_on_the_fs_store() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let data = pattern(3 * 256 * 1024 + 100);
    let file = tmp.path().join("record.bin");
    std::fs::write(&file, &data).unwrap();
    let f = file.to_str().unwrap();

    let cid = ok_line(&a, &["add", f]);
    assert_eq!(cid, ok_line(&a, &["cid", f]), "add and cid agree");
    assert_eq!(block_files(&a.join("blocks")), 5, "4 leaves and a root");
    assert!(ok(&a, &["cat", &cid]) == data);
    // --data-dir overrides the environment.
    assert!(ok(&b, &["cat", &cid, "--data-dir", a.to_str().unwrap()]) == data);

    let car = ok(&a, &["car", "export", &cid]);
    let car_path = tmp.path().join("record.car");
    std::fs::write(&car_path, &car).unwrap();
    assert_eq!(
        ok_line(&b, &["car", "import", car_path.to_str().unwrap()]),
        cid
    );
    assert!(ok(&b, &["cat", &cid]) == data);

    let v0 = ok_line(&a, &["add", "--cid-version", "0", f]);
    assert!(v0.starts_with("Qm"), "{v0}");
    assert!(ok(&a, &["cat", &v0]) == data);
}

#[test]
fn bad_input_gives_clear_errors_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();

    let (err, _) = fails(d, &["cat", "not-a-cid"]);
    assert!(err.contains("not-a-cid"), "{err}");

    let missing = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    let (err, _) = fails(d, &["cat", missing]);
    assert!(err.contains(missing) && err.contains("not found"), "{err}");

    // dag-json codec and identity hash: valid CIDs we do not store.
    let (err, _) = fails(
        d,
        &[
            "cat",
            "baguqeeraovr4gpt7zwh4scf2t4rnunkobrzqjiiebv7rtxnzx5zgbs3biwxq",
        ],
    );
    assert!(err.contains("unsupported codec"), "{err}");
    let (err, _) = fails(d, &["cat", "bafkqaaa"]);
    assert!(err.contains("unsupported hash"), "{err}");

    let (err, _) = fails(d, &["cid", "/no/such/file"]);
    assert!(err.contains("/no/such/file"), "{err}");

    let (err, _) = fails(d, &["add", "/etc/hostname", "--store", "s3:bucket"]);
    assert!(err.contains("s3:bucket"), "{err}");

    // A block altered on disk: cat names the CID and the file, and prints nothing.
    let file = d.join("f.bin");
    std::fs::write(&file, pattern(300_000)).unwrap();
    let cid = ok_line(d, &["add", file.to_str().unwrap()]);
    let blocks = d.join("blocks");
    let victim = std::fs::read_dir(&blocks)
        .unwrap()
        .flat_map(|s| std::fs::read_dir(s.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .find(|p| std::fs::metadata(p).unwrap().len() > 1000)
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[7] ^= 0x40;
    std::fs::write(&victim, &bytes).unwrap();
    let (err, out) = fails(d, &["cat", &cid]);
    assert!(out.is_empty(), "no partial output");
    assert!(err.contains("does not match"), "{err}");
    assert!(
        err.contains(victim.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );

    // A truncated CAR imports nothing.
    std::fs::write(&file, pattern(1000)).unwrap();
    let src = d.join("src");
    let cid = ok_line(&src, &["add", file.to_str().unwrap()]);
    let car = ok(&src, &["car", "export", &cid]);
    let car_path = d.join("t.car");
    std::fs::write(&car_path, &car[..car.len() - 5]).unwrap();
    let dst = d.join("dst");
    let (err, _) = fails(&dst, &["car", "import", car_path.to_str().unwrap()]);
    assert!(err.contains("t.car") && err.contains("truncated"), "{err}");
    assert_eq!(block_files(&dst.join("blocks")), 0);
}

#[test]
fn add_cat_and_car_export_against_an_ipfs_node() {
    let node = ipfs::IpfsNode::start();
    let store = format!("kubo:{}", node.url);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let data = pattern(2 * 256 * 1024 + 3);
    let file = d.join("r.bin");
    std::fs::write(&file, &data).unwrap();
    let f = file.to_str().unwrap();

    let cid = ok_line(d, &["add", f, "--store", &store]);
    assert_eq!(cid, ok_line(d, &["cid", f]));
    assert!(ok(d, &["cat", &cid, "--store", &store]) == data);
    let out = bin(d)
        .args(["cat", &cid])
        .env("SECURE_EHR_STORE", &store)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout == data,
        "store from the environment"
    );

    // Exported from the node, imported into the fs store.
    let car = ok(d, &["car", "export", &cid, "--store", &store]);
    let car_path = d.join("r.car");
    std::fs::write(&car_path, &car).unwrap();
    assert_eq!(
        ok_line(d, &["car", "import", car_path.to_str().unwrap()]),
        cid
    );
    assert!(ok(d, &["cat", &cid]) == data);
    assert!(d.join("blocks").read_dir().unwrap().next().is_some());
}
