// Conformance with amqplib (Node.js), the other client family RabbitMQ's
// users run: capabilities, exchange-to-exchange bindings, confirms (merged
// into multiple acks), a channel error that leaves the connection usable,
// broker-initiated basic.cancel, ready counts after nack, a large message,
// and a clean connection.close (the close callback runs, no ECONNRESET).
// Usage: node amqplib_conformance.js PORT. Exit 0 = every check held.
'use strict';
const amqp = require('amqplib');

const port = process.argv[2];
if (!port) { console.error('usage: amqplib_conformance.js PORT'); process.exit(2); }
const url = 'amqp://guest:guest@127.0.0.1:' + port;
const sfx = '-' + process.pid + '-' + (Date.now() % 1000000);

function check(cond, what) {
  if (!cond) { console.log('FAIL: ' + what); process.exit(1); }
}

// fn(ch) must get `ch` closed by the broker with `code`.
async function channelError(conn, fn, code, what) {
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  let err = null;
  try { await fn(ch); } catch (e) { err = e; }
  // amqplib puts the code in the message: "Channel closed by server: 404 ..."
  const text = err ? String(err.message) : '';
  check(text.indexOf(String(code)) >= 0, what + ': got "' + text + '"');
}

async function main() {
  const conn = await amqp.connect(url);
  let connError = null;
  conn.on('error', (e) => { connError = e; });
  const caps = conn.connection.serverProperties.capabilities;
  for (const c of ['publisher_confirms', 'exchange_exchange_bindings', 'basic.nack',
                   'consumer_cancel_notify', 'per_consumer_qos']) {
    check(caps[c] === true, 'capability ' + c);
  }
  const ch = await conn.createConfirmChannel();

  // exchange-to-exchange binding
  const ex1 = 'al-ex1' + sfx, ex2 = 'al-ex2' + sfx, q = 'al-q' + sfx;
  await ch.assertExchange(ex1, 'direct', {durable: false});
  await ch.assertExchange(ex2, 'fanout', {durable: false, internal: true});
  await ch.assertQueue(q, {durable: false});
  await ch.bindExchange(ex2, ex1, 'rk');
  await ch.bindQueue(q, ex2, '');
  ch.publish(ex1, 'rk', Buffer.from('via ex2'));
  await ch.waitForConfirms();
  const got = await ch.get(q, {noAck: true});
  check(got && got.content.toString() === 'via ex2', 'exchange binding delivery');

  // many confirms: at least one arrives as multiple
  let multi = false;
  ch.on('ack', (m) => { if (m.multiple) multi = true; });
  for (let i = 0; i < 500; i++) ch.sendToQueue(q, Buffer.from('m' + i));
  await ch.waitForConfirms();
  check(multi, 'no multiple ack for 500 publishes');
  const info = await ch.checkQueue(q);
  check(info.messageCount === 500, 'count after 500 publishes: ' + info.messageCount);

  // nack and counts: ready messages only, requeue visible at once
  const c2 = await conn.createChannel();
  const a = await c2.get(q);
  const b = await c2.get(q);
  check((await ch.checkQueue(q)).messageCount === 498, 'two unacked not ready');
  c2.nack(a, false, true);
  c2.nack(b, false, false);
  check((await ch.checkQueue(q)).messageCount === 499, 'after nack requeue + drop');
  await c2.close();
  await ch.purgeQueue(q);

  // a channel error (publish to a missing exchange) leaves the connection usable
  await channelError(conn, async (c) => {
    c.publish('al-missing' + sfx, 'k', Buffer.from('x'));
    await c.checkQueue(q);
  }, 404, 'publish to a missing exchange');
  check(connError === null, 'connection error after a channel error');

  // broker-initiated basic.cancel when the queue is deleted
  const q2 = 'al-q2' + sfx;
  await ch.assertQueue(q2, {durable: false});
  const c3 = await conn.createChannel();
  const cancelled = new Promise((resolve) => {
    c3.consume(q2, (m) => { if (m === null) resolve(true); });
  });
  await new Promise((r) => setTimeout(r, 100));
  await ch.deleteQueue(q2);
  const ok = await Promise.race([cancelled, new Promise((r) => setTimeout(() => r(false), 5000))]);
  check(ok, 'no basic.cancel from the broker');

  // a large message (just under the limit) round-trips
  const big = Buffer.alloc(1024 * 1024 - 64, 7);
  ch.sendToQueue(q, big, {persistent: true});
  await ch.waitForConfirms();
  const bm = await ch.get(q, {noAck: true});
  check(bm && bm.content.length === big.length && bm.content.equals(big), 'large message');

  await ch.deleteExchange(ex1);
  await ch.deleteExchange(ex2);
  await ch.deleteQueue(q);
  // a clean close: the promise resolves, no socket error
  await conn.close();
  check(connError === null, 'error while closing: ' + connError);
  console.log('ok: amqplib conformance');
}

main().catch((e) => { console.log('FAIL: ' + (e && e.stack || e)); process.exit(1); });
