//! End-to-end test of `secure-ehr share split|combine` on the built binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_secure-ehr"))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run secure-ehr");
    eprintln!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Splits `secret` 3-of-5 into `dir/shares` and returns the five share paths.
fn split_3_of_5(dir: &Path, secret: &[u8]) -> Vec<PathBuf> {
    let file = dir.join("record.json");
    fs::write(&file, secret).unwrap();
    let shares = dir.join("shares");
    let out = run(bin()
        .args(["share", "split", "-k", "3", "-n", "5"])
        .arg(&file)
        .arg("--out")
        .arg(&shares));
    assert!(out.status.success());
    let paths: Vec<PathBuf> = (1..=5)
        .map(|x| shares.join(format!("record.json.share-{x}-of-5")))
        .collect();
    assert!(paths.iter().all(|p| p.exists()));
    paths
}

fn corrupt(path: &Path) {
    let mut b = fs::read(path).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0x5a;
    fs::write(path, b).unwrap();
}

fn secret() -> Vec<u8> {
    (0..50_000u32).map(|i| (i * 7919 % 251) as u8).collect()
}

#[test]
fn two_lost_one_corrupt_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let paths = split_3_of_5(dir.path(), &secret());
    fs::remove_file(&paths[0]).unwrap();
    fs::remove_file(&paths[1]).unwrap();
    corrupt(&paths[3]);
    let out_file = dir.path().join("rebuilt.json");
    let out = run(bin()
        .args(["share", "combine"])
        .args(&paths[2..])
        .arg("-o")
        .arg(&out_file));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&paths[3].display().to_string()), "{err}");
    assert!(err.contains("2 good, 3 needed"), "{err}");
    assert!(!err.contains(&paths[2].display().to_string()));
    assert!(!out_file.exists(), "no output may be written");
    // No temporary file left behind either.
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn one_corrupt_of_four_succeeds_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = secret();
    let paths = split_3_of_5(dir.path(), &data);
    fs::remove_file(&paths[4]).unwrap();
    corrupt(&paths[1]);
    let out_file = dir.path().join("rebuilt.json");
    let out = run(bin()
        .args(["share", "combine"])
        .args(&paths[..4])
        .arg("-o")
        .arg(&out_file));
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&paths[1].display().to_string()), "{err}");
    assert_eq!(fs::read(&out_file).unwrap(), data);
}

#[test]
fn bad_threshold_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x");
    fs::write(&file, b"x").unwrap();
    let out = run(bin()
        .args(["share", "split", "-k", "6", "-n", "5"])
        .arg(&file)
        .arg("--out")
        .arg(dir.path()));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("threshold"));
}
