export * from './clock.js';
export * from './delivery.js';
export * from './registry.js';
export * from './share-policy.js';
export * from './signaling-core.js';
export * from './signaling-error.js';
export * from './types.js';
