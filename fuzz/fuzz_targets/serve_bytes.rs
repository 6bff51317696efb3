//! Arbitrary bytes from a client to one connection of a fresh reference broker (an in-memory
//! pipe, no sockets): `amqp_broker::feed` says how an input is read. The input's
//! first octet chooses a handshake first (bit 0) and the `spec` profile instead of `rabbitmq`
//! (bit 1). A panic anywhere in the server, or a connection that has not ended
//! `feed::LIMIT` after its input did, is a finding.

#![no_main]

use amqp_broker::feed::Feeder;
use amqp_model::Profile;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn feeders() -> &'static [Feeder; 2] {
    static FEEDERS: OnceLock<[Feeder; 2]> = OnceLock::new();
    FEEDERS.get_or_init(|| [Feeder::new(Profile::rabbitmq()), Feeder::new(Profile::spec())])
}

fuzz_target!(|input: &[u8]| {
    let spec = input.first().is_some_and(|b| b & 2 != 0);
    feeders()[usize::from(spec)].feed(input);
});
