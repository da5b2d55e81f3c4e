// Live: the newest inspections of a product, then each completion as the subscription reports it.

import { useEffect, useState } from 'preact/hooks';
import { gql, subscribe, thumbnailUrl, type Session } from '../api.ts';
import { AuthImage, fmt, ProductSelect, useProducts, Verdict, type InspectionSummary } from '../common.tsx';
import { href } from '../route.ts';

const FIELDS = 'id status verdict imageScore defectFraction regionCount createdAt finishedAt externalId errorCode';
const LIMIT = 24;

interface Row extends InspectionSummary {
  finishedAt: string | null;
  errorCode: string | null;
}

export function Live(props: { session: Session; productId: string | null }) {
  const { session } = props;
  const [products, productsError] = useProducts(session);
  const productId = props.productId ?? products?.[0]?.id ?? null;
  const [rows, setRows] = useState<Row[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [connected, setConnected] = useState(false);

  useEffect(() => {
    if (!productId) return;
    let live = true;
    setRows([]);
    setError(null);
    gql<{ inspections: { edges: { node: Row }[] } }>(
      session.key,
      `query($p: ID!, $n: Int!) { inspections(first: $n, filter: { productId: $p }) { edges { node { ${FIELDS} } } } }`,
      { p: productId, n: LIMIT },
    ).then(
      (d) => live && setRows((now) => merge(now, d.inspections.edges.map((e) => e.node))),
      (e: Error) => live && setError(e.message),
    );
    const stop = subscribe<{ inspectionCompleted: Row }>(
      session.key,
      `subscription($p: ID!) { inspectionCompleted(productId: $p) { ${FIELDS} } }`,
      { p: productId },
      (d) => live && (setConnected(true), setRows((now) => merge([d.inspectionCompleted], now))),
      (e) => live && setError(e instanceof Error ? e.message : 'the live feed ended'),
    );
    setConnected(true);
    return () => {
      live = false;
      stop();
    };
  }, [session.key, productId]);

  if (productsError) return <p class="error">{productsError}</p>;
  if (!products) return <p>Loading products…</p>;
  if (!products.length) return <p>No products yet{session.role === 'ADMIN' ? <> — create one under <a href="#/setup">Setup</a></> : ''}.</p>;
  return (
    <section>
      <div class="toolbar">
        <ProductSelect label="Product" name="product" products={products} value={productId ?? ''} onChange={(id) => (location.hash = href('live', { product: id }))} />
        <span class={connected && !error ? 'ok' : 'muted'}>{connected && !error ? '● live' : '○ not connected'}</span>
      </div>
      {error && <p class="error">{error}</p>}
      <ul class="cards" data-testid="live-list">
        {rows.map((r) => (
          <li class="card" key={r.id} data-id={r.id}>
            <a href={href('inspection', {}, r.id)}>
              {r.status === 'SUCCEEDED' && r.finishedAt ? (
                <AuthImage session={session} src={thumbnailUrl(r.id, r.finishedAt)} alt="overlay thumbnail" class="thumb" testid="thumbnail" />
              ) : (
                <span class="thumb placeholder">{r.status === 'FAILED' ? r.errorCode : r.status}</span>
              )}
            </a>
            <div>
              <Verdict verdict={r.verdict} status={r.status} />
              <dl>
                <dt>defect area</dt>
                <dd>{fmt.percent(r.defectFraction)}</dd>
                <dt>image score</dt>
                <dd>{fmt.score(r.imageScore)}</dd>
                <dt>finished</dt>
                <dd>{fmt.time(r.finishedAt ?? r.createdAt)}</dd>
              </dl>
              {r.externalId && <small>{r.externalId}</small>}
            </div>
          </li>
        ))}
      </ul>
      {!rows.length && !error && <p class="muted">No inspections of this product yet; new ones appear here when they complete.</p>}
    </section>
  );
}

/** Newest first, one row per inspection (a completion replaces the row it updates), at most LIMIT. */
function merge(first: Row[], rest: Row[]): Row[] {
  const seen = new Set<string>();
  return [...first, ...rest].filter((r) => !seen.has(r.id) && seen.add(r.id)).slice(0, LIMIT);
}
