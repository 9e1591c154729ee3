/**
 * socket.io's own parser (socket.io-parser), with one shortcut on the relay
 * path: a relayed message is forwarded as the JSON text it arrived in.
 *
 * The default parser decodes `launch(name, uid, message)` with JSON.parse
 * and encodes `launchResponse(uid, message)` with JSON.stringify: the
 * message (an SDP of 1-2 KB, full of CR LF that need escaping) is turned
 * back into the text it came from, costing more than anything else the
 * server does for it. Here the decoder still parses and validates every
 * packet exactly as before, then wraps the last argument of a `launch` or
 * `answer` event in a RawJson that keeps its value and its text; the
 * encoder writes that text into the outgoing packet as it is.
 *
 * The wire format is the default one, byte for byte; packets it does not
 * recognise (binary attachments, other namespaces, unusual whitespace or
 * escaping) take the default path unchanged.
 * @module
 */
import { Decoder as BaseDecoder, Encoder as BaseEncoder, PacketType, type Packet } from 'socket.io-parser';
import { detachedSlice } from '../core/detached-slice.js';
import { RawJson } from '../core/raw-json.js';

/** Events whose last argument is a message to relay as it is. */
const RELAYED = new Set(['launch', 'answer']);

class RelayDecoder extends BaseDecoder {}

// decodeString is private in the parser's typings, but add() calls it as a
// method, so the subclass's own runs (an override of emitReserved would not:
// add() reaches Emitter's through `super`). It parses and checks the packet
// exactly as before, then keeps the message's text.
const decodeString = (BaseDecoder.prototype as unknown as { decodeString(text: string): Packet }).decodeString;
Object.defineProperty(RelayDecoder.prototype, 'decodeString', {
  value: function (this: BaseDecoder, text: string): Packet {
    const packet = decodeString.call(this, text);
    if (packet.type === PacketType.EVENT && packet.nsp === '/') wrapMessage(packet.data as unknown[] | undefined, text);
    return packet;
  },
});

/**
 * Replaces the last argument of a relayed event by a RawJson, when the
 * packet's JSON is exactly the canonical encoding of the arguments before it
 * followed by the message's text (as every socket.io client writes it).
 */
function wrapMessage(data: unknown[] | undefined, text: string): void {
  if (!Array.isArray(data)) return;
  const last = data.length - 1;
  if (last < 2 || last > 3 || !RELAYED.has(data[0] as string)) return;
  // The namespace is '/' and types and ack ids hold no '[': the JSON array starts at the first one.
  let at = text.indexOf('[') + 1;
  if (at === 0 || text.charCodeAt(text.length - 1) !== 93 /* ']' */) return;
  for (let i = 0; i < last; i++) {
    const arg = data[i];
    if (typeof arg !== 'string') return;
    at = afterString(text, at, arg);
    if (at < 0 || text.charCodeAt(at) !== 44 /* ',' */) return;
    at++;
  }
  data[last] = new RawJson(text.slice(at, text.length - 1), data[last]);
}

/**
 * Where the JSON string literal of `value` at `at` in `text` ends, or -1
 * when `text` does not hold it there. A value without quotes or
 * backslashes is its own literal between quotes (no escape can be in it:
 * the packet parsed), so it is compared where it lies rather than
 * serialized first.
 */
function afterString(text: string, at: number, value: string): number {
  const end = at + value.length + 1;
  if (
    text.charCodeAt(at) === 34 /* '"' */ &&
    text.charCodeAt(end) === 34 &&
    text.startsWith(value, at + 1) &&
    value.indexOf('"') === -1 &&
    value.indexOf('\\') === -1
  ) {
    return end + 1;
  }
  const json = JSON.stringify(value);
  return text.startsWith(json, at) ? at + json.length : -1;
}

/**
 * For an event whose last argument is a RawJson and whose others are
 * strings (event name, uid): its packet text up to that argument, i.e.
 * `head` (`2`, plus namespace and ack id when any), the JSON array's `[`
 * and the other arguments each followed by a comma. The packet is this,
 * the RawJson's text, then `]`. Undefined for any other event. Only
 * strings: anything else could hold binary.
 */
export function relayedEventHead(head: string, data: readonly unknown[]): string | undefined {
  if (!(data[data.length - 1] instanceof RawJson)) return undefined;
  let text = `${head}[`;
  for (let i = 0; i < data.length - 1; i++) {
    const arg = data[i];
    if (typeof arg !== 'string') return undefined;
    text += `${JSON.stringify(arg)},`;
  }
  return text;
}

class RelayEncoder extends BaseEncoder {
  override encode(obj: Packet): unknown[] {
    if (obj.type === PacketType.EVENT && Array.isArray(obj.data)) {
      let head = obj.nsp && obj.nsp !== '/' ? `2${obj.nsp},` : '2';
      if (obj.id != null) head += String(obj.id);
      const data = obj.data as unknown[];
      const start = relayedEventHead(head, data);
      if (start !== undefined) return [`${start}${(data[data.length - 1] as RawJson).text}]`];
    }
    return super.encode(obj);
  }
}

/** The `parser` option of the socket.io Server. */
export const relayParser = { Encoder: RelayEncoder, Decoder: RelayDecoder };

const sharedDecoder = new RelayDecoder() as unknown as { decodeString(text: string): Packet };

/** The client events the server serves: none is one socket.io-parser reserves. */
const SERVED = new Set(['share', 'unshare', 'launch', 'answer']);

/**
 * Decodes one complete socket.io text packet (not a binary one) exactly as
 * the relay decoder does, throwing on a malformed one. It keeps no state,
 * so one decoder serves every connection.
 *
 * The packets nearly every client sends, an event of the main namespace
 * (`2[...]` or, asking for an ack, `2<id>[...]`) naming one of the served
 * events, are decoded here with the same checks and without
 * socket.io-parser; anything else goes through its decoder.
 */
export function decodeTextPacket(text: string): Packet {
  if (text.charCodeAt(0) === 50 /* '2': EVENT */) {
    let at = 1;
    for (let c = text.charCodeAt(at); c >= 48 && c <= 57; c = text.charCodeAt(++at));
    if (text.charCodeAt(at) === 91 /* '[' */) {
      const data = relayedEventData(text, at) ?? parsedEventData(text, at);
      if (data !== undefined) {
        return at === 1 ? { type: PacketType.EVENT, nsp: '/', data } : { type: PacketType.EVENT, nsp: '/', data, id: Number(text.slice(1, at)) };
      }
    }
  }
  return sharedDecoder.decodeString(text);
}

/** The arguments of a served event, by JSON.parse; undefined for any other event. */
function parsedEventData(text: string, open: number): unknown[] | undefined {
  const data: unknown = JSON.parse(text.slice(open));
  if (!Array.isArray(data) || !SERVED.has(data[0] as string)) return undefined;
  wrapMessage(data, text);
  return data;
}

/**
 * The arguments of a relayed event as every client writes it,
 * `["launch","<name>","<uid>",<message>]` (or with one string before the
 * message), read without JSON.parse of the whole packet: profiles showed
 * that parse, and the interning of the fresh name and uid it does, as the
 * largest cost of decoding. The strings before the message are taken
 * where they lie when they hold no escape; only the message is given to
 * JSON.parse, which checks it and yields the value kept beside its text.
 * (A hand-written or regex check of an SDP literal, to skip that parse,
 * measured slower than JSON.parse, and the fast regex forms backtrack
 * exponentially on hostile input.) Undefined
 * when the packet is anything else (escapes in the name or uid,
 * whitespace, another event, other argument counts, malformed JSON): the
 * general path then decodes it, or refuses it, as before.
 */
function relayedEventData(text: string, open: number): unknown[] | undefined {
  let event: string;
  if (text.startsWith('"launch",', open + 1)) event = 'launch';
  else if (text.startsWith('"answer",', open + 1)) event = 'answer';
  else return undefined;
  const close = text.length - 1;
  if (text.charCodeAt(close) !== 93 /* ']' */) return undefined;
  const data: unknown[] = [event];
  let at = open + 10;
  while (data.length < 3 && text.charCodeAt(at) === 34 /* '"' */) {
    const end = plainStringEnd(text, at + 1);
    if (end < 0 || text.charCodeAt(end + 1) !== 44 /* ',' */) break;
    data.push(detachedSlice(text, at + 1, end));
    at = end + 2;
  }
  if (data.length < 2) return undefined;
  const messageText = text.slice(at, close);
  // A message that is one string (an SDP, as most clients send it) is
  // checked by its shape and parsed only if something asks for its value:
  // JSON.parse would build the decoded string, as large as the text, for
  // nothing when the relay forwards the text.
  if (isStringLiteral(text, at, close)) {
    data.push(new RawJson(messageText));
    return data;
  }
  let value: unknown;
  try {
    value = JSON.parse(messageText);
  } catch {
    return undefined;
  }
  data.push(new RawJson(messageText, value));
  return data;
}

/**
 * A JSON string literal, exactly (RFC 8259 §7), at lastIndex: runs of
 * characters that need no escape, each run after the first behind one
 * escape. Every step is decided by the next character (a run cannot hold a
 * backslash or a quote), so a literal that fails costs one pass, whatever
 * it holds; what it refuses still goes to JSON.parse.
 */
const STRING_LITERAL = /"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*"/y;

/** Whether text[from, to) is one JSON string literal, by STRING_LITERAL. */
function isStringLiteral(text: string, from: number, to: number): boolean {
  STRING_LITERAL.lastIndex = from;
  try {
    return STRING_LITERAL.test(text) && STRING_LITERAL.lastIndex === to;
  } catch {
    // The regexp's backtrack stack ran out (a literal of millions of
    // escapes, longer than any frame the engine takes): JSON.parse decides.
    return false;
  }
}

/**
 * Where the string whose text starts at `from` (after its opening quote)
 * closes, when no escape or control character is in it; -1 otherwise.
 */
function plainStringEnd(text: string, from: number): number {
  PLAIN_STRING.lastIndex = from;
  return PLAIN_STRING.test(text) ? PLAIN_STRING.lastIndex - 1 : -1;
}

// Sticky: it matches at lastIndex only, and ends after the closing quote.
const PLAIN_STRING = /[^"\\\x00-\x1f]*"/y;

/** The relay encoder: stateless, shared by every connection. */
export const packetEncoder: BaseEncoder = new RelayEncoder();

/** A decoder for one connection's binary packets (which arrive in several frames). */
export const newPacketDecoder = (): BaseDecoder => new RelayDecoder();
