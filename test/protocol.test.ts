import { errorsSuite } from './protocol/errors-suite.js';
import { eventsSuite } from './protocol/events-suite.js';
import { hostileSuite } from './protocol/hostile-suite.js';
import { lifecycleSuite } from './protocol/lifecycle-suite.js';
import { observabilitySuite } from './protocol/observability-suite.js';
import { relaySuite } from './protocol/relay-suite.js';
import { routingSuite } from './protocol/routing-suite.js';
import { memoryTopology } from './support/topology.js';

relaySuite('memory', memoryTopology);
eventsSuite('memory', memoryTopology);
routingSuite('memory', memoryTopology);
lifecycleSuite('memory', memoryTopology);
errorsSuite('memory', memoryTopology);
hostileSuite('memory', memoryTopology);
observabilitySuite('memory', memoryTopology);
