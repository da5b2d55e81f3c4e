// inspectionStats: counts, defect rate and mean defect area per hour or day for the dashboards.

import { builder } from '../builder.ts';
import { visibleProductId } from '../service/products.ts';
import { inspectionStats, type BucketStats, type InspectionStats } from '../service/stats.ts';

const StatsBucketEnum = builder.enumType('StatsBucket', { values: ['HOUR', 'DAY'] as const, description: 'Bucket width (UTC).' });

type Counts = Omit<BucketStats, 'start'>;

const InspectionCounts = builder.interfaceRef<Counts>('InspectionCounts').implement({
  fields: (t) => ({
    total: t.exposeInt('total', { description: 'Inspections created in the period.' }),
    queued: t.exposeInt('queued'),
    running: t.exposeInt('running'),
    succeeded: t.exposeInt('succeeded'),
    failed: t.exposeInt('failed'),
    defective: t.exposeInt('defective', { description: 'Succeeded with verdict DEFECTIVE.' }),
    nominal: t.exposeInt('nominal', { description: 'Succeeded with verdict NOMINAL.' }),
    defectRate: t.exposeFloat('defectRate', { nullable: true, description: 'defective / succeeded (null without succeeded inspections).' }),
    meanDefectFraction: t.exposeFloat('meanDefectFraction', { nullable: true, description: 'Mean defect area fraction of the succeeded inspections.' }),
  }),
});

const StatsTotals = builder.objectRef<Counts>('InspectionStatsTotals').implement({ interfaces: [InspectionCounts], fields: () => ({}) });

const StatsBucketRow = builder.objectRef<BucketStats>('InspectionStatsBucket').implement({
  interfaces: [InspectionCounts],
  fields: (t) => ({
    start: t.expose('start', { type: 'DateTime', description: 'Start of the bucket (UTC).' }),
  }),
});

const InspectionStatsType = builder.objectRef<InspectionStats>('InspectionStats').implement({
  fields: (t) => ({
    bucket: t.expose('bucket', { type: StatsBucketEnum }),
    from: t.expose('from', { type: 'DateTime' }),
    to: t.expose('to', { type: 'DateTime' }),
    totals: t.expose('totals', { type: StatsTotals }),
    buckets: t.expose('buckets', { type: [StatsBucketRow], description: 'Every bucket of the range in order, empty ones included.' }),
  }),
});

builder.queryField('inspectionStats', (t) =>
  t.field({
    type: InspectionStatsType,
    description:
      "Inspection statistics per bucket (UTC hours or days) of one product or of all the caller's key may see: every whole bucket that overlaps [from, to), by creation time. An unknown product is a NOT_FOUND error.",
    args: {
      productId: t.arg.id(),
      from: t.arg({ type: 'DateTime', required: true }),
      to: t.arg({ type: 'DateTime', required: true }),
      bucket: t.arg({ type: StatsBucketEnum, required: true, defaultValue: 'DAY' }),
    },
    resolve: async (_root, args, ctx) => {
      let productIds: readonly string[] | null = ctx.auth.productIds;
      if (args.productId) {
        productIds = [await visibleProductId(ctx.db, ctx.auth, String(args.productId))];
      }
      return inspectionStats(ctx.db, { productIds, from: args.from, to: args.to, bucket: args.bucket });
    },
  }),
);
