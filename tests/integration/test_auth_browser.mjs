// ringcast.js getToken() in headless Chromium against build/ringcast with
// access control, through a TCP proxy the test cuts: the page's getToken
// asks the test (page.exposeFunction) for a token minted by Debian's
// python3-jwt. The token lives 4 s: the client must refresh it on the open
// connection (the broker would close it with 4001 at exp), and after the
// proxy cuts the connection it must fetch a new token for the reconnect and
// keep receiving a topic only tokens may subscribe to.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startProxy } from '../browser/proxy.mjs';
import { startBroker, waitFor, withTimeout, withChromium } from '../browser/helpers.mjs';

const T = 20000;
const SECRET = 'browser-test-secret-0123456789abcdef';
const API_KEY = 'browser-test-api-key-012345';
const TOPIC = 'b.private';

function mint(ttl) {
	const code = 'import jwt,sys,time; print(jwt.encode({"sub":"page","exp":int(time.time())+' +
		'int(sys.argv[1]),"subscribe":["b.*"]},sys.argv[2],"HS256",headers={"kid":"k"}))';
	return execFileSync('/usr/bin/python3', ['-c', code, String(ttl), SECRET],
		{ encoding: 'utf8', timeout: 10000 }).trim();
}

async function publish(broker, text) {
	const r = await fetch(`${broker.base}/publish/${TOPIC}`, {
		method: 'POST', body: text,
		headers: { 'Content-Type': 'text/plain', Authorization: `Bearer ${API_KEY}` },
	});
	assert.equal(r.status, 200);
}

async function run(ctx, broker, proxy) {
	const page = ctx.pages()[0] || await ctx.newPage();
	const pageErrors = [];
	page.on('pageerror', (e) => pageErrors.push(e.message));
	const tokens = [];
	await page.exposeFunction('mintToken', () => { const t = mint(4); tokens.push(t); return t; });
	await page.goto(`http://127.0.0.1:${proxy.port}/healthz`);
	await page.evaluate(async () => {
		const { Ringcast } = await import('/ringcast.js');
		window.got = [];
		window.closes = [];
		window.rc = new Ringcast(`ws://${location.host}/ws`, {
			getToken: () => window.mintToken(), refreshMargin: 2000, minDelay: 50, maxDelay: 200,
		});
		window.rc.on('close', (e) => window.closes.push(e.code));
		await window.rc.subscribe('b.private', (d) => window.got.push(d)).ready;
	});
	assert.equal(tokens.length, 1, 'getToken for the first connect');
	const firstExp = JSON.parse(Buffer.from(tokens[0].split('.')[1], 'base64url')).exp;
	// Past the first token's exp plus the broker's one-second check.
	await waitFor(() => Date.now() > firstExp * 1000 + 2500, 15000, 'past the first exp');
	assert.ok(tokens.length >= 2, `refreshed before exp (${tokens.length} tokens)`);
	assert.deepEqual(await page.evaluate(() => window.closes), [], 'no close across the refresh');
	await publish(broker, 'after-refresh');
	await page.waitForFunction(() => window.got.includes('after-refresh'), null, { timeout: T });

	const before = tokens.length;
	assert.ok(proxy.dropAll() >= 1, 'the page had a connection through the proxy');
	await page.waitForFunction(() => window.closes.length === 1 && window.rc.connected, null,
		{ timeout: T });
	assert.ok(tokens.length > before, 'getToken for the reconnect');
	await waitFor(async () => {
		await publish(broker, 'after-reconnect');
		return page.evaluate(() => window.got.includes('after-reconnect'));
	}, T, 'a message after the reconnect');
	assert.deepEqual(pageErrors, [], 'no uncaught errors on the page');
	console.log(`ok: ${tokens.length} tokens, refresh and reconnect`);
}

async function main() {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-auth-browser-'));
	const access = path.join(dir, 'access.ini');
	fs.writeFileSync(access, `[tokens]\nleeway = 0\n[key k]\nalg = HS256\nsecret = ${SECRET}\n` +
		`[api_keys]\ntest = ${API_KEY}\n[topic b.*]\nsubscribe = token\n`);
	const broker = await startBroker(['--auth', access, '--threads', '2']);
	const proxy = await startProxy(broker.port);
	try {
		await withChromium([], (ctx) => run(ctx, broker, proxy));
	} finally {
		await proxy.close();
		await broker.stop();
		fs.rmSync(dir, { recursive: true, force: true });
	}
}

await withTimeout(main(), 120000, 'the whole browser test');
