// Access control at the HTTP edge: every request (GraphQL, SSE subscriptions, file routes) must carry
// `Authorization: Bearer <key>` of a live API key (401 otherwise), stays within that key's rate (429),
// comes from an address that has not failed too many authentications (429), and each operation's root
// fields must be allowed to the key's role (403 FORBIDDEN); subscriptions end when their key does. Product scope is
// enforced deeper, where the data is read (service/auth.ts). GraphiQL's page and assets, yoga's health
// check, CORS preflights and 404s for unknown paths are answered before this runs and carry no data. It
// reads the headers only: the body of a refused request is never read.

import { getOperationAST, GraphQLError, NoSchemaIntrospectionCustomRule, type DocumentNode, type GraphQLSchema, type SelectionSetNode } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { PrismaClient } from '../db.ts';
import { hasRole, OPERATION_ROLES, type Principal } from '../service/auth.ts';
import { authenticate } from '../service/keys.ts';
import type { Logger } from '../service/log.ts';
import type { OpenSubscriptions } from '../service/openSubscriptions.ts';

const principals = new WeakMap<Request, Principal>();

/** The principal the auth plugin found for this request (undefined before it ran or when it refused). */
export function principalOf(request: Request): Principal | undefined {
  return principals.get(request);
}

export function jsonError(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ errors: [{ message, extensions: { code } }] }), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}

/**
 * Token buckets by name (an API key's id, a client address): `burst` at once, refilled at `perMinute` per
 * minute. In memory, per process: N processes behind a balancer allow N times the rate. Full buckets are
 * forgotten when the map grows, so that many names (addresses) cannot grow it without bound.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;
  private pruneAt = 1024;
  constructor(
    readonly perMinute: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.perMs = perMinute / 60_000;
  }

  /** Buckets held (tests). */
  get size(): number {
    return this.buckets.size;
  }

  /** The bucket's tokens at time t (refilled since it was last touched, at most the burst). */
  private level(b: { tokens: number; at: number }, t: number): number {
    return Math.min(this.burst, b.tokens + (t - b.at) * this.perMs);
  }

  private refilled(key: string, t: number): { tokens: number; at: number } {
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    b.tokens = this.level(b, t);
    b.at = t;
    return b;
  }

  /** The milliseconds until a token is available (0: now), taking none. */
  wait(key: string): number {
    const b = this.buckets.get(key);
    if (!b) return 0;
    const tokens = this.level(b, this.now());
    return tokens >= 1 ? 0 : Math.ceil((1 - tokens) / this.perMs);
  }

  /** Takes a token; returns 0 when allowed, else the milliseconds until one is available. */
  take(key: string): number {
    const t = this.now();
    const b = this.refilled(key, t);
    this.buckets.set(key, b);
    if (this.buckets.size > this.pruneAt) this.prune(t);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) / this.perMs);
  }

  private prune(t: number): void {
    for (const [key, b] of this.buckets) if (this.level(b, t) >= this.burst) this.buckets.delete(key);
    // Amortized: the next sweep waits until the map has doubled.
    this.pruneAt = Math.max(1024, 2 * this.buckets.size);
  }
}

/** Node's http server context (yoga passes `{ req, res }`); absent under `yoga.fetch`. */
export interface NodeServerContext {
  req?: { socket?: { remoteAddress?: string } };
}

/**
 * The bucket of a client address for failed authentications: an IPv4 address (IPv4-mapped IPv6 too) as it
 * is, an IPv6 address by its /64 (one host usually holds a whole /64), and one shared bucket when the
 * address is unknown. X-Forwarded-For is read only when the proxy in front is trusted to set it: its last
 * entry is the address the nearest proxy saw.
 */
export function clientAddress(request: Request, serverContext: NodeServerContext | undefined, trustProxy: boolean): string {
  let address = serverContext?.req?.socket?.remoteAddress;
  if (trustProxy) {
    const forwarded = request.headers.get('x-forwarded-for')?.split(',').at(-1)?.trim();
    if (forwarded) address = forwarded;
  }
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (!address.includes(':')) return address;
  const [head, tail] = address.toLowerCase().split('%')[0].split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

export interface AuthLimits {
  /** Requests per key. */
  keys: RateLimiter;
  /** Failed authentications per client address. */
  failures: RateLimiter;
  trustProxy: boolean;
}

export function authPlugin(db: PrismaClient, limits: AuthLimits, logger: Logger): Plugin<Record<string, unknown>, NodeServerContext> {
  return {
    async onRequest({ request, serverContext, endResponse }) {
      const header = request.headers.get('authorization') ?? '';
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      // A refused request's body is never read: its connection is closed after the answer, rather than
      // left to Node, which would read (and drop) the rest of the body to keep the connection alive.
      const close: Record<string, string> = request.body ? { connection: 'close' } : {};
      const challenge = { 'www-authenticate': 'Bearer realm="ttt-inspect"', ...close };
      if (!m) {
        endResponse(jsonError(401, 'UNAUTHENTICATED', 'an API key is required: send "Authorization: Bearer <key>"', challenge));
        return;
      }
      // An address that keeps presenting bad keys is refused before its keys are looked up.
      const address = clientAddress(request, serverContext, limits.trustProxy);
      const blockedMs = limits.failures.wait(address);
      if (blockedMs > 0) {
        const seconds = Math.max(1, Math.ceil(blockedMs / 1000));
        endResponse(
          jsonError(429, 'RATE_LIMITED', `too many failed authentications from this address (more than ${limits.failures.perMinute} per minute); retry in ${seconds} s`, {
            'retry-after': String(seconds),
            ...close,
          }),
        );
        return;
      }
      let principal: Principal | null;
      try {
        principal = await authenticate(db, m[1]);
      } catch (error) {
        logger.log('error', 'unexpected error', { error });
        endResponse(jsonError(500, 'INTERNAL', 'Unexpected error.', close));
        return;
      }
      if (!principal) {
        limits.failures.take(address);
        logger.log('warn', 'authentication failed', { path: new URL(request.url).pathname, address });
        endResponse(jsonError(401, 'UNAUTHENTICATED', 'the API key is invalid or revoked', { ...challenge, 'www-authenticate': 'Bearer realm="ttt-inspect", error="invalid_token"' }));
        return;
      }
      const waitMs = limits.keys.take(principal.keyId);
      if (waitMs > 0) {
        const seconds = Math.max(1, Math.ceil(waitMs / 1000));
        endResponse(
          jsonError(429, 'RATE_LIMITED', `rate limit of ${limits.keys.perMinute} requests per minute (bursts of ${limits.keys.burst}) exceeded for this key; retry in ${seconds} s`, {
            'retry-after': String(seconds),
            ...close,
          }),
        );
        return;
      }
      principals.set(request, principal);
    },
  };
}

/** The root field names an operation selects (through fragments too), whatever its directives. */
export function rootFields(document: DocumentNode, operationName?: string | null): { type: 'Query' | 'Mutation' | 'Subscription'; fields: string[] } | null {
  const op = getOperationAST(document, operationName ?? undefined);
  if (!op) return null;
  const fragments = new Map(document.definitions.flatMap((d) => (d.kind === 'FragmentDefinition' ? [[d.name.value, d] as const] : [])));
  const fields = new Set<string>();
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode) => {
    for (const s of set.selections) {
      if (s.kind === 'Field') fields.add(s.name.value);
      else if (s.kind === 'InlineFragment') walk(s.selectionSet);
      else if (!seen.has(s.name.value)) {
        seen.add(s.name.value);
        const f = fragments.get(s.name.value);
        if (f) walk(f.selectionSet);
      }
    }
  };
  walk(op.selectionSet);
  const type = op.operation === 'query' ? 'Query' : op.operation === 'mutation' ? 'Mutation' : 'Subscription';
  return { type, fields: [...fields] };
}

/** Why the principal may not run the operation, or null when it may. */
export function forbiddenReason(principal: Principal, document: DocumentNode, operationName?: string | null): string | null {
  const root = rootFields(document, operationName);
  if (!root) return null; // graphql-js reports the missing operation itself
  for (const field of root.fields) {
    if (field.startsWith('__')) continue;
    const needed = OPERATION_ROLES[root.type][field];
    if (needed === undefined) return `${root.type}.${field} is not available to any API key`;
    if (!hasRole(principal, needed)) return `${root.type}.${field} needs a ${needed} key; this key is ${principal.role}`;
  }
  return null;
}

function forbidden(reason: string) {
  return { errors: [new GraphQLError(reason, { extensions: { code: 'FORBIDDEN', http: { status: 403 } } })] };
}

export function operationRolesPlugin(): Plugin<{ auth: Principal }> {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const reason = forbiddenReason(args.contextValue.auth, args.document, args.operationName);
      if (reason) setResultAndStopExecution(forbidden(reason));
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const reason = forbiddenReason(args.contextValue.auth, args.document, args.operationName);
      if (reason) setResultAndStopExecution(forbidden(reason));
    },
  };
}

/** Each subscription's stream ends when its key is revoked or its role or products change (see openSubscriptions.ts). */
export function subscriptionKeysPlugin(open: OpenSubscriptions): Plugin<{ auth: Principal }> {
  return {
    onSubscribe() {
      return {
        onSubscribeResult({ args, result, setResult }) {
          if (isAsyncIterable(result)) setResult(open.guard(args.contextValue.auth, result));
        },
      };
    },
  };
}

/** Refuses __schema and __type queries when introspection is disabled (__typename stays allowed). */
export function disableIntrospectionPlugin(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(NoSchemaIntrospectionCustomRule);
    },
  };
}

/** Every root field of the schema must have a role: a field added without one would be open to all. */
export function checkOperationRoles(schema: GraphQLSchema): void {
  const roots = { Query: schema.getQueryType(), Mutation: schema.getMutationType(), Subscription: schema.getSubscriptionType() };
  const missing: string[] = [];
  for (const [name, type] of Object.entries(roots) as [keyof typeof OPERATION_ROLES, typeof roots.Query][]) {
    for (const field of Object.keys(type?.getFields() ?? {})) if (!OPERATION_ROLES[name][field]) missing.push(`${name}.${field}`);
  }
  if (missing.length > 0) throw new Error(`no role is set for ${missing.join(', ')} (service/auth.ts OPERATION_ROLES)`);
}
