/**
 * Preloaded into a farad child (`--import bench/child-profiler.ts`) when the bench profiles it:
 * the first SIGUSR2 starts the CPU profiler, the second stops it and writes the profile to
 * FARAD_BENCH_PROFILE_FILE, so the profile covers only the measured window (not start-up).
 */
import cluster from 'node:cluster';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { availableParallelism } from 'node:os';

// With several workers the primary only supervises: worker 0 writes the named file (the one the
// summary reads), the others a file each beside it. The bench signals the whole process tree.
const worker = process.env['FARAD_INTERNAL_WORKER_INDEX'];
const named = process.env['FARAD_BENCH_PROFILE_FILE'];
const file = worker === undefined || worker === '0' ? named : named?.replace(/\.cpuprofile$/, `-w${worker}.cpuprofile`);
const workers = Number(process.env['FARAD_WORKERS'] ?? '0') || availableParallelism(); // farad's default on Kafka
if (cluster.isPrimary && workers > 1) {
  process.on('SIGUSR2', () => undefined); // a primary that forks workers: nothing to profile here
} else if (file) {
  const session = new Session();
  session.connect();
  let running = false;
  process.on('SIGUSR2', () => {
    if (!running) {
      running = true;
      session.post('Profiler.enable', () =>
        session.post('Profiler.setSamplingInterval', { interval: 500 }, () => session.post('Profiler.start', () => process.stdout.write('profiler started\n'))),
      );
      return;
    }
    running = false;
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(file, JSON.stringify(result.profile));
      process.stdout.write(`profiler stopped${err ? `: ${err.message}` : ''}\n`);
    });
  });
}
