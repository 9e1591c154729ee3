/**
 * The relay parser against socket.io's default parser: for any arguments,
 * it decodes the same packets and encodes byte for byte the same text, and
 * a relayed message (RawJson) goes out as the text it came in.
 * @module
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Decoder, Encoder, PacketType, type Packet } from 'socket.io-parser';
import { RawJson } from '../src/core/raw-json.js';
import { decodeTextPacket, relayParser } from '../src/server/relay-parser.js';

function decodeAll(decoder: Decoder, chunks: unknown[]): Packet[] {
  const out: Packet[] = [];
  decoder.on('decoded', (p: Packet) => out.push(p));
  for (const c of chunks) decoder.add(c);
  return out;
}

const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

const json = fc.jsonValue();
const text = fc.string({ unit: 'grapheme', maxLength: 40 });
const relayedEvent = fc.oneof(
  fc.tuple(fc.constantFrom('launch', 'answer'), text, text, json),
  fc.tuple(fc.constantFrom('launch', 'answer'), text, json),
);

describe('relay parser', () => {
  it('decodes every packet as the default parser does, and re-encodes a relayed message as its own text', () => {
    fc.assert(
      fc.property(relayedEvent, fc.option(fc.nat(1000), { nil: undefined }), (args, id) => {
        const packet: Packet = { type: PacketType.EVENT, nsp: '/', data: args, ...(id === undefined ? {} : { id }) };
        const wire = new Encoder().encode(packet);
        const [ours] = decodeAll(new relayParser.Decoder(), wire);
        const [theirs] = decodeAll(new Decoder(), wire);
        assert.deepEqual(plain(ours), plain(theirs));
        const data = ours!.data as unknown[];
        const message = data[data.length - 1];
        assert.ok(message instanceof RawJson, 'the message is kept as text');
        assert.deepEqual(message.value, (theirs!.data as unknown[])[data.length - 1]);
        // Relayed on: the same bytes as the default encoder writes for the value.
        const out: Packet = { type: PacketType.EVENT, nsp: '/', data: ['launchResponse', 'uid', message], ...(id === undefined ? {} : { id }) };
        const expected = new Encoder().encode({ ...out, data: ['launchResponse', 'uid', message.value] });
        assert.deepEqual(new relayParser.Encoder().encode(out), expected);
      }),
      { numRuns: 500 },
    );
  });

  it('encodes anything else exactly as the default encoder, binary attachments included', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(json, fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a))), { maxLength: 4 }), (args) => {
        const packet = (): Packet => ({ type: PacketType.EVENT, nsp: '/', data: ['launchResponse', ...args] });
        assert.deepEqual(new relayParser.Encoder().encode(packet()), new Encoder().encode(packet()));
      }),
    );
  });

  it('leaves packets it does not recognise to the default path', () => {
    const cases = ['2["launch", "n","u","x"]', '2["launch","n","u","x"] ', '2["share","n"]', '2/other,["launch","n","u","x"]', '2["launch","a\\/b","u","x"]'];
    for (const c of cases) {
      const [ours] = decodeAll(new relayParser.Decoder(), [c]);
      const [theirs] = decodeAll(new Decoder(), [c]);
      assert.deepEqual(ours, theirs, c);
    }
    assert.throws(() => decodeAll(new relayParser.Decoder(), ['2["launch","n","u",x]']), /invalid payload/);
  });

  it('decodeTextPacket decodes every text packet as the default decoder, and refuses what it refuses', () => {
    const decodeDefault = (wire: string): Packet | Error => {
      try {
        return decodeAll(new Decoder(), [wire])[0]!;
      } catch (error) {
        return error as Error;
      }
    };
    const check = (wire: string): void => {
      const theirs = decodeDefault(wire);
      if (theirs instanceof Error) {
        assert.throws(() => decodeTextPacket(wire), Error, wire);
        return;
      }
      const ours = decodeTextPacket(wire);
      assert.deepEqual(plain(ours), plain(theirs), wire);
      const data = ours.data as unknown[] | undefined;
      if (Array.isArray(data) && data.length > 0 && data[data.length - 1] instanceof RawJson) {
        const raw = data[data.length - 1] as RawJson;
        assert.deepEqual(raw.value, (theirs.data as unknown[])[data.length - 1], wire);
        // Relayed as the text it came in.
        assert.ok(wire.endsWith(`${raw.text}]`), wire);
        assert.deepEqual(JSON.parse(raw.text), raw.value, wire);
      }
    };
    const event = fc.tuple(fc.constantFrom('launch', 'answer', 'share', 'unshare', 'connect', 'other'), fc.array(fc.oneof(text, json), { maxLength: 4 }));
    fc.assert(
      fc.property(event, fc.option(fc.nat(100_000), { nil: undefined }), ([name, args], id) => {
        check(new Encoder().encode({ type: PacketType.EVENT, nsp: '/', data: [name, ...args], ...(id === undefined ? {} : { id }) })[0] as string);
      }),
      { numRuns: 500 },
    );
    // Malformed or unusual packets, mostly of type EVENT.
    const odd = fc.tuple(fc.constantFrom('2', '2[', '21[', '2 [', '2007[', '2/x,[', '0', '3', '9'), fc.string({ maxLength: 30 }));
    fc.assert(fc.property(odd, ([head, rest]) => check(head + rest)), { numRuns: 1000 });
    for (const wire of ['2["launch","n","u"', '2["launch","n",1,"x"]', '2[]', '2[1]', '2["launch"]x', '21["answer","u",{"a":[1,"\\u0041"]}]', '2["share"]']) check(wire);
    // The shortcut for launch and answer as clients write them, at each of its edges.
    const relayed = [
      ...['"n","u","sdp"', '"n","sdp"', '"n","u",{"sdp":"x"}', '"n","u",7', '"n","u",null', '"n","u",["a"]', '"n","u", "x"', '"n","u","x" ', '"n","u",', '"n",'],
      ...['', '"n"', '"n","u","a","b"', '"n","u","a",', '"n","u"x"', '"n","u",{"a":1}}', '"n","u",{"a":1},2', '"n\\"","u","x"', '"n","u\\n","x"', '"n","u\\n"'],
      ...['"n","u","\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\ude00"', '"n","u","\\x"', '"n","u","\\u00zz"', '"n","u","\\u12"', '"n","u","\\', '"n","u","x', '"n","u","x\\"'],
      ...['"n","u","a\tb"', '"n","u","\u001f"', '"n","u","\u0000"', '"n","u","a\nb"', '"n\tm","u","x"', '"n","u","\u007f\u2028\ud800"', '"n","u",""', '"","",""', '"n","u","x"]', '"n","u"]["x"'],
    ];
    for (const args of relayed) for (const head of ['2["launch",', '2["answer",', '23["launch",', '2["launch" ,']) check(`${head}${args}]`);
    // Long literals of escapes, whole or cut short: decided in one pass either way.
    for (const body of ['\\r\\n'.repeat(40_000), `${'a\\"'.repeat(30_000)}\\u00`, '\\\\'.repeat(50_000)]) {
      for (const end of ['"', '', '\\"']) check(`2["launch","n","u","${body}${end}]`);
    }
    // Message strings of any characters, escaped as a client escapes them or in any other valid way.
    const escapedAnyWay = fc.string({ unit: 'binary', maxLength: 30 }).map((s) => `"${[...s].map((c) => (c.length > 1 || /[\w ]/.test(c) ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)).join('')}"`);
    fc.assert(
      fc.property(fc.oneof(
        fc.string({ unit: 'binary', maxLength: 30 }).map((s) => JSON.stringify(s)),
        escapedAnyWay,
        fc.string({ unit: 'binary', maxLength: 30 }).map((s) => `"${s}"`),
        fc.string({ maxLength: 30 }),
      ), (message) => {
        check(`2["launch","n","u",${message}]`);
        check(`2["answer","u",${message}]`);
      }),
      { numRuns: 1000 },
    );
  });
});
