import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AppDefinitionError } from '../../src/errors.js';
import { compileApp, defineApp, globalTable, record, table, type App } from '../../src/procedures/index.js';

// ---- fixtures -------------------------------------------------------------------------------

interface Order {
  id: string;
  qty: number;
}
interface Shipped {
  id: string;
  carrier: string;
}
interface Stock {
  sku: string;
  qty: number;
}
interface Product {
  name: string;
  price: { cents: number; currency: string };
}

const Order = record<Order>({
  type: 'record',
  name: 'Order',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'qty', type: 'int' },
  ],
});
const Shipped = record<Shipped>({
  type: 'record',
  name: 'Shipped',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'carrier', type: 'string' },
  ],
});
const Stock = record<Stock>({
  type: 'record',
  name: 'Stock',
  namespace: 'shop',
  fields: [
    { name: 'sku', type: 'string' },
    { name: 'qty', type: 'int' },
  ],
});
const Product = record<Product>({
  type: 'record',
  name: 'Product',
  namespace: 'shop',
  fields: [
    { name: 'name', type: 'string' },
    {
      name: 'price',
      type: {
        type: 'record',
        name: 'Price',
        fields: [
          { name: 'cents', type: 'long' },
          { name: 'currency', type: 'string' },
        ],
      },
    },
  ],
});

/** The runtime shape of a spec, for definitions the type system would (rightly) refuse. */
type RawSpec = Record<string, unknown>;

/** A valid spec: one input event with a procedure, one emitted event with an output topic. */
function validSpec(): RawSpec {
  return {
    name: 'shop',
    partitions: 4,
    events: { Order, Shipped },
    tables: { stock: table({ key: 'string', value: Stock }) },
    settings: { maxQty: 10, carrier: 'post', express: false },
    inputs: [{ topic: 'orders', events: ['Order'] }],
    outputs: { Shipped: 'shipments' },
    procedures: {
      Order: {
        partitionKey: (o: Order) => o.id,
        emits: ['Shipped'],
        handle() {},
      },
    },
  };
}

const raw = (spec: RawSpec): App => ({ spec: spec as unknown as App['spec'] });

/** Asserts compileApp refuses the spec with an AppDefinitionError whose message matches every pattern. */
function refuses(spec: RawSpec, ...patterns: RegExp[]): AppDefinitionError {
  let caught: unknown;
  try {
    compileApp(raw(spec));
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof AppDefinitionError, `expected AppDefinitionError, got ${String(caught)}`);
  for (const pattern of patterns) assert.match(caught.message, pattern);
  return caught;
}

// ---- start-up errors ------------------------------------------------------------------------

describe('compileApp: start-up errors', () => {
  it('compiles the valid fixture (so the failures below are about what each case changes)', () => {
    const app = compileApp(raw(validSpec()));
    assert.equal(app.name, 'shop');
    assert.equal(app.changelogTopic, 'shop-changelog');
    assert.equal(app.deadLetterTopic, 'shop-dlq');
    assert.deepEqual(app.inputTopics, ['orders']);
    assert.deepEqual(app.outputTopics, ['shipments']);
    assert.equal(app.events.get('Order')?.fullName, 'shop.Order');
    assert.equal(app.events.get('Order')?.inputTopic, 'orders');
    assert.equal(app.events.get('Shipped')?.outputTopic, 'shipments');
    assert.equal(app.eventsByFullName.get('shop.Shipped')?.alias, 'Shipped');
    assert.ok(app.events.get('Order')?.procedure);
    assert.equal(app.events.get('Shipped')?.procedure, undefined);
  });

  it('refuses two events with the same Avro full name, naming both aliases and the name', () => {
    const spec = validSpec();
    const OrderAgain = record<Order>({ type: 'record', name: 'Order', namespace: 'shop', fields: [{ name: 'id', type: 'string' }] });
    spec.events = { Order, Shipped, OrderV2: OrderAgain };
    refuses(spec, /"Order"/, /"OrderV2"/, /shop\.Order/, /unique/);
  });

  it('refuses the same full name reached through a namespace in the name', () => {
    const spec = validSpec();
    const Dotted = record<Order>({ type: 'record', name: 'shop.Order', fields: [{ name: 'id', type: 'string' }] });
    spec.events = { Order, Shipped, Dotted };
    refuses(spec, /shop\.Order/);
  });

  it('refuses an async handler, saying handlers must be synchronous', () => {
    const spec = validSpec();
    spec.procedures = {
      Order: {
        partitionKey: (o: Order) => o.id,
        async handle() {},
      },
    };
    refuses(spec, /"Order"/, /async/, /synchronous/);

    spec.procedures = { Order: { partitionKey: (o: Order) => o.id, handle: async () => {} } };
    refuses(spec, /async/);
  });

  it('refuses a generator handler, whose body would never run', () => {
    const spec = validSpec();
    spec.procedures = { Order: { partitionKey: (o: Order) => o.id, *handle() {} } };
    refuses(spec, /"Order"/, /generator/);
    spec.procedures = { Order: { partitionKey: (o: Order) => o.id, async *handle() {} } };
    refuses(spec, /"Order"/, /generator/);
  });

  it('refuses a procedure whose event no input topic carries', () => {
    const spec = validSpec();
    spec.procedures = {
      ...(spec.procedures as object),
      Shipped: { partitionKey: (s: Shipped) => s.id, handle() {} },
    };
    refuses(spec, /procedure "Shipped"/, /no input topic carries/);
  });

  it('refuses an input event that no procedure handles', () => {
    const spec = validSpec();
    spec.procedures = {};
    refuses(spec, /"orders"/, /"Order"/, /no procedure handles it/);
  });

  it('refuses a procedure for an event that is not declared', () => {
    const spec = validSpec();
    spec.procedures = {
      ...(spec.procedures as object),
      Refund: { partitionKey: () => 'x', handle() {} },
    };
    refuses(spec, /"Refund"/, /not in events/);
  });

  it('refuses an input listing an undeclared event', () => {
    const spec = validSpec();
    spec.inputs = [{ topic: 'orders', events: ['Order', 'Refund'] }];
    refuses(spec, /"orders"/, /"Refund"/, /not in events/);
  });

  it('refuses `emits` naming an event that has no output topic', () => {
    const spec = validSpec();
    spec.outputs = {};
    refuses(spec, /procedure "Order"/, /emits "Shipped"/, /no output topic/, /outputs/);
  });

  it('refuses `emits` naming an event that does not exist', () => {
    const spec = validSpec();
    spec.procedures = { Order: { partitionKey: (o: Order) => o.id, emits: ['Shiped'], handle() {} } };
    refuses(spec, /"Shiped"/, /not in events/);
  });

  it('refuses an output that names an unknown event', () => {
    const spec = validSpec();
    spec.outputs = { Shipped: 'shipments', Cancelled: 'cancellations' };
    refuses(spec, /outputs/, /"Cancelled"/, /not in events/);
  });

  it('refuses a topic that is both input and output', () => {
    const spec = validSpec();
    spec.outputs = { Shipped: 'orders' };
    refuses(spec, /"orders"/, /both an input and an output/);
  });

  it('refuses a global table row that fails its Avro schema, naming the table, key and field', () => {
    const spec = validSpec();
    spec.globalTables = {
      products: globalTable({
        key: 'string',
        value: Product,
        load: () => [
          ['ok', { name: 'Pen', price: { cents: 150, currency: 'EUR' } }],
          ['bad', { name: 'Ink', price: { cents: 1.5, currency: 'EUR' } }],
        ],
      }),
    };
    const err = refuses(spec, /global table "products"/, /"bad"/, /price\.cents/);
    assert.doesNotMatch(err.message, /"ok"/);
  });

  it('refuses a global table row with a key of the wrong type', () => {
    const spec = validSpec();
    spec.globalTables = {
      products: globalTable({
        key: 'int',
        value: Product,
        load: () => [[1.5, { name: 'Pen', price: { cents: 1, currency: 'EUR' } }]],
      }),
    };
    refuses(spec, /global table "products"/, /1\.5/, /integer/);
  });

  it('loads valid global table rows frozen, with the settings passed to load()', () => {
    const spec = validSpec();
    let seen: unknown;
    spec.globalTables = {
      products: globalTable({
        key: 'string',
        value: Product,
        load: (settings) => {
          seen = settings;
          return [['pen', { name: 'Pen', price: { cents: 150, currency: 'EUR' } }]];
        },
      }),
    };
    const app = compileApp(raw(spec), { maxQty: '3' });
    assert.deepEqual(seen, { maxQty: 3, carrier: 'post', express: false }, 'load() sees the overridden settings');
    const row = app.globalTables.get('products')?.rows.get('pen') as Product;
    assert.equal(row.price.cents, 150);
    assert.ok(Object.isFrozen(row) && Object.isFrozen(row.price));
  });

  it('refuses a table and a global table of the same name', () => {
    const spec = validSpec();
    spec.globalTables = { stock: globalTable({ key: 'string', value: Stock, load: () => [] }) };
    refuses(spec, /"stock"/, /both a table and a global table/);
  });

  it('refuses a bad app name, partition count and topic name', () => {
    refuses({ ...validSpec(), name: 'my app' }, /app name/, /"my app"/);
    refuses({ ...validSpec(), partitions: 0 }, /partitions/, /got 0/);
    refuses({ ...validSpec(), partitions: 2.5 }, /partitions/);
    refuses({ ...validSpec(), inputs: [{ topic: 'or/ders', events: ['Order'] }] }, /"or\/ders"/, /not a valid topic name/);
  });

  it('refuses an event schema that is not a named record, or not valid Avro', () => {
    refuses({ ...validSpec(), events: { Order, Shipped, Raw: { schema: 'string' } } }, /"Raw"/, /named Avro record/);
    refuses({ ...validSpec(), events: { Order, Shipped, Broken: { schema: { type: 'record', name: 'B', fields: [{ name: 'x', type: 'nope' }] } } } }, /"Broken"/, /invalid Avro schema/);
  });
});

describe('compileApp: settings', () => {
  it('uses the app defaults when nothing overrides them, and freezes the result', () => {
    const app = compileApp(raw(validSpec()));
    assert.deepEqual(app.settings, { maxQty: 10, carrier: 'post', express: false });
    assert.ok(Object.isFrozen(app.settings));
  });

  it('applies typed overrides', () => {
    const app = compileApp(raw(validSpec()), { maxQty: 3, carrier: 'ups', express: true });
    assert.deepEqual(app.settings, { maxQty: 3, carrier: 'ups', express: true });
  });

  it('coerces environment strings to the default type: numbers and booleans', () => {
    const app = compileApp(raw(validSpec()), { maxQty: '25', express: 'true', carrier: '42' });
    assert.equal(app.settings.maxQty, 25);
    assert.equal(app.settings.express, true);
    assert.equal(app.settings.carrier, '42', 'a string setting stays a string');
    assert.equal(compileApp(raw(validSpec()), { maxQty: ' 7 ' }).settings.maxQty, 7);
    assert.equal(compileApp(raw(validSpec()), { maxQty: '-1.5' }).settings.maxQty, -1.5);
    assert.equal(compileApp(raw(validSpec()), { express: 'false' }).settings.express, false);
  });

  it('refuses an override of a setting the app does not have, listing the known ones', () => {
    assert.throws(
      () => compileApp(raw(validSpec()), { maxQuantity: 3 }),
      (e: unknown) =>
        e instanceof AppDefinitionError &&
        /settings\.maxQuantity/.test(e.message) &&
        /not a setting/.test(e.message) &&
        /maxQty, carrier, express/.test(e.message),
    );
  });

  it('refuses an override of the wrong type, naming the setting, the expected type and the value', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ maxQty: 'ten' }, /settings\.maxQty must be a number, got "ten"/],
      [{ maxQty: true }, /settings\.maxQty must be a number/],
      [{ maxQty: 'Infinity' }, /settings\.maxQty must be a number/],
      [{ maxQty: '' }, /settings\.maxQty must be a number/],
      [{ maxQty: '   ' }, /settings\.maxQty must be a number/],
      [{ express: 'yes' }, /settings\.express must be a boolean, got "yes"/],
      [{ carrier: 7 }, /settings\.carrier must be a string/],
    ];
    for (const [override, pattern] of cases) {
      assert.throws(
        () => compileApp(raw(validSpec()), override),
        (e: unknown) => e instanceof AppDefinitionError && pattern.test(e.message),
        `override ${JSON.stringify(override)}`,
      );
    }
  });
});

// ---- compile-time checks --------------------------------------------------------------------
// These functions are never called: `tsc -p tsconfig.test.json` checks them. Each
// `@ts-expect-error` fails the type check if the line below it stops being a type error, and
// each unmarked twin shows the correct form compiles, so the error is about what the line changes.

const compileTimeSpec = {
  name: 'typed',
  partitions: 2,
  events: { Order, Shipped },
  tables: { stock: table({ key: 'string', value: Stock }) },
  inputs: [{ topic: 'orders', events: ['Order'] }],
  outputs: { Shipped: 'shipments' },
} as const;

export function procedureForUndeclaredEvent(): App {
  return defineApp({
    ...compileTimeSpec,
    procedures: {
      Order: { partitionKey: (o) => o.id, handle() {} },
      // @ts-expect-error: "Refund" is not one of the app's events.
      Refund: { partitionKey: () => 'x', handle() {} },
    },
  });
}

export function emitWithoutOutput(): App {
  return defineApp({
    ...compileTimeSpec,
    procedures: {
      Order: {
        partitionKey: (o) => o.id,
        handle(ctx, o) {
          ctx.emit('Shipped', { id: o.id, carrier: 'post' });
          // @ts-expect-error: Order has no output topic, so it cannot be emitted.
          ctx.emit('Order', { id: o.id, qty: 1 });
        },
      },
    },
  });
}

export function emitWrongValue(): App {
  return defineApp({
    ...compileTimeSpec,
    procedures: {
      Order: {
        partitionKey: (o) => o.id,
        handle(ctx, o) {
          ctx.emit('Shipped', { id: o.id, carrier: 'post' });
          // @ts-expect-error: carrier must be a string.
          ctx.emit('Shipped', { id: o.id, carrier: 7 });
          // @ts-expect-error: carrier is missing.
          ctx.emit('Shipped', { id: o.id });
        },
      },
    },
  });
}

export function unknownTable(): App {
  return defineApp({
    ...compileTimeSpec,
    procedures: {
      Order: {
        partitionKey: (o) => o.id,
        handle(ctx, o) {
          ctx.tables.stock.get(o.id);
          // @ts-expect-error: the app has no table "unknownTable".
          ctx.tables.unknownTable.get(o.id);
        },
      },
    },
  });
}

export function wrongTableTypes(): App {
  return defineApp({
    ...compileTimeSpec,
    procedures: {
      Order: {
        partitionKey: (o) => o.id,
        handle(ctx, o) {
          ctx.tables.stock.put(o.id, { sku: o.id, qty: o.qty });
          // @ts-expect-error: the stock table has string keys.
          ctx.tables.stock.put(1, { sku: o.id, qty: o.qty });
          // @ts-expect-error: qty must be a number.
          ctx.tables.stock.put(o.id, { sku: o.id, qty: 'many' });
          // @ts-expect-error: rows read from a table are typed (no such field).
          void ctx.tables.stock.get(o.id)?.quantity;
        },
      },
    },
  });
}

export function queryTablesAreReadOnly(): App {
  return defineApp({
    ...compileTimeSpec,
    procedures: { Order: { partitionKey: (o) => o.id, handle() {} } },
    queries: (query) => ({
      stock: query({
        partition(ctx) {
          const rows = ctx.tables.stock.scan({ limit: 10 });
          // @ts-expect-error: queries get read-only tables: no put.
          ctx.tables.stock.put('x', { sku: 'x', qty: 1 });
          // @ts-expect-error: queries get read-only tables: no delete.
          ctx.tables.stock.delete('x');
          return rows;
        },
        merge: (parts) => parts.flat(),
      }),
    }),
  });
}

export function globalTablesAreReadOnly(): App {
  return defineApp({
    ...compileTimeSpec,
    globalTables: { products: globalTable({ key: 'string', value: Product, load: () => [] }) },
    procedures: {
      Order: {
        partitionKey: (o) => o.id,
        handle(ctx, o) {
          ctx.globals.products.get(o.id);
          // @ts-expect-error: global tables are read-only in handlers.
          ctx.globals.products.put(o.id, { name: 'x', price: { cents: 1, currency: 'EUR' } });
        },
      },
    },
  });
}

describe('compile-time checks', () => {
  it('the type-level fixtures are valid at run time where the types allow them', () => {
    // The unmarked lines above are real, compiling code; this guards against the fixture spec
    // itself being broken (which would make every @ts-expect-error pass for the wrong reason).
    const app = compileApp(defineApp({ ...compileTimeSpec, procedures: { Order: { partitionKey: (o) => o.id, handle() {} } } }));
    assert.equal(app.name, 'typed');
  });
});
