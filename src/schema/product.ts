// Products: the Product node, its queries, createProduct and addNominalSamples.

import type { CalibrationJson } from '../core/calibration.ts';
import { builder } from '../builder.ts';
import { tryLocalId } from '../service/ids.ts';
import { optionPairs } from '../service/options.ts';
import { addNominalScoreMaps, createProduct } from '../service/products.ts';
import { mutationErrors } from './errors.ts';
import { OptionInput, OptionValue } from './options.ts';

type CalibrationSummary = Omit<CalibrationJson, 'version' | 'pixelMean' | 'pixelStd'>;

const Calibration = builder.objectRef<CalibrationSummary>('Calibration').implement({
  description: 'Statistics of the nominal score maps (the image-level gate and threshold baselines use them).',
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

export const ProductNode = builder.prismaNode('Product', {
  id: { field: 'id' },
  // Select mode: the calibration and the scorer bank can be large; load them only when asked for.
  select: { id: true },
  description: 'A part type on a production line, with its method configuration and calibration.',
  fields: (t) => ({
    name: t.exposeString('name'),
    line: t.exposeString('line', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    options: t.field({
      type: [OptionValue],
      description: 'Option overrides applied to every inspection of the product.',
      select: { options: true },
      resolve: (p) => optionPairs(p.options),
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
    nominalScoreMapCount: t.relationCount('nominalScoreMaps'),
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
      return productId ? ctx.db.product.findUnique({ ...selection, where: { id: productId } }) : null;
    },
  }),
  products: t.prismaField({
    type: ['Product'],
    description: 'Every product, by name.',
    resolve: (query, _root, _args, ctx) => ctx.db.product.findMany({ ...query, orderBy: { name: 'asc' } }),
  }),
}));

const CreateProductInput = builder.inputType('CreateProductInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: 'Unique name of the part type.' }),
    line: t.string({ description: 'The production line.' }),
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
      return ctx.db.product.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
  addNominalSamples: t.prismaField({
    type: 'Product',
    description:
      'Adds nominal (defect-free) samples to a product and recomputes its calibration from all of them. ' +
      'For a product scored by an external detector the samples are that detector\'s score maps of nominal parts (.npy, PNG, TIFF).',
    errors: mutationErrors('AddNominalSamples', 'product'),
    args: {
      productId: t.arg.id({ required: true }),
      scoreMaps: t.arg({ type: ['File'], required: true }),
    },
    resolve: async (query, _root, { productId, scoreMaps }, ctx) => {
      const id = await addNominalScoreMaps(ctx, String(productId), scoreMaps);
      return ctx.db.product.findUniqueOrThrow({ ...query, where: { id } });
    },
  }),
}));
