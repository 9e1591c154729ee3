/**
 * The floor: a minimal relay on the raw `ws` package. A client connects with
 * `?id=`, sends JSON with a `to` id, and the relay forwards it with `from`
 * set. No liveness checks, no limits beyond ws's maxPayload, no metrics.
 * @module
 */
import { WebSocketServer, type WebSocket } from 'ws';

const peers = new Map<string, WebSocket>();
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.env['PORT'] ?? 0), maxPayload: 1 << 20 });

wss.on('connection', (ws, req) => {
  const id = new URL(req.url ?? '/', 'http://relay').searchParams.get('id');
  if (!id || peers.has(id)) return ws.close(1008, 'id missing or taken');
  peers.set(id, ws);
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let message: { to?: unknown; from?: string };
    try {
      message = JSON.parse(data.toString()) as typeof message;
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null || typeof message.to !== 'string') return;
    message.from = id;
    peers.get(message.to)?.send(JSON.stringify(message));
  });
  ws.on('close', () => peers.get(id) === ws && peers.delete(id));
  ws.on('error', () => ws.terminate());
});
