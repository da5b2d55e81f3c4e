// Hash routes (#/live, #/history?status=FAILED, #/inspection/<id>, #/trends, #/setup): the view and its
// filters live in the URL, so a view can be bookmarked or shared, and the server needs no page fallback.

import { useEffect, useState } from 'preact/hooks';

export interface Route {
  view: string;
  arg: string | null;
  params: URLSearchParams;
}

export function parseRoute(hash: string = location.hash): Route {
  const [path, query = ''] = hash.replace(/^#\/?/, '').split('?', 2);
  const [view, arg] = path.split('/', 2);
  return { view: view || 'live', arg: arg ? decodeURIComponent(arg) : null, params: new URLSearchParams(query) };
}

export function href(view: string, params: Record<string, string | null | undefined> = {}, arg?: string): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return `#/${view}${arg ? `/${encodeURIComponent(arg)}` : ''}${s ? `?${s}` : ''}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(parseRoute);
  useEffect(() => {
    const on = () => setRoute(parseRoute());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}
