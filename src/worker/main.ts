// `npm run worker`: a processing process for the PostgreSQL job queue. It holds one GPU device, takes
// inspection jobs (PROCESSING_CONCURRENCY at a time, the GPU stage serialized) and stores the results in
// the shared database; run any number of them, on any number of machines, next to the server(s).
// SIGTERM/SIGINT: stop taking jobs, let the running ones finish (or, after SHUTDOWN_TIMEOUT_SECONDS, release
// them to the other workers), exit 0.

import { databaseOptionsFromEnv, openDatabase } from '../db.ts';
import { migrate } from '../migrate.ts';
import { registerMobileNet } from '../models/mobilenet.ts';
import { registerResnet50 } from '../models/resnet50.ts';
import { startProcessing, stopOnSignals } from '../processing/start.ts';
import { configFromEnv } from '../service/config.ts';
import { listen } from '../server/http.ts';
import { jsonLogger } from '../service/log.ts';
import { createMetricsServer } from '../server/operations.ts';

async function main(): Promise<void> {
  const config = configFromEnv();
  const logger = jsonLogger();
  const dbOptions = databaseOptionsFromEnv();
  if (!dbOptions.url) {
    throw new Error('npm run worker needs DATABASE_URL (a PostgreSQL server shared with the server); with embedded PGlite the server processes inspections itself');
  }
  const db = await openDatabase(dbOptions);
  await migrate(db);
  registerMobileNet();
  registerResnet50();
  const processing = await startProcessing(db, config, logger, { work: true, url: dbOptions.url });
  // The worker's own counters (its inspections, stages, retries, device losses) are served only here.
  const metricsServer = config.metricsPort === null ? null : createMetricsServer(db.prisma);
  if (metricsServer) await listen(metricsServer, { port: config.metricsPort!, host: config.metricsHost });
  logger.log('info', 'worker ready', {
    database: db.location,
    concurrency: config.concurrency,
    pid: process.pid,
    ...(metricsServer ? { metrics: `${config.metricsHost}:${config.metricsPort}/metrics` } : {}),
  });

  stopOnSignals({ processing, db, logger, name: 'worker', before: () => metricsServer?.close() });
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
