/**
 * Voter's vote rule without farad: plain Maps, avsc directly on the single-object bytes. The
 * ceiling the engine-only and Kafka scenarios are compared with. It does the per-record work a
 * hand-written consumer must do to produce the same output records:
 *   check the single-object header, decode the Avro body, apply the rule (valid contestant,
 *   at most maxVotesPerPhone accepted votes per phone, per-contestant totals, area code → state),
 *   encode the VoteAccepted/VoteRejected value (single-object), and compute its Kafka partition
 *   from the key (murmur2, like Kafka's default partitioner).
 * It does not keep undo logs, changelog deltas, validation of table writes, metrics, or dead letters.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avsc from 'avsc';
import { AREA_CODE_STATES } from '../examples/voter/area-codes.js';
import { CONTESTANTS } from '../examples/voter/index.js';
import { partitionForKey } from '../src/state/index.js';
import { fingerprint } from '../src/codec/index.js';
import { ROOT } from './lib.js';

const HEADER = 10;

function loadType(file: string): avsc.Type {
  return avsc.Type.forSchema(JSON.parse(readFileSync(join(ROOT, 'config/schemas/voter', file), 'utf8')) as avsc.Schema);
}

/** Single-object header (`C3 01` + CRC-64-AVRO fingerprint) of a type; computed once, at set-up. */
function headerOf(type: avsc.Type): Buffer {
  return Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprint(type)]);
}

export interface PlainOutput {
  key: Buffer;
  value: Buffer;
  partition: number;
}

export interface Vote {
  phoneNumber: number;
  contestantNumber: number;
}

/** Voter's state and rule over plain Maps. */
export class PlainVoter {
  readonly voteType = loadType('Vote.avsc');
  private readonly acceptedType = loadType('VoteAccepted.avsc');
  private readonly rejectedType = loadType('VoteRejected.avsc');
  private readonly voteHeader = headerOf(this.voteType);
  private readonly acceptedHeader = headerOf(this.acceptedType);
  private readonly rejectedHeader = headerOf(this.rejectedType);
  private readonly contestants = new Set(CONTESTANTS.map(([n]) => n));
  private readonly areaCodes = new Map<number, string>(AREA_CODE_STATES.map(([code, state]) => [code, state]));
  private scratch = Buffer.allocUnsafe(4096);
  readonly votesByPhone = new Map<number, number>();
  readonly votesByContestant = new Map<number, number>();
  accepted = 0;
  rejected = 0;

  constructor(
    private readonly outputPartitions: number,
    private readonly maxVotesPerPhone = 2,
  ) {}

  /** Handles one single-object encoded vote; returns the result record to write. */
  handle(bytes: Buffer, key?: Buffer | null): PlainOutput {
    for (let i = 0; i < HEADER; i++) if (bytes[i] !== this.voteHeader[i]) throw new Error('not a voter.Vote single object');
    const { value } = this.voteType.decode(bytes, HEADER) as { value: Vote; offset: number };
    const { phoneNumber, contestantNumber } = value;
    let out: Buffer;
    if (!this.contestants.has(contestantNumber)) {
      out = this.encode(this.rejectedType, this.rejectedHeader, { phoneNumber, contestantNumber, reason: 'INVALID_CONTESTANT' });
      this.rejected++;
    } else {
      const accepted = this.votesByPhone.get(phoneNumber) ?? 0;
      if (accepted >= this.maxVotesPerPhone) {
        out = this.encode(this.rejectedType, this.rejectedHeader, { phoneNumber, contestantNumber, reason: 'OVER_VOTE_LIMIT' });
        this.rejected++;
      } else {
        this.votesByPhone.set(phoneNumber, accepted + 1);
        this.votesByContestant.set(contestantNumber, (this.votesByContestant.get(contestantNumber) ?? 0) + 1);
        const state = this.areaCodes.get(Math.floor(phoneNumber / 10_000_000)) ?? 'XX';
        out = this.encode(this.acceptedType, this.acceptedHeader, { phoneNumber, contestantNumber, state });
        this.accepted++;
      }
    }
    const keyString = key ? key.toString() : String(phoneNumber);
    return { key: key ?? Buffer.from(keyString), value: out, partition: partitionForKey(keyString, this.outputPartitions) };
  }

  private encode(type: avsc.Type, header: Buffer, value: unknown): Buffer {
    const end = type.encode(value, this.scratch, HEADER);
    const out = Buffer.allocUnsafe(end);
    header.copy(out, 0);
    this.scratch.copy(out, HEADER, HEADER, end);
    return out;
  }
}
