/**
 * The console: a web page that watches and operates a running app (`GET /console`), and the
 * gathering behind it (every instance's partitions, counters and the alerts that would fire).
 */
export { ClusterConsole, INSTANCE_REPORT_PATH, type ConsoleOptions } from './console.js';
export { ConsoleAssets, type Asset } from './assets.js';
export { clusterViewOf, type AppFacts, type Unreachable } from './cluster-view.js';
export { AlertWatch, ALERT_NAMES } from './alerts.js';
export { instanceReportOf, REPORTED_METRICS, type InstanceReport, type MetricValues } from './instance-report.js';
