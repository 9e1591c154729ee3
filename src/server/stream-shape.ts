/**
 * Sizes the state objects of Node's writable streams to hold the slot
 * every one of them gains on its first completed write.
 *
 * V8 settles the in-object size of a constructor's instances from the
 * first few it makes (in-object slack tracking). Node's WritableState adds
 * its write-callback slot only when a write completes, which none of the
 * first few do in a server that has not accepted a connection yet: then
 * every TCP socket and every ws Receiver (two WritableStates per websocket)
 * holds that slot in a separate 40-byte property array, for its whole life.
 * Completing a write on a few throwaway streams first, before any other
 * stream exists, puts the slot inside the object instead (8 bytes): about
 * 64 bytes less per idle websocket connection. Import this module before
 * anything that makes streams; where streams were made already it changes
 * nothing, and it never changes behaviour.
 * @module
 */
import { Writable } from 'node:stream';

const one = Buffer.alloc(1);
function write(_chunk: unknown, _encoding: unknown, done: () => void): void {
  done();
}
// More than V8's slack-tracking count (7 instances).
for (let i = 0; i < 8; i++) new Writable({ write }).write(one);
