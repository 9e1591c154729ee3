/**
 * `bench/profile.ts perf` books each on-CPU sample where the cluster-cost
 * analysis in bench/RESULTS.md says it does: a sample under the collector
 * is GC wherever it was, a kernel sample goes by its system call, and a
 * user sample goes to the owner of its innermost JavaScript frame; samples
 * are kept apart per process.
 * @module
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { perfCategory, perfSamples } from '../bench/profile.js';

// Shaped as `perf script -F pid,ip,sym,dso` prints a call-graph sample: the pid, then the frames, leaf first.
const sample = (pid: number, frames: string[]): string => ` ${pid} \n${frames.map((f) => `\t    7f00${f.length.toString(16)} ${f}`).join('\n')}\n\n`;

const write = ['tcp_sendmsg ([kernel.kallsyms])', 'ksys_write ([kernel.kallsyms])', '__GI___libc_write (/usr/lib/x86_64-linux-gnu/libc.so.6)'];
const sendText = 'JS:*sendText file:///work/main/dist/server/direct-socket.js:403:13+0xac2 (/tmp/perf-11.map)';
const decoder = 'JS:*write /work/main/node_modules/ioredis/built/resp/decoder.js:77:10+0x3b8 (/tmp/perf-11.map)';
const anonymous = 'JS:* /work/main/node_modules/ioredis/built/DataHandler.js:27:46+0x87 (/tmp/perf-11.map)';
const scavenge = 'v8::internal::ScavengerCollector::CollectGarbage (/usr/bin/node)';

describe('bench/profile.ts perf', () => {
  it('books GC before anything else, kernel samples by their system call, user samples by the innermost JavaScript frame', () => {
    assert.equal(perfCategory(['Builtins_LoadIC (/usr/bin/node)', scavenge, sendText]), 'GC');
    assert.equal(perfCategory([...write, sendText]), 'kernel: write');
    assert.equal(perfCategory(['tcp_recvmsg ([kernel.kallsyms])', 'ksys_read ([kernel.kallsyms])']), 'kernel: read');
    assert.equal(perfCategory(['do_epoll_wait ([kernel.kallsyms])', 'epoll_pwait (/usr/lib/x86_64-linux-gnu/libc.so.6)']), 'kernel: epoll and scheduling');
    assert.equal(perfCategory(['Builtins_LoadIC (/usr/bin/node)', decoder, sendText]), 'ioredis');
    assert.equal(perfCategory(['Builtins_KeyedLoadIC (/usr/bin/node)', anonymous]), 'ioredis');
    assert.equal(perfCategory(['v8::String::Utf8Length (/usr/bin/node)', sendText]), 'dist/server/direct-socket.js');
    assert.equal(perfCategory(['uv__io_poll (/usr/bin/node)', 'uv_run (/usr/bin/node)']), '(no JavaScript frame: the event loop, V8, the compiler)');
  });

  it('counts samples per process and category', () => {
    const text = sample(11, [...write, sendText]) + sample(11, [scavenge]) + sample(12, [decoder]) + sample(11, [...write, sendText]);
    const counts = perfSamples(text);
    assert.deepEqual([...counts.keys()].sort(), [11, 12]);
    assert.deepEqual(Object.fromEntries(counts.get(11)!), { 'kernel: write': 2, GC: 1 });
    assert.deepEqual(Object.fromEntries(counts.get(12)!), { ioredis: 1 });
  });
});
