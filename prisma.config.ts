// Prisma CLI configuration: where the schema and migrations live, and the PostgreSQL server when one is
// used (DATABASE_URL). Without it the service runs on embedded PGlite (see src/db.ts).
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test' },
});
