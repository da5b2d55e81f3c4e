// `npm start`: migrates the database (embedded PGlite under DATA_DIR unless DATABASE_URL is set), registers
// the built-in scorer's network weights, starts processing (in-process on PGlite; on PostgreSQL the job
// queue, with an embedded worker unless EMBEDDED_WORKER=false), and serves GraphQL + files on PORT.

import { databaseOptionsFromEnv, openDatabase } from '../db.ts';
import { migrate } from '../migrate.ts';
import { registerMobileNet } from '../models/nsfwjs.ts';
import { startProcessing, stopOnSignals } from '../processing/start.ts';
import { configFromEnv } from './config.ts';
import { createHttpServer, listen } from './http.ts';
import { jsonLogger } from './log.ts';
import { createMetricsServer } from './operations.ts';
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
  const app = createApp({ db: db.prisma, processor, events, config, logger });
  const server = createHttpServer(app, config);
  await listen(server, config);
  const metricsServer = config.metricsPort === null ? null : createMetricsServer(db.prisma);
  if (metricsServer) await listen(metricsServer, { port: config.metricsPort!, host: config.metricsHost });
  const host = config.host === null ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
  logger.log('info', 'listening', {
    dashboard: `http://${host}:${config.port}/`,
    url: `http://${host}:${config.port}${app.yoga.graphqlEndpoint}`,
    address: config.host ?? 'every interface',
    processing: db.kind === 'pglite' ? 'in-process' : config.embeddedWorker ? 'queue + embedded worker' : 'queue (separate workers)',
    requeued: processing.requeued,
    metrics: metricsServer ? `http://${config.metricsHost.includes(':') ? `[${config.metricsHost}]` : config.metricsHost}:${config.metricsPort}/metrics` : '/metrics on PORT, ADMIN key',
  });

  stopOnSignals({
    processing,
    db,
    logger,
    before: () => {
      server.close();
      server.closeAllConnections();
      metricsServer?.close();
    },
  });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
