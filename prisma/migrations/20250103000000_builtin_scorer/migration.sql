-- CreateEnum
CREATE TYPE "Scorer" AS ENUM ('EXTERNAL', 'BUILTIN');

-- CreateEnum
CREATE TYPE "ScoreSource" AS ENUM ('UPLOADED', 'BUILTIN');

-- AlterTable
ALTER TABLE "Product" ADD COLUMN "scorer" "Scorer" NOT NULL DEFAULT 'EXTERNAL';

-- AlterTable
ALTER TABLE "Inspection" ADD COLUMN "scoreSource" "ScoreSource" NOT NULL DEFAULT 'UPLOADED';

-- CreateTable
CREATE TABLE "NominalImage" (
    "productId" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "width" INTEGER NOT NULL,
    "height" INTEGER NOT NULL,
    "channels" INTEGER NOT NULL,
    "data" BYTEA NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "NominalImage_pkey" PRIMARY KEY ("productId","position")
);

-- AddForeignKey
ALTER TABLE "NominalImage" ADD CONSTRAINT "NominalImage_productId_fkey" FOREIGN KEY ("productId") REFERENCES "Product"("id") ON DELETE CASCADE ON UPDATE CASCADE;
