import { errorsSuite } from './protocol/errors-suite.js';
import { eventsSuite } from './protocol/events-suite.js';
import { hostileSuite } from './protocol/hostile-suite.js';
import { lifecycleSuite } from './protocol/lifecycle-suite.js';
import { observabilitySuite } from './protocol/observability-suite.js';
import { relaySuite } from './protocol/relay-suite.js';
import { routingSuite } from './protocol/routing-suite.js';
import { memoryTopology, type TopologyFactory } from './support/topology.js';

// Websocket clients are served by the direct engine by default; the same
// suites run again with socket.io serving them, the reference for the wire.
const socketIoEngine: TopologyFactory = (settings = {}) => memoryTopology({ wsEngine: 'socket.io', ...settings });

for (const [label, topology] of [
  ['memory', memoryTopology],
  ['memory, socket.io engine', socketIoEngine],
] as const) {
  relaySuite(label, topology);
  eventsSuite(label, topology);
  routingSuite(label, topology);
  lifecycleSuite(label, topology);
  errorsSuite(label, topology);
  hostileSuite(label, topology);
  observabilitySuite(label, topology);
}
