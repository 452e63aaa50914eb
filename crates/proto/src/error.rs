//! Errors of the wire format: tensor validation and event decoding.

/// Why a tensor or an event could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tensor's dtype is `DTYPE_UNSPECIFIED` or a value this build does not know.
    #[error("tensor dtype {0} is unspecified or unknown")]
    UnknownDType(i32),
    /// More dimensions than [`crate::tensor::MAX_RANK`].
    #[error("tensor rank {rank} exceeds the maximum of {max}")]
    RankTooLarge {
        /// Rank of the offending shape.
        rank: usize,
        /// The limit.
        max: usize,
    },
    /// The element count or byte size of the shape does not fit in `usize`.
    #[error("tensor shape {shape:?} overflows the address space")]
    ShapeOverflow {
        /// The offending shape.
        shape: Vec<u64>,
    },
    /// The shape needs more bytes than [`crate::tensor::MAX_TENSOR_BYTES`].
    #[error("tensor shape {shape:?} needs {bytes} bytes, more than the limit of {max}")]
    TooLarge {
        /// The offending shape.
        shape: Vec<u64>,
        /// Bytes the shape needs.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The data length disagrees with shape × dtype size.
    #[error("tensor of shape {shape:?} and dtype {dtype} needs {expected} bytes, got {actual}")]
    ByteLength {
        /// The tensor's shape.
        shape: Vec<u64>,
        /// The tensor's dtype name.
        dtype: &'static str,
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes present.
        actual: usize,
    },
    /// A buffer's element count disagrees with the shape it is given.
    #[error("{values} values do not fill shape {shape:?} ({expected} elements)")]
    ValueCount {
        /// The requested shape.
        shape: Vec<usize>,
        /// Elements the shape holds.
        expected: usize,
        /// Elements given.
        values: usize,
    },
    /// The tensor holds a dtype that cannot be read as the one asked for.
    #[error("tensor of dtype {actual} cannot be read as {wanted}")]
    DTypeMismatch {
        /// The tensor's dtype name.
        actual: &'static str,
        /// What the caller asked for.
        wanted: &'static str,
    },
    /// An event payload is not a valid encoding of its message.
    #[error("decoding a {event} event: {source}")]
    DecodeEvent {
        /// Event name (its subject suffix).
        event: &'static str,
        /// The protobuf error.
        source: prost::DecodeError,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
