export { FaradMetrics, METRIC } from './metrics.js';
