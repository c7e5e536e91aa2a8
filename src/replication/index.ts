/**
 * Replication: partition roles and assignment; standby tailing, failover and Redis snapshots
 * build on these interfaces.
 */
export { RoleMachine, IllegalTransitionError, type PartitionRole } from './roles.js';
export { assignPartitions, type Assignment, type MemberReport } from './assignor.js';
export type { SnapshotStore, PartitionSnapshot, AssignmentPlan, MemberState } from './interfaces.js';
