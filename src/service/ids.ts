// Relay global IDs of the API <-> the database's UUIDs. A malformed ID, or one of another type, names
// nothing: NOT_FOUND, like an unknown one.

import { decodeGlobalID } from '@pothos/plugin-relay';
import { TttError } from '../core/errors.ts';

export type NodeType = 'Product' | 'Inspection';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function localId(type: NodeType, globalId: string): string {
  let decoded: { typename: string; id: string } | null = null;
  try {
    decoded = decodeGlobalID(globalId);
  } catch {
    decoded = null;
  }
  if (!decoded || decoded.typename !== type || !UUID.test(decoded.id)) {
    throw new TttError('NOT_FOUND', `${JSON.stringify(globalId)} is not the id of a ${type}`);
  }
  return decoded.id.toLowerCase();
}

/** The UUID, or null when the ID is malformed or of another type (queries answer null for those). */
export function tryLocalId(type: NodeType, globalId: string): string | null {
  try {
    return localId(type, globalId);
  } catch {
    return null;
  }
}

export function notFound(type: NodeType, globalIdValue: string): TttError {
  return new TttError('NOT_FOUND', `no ${type} with id ${globalIdValue}`);
}
