-- A product's option limits (set by an ADMIN): the most a submission or reprocess may ask of the options
-- that cost GPU time; without one, an option's limit is the product's own value.

-- AlterTable
ALTER TABLE "Product" ADD COLUMN "optionLimits" JSONB NOT NULL DEFAULT '{}';
