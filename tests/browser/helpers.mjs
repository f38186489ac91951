// Shared by the JS client and browser tests: start/stop build/ringcast on a
// free port, bounded waits, HTTP publish.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.join(here, '..', '..');
export const BUILD = process.env.BUILD || path.join(ROOT, 'build');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// playwright-core from tests/node_modules (Debian's chromium only, no
// browser download). The runner installs tests/node_modules only when ws
// is missing; a tree from before playwright-core was added needs `npm ci`.
export function loadPlaywright() {
	process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1';
	const require = createRequire(path.join(here, '..', 'package.json'));
	try {
		return require('playwright-core');
	} catch (e) {
		if (e.code !== 'MODULE_NOT_FOUND')
			throw e;
	}
	const r = spawnSync('npm', ['ci', '--prefix', path.join(here, '..'), '--no-audit', '--no-fund'],
		{ encoding: 'utf8', timeout: 300000 });
	if (r.status !== 0)
		throw new Error(`playwright-core missing and 'npm ci --prefix tests' failed: ${r.stderr}`);
	return require('playwright-core');
}

const children = new Set();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });

// Rejects after ms with a message saying what we were waiting for.
export function withTimeout(p, ms, what) {
	let t;
	return Promise.race([p, new Promise((_, rej) => {
		t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
	})]).finally(() => clearTimeout(t));
}

// Polls cond() (sync or async) every 20 ms until it is truthy; bounded.
export async function waitFor(cond, ms, what) {
	const deadline = Date.now() + ms;
	for (;;) {
		const v = await cond();
		if (v)
			return v;
		if (Date.now() > deadline)
			throw new Error(`timed out after ${ms} ms: ${what}`);
		await new Promise((r) => setTimeout(r, 20));
	}
}

// A loopback TCP port nobody listens on right now.
export function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.once('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

async function startOnce(args) {
	const port = await freePort();
	const child = spawn(path.join(BUILD, 'ringcast'), ['--listen', `127.0.0.1:${port}`, ...args],
		{ stdio: ['ignore', 'ignore', 'pipe'] });
	children.add(child);
	let err = '';
	const exited = new Promise((r) => {
		child.on('exit', (code, sig) => r([code, sig]));
		child.on('error', (e) => r([e.message, null])); // could not spawn
	});
	const ready = new Promise((resolve, reject) => {
		child.stderr.on('data', (d) => {
			err += d;
			if (/ringcast \S+: \d+ threads?, epoch/.test(err))
				resolve();
		});
		exited.then(([code, sig]) => reject(new Error(`ringcast exited ${code} ${sig}: ${err}`)));
	});
	try {
		await withTimeout(ready, 10000, 'ringcast to listen');
	} catch (e) {
		children.delete(child);
		child.kill('SIGKILL');
		throw e;
	}
	// The "listening" line comes from a probe socket that is closed again
	// before the loops open theirs: wait until the port really answers.
	await waitFor(async () => {
		try {
			return (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200;
		} catch (e) {
			if (child.exitCode !== null)
				throw new Error(`ringcast exited: ${err}`);
			return false;
		}
	}, 10000, 'ringcast to answer /healthz');
	const epoch = /epoch (\w+)/.exec(err)[1];
	return {
		port, epoch, child,
		base: `http://127.0.0.1:${port}`,
		stderr: () => err,
		// SIGTERM, then the broker must exit 0 within 10 s.
		async stop() {
			if (child.exitCode !== null || child.signalCode !== null)
				throw new Error(`ringcast died early: ${err}`);
			child.kill('SIGTERM');
			const [code, sig] = await withTimeout(exited, 10000, 'ringcast to exit');
			children.delete(child);
			if (code !== 0)
				throw new Error(`ringcast exited with ${code} ${sig}: ${err}`);
		},
	};
}

// Starts build/ringcast with extra flags on a free port (a few tries, in
// case another process grabs the port in between).
export async function startBroker(args = []) {
	let last;
	for (let i = 0; i < 5; i++) {
		try {
			return await startOnce(args);
		} catch (e) {
			last = e;
			if (!/cannot listen/.test(e.message))
				throw e;
		}
	}
	throw last;
}

// POST /publish/<topic> with a text body; returns the parsed answer.
export async function httpPublish(base, topic, body, type = 'text/plain') {
	const res = await withTimeout(fetch(`${base}/publish/${encodeURIComponent(topic)}`, {
		method: 'POST', headers: { 'Content-Type': type }, body,
	}), 5000, `POST /publish/${topic}`);
	const text = await res.text();
	if (res.status !== 200)
		throw new Error(`POST /publish/${topic}: ${res.status} ${text}`);
	return JSON.parse(text);
}

const CHROME_ARGS = ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
	'--disable-background-networking', '--disable-component-update', '--disable-sync'];

// Runs fn(ctx) in a fresh headless Chromium (own temp profile: the SPKI
// flag is honoured only with a --user-data-dir) with extra args; always
// closes it and removes the profile.
export async function withChromium(extraArgs, fn) {
	const T = 20000; // bound on every single wait
	if (!fs.existsSync(CHROMIUM))
		throw new Error(`${CHROMIUM} not found: apt-get install chromium (make deps)`);
	const { chromium } = loadPlaywright();
	const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-chromium-'));
	let ctx;
	try {
		ctx = await withTimeout(chromium.launchPersistentContext(profile, {
			executablePath: CHROMIUM,
			headless: true,
			viewport: { width: 1100, height: 900 },
			args: [...CHROME_ARGS, ...extraArgs],
			timeout: T,
		}), T + 5000, 'chromium to start');
		ctx.setDefaultTimeout(T);
		ctx.setDefaultNavigationTimeout(T);
		return await fn(ctx);
	} finally {
		if (ctx)
			await withTimeout(ctx.close(), T, 'chromium to close').catch((e) => console.error(e.message));
		fs.rmSync(profile, { recursive: true, force: true });
	}
}

