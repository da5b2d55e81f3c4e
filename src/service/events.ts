// Inspection change events (in-process pub/sub) behind the GraphQL subscriptions: the processor and the
// mutations publish, `inspectionUpdated` and `inspectionCompleted` listen.

import { createPubSub } from 'graphql-yoga';
import pg from 'pg';
import type { InspectionStatus } from '../generated/prisma/enums.ts';

export interface InspectionEvent {
  id: string;
  productId: string;
  /** The new status, or DELETED when the inspection is gone. */
  status: InspectionStatus | 'DELETED';
}

export interface InspectionEvents {
  publish(event: InspectionEvent): void;
  /** Every event of one inspection. */
  ofInspection(id: string): AsyncIterable<InspectionEvent>;
  /** Every event of one product's inspections. */
  ofProduct(productId: string): AsyncIterable<InspectionEvent>;
  /** Every event (the subscriber filters by the products it may see). */
  all(): AsyncIterable<InspectionEvent>;
}

export function createInspectionEvents(): InspectionEvents {
  const pubsub = createPubSub<{
    'inspection': [id: string, event: InspectionEvent];
    'product': [productId: string, event: InspectionEvent];
    'all': [event: InspectionEvent];
  }>();
  return {
    publish(event) {
      pubsub.publish('inspection', event.id, event);
      pubsub.publish('product', event.productId, event);
      pubsub.publish('all', event);
    },
    ofInspection: (id) => pubsub.subscribe('inspection', id),
    ofProduct: (productId) => pubsub.subscribe('product', productId),
    all: () => pubsub.subscribe('all'),
  };
}

/** The channel that carries inspection events between the processes sharing one PostgreSQL database. */
export const EVENTS_CHANNEL = 'ttt_inspection_events';

export interface SharedInspectionEvents extends InspectionEvents {
  close(): Promise<void>;
}

/**
 * Events shared by every process on one PostgreSQL database (server, workers) through LISTEN/NOTIFY, so
 * that a subscription on the server sees what a separate worker did. Each event is delivered locally at
 * once and to the other processes by NOTIFY; `onEvent` also sees the other processes' events (a worker
 * uses QUEUED to fetch at once instead of at its next poll). Best effort, as the in-process pub/sub:
 * a subscriber reads the current state from the database after subscribing.
 */
export async function createSharedInspectionEvents(
  url: string,
  options: { onEvent?: (event: InspectionEvent) => void; onError?: (error: Error) => void } = {},
): Promise<SharedInspectionEvents> {
  const local = createInspectionEvents();
  const origin = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  let client: pg.Client | null = null;
  let closed = false;
  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: url });
    c.on('error', (e) => {
      options.onError?.(e);
      if (client === c) client = null;
      // Reconnect: events published meanwhile reach this process's own subscribers only.
      if (!closed) setTimeout(() => void connect().catch((err: Error) => options.onError?.(err)), 1000);
    });
    c.on('notification', (n) => {
      if (!n.payload) return;
      const { o, e } = JSON.parse(n.payload) as { o: string; e: InspectionEvent };
      if (o === origin) return;
      local.publish(e);
      options.onEvent?.(e);
    });
    await c.connect();
    await c.query(`LISTEN ${EVENTS_CHANNEL}`);
    client = c;
  };
  await connect();
  return {
    publish(event) {
      local.publish(event);
      client?.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, JSON.stringify({ o: origin, e: event })]).catch((e: Error) => options.onError?.(e));
    },
    ofInspection: local.ofInspection,
    ofProduct: local.ofProduct,
    all: local.all,
    async close() {
      closed = true;
      const c = client;
      client = null;
      await c?.end();
    },
  };
}
