/**
 * The demo page: one tab shares a link; every tab that opens it joins the
 * room over a direct WebRTC data channel to the sharer, which relays chat
 * and files to every member. Loads the client from the browser bundle
 * (/assets/sigserve-client.js); the import below is rewritten at build time.
 *
 * Everything a peer sends is untrusted: it is parsed defensively and shown
 * through textContent only.
 * @module
 */
import { encode } from 'uqr';
import { join, share, SignalingClient, SignalingClientError, type Sharer } from '../src/client/index.js';

// ---------------------------------------------------------------- page bits

const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from the page`);
  return found as T;
};
const show = (id: string, visible = true): void => {
  byId(id).hidden = !visible;
};

const MAX_FILE = 16 * 1024 * 1024;
const CHUNK = 16 * 1024;
/** Above this many buffered bytes a sender waits for the channel to drain. */
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

function randomName(): string {
  const animals = ['Otter', 'Heron', 'Lynx', 'Marten', 'Wren', 'Ibex', 'Puffin', 'Gecko', 'Vole', 'Kestrel'];
  const n = new Uint32Array(1);
  crypto.getRandomValues(n);
  return `${animals[n[0]! % animals.length]} ${(n[0]! >>> 8) % 100}`;
}

function displayName(): string {
  const stored = localStorage.getItem('sigserve-demo-name');
  return stored && stored.trim() ? stored.trim().slice(0, 40) : randomName();
}

function setError(message: string): void {
  const box = byId('error');
  box.textContent = message;
  box.hidden = false;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function iceServersFromQuery(): RTCIceServer[] {
  const urls = new URLSearchParams(location.search).getAll('ice');
  return urls.filter((u) => /^(stun|turns?):/.test(u)).map((u) => ({ urls: u }));
}

// ---------------------------------------------------------------- wire format

interface MemberInfo {
  id: string;
  name: string;
}

type Wire =
  | { t: 'hello'; name: string }
  | { t: 'welcome'; id: string }
  | { t: 'members'; members: MemberInfo[] }
  | { t: 'chat'; from: string; text: string }
  | { t: 'file'; fid: number; from: string; name: string; size: number; mime: string }
  | { t: 'file-end'; fid: number };

const str = (v: unknown, max: number): string | undefined => (typeof v === 'string' ? v.slice(0, max) : undefined);
const uint = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff ? v : undefined);

/** Reads one text frame from a peer; undefined for anything malformed. */
function readWire(data: string): Wire | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const m = raw as Record<string, unknown>;
  switch (m['t']) {
    case 'hello': {
      const name = str(m['name'], 40);
      return name === undefined ? undefined : { t: 'hello', name };
    }
    case 'welcome': {
      const id = str(m['id'], 64);
      return id === undefined ? undefined : { t: 'welcome', id };
    }
    case 'members': {
      if (!Array.isArray(m['members'])) return undefined;
      const members: MemberInfo[] = [];
      for (const entry of m['members'].slice(0, 256) as unknown[]) {
        const e = entry as Record<string, unknown> | null;
        const id = str(e?.['id'], 64);
        const name = str(e?.['name'], 40);
        if (id !== undefined && name !== undefined) members.push({ id, name });
      }
      return { t: 'members', members };
    }
    case 'chat': {
      const text = str(m['text'], 2000);
      return text === undefined ? undefined : { t: 'chat', from: str(m['from'], 40) ?? '?', text };
    }
    case 'file': {
      const fid = uint(m['fid']);
      const size = uint(m['size']);
      const name = str(m['name'], 200);
      if (fid === undefined || size === undefined || size > MAX_FILE || name === undefined) return undefined;
      return { t: 'file', fid, from: str(m['from'], 40) ?? '?', name, size, mime: str(m['mime'], 100) ?? '' };
    }
    case 'file-end': {
      const fid = uint(m['fid']);
      return fid === undefined ? undefined : { t: 'file-end', fid };
    }
    default:
      return undefined;
  }
}

const send = (channel: RTCDataChannel, message: Wire): void => {
  if (channel.readyState === 'open') channel.send(JSON.stringify(message));
};

/** Resolves once `channel` buffers little enough to take more. */
function drained(channel: RTCDataChannel): Promise<void> {
  if (channel.bufferedAmount <= HIGH_WATER || channel.readyState !== 'open') return Promise.resolve();
  channel.bufferedAmountLowThreshold = LOW_WATER;
  return new Promise((resolve) => {
    const done = (): void => {
      channel.removeEventListener('bufferedamountlow', done);
      channel.removeEventListener('close', done);
      resolve();
    };
    channel.addEventListener('bufferedamountlow', done);
    channel.addEventListener('close', done);
  });
}

/** A binary frame: 4-byte file number, then file bytes. */
function frame(fid: number, bytes: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(4 + bytes.byteLength);
  new DataView(out.buffer).setUint32(0, fid);
  out.set(bytes, 4);
  return out.buffer;
}

// ---------------------------------------------------------------- chat and files UI

function addMessage(from: string, text: string, mine = false): void {
  const item = document.createElement('li');
  if (mine) item.className = 'mine';
  const who = document.createElement('strong');
  who.textContent = from;
  const what = document.createElement('span');
  what.textContent = text;
  item.append(who, ': ', what);
  const list = byId('messages');
  list.append(item);
  item.scrollIntoView({ block: 'nearest' });
}

function addNotice(text: string): void {
  const item = document.createElement('li');
  item.className = 'notice';
  item.textContent = text;
  byId('messages').append(item);
}

interface Transfer {
  progress: HTMLProgressElement;
  label: HTMLElement;
  item: HTMLLIElement;
}

function addTransfer(direction: 'to' | 'from', who: string, name: string, size: number): Transfer {
  const item = document.createElement('li');
  const label = document.createElement('span');
  label.textContent = `${direction === 'to' ? 'Sending' : `From ${who}:`} ${name} (${formatBytes(size)})`;
  const progress = document.createElement('progress');
  progress.max = Math.max(1, size);
  progress.value = 0;
  progress.setAttribute('aria-label', `${direction === 'to' ? 'Sending' : 'Receiving'} ${name}`);
  item.append(label, progress);
  byId('transfers').append(item);
  return { progress, label, item };
}

function finishDownload(transfer: Transfer, name: string, mime: string, chunks: Uint8Array[]): void {
  const blob = new Blob(chunks as BlobPart[], { type: mime || 'application/octet-stream' });
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.textContent = `Save ${name}`;
  link.className = 'download';
  transfer.progress.value = transfer.progress.max;
  transfer.item.append(link);
}

/** Incoming files on one channel, by file number. */
class Downloads {
  readonly #files = new Map<number, { name: string; mime: string; size: number; received: number; chunks: Uint8Array[]; transfer: Transfer }>();

  start(m: Extract<Wire, { t: 'file' }>): void {
    if (this.#files.size >= 16) return;
    this.#files.set(m.fid, { name: m.name, mime: m.mime, size: m.size, received: 0, chunks: [], transfer: addTransfer('from', m.from, m.name, m.size) });
  }

  chunk(data: ArrayBuffer): void {
    if (data.byteLength < 4) return;
    const fid = new DataView(data).getUint32(0);
    const file = this.#files.get(fid);
    if (!file) return;
    const bytes = new Uint8Array(data, 4);
    if (file.received + bytes.byteLength > file.size) {
      this.#files.delete(fid);
      file.transfer.label.textContent += ' (failed: more data than announced)';
      return;
    }
    file.chunks.push(bytes.slice());
    file.received += bytes.byteLength;
    file.transfer.progress.value = file.received;
  }

  end(fid: number): void {
    const file = this.#files.get(fid);
    if (!file) return;
    this.#files.delete(fid);
    finishDownload(file.transfer, file.name, file.mime, file.chunks);
  }
}

/** Sends `file` on every channel, with flow control, updating one progress bar. */
async function sendFile(channels: () => RTCDataChannel[], fid: number, file: File, from: string): Promise<void> {
  const transfer = addTransfer('to', from, file.name, file.size);
  const targets = channels();
  for (const c of targets) send(c, { t: 'file', fid, from, name: file.name, size: file.size, mime: file.type });
  for (let offset = 0; offset < file.size; offset += CHUNK) {
    const bytes = new Uint8Array(await file.slice(offset, offset + CHUNK).arrayBuffer());
    for (const c of targets) {
      await drained(c);
      if (c.readyState === 'open') c.send(frame(fid, bytes));
    }
    transfer.progress.value = Math.min(file.size, offset + bytes.byteLength);
  }
  for (const c of targets) send(c, { t: 'file-end', fid });
  transfer.progress.value = transfer.progress.max;
  transfer.label.textContent = `Sent ${file.name} (${formatBytes(file.size)})`;
}

function enableRoom(onChat: (text: string) => void, onFile: (file: File) => void): void {
  show('room');
  const input = byId<HTMLInputElement>('chat-input');
  const fileInput = byId<HTMLInputElement>('file-input');
  for (const id of ['chat-input', 'chat-send', 'file-input', 'file-send']) byId<HTMLInputElement>(id).disabled = false;
  byId<HTMLFormElement>('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    onChat(text.slice(0, 2000));
  });
  byId<HTMLFormElement>('file-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const file = fileInput.files?.[0];
    if (!file) return;
    if (file.size > MAX_FILE) {
      addNotice(`${file.name} is larger than 16 MB; pick a smaller file.`);
      return;
    }
    fileInput.value = '';
    onFile(file);
  });
}

function renderMembers(members: { name: string; state: string; self?: boolean }[]): void {
  const list = byId('members');
  list.replaceChildren(
    ...members.map((m) => {
      const item = document.createElement('li');
      const name = document.createElement('span');
      name.textContent = m.self ? `${m.name} (you)` : m.name;
      const state = document.createElement('span');
      state.className = `badge state-${m.state.replace(/[^a-z-]/g, '')}`;
      state.textContent = m.state;
      item.append(name, ' ', state);
      return item;
    }),
  );
}

// ---------------------------------------------------------------- connection states

function watchServer(client: SignalingClient): void {
  const server = byId('st-server');
  const set = (text: string): void => {
    server.textContent = text;
    server.dataset['state'] = text;
  };
  set(client.connected ? 'connected' : 'connecting');
  client.on('connected', () => set('connected'));
  client.on('disconnected', () => set('reconnecting'));
}

function watchPeer(connection: RTCPeerConnection): void {
  const update = (): void => {
    byId('st-signaling').textContent = connection.signalingState;
    byId('st-ice').textContent = `${connection.iceGatheringState === 'gathering' ? 'gathering, ' : ''}${connection.iceConnectionState}`;
    byId('st-peer').textContent = connection.connectionState;
    byId('st-peer').dataset['state'] = connection.connectionState;
  };
  for (const event of ['signalingstatechange', 'iceconnectionstatechange', 'icegatheringstatechange', 'connectionstatechange']) {
    connection.addEventListener(event, update);
  }
  update();
}

// ---------------------------------------------------------------- sharer

interface Member {
  id: string;
  name: string;
  state: string;
  channel?: RTCDataChannel;
  /** Their file numbers to ours, for relaying. */
  files: Map<number, number>;
}

function drawQr(text: string): void {
  const qr = encode(text, { ecc: 'M', border: 2 });
  const svg = byId('qr') as unknown as SVGSVGElement;
  const size = qr.size;
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  let d = '';
  qr.data.forEach((row, y) => row.forEach((dark, x) => dark && (d += `M${x} ${y}h1v1h-1z`)));
  const ns = 'http://www.w3.org/2000/svg';
  const background = document.createElementNS(ns, 'rect');
  background.setAttribute('width', String(size));
  background.setAttribute('height', String(size));
  background.setAttribute('fill', '#fff');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000');
  svg.replaceChildren(background, path);
}

async function copyLink(link: string): Promise<void> {
  const status = byId('copied');
  try {
    // The Clipboard API exists only in secure contexts (https, localhost).
    await navigator.clipboard.writeText(link);
  } catch {
    const input = byId<HTMLInputElement>('link');
    input.select();
    if (!document.execCommand('copy')) {
      status.textContent = 'Select the link and copy it by hand.';
      return;
    }
  }
  status.textContent = 'Link copied.';
}

function startCountdown(expiresAt: () => number, onExpired: () => void): () => void {
  const out = byId('countdown');
  const label = byId('countdown-label');
  let expired = false;
  const tick = (): void => {
    const left = Math.max(0, Math.round((expiresAt() - Date.now()) / 1000));
    const h = Math.floor(left / 3600);
    const m = Math.floor((left % 3600) / 60);
    const s = left % 60;
    out.textContent = `${h > 0 ? `${h}:${String(m).padStart(2, '0')}` : m}:${String(s).padStart(2, '0')}`;
    if (left === 0 && !expired) {
      expired = true;
      label.textContent = 'expired';
      onExpired();
    }
  };
  tick();
  const timer = setInterval(tick, 1000);
  return () => clearInterval(timer);
}

async function runSharer(myName: string, ttl: number): Promise<void> {
  const client = new SignalingClient(location.origin);
  watchServer(client);
  show('states-panel');
  // A sharer has one WebRTC connection per member: their states show beside their names.
  show('peer-states', false);
  show('peer-states-hint');
  let sharer: Sharer;
  try {
    sharer = await share({ client, ttl, iceServers: iceServersFromQuery() });
  } catch (error) {
    client.close();
    setError(`Could not create a link: ${describe(error)}`);
    show('start');
    return;
  }
  show('start', false);
  show('link-panel');
  const link = `${location.origin}/j/${encodeURIComponent(sharer.name)}#exp=${sharer.expiresAt}`;
  byId<HTMLInputElement>('link').value = link;
  drawQr(link);
  byId('copy').addEventListener('click', () => void copyLink(link));
  const stopCountdown = startCountdown(
    () => sharer.expiresAt,
    () => addNotice('The link expired: nobody new can join. Members already here stay connected.'),
  );
  sharer.on('expired', () => {
    stopCountdown();
    byId('countdown').textContent = '0:00';
    byId('countdown-label').textContent = 'expired';
  });
  sharer.on('restored', () => addNotice('Reconnected to the server; the link works again.'));
  sharer.on('lost', (error) => setError(`The link could not be restored after a reconnection: ${describe(error)}`));
  byId('stop').addEventListener('click', () => {
    void sharer.close();
    stopCountdown();
    byId('countdown-label').textContent = 'stopped';
    byId<HTMLButtonElement>('stop').disabled = true;
    addNotice('You stopped sharing: nobody new can join. Members already here stay connected.');
  });

  const members = new Map<string, Member>();
  let nextFid = 1;
  const downloads = new Downloads();
  const open = (): Member[] => [...members.values()].filter((m) => m.channel?.readyState === 'open' && m.name);
  const refresh = (): void => {
    renderMembers([{ name: myName, state: 'host', self: true }, ...[...members.values()].map((m) => ({ name: m.name || 'joining…', state: m.state }))]);
    const list: MemberInfo[] = [{ id: 'host', name: myName }, ...open().map((m) => ({ id: m.id, name: m.name }))];
    for (const m of open()) send(m.channel!, { t: 'members', members: list });
  };
  const relay = (message: Wire, except?: Member): void => {
    for (const m of open()) if (m !== except) send(m.channel!, message);
  };
  refresh();

  sharer.on('negotiating', (uid, connection) => {
    const member: Member = { id: uid.slice(0, 12), name: '', state: 'signaling', files: new Map() };
    members.set(uid, member);
    const update = (): void => {
      member.state =
        connection.connectionState === 'connected'
          ? 'connected'
          : connection.connectionState === 'failed'
            ? 'failed'
            : connection.iceConnectionState === 'new'
              ? 'signaling'
              : `ice ${connection.iceConnectionState}`;
      refresh();
    };
    connection.addEventListener('connectionstatechange', update);
    connection.addEventListener('iceconnectionstatechange', update);
    refresh();
  });
  sharer.on('peerFailed', (uid) => {
    const member = members.get(uid);
    if (!member) return;
    member.state = 'failed';
    refresh();
    setTimeout(() => {
      if (members.get(uid) === member && !member.channel) members.delete(uid);
      refresh();
    }, 5000);
  });
  enableRoom(
    (text) => {
      addMessage(myName, text, true);
      relay({ t: 'chat', from: myName, text });
    },
    (file) => void sendFile(() => open().map((m) => m.channel!), nextFid++, file, myName),
  );

  for await (const peer of sharer.peers()) {
    const member: Member = members.get(peer.joinerUID) ?? { id: peer.joinerUID.slice(0, 12), name: '', state: 'connected', files: new Map() };
    members.set(peer.joinerUID, member);
    member.channel = peer.channel;
    member.state = 'connected';
    peer.channel.addEventListener('message', (event) => {
      const data: unknown = (event as MessageEvent).data;
      if (typeof data !== 'string') {
        if (!(data instanceof ArrayBuffer) || data.byteLength < 4 || !member.name) return;
        const ours = member.files.get(new DataView(data).getUint32(0));
        if (ours === undefined) return;
        downloads.chunk(frame(ours, new Uint8Array(data, 4)));
        const out = frame(ours, new Uint8Array(data, 4));
        for (const m of open()) if (m !== member) m.channel!.send(out);
        return;
      }
      const message = readWire(data);
      if (!message) return;
      if (message.t === 'hello' && !member.name) {
        member.name = message.name || 'guest';
        send(peer.channel, { t: 'welcome', id: member.id });
        addNotice(`${member.name} joined.`);
        refresh();
        return;
      }
      if (!member.name) return;
      if (message.t === 'chat') {
        addMessage(member.name, message.text);
        relay({ t: 'chat', from: member.name, text: message.text }, member);
      } else if (message.t === 'file') {
        if (member.files.size >= 16) return;
        const ours = nextFid++;
        member.files.set(message.fid, ours);
        const relayed: Wire = { ...message, fid: ours, from: member.name };
        downloads.start(relayed);
        relay(relayed, member);
      } else if (message.t === 'file-end') {
        const ours = member.files.get(message.fid);
        if (ours === undefined) return;
        member.files.delete(message.fid);
        downloads.end(ours);
        relay({ t: 'file-end', fid: ours }, member);
      }
    });
    peer.channel.addEventListener('close', () => {
      members.delete(peer.joinerUID);
      if (member.name) addNotice(`${member.name} left.`);
      refresh();
    });
    peer.connection.addEventListener('connectionstatechange', () => {
      if (peer.connection.connectionState === 'failed' || peer.connection.connectionState === 'closed') peer.channel.close();
    });
    refresh();
  }
}

// ---------------------------------------------------------------- joiner

async function runJoiner(name: string, myName: string): Promise<void> {
  show('join-panel');
  show('states-panel');
  const status = byId('join-status');
  const expiresAt = Number(new URLSearchParams(location.hash.slice(1)).get('exp'));
  const client = new SignalingClient(location.origin);
  watchServer(client);
  status.textContent = 'Connecting to the signaling server…';
  client.on('connected', () => (status.textContent = 'Sending our offer to the sharer…'));
  let joined;
  try {
    joined = await join({
      client,
      name,
      timeout: 30_000,
      iceServers: iceServersFromQuery(),
      onConnection: (connection) => {
        watchPeer(connection);
        connection.addEventListener('iceconnectionstatechange', () => {
          if (connection.iceConnectionState === 'checking') status.textContent = 'Finding a direct path to the sharer (ICE)…';
        });
      },
    });
  } catch (error) {
    client.close();
    show('join-panel', false);
    show('states-panel', false);
    document.title = 'Cannot join – sigserve demo';
    if (error instanceof SignalingClientError && error.code === 'no-sharer') {
      if (expiresAt > 0 && expiresAt <= Date.now()) {
        setError(`This link has expired (at ${new Date(expiresAt).toLocaleTimeString()}). Ask for a new one.`);
      } else {
        setError('Nobody is sharing this link right now. The sharer may have closed their tab; ask for a new link.');
      }
    } else if (error instanceof SignalingClientError && error.code === 'share-full') {
      setError('This link admits no more members.');
    } else if (error instanceof SignalingClientError && (error.code === 'timeout' || error.code === 'peer-failed')) {
      setError('Could not connect directly to the sharer (WebRTC found no path). Both devices may need to be on the same network, or a STUN/TURN server (add ?ice=stun:host:port to the link).');
    } else {
      setError(`Could not join: ${describe(error)}`);
    }
    return;
  }
  // The server's part is over: the room lives on the data channel alone.
  // Closing a moment later lets the sharer's last trickled candidates land.
  setTimeout(() => {
    client.close();
    const server = byId('st-server');
    server.textContent = 'closed (no longer needed)';
    server.dataset['state'] = 'done';
  }, 2000);
  const { channel, connection } = joined;
  status.textContent = 'Connected directly to the sharer.';
  byId('join-title').textContent = 'In the room';
  const downloads = new Downloads();
  let nextFid = 1;
  let myId = '';
  send(channel, { t: 'hello', name: myName });
  channel.addEventListener('message', (event) => {
    const data: unknown = (event as MessageEvent).data;
    if (data instanceof ArrayBuffer) {
      downloads.chunk(data);
      return;
    }
    if (typeof data !== 'string') return;
    const message = readWire(data);
    if (!message) return;
    switch (message.t) {
      case 'welcome':
        myId = message.id;
        break;
      case 'members':
        renderMembers(message.members.map((m) => ({ name: m.name, state: m.id === 'host' ? 'host' : 'connected', self: m.id === myId })));
        break;
      case 'chat':
        addMessage(message.from, message.text);
        break;
      case 'file':
        downloads.start(message);
        break;
      case 'file-end':
        downloads.end(message.fid);
        break;
      default:
        break;
    }
  });
  channel.addEventListener('close', () => {
    status.textContent = 'The sharer left: the room is closed.';
    setError('The sharer left: the room is closed.');
    for (const id of ['chat-input', 'chat-send', 'file-input', 'file-send']) byId<HTMLInputElement>(id).disabled = true;
  });
  connection.addEventListener('connectionstatechange', () => {
    if (connection.connectionState === 'failed') channel.close();
  });
  enableRoom(
    (text) => {
      addMessage(myName, text, true);
      send(channel, { t: 'chat', from: myName, text });
    },
    (file) => void sendFile(() => [channel], nextFid++, file, myName),
  );
}

function describe(error: unknown): string {
  if (error instanceof SignalingClientError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------- start

function main(): void {
  const myName = displayName();
  const linkName = /^\/j\/([^/]+)$/.exec(location.pathname)?.[1];
  if (linkName) {
    void runJoiner(decodeURIComponent(linkName), myName);
    return;
  }
  show('start');
  const nameInput = byId<HTMLInputElement>('your-name');
  nameInput.value = myName;
  byId<HTMLFormElement>('share-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const chosen = nameInput.value.trim().slice(0, 40) || myName;
    localStorage.setItem('sigserve-demo-name', chosen);
    const amount = Number(byId<HTMLInputElement>('lifetime').value);
    const unit = Number(byId<HTMLSelectElement>('lifetime-unit').value);
    if (!(amount > 0)) {
      setError('Pick a lifetime of at least one second.');
      return;
    }
    byId<HTMLButtonElement>('create').disabled = true;
    byId('error').hidden = true;
    void runSharer(chosen, Math.round(amount * unit));
  });
}

main();
