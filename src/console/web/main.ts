/**
 * The farad console: polls the cluster view every 2 s while the page is visible and hands it to
 * each panel; reads the app's OpenAPI document once for the tables, queries and send views.
 */
import type { ClusterView } from './api.js';
import { AlertsView } from './alerts-view.js';
import { DeadLettersView } from './dead-letters-view.js';
import { EventsView } from './events-view.js';
import { HeaderView } from './header-view.js';
import { byId, setText } from './dom.js';
import { describeError, getJson } from './http.js';
import { InstancesView } from './instances-view.js';
import { startNav } from './nav.js';
import { appApiOf } from './openapi.js';
import { PartitionsView } from './partitions-view.js';
import { Poller } from './poll.js';
import { QueriesView } from './queries-view.js';
import { NO_RATES, ratesBetween, type Rates } from './rates.js';
import { SendForm } from './send-form.js';
import { TablesView } from './tables-view.js';
import { TimersView } from './timers-view.js';

const POLL_MS = 2000;
const POLL_TIMEOUT_MS = 10_000;
/** performance.measure name of one cluster view's rendering (read by the browser test). */
const RENDER_MEASURE = 'farad-console:render';

const header = new HeaderView();
const alerts = new AlertsView();
const instances = new InstancesView();
const partitions = new PartitionsView();
const events = new EventsView();
const deadLetters = new DeadLettersView();
const timers = new TimersView();
const tables = new TablesView();
const queries = new QueriesView();

let previous: ClusterView | undefined;
let rates: Rates = NO_RATES;
/** The OpenAPI document: read (or refused for good), being read, or to read again after a failure a retry may fix. */
let apiState: 'settled' | 'loading' | 'retry' = 'loading';

const poller = new Poller<ClusterView>({
  url: '/console/api/cluster',
  intervalMs: POLL_MS,
  timeoutMs: POLL_TIMEOUT_MS,
  onData(view) {
    const start = performance.now();
    // A view no newer than the last (another instance answered, its clock behind) keeps the last rates.
    if (previous === undefined || view.at > previous.at) {
      rates = ratesBetween(previous, view);
      previous = view;
    }
    header.update(view);
    alerts.update(view.alerts, view.at);
    instances.update(view);
    partitions.update(view, rates);
    events.update(view, rates);
    deadLetters.update(view, rates);
    timers.update(view, rates);
    // Only the latest is kept: a page left open for days must not grow a list of them.
    performance.clearMeasures(RENDER_MEASURE);
    performance.measure(RENDER_MEASURE, { start, end: performance.now() });
    // The document could not be read before (server restarting): try again now it answers.
    if (apiState === 'retry') void loadApi();
  },
  onError(error, status) {
    header.failed(error, status);
  },
});
const send = new SendForm(() => poller.now());

async function loadApi(): Promise<void> {
  apiState = 'loading';
  const answer = await getJson<unknown>('/openapi.json');
  if (!answer.ok) {
    // No answer or a server error may pass; a refusal (401, 404) will not by asking again.
    apiState = answer.status === 0 || answer.status >= 500 ? 'retry' : 'settled';
    const message = `could not read /openapi.json: ${describeError(answer.error)}`;
    for (const id of ['table-error', 'query-error', 'send-error']) setText(byId(id), message);
    return;
  }
  apiState = 'settled';
  const app = appApiOf(answer.body);
  tables.setApi(app);
  queries.setApi(app);
  send.setApi(app);
}

startNav();
poller.start();
void loadApi();
