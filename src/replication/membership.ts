import type { GroupMember, MembershipPolicy } from '../streams/index.js';
import { workerUrl } from '../workers/address.js';
import { assignPartitions, placeStandbys, type MemberReport, type StandbyCandidate } from './assignor.js';

/** What an instance tells the group about itself (JSON in the member's report). */
export interface InstanceReport {
  readonly instanceId: string;
  /** Partitions active here now (assignment stays sticky). */
  readonly active: readonly number[];
  /** Warm copies held here, with their changelog offsets (failover goes to the warmest). */
  readonly warm: Readonly<Record<number, number>>;
  readonly rack?: string;
  /** Where other instances reach this one's HTTP API. */
  readonly url?: string;
  /** Which worker process of the instance this member is (absent: the instance has one). */
  readonly worker?: number;
}

/** A member as the others know it. */
export interface Member {
  readonly instanceId: string;
  readonly url: string | undefined;
  readonly worker: number | undefined;
}

export interface ReplicationOptions {
  readonly partitions: number;
  readonly instanceId: string;
  /** This member's worker index when the instance runs several worker processes. */
  readonly worker?: number | undefined;
  /** Standby copies per partition (k). */
  readonly replicas: number;
  readonly rack?: string | undefined;
  /** Where other instances reach this one (known once HTTP listens). */
  readonly advertisedUrl: () => string | undefined;
  /** What this instance holds now: active partitions and warm copies. */
  readonly holdings: () => { active: readonly number[]; warm: Readonly<Record<number, number>> };
  /** The group settled: partitions this member keeps standby copies of, and those active here. */
  readonly onStandbys: (standbys: readonly number[], activeHere: ReadonlySet<number>) => void;
  readonly onRebalance?: () => void;
}

/**
 * farad's membership policy, carried by any transport: balanced, sticky, warm-first active
 * placement (assignPartitions), standby placement that follows failover (placeStandbys), and
 * the group view reads use to find a partition's owner. Every member computes the same view
 * from the same settled group, so no extra round trip is needed. A member is one worker process;
 * workers of one instance share its id, its URL and its failure domain.
 */
export class ReplicationMembership implements MembershipPolicy {
  /** The active owner of every partition, as of the last settled group. */
  private owners: ReadonlyMap<number, Member> = new Map();
  /** Every instance in the last settled group (workers of one instance counted once), by id. */
  private members: ReadonlyMap<string, { readonly instanceId: string; readonly url: string | undefined }> = new Map();

  constructor(private readonly options: ReplicationOptions) {}

  report(): Buffer {
    const { active, warm } = this.options.holdings();
    const url = this.options.advertisedUrl();
    const report: InstanceReport = {
      instanceId: this.options.instanceId,
      active: [...active],
      warm,
      ...(this.options.rack ? { rack: this.options.rack } : {}),
      ...(url ? { url } : {}),
      ...(this.options.worker !== undefined ? { worker: this.options.worker } : {}),
    };
    return Buffer.from(JSON.stringify(report));
  }

  assign(members: ReadonlyArray<{ memberId: string; report: Buffer }>): Map<string, number[]> {
    const reports: MemberReport[] = members.map(({ memberId, report }) => {
      const own = decodeReport(report);
      return { memberId, instanceId: own.instanceId ?? memberId, active: own.active ?? [], ...(own.warm ? { warm: own.warm } : {}) };
    });
    return assignPartitions(this.options.partitions, reports);
  }

  settled(members: readonly GroupMember[], self: string): void {
    const candidates: StandbyCandidate[] = [];
    const active = new Map<string, number[]>();
    const activeByPartition = new Map<number, Member>();
    const instances = new Map<string, { instanceId: string; url: string | undefined }>();
    let activeHere: ReadonlySet<number> = new Set();
    for (const member of members) {
      const own = decodeReport(member.report);
      const instanceId = own.instanceId ?? member.memberId;
      if (!instances.get(instanceId)?.url) instances.set(instanceId, { instanceId, url: own.url });
      candidates.push({ memberId: member.memberId, instanceId, warm: own.warm ?? {}, ...(own.rack ? { rack: own.rack } : {}) });
      active.set(member.memberId, [...member.partitions]);
      for (const p of member.partitions) activeByPartition.set(p, { instanceId, url: own.url, worker: own.worker });
      if (member.memberId === self) activeHere = new Set(member.partitions);
    }
    const placed = placeStandbys(this.options.partitions, candidates, active, this.options.replicas);
    this.owners = activeByPartition;
    this.members = instances;
    this.options.onStandbys(placed.get(self) ?? [], activeHere);
  }

  rebalanced(): void {
    this.options.onRebalance?.();
  }

  /** The instances of the last settled group, this one included, with the URL each reported (the console gathers from them). */
  instances(): Array<{ readonly instanceId: string; readonly url: string | undefined }> {
    return [...this.members.values()].sort((a, b) => a.instanceId.localeCompare(b.instanceId));
  }

  /**
   * Where to read `partition` when it is not active here: the base URL of the other instance that
   * owns it, or the `workerUrl` of the sibling worker that does; undefined when unknown or here.
   */
  ownerUrl(partition: number): string | undefined {
    const owner = this.owners.get(partition);
    if (!owner) return undefined;
    if (owner.instanceId !== this.options.instanceId) return owner.url;
    return owner.worker !== undefined && owner.worker !== this.options.worker ? workerUrl(owner.worker) : undefined;
  }
}

/** A member's report; an unreadable one counts as a member without history. */
function decodeReport(bytes: Buffer): Partial<InstanceReport> {
  try {
    const parsed: unknown = JSON.parse(bytes.toString('utf8') || '{}');
    return parsed !== null && typeof parsed === 'object' ? (parsed as Partial<InstanceReport>) : {};
  } catch {
    return {};
  }
}
