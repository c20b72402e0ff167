/**
 * Charts as plain SVG: bars and lines with an accessible name, a table-like title per data
 * point (hover and screen readers) and `class="point"` on every drawn datum. No chart library:
 * the few shapes the dashboard needs fit in this file, draw the same at 390 and 1280 px wide
 * (viewBox scaling) and need no inline styles, so the page's CSP stays 'self'.
 */
import type { JSX } from "preact";

export interface Bar {
  label: string;
  value: number;
  /** Shown in the point's title; default the value. */
  text?: string;
}

const W = 600;
const H = 220;
const PAD = { top: 16, right: 12, bottom: 44, left: 56 };

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function Axis({ max, format }: { max: number; format: (v: number) => string }) {
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const plotH = H - PAD.top - PAD.bottom;
  return (
    <g class="axis">
      {ticks.map((t) => {
        const y = PAD.top + plotH * (1 - t);
        return (
          <g key={t}>
            <line x1={PAD.left} x2={W - PAD.right} y1={y} y2={y} class="grid" />
            <text x={PAD.left - 6} y={y + 4} text-anchor="end">
              {format(max * t)}
            </text>
          </g>
        );
      })}
    </g>
  );
}

/** Vertical bars, one per datum; `markers` draws labelled vertical lines between bars. */
export function BarChart(props: {
  title: string;
  bars: Bar[];
  format?: (v: number) => string;
  /** Lines drawn before bar `index` (0 … bars.length), e.g. seed 000's 4 KB and 128 KB lines. */
  markers?: { index: number; label: string }[];
  testId?: string;
}): JSX.Element {
  const format = props.format ?? ((v: number) => String(Math.round(v * 100) / 100));
  const max = niceMax(Math.max(0, ...props.bars.map((b) => b.value)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / Math.max(1, props.bars.length);
  const barW = Math.max(2, step * 0.7);
  return (
    <figure class="chart" data-testid={props.testId}>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title} preserveAspectRatio="xMidYMid meet">
        <title>{props.title}</title>
        <Axis max={max} format={format} />
        {props.bars.map((b, i) => {
          const h = (b.value / max) * plotH;
          const x = PAD.left + i * step + (step - barW) / 2;
          return (
            <g key={b.label}>
              <rect
                class="point bar"
                data-value={b.value}
                x={x}
                y={PAD.top + plotH - h}
                width={barW}
                height={Math.max(h, b.value > 0 ? 1 : 0)}
              >
                <title>{`${b.label}: ${b.text ?? format(b.value)}`}</title>
              </rect>
              <text class="label" x={x + barW / 2} y={H - PAD.bottom + 14} text-anchor="middle">
                {b.label.length > 12 ? `${b.label.slice(0, 11)}…` : b.label}
              </text>
            </g>
          );
        })}
        {(props.markers ?? []).map((m) => {
          const x = PAD.left + m.index * step;
          return (
            <g key={m.label} class="marker">
              <line x1={x} x2={x} y1={PAD.top - 4} y2={PAD.top + plotH} />
              <text x={x + 3} y={PAD.top + 8}>
                {m.label}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>{props.title}</figcaption>
    </figure>
  );
}

/** Lines over time: one series per entry of `series`, sharing the x axis `labels`. */
export function LineChart(props: {
  title: string;
  labels: string[];
  series: { name: string; values: number[] }[];
  format?: (v: number) => string;
  testId?: string;
}): JSX.Element {
  const format = props.format ?? ((v: number) => String(Math.round(v * 100) / 100));
  const max = niceMax(Math.max(0, ...props.series.flatMap((s) => s.values)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const n = Math.max(1, props.labels.length - 1);
  const xy = (i: number, v: number) => [PAD.left + (i / n) * plotW, PAD.top + plotH * (1 - v / max)] as const;
  return (
    <figure class="chart" data-testid={props.testId}>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title}>
        <title>{props.title}</title>
        <Axis max={max} format={format} />
        {props.series.map((s, k) => (
          <g key={s.name} class={`series series-${k}`}>
            <polyline
              fill="none"
              points={s.values.map((v, i) => xy(i, v).join(",")).join(" ")}
              class="line"
            />
            {s.values.map((v, i) => {
              const [x, y] = xy(i, v);
              return (
                <circle key={props.labels[i]} class="point" data-value={v} cx={x} cy={y} r={2.5}>
                  <title>{`${s.name} ${props.labels[i] ?? ""}: ${format(v)}`}</title>
                </circle>
              );
            })}
          </g>
        ))}
        <text class="label" x={PAD.left} y={H - PAD.bottom + 14}>
          {props.labels[0] ?? ""}
        </text>
        <text class="label" x={W - PAD.right} y={H - PAD.bottom + 14} text-anchor="end">
          {props.labels.at(-1) ?? ""}
        </text>
      </svg>
      <figcaption>
        {props.title}
        <span class="legend">
          {props.series.map((s, k) => (
            <span key={s.name} class={`key series-${k}`}>
              {s.name}
            </span>
          ))}
        </span>
      </figcaption>
    </figure>
  );
}

/** Horizontal bars, one row per datum with its label and value: for many or long-named data (costs, tenants). */
export function RowChart(props: {
  title: string;
  bars: Bar[];
  format?: (v: number) => string;
  testId?: string;
}): JSX.Element {
  const format = props.format ?? ((v: number) => String(Math.round(v * 100) / 100));
  const max = Math.max(0, ...props.bars.map((b) => b.value)) || 1;
  const row = 22;
  const labelW = 200;
  const valueW = 90;
  const height = Math.max(1, props.bars.length) * row + 8;
  const plotW = W - labelW - valueW;
  return (
    <figure class="chart" data-testid={props.testId}>
      <svg viewBox={`0 0 ${W} ${height}`} role="img" aria-label={props.title}>
        <title>{props.title}</title>
        {props.bars.map((b, i) => {
          const y = 4 + i * row;
          const w = (b.value / max) * plotW;
          return (
            <g key={b.label}>
              <text class="label row-label" x={labelW - 6} y={y + row / 2 + 4} text-anchor="end">
                {b.label.length > 30 ? `${b.label.slice(0, 29)}…` : b.label}
              </text>
              <rect class="point bar" data-value={b.value} x={labelW} y={y + 3} width={w} height={row - 6}>
                <title>{`${b.label}: ${b.text ?? format(b.value)}`}</title>
              </rect>
              <text class="label" x={labelW + w + 4} y={y + row / 2 + 4}>
                {b.text ?? format(b.value)}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>{props.title}</figcaption>
    </figure>
  );
}
