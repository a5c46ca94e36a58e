import type { ComponentChildren, JSX } from 'preact';
import { useState } from 'preact/hooks';
import { BASE, navigate } from './router.ts';

export function Link(props: { href: string; children: ComponentChildren; class?: string }) {
  const onClick = (event: MouseEvent) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(props.href);
  };
  return (
    <a href={BASE + props.href} onClick={onClick} class={props.class}>
      {props.children}
    </a>
  );
}

const STATE_CLASS: Record<string, string> = {
  RUNNING: 'ok',
  sent: 'ok',
  delivered: 'ok',
  read: 'ok',
  PAUSED: 'warn',
  STOPPED: 'warn',
  pending: 'warn',
  scheduled: 'warn',
  retrying: 'warn',
  in_flight: 'warn',
  UNASSIGNED: 'warn',
  RESTARTING: 'warn',
  FAILED: 'bad',
  failed: 'bad',
  dead_lettered: 'bad',
  unknown: 'bad',
};

export function State(props: { state: string }) {
  return <span class={`state ${STATE_CLASS[props.state] ?? ''}`}>{props.state}</span>;
}

/** A table's header row: one column heading per name. */
export function ColumnHeads(props: { names: readonly string[] }) {
  return (
    <thead>
      <tr>
        {props.names.map((name) => (
          <th key={name} scope="col">
            {name}
          </th>
        ))}
      </tr>
    </thead>
  );
}

export function ErrorBox(props: { error: Error | undefined }) {
  if (!props.error) return null;
  return (
    <p class="error" role="alert">
      {props.error.message}
    </p>
  );
}

/** A destructive action asks once more, inline (no modal to trap the keyboard). */
export function ConfirmButton(props: { label: string; question: string; onConfirm: () => Promise<unknown> | void; danger?: boolean }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  if (!asking) {
    return (
      <button type="button" class={props.danger ? 'danger' : ''} onClick={() => setAsking(true)}>
        {props.label}
      </button>
    );
  }
  return (
    <span class="confirm" role="group" aria-label={props.question}>
      {props.question}{' '}
      <button
        type="button"
        class="danger"
        disabled={busy}
        autoFocus
        onClick={async () => {
          setBusy(true);
          try {
            await props.onConfirm();
          } finally {
            setBusy(false);
            setAsking(false);
          }
        }}
      >
        Yes, {props.label.toLowerCase()}
      </button>{' '}
      <button type="button" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}

export function formatAge(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function formatRate(perSecond: number | undefined): string {
  if (perSecond === undefined || !Number.isFinite(perSecond)) return '—';
  if (perSecond === 0) return '0/s';
  if (perSecond < 10) return `${perSecond.toFixed(2)}/s`;
  return `${Math.round(perSecond).toLocaleString()}/s`;
}

export function formatTime(at: number): string {
  const d = new Date(at);
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 23)}Z`;
}

/** How long a message has waited: ms under a second, then as an age. */
export function formatWait(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : formatAge(ms);
}

export function formatDuration(ms: number): string {
  if (ms < 0) return 'infinite';
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000} d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms} ms`;
}

export interface Series {
  name: string;
  points: Array<[at: number, value: number]>;
}

const PALETTE = ['var(--c1)', 'var(--c2)', 'var(--c3)', 'var(--c4)', 'var(--c5)', 'var(--c6)'];

/** A line chart over time, drawn as SVG; the y axis starts at zero. */
export function Chart(props: { title: string; series: Series[]; unit?: string; height?: number; format?: (v: number) => string }) {
  const width = 600;
  const height = props.height ?? 160;
  const pad = { left: 72, right: 8, top: 10, bottom: 18 };
  const points = props.series.flatMap((s) => s.points);
  const format = props.format ?? ((v: number) => `${Number(v.toPrecision(3))}${props.unit ?? ''}`);
  const titleId = `chart-${props.title.replace(/\W+/g, '-')}`;
  let body: JSX.Element;
  // A line needs two moments (a rate's first reading has nothing to compare with).
  if (new Set(points.map((p) => p[0])).size < 2) {
    body = (
      <text x={width / 2} y={height / 2} text-anchor="middle" class="muted">
        collecting…
      </text>
    );
  } else {
    const t0 = Math.min(...points.map((p) => p[0]));
    const t1 = Math.max(...points.map((p) => p[0]));
    const top = Math.max(...points.map((p) => p[1]), 0) || 1;
    const x = (t: number) => pad.left + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad.left - pad.right);
    const y = (v: number) => height - pad.bottom - (v / top) * (height - pad.top - pad.bottom);
    body = (
      <g>
        <line x1={pad.left} x2={width - pad.right} y1={y(0)} y2={y(0)} class="axis" />
        <line x1={pad.left} x2={width - pad.right} y1={y(top)} y2={y(top)} class="grid" />
        <text x={pad.left - 4} y={y(top) + 4} text-anchor="end" class="tick">
          {format(top)}
        </text>
        <text x={pad.left - 4} y={y(0)} text-anchor="end" class="tick">
          0
        </text>
        <text x={width - pad.right} y={height - 4} text-anchor="end" class="tick">
          {formatAge(t1 - t0)} shown
        </text>
        {props.series.map((s, i) => (
          <polyline
            key={s.name}
            fill="none"
            stroke={PALETTE[i % PALETTE.length]}
            stroke-width="2"
            points={s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}
          />
        ))}
      </g>
    );
  }
  const last = (s: Series) => s.points[s.points.length - 1]?.[1];
  return (
    <figure class="chart">
      <figcaption id={titleId}>{props.title}</figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby={titleId}>
        {body}
      </svg>
      <ul class="legend">
        {props.series.map((s, i) => (
          <li key={s.name}>
            <span class="swatch" style={{ background: PALETTE[i % PALETTE.length] }} /> {s.name}: {last(s) === undefined ? '—' : format(last(s)!)}
          </li>
        ))}
      </ul>
    </figure>
  );
}
