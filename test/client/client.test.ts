import { clientSuite } from './client-suite.js';
import { memoryTopology } from '../support/topology.js';

clientSuite('memory', memoryTopology);
