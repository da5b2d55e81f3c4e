// Inspections: the Inspection node with its regions and file URLs, the dashboard's inspections
// connection, and submitInspection / reprocessInspection / deleteInspection.

import { builder, type Context } from '../builder.ts';
import { InspectionStatus, ScoreSource, Verdict } from '../generated/prisma/enums.ts';
import type { Prisma } from '../generated/prisma/client.ts';
import { inspectionScope } from '../service/auth.ts';
import type { FileKind } from '../service/files.ts';
import { localId, tryLocalId } from '../service/ids.ts';
import { deleteInspection, reprocessInspection, submitInspection } from '../service/inspections.ts';
import { optionPairs } from '../service/options.ts';
import { ErrorCodeEnum, EXPECTED_ERRORS, mutationErrors } from './errors.ts';
import { OptionInput, OptionValue } from './options.ts';
import type { ErrorCode } from '../core/errors.ts';
import { withId } from './select.ts';

export const InspectionStatusEnum = builder.enumType(InspectionStatus, { name: 'InspectionStatus' });
export const VerdictEnum = builder.enumType(Verdict, {
  name: 'Verdict',
  description: 'DEFECTIVE when the mask holds at least one defect region, NOMINAL otherwise.',
});

const ScoreSourceEnum = builder.enumType(ScoreSource, {
  name: 'ScoreSource',
  description: "Where an inspection's score map came from.",
  values: {
    UPLOADED: { description: 'Uploaded with the submission.' },
    BUILTIN: { description: "Computed while processing, by the product's built-in scorer with its current memory bank." },
  },
});

const BoundingBox = builder.objectRef<{ x: number; y: number; width: number; height: number }>('BoundingBox').implement({
  description: 'Pixels, origin at the top-left corner of the image.',
  fields: (t) => ({ x: t.exposeInt('x'), y: t.exposeInt('y'), width: t.exposeInt('width'), height: t.exposeInt('height') }),
});

const Point = builder.objectRef<{ x: number; y: number }>('Point').implement({
  fields: (t) => ({ x: t.exposeFloat('x'), y: t.exposeFloat('y') }),
});

builder.prismaObject('Region', {
  description: 'A connected defect region of the mask.',
  fields: (t) => ({
    index: t.exposeInt('index', { description: 'Label of the region within its inspection (1-based).' }),
    area: t.exposeInt('area', { description: 'Pixels.' }),
    bbox: t.field({ type: BoundingBox, resolve: (r) => ({ x: r.bboxX, y: r.bboxY, width: r.bboxWidth, height: r.bboxHeight }) }),
    centroid: t.field({ type: Point, resolve: (r) => ({ x: r.centroidX, y: r.centroidY }) }),
    meanScore: t.exposeFloat('meanScore', { description: 'Mean anomaly score over the region.' }),
    maxScore: t.exposeFloat('maxScore'),
  }),
});

const PseudoLabelCounts = builder.objectRef<{ anomalous: number; nominal: number }>('PseudoLabelCounts').implement({
  fields: (t) => ({ anomalous: t.exposeInt('anomalous'), nominal: t.exposeInt('nominal') }),
});

const StagePlacementEnum = builder.enumType('StagePlacement', {
  description: 'Where a processing stage ran: on the GPU (WGSL kernels) or on the host CPU (compute.stages).',
  values: { GPU: { value: 'gpu' }, HOST: { value: 'host' } } as const,
});

const StageTiming = builder.objectRef<{ stage: string; ms: number; on: 'gpu' | 'host' | null }>('StageTiming').implement({
  fields: (t) => ({
    stage: t.exposeString('stage'),
    ms: t.exposeFloat('ms'),
    on: t.expose('on', { type: StagePlacementEnum, nullable: true, description: 'Where the stage ran (null for inspections processed before this was recorded).' }),
  }),
});

const PixelMetrics = builder.objectRef<{ precision: number; recall: number; f1: number; iou: number }>('PixelMetrics').implement({
  description: 'The predicted mask against the ground truth uploaded with the inspection.',
  fields: (t) => ({
    precision: t.exposeFloat('precision'),
    recall: t.exposeFloat('recall'),
    f1: t.exposeFloat('f1'),
    iou: t.exposeFloat('iou'),
  }),
});

/** Processing order of the stages (jsonb does not keep the stored key order). */
const STAGE_ORDER = ['decode', 'score', 'upload', 'stats', 'pseudoLabels', 'features', 'gather', 'classifier', 'predict', 'refine', 'regions', 'encode'];
const stageRank = (stage: string) => (STAGE_ORDER.includes(stage) ? STAGE_ORDER.indexOf(stage) : STAGE_ORDER.length);

function fileUrl(ctx: Context, id: string, kind: FileKind): string {
  return `${ctx.baseUrl}/files/inspections/${id}/${kind}.png`;
}

export const InspectionNode = builder.prismaNode('Inspection', {
  id: { field: 'id' },
  // node(id) finds only inspections of the caller's products.
  findUnique: (id, ctx) => ({ id, AND: [inspectionScope(ctx.auth)] }),
  // A missing or out-of-scope id resolves to null (not an error).
  nullable: true,
  select: { id: true },
  description: 'One submitted sample: its inputs, processing status and results.',
  fields: (t) => ({
    product: t.relation('product'),
    externalId: t.exposeString('externalId', { nullable: true, description: "The station's id for the sample (unique per product)." }),
    status: t.expose('status', { type: InspectionStatusEnum }),
    errorCode: t.field({ type: ErrorCodeEnum, nullable: true, select: { errorCode: true }, resolve: (i) => i.errorCode as ErrorCode | null }),
    errorMessage: t.exposeString('errorMessage', { nullable: true }),
    options: t.field({ type: [OptionValue], description: "Option overrides on top of the product's.", select: { options: true }, resolve: (i) => optionPairs(i.options) }),
    width: t.exposeInt('width'),
    height: t.exposeInt('height'),
    channels: t.exposeInt('channels'),
    scoreSource: t.expose('scoreSource', { type: ScoreSourceEnum }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    verdict: t.expose('verdict', { type: VerdictEnum, nullable: true }),
    imageScore: t.exposeFloat('imageScore', { nullable: true, description: 'The image-level anomaly score: the maximum of the score map; with map.borderNormalize and a calibration that has a border profile, of the normalized map (in nominal standard deviations).' }),
    defectFraction: t.exposeFloat('defectFraction', { nullable: true, description: 'Share of the image\'s pixels in the mask.' }),
    regionCount: t.exposeInt('regionCount', { nullable: true }),
    pseudoLabels: t.field({
      type: PseudoLabelCounts,
      nullable: true,
      select: { anomalousLabels: true, nominalLabels: true },
      resolve: (i) => (i.anomalousLabels === null || i.nominalLabels === null ? null : { anomalous: i.anomalousLabels, nominal: i.nominalLabels }),
    }),
    classifierLoss: t.exposeFloat('classifierLoss', { nullable: true, description: 'Final training loss (null when no classifier was trained).' }),
    classifierEpochs: t.exposeInt('classifierEpochs', { nullable: true }),
    gateThreshold: t.exposeFloat('gateThreshold', { nullable: true, description: 'Threshold of the image-level gate, when the product is calibrated (in the units of imageScore).' }),
    emptyReason: t.exposeString('emptyReason', { nullable: true, description: 'Why the mask is empty without a classifier (gate, no pseudo-labels).' }),
    stageMs: t.field({
      type: [StageTiming],
      description: 'Milliseconds per processing stage, in processing order.',
      select: { stageMs: true },
      resolve: (i) => {
        // Stored as { <stage>: ms, ..., placement: { <stage>: 'gpu' | 'host' } } (placement since it exists).
        const stored = (i.stageMs ?? {}) as Record<string, unknown>;
        const on = (stored.placement ?? {}) as Record<string, 'gpu' | 'host'>;
        return Object.entries(stored)
          .filter((e): e is [string, number] => typeof e[1] === 'number')
          .map(([stage, ms]) => ({ stage, ms, on: on[stage] ?? null }))
          .sort((a, b) => stageRank(a.stage) - stageRank(b.stage) || a.stage.localeCompare(b.stage));
      },
    }),
    totalMs: t.exposeFloat('totalMs', { nullable: true }),
    metrics: t.field({
      type: PixelMetrics,
      nullable: true,
      select: { precision: true, recall: true, f1: true, iou: true },
      resolve: (i) => (i.precision === null || i.recall === null || i.f1 === null || i.iou === null ? null : { precision: i.precision, recall: i.recall, f1: i.f1, iou: i.iou }),
    }),
    regions: t.relation('regions', { query: { orderBy: { index: 'asc' } } }),
    imageUrl: t.string({ resolve: (i, _args, ctx) => fileUrl(ctx, i.id, 'image') }),
    scoreMapUrl: t.string({
      nullable: true,
      description: 'The score map as a heat map: the uploaded one, or (scoreSource BUILTIN) the computed one once the inspection SUCCEEDED.',
      select: { blobs: { where: { kind: 'SCORE_MAP' }, select: { kind: true } } },
      resolve: (i, _args, ctx) => (i.blobs.length > 0 ? fileUrl(ctx, i.id, 'score-map') : null),
    }),
    maskUrl: t.string({ nullable: true, select: { status: true }, resolve: (i, _args, ctx) => (i.status === 'SUCCEEDED' ? fileUrl(ctx, i.id, 'mask') : null) }),
    overlayUrl: t.string({
      nullable: true,
      description: 'The image with the mask and region boxes drawn over it.',
      select: { status: true },
      resolve: (i, _args, ctx) => (i.status === 'SUCCEEDED' ? fileUrl(ctx, i.id, 'overlay') : null),
    }),
  }),
});

const InspectionFilter = builder.inputType('InspectionFilter', {
  fields: (t) => ({
    productId: t.id(),
    externalId: t.string({ description: "The station's id of the part (e.g. its serial number), matched exactly; with productId it is one inspection at most." }),
    status: t.field({ type: InspectionStatusEnum }),
    verdict: t.field({ type: VerdictEnum }),
    from: t.field({ type: 'DateTime', description: 'Created at or after.' }),
    to: t.field({ type: 'DateTime', description: 'Created before.' }),
  }),
});

const InspectionOrderField = builder.enumType('InspectionOrderField', {
  description: 'IMAGE_SCORE and DEFECT_FRACTION list only the inspections that have one (the SUCCEEDED ones).',
  values: ['CREATED_AT', 'IMAGE_SCORE', 'DEFECT_FRACTION'] as const,
});
const OrderDirection = builder.enumType('OrderDirection', { values: ['ASC', 'DESC'] as const });

const InspectionOrder = builder.inputType('InspectionOrder', {
  fields: (t) => ({
    field: t.field({ type: InspectionOrderField, required: true }),
    direction: t.field({ type: OrderDirection, required: true, defaultValue: 'DESC' }),
  }),
});

type FilterInput = typeof InspectionFilter.$inferInput;
type OrderInput = typeof InspectionOrder.$inferInput;

function inspectionWhere(filter: FilterInput | null | undefined): Prisma.InspectionWhereInput {
  if (!filter) return {};
  const where: Prisma.InspectionWhereInput = {};
  if (filter.productId) where.productId = localId('Product', String(filter.productId));
  if (filter.externalId !== null && filter.externalId !== undefined) where.externalId = filter.externalId;
  if (filter.status) where.status = filter.status;
  if (filter.verdict) where.verdict = filter.verdict;
  if (filter.from || filter.to) where.createdAt = { ...(filter.from ? { gte: filter.from } : {}), ...(filter.to ? { lt: filter.to } : {}) };
  return where;
}

type ScoreField = 'imageScore' | 'defectFraction';
type Direction = 'asc' | 'desc';

/** The connection's page as Pothos plans it: Prisma's cursor arguments plus the nested selection. */
type PageQuery = { cursor?: Prisma.InspectionWhereUniqueInput; take: number; skip: number } & Record<string, unknown>;

/**
 * One page ordered by a score, with the keyset condition written out: Prisma pages cursor queries on
 * nullable columns in memory (no SQL LIMIT), which would read every remaining row. Same semantics as
 * Prisma's cursor arguments (negative take = the rows before the cursor).
 */
async function scorePage(ctx: Context, query: PageQuery, where: Prisma.InspectionWhereInput, field: ScoreField, direction: Direction) {
  const { cursor, take, skip, ...selection } = query;
  const dir: Direction = take < 0 ? (direction === 'asc' ? 'desc' : 'asc') : direction;
  const conditions: Prisma.InspectionWhereInput[] = [where, { [field]: { not: null } }];
  if (cursor) {
    const at = await ctx.db.inspection.findUnique({ where: cursor, select: { id: true, imageScore: true, defectFraction: true } });
    const value = at?.[field];
    if (!at || value === null || value === undefined) return [];
    const beyond = dir === 'desc' ? 'lt' : 'gt';
    conditions.push({ OR: [{ [field]: { [beyond]: value } }, { [field]: value, id: { [beyond]: at.id } }] });
  }
  const rows = await ctx.db.inspection.findMany({
    ...selection,
    where: { AND: conditions },
    orderBy: [{ [field]: dir }, { id: dir }],
    take: Math.abs(take),
    // Prisma's skip counts the cursor row itself, which the strict keyset condition already leaves out.
    skip: cursor ? Math.max(0, skip - 1) : skip,
  });
  return take < 0 ? rows.reverse() : rows;
}

/** IMAGE_SCORE and DEFECT_FRACTION orders list the inspections that have the score (the SUCCEEDED ones). */
function listInspections(ctx: Context, query: PageQuery, filter: FilterInput | null | undefined, order: OrderInput | null | undefined) {
  const where: Prisma.InspectionWhereInput = { AND: [inspectionWhere(filter), inspectionScope(ctx.auth)] };
  const dir: Direction = order?.direction === 'ASC' ? 'asc' : 'desc';
  switch (order?.field ?? 'CREATED_AT') {
    case 'IMAGE_SCORE':
      return scorePage(ctx, query, where, 'imageScore', dir);
    case 'DEFECT_FRACTION':
      return scorePage(ctx, query, where, 'defectFraction', dir);
    default:
      return ctx.db.inspection.findMany({ ...query, where, orderBy: [{ createdAt: dir }, { id: dir }] });
  }
}

function countInspections(ctx: Context, filter: FilterInput | null | undefined, order: OrderInput | null | undefined) {
  const where: Prisma.InspectionWhereInput = { AND: [inspectionWhere(filter), inspectionScope(ctx.auth)] };
  const field: ScoreField | null = order?.field === 'IMAGE_SCORE' ? 'imageScore' : order?.field === 'DEFECT_FRACTION' ? 'defectFraction' : null;
  return ctx.db.inspection.count({ where: field ? { AND: [where, { [field]: { not: null } }] } : where });
}

/** Items of an `inspections` page without `first`/`last`, and the most one page may hold (the cost limit counts them). */
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 500;

builder.queryFields((t) => ({
  inspection: t.prismaField({
    type: 'Inspection',
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (query, _root, { id }, ctx) => {
      const selection = { ...query };
      const inspectionId = tryLocalId('Inspection', String(id));
      return inspectionId ? ctx.db.inspection.findFirst({ ...selection, where: { id: inspectionId, ...inspectionScope(ctx.auth) } }) : null;
    },
  }),
  inspections: t.prismaConnection(
    {
      type: 'Inspection',
      cursor: 'id',
      defaultSize: DEFAULT_PAGE_SIZE,
      maxSize: MAX_PAGE_SIZE,
      description: 'Inspections, newest first unless orderBy says otherwise.',
      args: {
        filter: t.arg({ type: InspectionFilter }),
        orderBy: t.arg({ type: InspectionOrder }),
      },
      resolve: (query, _root, args, ctx) => listInspections(ctx, query as PageQuery, args.filter, args.orderBy),
      totalCount: (_parent, args, ctx) => countInspections(ctx, args.filter, args.orderBy),
    },
    { name: 'InspectionConnection' },
    { name: 'InspectionEdge' },
  ),
}));

const SubmitInspectionInput = builder.inputType('SubmitInspectionInput', {
  fields: (t) => ({
    productId: t.id({ required: true }),
    image: t.field({ type: 'File', required: true, description: 'PNG, JPEG, TIFF or WebP; grey or RGB, 8 or 16 bit.' }),
    scoreMap: t.field({
      type: 'File',
      description:
        "The detector's anomaly map (.npy, PNG or TIFF), at the image's size or any size with its aspect ratio. Required unless the product " +
        'is BUILTIN and has a memory bank: then, when omitted, the built-in scorer computes it while processing.',
    }),
    features: t.field({ type: 'File', description: 'Feature maps (.npy, C x h x w) to use instead of the built-in extractor.' }),
    pointCloud: t.field({
      type: 'File',
      description:
        'The organized point cloud (x, y, z per pixel): a 3-sample 32/64-bit float TIFF (as MVTec 3D-AD stores it) or .npy (H, W, 3) ' +
        "float32/float64, with the image's aspect ratio. Points that are NaN or (0, 0, 0) are holes: never in the mask. Its 3-D features " +
        'join the image features (option features.modality).',
    }),
    groundTruth: t.field({ type: 'File', description: 'A defect mask at the image size: metrics are computed against it.' }),
    externalId: t.string({ description: 'Idempotency key: a retry with the same key returns the first inspection.' }),
    options: t.field({ type: [OptionInput], description: "Option overrides on top of the product's." }),
  }),
});

builder.mutationFields((t) => ({
  submitInspection: t.prismaField({
    type: 'Inspection',
    description: 'Validates and stores the inputs, and queues the inspection; it is returned QUEUED.',
    errors: mutationErrors('SubmitInspection', 'inspection'),
    args: { input: t.arg({ type: SubmitInspectionInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      return submitInspection(ctx, { ...input, productId: String(input.productId) }, (id) =>
        ctx.db.inspection.findUniqueOrThrow({ ...withId(query), where: { id } }),
      );
    },
  }),
  reprocessInspection: t.prismaField({
    type: 'Inspection',
    description: 'Runs a SUCCEEDED or FAILED inspection again on its stored inputs (with new options if given).',
    errors: mutationErrors('ReprocessInspection', 'inspection'),
    args: { id: t.arg.id({ required: true }), options: t.arg({ type: [OptionInput] }) },
    resolve: async (query, _root, { id, options }, ctx) => {
      return reprocessInspection(ctx, String(id), options, (inspectionId) =>
        ctx.db.inspection.findUniqueOrThrow({ ...withId(query), where: { id: inspectionId } }),
      );
    },
  }),
}));

const DeletedInspection = builder.objectRef<{ id: string }>('DeletedInspection').implement({
  fields: (t) => ({ deletedId: t.exposeID('id', { description: 'The global id the inspection had.' }) }),
});

builder.mutationField('deleteInspection', (t) =>
  t.field({
    type: DeletedInspection,
    description: 'Deletes an inspection with its inputs, mask and regions.',
    errors: { types: EXPECTED_ERRORS, directResult: true, union: { name: 'DeleteInspectionResult' } },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx) => {
      await deleteInspection(ctx, String(id));
      return { id: String(id) };
    },
  }),
);
