// The demo page over TLS in headless Chromium: a throwaway CA and a
// localhost server certificate made with the openssl command, the broker
// with a plain and a TLS listener, Chromium trusting exactly the server's
// key (--ignore-certificate-errors-spki-list, not a blanket ignore).  Loads
// https://localhost:TLS/, sees the page connect wss://localhost:TLS/ws,
// subscribes in the UI, publishes over plain HTTP and sees the message on
// the page.  Without the flag (or with another key's hash in it) the same
// load must fail with a certificate error, so the trust comes from the flag.
// Saves build/artifacts/demo-tls.png.
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import {
	startBroker, freePort, httpPublish, waitFor, withTimeout, withChromium, BUILD, CHROMIUM,
} from '../browser/helpers.mjs';

process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1'; // Debian's chromium only
if (!fs.existsSync(CHROMIUM))
	throw new Error(`${CHROMIUM} not found: apt-get install chromium (make deps)`);

const T = 20000; // bound on every single wait
const TOPIC = 'tls-demo';

function openssl(args, input) {
	return execFileSync('openssl', args, { input, timeout: 30000, stdio: ['pipe', 'pipe', 'pipe'] });
}

// A test CA and a server certificate for localhost / 127.0.0.1 signed by
// it, in dir (P-256 keys, valid two days).
function makePki(dir) {
	const p = (f) => path.join(dir, f);
	const key = (name) => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256',
		'-out', p(`${name}.key`)]);
	key('ca');
	openssl(['req', '-x509', '-new', '-key', p('ca.key'), '-subj', '/CN=ringcast browser test CA',
		'-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE',
		'-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', p('ca.pem')]);
	key('server');
	openssl(['req', '-new', '-key', p('server.key'), '-subj', '/CN=localhost', '-out', p('server.csr')]);
	fs.writeFileSync(p('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n'
		+ 'basicConstraints=critical,CA:FALSE\n'
		+ 'keyUsage=critical,digitalSignature,keyEncipherment\n'
		+ 'extendedKeyUsage=serverAuth\n');
	openssl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'),
		'-set_serial', '4097', '-days', '2', '-sha256', '-extfile', p('server.ext'), '-out', p('server.pem')]);
	return { ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key') };
}

// base64(sha256(DER SubjectPublicKeyInfo)) of a certificate, the form
// --ignore-certificate-errors-spki-list takes, computed by the openssl
// command and checked against Node's own X.509 parser.
function spkiHash(certFile) {
	const pub = openssl(['x509', '-in', certFile, '-pubkey', '-noout']);
	const der = openssl(['pkey', '-pubin', '-outform', 'der'], pub);
	const hash = openssl(['dgst', '-sha256', '-binary'], der).toString('base64');
	const x = new crypto.X509Certificate(fs.readFileSync(certFile));
	const mine = crypto.createHash('sha256').update(x.publicKey.export({ type: 'spki', format: 'der' }))
		.digest('base64');
	assert.equal(hash, mine, 'openssl and node agree on the SPKI hash');
	return hash;
}

// True once a TLS handshake to 127.0.0.1:port verifies against ca for
// the name localhost.
function tlsUp(port, ca) {
	return new Promise((resolve) => {
		const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, timeout: 2000 });
		const done = (v) => { s.destroy(); resolve(v); };
		s.once('secureConnect', () => done(s.authorized));
		s.once('error', () => done(false));
		s.once('timeout', () => done(false));
	});
}

// The broker with a plain listener (from startBroker) and a TLS one; a few
// tries in case the TLS port is taken in between.
async function startTlsBroker(pki) {
	let last;
	for (let i = 0; i < 3; i++) {
		const tlsPort = await freePort();
		let broker;
		try {
			broker = await startBroker(['--threads', '2', '--tls-listen', `127.0.0.1:${tlsPort}`,
				'--tls-cert', pki.cert, '--tls-key', pki.key]);
		} catch (e) {
			last = e;
			if (!/cannot listen/.test(e.message))
				throw e;
			continue;
		}
		const ca = fs.readFileSync(pki.ca);
		await waitFor(() => tlsUp(tlsPort, ca), 10000, 'the TLS listener to complete a verified handshake');
		broker.tlsPort = tlsPort;
		return broker;
	}
	throw last;
}

async function main() {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-tls-pki-'));
	let broker;
	try {
		const pki = makePki(dir);
		const serverSpki = spkiHash(pki.cert);
		const caSpki = spkiHash(pki.ca);
		assert.notEqual(serverSpki, caSpki);
		broker = await startTlsBroker(pki);
		const origin = `https://localhost:${broker.tlsPort}`;

		// Not trusted: no flag, then the flag naming another key (the CA's).
		for (const [what, args] of [['no flag', []],
			['the CA key\'s hash in the flag', [`--ignore-certificate-errors-spki-list=${caSpki}`]]]) {
			await withChromium(args, async (ctx) => {
				const page = ctx.pages()[0] || await ctx.newPage();
				await assert.rejects(page.goto(`${origin}/`), /net::ERR_CERT_AUTHORITY_INVALID/,
					`with ${what} the page load fails on the certificate`);
			});
		}

		await withChromium([`--ignore-certificate-errors-spki-list=${serverSpki}`],
			(ctx) => run(ctx, broker, origin));
		await broker.stop();
		broker = null;
	} finally {
		if (broker)
			await broker.stop().catch((e) => console.error(e.message));
		fs.rmSync(dir, { recursive: true, force: true });
	}
}

async function run(ctx, broker, origin) {
	const page = ctx.pages()[0] || await ctx.newPage();
	const wsOrigin = `wss://localhost:${broker.tlsPort}/`;
	const pageErrors = [];
	const foreign = [];
	const sockets = [];
	page.on('pageerror', (e) => pageErrors.push(e.message));
	page.on('websocket', (ws) => sockets.push(ws.url()));
	page.on('request', (r) => {
		if (!r.url().startsWith(`${origin}/`) && !r.url().startsWith(wsOrigin))
			foreign.push(r.url());
	});

	const res = await page.goto(`${origin}/`);
	assert.equal(res.status(), 200);
	assert.equal(await page.evaluate(() => location.protocol), 'https:');
	assert.equal(await page.evaluate(() => window.isSecureContext), true);
	await page.waitForFunction(() => document.querySelector('#status').classList.contains('connected'));
	assert.match(await page.textContent('#status'), /connected · epoch [0-9a-f]+/);
	assert.equal(await page.evaluate(() => window.ringcastDemo.rc.url), `${wsOrigin}ws`);
	assert.deepEqual(sockets, [`${wsOrigin}ws`], 'one WebSocket, over TLS to the page\'s host');

	await page.fill('#sub-topic', TOPIC);
	await page.click('#sub-button');
	await page.waitForSelector(`#topics li[data-topic="${TOPIC}"]`);
	await waitFor(async () => (await (await fetch(`${broker.base}/topics`)).json()).topics
		.some((t) => t.topic === TOPIC && t.subscribers === 1), T, 'the page\'s subscription to reach the broker');

	// Published over plain HTTP, delivered over wss.
	const r = await httpPublish(broker.base, TOPIC, 'hello over wss');
	assert.equal(r.seq, 1);
	await page.waitForSelector('#log li.msg[data-seq="1"]');
	const got = await page.$$eval('#log li.msg', (lis) => lis.map((li) => ({
		seq: Number(li.dataset.seq), topic: li.dataset.topic, text: li.querySelector('.data').textContent,
	})));
	assert.deepEqual(got, [{ seq: 1, topic: TOPIC, text: 'hello over wss' }]);

	// The page's /stats polling goes over https too; wait for a few
	// samples, one of them counting the message, so the chart has a line.
	await page.waitForFunction(() => window.ringcastDemo.series.in.length >= 3
		&& window.ringcastDemo.series.in.some((v) => v > 0));
	fs.mkdirSync(path.join(BUILD, 'artifacts'), { recursive: true });
	const shot = path.join(BUILD, 'artifacts', 'demo-tls.png');
	await page.screenshot({ path: shot, fullPage: true });
	assert.ok(fs.statSync(shot).size > 10000, 'a non-trivial screenshot');

	assert.deepEqual(pageErrors, [], 'no uncaught errors on the page');
	assert.deepEqual(foreign, [], 'the page loads nothing from elsewhere');
	console.log(`ok: demo page over https, ${sockets[0]}, message delivered; untrusted loads refused; screenshot ${shot}`);
}

await withTimeout(main(), 180000, 'the whole browser TLS test');
