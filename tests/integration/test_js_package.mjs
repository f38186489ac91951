// clients/js as an npm package: `npm pack` makes a tarball holding exactly
// the module, its types and README; a scratch project installs it, imports
// it by name in Node 20 with the `ws` package injected (and `new
// Ringcast('ws://host:port')` with no path reaches /ws), and esbuild
// bundles it from there into a file that also runs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startBroker, httpPublish, withTimeout, ROOT } from '../browser/helpers.mjs';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const testsRequire = createRequire(path.join(here, '..', 'package.json'));
const WS_PATH = testsRequire.resolve('ws');
const esbuild = testsRequire('esbuild');
const PKG = path.join(ROOT, 'clients', 'js');

let broker, dir, tarball;

before(async () => {
	broker = await startBroker();
	dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-js-'));
	const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: PKG, timeout: 60000 });
	const info = JSON.parse(stdout)[0];
	tarball = path.join(dir, info.filename);
	fs.writeFileSync(path.join(dir, 'files.json'), JSON.stringify(info.files.map((f) => f.path).sort()));
	const app = path.join(dir, 'app');
	fs.mkdirSync(app);
	fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
	// No dependencies: the install needs no registry.
	await run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { cwd: app, timeout: 60000 });
	// The program a user would write: the client by package name, ws injected.
	fs.writeFileSync(path.join(app, 'main.mjs'), `
import { Ringcast } from 'ringcast';
import { createRequire } from 'node:module';
const WebSocket = createRequire(import.meta.url)(${JSON.stringify(WS_PATH)});
const rc = new Ringcast(process.argv[2], { WebSocket });
const got = new Promise((resolve) => rc.subscribe('pkg', (data, meta) => resolve({ data, seq: meta.seq, url: rc.url })));
const sub = await new Promise((resolve) => rc.on('open', resolve));
await rc.publish('pkg', { hello: 'package' });
console.log(JSON.stringify(await got));
rc.close();
`);
});

after(async () => {
	await broker.stop();
	fs.rmSync(dir, { recursive: true, force: true });
});

test('npm pack holds the module, its types and README only', () => {
	const files = JSON.parse(fs.readFileSync(path.join(dir, 'files.json'), 'utf8'));
	assert.deepEqual(files, ['README.md', 'package.json', 'ringcast.d.ts', 'ringcast.js']);
});

test('the installed package resolves by name, with its types', async () => {
	const app = path.join(dir, 'app');
	const pkgDir = path.join(app, 'node_modules', 'ringcast');
	const meta = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
	assert.equal(meta.type, 'module');
	assert.ok(fs.existsSync(path.join(pkgDir, meta.exports['.'].types)), 'types file installed');
	const { stdout } = await run(process.execPath, ['--input-type=module', '-e',
		"console.log(Object.keys(await import('ringcast')).sort().join(','))"], { cwd: app, timeout: 20000 });
	assert.equal(stdout.trim(), 'Ringcast,RingcastError,default');
});

test('Node 20 with ws injected; a URL without a path uses /ws', async () => {
	const app = path.join(dir, 'app');
	const { stdout } = await withTimeout(run(process.execPath, ['main.mjs', `ws://127.0.0.1:${broker.port}`],
		{ cwd: app, timeout: 20000 }), 25000, 'main.mjs');
	const out = JSON.parse(stdout);
	assert.deepEqual(out.data, { hello: 'package' });
	assert.equal(out.url, `ws://127.0.0.1:${broker.port}/ws`);
	// A path given explicitly is kept.
	const { Ringcast } = await import(path.join(app, 'node_modules', 'ringcast', 'ringcast.js'));
	const WebSocket = testsRequire('ws');
	for (const [given, want] of [[`ws://127.0.0.1:${broker.port}/`, '/ws'], [`ws://127.0.0.1:${broker.port}/x/ws`, '/x/ws']]) {
		const rc = new Ringcast(given, { WebSocket, reconnect: false });
		assert.equal(new URL(rc.url).pathname, want, given);
		rc.close();
	}
});

test('esbuild bundles the installed package, and the bundle runs', async () => {
	const app = path.join(dir, 'app');
	const out = path.join(dir, 'bundle.mjs');
	const r = await esbuild.build({
		entryPoints: [path.join(app, 'main.mjs')], bundle: true, format: 'esm', platform: 'node',
		outfile: out, logLevel: 'silent', external: [WS_PATH],
	});
	assert.deepEqual(r.errors, []);
	const text = fs.readFileSync(out, 'utf8');
	assert.ok(text.includes('connectTimeout') && text.includes('RingcastError'), 'the client is inside the bundle');
	assert.ok(!/from ["']ringcast["']/.test(text), 'no import of the package left');
	// The browser target too (no Node built-ins may be pulled in).
	const web = await esbuild.build({
		stdin: { contents: "import { Ringcast } from 'ringcast'; globalThis.R = Ringcast;", resolveDir: app },
		bundle: true, format: 'esm', platform: 'browser', write: false, logLevel: 'silent',
	});
	assert.deepEqual(web.errors, []);
	const { stdout } = await withTimeout(run(process.execPath, [out, `ws://127.0.0.1:${broker.port}`],
		{ cwd: app, timeout: 20000 }), 25000, 'bundle');
	assert.deepEqual(JSON.parse(stdout).data, { hello: 'package' });
	await httpPublish(broker.base, 'pkg', 'done'); // the broker still serves
});
