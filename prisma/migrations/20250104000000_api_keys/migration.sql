-- CreateEnum
CREATE TYPE "ApiKeyRole" AS ENUM ('ADMIN', 'STATION', 'VIEWER');

-- CreateTable
CREATE TABLE "ApiKey" (
    "id" UUID NOT NULL,
    "name" TEXT,
    "prefix" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "role" "ApiKeyRole" NOT NULL,
    "allProducts" BOOLEAN NOT NULL DEFAULT true,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revokedAt" TIMESTAMP(3),
    "lastUsedAt" TIMESTAMP(3),

    CONSTRAINT "ApiKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ApiKeyProduct" (
    "keyId" UUID NOT NULL,
    "productId" UUID NOT NULL,

    CONSTRAINT "ApiKeyProduct_pkey" PRIMARY KEY ("keyId","productId")
);

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_hash_key" ON "ApiKey"("hash");

-- CreateIndex
CREATE INDEX "ApiKey_prefix_idx" ON "ApiKey"("prefix");

-- CreateIndex
CREATE INDEX "ApiKeyProduct_productId_idx" ON "ApiKeyProduct"("productId");

-- AddForeignKey
ALTER TABLE "ApiKeyProduct" ADD CONSTRAINT "ApiKeyProduct_keyId_fkey" FOREIGN KEY ("keyId") REFERENCES "ApiKey"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ApiKeyProduct" ADD CONSTRAINT "ApiKeyProduct_productId_fkey" FOREIGN KEY ("productId") REFERENCES "Product"("id") ON DELETE CASCADE ON UPDATE CASCADE;
