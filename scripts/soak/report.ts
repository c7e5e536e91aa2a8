/**
 * Progress lines and the summary. While the soak runs it prints one JSON line per fault (and per
 * violation, and one at each phase change), nothing else; at the end a summary JSON line and a
 * short human-readable verdict with the replay command.
 */
export interface FaultRecord {
  readonly track: string;
  readonly n: number;
  readonly kind: string;
  /** Seconds from the start of the fault window. */
  readonly at: number;
  readonly ok: boolean;
  readonly [detail: string]: unknown;
}

export class Recorder {
  readonly faults: FaultRecord[] = [];
  readonly violations: string[] = [];
  readonly skipped: Array<{ track: string; n: number; kind: string; reason: string }> = [];
  windowStart = 0;
  private readonly t0 = Date.now();

  /** Seconds since the soak started, one decimal. */
  elapsed(): number {
    return Math.round((Date.now() - this.t0) / 100) / 10;
  }

  /** Seconds from the start of the fault window to `at`. */
  windowTime(at = Date.now()): number {
    return Math.round((at - this.windowStart) / 100) / 10;
  }

  line(fields: Record<string, unknown>): void {
    process.stdout.write(`${JSON.stringify({ t: this.elapsed(), ...fields })}\n`);
  }

  fault(record: FaultRecord): void {
    this.faults.push(record);
    this.line({ event: 'fault', ...record });
  }

  skip(track: string, n: number, kind: string, reason: string): void {
    this.skipped.push({ track, n, kind, reason });
    this.line({ event: 'fault-skipped', track, n, kind, reason });
  }

  /** Violations so far per track ('other': not raised by a track's own faults). */
  readonly byTrack = new Map<string, number>();

  violation(message: string, track = 'other'): void {
    this.violations.push(message);
    this.byTrack.set(track, (this.byTrack.get(track) ?? 0) + 1);
    this.line({ event: 'violation', track, message });
  }

  /** Faults injected, by kind: count and window times. */
  faultsByKind(): Record<string, { count: number; at: number[] }> {
    const out: Record<string, { count: number; at: number[] }> = {};
    for (const f of this.faults) {
      const entry = (out[f.kind] ??= { count: 0, at: [] });
      entry.count++;
      entry.at.push(f.at);
    }
    return out;
  }
}
