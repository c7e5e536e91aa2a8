/**
 * The Voter example renamed for one benchmark run, as an app module for `farad run --app`:
 * app `voter_bench_<FARAD_BENCH_SUFFIX>` (its consumer group, transactional ids, changelog and
 * dead-letter topic), reading FARAD_BENCH_INPUT and writing `results_bench_<suffix>`. The vote
 * logic is Voter's own, unchanged.
 */
import voter from '../examples/voter/index.js';
import { defineApp, type App } from '../src/index.js';

export interface BenchVoterNames {
  readonly app: string;
  readonly input: string;
  readonly output: string;
  readonly changelog: string;
  readonly dlq: string;
}

export function benchVoterNames(suffix: string, input: string): BenchVoterNames {
  const app = `voter_bench_${suffix}`;
  return { app, input, output: `results_bench_${suffix}`, changelog: `${app}-changelog`, dlq: `${app}-dlq` };
}

/** Voter with its own names; `partitions` defaults to Voter's 8. */
export function benchVoter(names: BenchVoterNames, partitions = voter.spec.partitions): App {
  return defineApp({
    ...voter.spec,
    name: names.app,
    partitions,
    inputs: [{ topic: names.input, events: ['Vote'] }],
    outputs: { VoteAccepted: names.output, VoteRejected: names.output },
  });
}

const suffix = process.env['FARAD_BENCH_SUFFIX'] ?? 'default';
export default benchVoter(benchVoterNames(suffix, process.env['FARAD_BENCH_INPUT'] ?? `votes_bench_${suffix}`));
