import { relaySuite } from './protocol/relay-suite.js';
import { memoryTopology } from './support/topology.js';

relaySuite('memory', memoryTopology);
