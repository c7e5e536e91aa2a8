/**
 * The JSON the console page reads, as the server writes it (docs: /tmp/console-contract.md).
 * Imported type-only by the server side too, so nothing here may touch the DOM.
 */

export type PartitionRole = 'standby' | 'fencing' | 'restoring' | 'active' | 'closing' | 'failed';

export interface ClusterView {
  readonly app: string;
  readonly transport: 'kafka' | 'embedded';
  readonly partitions: number;          // partition count
  readonly replicas: number;            // standby copies wanted per partition (k)
  readonly at: number;                  // server time of the gathering, ms since epoch
  readonly servedBy: string;            // instance id that gathered
  readonly instances: readonly InstanceSummary[];
  readonly unreachable: readonly { readonly instanceId: string; readonly url?: string; readonly error: string }[];
  readonly partitionRows: readonly PartitionRow[];   // exactly one per partition, 0..partitions-1
  readonly events: readonly { readonly eventType: string; readonly outcome: 'ok' | 'failed'; readonly total: number }[];
  readonly ingested: readonly { readonly eventType: string; readonly total: number }[];   // accepted by POST /events
  readonly deadLetters: readonly { readonly reason: string; readonly total: number }[];   // counters since start of the instances
  readonly timers: { readonly pending: number; readonly fired: readonly { readonly timer: string; readonly total: number }[] };
  readonly snapshots: { readonly ok: number; readonly failed: number; readonly skipped: number };
  readonly alerts: readonly Alert[];
}

export interface InstanceSummary {
  readonly instanceId: string;
  readonly url?: string;
  readonly ready: boolean;
  readonly failure?: string;
  readonly workers: number;
  readonly startedAt: number;           // ms since epoch
  readonly active: readonly number[];   // partitions active here
  readonly standby: readonly number[];
  readonly rebalances: number;
}

export interface PartitionHolder {
  readonly instanceId: string;
  readonly role: PartitionRole;
  readonly reason?: string;             // why failed
}

export interface PartitionRow {
  readonly partition: number;
  /** The instance holding it in a leased role (active, fencing, restoring, closing, failed); none: unowned. */
  readonly owner?: string;
  readonly role: PartitionRole | 'unowned';
  readonly standbys: readonly string[];  // instance ids holding a standby copy
  readonly holders: readonly PartitionHolder[];
  readonly lag?: number;                 // input records not yet committed (active owner)
  readonly standbyLag?: number;          // the most any standby is behind (changelog records)
  readonly eventsTotal: number;          // input events handled on it (ok + failed), counter
  readonly restoreProgress?: number;     // 0..1, latest restore on its owner
  readonly restoreRate?: number;         // records/s of that restore
  readonly lastCommitAt?: number;        // ms since epoch of its latest committed batch
  readonly snapshotAgeSeconds?: number;  // age of its latest snapshot (undefined: none taken / no Redis)
  readonly timersPending?: number;
  readonly commitFailures: number;
}

export interface Alert {
  readonly name: string;                 // the alert rule's name, e.g. FaradPartitionWithoutActiveOwner
  readonly severity: 'critical' | 'warning';
  readonly state: 'pending' | 'firing';  // pending: condition true, its `for:` not yet elapsed (as this console watched)
  readonly since: number;                // ms since epoch the condition has held
  readonly summary: string;
  readonly labels: Readonly<Record<string, string>>;   // e.g. { partition: "3" } or { reason: "handler_error" }
}

// ---- the other answers the page reads (shapes seen on a running farad) ----------------------------

/** One record as `farad tail` prints it; anything not named here is shown as JSON. */
export interface RecordLine {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly key: string | null;
  readonly type?: string;
  readonly eventType?: string;
  readonly value?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  readonly deadLetter?: {
    readonly reason: string;
    readonly error?: string;
    readonly eventType?: string | null;
    readonly sourceTopic?: string;
    readonly sourcePartition?: number;
    readonly sourceOffset?: number;
    readonly source?: { readonly topic: string; readonly partition: number; readonly offset: number } | null;
  };
}

export interface DeadLetterPage {
  readonly items: readonly RecordLine[];
}

export interface TableRow {
  readonly key: string;
  readonly partition?: number;
  readonly value: unknown;
}

export interface TablePage {
  readonly table: string;
  readonly items: readonly TableRow[];
  readonly next: string | null;
}

/** Every error answer: farad writes the code as `error` (the contract's `code` is accepted too). */
export interface ErrorBody {
  readonly error?: string;
  readonly code?: string;
  readonly message: string;
  readonly field?: string;
  readonly errors?: readonly { readonly field: string; readonly message: string }[];
}
