// clients/js/ringcast.js in Node.js (the `ws` package injected) against
// build/ringcast: subscribe, publish (JSON mode and HTTP POST, text, JSON
// and binary), unsubscribe, errors, the publish queue, reconnect through a
// TCP proxy the test cuts (resume with every message in order), gap when
// the cut outlasts the history, and reset when the broker's epoch changes;
// with a scripted fake WebSocket: backoff with jitter, welcome and ping
// timeouts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProxy } from '../browser/proxy.mjs';
import { startBroker, httpPublish, waitFor, withTimeout, ROOT } from '../browser/helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'package.json'));
const WebSocket = require('ws');
const { Ringcast, RingcastError } = await import(path.join(ROOT, 'clients', 'js', 'ringcast.js'));

const T = 20000; // bound on every single wait
const FAST = { WebSocket, minDelay: 20, maxDelay: 200 };

let broker;
const clients = new Set();

before(async () => { broker = await startBroker(['--threads', '2']); });
after(async () => {
	for (const rc of clients)
		rc.close();
	await broker.stop();
});

function client(port, opts = {}) {
	const rc = new Ringcast(`ws://127.0.0.1:${port}/ws`, { ...FAST, ...opts });
	clients.add(rc);
	return rc;
}

// Records every event of a client, and lets a test wait for one.
function recorder(rc) {
	const log = { open: [], close: [], error: [], gap: [], reset: [] };
	for (const ev of Object.keys(log))
		rc.on(ev, (x) => log[ev].push(x));
	return log;
}

function opened(rc, n = 1) {
	let count = 0;
	return withTimeout(new Promise((r) => {
		const off = rc.on('open', (x) => { if (++count === n) { off(); r(x); } });
	}), T, `open #${n}`);
}

// A subscription whose messages are collected in arrival order.
async function collect(rc, topic) {
	const got = [];
	const sub = rc.subscribe(topic, (data, meta) => got.push({ data, meta }));
	const ack = await withTimeout(sub.ready, T, `sub ${topic} ack`);
	return { got, sub, ack, wait: (n) => waitFor(() => got.length >= n, T, `${n} messages on ${topic} (have ${got.length})`) };
}

test('subscribe, publish over JSON mode, meta and ack', { timeout: 60000 }, async () => {
	const rc = client(broker.port);
	const ev = recorder(rc);
	const first = await opened(rc);
	assert.equal(first.epoch, broker.epoch);
	assert.equal(first.reconnected, false);
	assert.equal(rc.connected, true);
	const c = await collect(rc, 'js.basic');
	assert.equal(c.ack.seq, 0);
	const values = [{ a: 1, b: [true, null, 'x'] }, 'plain string', 42, [1, 2, 3], null, 'ünïcødé ✓'];
	const acks = [];
	for (const v of values)
		acks.push(await withTimeout(rc.publish('js.basic', v), T, 'publish ack'));
	assert.deepEqual(acks.map((a) => a.seq), [1, 2, 3, 4, 5, 6]);
	assert.ok(acks.every((a) => a.epoch === broker.epoch));
	await c.wait(values.length);
	assert.deepEqual(c.got.map((m) => m.data), values);
	assert.deepEqual(c.got.map((m) => m.meta), values.map((_, i) =>
		({ topic: 'js.basic', seq: i + 1, epoch: broker.epoch })));
	// A second client sees the same stream; topic with '/' and non-ASCII.
	const rc2 = client(broker.port);
	const c2 = await collect(rc2, 'js/ä');
	await rc.publish('js/ä', { n: 1 });
	await c2.wait(1);
	assert.deepEqual(c2.got[0], { data: { n: 1 }, meta: { topic: 'js/ä', seq: 1, epoch: broker.epoch } });
	assert.deepEqual(ev.error, []);
	rc.close();
	rc2.close();
	assert.equal(rc.connected, false);
	assert.equal(ev.close.at(-1).willReconnect, false);
});

test('HTTP POST publish: text, JSON and binary (base64 decoded to Uint8Array)', { timeout: 60000 }, async () => {
	const rc = client(broker.port);
	const c = await collect(rc, 'js.http');
	const r1 = await httpPublish(broker.base, 'js.http', 'hello, world');
	assert.deepEqual(r1, { topic: 'js.http', seq: 1, subscribers: 1 });
	await httpPublish(broker.base, 'js.http', '{"k":[1,2]}', 'application/json');
	const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
	await httpPublish(broker.base, 'js.http', bytes, 'application/octet-stream');
	await c.wait(3);
	assert.equal(c.got[0].data, 'hello, world');
	assert.deepEqual(c.got[1].data, { k: [1, 2] });
	assert.ok(c.got[2].data instanceof Uint8Array, 'binary arrives as Uint8Array');
	assert.deepEqual([...c.got[2].data], [...bytes]);
	assert.deepEqual(c.got.map((m) => m.meta.seq), [1, 2, 3]);
	rc.close();
});

test('unsubscribe: one handler of two, then the topic', { timeout: 60000 }, async () => {
	const rc = client(broker.port);
	const a = await collect(rc, 'js.unsub');
	const b = await collect(rc, 'js.unsub');
	await rc.publish('js.unsub', 1);
	await a.wait(1);
	await b.wait(1);
	a.sub.unsubscribe();
	a.sub.unsubscribe(); // harmless twice
	await rc.publish('js.unsub', 2);
	await b.wait(2);
	// Handlers of one topic run in one call: had a stayed, it would have it.
	assert.deepEqual(a.got.map((m) => m.data), [1]);
	assert.deepEqual(b.got.map((m) => m.data), [1, 2]);
	b.sub.unsubscribe();
	// The broker drops the subscription: a publish now reaches nobody.
	await waitFor(async () => (await httpPublish(broker.base, 'js.unsub', 'x')).subscribers === 0,
		T, 'broker to see the unsub');
	assert.deepEqual(b.got.map((m) => m.data), [1, 2]);
	// Subscribing again works and starts after the current seq.
	const c = await collect(rc, 'js.unsub');
	const { seq } = await rc.publish('js.unsub', 'again');
	await c.wait(1);
	assert.equal(c.ack.seq, seq - 1);
	assert.deepEqual(c.got.map((m) => m.data), ['again']);
	rc.close();
});

test('errors: bad topic, binary publish, closed client', { timeout: 60000 }, async () => {
	const rc = client(broker.port);
	const ev = recorder(rc);
	await opened(rc);
	await assert.rejects(rc.publish('has space', 1), (e) => e instanceof RingcastError && e.code === 'bad_topic');
	const sub = rc.subscribe('bad topic', () => {});
	await assert.rejects(withTimeout(sub.ready, T, 'sub err'), (e) => e.code === 'bad_topic' && e.topic === 'bad topic');
	assert.equal(sub.active, false);
	assert.ok(ev.error.some((e) => e.code === 'bad_topic'));
	await assert.rejects(rc.publish('t', new Uint8Array(3)), TypeError);
	await assert.rejects(rc.publish('t', undefined), TypeError);
	assert.throws(() => rc.subscribe('', () => {}), TypeError);
	assert.throws(() => rc.on('nope', () => {}), TypeError);
	rc.close();
	await assert.rejects(rc.publish('t', 1), (e) => e.code === 'closed');
	if (typeof globalThis.WebSocket !== 'function') // Node < 22: nothing to fall back on
		assert.throws(() => new Ringcast('ws://127.0.0.1:1/ws', { WebSocket: undefined }), TypeError);
	assert.throws(() => new Ringcast({ WebSocket }), TypeError, 'no URL outside a page');
});

test('publish while disconnected: queued up to maxQueue, sent on connect, rejected on close', { timeout: 60000 }, async () => {
	const proxy = await startProxy(broker.port);
	proxy.setDown(true);
	const rc = client(proxy.port, { maxQueue: 2 });
	const ev = recorder(rc);
	const p1 = rc.publish('js.queue', 'q1');
	const p2 = rc.publish('js.queue', 'q2');
	await assert.rejects(rc.publish('js.queue', 'q3'), (e) => e.code === 'queue_full');
	await waitFor(() => ev.close.length >= 2, T, 'refused attempts');
	assert.ok(ev.close.every((c) => c.willReconnect && !c.wasOpen && c.delay <= 200));
	const watcher = client(broker.port);
	const w = await collect(watcher, 'js.queue');
	proxy.setDown(false);
	const [a1, a2] = await withTimeout(Promise.all([p1, p2]), T, 'queued publishes');
	assert.equal(a2.seq, a1.seq + 1);
	await w.wait(2);
	assert.deepEqual(w.got.map((m) => m.data), ['q1', 'q2']);
	// Queued publishes of a client closed before it ever connects fail.
	proxy.setDown(true);
	const rc2 = client(proxy.port);
	const p3 = rc2.publish('js.queue', 'never');
	rc2.close();
	await assert.rejects(p3, (e) => e.code === 'closed');
	rc.close();
	watcher.close();
	await proxy.close();
});

test('reconnect through a cut proxy: resume with every message, in order, once', { timeout: 90000 }, async () => {
	const proxy = await startProxy(broker.port);
	const rc = client(proxy.port);
	const ev = recorder(rc);
	const c = await collect(rc, 'js.resume');
	const other = await collect(rc, 'js.resume2');
	let n = 0;
	const expected = []; // text of each seq, in publish order
	const pub = async () => {
		const text = `m${n + 1}`;
		const r = await httpPublish(broker.base, 'js.resume', text);
		assert.equal(r.seq, ++n);
		expected.push(text);
	};
	await pub();
	await c.wait(1);
	for (let cut = 0; cut < 3; cut++) {
		proxy.setDown(true);
		assert.equal(proxy.dropAll(), 1);
		await waitFor(() => ev.close.filter((x) => x.wasOpen).length === cut + 1, T, 'client to see the cut');
		assert.equal(rc.connected, false);
		for (let i = 0; i < 20; i++)
			await pub();
		await httpPublish(broker.base, 'js.resume2', `o${cut}`);
		// A publish made while down is queued and goes out on reconnect.
		const queued = rc.publish('js.resume', `queued${cut}`);
		proxy.setDown(false);
		const opens = ev.open.length;
		await waitFor(() => ev.open.length > opens, T, 'reconnect');
		assert.equal(ev.open.at(-1).reconnected, true);
		assert.equal(ev.open.at(-1).epoch, broker.epoch);
		const { seq } = await withTimeout(queued, T, 'queued publish');
		assert.equal(seq, ++n);
		expected.push(`queued${cut}`);
		for (let i = 0; i < 10; i++)
			await pub();
	}
	await c.wait(n);
	await other.wait(3);
	assert.deepEqual(c.got.map((m) => m.meta.seq), Array.from({ length: n }, (_, i) => i + 1),
		'every seq once, in order');
	assert.deepEqual(c.got.map((m) => m.data), expected);
	assert.deepEqual(other.got.map((m) => m.data), ['o0', 'o1', 'o2']);
	assert.equal(ev.gap.length, 0);
	assert.equal(ev.reset.length, 0);
	assert.ok(proxy.accepted >= 4);
	rc.close();
	await proxy.close();
});

test('gap: a cut longer than the history (--history-size 5)', { timeout: 60000 }, async () => {
	const small = await startBroker(['--threads', '2', '--history-size', '5']);
	const proxy = await startProxy(small.port);
	try {
		const rc = client(proxy.port);
		const ev = recorder(rc);
		const c = await collect(rc, 'js.gap');
		await httpPublish(small.base, 'js.gap', 'first');
		await c.wait(1);
		proxy.setDown(true);
		proxy.dropAll();
		await waitFor(() => !rc.connected, T, 'client to see the cut');
		for (let i = 2; i <= 13; i++)
			await httpPublish(small.base, 'js.gap', `m${i}`);
		const gapSeen = withTimeout(new Promise((r) => rc.on('gap', r)), T, 'gap event');
		proxy.setDown(false);
		const gap = await gapSeen;
		// History holds 9..13; 2..8 are lost.
		assert.deepEqual(gap, { topic: 'js.gap', from: 2, to: 8 });
		await httpPublish(small.base, 'js.gap', 'm14');
		await c.wait(7);
		assert.deepEqual(c.got.map((m) => m.meta.seq), [1, 9, 10, 11, 12, 13, 14]);
		assert.deepEqual(c.got.map((m) => m.data), ['first', 'm9', 'm10', 'm11', 'm12', 'm13', 'm14']);
		assert.equal(ev.gap.length, 1);
		// After the gap, another cut resumes after 14 with no second gap.
		proxy.dropAll();
		await waitFor(() => ev.open.length === 3, T, 'second reconnect');
		await httpPublish(small.base, 'js.gap', 'm15');
		await c.wait(8);
		assert.equal(c.got.at(-1).meta.seq, 15);
		assert.equal(ev.gap.length, 1);
		rc.close();
	} finally {
		await proxy.close();
		await small.stop();
	}
});

test('a new broker epoch: resubscribe without from and emit reset', { timeout: 60000 }, async () => {
	let b1 = await startBroker(['--threads', '1']);
	const proxy = await startProxy(b1.port);
	let b2;
	try {
		const rc = client(proxy.port);
		const ev = recorder(rc);
		const c = await collect(rc, 'js.epoch');
		for (let i = 1; i <= 3; i++)
			await httpPublish(b1.base, 'js.epoch', `old${i}`);
		await c.wait(3);
		await b1.stop();
		b1 = null;
		await waitFor(() => !rc.connected, T, 'client to see the broker go');
		b2 = await startBroker(['--threads', '1']);
		proxy.retarget(b2.port);
		const reset = await withTimeout(new Promise((r) => rc.on('reset', r)), T, 'reset event');
		assert.notEqual(b2.epoch, c.got[0].meta.epoch);
		assert.deepEqual(reset, { epoch: b2.epoch, previousEpoch: c.got[0].meta.epoch, topics: ['js.epoch'] });
		// Subscribed afresh (no from): publishes before the resubscription
		// reach nobody; the first one that reaches the client is delivered,
		// not skipped as "already seen" although its seq is small.
		let r;
		await waitFor(async () => (r = await httpPublish(b2.base, 'js.epoch', 'new')).subscribers === 1,
			T, 'resubscription on the new broker');
		await c.wait(4);
		assert.equal(c.got.length, 4);
		assert.deepEqual(c.got.map((m) => m.data), ['old1', 'old2', 'old3', 'new']);
		assert.deepEqual(c.got[3].meta, { topic: 'js.epoch', seq: r.seq, epoch: b2.epoch });
		assert.ok(r.seq <= 3, 'the new numbering restarted below the old last seq');
		assert.equal(ev.gap.length, 0);
		rc.close();
	} finally {
		await proxy.close();
		if (b1)
			await b1.stop();
		if (b2)
			await b2.stop();
	}
});

// A scripted stand-in for WebSocket: each instance asks behave(ws, n) what
// to do (the client only needs the WHATWG-style on* properties).
function fakeSocket(behave) {
	const made = [];
	class Fake {
		constructor(url) {
			this.url = url;
			this.sent = [];
			made.push(this);
			queueMicrotask(() => behave(this, made.length));
		}
		send(s) { this.sent.push(JSON.parse(s)); if (this.onsend) this.onsend(JSON.parse(s)); }
		close(code = 1005, reason = '') { this.fail(code, reason); }
		fail(code = 1006, reason = '') {
			if (this.dead)
				return;
			this.dead = true;
			queueMicrotask(() => this.onclose && this.onclose({ code, reason }));
		}
		welcome(epoch = 'e1') { this.onmessage({ data: JSON.stringify({ op: 'welcome', version: 't', epoch }) }); }
	}
	return { Fake, made };
}

test('backoff: exponential with jitter, capped, reset by a welcome; welcome and ping timeouts', { timeout: 60000 }, async () => {
	// Attempts 1..8 fail at once, 9 gets a welcome and then drops, 10 fails.
	const { Fake, made } = fakeSocket((ws, n) => {
		if (n === 9) {
			ws.welcome();
			ws.fail(1006);
		} else if (n <= 10) {
			ws.fail(1006);
		}
	});
	const rc = new Ringcast('ws://fake/ws', { WebSocket: Fake, minDelay: 4, maxDelay: 64 });
	clients.add(rc);
	const closes = [];
	rc.on('close', (c) => closes.push(c));
	await waitFor(() => closes.length >= 10, T, '10 closes');
	rc.close();
	const delays = closes.slice(0, 10).map((c) => c.delay);
	const steps = [4, 8, 16, 32, 64, 64, 64, 64, 4, 8]; // the 9th had a welcome
	delays.forEach((d, i) => assert.ok(d >= steps[i] / 2 && d <= steps[i],
		`attempt ${i + 1}: delay ${d} not in [${steps[i] / 2}, ${steps[i]}]`));
	assert.deepEqual(closes.slice(0, 10).map((c) => c.wasOpen), [0, 0, 0, 0, 0, 0, 0, 0, 1, 0].map(Boolean));
	assert.ok(made.length >= 10 && made.every((w) => w.url === 'ws://fake/ws'));

	// No welcome within connectTimeout: the socket is dropped and made anew.
	const silent = fakeSocket(() => {});
	const rc2 = new Ringcast('ws://fake/ws', { WebSocket: silent.Fake, connectTimeout: 50, minDelay: 1, maxDelay: 2 });
	clients.add(rc2);
	await waitFor(() => silent.made.length >= 3, T, 'connect timeouts');
	assert.ok(silent.made.slice(0, 2).every((w) => w.dead), 'timed-out sockets are closed');
	rc2.close();

	// Pings not acked within pingTimeout: the connection is replaced; acked
	// pings keep it.
	let answer = true;
	const pinged = fakeSocket((ws) => {
		ws.onsend = (cmd) => {
			if (cmd.op === 'ping' && answer)
				queueMicrotask(() => ws.onmessage({ data: JSON.stringify({ op: 'ack', id: cmd.id }) }));
		};
		ws.welcome();
	});
	const rc3 = new Ringcast('ws://fake/ws', { WebSocket: pinged.Fake, pingInterval: 20, pingTimeout: 40, minDelay: 1, maxDelay: 2 });
	clients.add(rc3);
	await waitFor(() => pinged.made[0] && pinged.made[0].sent.filter((c) => c.op === 'ping').length >= 4, T, 'acked pings');
	assert.equal(pinged.made.length, 1, 'acked pings keep the connection');
	answer = false;
	await waitFor(() => pinged.made.length >= 2, T, 'reconnect after a ping timeout');
	assert.ok(pinged.made[0].dead);
	rc3.close();
});
