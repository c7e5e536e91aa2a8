// The README's settings table, generated from the config schema (src/config).
//
//   node --import tsx scripts/settings-table.ts          exit 1 if README.md's table is out of date
//   node --import tsx scripts/settings-table.ts --write  rewrite the table in README.md
//
// Only the text between <!-- settings:start --> and <!-- settings:end --> is touched.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSettingsTable, settingsTable, withSettingsTable } from '../src/config/index.js';

const README = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'README.md');
const readme = readFileSync(README, 'utf8');
const table = settingsTable();

if (process.argv.includes('--write')) {
  const updated = withSettingsTable(readme, table);
  if (updated !== readme) writeFileSync(README, updated);
  console.error(updated === readme ? 'README.md settings table is up to date' : 'README.md settings table rewritten');
} else if (readSettingsTable(readme) !== table) {
  console.error('README.md settings table is out of date: run node --import tsx scripts/settings-table.ts --write');
  process.exit(1);
} else console.error('README.md settings table is up to date');
