import { envNameOf, SETTINGS_PREFIX } from './env.js';
import { configFields, type ConfigField } from './fields.js';

/** The README's settings table sits between these lines. */
export const SETTINGS_TABLE_START = '<!-- settings:start -->';
export const SETTINGS_TABLE_END = '<!-- settings:end -->';

/**
 * The markdown table of every setting: path, environment variable, default and description,
 * all from the config schema. The README holds a copy (scripts/settings-table.ts writes it).
 */
export function settingsTable(): string {
  const rows = configFields().map((field) => {
    if (!field.description) throw new Error(`config field ${field.path} has no .describe() text for the settings table`);
    // Maps: the app's settings have one variable per key; any other map is set in the config file only.
    const [path, env] =
      field.kind !== 'map' ? [field.path, `\`${envNameOf(field.path)}\``] : field.path === 'settings' ? [`${field.path}.<name>`, `\`${SETTINGS_PREFIX}<NAME>\``] : [`${field.path}.<name>`, 'config file only'];
    return `| \`${path}\` | ${env} | ${shownDefault(field)} | ${cell(field.description)} |`;
  });
  return ['| Setting | Environment | Default | Description |', '|---|---|---|---|', ...rows].join('\n');
}

function shownDefault(field: ConfigField): string {
  if (field.shownDefault !== undefined) return cell(field.shownDefault);
  const value = field.defaultValue;
  if (value === undefined) return '—';
  return cell(`\`${Array.isArray(value) ? value.join(',') : String(value)}\``);
}

/** Pipes would end the cell early. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The table between the markers in `readme`, or undefined when the markers are missing. */
export function readSettingsTable(readme: string): string | undefined {
  const start = readme.indexOf(SETTINGS_TABLE_START);
  const end = readme.indexOf(SETTINGS_TABLE_END);
  if (start < 0 || end < start) return undefined;
  return readme.slice(start + SETTINGS_TABLE_START.length, end).trim();
}

/** `readme` with the text between the markers replaced by `table`; throws when the markers are missing. */
export function withSettingsTable(readme: string, table: string): string {
  const start = readme.indexOf(SETTINGS_TABLE_START);
  const end = readme.indexOf(SETTINGS_TABLE_END);
  if (start < 0 || end < start) throw new Error(`the README has no ${SETTINGS_TABLE_START} … ${SETTINGS_TABLE_END} section`);
  return `${readme.slice(0, start + SETTINGS_TABLE_START.length)}\n${table}\n${readme.slice(end)}`;
}
