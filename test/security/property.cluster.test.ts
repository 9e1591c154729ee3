/**
 * The relay properties of property-suite.ts against two server processes on
 * one real redis-server: clients spread over both nodes, so most relays
 * cross nodes, and every count must return to zero on both.
 */
import { clusterTopology } from '../support/cluster.js';
import { propertySuite } from './property-suite.js';

propertySuite('cluster', clusterTopology, { numRuns: 25 });
