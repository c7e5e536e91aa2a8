/** Replication: partition roles, active/standby assignment, standby copies and snapshots. */
export { RoleMachine, IllegalTransitionError, type PartitionRole } from './roles.js';
export { assignPartitions, placeStandbys, type Assignment, type MemberReport, type StandbyCandidate } from './assignor.js';
export { RedisSnapshotStore, type RedisSnapshotOptions } from './redis-snapshots.js';
export type { SnapshotStore, SnapshotInfo } from './interfaces.js';
export { StandbyManager, type ChangelogFollower, type FollowedRecord, type StandbyManagerOptions } from './standby-manager.js';
