//! Model checking in tests: pinned state counts of the named configurations (so that any change
//! to the state space is seen), and every deliberate fault caught by the property meant to catch
//! it (so that no property passes vacuously).

use amqp_model::check::{BrokerModel, CheckConfig};
use amqp_model::{Fault, Faults};
use stateright::{Checker, HasDiscoveries, Model};
use std::collections::BTreeSet;

/// Explore `config` exhaustively; assert every property holds (and every `sometimes` property in
/// `reached` is reached), and return (generated, unique) state counts.
fn explore(config: CheckConfig) -> (usize, usize) {
    let reached = config.must_reach;
    let model = BrokerModel::new(config);
    let properties = model.properties();
    let checker = model.checker().threads(2).spawn_bfs().join();
    for p in properties {
        let found = checker.discovery(p.name);
        match p.expectation {
            stateright::Expectation::Sometimes => {
                if reached.contains(&p.name) {
                    assert!(found.is_some(), "`{}` never reached", p.name);
                }
            }
            _ => assert!(found.is_none(), "`{}` fails: {:?}", p.name, found.map(|f| f.into_actions())),
        }
    }
    (checker.state_count(), checker.unique_state_count())
}

#[test]
fn quick_space_is_pinned() {
    assert_eq!(Some(explore(CheckConfig::quick()).1), CheckConfig::quick().unique_states);
}

#[test]
fn spec_space_is_pinned() {
    assert_eq!(Some(explore(CheckConfig::spec()).1), CheckConfig::spec().unique_states);
}

#[test]
fn routing_space_is_pinned() {
    assert_eq!(Some(explore(CheckConfig::routing()).1), CheckConfig::routing().unique_states);
}

/// With `fault` injected into `config`, the checker finds a counterexample to `property`.
fn caught(fault: Fault, config: CheckConfig, property: &'static str) {
    let config = CheckConfig { faults: Faults::only(fault), ..config };
    let checker = BrokerModel::new(config)
        .checker()
        .threads(2)
        .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([property])))
        .spawn_bfs()
        .join();
    assert!(checker.discovery(property).is_some(), "{fault:?} not caught by `{property}`");
}

const ROUTING: &str = "routing agrees with oracle";

#[test]
fn broken_routing_rules_are_caught() {
    for fault in Fault::ROUTING {
        caught(fault, CheckConfig::routing(), ROUTING);
    }
}

#[test]
fn missing_redelivered_flag_is_caught() {
    caught(Fault::NoRedeliveredFlag, CheckConfig::quick(), "redelivered iff delivered before");
}

#[test]
fn prefetch_overrun_is_caught() {
    caught(Fault::PrefetchOffByOne, CheckConfig::quick(), "prefetch respected");
    caught(Fault::PrefetchOffByOne, CheckConfig::spec(), "prefetch respected");
}

#[test]
fn lost_requeue_on_close_is_caught() {
    caught(Fault::NoRequeueOnClose, CheckConfig::quick(), "no copy lost or duplicated");
}

#[test]
fn reused_delivery_tags_are_caught() {
    caught(Fault::ReuseDeliveryTags, CheckConfig::quick(), "delivery tags increase");
}

#[test]
fn restart_keeping_transient_messages_is_caught() {
    caught(Fault::RestartKeepsTransient, CheckConfig::lifecycle(), "restart keeps exactly the durable");
}

#[test]
fn ignored_exclusivity_is_caught() {
    caught(Fault::ExclusiveIgnored, CheckConfig::lifecycle(), "exclusive queues only for their owner");
}

#[test]
fn every_fault_has_a_test() {
    // A new fault must be added to one of the tests above (and here).
    assert_eq!(Fault::ALL.len(), 13);
}
