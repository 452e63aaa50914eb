//! `ssdit generate` refuses an output path it could not write before it asks
//! a sampler for anything (no sampler listens at the address it is given).

use crate::cli;

#[test]
fn an_unwritable_output_is_refused_before_sampling() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder/rose.png");
    let folder = dir.path().to_path_buf();
    for (output, expected) in [(&missing, "does not exist"), (&folder, "is a folder")] {
        let result = cli::command()
            .args([
                "generate",
                "a red rose",
                "--addr",
                "http://127.0.0.1:1",
                "-o",
            ])
            .arg(output)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("cannot reach"), "{stderr}");
    }
}
