// Products: the Product node (scorer, calibration, built-in scorer bank, option limits), its queries,
// createProduct, setProductOptionLimits and addNominalSamples.

import type { CalibrationJson } from '../core/calibration.ts';
import { COST_OPTIONS } from '../core/cost.ts';
import { decodeBankHeader, type BankHeader } from '../core/patchcore/bank.ts';
import { builder } from '../builder.ts';
import { Scorer } from '../generated/prisma/enums.ts';
import { HOLD_OUT_EVERY } from '../service/builtin.ts';
import { productScope } from '../service/auth.ts';
import { tryLocalId } from '../service/ids.ts';
import { optionPairs } from '../service/options.ts';
import { addNominalSamples, createProduct, setProductOptionLimits } from '../service/products.ts';
import { mutationErrors } from './errors.ts';
import { OptionInput, OptionValue } from './options.ts';
import { withId } from './select.ts';

type CalibrationSummary = Omit<CalibrationJson, 'version' | 'pixelMean' | 'pixelStd'>;

export const ScorerEnum = builder.enumType(Scorer, {
  name: 'Scorer',
  description: "Where a product's score maps come from.",
  values: {
    EXTERNAL: { description: "The station's own detector: every inspection uploads its score map; nominal samples are that detector's maps." },
    BUILTIN: {
      description: "The service's PatchCore scorer (MobileNetV2 features), with a memory bank built from the product's nominal images; inspections may omit the score map.",
    },
  },
});

const Calibration = builder.objectRef<CalibrationSummary>('Calibration').implement({
  description:
    'Statistics of the nominal score maps (the image-level gate and threshold baselines use them). ' +
    `For a BUILTIN product: of the maps of the held-out nominal images (every ${HOLD_OUT_EVERY}th, or the last of 2 to 4), scored against a bank built from the others.`,
  fields: (t) => ({
    count: t.exposeInt('count', { description: 'Nominal maps it was computed from.' }),
    globalMean: t.exposeFloat('globalMean'),
    globalStd: t.exposeFloat('globalStd'),
    maxScore: t.exposeFloat('maxScore', { description: 'The largest nominal pixel score.' }),
    imageScoreMean: t.float({ resolve: (c) => c.imageScores.mean }),
    imageScoreStd: t.float({ resolve: (c) => c.imageScores.std }),
    imageScoreMax: t.float({ resolve: (c) => c.imageScores.max }),
    width: t.exposeInt('width', { description: 'Resolution of the per-pixel statistics.' }),
    height: t.exposeInt('height'),
  }),
});

const ScorerBank = builder.objectRef<BankHeader>('ScorerBank').implement({
  description: "The built-in scorer's memory bank: a greedy coreset of the patch features of every nominal image.",
  fields: (t) => ({
    images: t.exposeInt('images', { description: 'Nominal images it was built from.' }),
    patches: t.exposeInt('patches', { description: 'Patches kept (the coreset).' }),
    sourcePatches: t.exposeInt('sourcePatches', { description: 'Patches of all nominal images (the coreset was chosen from them).' }),
    channels: t.exposeInt('channels', { description: 'Feature channels per patch.' }),
    modality: t.exposeString('modality', { description: 'rgb: image features; both: image and 3-D features (the nominal images came with point clouds).' }),
    layers: t.exposeStringList('layers', { description: 'MobileNetV2 layers the features come from.' }),
    weights: t.exposeString('weights', { description: 'The network weights the features were computed with.' }),
    size: t.exposeInt('size', { description: 'Working size: images are resized so that their longest side has this many pixels.' }),
    stride: t.exposeInt('stride', { description: 'Working-size pixels per patch.' }),
    coresetRatio: t.exposeFloat('coresetRatio'),
  }),
});

export const ProductNode = builder.prismaNode('Product', {
  id: { field: 'id' },
  // node(id) finds only the caller's products.
  findUnique: (id, ctx) => ({ id, AND: [productScope(ctx.auth)] }),
  // A missing or out-of-scope id resolves to null (not an error).
  nullable: true,
  // Select mode: the calibration and the scorer bank can be large; load them only when asked for.
  select: { id: true },
  description: 'A part type on a production line, with its method configuration and calibration.',
  fields: (t) => ({
    name: t.exposeString('name'),
    line: t.exposeString('line', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    scorer: t.expose('scorer', { type: ScorerEnum }),
    options: t.field({
      type: [OptionValue],
      description: 'Option overrides applied to every inspection of the product.',
      select: { options: true },
      resolve: (p) => optionPairs(p.options),
    }),
    optionLimits: t.field({
      type: [OptionValue],
      description:
        'The most an inspection may ask of the options that cost processing time (set by an ADMIN with setProductOptionLimits). ' +
        "A cost option without a limit here is limited to the product's own value: a station may only lower it.",
      select: { optionLimits: true },
      resolve: (p) => optionPairs(p.optionLimits),
    }),
    calibration: t.field({
      type: Calibration,
      nullable: true,
      select: { calibration: true },
      resolve: (p) => {
        if (!p.calibration) return null;
        const { pixelMean: _m, pixelStd: _s, version: _v, ...summary } = p.calibration as unknown as CalibrationJson;
        return summary;
      },
    }),
    scorerBank: t.field({
      type: ScorerBank,
      nullable: true,
      description: 'The built-in scorer\'s memory bank (BUILTIN products, once nominal images were added).',
      select: { scorerBank: true },
      resolve: (p) => (p.scorerBank ? decodeBankHeader(p.scorerBank, 'the product\'s memory bank') : null),
    }),
    nominalScoreMapCount: t.relationCount('nominalScoreMaps'),
    nominalImageCount: t.relationCount('nominalImages'),
  }),
});

builder.queryFields((t) => ({
  product: t.prismaField({
    type: 'Product',
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (query, _root, { id }, ctx) => {
      const selection = { ...query };
      const productId = tryLocalId('Product', String(id));
      return productId ? ctx.db.product.findFirst({ ...selection, where: { AND: [{ id: productId }, productScope(ctx.auth)] } }) : null;
    },
  }),
  products: t.prismaField({
    type: ['Product'],
    description: "Every product the caller's key may see, by name.",
    resolve: (query, _root, _args, ctx) => ctx.db.product.findMany({ ...withId(query), where: productScope(ctx.auth), orderBy: { name: 'asc' } }),
  }),
}));

const CreateProductInput = builder.inputType('CreateProductInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: 'Unique name of the part type.' }),
    line: t.string({ description: 'The production line.' }),
    scorer: t.field({ type: ScorerEnum, defaultValue: 'EXTERNAL', description: 'Where its score maps come from (fixed for the product).' }),
    options: t.field({ type: [OptionInput], description: 'Option overrides for every inspection of the product.' }),
  }),
});

builder.mutationFields((t) => ({
  createProduct: t.prismaField({
    type: 'Product',
    errors: mutationErrors('CreateProduct', 'product'),
    args: { input: t.arg({ type: CreateProductInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const id = await createProduct(ctx, input);
      return ctx.db.product.findUniqueOrThrow({ ...withId(query), where: { id } });
    },
  }),
  setProductOptionLimits: t.prismaField({
    type: 'Product',
    description:
      `Replaces the product's option limits (an empty list clears them): the most a submission or reprocess may ask of ${[...COST_OPTIONS.keys()].join(', ')} ` +
      "(for classifier.tolerance the least; for the lists their length; features.inputSize 0, the image's own size, is the most). " +
      "An option without a limit is limited to the product's own value. The product's own options must be within the limits. " +
      'Requests over a limit are an InvalidOptionError naming the option and the limit.',
    errors: mutationErrors('SetProductOptionLimits', 'product'),
    args: { productId: t.arg.id({ required: true }), limits: t.arg({ type: [OptionInput], required: true }) },
    resolve: async (query, _root, { productId, limits }, ctx) => {
      const id = await setProductOptionLimits(ctx, String(productId), limits);
      return ctx.db.product.findUniqueOrThrow({ ...withId(query), where: { id } });
    },
  }),
  addNominalSamples: t.prismaField({
    type: 'Product',
    description:
      'Adds nominal (defect-free) samples to a product. EXTERNAL product: `scoreMaps`, the detector\'s maps of nominal parts ' +
      '(.npy, PNG, TIFF); the calibration is recomputed from all of them. BUILTIN product: `images` (PNG, JPEG, TIFF); the memory ' +
      `bank is rebuilt from all nominal images, and the calibration from the maps of the held-out ones (every ${HOLD_OUT_EVERY}th image, ` +
      'or the last of 2 to 4; none with a single image, whose product stays uncalibrated) scored against a bank built from the others. ' +
      'With `pointClouds` (one organized point cloud per image, in order; for every image of the product or for none) the bank ' +
      'holds image and 3-D features, and inspections scored by it need their pointCloud. ' +
      'Giving the other kind of file, or none, is an InvalidInputError.',
    errors: mutationErrors('AddNominalSamples', 'product'),
    args: {
      productId: t.arg.id({ required: true }),
      images: t.arg({ type: ['File'], description: 'Nominal images of a BUILTIN product.' }),
      scoreMaps: t.arg({ type: ['File'], description: 'Nominal score maps of an EXTERNAL product.' }),
      pointClouds: t.arg({ type: ['File'], description: "The images' organized point clouds (BUILTIN): 3-sample float TIFF or .npy (H, W, 3)." }),
    },
    resolve: async (query, _root, { productId, images, scoreMaps, pointClouds }, ctx) => {
      const id = await addNominalSamples(ctx, String(productId), { images, scoreMaps, pointClouds });
      return ctx.db.product.findUniqueOrThrow({ ...withId(query), where: { id } });
    },
  }),
}));
