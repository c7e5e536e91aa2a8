/** Command line of `npm run soak -- --minutes N --seed S [...]`. Pure. */
import { ALL_KINDS, type FaultKind } from './schedule.js';

export interface SoakArgs {
  /** Length of the fault window (the workload runs as long); the drain and checks come after it. */
  readonly minutes: number;
  readonly seed: number;
  /** Keep the run's topics, snapshots and logs also when it passes. */
  readonly keep: boolean;
  /** Skip the embedded-log phase (no small filesystem to mount here). */
  readonly embedded: boolean;
  /** Skip broker and Redis restarts (for a machine whose servers the soak must not touch). */
  readonly serviceFaults: boolean;
  /** Only these fault kinds (to replay one kind of fault); all when absent. */
  readonly faults?: readonly FaultKind[];
}

export const USAGE = `usage: npm run soak -- --minutes N --seed S [--keep] [--no-embedded] [--no-service-faults] [--faults K,K]
  --minutes N           length of the workload and fault window, 1 to 1440 (default 3); a drain and checks follow
  --seed S              seed of the fault schedule and the workload, an integer 0 to 4294967295 (default: random, printed)
  --keep                keep topics, snapshots and logs also when every check passes
  --no-embedded         skip the embedded-log phase (kill -9 during compaction, full disk)
  --no-service-faults   skip broker and Redis restarts and the Redis outage
  --faults K,K          inject only these kinds: kill9, pause, graceful-restart, broker-restart,
                        redis-restart, redis-outage, compaction-kill, disk-full`;

export class ArgsError extends Error {}

export function parseArgs(argv: readonly string[], randomSeed: () => number = () => Math.floor(Math.random() * 2 ** 32)): SoakArgs {
  let minutes = 3;
  let seed: number | undefined;
  let keep = false;
  let embedded = true;
  let serviceFaults = true;
  let faults: FaultKind[] | undefined;
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new ArgsError(`${flag} needs a value\n${USAGE}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    switch (flag) {
      case '--minutes': {
        const text = inline ?? value(i++, flag);
        const n = Number(text);
        if (!/^\d+(\.\d+)?$/.test(text) || !(n >= 1 && n <= 1440)) throw new ArgsError(`--minutes: "${text}" is not a number from 1 to 1440\n${USAGE}`);
        minutes = n;
        break;
      }
      case '--seed': {
        const text = inline ?? value(i++, flag);
        const n = Number(text);
        if (!/^\d+$/.test(text) || n > 0xffffffff) throw new ArgsError(`--seed: "${text}" is not an integer from 0 to 4294967295\n${USAGE}`);
        seed = n;
        break;
      }
      case '--keep':
        keep = true;
        break;
      case '--no-embedded':
        embedded = false;
        break;
      case '--no-service-faults':
        serviceFaults = false;
        break;
      case '--faults': {
        const text = inline ?? value(i++, flag);
        const kinds = text.split(',').map((k) => k.trim()).filter((k) => k !== '');
        const unknown = kinds.filter((k) => !(ALL_KINDS as readonly string[]).includes(k));
        if (kinds.length === 0 || unknown.length > 0) throw new ArgsError(`--faults: unknown kind "${unknown[0] ?? text}"\n${USAGE}`);
        faults = kinds as FaultKind[];
        break;
      }
      case '--help':
      case '-h':
        throw new ArgsError(USAGE);
      default:
        throw new ArgsError(`unknown argument "${arg}"\n${USAGE}`);
    }
  }
  const seedOf = seed ?? randomSeed() >>> 0;
  return faults ? { minutes, seed: seedOf, keep, embedded, serviceFaults, faults } : { minutes, seed: seedOf, keep, embedded, serviceFaults };
}

/** The command that replays a run. */
export function replayCommand(args: SoakArgs): string {
  const extra = [args.embedded ? '' : ' --no-embedded', args.serviceFaults ? '' : ' --no-service-faults', args.faults ? ` --faults ${args.faults.join(',')}` : ''].join('');
  return `npm run soak -- --minutes ${args.minutes} --seed ${args.seed}${extra}`;
}
