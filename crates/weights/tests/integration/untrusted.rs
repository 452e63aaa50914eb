//! Safetensors files from strangers: every malformed header is a clear
//! error naming the file, never a panic and never an allocation sized by
//! what the file claims. The files are written byte by byte here, so each
//! test breaks exactly one rule of the format.

use ssdit_weights::{Checkpoint, Error};

/// A safetensors file: little-endian header length, JSON header, data.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// Four f32 values, 16 bytes.
fn four_floats() -> Vec<u8> {
    [1.0f32, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// Opening fails, or reading `w` fails: either way an error naming the file.
fn assert_refused(bytes: Vec<u8>, what: &str) {
    let origin = format!("{what}.safetensors");
    let error = match Checkpoint::from_safetensors_bytes(bytes, origin.clone()) {
        Err(error) => error,
        Ok(checkpoint) => match checkpoint.tensor("w") {
            Err(error) => error,
            Ok(data) => panic!("{what}: accepted, read {} values", data.num_elements()),
        },
    };
    assert!(
        matches!(error, Error::Malformed { .. } | Error::Tensor { .. }),
        "{what}: {error:?}"
    );
    assert!(error.to_string().contains(&origin), "{what}: {error}");
}

#[test]
fn a_well_formed_file_reads_back() {
    let bytes = file(
        r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
        &four_floats(),
    );
    let checkpoint = Checkpoint::from_safetensors_bytes(bytes, "good.safetensors").unwrap();
    assert_eq!(checkpoint.shape("w"), Some(&[2usize, 2][..]));
    let values: Vec<f32> = checkpoint.tensor("w").unwrap().to_vec().unwrap();
    assert_eq!(values, [1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn absurd_header_lengths_are_refused_without_allocating_them() {
    for claimed in [u64::MAX, 1 << 62, 1 << 40, 100_000_000] {
        let mut bytes = claimed.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        assert_refused(bytes, &format!("header-{claimed}"));
    }
    assert_refused(vec![1, 2, 3], "shorter-than-its-length-field");
    assert_refused(Vec::new(), "empty");
}

#[test]
fn headers_that_are_not_json_objects_are_refused() {
    assert_refused(file("not json at all", &[]), "not-json");
    assert_refused(file("[1, 2, 3]", &[]), "json-array");
    let mut invalid_utf8 = file("{\"w\":  }", &[]);
    invalid_utf8[13] = 0xff;
    assert_refused(invalid_utf8, "invalid-utf8");
}

#[test]
fn offsets_out_of_range_are_refused() {
    let data = four_floats();
    for (what, offsets) in [
        ("end-past-data", "[0,1000]"),
        ("start-after-end", "[16,0]"),
        (
            "far-past-data",
            "[18446744073709551600,18446744073709551615]",
        ),
    ] {
        let header = format!(r#"{{"w":{{"dtype":"F32","shape":[2,2],"data_offsets":{offsets}}}}}"#);
        assert_refused(file(&header, &data), what);
    }
}

#[test]
fn unknown_dtypes_are_refused() {
    let header = r#"{"w":{"dtype":"Q7","shape":[2,2],"data_offsets":[0,16]}}"#;
    assert_refused(file(header, &four_floats()), "unknown-dtype");
}

#[test]
fn shapes_that_disagree_with_the_data_are_refused() {
    let data = four_floats();
    for (what, shape, dtype) in [
        ("too-many-elements", "[3,3]", "F32"),
        ("too-few-elements", "[3]", "F32"),
        ("wrong-dtype-width", "[2,2]", "F64"),
        (
            "overflowing-shape",
            "[4294967296,4294967296,4294967296]",
            "F32",
        ),
    ] {
        let header =
            format!(r#"{{"w":{{"dtype":"{dtype}","shape":{shape},"data_offsets":[0,16]}}}}"#);
        assert_refused(file(&header, &data), what);
    }
}

#[test]
fn truncated_data_is_refused() {
    let header = r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
    assert_refused(file(header, &four_floats()[..10]), "truncated-data");
}

/// Opens `bytes` and reads every tensor, as the `safetensors_checkpoint`
/// fuzz target does; returns how many values were read.
fn read_every_tensor(bytes: &[u8]) -> ssdit_weights::Result<usize> {
    let checkpoint = Checkpoint::from_safetensors_bytes(bytes.to_vec(), "mutant.safetensors")?;
    let names: Vec<String> = checkpoint.names().map(str::to_string).collect();
    let mut values = 0;
    for name in names {
        let shape = checkpoint
            .shape(&name)
            .expect("a listed tensor has a shape");
        let data = checkpoint.tensor(&name)?;
        assert_eq!(
            data.num_elements(),
            shape.iter().product::<usize>(),
            "{name}: the data read disagrees with its shape"
        );
        values += data.num_elements();
    }
    Ok(values)
}

/// The short campaign CI runs (`cargo fuzz run safetensors_checkpoint` is the
/// long one): mutants of valid files end in tensors or an error, never a
/// panic or an allocation sized by a mutated field.
#[test]
fn mutated_files_never_panic() {
    let valid = vec![
        file(
            r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
            &four_floats(),
        ),
        file(
            r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1,3],"data_offsets":[4,16]}}"#,
            &four_floats(),
        ),
    ];
    let outcome = ssdit_mutate::campaign(
        "safetensors_checkpoint",
        &valid,
        50_000,
        7,
        read_every_tensor,
    );
    assert!(
        outcome.accepted > valid.len() && outcome.refused > 0,
        "mutants should reach both the readers and the refusals: {outcome:?}"
    );
}
