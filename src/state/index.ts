export { PartitionState, type TableSchema, type RowChange, type ScanRequest, type EventPosition } from './partition-state.js';
export { HandlerTable, CommittedTable, GlobalTableView, type TableReader, type TableWriter } from './table-views.js';
export { TableStore, compareKeys, firstIndexAfter, scanSorted, type Key } from './table-store.js';
export { murmur2, toPositive, partitionForKey } from './partitioner.js';
export { checkKey, deepFreeze, describeInvalid, describeNonUnicode, type Invalid, type TableKeyType } from './validate.js';
