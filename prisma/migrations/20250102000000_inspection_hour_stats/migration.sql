-- CreateTable
CREATE TABLE "InspectionHourStats" (
    "productId" UUID NOT NULL,
    "hour" TIMESTAMP(3) NOT NULL,
    "total" INTEGER NOT NULL DEFAULT 0,
    "queued" INTEGER NOT NULL DEFAULT 0,
    "running" INTEGER NOT NULL DEFAULT 0,
    "succeeded" INTEGER NOT NULL DEFAULT 0,
    "failed" INTEGER NOT NULL DEFAULT 0,
    "defective" INTEGER NOT NULL DEFAULT 0,
    "nominal" INTEGER NOT NULL DEFAULT 0,
    "defectSum" DOUBLE PRECISION NOT NULL DEFAULT 0,

    CONSTRAINT "InspectionHourStats_pkey" PRIMARY KEY ("productId","hour")
);

-- CreateIndex
CREATE INDEX "InspectionHourStats_hour_idx" ON "InspectionHourStats"("hour");

-- AddForeignKey
ALTER TABLE "InspectionHourStats" ADD CONSTRAINT "InspectionHourStats_productId_fkey" FOREIGN KEY ("productId") REFERENCES "Product"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Keep "InspectionHourStats" equal to the aggregate of "Inspection" (not expressible in schema.prisma).
-- Adds (sign = 1) or removes (sign = -1) one inspection's contribution to its product's hour.
CREATE FUNCTION "inspection_hour_stats_add"(p UUID, created TIMESTAMP(3), st "InspectionStatus", v "Verdict", df DOUBLE PRECISION, sign INTEGER)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  ok BOOLEAN := st = 'SUCCEEDED';
BEGIN
  IF sign > 0 THEN
    INSERT INTO "InspectionHourStats" AS s ("productId", "hour", "total", "queued", "running", "succeeded", "failed", "defective", "nominal", "defectSum")
    VALUES (p, date_trunc('hour', created), 1, (st = 'QUEUED')::int, (st = 'RUNNING')::int, ok::int, (st = 'FAILED')::int,
            (ok AND v = 'DEFECTIVE')::int, (ok AND v = 'NOMINAL')::int, CASE WHEN ok THEN coalesce(df, 0) ELSE 0 END)
    ON CONFLICT ("productId", "hour") DO UPDATE SET
      "total" = s."total" + 1,
      "queued" = s."queued" + EXCLUDED."queued",
      "running" = s."running" + EXCLUDED."running",
      "succeeded" = s."succeeded" + EXCLUDED."succeeded",
      "failed" = s."failed" + EXCLUDED."failed",
      "defective" = s."defective" + EXCLUDED."defective",
      "nominal" = s."nominal" + EXCLUDED."nominal",
      "defectSum" = s."defectSum" + EXCLUDED."defectSum";
  ELSE
    -- No upsert on removal: when a product is deleted its hour rows may already be gone (cascade).
    UPDATE "InspectionHourStats" SET
      "total" = "total" - 1,
      "queued" = "queued" - (st = 'QUEUED')::int,
      "running" = "running" - (st = 'RUNNING')::int,
      "succeeded" = "succeeded" - ok::int,
      "failed" = "failed" - (st = 'FAILED')::int,
      "defective" = "defective" - (ok AND v = 'DEFECTIVE')::int,
      "nominal" = "nominal" - (ok AND v = 'NOMINAL')::int,
      "defectSum" = "defectSum" - CASE WHEN ok THEN coalesce(df, 0) ELSE 0 END
    WHERE "productId" = p AND "hour" = date_trunc('hour', created);
  END IF;
END;
$$;

CREATE FUNCTION "inspection_hour_stats_trigger"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    PERFORM "inspection_hour_stats_add"(OLD."productId", OLD."createdAt", OLD."status", OLD."verdict", OLD."defectFraction", -1);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    PERFORM "inspection_hour_stats_add"(NEW."productId", NEW."createdAt", NEW."status", NEW."verdict", NEW."defectFraction", 1);
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER "Inspection_hour_stats_insert_delete" AFTER INSERT OR DELETE ON "Inspection"
FOR EACH ROW EXECUTE FUNCTION "inspection_hour_stats_trigger"();

CREATE TRIGGER "Inspection_hour_stats_update" AFTER UPDATE OF "productId", "createdAt", "status", "verdict", "defectFraction" ON "Inspection"
FOR EACH ROW
WHEN (OLD."productId" IS DISTINCT FROM NEW."productId" OR OLD."createdAt" IS DISTINCT FROM NEW."createdAt" OR OLD."status" IS DISTINCT FROM NEW."status"
      OR OLD."verdict" IS DISTINCT FROM NEW."verdict" OR OLD."defectFraction" IS DISTINCT FROM NEW."defectFraction")
EXECUTE FUNCTION "inspection_hour_stats_trigger"();

-- Backfill from the inspections already stored.
INSERT INTO "InspectionHourStats" ("productId", "hour", "total", "queued", "running", "succeeded", "failed", "defective", "nominal", "defectSum")
SELECT "productId", date_trunc('hour', "createdAt"), count(*),
       count(*) FILTER (WHERE "status" = 'QUEUED'), count(*) FILTER (WHERE "status" = 'RUNNING'),
       count(*) FILTER (WHERE "status" = 'SUCCEEDED'), count(*) FILTER (WHERE "status" = 'FAILED'),
       count(*) FILTER (WHERE "status" = 'SUCCEEDED' AND "verdict" = 'DEFECTIVE'),
       count(*) FILTER (WHERE "status" = 'SUCCEEDED' AND "verdict" = 'NOMINAL'),
       coalesce(sum("defectFraction") FILTER (WHERE "status" = 'SUCCEEDED'), 0)
FROM "Inspection"
GROUP BY 1, 2;
