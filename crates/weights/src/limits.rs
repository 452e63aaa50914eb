//! Upper bounds on the sizes a model configuration may declare.
//!
//! A `config.json` sizes every tensor before any weight is read, and it may
//! come from a stranger (a hub repository, an upload). Bounds far above any
//! model ssdit runs (the largest public checkpoints stay under hidden size
//! 32k, 200 layers and 300k tokens of vocabulary) turn an absurd or hostile
//! file into an error naming the field, instead of an allocation of the
//! file's choosing, an arithmetic overflow or hours of initialisation.

/// Widest hidden size, channel count, embedding, head or MLP width.
pub const MAX_WIDTH: usize = 65_536;
/// Most layers (blocks) in one stack.
pub const MAX_LAYERS: usize = 1024;
/// Largest token vocabulary.
pub const MAX_VOCAB: usize = 1 << 22;
/// Longest token sequence a model may declare (positions, windows).
pub const MAX_TOKENS: usize = 1 << 20;
/// Most parameters a configuration may describe, estimated from its sizes
/// (100 billion: 400 GB of float32 weights).
pub const MAX_PARAMETERS: f64 = 100e9;

/// A declared size over its limit; displays as the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge<'a> {
    /// The configuration field.
    pub field: &'a str,
    /// What the configuration declares.
    pub value: usize,
    /// The most it may declare.
    pub limit: usize,
}

impl std::fmt::Display for TooLarge<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} exceeds the limit of {}", self.value, self.limit)
    }
}

/// The first of `(field, value, limit)` whose value exceeds its limit.
pub fn first_too_large<'a>(sizes: &[(&'a str, usize, usize)]) -> Option<TooLarge<'a>> {
    sizes
        .iter()
        .find(|(_, value, limit)| value > limit)
        .map(|&(field, value, limit)| TooLarge {
            field,
            value,
            limit,
        })
}

/// Why a model of about `estimate` parameters is refused, or `None` when it
/// is within [`MAX_PARAMETERS`].
pub fn too_many_parameters(estimate: f64) -> Option<String> {
    (estimate > MAX_PARAMETERS).then(|| {
        format!("the sizes describe about {estimate:.2e} parameters, over the limit of {MAX_PARAMETERS:.0e}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_size_over_its_limit() {
        let sizes = [
            ("hidden_size", MAX_WIDTH, MAX_WIDTH),
            ("depth", MAX_LAYERS + 1, MAX_LAYERS),
            ("vocab_size", usize::MAX, MAX_VOCAB),
        ];
        let too_large = first_too_large(&sizes).unwrap();
        assert_eq!(too_large.field, "depth");
        assert_eq!(too_large.to_string(), "1025 exceeds the limit of 1024");
        assert!(first_too_large(&sizes[..1]).is_none());
    }

    #[test]
    fn refuses_estimates_over_the_parameter_limit() {
        assert!(too_many_parameters(MAX_PARAMETERS).is_none());
        let reason = too_many_parameters(1.5e12).unwrap();
        assert!(
            reason.contains("1.50e12") && reason.contains("1e11"),
            "{reason}"
        );
    }
}
