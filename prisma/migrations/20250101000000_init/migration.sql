-- CreateEnum
CREATE TYPE "InspectionStatus" AS ENUM ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED');

-- CreateEnum
CREATE TYPE "Verdict" AS ENUM ('NOMINAL', 'DEFECTIVE');

-- CreateEnum
CREATE TYPE "BlobKind" AS ENUM ('IMAGE', 'SCORE_MAP', 'FEATURES', 'GROUND_TRUTH', 'MASK');

-- CreateTable
CREATE TABLE "Product" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "line" TEXT,
    "options" JSONB NOT NULL DEFAULT '{}',
    "calibration" JSONB,
    "scorerBank" BYTEA,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Product_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "NominalScoreMap" (
    "id" UUID NOT NULL,
    "productId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "width" INTEGER NOT NULL,
    "height" INTEGER NOT NULL,
    "data" BYTEA NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "NominalScoreMap_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Inspection" (
    "id" UUID NOT NULL,
    "productId" UUID NOT NULL,
    "externalId" TEXT,
    "status" "InspectionStatus" NOT NULL DEFAULT 'QUEUED',
    "errorCode" TEXT,
    "errorMessage" TEXT,
    "options" JSONB NOT NULL DEFAULT '{}',
    "width" INTEGER NOT NULL,
    "height" INTEGER NOT NULL,
    "channels" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),
    "verdict" "Verdict",
    "imageScore" DOUBLE PRECISION,
    "defectFraction" DOUBLE PRECISION,
    "regionCount" INTEGER,
    "anomalousLabels" INTEGER,
    "nominalLabels" INTEGER,
    "classifierLoss" DOUBLE PRECISION,
    "classifierEpochs" INTEGER,
    "gateThreshold" DOUBLE PRECISION,
    "emptyReason" TEXT,
    "stageMs" JSONB,
    "totalMs" DOUBLE PRECISION,
    "precision" DOUBLE PRECISION,
    "recall" DOUBLE PRECISION,
    "f1" DOUBLE PRECISION,
    "iou" DOUBLE PRECISION,

    CONSTRAINT "Inspection_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "InspectionBlob" (
    "inspectionId" UUID NOT NULL,
    "kind" "BlobKind" NOT NULL,
    "name" TEXT NOT NULL,
    "data" BYTEA NOT NULL,

    CONSTRAINT "InspectionBlob_pkey" PRIMARY KEY ("inspectionId","kind")
);

-- CreateTable
CREATE TABLE "Region" (
    "inspectionId" UUID NOT NULL,
    "index" INTEGER NOT NULL,
    "area" INTEGER NOT NULL,
    "bboxX" INTEGER NOT NULL,
    "bboxY" INTEGER NOT NULL,
    "bboxWidth" INTEGER NOT NULL,
    "bboxHeight" INTEGER NOT NULL,
    "centroidX" DOUBLE PRECISION NOT NULL,
    "centroidY" DOUBLE PRECISION NOT NULL,
    "meanScore" DOUBLE PRECISION NOT NULL,
    "maxScore" DOUBLE PRECISION NOT NULL,

    CONSTRAINT "Region_pkey" PRIMARY KEY ("inspectionId","index")
);

-- CreateIndex
CREATE UNIQUE INDEX "Product_name_key" ON "Product"("name");

-- CreateIndex
CREATE INDEX "NominalScoreMap_productId_createdAt_idx" ON "NominalScoreMap"("productId", "createdAt");

-- CreateIndex
CREATE INDEX "Inspection_productId_createdAt_id_idx" ON "Inspection"("productId", "createdAt", "id");

-- CreateIndex
CREATE INDEX "Inspection_productId_status_createdAt_idx" ON "Inspection"("productId", "status", "createdAt");

-- CreateIndex
CREATE INDEX "Inspection_productId_verdict_createdAt_idx" ON "Inspection"("productId", "verdict", "createdAt");

-- CreateIndex
CREATE INDEX "Inspection_createdAt_id_idx" ON "Inspection"("createdAt", "id");

-- CreateIndex
CREATE INDEX "Inspection_status_createdAt_idx" ON "Inspection"("status", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "Inspection_productId_externalId_key" ON "Inspection"("productId", "externalId");

-- AddForeignKey
ALTER TABLE "NominalScoreMap" ADD CONSTRAINT "NominalScoreMap_productId_fkey" FOREIGN KEY ("productId") REFERENCES "Product"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Inspection" ADD CONSTRAINT "Inspection_productId_fkey" FOREIGN KEY ("productId") REFERENCES "Product"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "InspectionBlob" ADD CONSTRAINT "InspectionBlob_inspectionId_fkey" FOREIGN KEY ("inspectionId") REFERENCES "Inspection"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Region" ADD CONSTRAINT "Region_inspectionId_fkey" FOREIGN KEY ("inspectionId") REFERENCES "Inspection"("id") ON DELETE CASCADE ON UPDATE CASCADE;
