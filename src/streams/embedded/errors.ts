import { FaradError, TransportError } from '../../errors.js';

/**
 * The embedded log's disk is full (ENOSPC, EDQUOT), or a file reached its size limit (EFBIG). Nothing that failed was acknowledged; what
 * was acknowledged before is on disk. Retrying helps once space is freed.
 */
export class DiskFullError extends FaradError {
  readonly code = 'disk_full';
  override readonly retriable = true;

  constructor(
    readonly dataDir: string,
    operation: string,
    options?: { cause?: unknown },
  ) {
    const tooLarge = (options?.cause as NodeJS.ErrnoException | undefined)?.code === 'EFBIG';
    const what = tooLarge ? `a file in the data directory ${dataDir} reached the largest size allowed (the file size limit, ulimit -f, or the filesystem's)` : `the disk holding the data directory ${dataDir} is full`;
    super(
      `${operation}: ${what}. Everything acknowledged so far is kept; ` +
        'new events are refused until there is room. Free disk space, lower retention.bytes / retention.ms ' +
        '(FARAD_RETENTION_BYTES, FARAD_RETENTION_MS) so old segments are deleted, or move FARAD_DATA_DIR to a larger disk',
      {},
      options,
    );
  }
}

/** The typed error of a failed journal file operation: DiskFullError when out of space, else a retriable TransportError. */
export function ioError(err: unknown, dataDir: string, operation: string): FaradError {
  if (err instanceof FaradError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') return new DiskFullError(dataDir, operation, { cause: err });
  return new TransportError(`${operation} (${dataDir}): ${(err as Error | undefined)?.message ?? String(err)}`, {}, { cause: err });
}
