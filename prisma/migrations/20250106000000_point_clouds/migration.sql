-- An inspection's organized point cloud (x, y, z per pixel) is stored with its other inputs in
-- "InspectionBlob", under a new kind.

-- AlterEnum
ALTER TYPE "BlobKind" ADD VALUE 'POINT_CLOUD';
