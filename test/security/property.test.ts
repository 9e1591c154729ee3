import { memoryTopology } from '../support/topology.js';
import { propertySuite } from './property-suite.js';

propertySuite('memory', memoryTopology, { numRuns: 40 });
