// What the domain operations need: the database, the processor, the change events, the settings, and
// who is asking (the principal whose product scope the reads and writes respect).

import type { PrismaClient } from '../db.ts';
import type { InspectionProcessor } from './processor.ts';
import type { ServiceConfig } from './config.ts';
import type { InspectionEvents } from './events.ts';
import type { Logger } from './log.ts';
import type { Principal } from './auth.ts';
import type { Faults } from './faults.ts';

export interface ServiceContext {
  db: PrismaClient;
  processor: InspectionProcessor;
  events: InspectionEvents;
  config: ServiceConfig;
  logger: Logger;
  auth: Principal;
  /** Set when the request was refused for a full queue: the HTTP edge then answers 429 with Retry-After. */
  admission?: { retryAfterSeconds?: number };
  /** Test-only failure injection between the steps of multi-step writes. */
  faults?: Faults;
}
