/** A tiny element helper: every text goes in as a text node, so data is never parsed as HTML. */

type Attrs = Readonly<Record<string, string | number | boolean | undefined>>;
type Child = Node | string | number | null | undefined | false;

/** `h('td', { class: 'num' }, '42')`; `true` sets a boolean attribute, false/undefined leaves it out. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(parent: Node, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/** Replaces every child of `parent`. */
export function replace(parent: Node, ...children: Child[]): void {
  const fragment = document.createDocumentFragment();
  append(fragment, children);
  (parent as ParentNode).replaceChildren(fragment);
}

/** Sets text only when it differs: an unchanged cell costs no DOM write and no relayout. */
export function setText(el: Node, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export function setAttr(el: Element, name: string, value: string): void {
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

/** The element with `id`, or a clear error naming it (index.html and the code disagree). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`console page: no element #${id} in index.html`);
  return el as T;
}

export function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? 'undefined';
}
