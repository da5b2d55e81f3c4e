// Trends: inspections per bucket, defect rate and mean defect area of a product over a range, from
// inspectionStats, drawn by uPlot (a small canvas chart library made for time series); a second product
// can be overlaid. Loaded as its own chunk, so the first view does not carry uPlot.

import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { gql, type Session } from '../api.ts';
import { ProductSelect, useProducts } from '../common.tsx';
import { href } from '../route.ts';

interface Bucket {
  start: string;
  total: number;
  defectRate: number | null;
  meanDefectFraction: number | null;
}

const QUERY = `query($p: ID, $from: DateTime!, $to: DateTime!, $bucket: StatsBucket!) {
  inspectionStats(productId: $p, from: $from, to: $to, bucket: $bucket) { buckets { start total defectRate meanDefectFraction } }
}`;

const DAY = 86_400_000;
const COLORS = ['#1f6feb', '#d9480f'];

const METRICS: { id: string; title: string; value: (b: Bucket) => number | null; format: (v: number) => string; range?: [number, number] }[] = [
  { id: 'total', title: 'Inspections', value: (b) => b.total, format: (v) => String(v) },
  { id: 'defectRate', title: 'Defect rate', value: (b) => b.defectRate, format: (v) => `${(v * 100).toFixed(1)} %`, range: [0, 1] },
  { id: 'meanDefectFraction', title: 'Mean defect area', value: (b) => b.meanDefectFraction, format: (v) => `${(v * 100).toFixed(2)} %` },
];

function dateInput(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}

export default function Trends(props: { session: Session; params: URLSearchParams }) {
  const { session, params } = props;
  const [products, productsError] = useProducts(session);
  const now = Date.now();
  const state = {
    product: params.get('product') ?? products?.[0]?.id ?? '',
    compare: params.get('compare') ?? '',
    bucket: params.get('bucket') === 'HOUR' ? 'HOUR' : 'DAY',
    from: params.get('from') ?? dateInput(now - 13 * DAY),
    to: params.get('to') ?? dateInput(now + DAY),
  };
  const [series, setSeries] = useState<{ name: string; buckets: Bucket[] }[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const set = (name: string, value: string) => (location.hash = href('trends', { ...state, [name]: value }));

  useEffect(() => {
    if (!products || !state.product) return;
    let live = true;
    setError(null);
    const ids = [state.product, ...(state.compare && state.compare !== state.product ? [state.compare] : [])];
    const from = new Date(`${state.from}T00:00:00Z`).toISOString();
    const to = new Date(`${state.to}T00:00:00Z`).toISOString();
    Promise.all(ids.map((p) => gql<{ inspectionStats: { buckets: Bucket[] } }>(session.key, QUERY, { p, from, to, bucket: state.bucket }))).then(
      (rs) => live && setSeries(rs.map((r, k) => ({ name: products.find((p) => p.id === ids[k])?.name ?? ids[k], buckets: r.inspectionStats.buckets }))),
      (e: Error) => live && setError(e.message),
    );
    return () => {
      live = false;
    };
  }, [session.key, products, JSON.stringify(state)]);

  if (productsError) return <p class="error">{productsError}</p>;
  if (!products) return <p>Loading products…</p>;
  if (!products.length) return <p>No products yet.</p>;
  return (
    <section>
      <div class="toolbar">
        <ProductSelect label="Product" name="product" products={products} value={state.product} onChange={(v) => set('product', v)} />
        <ProductSelect label="Compare with" name="compare" products={products} value={state.compare} allowNone="none" onChange={(v) => set('compare', v)} />
        <label>
          Per{' '}
          <select name="bucket" value={state.bucket} onChange={(e) => set('bucket', (e.target as HTMLSelectElement).value)}>
            <option value="HOUR">hour</option>
            <option value="DAY">day</option>
          </select>
        </label>
        <label>
          From <input type="date" name="from" value={state.from} onChange={(e) => set('from', (e.target as HTMLInputElement).value)} />
        </label>
        <label>
          To <input type="date" name="to" value={state.to} onChange={(e) => set('to', (e.target as HTMLInputElement).value)} />
        </label>
        <span class="muted">UTC</span>
      </div>
      {error && <p class="error">{error}</p>}
      {series && METRICS.map((m) => <Chart key={m.id} metric={m} series={series} />)}
    </section>
  );
}

function Chart(props: { metric: (typeof METRICS)[number]; series: { name: string; buckets: Bucket[] }[] }) {
  const { metric, series } = props;
  const box = useRef<HTMLDivElement>(null);
  // x: bucket starts in seconds (uPlot's time unit); one y series per product. Both products' stats
  // cover the same range and bucket, so their starts are the same.
  const xs = series[0].buckets.map((b) => Date.parse(b.start) / 1000);
  const ys = series.map((s) => s.buckets.map(metric.value));
  useEffect(() => {
    if (!box.current) return;
    const plot = new uPlot(
      {
        width: Math.min(960, box.current.clientWidth || 960),
        height: 220,
        scales: { x: { time: true }, ...(metric.range ? { y: { range: metric.range } } : {}) },
        axes: [{}, { values: (_u, ticks) => ticks.map((v) => metric.format(v)), size: 70 }],
        series: [{}, ...series.map((s, k) => ({ label: s.name, stroke: COLORS[k], width: 2, points: { show: true }, value: (_u: uPlot, v: number | null) => (v == null ? '–' : metric.format(v)) }))],
      },
      [xs, ...ys] as uPlot.AlignedData,
      box.current,
    );
    return () => plot.destroy();
  }, [JSON.stringify([xs, ys])]);
  return (
    <figure class="chart" data-testid={`chart-${metric.id}`} data-points={JSON.stringify({ x: xs, y: ys })}>
      <figcaption>{metric.title}</figcaption>
      <div ref={box} />
    </figure>
  );
}
