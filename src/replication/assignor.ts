/**
 * Partition assignment for farad's consumer group. Pure: the Kafka group leader calls it with
 * every member's report and sends the result back through the group protocol.
 *
 * farad partition p is partition p of *every* input topic (co-partitioning), so a partition is
 * assigned whole. Placement is balanced (active counts differ by at most one) and sticky: a
 * member keeps what it held unless balance requires a move, and a partition that must move
 * goes first to a member that already holds it warm.
 */

export interface MemberReport {
  readonly memberId: string;
  /** Stable identity across restarts (FARAD_INSTANCE_ID); falls back to memberId. */
  readonly instanceId: string;
  /** Partitions the member is active for now. */
  readonly active: readonly number[];
  /** Partitions the member holds warm (standby copies), with how far it has read their changelog. */
  readonly warm?: Readonly<Record<number, number>>;
}

/** Active partitions per member id. */
export type Assignment = Map<string, number[]>;

export function assignPartitions(partitions: number, members: readonly MemberReport[]): Assignment {
  const sorted = [...members].sort((a, b) => a.instanceId.localeCompare(b.instanceId) || a.memberId.localeCompare(b.memberId));
  const result: Assignment = new Map(sorted.map((m) => [m.memberId, []]));
  if (sorted.length === 0) return result;

  const base = Math.floor(partitions / sorted.length);
  let withExtra = partitions % sorted.length; // how many members may hold base + 1
  const owner = new Map<number, string>();

  // 1. Keep current ownership, up to each member's fair share; the first claim wins a partition.
  const capacity = (memberId: string): number => {
    const held = result.get(memberId)!.length;
    return held < base ? 1 : held === base && withExtra > 0 ? 1 : 0;
  };
  const take = (memberId: string, partition: number): void => {
    const held = result.get(memberId)!;
    if (held.length === base) withExtra--;
    held.push(partition);
    owner.set(partition, memberId);
  };
  for (const member of sorted) {
    for (const p of [...member.active].sort((a, b) => a - b)) {
      if (p < 0 || p >= partitions || owner.has(p)) continue;
      if (capacity(member.memberId) > 0) take(member.memberId, p);
    }
  }

  // 2. Place the rest: warmest member with room first, then the least loaded.
  for (let p = 0; p < partitions; p++) {
    if (owner.has(p)) continue;
    const candidates = sorted.filter((m) => capacity(m.memberId) > 0);
    candidates.sort((a, b) => {
      const warmA = a.warm?.[p] ?? -1;
      const warmB = b.warm?.[p] ?? -1;
      if (warmA !== warmB) return warmB - warmA;
      return result.get(a.memberId)!.length - result.get(b.memberId)!.length;
    });
    const chosen = candidates[0];
    if (chosen) take(chosen.memberId, p);
  }
  for (const held of result.values()) held.sort((a, b) => a - b);
  return result;
}

export interface StandbyCandidate {
  /** The group member (one per worker); defaults to `instanceId` (one member per instance). */
  readonly memberId?: string | undefined;
  /** The failure domain copies must differ by: workers of one instance share it. */
  readonly instanceId: string;
  readonly rack?: string | undefined;
  /** Partitions it holds warm now, with their changelog offsets (keeps placement sticky). */
  readonly warm?: Readonly<Record<number, number>>;
}

/**
 * Places `replicas` standby copies of every partition on members of instances other than its
 * active owner's: on distinct instances, on racks other than the owner's and each other's when
 * racks tell them apart; then on the member `assignPartitions` would give the partition if its
 * owner's instance died (so failover finds the copy there even when balance limits where
 * partitions may go); then sticky (a member that holds a partition warm keeps it); then least
 * loaded. `active` and the result are keyed by member id. Every member computes this from the
 * same group view, so all agree without another round trip.
 */
export function placeStandbys(
  partitions: number,
  members: readonly StandbyCandidate[],
  active: ReadonlyMap<string, readonly number[]>,
  replicas: number,
): Map<string, number[]> {
  const sorted = members
    .map((m) => ({ ...m, memberId: m.memberId ?? m.instanceId }))
    .sort((a, b) => a.instanceId.localeCompare(b.instanceId) || a.memberId.localeCompare(b.memberId));
  const result = new Map<string, number[]>(sorted.map((m) => [m.memberId, []]));
  const load = new Map<string, number>(sorted.map((m) => [m.memberId, active.get(m.memberId)?.length ?? 0]));
  const instanceOf = new Map(sorted.map((m) => [m.memberId, m.instanceId]));
  const ownerOf = new Map<number, string>(); // partition → owning instance
  for (const [memberId, owned] of active) for (const p of owned) ownerOf.set(p, instanceOf.get(memberId) ?? memberId);
  const rackOf = new Map(sorted.map((m) => [m.instanceId, m.rack ?? m.instanceId]));
  const instances = new Set(sorted.map((m) => m.instanceId)).size;
  const target = failoverTargets(partitions, sorted, active);

  for (let p = 0; p < partitions; p++) {
    const owner = ownerOf.get(p);
    const chosen: string[] = []; // instances holding a copy
    const usedRacks = new Set<string>(owner !== undefined ? [rackOf.get(owner) ?? owner] : []);
    const want = Math.min(replicas, instances - (owner !== undefined ? 1 : 0));
    while (chosen.length < want) {
      const candidates = sorted.filter((m) => m.instanceId !== owner && !chosen.includes(m.instanceId));
      candidates.sort((a, b) => {
        const newRackA = usedRacks.has(rackOf.get(a.instanceId)!) ? 1 : 0;
        const newRackB = usedRacks.has(rackOf.get(b.instanceId)!) ? 1 : 0;
        if (newRackA !== newRackB) return newRackA - newRackB;
        const targetA = target.get(p) === a.memberId ? 0 : 1;
        const targetB = target.get(p) === b.memberId ? 0 : 1;
        if (targetA !== targetB) return targetA - targetB;
        const warmA = a.warm?.[p] !== undefined ? 0 : 1;
        const warmB = b.warm?.[p] !== undefined ? 0 : 1;
        if (warmA !== warmB) return warmA - warmB;
        return load.get(a.memberId)! - load.get(b.memberId)! || a.memberId.localeCompare(b.memberId);
      });
      const pick = candidates[0];
      if (!pick) break;
      chosen.push(pick.instanceId);
      usedRacks.add(rackOf.get(pick.instanceId)!);
      load.set(pick.memberId, load.get(pick.memberId)! + 1);
      result.get(pick.memberId)!.push(p);
    }
  }
  return result;
}

/** Where each partition would go if its owner's instance alone failed: the assignor run without that instance's members. */
function failoverTargets(
  partitions: number,
  members: ReadonlyArray<{ readonly memberId: string; readonly instanceId: string }>,
  active: ReadonlyMap<string, readonly number[]>,
): Map<number, string> {
  const targets = new Map<number, string>();
  for (const dead of new Set(members.map((m) => m.instanceId))) {
    const orphaned = new Set(members.filter((m) => m.instanceId === dead).flatMap((m) => active.get(m.memberId) ?? []));
    if (orphaned.size === 0) continue;
    const survivors = members
      .filter((m) => m.instanceId !== dead)
      .map((m) => ({ memberId: m.memberId, instanceId: m.instanceId, active: active.get(m.memberId) ?? [] }));
    if (survivors.length === 0) continue;
    for (const [memberId, owned] of assignPartitions(partitions, survivors)) {
      for (const p of owned) if (orphaned.has(p)) targets.set(p, memberId);
    }
  }
  return targets;
}
