/**
 * A partition's role on this instance. `standby` (a warm backup tailing the changelog) is
 * reserved for primary/backup replication.
 */
export type PartitionRole = 'restoring' | 'standby' | 'active' | 'closing' | 'closed';

const ALLOWED: Readonly<Record<PartitionRole, readonly PartitionRole[]>> = {
  restoring: ['active', 'standby', 'closing'],
  standby: ['restoring', 'active', 'closing'],
  active: ['closing'],
  closing: ['closed', 'standby'],
  closed: [],
};

export class IllegalTransitionError extends Error {
  constructor(
    readonly partition: number,
    readonly from: PartitionRole,
    readonly to: PartitionRole,
  ) {
    super(`partition ${partition}: cannot go from ${from} to ${to} (allowed from ${from}: ${ALLOWED[from].join(', ') || 'none'})`);
    this.name = 'IllegalTransitionError';
  }
}

/** The one place a partition's role changes; refuses illegal moves and reports legal ones. */
export class RoleMachine {
  private current: PartitionRole;

  constructor(
    readonly partition: number,
    initial: PartitionRole,
    private readonly onChange: (partition: number, from: PartitionRole, to: PartitionRole) => void = () => {},
  ) {
    this.current = initial;
  }

  get role(): PartitionRole {
    return this.current;
  }

  transition(to: PartitionRole): void {
    const from = this.current;
    if (!ALLOWED[from].includes(to)) throw new IllegalTransitionError(this.partition, from, to);
    this.current = to;
    this.onChange(this.partition, from, to);
  }
}
