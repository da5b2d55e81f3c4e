// `npm start`: migrates the database (embedded PGlite under DATA_DIR unless DATABASE_URL is set), registers
// the built-in scorer's network weights, starts processing (in-process on PGlite; on PostgreSQL the job
// queue, with an embedded worker unless EMBEDDED_WORKER=false), and serves GraphQL + files on PORT.

import { createServer } from 'node:http';
import { databaseOptionsFromEnv, openDatabase } from '../db.ts';
import { migrate } from '../migrate.ts';
import { registerMobileNet } from '../models/nsfwjs.ts';
import { startProcessing } from '../processing/start.ts';
import { configFromEnv } from './config.ts';
import { jsonLogger } from './log.ts';
import { createApp } from './yoga.ts';

async function main(): Promise<void> {
  const config = configFromEnv();
  const logger = jsonLogger();
  const dbOptions = databaseOptionsFromEnv();
  const db = await openDatabase(dbOptions);
  const migrations = await migrate(db);
  logger.log('info', 'database ready', { database: db.location, applied: migrations.applied, modified: migrations.modified });
  // Read lazily: the weights load when a BUILTIN product first builds or uses its bank.
  registerMobileNet();
  const processing = await startProcessing(db, config, logger, { work: config.embeddedWorker, url: dbOptions.url });
  const { processor, events } = processing;
  const { yoga } = createApp({ db: db.prisma, processor, events, config, logger });
  const server = createServer(yoga);
  await new Promise<void>((resolve) => server.listen(config.port, resolve));
  logger.log('info', 'listening', {
    url: `http://localhost:${config.port}${yoga.graphqlEndpoint}`,
    processing: db.kind === 'pglite' ? 'in-process' : config.embeddedWorker ? 'queue + embedded worker' : 'queue (separate workers)',
    requeued: processing.requeued,
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log('info', 'stopping', { signal });
    server.close();
    server.closeAllConnections();
    const { released } = await processing.close();
    // A released job's handler may still hold a connection, which the pool's end would wait for: exiting closes it.
    if (released === 0) await db.close();
    logger.log('info', 'stopped', { signal, released });
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
