// clients/js/ringcast.js getToken() against build/ringcast with access
// control (Node.js, the `ws` package injected): tokens are minted by
// Debian's python3-jwt, never by ringcast. getToken is called on connect,
// on every reconnect (through a TCP proxy the test cuts) and before the
// token's exp (refresh keeps the connection past exp, where the broker
// would close it with 4001); a refused token is an error followed by a
// reconnect with a new one; without a token a token-only topic is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProxy } from '../browser/proxy.mjs';
import { startBroker, waitFor, withTimeout, ROOT } from '../browser/helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'package.json'));
const WebSocket = require('ws');
const { Ringcast } = await import(path.join(ROOT, 'clients', 'js', 'ringcast.js'));

const T = 20000;
const SECRET = 'js-test-secret-0123456789abcdef0123';
const API_KEY = 'js-test-api-key-0123456789';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-auth-js-'));
const access = path.join(dir, 'access.ini');
fs.writeFileSync(access, `[tokens]
leeway = 0
[key k1]
alg = HS256
secret = ${SECRET}
[api_keys]
test = ${API_KEY}
[topic js.private.*]
subscribe = token
`);

// A token from python3-jwt: sub, exp seconds from now, granted patterns.
function mint(sub, ttl, subscribe = ['js.private.*']) {
	const code = 'import jwt,sys,time,json; print(jwt.encode({"sub":sys.argv[1],' +
		'"exp":int(time.time())+int(sys.argv[2]),"subscribe":json.loads(sys.argv[3])},' +
		'sys.argv[4],"HS256",headers={"kid":"k1"}))';
	return execFileSync('/usr/bin/python3', ['-c', code, sub, String(ttl), JSON.stringify(subscribe), SECRET],
		{ encoding: 'utf8', timeout: 10000 }).trim();
}

let broker;
const clients = new Set();
before(async () => { broker = await startBroker(['--auth', access, '--threads', '2']); });
after(async () => {
	for (const rc of clients)
		rc.close();
	await broker.stop();
});

function client(port, opts) {
	const rc = new Ringcast(`ws://127.0.0.1:${port}/ws`, { WebSocket, minDelay: 20, maxDelay: 200, ...opts });
	clients.add(rc);
	return rc;
}

async function publish(topic, text) {
	const r = await fetch(`${broker.base}/publish/${topic}`, {
		method: 'POST', body: text,
		headers: { 'Content-Type': 'text/plain', Authorization: `Bearer ${API_KEY}` },
	});
	assert.equal(r.status, 200);
	return r.json();
}

test('getToken on connect and on every reconnect', { timeout: 60000 }, async () => {
	const proxy = await startProxy(broker.port);
	let calls = 0;
	const rc = client(proxy.port, { getToken: async () => { calls++; return mint('u1', 300); } });
	const closes = [];
	rc.on('close', (e) => closes.push(e));
	const got = [];
	const sub = rc.subscribe('js.private.a', (d) => got.push(d));
	await withTimeout(sub.ready, T, 'sub ack with a token');
	assert.equal(calls, 1);
	await publish('js.private.a', 'one');
	await waitFor(() => got.length === 1, T, 'first message');
	proxy.dropAll();
	await waitFor(() => closes.length === 1 && rc.connected, T, 'reconnected');
	assert.equal(calls, 2, 'getToken called again for the reconnect');
	// The resubscription (with the new token) is in place once a publish
	// reaches it.
	await waitFor(async () => { await publish('js.private.a', 'two'); return got.includes('two'); }, T, 'message after reconnect');
	rc.close();
	await proxy.close();
});

test('refresh before exp keeps the connection past exp', { timeout: 60000 }, async () => {
	const tokens = [];
	const rc = client(broker.port, {
		refreshMargin: 2000,
		getToken: async () => { const t = mint('u2', 4); tokens.push(t); return t; },
	});
	const closes = [];
	rc.on('close', (e) => closes.push(e));
	const sub = rc.subscribe('js.private.r', () => {});
	await withTimeout(sub.ready, T, 'sub ack');
	const firstExp = JSON.parse(Buffer.from(tokens[0].split('.')[1], 'base64url')).exp;
	// Bounded wait until well past the first token's exp (+ the broker's
	// one-second check): the broker would have closed it with 4001 by then.
	await waitFor(() => Date.now() > firstExp * 1000 + 2500, 15000, 'past the first exp');
	assert.ok(tokens.length >= 2, `refreshed (${tokens.length} tokens)`);
	assert.deepEqual(closes, [], 'no close');
	const got = [];
	rc.subscribe('js.private.r', (d) => got.push(d));
	await publish('js.private.r', 'still here');
	await waitFor(() => got.includes('still here'), T, 'delivery after exp');
	rc.close();
});

test('without refresh the broker closes with 4001', { timeout: 60000 }, async () => {
	const rc = client(broker.port, { reconnect: false, getToken: async () => mint('u3', 2) });
	rc.options.getToken = null; // connect with it, then never refresh
	const closed = new Promise((r) => rc.on('close', r));
	rc.subscribe('js.private.x', () => {});
	const ev = await withTimeout(closed, 15000, 'close');
	assert.equal(ev.code, 4001);
});

test('a refused token: error, then a reconnect with a new one', { timeout: 60000 }, async () => {
	let calls = 0;
	const rc = client(broker.port, {
		getToken: async () => (++calls === 1 ? mint('u4', 300).slice(0, -3) + 'AAA' : mint('u4', 300)),
	});
	const errors = [];
	rc.on('error', (e) => errors.push(e));
	const sub = rc.subscribe('js.private.y', () => {});
	await withTimeout(sub.ready, T, 'sub ack after the retry');
	assert.ok(calls >= 2);
	assert.equal(errors[0].code, 'unauthorized');
	rc.close();
});

test('no token: a token-only topic is forbidden', { timeout: 30000 }, async () => {
	const rc = client(broker.port, {});
	rc.on('error', () => {});
	const sub = rc.subscribe('js.private.z', () => {});
	await assert.rejects(withTimeout(sub.ready, T, 'sub answer'), (e) => e.code === 'forbidden');
	rc.close();
});
