/**
 * The cost of the framework alone: socket.io 4 with its defaults, relaying
 * the same seed events as sigserve (share, launch, answer -> launchResponse,
 * answerResponse) with no validation, limits or metrics. Like sigserve it
 * keeps at most 64 joiner routes per socket.
 * @module
 */
import { createServer } from 'node:http';
import { Server, type Socket } from 'socket.io';

const MAX_ROUTES = 64;
const sharers = new Map<string, Socket>();
const joiners = new Map<string, Socket>();
const httpServer = createServer();
const io = new Server(httpServer);

io.on('connection', (socket) => {
  const names = new Set<string>();
  const uids = new Set<string>();
  socket.on('share', (name: unknown, ...rest: unknown[]) => {
    const ack = rest.pop();
    if (typeof name !== 'string') return;
    sharers.set(name, socket);
    names.add(name);
    if (typeof ack === 'function') ack({ ok: true, name });
  });
  socket.on('launch', (name: unknown, uid: unknown, message: unknown) => {
    const sharer = typeof name === 'string' ? sharers.get(name) : undefined;
    if (!sharer || typeof uid !== 'string') return;
    if (!uids.has(uid)) {
      joiners.set(uid, socket);
      uids.add(uid);
      if (uids.size > MAX_ROUTES) {
        const oldest = uids.values().next().value as string;
        uids.delete(oldest);
        joiners.delete(oldest);
      }
    }
    sharer.emit('launchResponse', uid, message);
  });
  socket.on('answer', (_name: unknown, uid: unknown, message: unknown) => {
    if (typeof uid === 'string') joiners.get(uid)?.emit('answerResponse', message);
  });
  socket.on('disconnect', () => {
    for (const name of names) if (sharers.get(name) === socket) sharers.delete(name);
    for (const uid of uids) if (joiners.get(uid) === socket) joiners.delete(uid);
  });
});

httpServer.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1');
