/**
 * The client suite against two server processes on one real redis-server:
 * sharers on node 0, joiners on node 1, so every signal crosses nodes.
 * @module
 */
import { clusterTopology } from '../support/cluster.js';
import { clientSuite } from './client-suite.js';

clientSuite('cluster', clusterTopology);
