//! [`boxed_from!`](crate::boxed_from): `From` conversions into an error enum
//! whose variants box the errors of the crates below.

/// Implements `From<Source>` for an error enum whose variant `Variant`
/// holds a `Box<Source>` (large errors boxed, so that `Result`s stay small):
///
/// ```
/// #[derive(Debug)]
/// enum Error {
///     Io(Box<std::io::Error>),
/// }
/// ssdit_core::boxed_from!(Error: Io(std::io::Error));
/// let error: Error = std::io::Error::other("disk full").into();
/// assert!(matches!(error, Error::Io(_)));
/// ```
#[macro_export]
macro_rules! boxed_from {
    ($target:ty: $($variant:ident($source:ty)),* $(,)?) => {$(
        impl From<$source> for $target {
            fn from(error: $source) -> Self {
                Self::$variant(Box::new(error))
            }
        }
    )*};
}
