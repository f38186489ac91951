// build/ringcast driven by Node's `ws` (tests/package.json) and fetch():
// JSON and raw subscribers with and without permessage-deflate (including a
// small server window) receive identical payloads from fetch POSTs and a ws
// /pub publisher, history resume, and SIGTERM closes everyone with 1001.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withTimeout, freePort } from '../browser/helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'package.json'));
const WebSocket = require('ws');
const BUILD = process.env.BUILD || path.join(here, '..', '..', 'build');

const children = new Set();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });

function check(cond, msg) { if (!cond) throw new Error(msg); }
function eq(got, want, what) {
	const g = JSON.stringify(got), w = JSON.stringify(want);
	check(g === w, `${what}: got ${g?.slice(0, 200)}, want ${w?.slice(0, 200)}`);
}

async function startBroker(args = []) {
	const port = await freePort();
	const child = spawn(path.join(BUILD, 'ringcast'),
		['--listen', `127.0.0.1:${port}`, '--threads', '2', ...args],
		{ stdio: ['ignore', 'ignore', 'pipe'] });
	children.add(child);
	let err = '';
	child.stderr.on('data', (d) => { err += d; });
	const deadline = Date.now() + 10000;
	for (;;) {
		check(child.exitCode === null, `ringcast exited early: ${err}`);
		try {
			const r = await fetch(`http://127.0.0.1:${port}/healthz`);
			if (r.status === 200) break;
		} catch { /* not listening yet */ }
		check(Date.now() < deadline, `ringcast /healthz not ready in 10 s: ${err}`);
		await new Promise((r) => setTimeout(r, 20));
	}
	return {
		port, child,
		async stop() {
			const done = child.exitCode !== null ? Promise.resolve([child.exitCode, null])
				: new Promise((r) => child.on('exit', (code, sig) => r([code, sig])));
			child.kill('SIGTERM');
			const [code, sig] = await withTimeout(done, 15000, 'ringcast to exit');
			children.delete(child);
			check(code === 0, `ringcast exited with ${code} ${sig}: ${err}`);
		},
	};
}

// A ws connection with a queue of incoming messages and a close promise.
function open(port, p, opts = {}) {
	const ws = new WebSocket(`ws://127.0.0.1:${port}${p}`, { maxPayload: 0, ...opts });
	ws.inbox = [];
	ws.waiters = [];
	ws.on('message', (data, isBinary) => {
		const m = { data: isBinary ? Buffer.from(data) : data.toString(), isBinary };
		const w = ws.waiters.shift();
		if (w) w(m); else ws.inbox.push(m);
	});
	ws.closed = new Promise((r) => ws.on('close', (code) => r(code)));
	ws.next = (ms = 10000) => withTimeout(new Promise((r) => {
		if (ws.inbox.length) r(ws.inbox.shift()); else ws.waiters.push(r);
	}), ms, `message on ${p}`);
	ws.json = async (ms) => JSON.parse((await ws.next(ms)).data);
	return withTimeout(new Promise((resolve, reject) => {
		ws.once('open', () => resolve(ws));
		ws.once('error', reject);
	}), 10000, `open ${p}`);
}

async function publish(port, topic, body, type) {
	const r = await fetch(`http://127.0.0.1:${port}/publish/${encodeURIComponent(topic)}`, {
		method: 'POST', body, headers: type ? { 'Content-Type': type } : {},
	});
	eq(r.status, 200, `POST ${topic}`);
	return r.json();
}

async function testFanoutAndCompression() {
	const b = await startBroker();
	try {
		const topic = 'node/ü';
		const enc = encodeURIComponent(topic);
		const rawZ = await open(b.port, `/sub/${enc}`, { perMessageDeflate: true });
		const rawP = await open(b.port, `/sub/${enc}`, { perMessageDeflate: false });
		const rawW = await open(b.port, `/sub/${enc}`,
			{ perMessageDeflate: { serverMaxWindowBits: 9 } });
		const jsZ = await open(b.port, '/ws', { perMessageDeflate: true });
		const jsP = await open(b.port, '/ws', { perMessageDeflate: false });
		check(rawZ.extensions.includes('permessage-deflate'), 'rawZ negotiated deflate');
		check(!rawP.extensions, 'rawP without deflate');
		for (const j of [jsZ, jsP]) {
			eq((await j.json()).op, 'welcome', 'welcome');
			j.send(JSON.stringify({ op: 'sub', topic, id: 'n1' }));
			const a = await j.json();
			eq([a.op, a.id, a.seq], ['ack', 'n1', 0], 'sub ack');
		}
		const pub = await open(b.port, `/pub/${enc}`, { perMessageDeflate: true });
		const sent = [];
		for (const n of [0, 10, 1000, 70000]) {
			const text = 'ringcast node '.repeat(Math.ceil(n / 14) + 1).slice(0, n);
			const bin = randomBytes(n);
			sent.push(text, bin);
		}
		let seq = 0;
		for (const [i, p] of sent.entries()) {
			// Alternate publishers: fetch POST and the ws /pub connection.
			if (i % 2 === 0 && typeof p === 'string') {
				const r = await publish(b.port, topic, p, 'text/plain; charset=utf-8');
				eq(r.seq, seq + 1, 'POST seq');
			} else if (i % 4 === 1) {
				await publish(b.port, topic, p, 'application/octet-stream');
			} else {
				pub.send(p);
			}
			seq++;
			for (const [name, s] of [['rawZ', rawZ], ['rawP', rawP], ['rawW', rawW]]) {
				const m = await s.next();
				eq(m.isBinary, Buffer.isBuffer(p), `${name} frame type ${i}`);
				check(Buffer.isBuffer(p) ? m.data.equals(p) : m.data === p, `${name} payload ${i}`);
			}
			for (const [name, j] of [['jsZ', jsZ], ['jsP', jsP]]) {
				const m = await j.json();
				eq([m.op, m.topic, m.seq], ['msg', topic, seq], `${name} envelope ${i}`);
				if (Buffer.isBuffer(p)) {
					eq(m.enc, 'base64', `${name} enc ${i}`);
					check(Buffer.from(m.data, 'base64').equals(p), `${name} binary ${i}`);
				} else {
					eq(m.data, p, `${name} text ${i}`);
				}
			}
		}
		// Resume from history with a Node client: ack, then 3.., no gap.
		const late = await open(b.port, '/ws');
		await late.json();
		late.send(JSON.stringify({ op: 'sub', topic, id: 2, from: 3 }));
		eq((await late.json()).seq, seq, 'resume ack seq');
		for (let s = 3; s <= seq; s++) eq((await late.json()).seq, s, 'replayed seq');
		const st = await (await fetch(`http://127.0.0.1:${b.port}/stats`)).json();
		eq(st.messages_in, sent.length, 'stats messages_in');
		// SIGTERM: everyone gets 1001, the broker exits 0.
		const all = [rawZ, rawP, rawW, jsZ, jsP, pub, late];
		const stopping = b.stop();
		const codes = await withTimeout(Promise.all(all.map((w) => w.closed)), 15000, 'closes');
		eq(codes, all.map(() => 1001), 'close codes on SIGTERM');
		await stopping;
	} finally {
		if (b.child.exitCode === null) await b.stop();
	}
}

const tests = [testFanoutAndCompression];
let failed = 0;
for (const t of tests) {
	const t0 = Date.now();
	try {
		await withTimeout(t(), 60000, t.name);
		console.log(`ok   ${t.name} (${((Date.now() - t0) / 1000).toFixed(2)}s)`);
	} catch (e) {
		failed++;
		console.log(`FAIL ${t.name}: ${e.stack || e}`);
	}
}
console.log(`${tests.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
