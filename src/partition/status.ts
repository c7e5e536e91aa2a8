import type { PartitionState } from '../state/index.js';
import type { InputWaitOutcome } from './input-progress.js';

/**
 * A hosted partition's role on this instance (the owner's state, by name):
 * `standby` a warm copy tailing the changelog of a partition another instance owns;
 * `fencing` taking over the partition's transactional identity; `restoring` catching up its
 * changelog; `active` processing input; `closing` handing it back; `failed` stopped on an
 * error retrying cannot heal (see `reason`).
 */
export type PartitionRole = 'standby' | 'fencing' | 'restoring' | 'active' | 'closing' | 'failed';

export const PARTITION_ROLES: readonly PartitionRole[] = ['standby', 'fencing', 'restoring', 'active', 'closing', 'failed'];

/** What /readyz, the role metric and the console show of one hosted partition. */
export interface PartitionStatus {
  readonly partition: number;
  readonly role: PartitionRole;
  /** Why a `failed` partition stopped (the error's message), and its error code. */
  readonly reason?: string;
  readonly code?: string;
}

/** This instance's view of where each partition can be read (implemented by the partition host). */
export interface PartitionDirectory {
  /** This instance's holding of a partition, if any: its role and, when readable, its committed state. */
  local(partition: number): { readonly role: PartitionRole; readonly state: PartitionState | undefined } | undefined;
  /** Base URL of another instance that owns the partition now, when known. */
  ownerUrl(partition: number): string | undefined;
  /** True when other instances may hold partitions (forwarding and stale reads make sense). */
  readonly clustered: boolean;
}

/**
 * Waits for input to be committed on partitions active here (implemented by the partition host):
 * reads that wait for a write (`?waitFor=`) wait where the partition's state is.
 */
export interface InputWatch {
  /**
   * Resolves `reached` once `partition`, active here, has committed its input up to `targets`
   * (the next offset per input topic); `moved` when it is not (or no longer) active here;
   * `aborted` when `signal` aborts first.
   */
  awaitInput(partition: number, targets: ReadonlyMap<string, number>, signal: AbortSignal): Promise<InputWaitOutcome>;
  /** The committed input offset of `topic` known for `partition` here, if any (for messages). */
  committedInput(partition: number, topic: string): number | undefined;
}

/** Liveness and readiness of the instance, as the partition host sees them. */
export interface ServiceHealth {
  /** Undefined while the instance works; otherwise why processing stopped for good. */
  failure(): string | undefined;
  /** Ready when every partition this instance owns is active; standbys are listed too. */
  readiness(): { readonly ready: boolean; readonly partitions: readonly PartitionStatus[] };
}
