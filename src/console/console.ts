import type { PartitionStatus } from '../partition/index.js';
import type { Peers } from '../reads/index.js';
import type { RecordLine, TopicRecords } from '../streams/index.js';
import { AlertWatch } from './alerts.js';
import { clusterViewOf, type AppFacts, type Unreachable } from './cluster-view.js';
import { instanceReportOf, REPORTED_METRICS, type InstanceIdentity, type InstanceReport, type MetricValues } from './instance-report.js';
import type { ClusterView } from './web/api.js';

/** Where a report of another instance is asked (answered from that instance alone). */
export const INSTANCE_REPORT_PATH = '/console/api/instance';

export interface ConsoleOptions {
  readonly facts: AppFacts;
  /** This instance: its id, URL once known, worker count and start time. */
  readonly identity: () => InstanceIdentity;
  /** This instance's health, all its workers together. */
  readonly health: () => Promise<{ readonly ready: boolean; readonly failure?: string | undefined; readonly partitions: readonly PartitionStatus[] }>;
  /** This instance's values of the REPORTED_METRICS (prom-client JSON), all its workers together. */
  readonly metrics: () => Promise<readonly MetricValues[]>;
  /** The instances of the app as the group last settled (none: this one alone). */
  readonly instances: () => ReadonlyArray<{ readonly instanceId: string; readonly url: string | undefined }>;
  /** Requests to other instances (token, timeout). */
  readonly peers: Peers;
  /** The dead letters, decoded; their topic. */
  readonly records?: TopicRecords | undefined;
  readonly deadLetterTopic: string;
}

/**
 * What the console shows, gathered: this instance's report, every other instance's (asked over
 * HTTP, as reads gather), merged into one ClusterView with the alerts that would fire.
 */
export class ClusterConsole {
  private readonly alerts = new AlertWatch();

  constructor(private readonly options: ConsoleOptions) {}

  /** This instance's report (what another instance's console asks of it). */
  async report(): Promise<InstanceReport> {
    const [health, metrics] = await Promise.all([this.options.health(), this.options.metrics()]);
    return instanceReportOf(
      this.options.identity(),
      health,
      metrics.filter((m) => REPORTED_METRICS.has(m.name)),
      Date.now(),
    );
  }

  /** The app across every instance reachable now. */
  async cluster(): Promise<ClusterView> {
    const self = this.options.identity().instanceId;
    const others = this.options.instances().filter((i) => i.instanceId !== self);
    const unreachable: Unreachable[] = [];
    const asked = await Promise.all(
      others.map(async ({ instanceId, url }): Promise<InstanceReport | undefined> => {
        if (!url) {
          unreachable.push({ instanceId, error: 'the instance reported no URL (replication.advertisedUrl)' });
          return undefined;
        }
        try {
          return await this.options.peers.partial<InstanceReport>(url, INSTANCE_REPORT_PATH);
        } catch (err) {
          unreachable.push({ instanceId, url, error: (err as Error).message });
          return undefined;
        }
      }),
    );
    const reports = [await this.report(), ...asked.filter((r): r is InstanceReport => r !== undefined)];
    const at = Date.now();
    const alerts = this.alerts.evaluate(reports, this.options.facts.partitions, at);
    return clusterViewOf(this.options.facts, reports, unreachable, alerts, at);
  }

  /** The newest `limit` dead letters, newest first. */
  async deadLetters(limit: number): Promise<RecordLine[]> {
    if (!this.options.records) return [];
    return this.options.records.newest(this.options.deadLetterTopic, limit);
  }
}
