// `npm start`: migrates the database (embedded PGlite under DATA_DIR unless DATABASE_URL is set), registers
// the built-in scorer's network weights, starts the in-process processor, re-queues unfinished work and
// serves GraphQL + files on PORT.

import { createServer } from 'node:http';
import { databaseOptionsFromEnv, openDatabase } from '../db.ts';
import { migrate } from '../migrate.ts';
import { registerMobileNet } from '../models/nsfwjs.ts';
import { createInProcessProcessor, recoverUnfinished } from '../processing/processor.ts';
import { configFromEnv } from './config.ts';
import { createInspectionEvents } from './events.ts';
import { jsonLogger } from './log.ts';
import { createApp } from './yoga.ts';

async function main(): Promise<void> {
  const config = configFromEnv();
  const logger = jsonLogger();
  const db = await openDatabase(databaseOptionsFromEnv());
  const migrations = await migrate(db);
  logger.log('info', 'database ready', { database: db.location, applied: migrations.applied, modified: migrations.modified });
  // Read lazily: the weights load when a BUILTIN product first builds or uses its bank.
  registerMobileNet();
  const events = createInspectionEvents();
  const processor = createInProcessProcessor({ db: db.prisma, events, logger, concurrency: config.concurrency });
  const { yoga } = createApp({ db: db.prisma, processor, events, config, logger });
  const server = createServer(yoga);
  await new Promise<void>((resolve) => server.listen(config.port, resolve));
  const requeued = await recoverUnfinished(db.prisma, processor);
  logger.log('info', 'listening', { url: `http://localhost:${config.port}${yoga.graphqlEndpoint}`, requeued });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log('info', 'stopping', { signal });
    server.close();
    server.closeAllConnections();
    await processor.close();
    await db.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
