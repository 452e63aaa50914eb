//! Shared test support: the behaviour suite that both bus implementations
//! must pass (the private nats-server per test is `ssdit-testkit`'s).

pub mod behaviour;

use std::sync::Arc;

use async_trait::async_trait;
use ssdit_bus::Bus;

/// Opens connections to one bus deployment, as separate processes would.
#[async_trait]
pub trait Harness: Send + Sync {
    /// A new connection to the same stream.
    async fn connect(&self) -> Arc<dyn Bus>;
}

/// Writes one `#[tokio::test]` per behaviour, each on a fresh harness from `$make`.
#[macro_export]
macro_rules! behaviour_tests {
    ($make:expr) => {
        behaviour_tests!(@tests $make;
            publish_fetch_ack,
            fetch_respects_max_and_timeout,
            consumers_see_only_their_subject_and_earlier_events,
            nak_redelivers,
            unacked_message_is_redelivered_after_ack_wait,
            in_progress_extends_ack_wait,
            competing_consumers_split_the_work,
            nak_on_last_delivery_dead_letters,
            silent_holders_exhaust_deliveries_into_dead_letter,
            term_dead_letters_at_once,
            setup_is_idempotent_and_concurrent,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $make;
                common::behaviour::$name(&harness).await;
            }
        )*
    };
}
