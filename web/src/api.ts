// The page's access to the service: GraphQL over fetch (JSON, multipart uploads), subscriptions over SSE
// (graphql-sse, distinct connections, which yoga serves), and files fetched with the key into blob: URLs
// (an <img> cannot send an Authorization header). The key lives in sessionStorage: gone with the tab.

import { createClient, type Client } from 'graphql-sse';

const KEY = 'ttt-inspect.key';

export type Role = 'VIEWER' | 'STATION' | 'ADMIN';
const RANK: Record<Role, number> = { VIEWER: 0, STATION: 1, ADMIN: 2 };

export interface Session {
  key: string;
  role: Role;
  name: string | null;
}

export function may(session: Session, role: Role): boolean {
  return RANK[session.role] >= RANK[role];
}

/**
 * The tab's session, read back without a request: the views render at once (the server checks the key
 * on each of their requests) while main.tsx confirms the key and its role in the background.
 */
export function storedSession(): Session | null {
  const key = sessionStorage.getItem(KEY);
  if (!key) return null;
  const role = sessionStorage.getItem(`${KEY}.role`) as Role | null;
  return { key, role: role && role in RANK ? role : 'VIEWER', name: sessionStorage.getItem(`${KEY}.name`) };
}

export function forgetKey(): void {
  for (const k of [KEY, `${KEY}.role`, `${KEY}.name`]) sessionStorage.removeItem(k);
}

/** A refusal or GraphQL error, with the server's message and code. */
export class ApiError extends Error {
  constructor(message: string, readonly code: string | undefined, readonly status: number) {
    super(message);
  }
}

async function answer<T>(res: Response): Promise<T> {
  let body: { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  try {
    body = await res.json();
  } catch {
    throw new ApiError(`the service answered ${res.status} ${res.statusText}`, undefined, res.status);
  }
  if (body.errors?.length) throw new ApiError(body.errors.map((e) => e.message).join('; '), body.errors[0].extensions?.code, res.status);
  if (!res.ok || body.data === undefined) throw new ApiError(`the service answered ${res.status}`, undefined, res.status);
  return body.data;
}

export async function gql<T = any>(key: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch('/graphql', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return answer<T>(res);
}

/** A GraphQL multipart request: `files` maps a list variable (e.g. "images") to its files. */
export async function upload<T = any>(key: string, query: string, variables: Record<string, unknown>, files: Record<string, File[]>): Promise<T> {
  // The spec's placeholders: each list variable is a list of nulls that the map fills (a null variable
  // would be filled as an object with keys "0", "1", ..., which is not a list).
  variables = { ...variables, ...Object.fromEntries(Object.entries(files).map(([name, fs]) => [name, fs.map(() => null)])) };
  const form = new FormData();
  const map: Record<string, string[]> = {};
  const list: File[] = [];
  for (const [path, fs] of Object.entries(files)) fs.forEach((f, k) => ((map[String(list.length)] = [`variables.${path}.${k}`]), list.push(f)));
  form.set('operations', JSON.stringify({ query, variables }));
  form.set('map', JSON.stringify(map));
  list.forEach((f, k) => form.set(String(k), f));
  const res = await fetch('/graphql', { method: 'POST', headers: { authorization: `Bearer ${key}`, accept: 'application/json' }, body: form });
  return answer<T>(res);
}

/** Checks a key and returns the session it opens (stored for this tab only). */
export async function signIn(key: string): Promise<Session> {
  const trimmed = key.trim();
  if (!/^\S+$/.test(trimmed)) throw new ApiError('enter an API key (it starts with "ttt_")', 'UNAUTHENTICATED', 0);
  const data = await gql<{ currentApiKey: { role: Role; name: string | null } }>(trimmed, '{ currentApiKey { role name } }');
  sessionStorage.setItem(KEY, trimmed);
  sessionStorage.setItem(`${KEY}.role`, data.currentApiKey.role);
  if (data.currentApiKey.name === null) sessionStorage.removeItem(`${KEY}.name`);
  else sessionStorage.setItem(`${KEY}.name`, data.currentApiKey.name);
  return { key: trimmed, role: data.currentApiKey.role, name: data.currentApiKey.name };
}

let sse: { key: string; client: Client } | null = null;

/** Subscribes (SSE); returns the function that ends it. */
export function subscribe<T>(key: string, query: string, variables: Record<string, unknown>, onNext: (data: T) => void, onError: (e: unknown) => void): () => void {
  if (!sse || sse.key !== key) {
    sse?.client.dispose();
    sse = { key, client: createClient({ url: '/graphql', headers: { authorization: `Bearer ${key}` }, singleConnection: false, retryAttempts: 5 }) };
  }
  return sse.client.subscribe<T>({ query, variables }, {
    next: (r) => {
      if (r.errors?.length) onError(new ApiError(r.errors.map((e) => e.message).join('; '), undefined, 200));
      else if (r.data) onNext(r.data as T);
    },
    error: onError,
    complete: () => undefined,
  });
}

/** A file of the service (its URL may name another origin: PUBLIC_URL) as a blob: URL for an <img>. */
export async function fileUrl(key: string, url: string): Promise<string> {
  const u = new URL(url, location.origin);
  const res = await fetch(u.pathname + u.search, { headers: { authorization: `Bearer ${key}` } });
  if (!res.ok) throw new ApiError((await res.text()).trim() || `the service answered ${res.status}`, undefined, res.status);
  return URL.createObjectURL(await res.blob());
}

/** The inspection's UUID inside its global id (base64 of "Inspection:<uuid>"). */
export function rawId(globalId: string): string {
  const decoded = atob(globalId);
  return decoded.slice(decoded.indexOf(':') + 1);
}

export function thumbnailUrl(globalId: string, finishedAt: string, size = 160): string {
  return `/thumbnails/${rawId(globalId)}.png?size=${size}&v=${Date.parse(finishedAt)}`;
}
