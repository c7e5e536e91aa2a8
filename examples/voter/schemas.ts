import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { record, type RecordSchema, type Typed } from '../../src/index.js';

// The Avro schemas live as plain .avsc files so non-farad producers (kcat, Java) can use them too.
// Found by walking up, so this works from the sources and from the compiled dist/ alike.
function findSchemaDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'config', 'schemas', 'voter');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('config/schemas/voter not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}
const schemaDir = findSchemaDir();

function avsc<T>(file: string): Typed<T, RecordSchema> {
  return record<T>(JSON.parse(readFileSync(join(schemaDir, file), 'utf8')) as RecordSchema);
}

export interface Vote {
  phoneNumber: number;
  contestantNumber: number;
}
export interface VoteAccepted {
  phoneNumber: number;
  contestantNumber: number;
  state: string;
}
export type VoteRejectReason = 'INVALID_CONTESTANT' | 'OVER_VOTE_LIMIT';
export interface VoteRejected {
  phoneNumber: number;
  contestantNumber: number;
  reason: VoteRejectReason;
}
export interface PhoneVotes {
  accepted: number;
}
export interface VoteCount {
  votes: number;
}
export interface Contestant {
  contestantNumber: number;
  name: string;
}
export interface AreaCodeState {
  state: string;
}

export const schemas = {
  Vote: avsc<Vote>('Vote.avsc'),
  VoteAccepted: avsc<VoteAccepted>('VoteAccepted.avsc'),
  VoteRejected: avsc<VoteRejected>('VoteRejected.avsc'),
  PhoneVotes: avsc<PhoneVotes>('PhoneVotes.avsc'),
  VoteCount: avsc<VoteCount>('VoteCount.avsc'),
  Contestant: avsc<Contestant>('Contestant.avsc'),
  AreaCodeState: avsc<AreaCodeState>('AreaCodeState.avsc'),
};
