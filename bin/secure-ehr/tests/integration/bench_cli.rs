//! `secure-ehr bench` refuses what it cannot measure, with an error naming the limit, and
//! measures records of exactly the size asked for up to that limit.

use std::process::{Command, Output};

/// The largest record the service accepts (the FHIR parser's and the API's body limit).
const MAX_RECORD: usize = 1 << 20;

/// `secure-ehr bench args…`, as small as it gets unless `args` say otherwise: one patient,
/// one operation per phase, one in flight.
fn bench(args: &[&str]) -> Output {
    let mut all = vec!["bench"];
    all.extend(args);
    for (flag, value) in [("--ops", "1"), ("--concurrency", "1"), ("--patients", "1")] {
        if !args.contains(&flag) {
            all.extend([flag, value]);
        }
    }
    Command::new(env!("CARGO_BIN_EXE_secure-ehr"))
        .args(all)
        .output()
        .expect("run secure-ehr")
}

fn refused(args: &[&str]) -> String {
    let out = bench(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "bench {args:?} ran:\n{err}");
    err
}

#[test]
fn a_record_larger_than_the_service_accepts_is_refused() {
    for size in [MAX_RECORD + 1, 2_000_000] {
        let err = refused(&["--size", &size.to_string()]);
        assert!(
            err.contains("--size") && err.contains(&format!("at most {MAX_RECORD} bytes")),
            "{err}"
        );
    }
}

#[test]
fn the_largest_record_is_measured_at_its_size() {
    let out = bench(&["--size", &MAX_RECORD.to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{MAX_RECORD}-byte FHIR records")),
        "{stdout}"
    );
}

#[test]
fn counts_of_zero_and_more_in_flight_than_ops_are_refused() {
    for flag in ["--ops", "--read-ops", "--concurrency", "--patients"] {
        let err = refused(&[flag, "0"]);
        assert!(
            err.contains(flag) && err.contains("must be at least 1"),
            "{flag}: {err}"
        );
    }
    let err = refused(&["--concurrency", "2"]);
    assert!(
        err.contains("--concurrency 2 is more than --ops 1"),
        "{err}"
    );
    let err = refused(&["--ops", "4", "--read-ops", "2", "--concurrency", "3"]);
    assert!(
        err.contains("--concurrency 3 is more than --read-ops 2"),
        "{err}"
    );
}
