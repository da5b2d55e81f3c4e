// `npm start`: migrates the database (embedded PGlite under DATA_DIR unless DATABASE_URL is set), registers
// the built-in scorer's network weights, starts processing (in-process on PGlite; on PostgreSQL the job
// queue, with an embedded worker unless EMBEDDED_WORKER=false), and serves GraphQL + files on PORT.
// The embedded worker is a child process (src/worker/main.ts): the pipeline's CPU work then never delays
// the API's requests.

import { spawn, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { databaseOptionsFromEnv, openDatabase } from '../db.ts';
import { migrate } from '../migrate.ts';
import { registerMobileNet } from '../models/mobilenet.ts';
import { registerResnet50 } from '../models/resnet50.ts';
import { startProcessing, stopOnSignals } from '../processing/start.ts';
import { configFromEnv } from '../service/config.ts';
import { createHttpServer, listen } from './http.ts';
import { jsonLogger, type Logger } from '../service/log.ts';
import { createMetricsServer } from './operations.ts';
import { createApp } from './yoga.ts';

/**
 * The child's scheduling priority (nice): where the GPU is emulated on the CPU (lavapipe), or the CPU is
 * short, the API's requests come first and processing takes the rest. Threads the worker starts later
 * (the GPU driver's, libuv's) inherit it.
 */
const WORKER_NICE = 10;

/**
 * The embedded worker: `npm run worker` as a child process with this process's environment and loader,
 * at a lower priority, started again a second after it dies; `stop` ends it (SIGTERM: it finishes or
 * releases its jobs).
 */
function startWorkerChild(logger: Logger): { stop(): Promise<void> } {
  const script = fileURLToPath(new URL('../worker/main.ts', import.meta.url));
  let child: ChildProcess | null = null;
  let stopping = false;
  const start = () => {
    const c = spawn(process.execPath, [...process.execArgv, script], { stdio: 'inherit', env: process.env });
    child = c;
    try {
      setPriority(c.pid!, WORKER_NICE);
    } catch (error) {
      logger.log('warn', 'could not lower the embedded worker\'s priority', { error });
    }
    c.on('exit', (code, signal) => {
      if (stopping) return;
      logger.log('error', 'embedded worker exited; starting another', { code, signal });
      setTimeout(start, 1000);
    });
  };
  start();
  return {
    async stop() {
      stopping = true;
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    },
  };
}

async function main(): Promise<void> {
  const config = configFromEnv();
  const logger = jsonLogger();
  const dbOptions = databaseOptionsFromEnv();
  const db = await openDatabase(dbOptions);
  const migrations = await migrate(db);
  logger.log('info', 'database ready', { database: db.location, applied: migrations.applied, modified: migrations.modified });
  // Read lazily: the weights load when a BUILTIN product first builds or uses its bank.
  registerMobileNet();
  registerResnet50();
  const worker = db.kind === 'postgres' && config.embeddedWorker ? startWorkerChild(logger) : null;
  const started = await startProcessing(db, config, logger, { work: false, url: dbOptions.url });
  const processing = worker
    ? {
        ...started,
        async close() {
          const closed = await started.close();
          await worker.stop();
          return closed;
        },
      }
    : started;
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
    processing: db.kind === 'pglite' ? 'in-process' : config.embeddedWorker ? 'queue + embedded worker (child process)' : 'queue (separate workers)',
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
