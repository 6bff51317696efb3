#!/usr/bin/env node
// A Node application's day with amqplib, as its authors' examples use it: confirmed publishing,
// a consumer under a prefetch window acking as it goes, basic.get until the queue is empty, a
// mandatory publish that comes back, a channel error that leaves the connection usable, a
// consumer cancelled because its queue was deleted, and an idle connection kept by 1-second
// heartbeats. Each check is what the model allows and what RabbitMQ 3.10.8 does: the test
// (conformance/tests/node.rs) runs it against both.
//
//     node scenario.js URL TAG    (TAG makes the names unique on a shared broker; exit 0 when
//                                  every check held)

'use strict';

const amqp = require('amqplib');

const [url, tag] = process.argv.slice(2);
if (!url || !tag) {
  console.error('usage: node scenario.js URL TAG');
  process.exit(2);
}
const name = (s) => `node-${tag}-${s}`;
let checks = 0;
function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  checks += 1;
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Wait for `cond()` to hold, polling, at most `ms` milliseconds; says what it waited for.
async function until(cond, what, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function confirmsAndConsumer(conn) {
  const pub = await conn.createConfirmChannel();
  const q = (await pub.assertQueue(name('work'), { exclusive: true })).queue;
  const acked = [];
  for (let i = 0; i < 20; i++) {
    pub.sendToQueue(q, Buffer.from(`job ${i}`), { persistent: true }, (err) => acked.push(err));
  }
  await pub.waitForConfirms();
  check(acked.length === 20 && acked.every((e) => e === null || e === undefined), 'every publish confirmed');

  const ch = await conn.createChannel();
  await ch.prefetch(5);
  const got = [];
  let outstanding = 0;
  let most = 0;
  await ch.consume(q, (msg) => {
    outstanding += 1;
    most = Math.max(most, outstanding);
    got.push(msg.content.toString());
    // Ack a little later, so that the window is what holds deliveries back.
    setTimeout(() => {
      outstanding -= 1;
      ch.ack(msg);
    }, 2);
  });
  await until(() => got.length === 20, '20 deliveries');
  check(most <= 5, `at most 5 unacknowledged deliveries at once (saw ${most})`);
  check(got.every((body, i) => body === `job ${i}`), 'deliveries in publish order');
  await until(() => outstanding === 0, 'the last acks');
  await ch.close();
  await pub.close();
}

async function getUntilEmpty(conn) {
  const ch = await conn.createChannel();
  const q = (await ch.assertQueue('', { exclusive: true })).queue;
  check(q.startsWith('amq.gen-'), `a server-named queue (${q})`);
  for (const body of ['a', 'b', 'c']) ch.sendToQueue(q, Buffer.from(body));
  const counts = [];
  const bodies = [];
  for (;;) {
    const msg = await ch.get(q, { noAck: false });
    if (msg === false) break;
    counts.push(msg.fields.messageCount);
    bodies.push(msg.content.toString());
    ch.ack(msg);
  }
  check(bodies.join('') === 'abc', `get returns the messages in order (${bodies})`);
  check(counts.join(',') === '2,1,0', `get-ok counts what is left (${counts})`);
  await ch.close();
}

async function mandatoryReturn(conn) {
  const ch = await conn.createConfirmChannel();
  const returned = [];
  ch.on('return', (msg) => returned.push(msg));
  let confirmed = null;
  ch.publish('amq.direct', name('nobody'), Buffer.from('lost'), { mandatory: true }, (err) => {
    confirmed = err === null || err === undefined;
  });
  await ch.waitForConfirms();
  check(returned.length === 1 && returned[0].fields.replyCode === 312, 'an unroutable mandatory publish is returned (312)');
  check(confirmed === true, 'and then confirmed');
  await ch.close();
}

async function channelError(conn) {
  const ch = await conn.createChannel();
  let closedWith = null;
  ch.on('error', (err) => {
    closedWith = err;
  });
  try {
    await ch.checkExchange(name('missing'));
    check(false, 'checking a missing exchange fails');
  } catch (err) {
    check(err.code === 404, `a missing exchange is 404 (${err.code})`);
    check(
      String(err.message).includes(`NOT_FOUND - no exchange '${name('missing')}' in vhost '/'`),
      `the reason names the exchange (${err.message})`,
    );
  }
  await until(() => closedWith !== null, "the channel's error event");
  // The connection goes on.
  const again = await conn.createChannel();
  await again.checkExchange('amq.fanout');
  await again.close();
  checks += 1;
}

async function consumerCancelled(conn) {
  const ch = await conn.createChannel();
  const q = (await ch.assertQueue(name('doomed'), { exclusive: true })).queue;
  let cancelled = false;
  await ch.consume(q, (msg) => {
    if (msg === null) cancelled = true;
  });
  const other = await conn.createChannel();
  await other.deleteQueue(q);
  await until(() => cancelled, 'the consumer cancelled by the broker (consumer_cancel_notify)');
  checks += 1;
  await other.close();
  await ch.close();
}

async function idleWithHeartbeats() {
  const sep = url.includes('?') ? '&' : '?';
  const conn = await amqp.connect(`${url}${sep}heartbeat=1`);
  let lost = null;
  conn.on('error', (err) => {
    lost = err;
  });
  conn.on('close', (err) => {
    lost = lost || err || new Error('closed');
  });
  await sleep(3500);
  check(lost === null, `an idle connection with 1-second heartbeats stays up (${lost})`);
  const ch = await conn.createChannel();
  await ch.checkExchange('amq.direct');
  await conn.close();
}

(async () => {
  const conn = await amqp.connect(url);
  conn.on('error', (err) => console.error('connection error:', err.message));
  await confirmsAndConsumer(conn);
  await getUntilEmpty(conn);
  await mandatoryReturn(conn);
  await channelError(conn);
  await consumerCancelled(conn);
  await conn.close();
  await idleWithHeartbeats();
  console.log(`${checks} checks held: amqplib as the model says`);
})().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
