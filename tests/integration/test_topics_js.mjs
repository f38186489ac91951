// clients/js/ringcast.js in Node.js (the `ws` package injected) against
// build/ringcast with namespaces: a pattern subscription gets each
// matching message once with its concrete topic (beside an exact one on
// the same client), presence() and presenceStats() answer who is there
// (with the info option), join/leave events arrive, and a pattern is
// refused as a publish topic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProxy } from '../browser/proxy.mjs';
import { startBroker, httpPublish, waitFor, withTimeout, ROOT } from '../browser/helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'package.json'));
const WebSocket = require('ws');
const { Ringcast } = await import(path.join(ROOT, 'clients', 'js', 'ringcast.js'));

const T = 20000; // bound on every single wait
let broker;
const clients = new Set();

before(async () => {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-js-'));
	const conf = path.join(dir, 'ns.ini');
	fs.writeFileSync(conf, '[namespace room]\npresence = on\njoin_leave = on\n');
	broker = await startBroker(['--threads', '2', '--config', conf]);
});
after(async () => {
	for (const rc of clients)
		rc.close();
	await broker.stop();
});

function client(opts = {}) {
	const rc = new Ringcast(`ws://127.0.0.1:${broker.port}/ws`, { WebSocket, ...opts });
	clients.add(rc);
	return rc;
}

test('a pattern gets each matching message once, with its topic', async () => {
	const rc = client();
	const got = [], exact = [];
	const p = rc.subscribe('news.>', (data, meta) => got.push([meta.topic, meta.seq, data]));
	const e = rc.subscribe('news.eu', (data, meta) => exact.push([meta.topic, data]));
	await withTimeout(Promise.all([p.ready, e.ready]), T, 'acks');
	for (const t of ['news.eu', 'sport.x', 'news.us.ny', 'news'])
		await httpPublish(broker.base, t, JSON.stringify(t));
	await waitFor(() => got.length === 1 && exact.length === 1, T, 'the deliveries');
	assert.deepEqual(exact, [['news.eu', 'news.eu']], 'the exact subscription gets news.eu');
	assert.deepEqual(got, [['news.us.ny', 1, 'news.us.ny']], 'the pattern gets the rest, once');
	await assert.rejects(rc.publish('news.*', 1), (err) => err.code === 'bad_topic');
});

test('presence, presenceStats, join and leave', async () => {
	const a = client({ info: 'alice' });
	const joins = [], leaves = [];
	a.on('join', (ev) => joins.push(ev));
	a.on('leave', (ev) => leaves.push(ev));
	await withTimeout(a.subscribe('room:1', () => {}).ready, T, 'a subscribed');
	const b = client({ info: 'bob' });
	const sb = b.subscribe('room:1', () => {});
	await withTimeout(sb.ready, T, 'b subscribed');
	await waitFor(() => joins.some((j) => j.info === 'bob'), T, "bob's join");
	const bob = joins.find((j) => j.info === 'bob');
	assert.equal(bob.topic, 'room:1');
	const p = await withTimeout(a.presence('room:1'), T, 'presence');
	assert.equal(p.total, 2);
	assert.equal(p.truncated, false);
	assert.deepEqual(p.clients.map((c) => c.info).sort(), ['alice', 'bob']);
	const s = await withTimeout(a.presenceStats('room:1'), T, 'presenceStats');
	assert.deepEqual([s.clients, s.users], [2, 0]);
	sb.unsubscribe();
	await waitFor(() => leaves.some((l) => l.conn === bob.conn), T, "bob's leave");
	await assert.rejects(a.presence('plain'), (err) => err.code === 'presence_off');
});

test('a pattern resumes the topics it had seen across a cut; new ones come live', async () => {
	const proxy = await startProxy(broker.port);
	const rc = new Ringcast(`ws://127.0.0.1:${proxy.port}/ws`, { WebSocket, minDelay: 20, maxDelay: 200 });
	clients.add(rc);
	const got = [];
	let opens = 0;
	rc.on('open', () => opens++);
	await withTimeout(rc.subscribe('res.>', (data, meta) => got.push(`${meta.topic}#${meta.seq}`)).ready,
		T, 'ack');
	await httpPublish(broker.base, 'res.a', '1');
	await httpPublish(broker.base, 'res.a', '2');
	await waitFor(() => got.length === 2, T, 'two messages');
	proxy.setDown(true);
	proxy.dropAll();
	await waitFor(() => !rc.connected, T, 'the cut');
	await httpPublish(broker.base, 'res.a', '3'); // seen topic: replayed
	await httpPublish(broker.base, 'res.b', '1'); // new topic: lost (documented)
	proxy.setDown(false);
	await waitFor(() => opens === 2 && got.includes('res.a#3'), T, 'reconnect and replay');
	await httpPublish(broker.base, 'res.b', '2');
	await httpPublish(broker.base, 'res.a', '4');
	await waitFor(() => got.length === 5, T, 'live after the resume');
	assert.deepEqual(got, ['res.a#1', 'res.a#2', 'res.a#3', 'res.b#2', 'res.a#4']);
	rc.close();
	await proxy.close();
});
