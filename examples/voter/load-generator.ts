import { seededRandom } from '../../src/procedures/index.js';
import { AREA_CODE_STATES } from './area-codes.js';
import type { Vote } from './schemas.js';

export interface LoadOptions {
  /** Distinct phone numbers; smaller pools produce more over-limit rejections. */
  readonly phones: number;
  /** Share of votes for a contestant that does not exist (rejected as INVALID_CONTESTANT). */
  readonly invalidShare: number;
  readonly seed: number;
}

/** Contestant popularity, so the leaderboard has a shape (VoltDB's client skews votes too). */
const WEIGHTS = [0.3, 0.22, 0.17, 0.13, 0.1, 0.08];

/** Deterministic stream of Voter votes. */
export class VoteGenerator {
  private readonly random: () => number;
  private readonly phones: number[];

  constructor(options: LoadOptions) {
    this.random = seededRandom(options.seed);
    this.phones = Array.from({ length: options.phones }, () => {
      const [areaCode] = AREA_CODE_STATES[Math.floor(this.random() * AREA_CODE_STATES.length)]!;
      return areaCode * 10_000_000 + Math.floor(this.random() * 10_000_000);
    });
    this.invalidShare = options.invalidShare;
  }

  private readonly invalidShare: number;

  next(): Vote {
    const phoneNumber = this.phones[Math.floor(this.random() * this.phones.length)]!;
    if (this.random() < this.invalidShare) return { phoneNumber, contestantNumber: 7 + Math.floor(this.random() * 3) };
    let r = this.random();
    let contestantNumber = WEIGHTS.length;
    for (let i = 0; i < WEIGHTS.length; i++) {
      r -= WEIGHTS[i]!;
      if (r < 0) {
        contestantNumber = i + 1;
        break;
      }
    }
    return { phoneNumber, contestantNumber };
  }
}
