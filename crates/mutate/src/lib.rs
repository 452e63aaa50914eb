//! Short, deterministic fuzz campaigns for ordinary tests.
//!
//! `cargo fuzz` (the `fuzz/` crate) is the long, coverage-guided search; it
//! needs nightly and sanitizers and takes the better part of an hour to
//! build. CI instead runs, in each crate that reads untrusted bytes, a
//! [`campaign`] of a few thousand seeded mutations of valid inputs (bit
//! flips, byte rewrites, truncations, deleted and duplicated ranges,
//! length fields and numbers rewritten to extremes) and fails on the first
//! panic, naming the case and the mutations that produced it. The same
//! seed always gives the same cases, so a failure replays exactly.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Instant;

/// SplitMix64 (Steele, Lea & Flood, 2014): a tiny generator whose whole
/// state is one `u64`, so a campaign replays from its seed alone.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` must be positive).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Integers that break size and offset arithmetic: zero, one, sign and
/// width boundaries, and values far beyond any real file.
const EXTREME_INTEGERS: [u64; 12] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    i64::MAX as u64,
    u64::MAX,
];

/// Decimal spellings that break numeric fields of JSON and text headers.
const EXTREME_NUMBERS: [&str; 11] = [
    "0",
    "-1",
    "1.5",
    "65537",
    "4294967296",
    "1000000000000",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "-0.0",
    "1e-320",
];

/// Bytes that end, open or separate structures in text formats.
const STRUCTURAL_BYTES: &[u8] = b"{}[]\",:\\\0\n";

/// Mutated fields land in the first bytes this often (1 in N), where
/// headers and their length fields live.
const HEADER_BIAS: usize = 2;
/// The span counted as "the header" for [`HEADER_BIAS`].
const HEADER_BYTES: usize = 64;
/// The most mutations stacked on one case.
const MAX_STACKED: usize = 4;

/// One way of damaging an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    FlipBit,
    SetByte,
    InsertStructural,
    Truncate,
    DeleteRange,
    DuplicateRange,
    WriteInteger,
    RewriteNumber,
}

const KINDS: [Kind; 8] = [
    Kind::FlipBit,
    Kind::SetByte,
    Kind::InsertStructural,
    Kind::Truncate,
    Kind::DeleteRange,
    Kind::DuplicateRange,
    Kind::WriteInteger,
    Kind::RewriteNumber,
];

/// Applies one to [`MAX_STACKED`] random mutations to `input`; returns the
/// result and a description of each mutation, in order.
pub fn mutate(input: &[u8], rng: &mut SplitMix64) -> (Vec<u8>, Vec<String>) {
    let mut bytes = input.to_vec();
    let steps = 1 + rng.below(MAX_STACKED);
    let applied = (0..steps)
        .map(|_| apply(*rng.pick(&KINDS), &mut bytes, rng))
        .collect();
    (bytes, applied)
}

/// Applies one mutation of `kind`, returning what it did.
fn apply(kind: Kind, bytes: &mut Vec<u8>, rng: &mut SplitMix64) -> String {
    if bytes.is_empty() {
        bytes.push(*rng.pick(STRUCTURAL_BYTES));
        return "inserted a byte into an empty input".into();
    }
    let at = offset(bytes.len(), rng);
    match kind {
        Kind::FlipBit => {
            let bit = rng.below(8);
            bytes[at] ^= 1 << bit;
            format!("flipped bit {bit} of byte {at}")
        }
        Kind::SetByte => {
            let value = *rng.pick(&EXTREME_INTEGERS) as u8;
            bytes[at] = value;
            format!("set byte {at} to {value:#04x}")
        }
        Kind::InsertStructural => {
            let value = *rng.pick(STRUCTURAL_BYTES);
            bytes.insert(at, value);
            format!("inserted {:?} at {at}", value as char)
        }
        Kind::Truncate => {
            bytes.truncate(at);
            format!("truncated to {at} bytes")
        }
        Kind::DeleteRange => {
            let end = at + 1 + rng.below(bytes.len() - at);
            bytes.drain(at..end);
            format!("deleted bytes {at}..{end}")
        }
        Kind::DuplicateRange => {
            let end = at + 1 + rng.below(bytes.len() - at).min(HEADER_BYTES);
            let copy = bytes[at..end].to_vec();
            let to = rng.below(bytes.len() + 1);
            bytes.splice(to..to, copy);
            format!("copied bytes {at}..{end} to {to}")
        }
        Kind::WriteInteger => write_integer(bytes, at, rng),
        Kind::RewriteNumber => {
            rewrite_number(bytes, rng).unwrap_or_else(|| apply(Kind::WriteInteger, bytes, rng))
        }
    }
}

/// An offset into `len` bytes, biased towards the header.
fn offset(len: usize, rng: &mut SplitMix64) -> usize {
    if rng.below(HEADER_BIAS) == 0 {
        rng.below(len.min(HEADER_BYTES))
    } else {
        rng.below(len)
    }
}

/// Overwrites 1, 2, 4 or 8 bytes at `at` with an extreme integer, little- or
/// big-endian (length fields of safetensors are LE, of PNG chunks BE).
fn write_integer(bytes: &mut [u8], at: usize, rng: &mut SplitMix64) -> String {
    let width = *rng.pick(&[1usize, 2, 4, 8]);
    let value = *rng.pick(&EXTREME_INTEGERS);
    let little = rng.below(2) == 0;
    let encoded = if little {
        value.to_le_bytes()
    } else {
        value.to_be_bytes()
    };
    let field = if little {
        &encoded[..width]
    } else {
        &encoded[8 - width..]
    };
    let end = (at + width).min(bytes.len());
    bytes[at..end].copy_from_slice(&field[..end - at]);
    let order = if little { "le" } else { "be" };
    format!("wrote {value:#x} as {width}-byte {order} at {at}")
}

/// Replaces one run of ASCII digits with an extreme decimal, or `None` when
/// the input has no digits.
fn rewrite_number(bytes: &mut Vec<u8>, rng: &mut SplitMix64) -> Option<String> {
    let runs = digit_runs(bytes);
    if runs.is_empty() {
        return None;
    }
    let (start, end) = *rng.pick(&runs);
    let number = *rng.pick(&EXTREME_NUMBERS);
    bytes.splice(start..end, number.bytes());
    Some(format!("rewrote the number at {start}..{end} as {number}"))
}

/// `(start, end)` of every maximal run of ASCII digits.
fn digit_runs(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, b) in bytes.iter().enumerate() {
        match (b.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, bytes.len()));
    }
    runs
}

/// What a campaign saw: how many cases the reader accepted and refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Cases that read without error (the valid inputs among them).
    pub accepted: usize,
    /// Cases refused with an error.
    pub refused: usize,
}

/// Feeds `read` each of the `valid` inputs unchanged, then `cases` mutants
/// of them drawn from `seed`, and counts accepted and refused cases.
///
/// # Panics
/// When `read` panics on a case: the message names the campaign, the case,
/// the valid input and the mutations, and the bytes are written to a file in
/// the temporary directory (its path is in the message) to replay under
/// `cargo fuzz run <target> <file>`.
pub fn campaign<T, E>(
    name: &str,
    valid: &[Vec<u8>],
    cases: usize,
    seed: u64,
    mut read: impl FnMut(&[u8]) -> Result<T, E>,
) -> Outcome {
    assert!(
        !valid.is_empty(),
        "campaign {name}: no valid inputs to mutate"
    );
    let started = Instant::now();
    let mut outcome = Outcome::default();
    let mut run =
        |bytes: &[u8], case: &dyn Fn() -> String| match catch_unwind(AssertUnwindSafe(|| {
            read(bytes).is_ok()
        })) {
            Ok(true) => outcome.accepted += 1,
            Ok(false) => outcome.refused += 1,
            Err(panic) => {
                let path = save_case(name, bytes);
                panic!(
                    "campaign {name}: {} panicked ({}); input saved to {}",
                    case(),
                    panic_message(&*panic),
                    path.display()
                );
            }
        };
    for (i, input) in valid.iter().enumerate() {
        run(input, &|| format!("valid input {i}"));
    }
    let mut rng = SplitMix64::new(seed);
    for case in 0..cases {
        let source = rng.below(valid.len());
        let (bytes, applied) = mutate(&valid[source], &mut rng);
        run(&bytes, &|| {
            format!(
                "case {case} (seed {seed}, valid input {source}, {})",
                applied.join(", ")
            )
        });
    }
    println!(
        "campaign {name}: {} valid inputs and {cases} mutants in {:.2?}: {outcome:?}",
        valid.len(),
        started.elapsed()
    );
    outcome
}

/// Writes a panicking case where `cargo fuzz run` can replay it.
fn save_case(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ssdit-mutate-{name}.bin"));
    match std::fs::write(&path, bytes) {
        Ok(()) => path,
        Err(_) => PathBuf::from("<could not be written>"),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_cases() {
        let input = br#"{"hidden_size": 768, "depth": 16}"#.to_vec();
        let draw = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..50)
                .map(|_| mutate(&input, &mut rng).0)
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn every_kind_changes_its_input() {
        let input = br#"{"n": 12345, "s": "abc"}"#;
        let mut rng = SplitMix64::new(1);
        for kind in KINDS {
            let changed = (0..20).any(|_| {
                let mut bytes = input.to_vec();
                apply(kind, &mut bytes, &mut rng);
                bytes != input
            });
            assert!(changed, "{kind:?} never changes the input");
        }
    }

    #[test]
    fn numbers_are_rewritten_whole() {
        let mut bytes = b"a 123 b 4".to_vec();
        assert_eq!(digit_runs(&bytes), [(2, 5), (8, 9)]);
        let mut rng = SplitMix64::new(3);
        let what = rewrite_number(&mut bytes, &mut rng).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            EXTREME_NUMBERS
                .iter()
                .any(|n| text == format!("a {n} b 4") || text == format!("a 123 b {n}")),
            "{text} ({what})"
        );
        assert!(rewrite_number(&mut b"no digits".to_vec(), &mut rng).is_none());
    }

    #[test]
    fn integers_are_written_in_both_byte_orders() {
        let mut rng = SplitMix64::new(5);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let mut bytes = vec![0xaa; 16];
            let what = write_integer(&mut bytes, 4, &mut rng);
            seen.insert(what.contains("-byte le"));
            assert_eq!(
                bytes[..4],
                [0xaa; 4],
                "bytes before the offset kept: {what}"
            );
        }
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn a_panic_names_the_case_and_its_mutations() {
        let seeds = vec![b"0123456789".to_vec()];
        let outcome = catch_unwind(|| {
            campaign("selftest", &seeds, 100, 9, |bytes| {
                assert_eq!(bytes.len(), 10, "length changed");
                Ok::<(), ()>(())
            })
        });
        let message = panic_message(&*outcome.unwrap_err());
        assert!(
            message.contains("campaign selftest: case")
                && message.contains("valid input 0")
                && message.contains("length changed"),
            "{message}"
        );
        let saved = std::env::temp_dir().join("ssdit-mutate-selftest.bin");
        assert_ne!(std::fs::read(&saved).unwrap().len(), 10);
        std::fs::remove_file(saved).unwrap();
    }

    #[test]
    fn outcomes_count_accepted_and_refused_cases() {
        let seeds = vec![b"0123456789".to_vec()];
        let outcome = campaign("count", &seeds, 300, 11, |bytes| {
            if bytes == seeds[0].as_slice() {
                Ok(())
            } else {
                Err(())
            }
        });
        assert_eq!(outcome.accepted + outcome.refused, 301);
        assert!(
            outcome.accepted >= 1 && outcome.refused > 250,
            "{outcome:?}"
        );
    }
}
