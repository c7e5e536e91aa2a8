/** The files `farad init` writes: a one-event app, its test with the driver, and how to run both. */

export interface TemplateValues {
  /** App name (names topics and the consumer group). */
  readonly name: string;
  /** Avro namespace of the app's events. */
  readonly namespace: string;
  /** The `farad` dependency: a version range, a tarball or a directory. */
  readonly faradSpec: string;
  readonly versions: { readonly tsx: string; readonly typescript: string; readonly typesNode: string };
}

export function packageJson(v: TemplateValues): string {
  const pkg = {
    name: v.name.toLowerCase().replace(/_/g, '-'),
    version: '0.1.0',
    private: true,
    type: 'module',
    scripts: {
      start: 'farad run --app .',
      test: 'tsc --noEmit && node --import tsx --test *.test.ts',
      send: 'farad produce --app . --type Visit',
    },
    dependencies: { farad: v.faradSpec },
    devDependencies: { '@types/node': v.versions.typesNode, tsx: v.versions.tsx, typescript: v.versions.typescript },
  };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

export const TSCONFIG = `{
  "compilerOptions": {
    "target": "ES2022",
    "lib": ["ES2023"],
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "noUncheckedIndexedAccess": true,
    "noEmit": true,
    "skipLibCheck": true,
    "types": ["node"]
  },
  "include": ["*.ts"]
}
`;

export function appSource(v: TemplateValues): string {
  return `import { defineApp, record, table } from 'farad';

interface Visit {
  page: string;
  visitor: string;
}

interface PageStats {
  visits: number;
  lastVisitor: string;
}

/** Counts visits per page; \`GET /tables/pages/<page>\` and \`GET /queries/top\` read the counts. */
export default defineApp({
  name: '${v.name}',
  partitions: 4,
  events: {
    Visit: record<Visit>({
      type: 'record',
      name: 'Visit',
      namespace: '${v.namespace}',
      fields: [
        { name: 'page', type: 'string' },
        { name: 'visitor', type: 'string' },
      ],
    }),
  },
  tables: {
    pages: table({
      key: 'string',
      value: record<PageStats>({
        type: 'record',
        name: 'PageStats',
        namespace: '${v.namespace}',
        fields: [
          { name: 'visits', type: 'long' },
          { name: 'lastVisitor', type: 'string' },
        ],
      }),
    }),
  },
  inputs: [{ topic: 'visits', events: ['Visit'] }],
  procedures: {
    Visit: {
      // Visits of one page go to one partition, so its count is updated serially.
      partitionKey: (visit) => visit.page,
      handle(ctx, visit) {
        if (visit.page === '') throw new Error('a visit needs a page');
        const visits = (ctx.tables.pages.get(visit.page)?.visits ?? 0) + 1;
        ctx.tables.pages.put(visit.page, { visits, lastVisitor: visit.visitor });
      },
    },
  },
  queries: (query) => ({
    top: query({
      partition: (ctx) => ctx.tables.pages.scan().map(([page, stats]) => ({ page, visits: stats.visits })),
      merge: (parts, params) =>
        parts
          .flat()
          .sort((a, b) => b.visits - a.visits || a.page.localeCompare(b.page))
          .slice(0, Number(params.limit ?? 10)),
    }),
  }),
});
`;
}

export const TEST_SOURCE = `import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestDriver } from 'farad/testing';
import app from './index.js';

test('counts visits per page', () => {
  const driver = new TestDriver(app);
  driver.send('Visit', { page: '/home', visitor: 'ada' });
  driver.send('Visit', { page: '/home', visitor: 'alan' });
  driver.send('Visit', { page: '/about', visitor: 'ada' });

  assert.deepEqual(driver.table('pages').get('/home'), { visits: 2, lastVisitor: 'alan' });
  assert.deepEqual(driver.query('top', { limit: '1' }), [{ page: '/home', visits: 2 }]);
});

test('a visit without a page goes to the dead-letter topic and changes nothing', () => {
  const driver = new TestDriver(app);
  const sent = driver.send('Visit', { page: '', visitor: 'ada' });

  assert.equal(sent.deadLetter?.reason, 'handler_error');
  assert.match(sent.deadLetter?.error ?? '', /needs a page/);
  assert.equal(driver.table('pages').size, 0);
  driver.checkDeterminism();
});
`;

export function readme(v: TemplateValues): string {
  return `# ${v.name}

A [farad](https://www.npmjs.com/package/farad) app: \`Visit\` events counted per page.

\`\`\`sh
npm install
npm test          # type-check, then the tests in *.test.ts (farad/testing: no server, no files)
npm start         # runs the app on the embedded log (./data), HTTP on port 8080
\`\`\`

Send an event and read the result while it runs:

\`\`\`sh
curl -XPOST localhost:8080/events/Visit -H 'content-type: application/json' -d '{"page": "/home", "visitor": "ada"}'
echo '{"page": "/home", "visitor": "alan"}' | npm run send -- -
curl localhost:8080/tables/pages/%2Fhome
curl localhost:8080/queries/top
\`\`\`

\`index.ts\` is the app; \`index.test.ts\` tests it with farad's test driver.
`;
}

export const GITIGNORE = `node_modules/
data/
`;
