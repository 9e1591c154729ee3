/**
 * The server package: start a signaling server from code.
 *
 * ```ts
 * import { startServer, loadConfig } from 'sigserve';
 * const server = await startServer({ config: loadConfig({ overrides: { port: 0 } }) });
 * ```
 * @module
 */
export { startServer, VERSION, type RunningServer, type ServerOptions } from './server/server.js';
export { loadConfig, helpText, ConfigError, type Config, type LogLevel } from './server/config.js';
export { SignalingCore, type CoreLimits, type SocketSink } from './core/signaling-core.js';
export type { Registry } from './core/registry.js';
export type { Delivery } from './core/delivery.js';
export * from './protocol/index.js';
