// History: the inspections connection with keyset paging ("Load more"), filtered and sorted by the URL's
// parameters (product, status, verdict, from, to, sort, dir), so that a view can be shared.

import { useEffect, useState } from 'preact/hooks';
import { gql, type Session } from '../api.ts';
import { fmt, ProductSelect, useProducts, Verdict, type InspectionSummary } from '../common.tsx';
import { href } from '../route.ts';

const PAGE = 50;
const STATUSES = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED'];
const VERDICTS = ['DEFECTIVE', 'NOMINAL'];
const SORTS: Record<string, string> = { time: 'CREATED_AT', score: 'IMAGE_SCORE' };

interface Row extends InspectionSummary {
  product: { name: string };
}

const QUERY = `query($first: Int!, $after: String, $filter: InspectionFilter, $orderBy: InspectionOrder) {
  inspections(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    edges { node { id status verdict imageScore defectFraction regionCount createdAt externalId product { name } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

/** A datetime-local value (local time) as an ISO instant; null when empty or invalid. */
function instant(local: string | null): string | null {
  if (!local) return null;
  const t = new Date(local);
  return Number.isNaN(t.getTime()) ? null : t.toISOString();
}

export function History(props: { session: Session; params: URLSearchParams }) {
  const { session, params } = props;
  const [products] = useProducts(session);
  const state = {
    product: params.get('product') ?? '',
    status: params.get('status') ?? '',
    verdict: params.get('verdict') ?? '',
    from: params.get('from') ?? '',
    to: params.get('to') ?? '',
    sort: SORTS[params.get('sort') ?? ''] ? params.get('sort')! : 'time',
    dir: params.get('dir') === 'asc' ? 'asc' : 'desc',
  };
  const key = JSON.stringify(state);
  const [rows, setRows] = useState<Row[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [more, setMore] = useState(false);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const variables = (after: string | null) => ({
    first: PAGE,
    after,
    filter: {
      productId: state.product || null,
      status: state.status || null,
      verdict: state.verdict || null,
      from: instant(state.from),
      to: instant(state.to),
    },
    orderBy: { field: SORTS[state.sort], direction: state.dir.toUpperCase() },
  });

  const load = (after: string | null, into: Row[]) => {
    setLoading(true);
    setError(null);
    return gql<{ inspections: { edges: { node: Row }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } }>(session.key, QUERY, variables(after)).then(
      (d) => {
        setRows([...into, ...d.inspections.edges.map((e) => e.node)]);
        setCursor(d.inspections.pageInfo.endCursor);
        setMore(d.inspections.pageInfo.hasNextPage);
        setLoading(false);
      },
      (e: Error) => {
        setError(e.message);
        setLoading(false);
      },
    );
  };

  useEffect(() => {
    setRows(null);
    void load(null, []);
  }, [session.key, key]);

  const set = (name: string, value: string) => (location.hash = href('history', { ...state, [name]: value }));

  return (
    <section>
      <form class="toolbar" onSubmit={(e) => e.preventDefault()}>
        {products && <ProductSelect label="Product" name="product" products={products} value={state.product} allowNone="every product" onChange={(v) => set('product', v)} />}
        <label>
          Status{' '}
          <select name="status" value={state.status} onChange={(e) => set('status', (e.target as HTMLSelectElement).value)}>
            <option value="">any</option>
            {STATUSES.map((s) => <option key={s}>{s}</option>)}
          </select>
        </label>
        <label>
          Verdict{' '}
          <select name="verdict" value={state.verdict} onChange={(e) => set('verdict', (e.target as HTMLSelectElement).value)}>
            <option value="">any</option>
            {VERDICTS.map((s) => <option key={s}>{s}</option>)}
          </select>
        </label>
        <label>
          From <input type="datetime-local" name="from" value={state.from} onChange={(e) => set('from', (e.target as HTMLInputElement).value)} />
        </label>
        <label>
          To <input type="datetime-local" name="to" value={state.to} onChange={(e) => set('to', (e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Sort{' '}
          <select name="sort" value={state.sort} onChange={(e) => set('sort', (e.target as HTMLSelectElement).value)}>
            <option value="time">time</option>
            <option value="score">image score</option>
          </select>
        </label>
        <label>
          <select name="dir" value={state.dir} onChange={(e) => set('dir', (e.target as HTMLSelectElement).value)}>
            <option value="desc">descending</option>
            <option value="asc">ascending</option>
          </select>
        </label>
      </form>
      {error && <p class="error">{error}</p>}
      {rows === null ? (
        !error && <p>Loading…</p>
      ) : (
        <table data-testid="history-table">
          <thead>
            <tr>
              <th>Created</th>
              <th>Product</th>
              <th>Verdict</th>
              <th class="num">Image score</th>
              <th class="num">Defect area</th>
              <th class="num">Regions</th>
              <th>External id</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id} data-id={r.id}>
                <td>
                  <a href={href('inspection', {}, r.id)}>{fmt.time(r.createdAt)}</a>
                </td>
                <td>{r.product.name}</td>
                <td>
                  <Verdict verdict={r.verdict} status={r.status} />
                </td>
                <td class="num">{fmt.score(r.imageScore)}</td>
                <td class="num">{fmt.percent(r.defectFraction)}</td>
                <td class="num">{r.regionCount ?? '–'}</td>
                <td>{r.externalId ?? ''}</td>
              </tr>
            ))}
            {!rows.length && (
              <tr>
                <td colSpan={7} class="muted">
                  No inspections match.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {more && (
        <button disabled={loading} onClick={() => rows && load(cursor, rows)}>
          {loading ? 'Loading…' : 'Load more'}
        </button>
      )}
    </section>
  );
}
