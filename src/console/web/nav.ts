/** Which view is shown, from the URL's hash (`#/tables`), so a view can be linked to and reloaded. */
const VIEWS = ['overview', 'tables', 'queries', 'send'] as const;
type View = (typeof VIEWS)[number];

export function startNav(): void {
  window.addEventListener('hashchange', show);
  show();
}

function current(): View {
  const name = location.hash.replace(/^#\/?/, '');
  return (VIEWS as readonly string[]).includes(name) ? (name as View) : 'overview';
}

function show(): void {
  const view = current();
  for (const el of document.querySelectorAll<HTMLElement>('[data-view]')) el.hidden = el.dataset['view'] !== view;
  for (const link of document.querySelectorAll<HTMLAnchorElement>('[data-view-link]')) {
    if (link.dataset['viewLink'] === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}
