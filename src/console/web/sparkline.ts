/** A small inline-SVG line of recent values; its points are rewritten in place each poll. */
const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 120;
const HEIGHT = 20;

export class Sparkline {
  readonly el: SVGSVGElement;
  private readonly line: SVGPolylineElement;

  constructor(label: string) {
    this.el = document.createElementNS(SVG, 'svg');
    this.el.setAttribute('class', 'sparkline');
    this.el.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
    this.el.setAttribute('width', String(WIDTH));
    this.el.setAttribute('height', String(HEIGHT));
    this.el.setAttribute('role', 'img');
    this.el.setAttribute('aria-label', label);
    this.line = document.createElementNS(SVG, 'polyline');
    this.el.appendChild(this.line);
  }

  /** Scaled to the series' own maximum; `capacity` points span the full width. */
  draw(values: readonly number[], capacity: number): void {
    const max = Math.max(...values, 0);
    const step = WIDTH / Math.max(1, capacity - 1);
    const offset = (capacity - values.length) * step;
    const points = values
      .map((v, i) => `${(offset + i * step).toFixed(1)},${(HEIGHT - 1 - (max === 0 ? 0 : (v / max) * (HEIGHT - 2))).toFixed(1)}`)
      .join(' ');
    if (this.line.getAttribute('points') !== points) this.line.setAttribute('points', points);
  }
}
