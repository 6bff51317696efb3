//! `cargo bench -p amqp-conformance --bench proxy` (part of `just bench`): the same lapin client
//! against RabbitMQ (`AMQP_URI`, default the local one) directly and through the traffic proxy
//! (`amqp-conformance proxy`, started in this process, judging under `rabbitmq`, not recording),
//! in the same run, alternating, best of `REPEATS` each: messages/s to a no-ack consumer and
//! with confirms and acks (as the serve bench measures them), and whether the judge kept up
//! (read everything, judged everything) or said it stopped.

use amqp_conformance::proxy::{ProxyConfig, ProxyHandle, DEFAULT_BACKLOG};
use amqp_conformance::target::uri::BrokerUri;
use amqp_model::Profile;
use std::time::Duration;

mod common;
use common::{timed, Measure, DEFAULT_URI, REPEATS};

fn main() {
    let rabbitmq = std::env::var("AMQP_URI").unwrap_or_else(|_| DEFAULT_URI.to_string());
    let broker = BrokerUri::parse(&rabbitmq).unwrap_or_else(|e| panic!("AMQP_URI: {e}"));
    if let Err(e) = amqp_conformance::target::probe::check_login(&broker, Duration::from_secs(2)) {
        eprintln!("proxy bench: {e}");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    println!("The same lapin client against {broker} directly and through the traffic proxy, judging (best of {REPEATS}, alternating)");
    println!();
    println!("| measure | direct | through the proxy | proxy/direct | the judge |");
    println!("| --- | ---: | ---: | ---: | --- |");
    for measure in [Measure::NoAck, Measure::ConfirmsAndAcks] {
        let (mut direct, mut proxied) = (0.0f64, 0.0f64);
        let mut judge = String::new();
        for _ in 0..REPEATS {
            direct = direct.max(timed(&rt, "RabbitMQ", &rabbitmq, measure));
            let config = ProxyConfig {
                upstream: broker.address(),
                record: None,
                backlog: DEFAULT_BACKLOG,
                log: false,
                profile: Profile::rabbitmq(),
            };
            let proxy = ProxyHandle::start(config).expect("a proxy");
            let uri = format!("amqp://{}:{}@{}/%2f", broker.user(), broker.password(), proxy.addr());
            let rate = timed(&rt, "the proxy", &uri, measure);
            let traffic = proxy.stop();
            if rate > proxied {
                proxied = rate;
                judge = match (traffic.stopped(), traffic.divergences()) {
                    (_, n) if n > 0 => format!("{n} divergence(s)"),
                    (Some(why), _) => {
                        format!("stopped ({} commands, {} events judged): {why}", traffic.commands, traffic.events)
                    }
                    (None, _) => format!("kept up ({} commands, {} events judged)", traffic.commands, traffic.events),
                };
            }
        }
        println!("| {} | {direct:.0} | {proxied:.0} | {:.2} | {judge} |", measure.name(), proxied / direct);
    }
}
