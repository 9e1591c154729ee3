#!/usr/bin/env node
/**
 * The command: flags and environment -> validated config -> running server,
 * stopped gracefully on SIGTERM or SIGINT.
 * @module
 */
import { ConfigError, helpText, loadConfig } from './server/config.js';
import { startServer } from './server/server.js';

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
