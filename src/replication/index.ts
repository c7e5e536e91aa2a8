/** Replication: membership policy (active and standby placement, the group view) and snapshots. */
export { assignPartitions, placeStandbys, type Assignment, type MemberReport, type StandbyCandidate } from './assignor.js';
export { ReplicationMembership, type InstanceReport, type Member, type ReplicationOptions } from './membership.js';
export { RedisSnapshotStore, type RedisSnapshotOptions } from './redis-snapshots.js';
export { createSnapshotStore, Snapshots, type SnapshotObserver, type SnapshotStoreSettings } from './snapshots.js';
export type { SnapshotStore, SnapshotInfo } from './interfaces.js';
