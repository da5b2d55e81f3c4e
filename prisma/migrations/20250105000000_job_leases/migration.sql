-- Durable processing: which queued job owns an inspection, the lease of the attempt running it (results are
-- written only under that lease, so a re-delivered job never completes an inspection twice), and one row
-- per processing attempt (which worker, when, how it ended).

-- AlterTable
ALTER TABLE "Inspection" ADD COLUMN "jobId" UUID,
ADD COLUMN "leaseId" UUID,
ADD COLUMN "attempts" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "InspectionAttempt" (
    "inspectionId" UUID NOT NULL,
    "attempt" INTEGER NOT NULL,
    "leaseId" UUID NOT NULL,
    "jobId" UUID,
    "worker" TEXT NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" TIMESTAMP(3),
    "outcome" TEXT,
    "errorCode" TEXT,
    "errorMessage" TEXT,

    CONSTRAINT "InspectionAttempt_pkey" PRIMARY KEY ("inspectionId","attempt")
);

-- AddForeignKey
ALTER TABLE "InspectionAttempt" ADD CONSTRAINT "InspectionAttempt_inspectionId_fkey" FOREIGN KEY ("inspectionId") REFERENCES "Inspection"("id") ON DELETE CASCADE ON UPDATE CASCADE;
