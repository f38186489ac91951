// build/echo-server driven by Node's `ws` (tests/package.json): text and
// binary sizes, fragments with pings between them, close codes, invalid
// UTF-8 and oversized messages, and permessage-deflate parameters.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'package.json'));
const WebSocket = require('ws');
const BUILD = process.env.BUILD || path.join(here, '..', '..', 'build');

const children = new Set();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });

function fail(msg) { throw new Error(msg); }
function check(cond, msg) { if (!cond) fail(msg); }

function withTimeout(p, ms, what) {
	let t;
	return Promise.race([p, new Promise((_, rej) => {
		t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
	})]).finally(() => clearTimeout(t));
}

function startServer(env = {}) {
	const child = spawn(path.join(BUILD, 'echo-server'), ['127.0.0.1:0'],
		{ env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
	children.add(child);
	let err = '';
	const ready = new Promise((resolve, reject) => {
		child.stderr.on('data', (d) => {
			err += d;
			const m = /listening on port (\d+)/.exec(err);
			if (m) resolve(Number(m[1]));
		});
		child.on('exit', (code) => reject(new Error(`echo-server exited ${code}: ${err}`)));
	});
	return withTimeout(ready, 10000, 'echo-server to listen').then((port) => ({
		port, child, stderr: () => err,
		async stop() {
			check(child.exitCode === null, `echo-server died early: ${err}`);
			const done = new Promise((r) => child.on('exit', (code, sig) => r([code, sig])));
			child.kill('SIGTERM');
			const [code, sig] = await withTimeout(done, 10000, 'echo-server to exit');
			children.delete(child);
			check(code === 0, `echo-server exited with ${code} ${sig}: ${err}`);
		},
	}));
}

function open(port, opts = {}) {
	const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { maxPayload: 0, ...opts });
	ws.inbox = [];
	ws.waiters = [];
	ws.on('upgrade', (res) => { ws.extHeader = res.headers['sec-websocket-extensions'] || ''; });
	ws.on('message', (data, isBinary) => {
		const m = { data, isBinary };
		const w = ws.waiters.shift();
		if (w) w(m); else ws.inbox.push(m);
	});
	ws.closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
	ws.on('error', () => {}); // the close event reports what happened
	return withTimeout(new Promise((resolve, reject) => {
		ws.once('open', () => resolve(ws));
		ws.once('unexpected-response', (_, res) => reject(new Error(`HTTP ${res.statusCode}`)));
		ws.once('close', (code) => reject(new Error(`closed ${code} before open`)));
	}), 5000, 'connect');
}

function next(ws, ms = 20000) {
	if (ws.inbox.length) return Promise.resolve(ws.inbox.shift());
	return withTimeout(new Promise((r) => ws.waiters.push(r)), ms, 'echo');
}

function send(ws, data, opts = {}) {
	return new Promise((res, rej) => ws.send(data, opts, (e) => (e ? rej(e) : res())));
}

async function closeAndWait(ws, code, reason) {
	ws.close(code, reason);
	return withTimeout(ws.closed, 5000, 'close');
}

const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20];

function textOf(n) {
	// n bytes of UTF-8 mixing 1-, 2-, 3- and 4-byte characters
	const unit = 'ab é€𝄞 xyz';
	const u = Buffer.from(unit);
	const buf = Buffer.alloc(n, 'z');
	for (let off = 0; off + u.length <= n; off += u.length) u.copy(buf, off);
	return buf.toString();
}

function binOf(n) {
	const b = Buffer.alloc(n);
	randomBytes(Math.min(n, 1 << 16)).copy(b); // random head, zeros after
	return b;
}

async function sizes(port, opts) {
	const ws = await open(port, opts);
	for (const n of SIZES) {
		const bin = binOf(n);
		await send(ws, bin);
		let m = await next(ws);
		check(m.isBinary && Buffer.compare(m.data, bin) === 0, `binary of ${n} did not round-trip`);
		const text = textOf(n);
		check(Buffer.byteLength(text) === n, `test text is ${Buffer.byteLength(text)} bytes, want ${n}`);
		await send(ws, text);
		m = await next(ws);
		check(!m.isBinary && m.data.toString() === text, `text of ${n} did not round-trip`);
	}
	const c = await closeAndWait(ws, 1000);
	check(c.code === 1000, `close code ${c.code}`);
}

const tests = {
	async sizesPlain(s) { await sizes(s.plain.port, { perMessageDeflate: false }); },
	async sizesDeflate(s) { await sizes(s.def.port, { perMessageDeflate: true }); },

	async fragmentsWithPings(s) {
		for (const port of [s.plain.port, s.def.port]) {
			const ws = await open(port, { perMessageDeflate: port === s.def.port });
			const pongs = [];
			ws.on('pong', (d) => pongs.push(d.toString()));
			const parts = ['frag1 é', '', 'frag2 €'.repeat(5000), 'end'];
			for (let i = 0; i < parts.length; i++) {
				await send(ws, parts[i], { fin: i === parts.length - 1 });
				if (i < parts.length - 1) ws.ping(`p${i}`);
			}
			const m = await next(ws);
			check(m.data.toString() === parts.join(''), 'fragmented text did not round-trip');
			const bparts = [binOf(70000), Buffer.alloc(0), Buffer.from([1, 2, 3])];
			for (let i = 0; i < bparts.length; i++)
				await send(ws, bparts[i], { fin: i === bparts.length - 1, binary: true });
			const b = await next(ws);
			check(b.isBinary && Buffer.compare(b.data, Buffer.concat(bparts)) === 0,
				'fragmented binary did not round-trip');
			check(pongs.join(',') === 'p0,p1,p2', `pongs ${pongs}`);
			await closeAndWait(ws, 1000);
		}
	},

	async closeCodes(s) {
		for (const [code, reason] of [[4000, 'bye'], [1000, ''], [3000, 'x'.repeat(123)]]) {
			const ws = await open(s.def.port);
			await send(ws, 'hi');
			await next(ws);
			const t0 = Date.now();
			const c = await closeAndWait(ws, code, reason);
			check(c.code === code, `close ${code}: server answered ${c.code}`);
			// 'close' fires when TCP is closed: the server must do it promptly
			check(Date.now() - t0 < 2000, 'the server did not close TCP promptly');
		}
	},

	async invalidUtf8(s) {
		const ws = await open(s.plain.port);
		// ws sends a Buffer as text without checking it
		ws.send(Buffer.from([0x61, 0xc3, 0x28]), { binary: false });
		const c = await withTimeout(ws.closed, 5000, 'close after invalid UTF-8');
		check(c.code === 1007, `invalid UTF-8: close ${c.code}, want 1007`);
		const z = await open(s.def.port, { perMessageDeflate: true });
		z.send(Buffer.concat([Buffer.alloc(500, 0x61), Buffer.from([0xed, 0xa0, 0x80])]), { binary: false });
		const cz = await withTimeout(z.closed, 5000, 'close after compressed invalid UTF-8');
		check(cz.code === 1007, `compressed invalid UTF-8: close ${cz.code}, want 1007`);
	},

	async oversized(s) {
		for (const deflate of [false, true]) {
			const ws = await open(s.small.port, { perMessageDeflate: deflate });
			await send(ws, Buffer.alloc(1000, 7));
			const m = await next(ws);
			check(m.data.length === 1000, 'a message at the limit must be echoed');
			ws.send(Buffer.alloc(1001, 7));
			const c = await withTimeout(ws.closed, 5000, 'close after an oversized message');
			check(c.code === 1009, `oversized (deflate ${deflate}): close ${c.code}, want 1009`);
		}
	},

	async deflateParams(s) {
		for (let bits = 9; bits <= 15; bits++) {
			for (const [snct, cnct] of [[false, false], [true, true]]) {
				const pmd = { serverMaxWindowBits: bits, clientMaxWindowBits: bits,
					serverNoContextTakeover: snct, clientNoContextTakeover: cnct, threshold: 0 };
				const ws = await open(s.takeover.port, { perMessageDeflate: pmd });
				const ext = ws.extHeader;
				check(/permessage-deflate/.test(ext), `not negotiated: ${ext}`);
				check(ext.includes(`server_max_window_bits=${bits}`), `server bits in ${ext}`);
				check(!snct || ext.includes('server_no_context_takeover'), `snct in ${ext}`);
				check(!cnct || ext.includes('client_no_context_takeover'), `cnct in ${ext}`);
				const msg = textOf(40000);
				for (let i = 0; i < 3; i++) {
					await send(ws, msg);
					const m = await next(ws);
					check(m.data.toString() === msg, `deflate ${bits} bits message ${i} did not round-trip`);
				}
				await closeAndWait(ws, 1000);
			}
		}
	},
};

let passed = 0, failed = 0;
const servers = {};
try {
	servers.plain = await startServer({ ECHO_NO_DEFLATE: '1' });
	servers.def = await startServer();
	servers.takeover = await startServer({ ECHO_CONTEXT_TAKEOVER: '1' });
	servers.small = await startServer({ ECHO_MAX_MESSAGE: '1000' });
	for (const [name, fn] of Object.entries(tests)) {
		if (process.env.ONLY && !name.includes(process.env.ONLY)) continue;
		const t0 = Date.now();
		try {
			await withTimeout(fn(servers), 60000, name);
			passed++;
			console.log(`ok   ${name} (${Date.now() - t0} ms)`);
		} catch (e) {
			failed++;
			console.log(`FAIL ${name}: ${e.stack}`);
		}
	}
	for (const [name, s] of Object.entries(servers)) {
		try {
			await s.stop();
		} catch (e) {
			failed++;
			console.log(`FAIL stop ${name}: ${e.message}`);
		}
	}
} catch (e) {
	failed++;
	console.log(`FAIL setup: ${e.stack}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed || !passed ? 1 : 0);
