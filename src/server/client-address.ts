/**
 * Who is on the other end of a request, for per-address limits. Behind a
 * load balancer every peer is the balancer, so X-Forwarded-For is read, but
 * only when the peer is a proxy the operator trusts: anyone else could
 * write any address into that header.
 * @module
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

/** Trusted proxies: a comma-separated list of addresses, CIDR ranges, or `loopback`. */
export function parseTrustedProxies(text: string): BlockList | undefined {
  const entries = text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  if (entries.length === 0) return undefined;
  const list = new BlockList();
  for (const entry of entries) {
    if (entry === 'loopback') {
      list.addSubnet('127.0.0.0', 8, 'ipv4');
      list.addAddress('::1', 'ipv6');
      continue;
    }
    const [address = '', prefix, ...rest] = entry.split('/');
    const family = isIP(address);
    const bits = prefix === undefined ? undefined : Number(prefix);
    const max = family === 4 ? 32 : 128;
    if (family === 0 || rest.length > 0 || (bits !== undefined && !(Number.isInteger(bits) && bits >= 0 && bits <= max))) {
      throw new Error(`not an address, CIDR range or "loopback": ${JSON.stringify(entry)}`);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, bits, type);
  }
  return list;
}

/** `::ffff:1.2.3.4` is 1.2.3.4, so one client has one key whichever stack it came through. */
function normalize(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

const isTrusted = (list: BlockList, address: string): boolean => {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
};

/**
 * The client's address: the TCP peer, or, when the peer is trusted, the
 * nearest hop of X-Forwarded-For that is not itself a trusted proxy (read
 * from the right, as each proxy appends the address it saw).
 */
export function clientAddress(req: IncomingMessage, trusted: BlockList | undefined): string {
  let address = normalize(req.socket.remoteAddress ?? '');
  if (!trusted || !isTrusted(trusted, address)) return address;
  const header = req.headers['x-forwarded-for'];
  if (header === undefined) return address;
  const hops = (Array.isArray(header) ? header.join(',') : header).split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalize(hops[i]!.trim());
    // A hop that is no address means the chain is not to be believed past here.
    if (isIP(hop) === 0) return address;
    address = hop;
    if (!isTrusted(trusted, hop)) return hop;
  }
  return address;
}

/**
 * The key limits count under: the address itself for IPv4, its /64 for IPv6,
 * since one subscriber usually holds a whole /64.
 */
export function addressKey(address: string): string {
  if (isIP(address) !== 6) return address;
  const [head = '', tail = ''] = address.split('::', 2);
  const left = head ? head.split(':') : [];
  const right = address.includes('::') ? (tail ? tail.split(':') : []) : [];
  // A trailing dotted IPv4 part stands for two groups.
  const width = (parts: string[]): number => parts.length + (parts.at(-1)?.includes('.') ? 1 : 0);
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - width(left) - width(right)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => (g.replace(/^0+/, '') || '0').toLowerCase())
    .join(':')}::/64`;
}
