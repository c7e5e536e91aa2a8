import { RepartitionError } from '../errors.js';
import type { CompiledApp, CompiledEvent } from '../procedures/index.js';
import { generationTopic, type LayoutRecord } from './layout.js';

/**
 * The app as a generation of its layout runs it (docs/repartition.md): the layout's partition
 * count, and the generation's own input, changelog and multi-partition topics (a topic cannot be
 * re-hashed in place). Outputs, dead letters and the schema registry keep their names: outputs
 * grow in place, and their readers never depended on which partition held a key. Pure.
 */
export function appAtGeneration(app: CompiledApp, layout: LayoutRecord): CompiledApp {
  if (layout.generation === 0) {
    if (layout.partitions !== app.partitions) {
      throw new RepartitionError(`the layout says ${layout.partitions} partitions for generation 0, the app ${app.partitions}: the app's partition count is fixed at its first start (grow it with farad repartition)`);
    }
    return app;
  }
  const rename = (topic: string): string => generationTopic(topic, layout.generation);
  const events = new Map<string, CompiledEvent>();
  for (const [alias, event] of app.events) events.set(alias, event.inputTopic === undefined ? event : { ...event, inputTopic: rename(event.inputTopic) });
  return {
    ...app,
    partitions: layout.partitions,
    events,
    eventsByFullName: new Map([...events.values()].map((event) => [event.fullName, event])),
    inputTopics: app.inputTopics.map(rename),
    changelogTopic: rename(app.changelogTopic),
    protocolTopic: app.protocolTopic === undefined ? undefined : rename(app.protocolTopic),
  };
}
