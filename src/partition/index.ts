/** The partition core: one owner per hosted partition (active or standby) and the host that holds them. */
export { PARTITION_ROLES, type PartitionRole, type PartitionStatus, type PartitionDirectory, type InputWatch, type ServiceHealth } from './status.js';
export { InputProgress, type InputWaitOutcome } from './input-progress.js';
export { ALLOWED_MOVES, isAllowedMove } from './lifecycle.js';
export { PartitionOwner, type OwnerContext, type PartitionObserver, type ProcessingOptions } from './owner.js';
export { PartitionHost, type BatchOutcome, type HostOptions } from './host.js';
export { restorePartition, type PartitionCopy, type RestoreRequest, type Restored, type RestoreSource } from './restore.js';
