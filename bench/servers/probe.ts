/**
 * Preloaded (`--import`) into every server the benchmark starts, the same
 * for each, so memory is read the same way everywhere: over the IPC channel
 * the benchmark opened, after two full garbage collections (`--expose-gc`).
 * It also lets the benchmark end a server cleanly (so `--cpu-prof` output is
 * written) and take heap snapshots. A server whose benchmark went away exits.
 * @module
 */
import { writeHeapSnapshot } from 'node:v8';

interface ProbeRequest {
  id: number;
  probe: 'memory' | 'snapshot' | 'exit';
  path?: string;
}

const gc = (globalThis as { gc?: () => void }).gc;

if (process.send) {
  const reply = (message: object): void => {
    process.send?.(message);
  };
  process.on('message', (request: ProbeRequest) => {
    switch (request.probe) {
      case 'memory': {
        gc?.();
        gc?.();
        const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
        reply({ id: request.id, rss, heapUsed, heapTotal, external, arrayBuffers });
        return;
      }
      case 'snapshot':
        writeHeapSnapshot(request.path);
        reply({ id: request.id });
        return;
      case 'exit':
        process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.channel?.unref();
}
