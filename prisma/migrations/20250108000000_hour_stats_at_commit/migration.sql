-- The hourly rollup ("InspectionHourStats") is updated when the transaction commits, not at each change of
-- "Inspection": its triggers become deferred constraint triggers. The rollup holds one row per product and
-- hour, which every inspection of that hour writes (submission, claim, result); an immediate trigger
-- locked that row from the inspection's insert or update to the end of its transaction, through the
-- blob inserts and every round trip to the client, and concurrent submissions and workers queued behind
-- one another on it (seconds under load, a low-priority worker holding it too). Deferred, each
-- transaction holds the row only while it commits. The sums are the same: every event still adds and
-- removes its row's contribution, with that event's OLD and NEW rows.

DROP TRIGGER "Inspection_hour_stats_insert_delete" ON "Inspection";
DROP TRIGGER "Inspection_hour_stats_update" ON "Inspection";

CREATE CONSTRAINT TRIGGER "Inspection_hour_stats_insert_delete" AFTER INSERT OR DELETE ON "Inspection"
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION "inspection_hour_stats_trigger"();

CREATE CONSTRAINT TRIGGER "Inspection_hour_stats_update" AFTER UPDATE OF "productId", "createdAt", "status", "verdict", "defectFraction" ON "Inspection"
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW
WHEN (OLD."productId" IS DISTINCT FROM NEW."productId" OR OLD."createdAt" IS DISTINCT FROM NEW."createdAt" OR OLD."status" IS DISTINCT FROM NEW."status"
      OR OLD."verdict" IS DISTINCT FROM NEW."verdict" OR OLD."defectFraction" IS DISTINCT FROM NEW."defectFraction")
EXECUTE FUNCTION "inspection_hour_stats_trigger"();
