//! `ssdit run` refuses a bad run length before it starts anything, naming
//! the option and the reason.

use crate::cli;

#[test]
fn a_run_length_that_cannot_be_trained_is_refused() {
    for (args, expected) in [
        (["--minutes", "nan"], "--minutes"),
        (["--minutes", "0"], "above 0"),
        (["--minutes", "inf"], "at most"),
        (["--steps", "0"], "--steps"),
    ] {
        let output = cli::command()
            .arg("run")
            .args(args)
            .arg("--images")
            .arg("/no/such/folder")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
