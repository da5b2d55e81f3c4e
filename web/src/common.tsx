// Pieces shared by the views: product lists, images fetched with the key, number formats.

import { useEffect, useState } from 'preact/hooks';
import { fileUrl, gql, type Session } from './api.ts';

/** The fields of an inspection every view shows (its card, its row, its header). */
export interface InspectionSummary {
  id: string;
  status: string;
  verdict: string | null;
  imageScore: number | null;
  defectFraction: number | null;
  regionCount: number | null;
  createdAt: string;
  externalId: string | null;
}

export interface ProductSummary {
  id: string;
  name: string;
  line: string | null;
  scorer: 'BUILTIN' | 'EXTERNAL';
}

export function useProducts(session: Session): [ProductSummary[] | null, string | null] {
  const [products, setProducts] = useState<ProductSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    gql<{ products: ProductSummary[] }>(session.key, '{ products { id name line scorer } }').then(
      (d) => setProducts(d.products),
      (e: Error) => setError(e.message),
    );
  }, [session.key]);
  return [products, error];
}

export function ProductSelect(props: { products: ProductSummary[]; value: string; onChange: (id: string) => void; label: string; allowNone?: string; name?: string }) {
  return (
    <label>
      {props.label}{' '}
      <select name={props.name} value={props.value} onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)}>
        {props.allowNone !== undefined && <option value="">{props.allowNone}</option>}
        {props.products.map((p) => (
          <option value={p.id} key={p.id}>
            {p.name}
            {p.line ? ` (${p.line})` : ''}
          </option>
        ))}
      </select>
    </label>
  );
}

/** An image of the service, fetched with the key; the blob: URL is released when it goes. */
export function AuthImage(props: { session: Session; src: string; alt: string; class?: string; testid?: string }) {
  const [url, setUrl] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let made: string | null = null;
    let live = true;
    setUrl(null);
    setError(null);
    fileUrl(props.session.key, props.src).then(
      (u) => (live ? setUrl((made = u)) : URL.revokeObjectURL(u)),
      (e: Error) => live && setError(e.message),
    );
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [props.session.key, props.src]);
  if (error) return <span class="img-error" title={error}>{props.alt}: {error}</span>;
  if (!url) return <span class={`img-loading ${props.class ?? ''}`}>…</span>;
  return <img src={url} alt={props.alt} class={props.class} data-testid={props.testid} />;
}

export const fmt = {
  score: (v: number | null | undefined) => (v == null ? '–' : v.toFixed(3)),
  percent: (v: number | null | undefined, digits = 2) => (v == null ? '–' : `${(v * 100).toFixed(digits)} %`),
  time: (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' }) : '–'),
  ms: (v: number | null | undefined) => (v == null ? '–' : `${v.toFixed(1)} ms`),
};

export function Verdict(props: { verdict: string | null; status: string }) {
  const text = props.verdict ?? props.status;
  return <span class={`badge ${text.toLowerCase()}`}>{text}</span>;
}
