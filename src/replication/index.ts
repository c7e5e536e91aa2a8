/**
 * Replication: partition roles today; assignment of active and standby partitions, standby
 * tailing, failover and Redis snapshots build on these interfaces.
 */
export { RoleMachine, IllegalTransitionError, type PartitionRole } from './roles.js';
export type { SnapshotStore, PartitionSnapshot, AssignmentPlan, MemberState } from './interfaces.js';
