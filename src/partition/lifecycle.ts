import type { PartitionRole } from './status.js';

/**
 * The moves a partition owner may make. `standby → fencing` is failover from a warm copy;
 * `active → fencing` is an owner that was fenced but still holds the partition taking it back;
 * `restoring → fencing` retries the takeover after a transient failure; `closing → standby`
 * keeps a partition that moved away as a warm copy; `closing → fencing` takes back a partition
 * granted again while it was closing.
 */
export const ALLOWED_MOVES: Readonly<Record<PartitionRole, readonly PartitionRole[]>> = {
  standby: ['fencing', 'closing'],
  fencing: ['restoring', 'fencing', 'closing', 'failed'],
  restoring: ['active', 'fencing', 'closing', 'failed'],
  active: ['fencing', 'closing', 'failed'],
  failed: ['closing'],
  closing: ['standby', 'fencing'],
};

export function isAllowedMove(from: PartitionRole, to: PartitionRole): boolean {
  return ALLOWED_MOVES[from].includes(to);
}
