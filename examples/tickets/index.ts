/**
 * Seat holds that expire: a HoldSeat holds a free seat for `ttlMs` and sets a timer; confirming
 * the hold before then sells the seat and cancels the timer; otherwise the timer fires, frees the
 * seat and emits HoldExpired. Every seat ends a hold with exactly one SeatSold or HoldExpired.
 */
import { defineApp, record, table, type RecordSchema } from '../../src/index.js';

interface HoldSeat {
  holdId: string;
  seat: string;
  ttlMs: number;
}
interface HoldRef {
  holdId: string;
  seat: string;
}
interface SeatHeld {
  holdId: string;
  seat: string;
  expiresAt: number;
}
interface HoldRejected {
  holdId: string;
  seat: string;
  reason: 'SEAT_TAKEN';
}
interface ConfirmRejected {
  holdId: string;
  seat: string;
  reason: 'NO_SUCH_HOLD';
}
interface Seat {
  state: 'FREE' | 'HELD' | 'SOLD';
  holdId: string | null;
}
interface Expiry {
  holdId: string;
}

const holdRef = (name: string): RecordSchema => ({
  type: 'record',
  name,
  namespace: 'tickets',
  fields: [
    { name: 'holdId', type: 'string' },
    { name: 'seat', type: 'string' },
  ],
});

export default defineApp({
  name: 'tickets',
  partitions: 8,
  events: {
    HoldSeat: record<HoldSeat>({
      type: 'record',
      name: 'HoldSeat',
      namespace: 'tickets',
      fields: [
        { name: 'holdId', type: 'string' },
        { name: 'seat', type: 'string' },
        { name: 'ttlMs', type: 'long' },
      ],
    }),
    ConfirmHold: record<HoldRef>(holdRef('ConfirmHold')),
    SeatHeld: record<SeatHeld>({
      type: 'record',
      name: 'SeatHeld',
      namespace: 'tickets',
      fields: [
        { name: 'holdId', type: 'string' },
        { name: 'seat', type: 'string' },
        { name: 'expiresAt', type: 'long' },
      ],
    }),
    HoldRejected: record<HoldRejected>({
      type: 'record',
      name: 'HoldRejected',
      namespace: 'tickets',
      fields: [
        { name: 'holdId', type: 'string' },
        { name: 'seat', type: 'string' },
        { name: 'reason', type: { type: 'enum', name: 'HoldRejectReason', namespace: 'tickets', symbols: ['SEAT_TAKEN'] } },
      ],
    }),
    SeatSold: record<HoldRef>(holdRef('SeatSold')),
    ConfirmRejected: record<ConfirmRejected>({
      type: 'record',
      name: 'ConfirmRejected',
      namespace: 'tickets',
      fields: [
        { name: 'holdId', type: 'string' },
        { name: 'seat', type: 'string' },
        { name: 'reason', type: { type: 'enum', name: 'ConfirmRejectReason', namespace: 'tickets', symbols: ['NO_SUCH_HOLD'] } },
      ],
    }),
    HoldExpired: record<HoldRef>(holdRef('HoldExpired')),
  },
  tables: {
    seats: table({
      key: 'string',
      value: record<Seat>({
        type: 'record',
        name: 'Seat',
        namespace: 'tickets',
        fields: [
          { name: 'state', type: { type: 'enum', name: 'SeatState', namespace: 'tickets', symbols: ['FREE', 'HELD', 'SOLD'] } },
          { name: 'holdId', type: ['null', 'string'], default: null },
        ],
      }),
    }),
  },
  inputs: [{ topic: 'ticket-commands', events: ['HoldSeat', 'ConfirmHold'] }],
  outputs: {
    SeatHeld: 'ticket-events',
    HoldRejected: 'ticket-events',
    SeatSold: 'ticket-events',
    ConfirmRejected: 'ticket-events',
    HoldExpired: 'ticket-events',
  },
  timers: {
    // Fires when a hold runs out: frees the seat unless it was sold (which cancels the timer).
    holdExpiry: {
      payload: record<Expiry>({ type: 'record', name: 'HoldExpiry', namespace: 'tickets', fields: [{ name: 'holdId', type: 'string' }] }),
      emits: ['HoldExpired'],
      handle(ctx, timer) {
        const seat = ctx.tables.seats.get(timer.key);
        if (seat?.state !== 'HELD' || seat.holdId !== timer.payload.holdId) return;
        ctx.tables.seats.put(timer.key, { state: 'FREE', holdId: null });
        ctx.emit('HoldExpired', { holdId: timer.payload.holdId, seat: timer.key });
      },
    },
  },
  procedures: {
    HoldSeat: {
      partitionKey: (hold) => hold.seat,
      emits: ['SeatHeld', 'HoldRejected'],
      handle(ctx, hold) {
        if (!(hold.ttlMs > 0)) throw new Error(`HoldSeat ${hold.holdId}: ttlMs must be positive, got ${hold.ttlMs}`);
        const seat = ctx.tables.seats.get(hold.seat);
        if (seat && seat.state !== 'FREE') {
          ctx.emit('HoldRejected', { holdId: hold.holdId, seat: hold.seat, reason: 'SEAT_TAKEN' });
          return;
        }
        const expiresAt = ctx.timestamp + hold.ttlMs;
        ctx.tables.seats.put(hold.seat, { state: 'HELD', holdId: hold.holdId });
        ctx.timers.set('holdExpiry', hold.seat, { at: expiresAt, payload: { holdId: hold.holdId } });
        ctx.emit('SeatHeld', { holdId: hold.holdId, seat: hold.seat, expiresAt });
      },
    },
    ConfirmHold: {
      partitionKey: (confirm) => confirm.seat,
      emits: ['SeatSold', 'ConfirmRejected'],
      handle(ctx, confirm) {
        const seat = ctx.tables.seats.get(confirm.seat);
        const expiry = ctx.timers.get('holdExpiry', confirm.seat);
        // Before expiry means by the confirmation's own timestamp, not by when it is processed.
        const current = seat?.state === 'HELD' && seat.holdId === confirm.holdId && expiry !== undefined && ctx.timestamp < expiry.at;
        if (!current) {
          ctx.emit('ConfirmRejected', { holdId: confirm.holdId, seat: confirm.seat, reason: 'NO_SUCH_HOLD' });
          return;
        }
        ctx.tables.seats.put(confirm.seat, { state: 'SOLD', holdId: confirm.holdId });
        ctx.timers.cancel('holdExpiry', confirm.seat);
        ctx.emit('SeatSold', { holdId: confirm.holdId, seat: confirm.seat });
      },
    },
  },
});
