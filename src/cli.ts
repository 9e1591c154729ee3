#!/usr/bin/env node
/**
 * The command: flags and environment -> validated config -> running server,
 * stopped gracefully on SIGTERM or SIGINT.
 * @module
 */
import { setFlagsFromString } from 'node:v8';
import { ConfigError, helpText, loadConfig } from './server/config.js';
import { startServer } from './server/server.js';

// V8 sets the old generation's next limit from how fast it filled: a
// server's fills slowly (only route state outlives a young collection, a
// uid string per join), so V8 may settle on a limit ~10 % above the live
// heap and mark-compact it every half second under load, each a 5-6 ms
// pause that every message in flight waits out (the p99 of relay latency
// at 50 pairs went from ~3 to ~4.5 ms in runs where it did). Letting the
// old generation double before a full collection makes those rare; the
// live heap, and so memory per idle connection, is unchanged. A
// `--heap-growing-percent` given to node wins.
if (!process.execArgv.some((flag) => flag.startsWith('--heap-growing-percent') || flag.startsWith('--heap_growing_percent'))) {
  setFlagsFromString('--heap-growing-percent=100');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${helpText('sigserve')}\n`);
    return;
  }
  let config;
  try {
    config = loadConfig({ argv, env: process.env });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`sigserve: ${error.message}\nRun with --help for every setting.\n`);
    process.exitCode = 2;
    return;
  }
  const server = await startServer({ config });
  const stop = (signal: NodeJS.Signals): void => {
    server.logger.info({ signal }, 'signal received');
    const force = setTimeout(() => {
      server.logger.warn('graceful shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeout);
    force.unref();
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        server.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`sigserve: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
