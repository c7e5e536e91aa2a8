/** `farad/testing`: run an app's procedures in-process, without a server or files. */
export {
  TestDriver,
  type TestDriverOptions,
  type SendOptions,
  type RawRecord,
  type Sent,
  type PendingTimerRow,
  type DriverTable,
} from './test-driver.js';
export type { EmittedEvent, DeadLetter } from './record-views.js';
export { DeterminismError } from '../errors.js';
