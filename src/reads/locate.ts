import { PartitionUnavailableError } from '../errors.js';
import type { PartitionDirectory } from '../partition/index.js';
import type { PartitionState } from '../state/index.js';
import { workerOfUrl } from '../workers/address.js';
import type { ReadMode } from './wire.js';

/** A committed state here to read a partition from; `stale` when it is a standby copy. */
export interface LocalCopy {
  readonly kind: 'local';
  readonly state: PartitionState;
  readonly stale: boolean;
}

/** Where one partition is read: from a committed state here, or from the instance that owns it. */
export type Location = LocalCopy | { readonly kind: 'remote'; readonly url: string };

/**
 * Decides where a partition is read: here when it is active here; from a standby copy here when
 * the caller accepts stale data; otherwise from its owner. A request another instance forwarded
 * may still go to the sibling worker that owns the partition, but never to a third instance; one
 * a sibling forwarded is answered here. Throws PartitionUnavailableError, naming the partition
 * and its role here, when no one can serve it now.
 */
export function locate(directory: PartitionDirectory, partition: number, mode: ReadMode): Location {
  const copy = copyHere(directory, partition, mode.staleOk);
  if (copy) return copy;
  const url = mode.fromSibling ? undefined : directory.ownerUrl(partition);
  if (url !== undefined && (!mode.forwarded || workerOfUrl(url) !== undefined)) return { kind: 'remote', url };
  throw unavailable(directory, partition);
}

/** Like `locate`, for a read that must be answered here (another instance chose this one). */
export function locateHere(directory: PartitionDirectory, partition: number, mode: ReadMode): LocalCopy {
  const copy = copyHere(directory, partition, mode.staleOk);
  if (copy) return copy;
  throw unavailable(directory, partition);
}

function copyHere(directory: PartitionDirectory, partition: number, staleOk: boolean): LocalCopy | undefined {
  const here = directory.local(partition);
  if (here?.state === undefined) return undefined;
  if (here.role === 'active') return { kind: 'local', state: here.state, stale: false };
  if (here.role === 'standby' && staleOk) return { kind: 'local', state: here.state, stale: true };
  return undefined;
}

function unavailable(directory: PartitionDirectory, partition: number): PartitionUnavailableError {
  const role = directory.local(partition)?.role;
  const hint = `retry shortly${directory.clustered ? ', or accept a stale answer with ?stale=true' : ''}`;
  const message =
    role !== undefined
      ? `partition ${partition} is ${role} here; ${hint}`
      : `partition ${partition} has no reachable owner right now (moving between instances); ${hint}`;
  return new PartitionUnavailableError(message, role, { partition });
}
