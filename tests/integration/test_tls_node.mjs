// The broker over wss:// with Node's `ws` as the client (tests/package.json):
// raw /sub and JSON /ws subscribers with permessage-deflate, publishing by
// HTTP on the plain port and JSON over wss, a 1 MiB message, a client that
// does not trust the CA, and an expired server certificate refused by Node.
// Certificates come from lib/tlsutil.py (openssl at test time, temp dir).
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withTimeout, freePort } from '../browser/helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'package.json'));
const WebSocket = require('ws');
const BUILD = process.env.BUILD || path.join(here, '..', '..', 'build');

const children = new Set();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-tls-node-'));
process.on('exit', () => {
	for (const c of children) c.kill('SIGKILL');
	fs.rmSync(tmp, { recursive: true, force: true });
});

function check(cond, msg) { if (!cond) throw new Error(msg); }
function eq(got, want, what) {
	const g = JSON.stringify(got), w = JSON.stringify(want);
	check(g === w, `${what}: got ${g?.slice(0, 200)}, want ${w?.slice(0, 200)}`);
}

const pki = JSON.parse(execFileSync('/usr/bin/python3',
	[path.join(here, 'lib', 'tlsutil.py'), 'pki', tmp], { timeout: 60000 }).toString());
const CA = fs.readFileSync(pki.ca);

function httpReq(port, method, p, body) {
	return withTimeout(new Promise((resolve, reject) => {
		const r = http.request({ host: '127.0.0.1', port, method, path: p,
			headers: { 'Content-Type': 'text/plain; charset=utf-8' } }, (res) => {
			let data = '';
			res.on('data', (d) => { data += d; });
			res.on('end', () => resolve({ status: res.statusCode, body: data }));
		});
		r.on('error', reject);
		r.end(body);
	}), 10000, `${method} ${p}`);
}

async function startBroker(cert = pki.server) {
	const port = await freePort(), tlsPort = await freePort();
	const child = spawn(path.join(BUILD, 'ringcast'), ['--listen', `127.0.0.1:${port}`,
		'--tls-listen', `127.0.0.1:${tlsPort}`, '--tls-cert', cert[0], '--tls-key', cert[1],
		'--threads', '2', '--max-message-size', '4M', '--max-backpressure', '8M', '--max-http-body', '4M'],
	{ stdio: ['ignore', 'ignore', 'pipe'] });
	children.add(child);
	let err = '';
	child.stderr.on('data', (d) => { err += d; });
	const deadline = Date.now() + 10000;
	for (;;) {
		check(child.exitCode === null, `ringcast exited: ${err}`);
		try {
			if ((await httpReq(port, 'GET', '/healthz')).status === 200 &&
			    /TLS, certificate/.test(err))
				break;
		} catch { /* not up yet */ }
		check(Date.now() < deadline, `ringcast did not start: ${err}`);
		await new Promise((r) => setTimeout(r, 20));
	}
	return {
		port, tlsPort,
		async stop() {
			check(child.exitCode === null, `ringcast died early: ${err}`);
			const done = new Promise((r) => child.on('exit', (code) => r(code)));
			child.kill('SIGTERM');
			const code = await withTimeout(done, 15000, 'ringcast to exit');
			children.delete(child);
			check(code === 0, `ringcast exited with ${code}: ${err}`);
		},
	};
}

function open(url, opts = {}) {
	const ws = new WebSocket(url, { ca: CA, perMessageDeflate: true, maxPayload: 0, ...opts });
	ws.inbox = [];
	ws.waiters = [];
	ws.on('upgrade', (res) => { ws.extHeader = res.headers['sec-websocket-extensions'] || ''; });
	ws.on('message', (data, isBinary) => {
		const m = { text: isBinary ? null : data.toString(), data, isBinary };
		const w = ws.waiters.shift();
		if (w) w(m); else ws.inbox.push(m);
	});
	ws.next = (ms = 10000) => withTimeout(new Promise((r) => {
		if (ws.inbox.length) r(ws.inbox.shift()); else ws.waiters.push(r);
	}), ms, `a message on ${url}`);
	ws.opened = withTimeout(new Promise((resolve, reject) => {
		ws.once('open', resolve);
		ws.once('error', reject);
	}), 10000, `open ${url}`);
	return ws;
}

async function closeAll(...conns) {
	await Promise.all(conns.map((ws) => withTimeout(new Promise((r) => {
		if (ws.readyState === WebSocket.CLOSED) return r();
		ws.once('close', r);
		ws.close(1000);
	}), 10000, 'close')));
}

const tests = {
	async pubsubOverWss() {
		const b = await startBroker();
		try {
			const raw = open(`wss://localhost:${b.tlsPort}/sub/node`);
			const bin = open(`wss://127.0.0.1:${b.tlsPort}/sub/node`);
			const json = open(`wss://localhost:${b.tlsPort}/ws`);
			await Promise.all([raw.opened, bin.opened, json.opened]);
			check(raw.extHeader.startsWith('permessage-deflate'), `deflate: ${raw.extHeader}`);
			eq(JSON.parse((await json.next()).text).op, 'welcome', 'welcome');
			json.send(JSON.stringify({ op: 'sub', topic: 'node', id: 1 }));
			eq(JSON.parse((await json.next()).text).op, 'ack', 'sub ack');
			// HTTP POST on the plain port reaches wss subscribers.
			const big = 'node over tls '.repeat(75000); // ~1 MiB
			const r = await httpReq(b.port, 'POST', '/publish/node', big);
			eq(r.status, 200, `POST ${r.body}`);
			eq(JSON.parse(r.body).subscribers, 3, 'three wss subscribers');
			const got = await raw.next();
			eq([got.isBinary, got.text === big], [false, true], 'raw subscriber got 1 MiB of text intact');
			eq((await bin.next()).text === big, true, 'second raw subscriber too');
			const m = JSON.parse((await json.next()).text);
			eq([m.op, m.data === big], ['msg', true], 'JSON subscriber');
			// JSON publish over wss.
			json.send(JSON.stringify({ op: 'pub', topic: 'node', data: [1, 2, 3], id: 2 }));
			eq(JSON.parse((await raw.next()).text), [1, 2, 3], 'raw gets the wss pub');
			const ops = [JSON.parse((await json.next()).text).op,
				JSON.parse((await json.next()).text).op].sort();
			eq(ops, ['ack', 'msg'], 'ack and own msg');
			await closeAll(raw, bin, json);
		} finally {
			await b.stop();
		}
	},

	async untrustedAndExpiredRefused() {
		const b = await startBroker();
		try {
			const ws = open(`wss://localhost:${b.tlsPort}/sub/x`, { ca: undefined });
			const e = await ws.opened.then(() => null, (err) => err);
			check(e && /self.signed|unable to (get|verify)/i.test(e.message),
				`no trust in the test CA: ${e && e.message}`);
		} finally {
			await b.stop();
		}
		const x = await startBroker(pki.expired);
		try {
			const ws = open(`wss://localhost:${x.tlsPort}/sub/x`);
			const e = await ws.opened.then(() => null, (err) => err);
			check(e && /expired/i.test(e.message), `expired refused: ${e && e.message}`);
			// The broker survives clients that abort the handshake.
			const ok = open(`wss://localhost:${x.tlsPort}/sub/x`, { rejectUnauthorized: false });
			await ok.opened;
			await closeAll(ok);
		} finally {
			await x.stop();
		}
	},
};

let failed = 0;
for (const [name, fn] of Object.entries(tests)) {
	const t0 = Date.now();
	try {
		await withTimeout(fn(), 60000, name);
		console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(2)}s)`);
	} catch (e) {
		failed++;
		console.log(`FAIL ${name}: ${e.stack || e}`);
	}
}
console.log(`${Object.keys(tests).length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
