/**
 * Preloaded into a farad child (`--import bench/child-profiler.ts`) when the bench profiles it:
 * the first SIGUSR2 starts the CPU profiler, the second stops it and writes the profile to
 * FARAD_BENCH_PROFILE_FILE, so the profile covers only the measured window (not start-up).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const file = process.env['FARAD_BENCH_PROFILE_FILE'];
if (file) {
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
