import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/**
 * Draws every <figure data-chart="..."> as a uPlot time series. The server renders the same numbers
 * as a table inside the figure, so the page is complete without this script.
 */

interface ChartData {
  /** epoch days (UTC) */
  days: number[];
  series: { label: string; values: number[] }[];
}

const PALETTE = ['--chart-1', '--chart-2', '--chart-3', '--chart-4', '--chart-5', '--chart-6', '--chart-7', '--chart-8'];

function color(i: number): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(PALETTE[i % PALETTE.length]!).trim();
  return v || '#888';
}

function draw(figure: HTMLElement): void {
  let data: ChartData;
  try {
    data = JSON.parse(figure.dataset.chart ?? '') as ChartData;
  } catch {
    return;
  }
  if (data.days.length === 0) return;
  const mount = document.createElement('div');
  mount.className = 'chart-canvas';
  figure.prepend(mount);
  const text = getComputedStyle(document.documentElement).getPropertyValue('--fg').trim() || '#222';
  const grid = getComputedStyle(document.documentElement).getPropertyValue('--border').trim() || '#ccc';
  const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  const width = () => Math.max(280, mount.clientWidth || figure.clientWidth);
  const plot = new uPlot(
    {
      width: width(),
      height: 260,
      scales: { x: { time: true } },
      axes: [axis, { ...axis, label: 'detections' }],
      series: [
        { label: 'day' },
        ...data.series.map((s, i) => ({ label: s.label, stroke: color(i), width: 2, points: { show: data.days.length < 40 } })),
      ],
    },
    [data.days.map((d) => d * 86_400), ...data.series.map((s) => s.values)],
    mount,
  );
  new ResizeObserver(() => plot.setSize({ width: width(), height: 260 })).observe(figure);
}

export function drawCharts(): void {
  document.querySelectorAll<HTMLElement>('figure[data-chart]').forEach(draw);
}
