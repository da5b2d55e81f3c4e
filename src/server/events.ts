// Inspection change events (in-process pub/sub) behind the GraphQL subscriptions: the processor and the
// mutations publish, `inspectionUpdated` and `inspectionCompleted` listen.

import { createPubSub } from 'graphql-yoga';
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
}

export function createInspectionEvents(): InspectionEvents {
  const pubsub = createPubSub<{
    'inspection': [id: string, event: InspectionEvent];
    'product': [productId: string, event: InspectionEvent];
  }>();
  return {
    publish(event) {
      pubsub.publish('inspection', event.id, event);
      pubsub.publish('product', event.productId, event);
    },
    ofInspection: (id) => pubsub.subscribe('inspection', id),
    ofProduct: (productId) => pubsub.subscribe('product', productId),
  };
}
