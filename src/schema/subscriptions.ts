// Live updates over SSE: one inspection's every change, or the completed inspections of a product or of
// every product the key may see.

import { TttError } from '../core/errors.ts';
import { builder, type Context } from '../builder.ts';
import type { InspectionStatus } from '../generated/prisma/enums.ts';
import type { InspectionEvent } from '../service/events.ts';
import { inScope } from '../service/auth.ts';
import { localId, notFound } from '../service/ids.ts';
import { visibleProductId } from '../service/products.ts';
import { withId } from './select.ts';

/** The current state first (so that a late subscriber misses nothing), then every change until deletion. */
async function* watchInspection(
  it: AsyncIterator<InspectionEvent>,
  pending: Promise<IteratorResult<InspectionEvent>>,
  current: InspectionEvent,
): AsyncGenerator<InspectionEvent> {
  try {
    yield current;
    for (let r = await pending; !r.done; r = await it.next()) {
      if (r.value.status === 'DELETED') return;
      yield r.value;
    }
  } finally {
    await it.return?.();
  }
}

/** The completions among `events` of the products `visible` accepts. */
async function* completed(events: AsyncIterable<InspectionEvent>, visible: (productId: string) => boolean = () => true): AsyncGenerator<InspectionEvent> {
  for await (const e of events) if ((e.status === 'SUCCEEDED' || e.status === 'FAILED') && visible(e.productId)) yield e;
}

/**
 * The inspection of an event, with the event's status: each delivery reports its own transition even if
 * the row has moved on (both streams end before a DELETED event).
 */
async function resolveEvent(query: { select?: object; include?: object }, event: unknown, _args: unknown, ctx: Context) {
  const { id, status } = event as InspectionEvent;
  const row = await ctx.db.inspection.findUniqueOrThrow({ ...withId(query), where: { id } });
  return Object.assign(row, { status: status as InspectionStatus });
}

builder.subscriptionType({
  fields: (t) => ({
    inspectionUpdated: t.prismaField({
      type: 'Inspection',
      description: 'The inspection now, then after each status change (QUEUED, RUNNING, SUCCEEDED, FAILED); ends when it is deleted.',
      args: { id: t.arg.id({ required: true }) },
      subscribe: async (_root, { id }, ctx) => {
        const inspectionId = localId('Inspection', String(id));
        const it = ctx.events.ofInspection(inspectionId)[Symbol.asyncIterator]();
        // Listen before reading the current state, so that no change falls in between.
        const pending = it.next();
        const current = await ctx.db.inspection.findUnique({ where: { id: inspectionId }, select: { id: true, productId: true, status: true } });
        if (!current || !inScope(ctx.auth, current.productId)) {
          await it.return?.();
          throw new TttError('NOT_FOUND', `no Inspection with id ${String(id)}`);
        }
        return watchInspection(it, pending, current);
      },
      resolve: resolveEvent,
    }),
    inspectionCompleted: t.prismaField({
      type: 'Inspection',
      args: { productId: t.arg.id({ required: false }) },
      description:
        "Each inspection that reaches SUCCEEDED or FAILED: of the product given (an unknown product is a NOT_FOUND error), or without productId of every product the key may see.",
      subscribe: async (_root, { productId }, ctx) => {
        if (productId === null || productId === undefined) return completed(ctx.events.all(), (p) => inScope(ctx.auth, p));
        return completed(ctx.events.ofProduct(await visibleProductId(ctx.db, ctx.auth, String(productId))));
      },
      resolve: resolveEvent,
    }),
  }),
});
