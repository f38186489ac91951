// A TCP proxy the tests control, to cut a client's connection without
// restarting the broker: dropAll() destroys every open pair of sockets;
// setDown(true) then also refuses new connections (accepts and closes them
// at once) until setDown(false).
import net from 'node:net';

// Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:targetPort
// (changeable with retarget()).
export function startProxy(targetPort) {
	let target = targetPort;
	const pairs = new Set();
	let down = false;
	let accepted = 0;
	const server = net.createServer((client) => {
		if (down) {
			client.destroy();
			return;
		}
		accepted++;
		const upstream = net.connect(target, '127.0.0.1');
		const pair = { client, upstream };
		pairs.add(pair);
		const end = () => {
			pairs.delete(pair);
			client.destroy();
			upstream.destroy();
		};
		client.on('error', end);
		upstream.on('error', end);
		client.on('close', end);
		upstream.on('close', end);
		client.pipe(upstream);
		upstream.pipe(client);
	});
	return new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => {
			resolve({
				port: server.address().port,
				// Connections accepted and forwarded so far.
				get accepted() { return accepted; },
				get open() { return pairs.size; },
				// Cuts every forwarded connection (both sides see a reset/EOF).
				dropAll() {
					const n = pairs.size;
					for (const { client, upstream } of [...pairs]) {
						client.destroy();
						upstream.destroy();
					}
					pairs.clear();
					return n;
				},
				setDown(v) { down = Boolean(v); },
				// New connections go to another port from now on.
				retarget(port) { target = port; },
				close() {
					this.dropAll();
					return new Promise((r) => server.close(() => r()));
				},
			});
		});
	});
}
