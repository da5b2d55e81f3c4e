-- The organized point cloud of a BUILTIN product's nominal image (x, y, z per pixel), when the product's
-- samples come with point clouds: its memory bank then holds image and 3-D features.

-- AlterTable
ALTER TABLE "NominalImage" ADD COLUMN "pointCloud" BYTEA,
ADD COLUMN "pointCloudName" TEXT;
