/**
 * peerjs-server (the npm package `peer`) as its own CLI starts it, on
 * 127.0.0.1:$PORT. One setting differs from its defaults: `concurrent_limit`
 * (5,000 by default) is raised so the idle-connection scenarios can open
 * 10,000 and more; RESULTS.md says so.
 * @module
 */
import { PeerServer } from 'peer';

const port = Number(process.env['PORT'] ?? 9000);
const server = PeerServer({ host: '127.0.0.1', port, key: 'peerjs', path: '/', concurrent_limit: 1_000_000 });
server.on('error', (error) => process.stderr.write(`peerjs-server error: ${String(error)}\n`));
