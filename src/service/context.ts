// What the domain operations need: the database, the processor, the change events and the settings.

import type { PrismaClient } from '../db.ts';
import type { InspectionProcessor } from '../processing/processor.ts';
import type { ServiceConfig } from '../server/config.ts';
import type { InspectionEvents } from '../server/events.ts';
import type { Logger } from '../server/log.ts';

export interface ServiceContext {
  db: PrismaClient;
  processor: InspectionProcessor;
  events: InspectionEvents;
  config: ServiceConfig;
  logger: Logger;
}
