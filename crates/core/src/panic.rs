//! What a caught panic said, for the services that keep running after one
//! (a compute worker's job, a training run's thread).

use std::any::Any;

/// The message of a panic caught by `std::panic::catch_unwind`.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use std::panic::catch_unwind;

    use super::*;

    #[test]
    fn static_and_formatted_messages_are_read() {
        let fixed = catch_unwind(|| panic!("out of memory")).unwrap_err();
        assert_eq!(panic_message(&*fixed), "out of memory");
        let formatted = catch_unwind(|| panic!("{} bytes", 12)).unwrap_err();
        assert_eq!(panic_message(&*formatted), "12 bytes");
        let other = catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert_eq!(panic_message(&*other), "a panic without a message");
    }
}
